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
//!
//! Memory (W8 in docs/benchmarks.md: a node holds a million entities and a million and a half
//! live edges): nodes and edges are integers end to end. A node is 16 bytes (its name in one
//! shared arena, its tenant an index), found through a table of `u32`s; an edge is a 64-byte
//! record in one dense vector, found by id through another table of `u32`s; a node's edges in
//! each direction are a list threaded through the records (the node holds the first slot, each
//! record the next), so adjacency costs 8 bytes a node and 8 an edge.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use indexmap::IndexSet;

use metamesh_core::{Direction, Edge, EdgeKind, EntityUrn, Kind, TenantId, Urn};

/// A change to the live edge set made by one apply, recorded by the handlers and applied to the
/// index once the transaction has committed.
#[derive(Debug)]
pub(crate) enum Delta {
    Added(i64, Box<Edge>),
    Removed(Vec<i64>),
}

/// One node, 24 bytes: its name is `names[start..start + len]` (names are at most
/// `MAX_NAME_BYTES`, 1 KiB).
struct Node {
    start: u64,
    tenant: u32,
    len: u16,
    kind: Kind,
    /// The first edge slot of its outgoing and incoming lists, `NIL` for none.
    first: [u32; 2],
}

/// The end of an adjacency list.
const NIL: u32 = u32::MAX;

/// Which of a node's two lists: edges leaving it, or edges reaching it.
#[derive(Clone, Copy)]
enum Side {
    Out = 0,
    In = 1,
}

/// One live edge, 72 bytes, with its ends as node indexes.
struct Rec {
    id: i64,
    src: u32,
    dst: u32,
    /// The next slot in `src`'s outgoing list and in `dst`'s incoming list.
    next: [u32; 2],
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

/// A node's name in the arena.
fn name_of<'a>(names: &'a str, n: &Node) -> &'a str {
    &names[n.start as usize..n.start as usize + n.len as usize]
}

/// Where a node sits in `Graph::node_index`.
fn node_hash(hasher: &RandomState, tenant: u32, kind: Kind, name: &str) -> u64 {
    hasher.hash_one((tenant, kind, name))
}

#[derive(Default)]
pub(crate) struct Graph {
    hasher: RandomState,
    tenants: IndexSet<TenantId>,
    /// Every node's name, end to end.
    names: String,
    nodes: Vec<Node>,
    /// Node indexes, hashed by (tenant, kind, name).
    node_index: HashTable<u32>,
    /// The live edges, dense: a removal moves the last record into the freed slot.
    recs: Vec<Rec>,
    /// Edge slots, hashed by edge id.
    edge_index: HashTable<u32>,
    /// Principals are few and repeated on every edge: one copy each, edges hold the index.
    principals: IndexSet<Box<str>>,
}

impl Graph {
    /// The node's index, if the graph has seen it.
    fn find(&self, urn: &EntityUrn) -> Option<u32> {
        let tenant = self.tenants.get_index_of(urn.tenant())? as u32;
        let hash = node_hash(&self.hasher, tenant, urn.kind(), urn.name());
        let (nodes, names) = (&self.nodes, &self.names);
        self.node_index
            .find(hash, |&i| {
                let n = &nodes[i as usize];
                n.tenant == tenant && n.kind == urn.kind() && name_of(names, n) == urn.name()
            })
            .copied()
    }

    fn node(&mut self, urn: &EntityUrn) -> u32 {
        if let Some(n) = self.find(urn) {
            return n;
        }
        let tenant = match self.tenants.get_index_of(urn.tenant()) {
            Some(t) => t as u32,
            None => self.tenants.insert_full(urn.tenant().clone()).0 as u32,
        };
        let start = self.names.len() as u64;
        self.names.push_str(urn.name());
        let n = self.nodes.len() as u32;
        self.nodes.push(Node { start, len: urn.name().len() as u16, tenant, kind: urn.kind(), first: [NIL; 2] });
        let hash = node_hash(&self.hasher, tenant, urn.kind(), urn.name());
        let (nodes, names, hasher) = (&self.nodes, &self.names, &self.hasher);
        self.node_index.insert_unique(hash, n, |&i| {
            let n = &nodes[i as usize];
            node_hash(hasher, n.tenant, n.kind, name_of(names, n))
        });
        n
    }

    /// The node at one end of an edge record, for a side's list.
    fn end(r: &Rec, side: Side) -> u32 {
        match side {
            Side::Out => r.src,
            Side::In => r.dst,
        }
    }

    /// The slots of a node's list on one side.
    fn list(&self, node: u32, side: Side) -> impl Iterator<Item = u32> + '_ {
        let first = self.nodes[node as usize].first[side as usize];
        std::iter::successors((first != NIL).then_some(first), move |&s| {
            let next = self.recs[s as usize].next[side as usize];
            (next != NIL).then_some(next)
        })
    }

    /// Points the link that holds `from` in `node`'s list on `side` at `to` instead.
    fn relink(&mut self, node: u32, side: Side, from: u32, to: u32) {
        let head = &mut self.nodes[node as usize].first[side as usize];
        if *head == from {
            *head = to;
            return;
        }
        let mut at = *head;
        while at != NIL {
            let next = &mut self.recs[at as usize].next[side as usize];
            if *next == from {
                *next = to;
                return;
            }
            at = *next;
        }
    }

    pub fn insert(&mut self, id: i64, e: Edge) {
        // An edge id names one row: inserting it again replaces the record.
        self.remove(id);
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
        let slot = self.recs.len() as u32;
        let next =
            [self.nodes[src as usize].first[Side::Out as usize], self.nodes[dst as usize].first[Side::In as usize]];
        self.nodes[src as usize].first[Side::Out as usize] = slot;
        self.nodes[dst as usize].first[Side::In as usize] = slot;
        self.recs.push(Rec {
            id,
            src,
            dst,
            next,
            created_by,
            kind: e.kind,
            src_version: pin(e.from.version),
            dst_version: pin(e.to.version),
            revision: e.revision,
            created_at_ms: e.created_at_ms,
            extra,
        });
        let (recs, hasher) = (&self.recs, &self.hasher);
        self.edge_index.insert_unique(hasher.hash_one(id), slot, |&s| hasher.hash_one(recs[s as usize].id));
    }

    fn remove(&mut self, id: i64) {
        let recs = &self.recs;
        let Ok(entry) = self.edge_index.find_entry(self.hasher.hash_one(id), |&s| recs[s as usize].id == id) else {
            return;
        };
        let (slot, _) = entry.remove();
        for side in [Side::Out, Side::In] {
            let (node, next) =
                (Self::end(&self.recs[slot as usize], side), self.recs[slot as usize].next[side as usize]);
            self.relink(node, side, slot, next);
        }
        self.recs.swap_remove(slot as usize);
        // The last record moved into `slot`: point its index entry and the links to it there.
        let moved = self.recs.len() as u32;
        if slot != moved {
            let moved_id = self.recs[slot as usize].id;
            if let Some(s) = self.edge_index.find_mut(self.hasher.hash_one(moved_id), |&s| s == moved) {
                *s = slot;
            }
            for side in [Side::Out, Side::In] {
                let node = Self::end(&self.recs[slot as usize], side);
                self.relink(node, side, moved, slot);
            }
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

    /// Live edges touching the frontier, once each, in id order.
    pub fn edges_of(&self, frontier: &[EntityUrn], direction: Direction, kinds: &[EdgeKind]) -> Vec<(i64, Edge)> {
        let mut slots = Vec::new();
        for urn in frontier {
            let Some(n) = self.find(urn) else { continue };
            if direction != Direction::Upstream {
                slots.extend(self.list(n, Side::Out));
            }
            if direction != Direction::Downstream {
                slots.extend(self.list(n, Side::In));
            }
        }
        slots.sort_unstable();
        slots.dedup();
        let mut edges: Vec<(i64, Edge)> = slots
            .into_iter()
            .filter_map(|s| {
                let r = &self.recs[s as usize];
                if !kinds.is_empty() && !kinds.contains(&r.kind) {
                    return None;
                }
                Some((r.id, self.edge(r)?))
            })
            .collect();
        edges.sort_unstable_by_key(|(id, _)| *id);
        edges
    }

    fn urn(&self, n: u32, version: u64) -> Option<Urn> {
        let node = &self.nodes[n as usize];
        let tenant = self.tenants.get_index(node.tenant as usize)?.clone();
        // The parts came from a valid URN, so this cannot fail; if it did, the edge is left out
        // rather than the read failing.
        let entity = EntityUrn::new(tenant, node.kind, name_of(&self.names, node)).ok()?;
        Some(Urn { entity, version: unpin(version) })
    }

    fn edge(&self, r: &Rec) -> Option<Edge> {
        let (columns, transformation) = match r.extra.as_deref() {
            Some(x) => (x.columns.clone(), x.transformation.as_deref().map(str::to_owned)),
            None => (None, None),
        };
        let (from_column, to_column) = columns.unzip();
        Some(Edge {
            from: self.urn(r.src, r.src_version)?,
            to: self.urn(r.dst, r.dst_version)?,
            kind: r.kind,
            from_column,
            to_column,
            transformation,
            revision: r.revision,
            created_at_ms: r.created_at_ms,
            created_by: self.principals.get_index(r.created_by as usize).map(|p| p.to_string()).unwrap_or_default(),
        })
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }
}
