//! How OpenLineage names become entity URNs (docs/openlineage.md).
//!
//! A job `(namespace, name)` of tenant `t` is `mm://t/job/ol:<namespace>;<name>`, a dataset
//! `mm://t/dataset/ol:<namespace>;<name>` (or `model/…` when its `datasetType` facet says
//! MODEL), a run `mm://t/run/ol:<runId>`. In the namespace, `%` and `;` are written `%25` and
//! `%3B`, so the split at the first `;` is unambiguous whatever the names hold; the URN's own
//! percent-encoding then applies as for any name (`s3://b` reads `s3:%2F%2Fb`).

use crate::kind::Kind;
use crate::tenant::TenantId;
use crate::urn::{EntityUrn, UrnError};

/// The prefix of every entity name made from OpenLineage.
pub const PREFIX: &str = "ol:";

/// The tag every entity made from OpenLineage carries.
pub const TAG: &str = "openlineage";

/// The entity name of a job or dataset `(namespace, name)`.
pub fn key_name(namespace: &str, name: &str) -> String {
    let ns = namespace.replace('%', "%25").replace(';', "%3B");
    format!("{PREFIX}{ns};{name}")
}

/// The `(namespace, name)` of an entity name made by [`key_name`].
pub fn parse_key_name(entity_name: &str) -> Option<(String, String)> {
    let rest = entity_name.strip_prefix(PREFIX)?;
    let (ns, name) = rest.split_once(';')?;
    Some((ns.replace("%3B", ";").replace("%25", "%"), name.to_owned()))
}

/// The URN of job `(namespace, name)` in `tenant`.
pub fn job_urn(tenant: &TenantId, namespace: &str, name: &str) -> Result<EntityUrn, UrnError> {
    EntityUrn::new(tenant.clone(), Kind::Job, key_name(namespace, name))
}

/// The URN of dataset `(namespace, name)` in `tenant`, as a `dataset` or a `model`.
pub fn dataset_urn(tenant: &TenantId, kind: Kind, namespace: &str, name: &str) -> Result<EntityUrn, UrnError> {
    EntityUrn::new(tenant.clone(), kind, key_name(namespace, name))
}

/// The URN of run `run_id` in `tenant`.
pub fn run_urn(tenant: &TenantId, run_id: &str) -> Result<EntityUrn, UrnError> {
    EntityUrn::new(tenant.clone(), Kind::Run, format!("{PREFIX}{run_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_whatever_they_hold() {
        for (ns, name) in [
            ("fraud", "build_features"),
            ("postgres://db:5432", "public.orders"),
            ("a;b%3B|", "c;d"),
            ("s3://bucket", "path/to/x"),
            ("n", "x"),
        ] {
            let text = key_name(ns, name);
            assert_eq!(parse_key_name(&text), Some((ns.to_owned(), name.to_owned())), "{text}");
            let t = TenantId::new("fraud").unwrap();
            let urn = job_urn(&t, ns, name).unwrap();
            assert_eq!(urn.to_string().parse::<EntityUrn>().unwrap(), urn);
        }
        assert_ne!(key_name("a;b", "c"), key_name("a", "b;c"));
        let t = TenantId::new("fraud").unwrap();
        assert_eq!(
            job_urn(&t, "fraud", "build_features").unwrap().to_string(),
            "mm://fraud/job/ol:fraud;build_features"
        );
        assert_eq!(parse_key_name("mlmd:x"), None);
    }
}
