//! What a check is about ([`Resource`]) and the object patterns rules and markers are written
//! with ([`Pattern`]).
//!
//! Every resource has a *domain* and an *object* string, the two request fields the casbin
//! model sees:
//!
//! | resource | domain | object |
//! |---|---|---|
//! | an entity | its tenant | its canonical URN, `mm://fraud/dataset/transactions` |
//! | a tenant | the tenant | `mm://fraud` |
//! | the mesh | `*` | `mesh` |
//!
//! Tenant names are DNS labels, so no tenant is called `*`: the domain `*` means "no tenant,
//! the mesh", and in a rule "every domain".
//!
//! Patterns are matched on the object string by [`urn_match`], registered in the model as
//! `urnMatch`. The grammar is small on purpose, and the loader refuses every pattern that
//! could never match an object (a kind that does not exist, a name spelled in a way the URN
//! formatter never produces, a `*` anywhere but at the end).

use std::borrow::Cow;
use std::fmt;

use metamesh_core::urn::RESERVED_CHARS;
use metamesh_core::{EntityUrn, Kind, TenantId};

use crate::action::Level;

/// The object of a check.
#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    /// One entity; a URN's version, if any, plays no part in authorization.
    Entity(&'a EntityUrn),
    /// A tenant as a whole: its schemas, search, change feed, audit.
    Tenant(&'a TenantId),
    /// The mesh: membership, snapshots, the audit of every shard.
    Mesh,
}

/// The domain of mesh resources, and of rules that hold in every domain.
pub(crate) const ANY_DOMAIN: &str = "*";
/// The object of the mesh resource.
pub(crate) const MESH_OBJECT: &str = "mesh";
pub(crate) const SCHEME: &str = "mm://";

impl Resource<'_> {
    pub fn level(&self) -> Level {
        match self {
            Resource::Entity(_) => Level::Entity,
            Resource::Tenant(_) => Level::Tenant,
            Resource::Mesh => Level::Mesh,
        }
    }

    /// The request domain: the tenant, or `*` for the mesh.
    pub(crate) fn domain(&self) -> &str {
        match self {
            Resource::Entity(urn) => urn.tenant().as_str(),
            Resource::Tenant(tenant) => tenant.as_str(),
            Resource::Mesh => ANY_DOMAIN,
        }
    }

    /// The request object (see the module table).
    pub(crate) fn object(&self) -> Cow<'_, str> {
        match self {
            Resource::Entity(urn) => Cow::Owned(urn.to_string()),
            Resource::Tenant(tenant) => Cow::Owned(format!("{SCHEME}{tenant}")),
            Resource::Mesh => Cow::Borrowed(MESH_OBJECT),
        }
    }
}

impl fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object())
    }
}

/// Whether object `obj` matches pattern `pat`. Patterns are validated by [`Pattern::parse`]
/// first; on such patterns this is exactly the set semantics documented there.
///
/// Rationale: written here rather than with casbin's `keyMatch` because `keyMatch` ignores
/// everything after the first `*` (so `mm://*/model/*` would match every URN), and because the
/// same function decides sensitivity markers, so rules and markers cannot disagree.
pub fn urn_match(obj: &str, pat: &str) -> bool {
    if pat == "*" {
        return true;
    }
    if let Some(pat_rest) = pat.strip_prefix("mm://*") {
        // Any tenant: skip the tenant segment of the object, match the rest.
        let Some(obj_rest) = obj.strip_prefix(SCHEME) else {
            return false;
        };
        let obj_rest = &obj_rest[obj_rest.find('/').unwrap_or(obj_rest.len())..];
        return tail_match(obj_rest, pat_rest);
    }
    tail_match(obj, pat)
}

fn tail_match(s: &str, pat: &str) -> bool {
    match pat.strip_suffix('*') {
        Some(prefix) => s.starts_with(prefix),
        None => s == pat,
    }
}

/// A validated object pattern:
///
/// | pattern | matches |
/// |---|---|
/// | `*` | every object of the rule's domain (entities, the tenant, the mesh) |
/// | `mesh` | the mesh |
/// | `mm://fraud` | the tenant `fraud` itself |
/// | `mm://fraud/*` | every entity of `fraud` |
/// | `mm://fraud/dataset/*` | every dataset of `fraud` |
/// | `mm://fraud/dataset/features%2F*` | datasets whose canonical name starts with `features/` |
/// | `mm://fraud/dataset/transactions` | one entity |
///
/// `*` may stand for the tenant (`mm://*`, `mm://*/model/*`: in `global.csv` only), or end the
/// pattern after a `/` or inside a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    Any,
    Mesh,
    /// `mm://<tenant>`; `None` is `mm://*`.
    Tenant(Option<TenantId>),
    /// `mm://<tenant>/...`: entities.
    Entities {
        tenant: Option<TenantId>,
        kind: Option<Kind>,
        name: NameSel,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NameSel {
    Any,
    /// Canonical (percent-encoded) name prefix, not empty.
    Prefix(String),
    /// Canonical (percent-encoded) full name.
    Exact(String),
}

impl Pattern {
    /// Parses and validates a pattern; the error says why it could never match.
    pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
        if text == "*" {
            return Ok(Pattern::Any);
        }
        if text == MESH_OBJECT {
            return Ok(Pattern::Mesh);
        }
        let Some(rest) = text.strip_prefix(SCHEME) else {
            return Err(format!(
                "object `{text}` is neither `*`, `mesh` nor a pattern `mm://<tenant>[/<kind>/<name>]`"
            ));
        };
        let (tenant_text, after_tenant) = match rest.split_once('/') {
            Some((t, r)) => (t, Some(r)),
            None => (rest, None),
        };
        let tenant = match tenant_text {
            "*" => None,
            t if t.contains('*') => {
                return Err(format!("`*` stands for a whole tenant or ends the pattern, in `{text}`"));
            }
            t => Some(TenantId::new(t).map_err(|e| format!("object `{text}`: {e}"))?),
        };
        let Some(after_tenant) = after_tenant else {
            return Ok(Pattern::Tenant(tenant));
        };
        if after_tenant == "*" {
            return Ok(Pattern::Entities { tenant, kind: None, name: NameSel::Any });
        }
        if after_tenant.split('/').next().is_some_and(|kind| kind.contains('*')) {
            return Err(format!("`*` in the kind of `{text}`: write `mm://<tenant>/*` for every kind"));
        }
        let Some((kind_text, name)) = after_tenant.split_once('/') else {
            return Err(format!("object `{text}` never matches: expected `mm://<tenant>/<kind>/<name>`"));
        };
        let kind: Kind = kind_text.parse().map_err(|e| format!("object `{text}` never matches: {e}"))?;
        let name = match name.find('*') {
            Some(i) if i + 1 != name.len() => {
                return Err(format!("`*` may only end a pattern, in `{text}`"));
            }
            Some(_) if name.len() == 1 => NameSel::Any,
            Some(_) => {
                let prefix = &name[..name.len() - 1];
                check_name_prefix(prefix, kind).map_err(|why| format!("object `{text}` never matches: {why}"))?;
                NameSel::Prefix(prefix.to_owned())
            }
            None => {
                check_exact_name(name, kind).map_err(|why| format!("object `{text}` never matches: {why}"))?;
                NameSel::Exact(name.to_owned())
            }
        };
        Ok(Pattern::Entities { tenant, kind: Some(kind), name })
    }

    /// Whether the pattern covers objects of this level.
    pub(crate) fn covers_level(&self, level: Level) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Mesh => level == Level::Mesh,
            Pattern::Tenant(_) => level == Level::Tenant,
            Pattern::Entities { .. } => level == Level::Entity,
        }
    }

    /// The tenant the pattern names: `None` for none (`*`, `mesh`), `Some(None)` for `mm://*`.
    pub(crate) fn tenant(&self) -> Option<Option<&TenantId>> {
        match self {
            Pattern::Any | Pattern::Mesh => None,
            Pattern::Tenant(t) | Pattern::Entities { tenant: t, .. } => Some(t.as_ref()),
        }
    }
}

/// An exact name must be the canonical spelling, as the URN formatter writes it.
fn check_exact_name(raw: &str, kind: Kind) -> Result<(), String> {
    let probe = format!("{SCHEME}t/{kind}/{raw}");
    let urn: EntityUrn = probe.parse().map_err(|e: metamesh_core::UrnError| e.reason)?;
    let canonical = urn.to_string();
    if canonical != probe {
        let name = &canonical[format!("{SCHEME}t/{kind}/").len()..];
        return Err(format!("names are matched in their canonical form `{name}`"));
    }
    Ok(())
}

/// A prefix must be the start of some canonical name. A trailing incomplete escape (`%`, `%2`)
/// is fine; raw reserved characters, lowercase or needless escapes are not.
fn check_name_prefix(raw: &str, kind: Kind) -> Result<(), String> {
    if let Some(c) = raw.chars().find(|c| c.is_control() || (*c != '%' && c.is_ascii() && RESERVED_CHARS.contains(*c)))
    {
        return Err(format!("`{c}` appears percent-encoded in canonical names"));
    }
    // Cut a trailing partial escape, then require the rest to be canonical.
    let cut = match raw.rfind('%') {
        Some(i) if raw.len() - i < 3 => &raw[..i],
        _ => raw,
    };
    if cut.is_empty() {
        return Ok(());
    }
    match check_exact_name(cut, kind) {
        // A prefix may end inside an encoded multi-byte character, which does not decode alone.
        Err(why) if why.contains("UTF-8") => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_is_segment_aware() {
        let cases = [
            ("mm://fraud/dataset/x", "*", true),
            ("mesh", "*", true),
            ("mesh", "mesh", true),
            ("mm://fraud", "mesh", false),
            ("mm://fraud", "mm://fraud", true),
            ("mm://fraud", "mm://fraud/*", false),
            ("mm://fraud/dataset/x", "mm://fraud/*", true),
            ("mm://fraudulent/dataset/x", "mm://fraud/*", false),
            ("mm://fraud/dataset/x", "mm://fraud/dataset/*", true),
            ("mm://fraud/model/x", "mm://fraud/dataset/*", false),
            ("mm://fraud/dataset/features%2Fa", "mm://fraud/dataset/features%2F*", true),
            ("mm://fraud/dataset/x", "mm://fraud/dataset/x", true),
            ("mm://fraud/dataset/xy", "mm://fraud/dataset/x", false),
            ("mm://fraud", "mm://*", true),
            ("mm://fraud/dataset/x", "mm://*", false),
            ("mm://fraud/dataset/x", "mm://*/*", true),
            ("mm://fraud", "mm://*/*", false),
            ("mm://growth/model/m", "mm://*/model/*", true),
            ("mm://growth/dataset/m", "mm://*/model/*", false),
            ("mesh", "mm://*", false),
        ];
        for (obj, pat, want) in cases {
            assert_eq!(urn_match(obj, pat), want, "{obj} ~ {pat}");
            assert!(Pattern::parse(pat).is_ok(), "{pat} should be a valid pattern");
        }
    }

    #[test]
    fn patterns_that_never_match_are_refused() {
        for bad in [
            "fraud",
            "mm://fra*",
            "mm://Fraud",
            "mm://fraud/",
            "mm://fraud/dataset",
            "mm://fraud/data*",
            "mm://fraud/*/x",
            "mm://fraud/datasets/*",
            "mm://fraud/dataset/a*b",
            "mm://fraud/dataset/features/x",
            "mm://fraud/dataset/features/*",
            "mm://fraud/dataset/a%3Ab",
            "mm://fraud/dataset/a%2fb",
            "mm://fraud/dataset/a%2f*",
            "mm://fraud/dataset/x@2",
            "mm://fraud/dataset/",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad} should be refused");
        }
        for good in [
            "mm://fraud/dataset/a%2F*",
            "mm://fraud/dataset/a%*",
            "mm://fraud/dataset/a%2*",
            "mm://fraud/dataset/s3:%2F%2Fb",
        ] {
            assert!(Pattern::parse(good).is_ok(), "{good} should be accepted");
        }
    }

    #[test]
    fn resources_map_to_domain_and_object() {
        let urn: EntityUrn = "mm://fraud/dataset/a%3Ab".parse().unwrap();
        let r = Resource::Entity(&urn);
        assert_eq!((r.domain(), &*r.object()), ("fraud", "mm://fraud/dataset/a:b"));
        let t = TenantId::new("growth").unwrap();
        let r = Resource::Tenant(&t);
        assert_eq!((r.domain(), &*r.object()), ("growth", "mm://growth"));
        assert_eq!((Resource::Mesh.domain(), &*Resource::Mesh.object()), ("*", "mesh"));
    }
}
