//! MLMD writes (`Command::Mlmd`): MLMD's own rows (crate `metamesh-mlmd`), and their mirror in
//! the mesh's catalog and lineage, in the same transaction.
//!
//! Each MLMD node written becomes a new version of the entity `mm://<tenant>/<kind>/mlmd:<type
//! name>:<id>` — artifacts a `model` (base type MODEL) or a `dataset`, executions a `run`,
//! contexts an `experiment` — whose properties hold the node's MLMD fields. Each event becomes
//! a lineage edge: an input `artifact -consumed-> run`, an output `run -produced-> artifact`.
//! So search, the catalog, lineage expansion and the policy see MLMD nodes like any others.

use metamesh_core::{CommandError, EdgeKind, EdgeSpec, EntitySpec, EntityUrn, Kind, Outcome, TenantId, Urn};
use metamesh_mlmd::{Mirror, MirrorNode, MirrorRef, PropertyValue};
use rusqlite::Connection;
use serde_json::{json, Map, Value};

use crate::apply::{Ctx, Fail, Res};
use crate::{entities, lineage, StoreError};

/// The longest string property value copied into the catalog (the whole value stays in MLMD).
const MAX_MIRRORED_STRING: usize = 1024;
/// The most properties of a node copied into the catalog.
const MAX_MIRRORED_PROPERTIES: usize = 100;

/// Applies an MLMD write and mirrors it.
pub(crate) fn apply(ctx: &Ctx<'_>, conn: &Connection, tenant: &TenantId, rpc: &str, request: &[u8]) -> Res<Outcome> {
    ctx.require_tenant(tenant)?;
    let (response, mirrors) =
        metamesh_mlmd::apply_with_mirrors(conn, tenant.as_str(), ctx.at_ms, rpc, request).map_err(refusal)?;
    // A node written several times in one request is mirrored once, as it was last written.
    let mut nodes: Vec<&MirrorNode> = Vec::new();
    for m in &mirrors {
        if let Mirror::Node(n) = m {
            match nodes.iter_mut().find(|seen| seen.at == n.at) {
                Some(seen) => *seen = n,
                None => nodes.push(n),
            }
        }
    }
    // The mirror never refuses what MLMD accepted: what the mesh's model refuses (an edge that
    // would close a cycle, when an execution reads and writes one artifact; an entity over the
    // catalog's limits) stays in MLMD only. Refusals are checked before anything is written.
    // All of a request's nodes in one set-based write; should the catalog refuse one, each
    // is written on its own (so that the others still are).
    let specs = nodes.into_iter().map(|n| entity(tenant, n)).collect::<Res<Vec<_>>>()?;
    let refs: Vec<&EntitySpec> = specs.iter().collect();
    match entities::put(ctx, conn, &refs, None) {
        Ok(_) => {}
        Err(Fail::Command(_)) => {
            for spec in &specs {
                skip_refused(entities::put(ctx, conn, &[spec], None), &spec.urn.to_string())?;
            }
        }
        Err(e) => return Err(e),
    }
    for m in &mirrors {
        if let Mirror::Event { artifact, execution, input } = m {
            let (a, x) = (urn(tenant, artifact)?, urn(tenant, execution)?);
            let spec = if *input {
                EdgeSpec::new(Urn::unversioned(a), EdgeKind::Consumed, Urn::unversioned(x))
            } else {
                EdgeSpec::new(Urn::unversioned(x), EdgeKind::Produced, Urn::unversioned(a))
            };
            skip_refused(lineage::add_edge(ctx, conn, &spec), &format!("{} -> {}", spec.from, spec.to))?;
        }
    }
    Ok(Outcome::Mlmd { response })
}

fn skip_refused<T>(result: Res<T>, what: &str) -> Res<()> {
    match result {
        Ok(_) => Ok(()),
        Err(Fail::Command(e)) => {
            tracing::debug!(%what, error = %e, "MLMD change not mirrored in the catalog");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn urn(tenant: &TenantId, at: &MirrorRef) -> Res<EntityUrn> {
    let kind: Kind = at.kind.parse().map_err(|_| Fail::Store(StoreError::Corrupt(format!("mlmd kind {}", at.kind))))?;
    EntityUrn::new(tenant.clone(), kind, at.name.clone()).map_err(|e| Fail::Command(CommandError::InvalidUrn(e)))
}

fn entity(tenant: &TenantId, n: &MirrorNode) -> Res<EntitySpec> {
    let mut spec = EntitySpec::new(urn(tenant, &n.at)?);
    let mut properties = Map::new();
    for (name, v) in n.properties.iter().take(MAX_MIRRORED_PROPERTIES) {
        let value = match v {
            PropertyValue::Int(i) => json!(i),
            PropertyValue::Double(d) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
            PropertyValue::String(s) => json!(truncate(s)),
            PropertyValue::Bool(b) => json!(b),
        };
        properties.insert(name.clone(), value);
    }
    let mut mlmd = json!({ "id": n.id, "type": n.type_name, "properties": properties });
    if let Some(name) = &n.name {
        mlmd["name"] = json!(truncate(name));
    }
    if let Some(uri) = &n.uri {
        mlmd["uri"] = json!(truncate(uri));
    }
    if let Some(state) = n.state {
        mlmd["state"] = json!(state);
    }
    spec.properties = json!({ "mlmd": mlmd });
    spec.description = n.name.as_deref().map(truncate).map(str::to_owned);
    spec.tags.insert("mlmd".to_owned());
    Ok(spec)
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_MIRRORED_STRING {
        return s;
    }
    let mut end = MAX_MIRRORED_STRING;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An MLMD refusal as a refused command; a store failure inside MLMD as a store failure.
fn refusal(e: metamesh_mlmd::MlmdError) -> Fail {
    use metamesh_core::ErrorCode;
    use metamesh_mlmd::Code;
    let code = match e.code {
        Code::InvalidArgument => ErrorCode::InvalidArgument,
        Code::Unimplemented => ErrorCode::Unimplemented,
        Code::NotFound => ErrorCode::NotFound,
        Code::AlreadyExists => ErrorCode::AlreadyExists,
        Code::FailedPrecondition => ErrorCode::FailedPrecondition,
        Code::OutOfRange => ErrorCode::OutOfRange,
        Code::Aborted => ErrorCode::Aborted,
        Code::Internal => return Fail::Store(StoreError::Corrupt(format!("mlmd: {}", e.message))),
    };
    Fail::Command(CommandError::Mlmd { code, message: e.message })
}
