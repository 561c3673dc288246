//! Rows: the three node kinds and type kinds behind one interface each, and the row-level
//! reads and writes both the write and the read side use.

use std::collections::BTreeMap;

use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use crate::pb;
use crate::{MlmdError, Result};

/// The three MLMD node kinds (and their type kinds): the `kind` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Artifact = 0,
    Execution = 1,
    Context = 2,
}

impl NodeKind {
    pub fn filter_kind(self) -> metamesh_mlmd_filter::NodeKind {
        match self {
            NodeKind::Artifact => metamesh_mlmd_filter::NodeKind::Artifact,
            NodeKind::Execution => metamesh_mlmd_filter::NodeKind::Execution,
            NodeKind::Context => metamesh_mlmd_filter::NodeKind::Context,
        }
    }

    /// `artifact`, `execution` or `context`: for messages, and the id space of the kind's nodes
    /// (`mlmd_seq.space`).
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Artifact => "artifact",
            NodeKind::Execution => "execution",
            NodeKind::Context => "context",
        }
    }
}

/// A property map of a node.
pub type Props = BTreeMap<String, pb::Value>;

/// Artifact, Execution and Context alike.
pub trait Node: Message + Default + Clone + PartialEq + 'static {
    const KIND: NodeKind;
    fn id(&self) -> Option<i64>;
    fn set_id(&mut self, id: i64);
    fn type_id(&self) -> Option<i64>;
    fn set_type_id(&mut self, id: i64);
    fn set_type_name(&mut self, name: Option<String>);
    fn name(&self) -> Option<&str>;
    fn external_id(&self) -> Option<&str>;
    fn properties(&self) -> &Props;
    fn custom_properties(&self) -> &Props;
    fn properties_mut(&mut self) -> &mut Props;
    fn custom_properties_mut(&mut self) -> &mut Props;
    fn create_time(&self) -> Option<i64>;
    fn update_time(&self) -> Option<i64>;
    fn set_times(&mut self, create: i64, update: i64);
    /// Artifacts only.
    fn uri(&self) -> Option<&str> {
        None
    }
    /// Artifact.state or Execution.last_known_state.
    fn state(&self) -> Option<i32> {
        None
    }
    /// Artifacts: an unset uri becomes "" (what MLMD stores).
    fn fill_uri(&mut self) {}
}

macro_rules! node_common {
    ($kind:expr) => {
        const KIND: NodeKind = $kind;
        fn id(&self) -> Option<i64> {
            self.id
        }
        fn set_id(&mut self, id: i64) {
            self.id = Some(id);
        }
        fn type_id(&self) -> Option<i64> {
            self.type_id
        }
        fn set_type_id(&mut self, id: i64) {
            self.type_id = Some(id);
        }
        fn set_type_name(&mut self, name: Option<String>) {
            self.r#type = name;
        }
        fn name(&self) -> Option<&str> {
            self.name.as_deref()
        }
        fn external_id(&self) -> Option<&str> {
            self.external_id.as_deref()
        }
        fn properties(&self) -> &Props {
            &self.properties
        }
        fn custom_properties(&self) -> &Props {
            &self.custom_properties
        }
        fn properties_mut(&mut self) -> &mut Props {
            &mut self.properties
        }
        fn custom_properties_mut(&mut self) -> &mut Props {
            &mut self.custom_properties
        }
        fn create_time(&self) -> Option<i64> {
            self.create_time_since_epoch
        }
        fn update_time(&self) -> Option<i64> {
            self.last_update_time_since_epoch
        }
        fn set_times(&mut self, create: i64, update: i64) {
            self.create_time_since_epoch = Some(create);
            self.last_update_time_since_epoch = Some(update);
        }
    };
}

impl Node for pb::Artifact {
    node_common!(NodeKind::Artifact);
    fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }
    fn state(&self) -> Option<i32> {
        self.state
    }
    fn fill_uri(&mut self) {
        self.uri.get_or_insert_with(String::new);
    }
}

impl Node for pb::Execution {
    node_common!(NodeKind::Execution);
    fn state(&self) -> Option<i32> {
        self.last_known_state
    }
}

impl Node for pb::Context {
    node_common!(NodeKind::Context);
}

/// ArtifactType, ExecutionType and ContextType alike.
pub trait Type: Message + Default + Clone + PartialEq + 'static {
    const KIND: NodeKind;
    fn id(&self) -> Option<i64>;
    fn set_id(&mut self, id: i64);
    fn name(&self) -> Option<&str>;
    fn version(&self) -> Option<&str>;
    fn external_id(&self) -> Option<&str>;
    fn set_external_id(&mut self, id: Option<String>);
    fn properties(&self) -> &BTreeMap<String, i32>;
    fn properties_mut(&mut self) -> &mut BTreeMap<String, i32>;
    fn base_type(&self) -> Option<i32>;
    fn set_base_type(&mut self, b: Option<i32>);
    fn clear_version(&mut self);
}

macro_rules! type_impl {
    ($t:ty, $kind:expr) => {
        impl Type for $t {
            const KIND: NodeKind = $kind;
            fn id(&self) -> Option<i64> {
                self.id
            }
            fn set_id(&mut self, id: i64) {
                self.id = Some(id);
            }
            fn name(&self) -> Option<&str> {
                self.name.as_deref()
            }
            fn version(&self) -> Option<&str> {
                self.version.as_deref()
            }
            fn external_id(&self) -> Option<&str> {
                self.external_id.as_deref()
            }
            fn set_external_id(&mut self, id: Option<String>) {
                self.external_id = id;
            }
            fn properties(&self) -> &BTreeMap<String, i32> {
                &self.properties
            }
            fn properties_mut(&mut self) -> &mut BTreeMap<String, i32> {
                &mut self.properties
            }
            fn base_type(&self) -> Option<i32> {
                self.base_type
            }
            fn set_base_type(&mut self, b: Option<i32>) {
                self.base_type = b;
            }
            fn clear_version(&mut self) {
                self.version = None;
            }
        }
    };
}

type_impl!(pb::ArtifactType, NodeKind::Artifact);
type_impl!(pb::ExecutionType, NodeKind::Execution);
type_impl!(pb::ContextType, NodeKind::Context);

/// The next id of `space` in `tenant` (and reserves it).
pub fn next_id(conn: &Connection, tenant: &str, space: &str) -> Result<i64> {
    let next: Option<i64> = conn
        .prepare_cached("SELECT next FROM mlmd_seq WHERE tenant = ?1 AND space = ?2")?
        .query_row(params![tenant, space], |r| r.get(0))
        .optional()?;
    let id = match next {
        Some(id) => id,
        None if space == "type" => seed_system_types(conn, tenant)?,
        None => 1,
    };
    conn.prepare_cached(
        "INSERT INTO mlmd_seq (tenant, space, next) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant, space) DO UPDATE SET next = excluded.next",
    )?
    .execute(params![tenant, space, id + 1])?;
    Ok(id)
}

/// MLMD's built-in types, which every store starts with (ids 1 to 9, in this order): the base
/// types `base_type` refers to. Type listings leave them out; lookups by name or id find them.
const SYSTEM_TYPES: [(NodeKind, &str); 9] = [
    (NodeKind::Artifact, "mlmd.Dataset"),
    (NodeKind::Artifact, "mlmd.Model"),
    (NodeKind::Artifact, "mlmd.Metrics"),
    (NodeKind::Artifact, "mlmd.Statistics"),
    (NodeKind::Execution, "mlmd.Train"),
    (NodeKind::Execution, "mlmd.Transform"),
    (NodeKind::Execution, "mlmd.Process"),
    (NodeKind::Execution, "mlmd.Evaluate"),
    (NodeKind::Execution, "mlmd.Deploy"),
];

/// Writes the built-in types of a tenant's first type; returns the first id after them.
fn seed_system_types(conn: &Connection, tenant: &str) -> Result<i64> {
    for (i, (kind, name)) in SYSTEM_TYPES.iter().enumerate() {
        let id = i as i64 + 1;
        let proto = match kind {
            NodeKind::Artifact => {
                pb::ArtifactType { id: Some(id), name: Some((*name).into()), ..Default::default() }.encode_to_vec()
            }
            _ => pb::ExecutionType { id: Some(id), name: Some((*name).into()), ..Default::default() }.encode_to_vec(),
        };
        conn.prepare_cached(
            "INSERT INTO mlmd_type (tenant, id, kind, name, version, external_id, proto) VALUES (?1, ?2, ?3, ?4, '', NULL, ?5)",
        )?
        .execute(params![tenant, id, *kind as i64, name, proto])?;
    }
    Ok(SYSTEM_TYPES.len() as i64 + 1)
}

/// Type `id` of kind `T`, if it exists and is of that kind.
pub fn get_type<T: Type>(conn: &Connection, tenant: &str, id: i64) -> Result<Option<T>> {
    let row: Option<Vec<u8>> = conn
        .prepare_cached("SELECT proto FROM mlmd_type WHERE tenant = ?1 AND id = ?2 AND kind = ?3")?
        .query_row(params![tenant, id, T::KIND as i64], |r| r.get(0))
        .optional()?;
    Ok(row.map(|b| T::decode(b.as_slice())).transpose()?)
}

/// The type of kind `T` named `name` at `version` ('' = no version).
pub fn find_type<T: Type>(conn: &Connection, tenant: &str, name: &str, version: &str) -> Result<Option<T>> {
    let row: Option<Vec<u8>> = conn
        .prepare_cached("SELECT proto FROM mlmd_type WHERE tenant = ?1 AND kind = ?2 AND name = ?3 AND version = ?4")?
        .query_row(params![tenant, T::KIND as i64, name, version], |r| r.get(0))
        .optional()?;
    Ok(row.map(|b| T::decode(b.as_slice())).transpose()?)
}

/// Writes type `t` (insert or replace); its id must be set.
pub fn save_type<T: Type>(conn: &Connection, tenant: &str, t: &T) -> Result<()> {
    let id = t.id().ok_or_else(|| MlmdError::new(crate::Code::Internal, "type saved without an id"))?;
    conn.prepare_cached(
        "INSERT INTO mlmd_type (tenant, id, kind, name, version, external_id, proto) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant, id) DO UPDATE SET external_id = excluded.external_id, proto = excluded.proto",
    )?
    .execute(params![
        tenant,
        id,
        T::KIND as i64,
        t.name().unwrap_or_default(),
        t.version().unwrap_or_default(),
        t.external_id().filter(|e| !e.is_empty()),
        t.encode_to_vec()
    ])
    .map_err(|e| unique_violation(e, || format!("a type with external_id `{}` already exists", t.external_id().unwrap_or_default())))?;
    Ok(())
}

/// Node `id` of kind `N`.
pub fn get_node<N: Node>(conn: &Connection, tenant: &str, id: i64) -> Result<Option<N>> {
    let row: Option<Vec<u8>> = conn
        .prepare_cached("SELECT proto FROM mlmd_node WHERE tenant = ?1 AND kind = ?2 AND id = ?3")?
        .query_row(params![tenant, N::KIND as i64, id], |r| r.get(0))
        .optional()?;
    Ok(row.map(|b| N::decode(b.as_slice())).transpose()?)
}

/// Whether node `id` of `kind` exists.
pub fn node_exists(conn: &Connection, tenant: &str, kind: NodeKind, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM mlmd_node WHERE tenant = ?1 AND kind = ?2 AND id = ?3")?
        .query_row(params![tenant, kind as i64, id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The node of kind `N` with type `type_id` and name `name`.
pub fn find_node<N: Node>(conn: &Connection, tenant: &str, type_id: i64, name: &str) -> Result<Option<N>> {
    let row: Option<Vec<u8>> = conn
        .prepare_cached("SELECT proto FROM mlmd_node WHERE tenant = ?1 AND kind = ?2 AND type_id = ?3 AND name = ?4")?
        .query_row(params![tenant, N::KIND as i64, type_id, name], |r| r.get(0))
        .optional()?;
    Ok(row.map(|b| N::decode(b.as_slice())).transpose()?)
}

/// The node of kind `N` with external id `external_id`.
pub fn find_node_by_external_id<N: Node>(conn: &Connection, tenant: &str, external_id: &str) -> Result<Option<N>> {
    let row: Option<Vec<u8>> = conn
        .prepare_cached("SELECT proto FROM mlmd_node WHERE tenant = ?1 AND kind = ?2 AND external_id = ?3")?
        .query_row(params![tenant, N::KIND as i64, external_id], |r| r.get(0))
        .optional()?;
    Ok(row.map(|b| N::decode(b.as_slice())).transpose()?)
}

/// Writes node `n` (id, type id and times set) and its properties, replacing what was there.
pub fn save_node<N: Node>(conn: &Connection, tenant: &str, n: &N) -> Result<()> {
    let id = n.id().ok_or_else(|| MlmdError::new(crate::Code::Internal, "node saved without an id"))?;
    let kind = N::KIND as i64;
    conn.prepare_cached(
        "INSERT INTO mlmd_node (tenant, kind, id, type_id, name, uri, state, external_id, create_ms, update_ms, proto)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (tenant, kind, id) DO UPDATE SET name = excluded.name, uri = excluded.uri, state = excluded.state,
           external_id = excluded.external_id, update_ms = excluded.update_ms, proto = excluded.proto",
    )?
    .execute(params![
        tenant,
        kind,
        id,
        n.type_id().unwrap_or_default(),
        n.name().filter(|s| !s.is_empty()),
        n.uri(),
        n.state(),
        n.external_id().filter(|s| !s.is_empty()),
        n.create_time().unwrap_or_default(),
        n.update_time().unwrap_or_default(),
        n.encode_to_vec(),
    ])
    .map_err(|e| {
        unique_violation(e, || {
            let which = N::KIND.name();
            match n.external_id().filter(|s| !s.is_empty()) {
                Some(x) => {
                    format!("{which} with name `{}` or external_id `{x}` already exists", n.name().unwrap_or(""))
                }
                None => format!("{which} with name `{}` already exists in its type", n.name().unwrap_or("")),
            }
        })
    })?;
    conn.prepare_cached("DELETE FROM mlmd_property WHERE tenant = ?1 AND kind = ?2 AND node_id = ?3")?
        .execute(params![tenant, kind, id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO mlmd_property (tenant, kind, node_id, is_custom, name, int_value, double_value, string_value, bool_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (custom, props) in [(0, n.properties()), (1, n.custom_properties())] {
        for (name, value) in props {
            use pb::value::Value as V;
            let (i, d, s, b) = match &value.value {
                Some(V::IntValue(v)) => (Some(*v), None, None, None),
                Some(V::DoubleValue(v)) => (None, Some(*v), None, None),
                Some(V::StringValue(v)) => (None, None, Some(v.as_str()), None),
                Some(V::BoolValue(v)) => (None, None, None, Some(*v as i64)),
                _ => (None, None, None, None),
            };
            insert.execute(params![tenant, kind, id, custom, name, i, d, s, b])?;
        }
    }
    Ok(())
}

/// A UNIQUE constraint failure as ALREADY_EXISTS with `message`; any other error as it is.
pub fn unique_violation(e: rusqlite::Error, message: impl FnOnce() -> String) -> MlmdError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => {
            MlmdError::exists(message())
        }
        rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            MlmdError::exists(message())
        }
        _ => e.into(),
    }
}

/// The top-level fields of an encoded message, in order: each field's number and its bytes as
/// encoded (key included), unknown fields too.
pub fn top_level_fields(bytes: &[u8]) -> Result<Vec<(u32, &[u8])>> {
    use prost::encoding::{decode_key, skip_field, DecodeContext};
    let mut buf = bytes;
    let mut out = Vec::new();
    while !buf.is_empty() {
        let start = bytes.len() - buf.len();
        let (number, wire) = decode_key(&mut buf)?;
        skip_field(wire, number, &mut buf, DecodeContext::default())?;
        out.push((number, &bytes[start..bytes.len() - buf.len()]));
    }
    Ok(out)
}

/// Decodes a request message.
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| MlmdError::invalid(format!("bad request message: {e}")))
}
