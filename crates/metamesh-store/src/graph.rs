//! The live lineage graph, held in memory.
//!
//! Lineage is the query metamesh must answer fastest, and the frontier step (every edge of a
//! set of nodes) is its inner loop. In SQLite that step costs about 5 ms for a 1,000-node
//! frontier on this class of machine however the query is written (measured: 1,000 URN lookups
//! plus ~3,000 index probes and row reads), so current-state frontiers are answered from this
//! index instead: adjacency lists of live edges, keyed by node. As-of reads still go to SQLite,
//! which keeps the whole history.
//!
//! Invariant: the index equals `SELECT … FROM edges WHERE until_rev IS NULL` after every
//! committed apply. It is loaded when the store opens, and changed only by the deltas of an
//! apply that committed (a refused or failed apply leaves it alone). A property test compares
//! it with the SQL path.

use std::collections::HashMap;

use indexmap::IndexSet;
use smallvec::SmallVec;

use metamesh_core::{Direction, Edge, EdgeKind, EntityUrn, Urn};

/// A change to the live edge set made by one apply, recorded by the handlers and applied to the
/// index once the transaction has committed.
#[derive(Debug)]
pub(crate) enum Delta {
    Added(i64, Box<Edge>),
    Removed(Vec<i64>),
}

/// One live edge, with its ends as node indexes: 56 bytes, as a million-entity graph holds
/// one and a half million of them (W8 in docs/benchmarks.md).
struct Rec {
    src: u32,
    dst: u32,
    /// Index into `Graph::principals`.
    created_by: u32,
    kind: EdgeKind,
    /// Version pins, `NO_VERSION` for none.
    src_version: u64,
    dst_version: u64,
    revision: u64,
    created_at_ms: i64,
    /// Column ends and the transformation, which few edges have.
    extra: Option<Box<Extra>>,
}

struct Extra {
    columns: Option<(String, String)>,
    transformation: Option<Box<str>>,
}

/// A version pin's "none" (versions start at 1 and never reach it).
const NO_VERSION: u64 = u64::MAX;

fn pin(version: Option<u64>) -> u64 {
    version.unwrap_or(NO_VERSION)
}

fn unpin(version: u64) -> Option<u64> {
    (version != NO_VERSION).then_some(version)
}

/// A node's edge ids in one direction: most nodes have one or two, kept inline.
type Adjacent = SmallVec<[i64; 2]>;

#[derive(Default)]
pub(crate) struct Graph {
    /// Every node's URN, once: its position is the node's index (an `IndexSet` keeps the URN
    /// a single time, where a map plus a vector kept it twice — about 130 bytes a node).
    urns: IndexSet<EntityUrn>,
    out: Vec<Adjacent>,
    inn: Vec<Adjacent>,
    edges: HashMap<i64, Rec>,
    /// Principals are few and repeated on every edge: one copy each, edges hold the index.
    principals: IndexSet<Box<str>>,
}

impl Graph {
    fn node(&mut self, urn: &EntityUrn) -> u32 {
        if let Some(n) = self.urns.get_index_of(urn) {
            return n as u32;
        }
        let (n, _) = self.urns.insert_full(urn.clone());
        let n = n as u32;
        self.out.push(Adjacent::new());
        self.inn.push(Adjacent::new());
        n
    }

    pub fn insert(&mut self, id: i64, e: Edge) {
        let src = self.node(&e.from.entity);
        let dst = self.node(&e.to.entity);
        let created_by = match self.principals.get_index_of(e.created_by.as_str()) {
            Some(i) => i as u32,
            None => self.principals.insert_full(e.created_by.into_boxed_str()).0 as u32,
        };
        let extra = match (e.from_column, e.to_column, e.transformation) {
            (None, None, None) => None,
            (from, to, transformation) => Some(Box::new(Extra {
                columns: from.zip(to),
                transformation: transformation.map(String::into_boxed_str),
            })),
        };
        let rec = Rec {
            src,
            dst,
            created_by,
            kind: e.kind,
            src_version: pin(e.from.version),
            dst_version: pin(e.to.version),
            revision: e.revision,
            created_at_ms: e.created_at_ms,
            extra,
        };
        if self.edges.insert(id, rec).is_none() {
            self.out[src as usize].push(id);
            self.inn[dst as usize].push(id);
        }
    }

    fn remove(&mut self, id: i64) {
        if let Some(rec) = self.edges.remove(&id) {
            self.out[rec.src as usize].retain(|x| *x != id);
            self.inn[rec.dst as usize].retain(|x| *x != id);
        }
    }

    pub fn apply(&mut self, deltas: Vec<Delta>) {
        for d in deltas {
            match d {
                Delta::Added(id, e) => self.insert(id, *e),
                Delta::Removed(ids) => ids.into_iter().for_each(|id| self.remove(id)),
            }
        }
    }

    /// Live edges touching the frontier, once each, by id.
    pub fn edges_of(&self, frontier: &[EntityUrn], direction: Direction, kinds: &[EdgeKind]) -> Vec<(i64, Edge)> {
        let mut ids = Vec::new();
        for urn in frontier {
            let Some(n) = self.urns.get_index_of(urn) else { continue };
            if direction != Direction::Upstream {
                ids.extend_from_slice(&self.out[n]);
            }
            if direction != Direction::Downstream {
                ids.extend_from_slice(&self.inn[n]);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| {
                let r = self.edges.get(&id)?;
                if !kinds.is_empty() && !kinds.contains(&r.kind) {
                    return None;
                }
                Some((id, self.edge(r)))
            })
            .collect()
    }

    fn edge(&self, r: &Rec) -> Edge {
        let (columns, transformation) = match r.extra.as_deref() {
            Some(x) => (x.columns.clone(), x.transformation.as_deref().map(str::to_owned)),
            None => (None, None),
        };
        let (from_column, to_column) = columns.unzip();
        Edge {
            from: Urn { entity: self.urns[r.src as usize].clone(), version: unpin(r.src_version) },
            to: Urn { entity: self.urns[r.dst as usize].clone(), version: unpin(r.dst_version) },
            kind: r.kind,
            from_column,
            to_column,
            transformation,
            revision: r.revision,
            created_at_ms: r.created_at_ms,
            created_by: self.principals.get_index(r.created_by as usize).map(|p| p.to_string()).unwrap_or_default(),
        }
    }

    pub fn len(&self) -> usize {
        self.edges.len()
    }
}
