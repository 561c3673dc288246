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
//! It also holds what a lineage answer says of each local entity beyond its URN — its current
//! version's type, status and tombstone flag ([`NodeDetails`]) — so that an expansion reads no
//! SQL at all. Invariant: a node's details equal those of its entity's live version after every
//! committed apply; a node without details has no entity on this shard (an edge end of another
//! tenant), or is one whose details the index does not know, which readers then take from
//! SQLite.
//!
//! Memory (W8 in docs/benchmarks.md: a node holds a million entities and a million and a half
//! live edges): nodes and edges are integers end to end. A node is 24 bytes (its name in one
//! shared arena, its tenant and its details indexes into small interned sets), found through a
//! table of `u32`s; an edge is a 72-byte record in one dense vector, found by id through another
//! table of `u32`s; a node's edges in each direction are a list threaded through the records
//! (the node holds the first slot, each record the next), so adjacency costs 8 bytes a node and
//! 8 an edge.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use indexmap::IndexSet;

use metamesh_core::{Direction, Edge, EdgeKind, EntityUrn, Kind, NodeDetails, TenantId, Urn};

/// A change to the live edge set made by one apply, recorded by the handlers and applied to the
/// index once the transaction has committed.
#[derive(Debug)]
pub(crate) enum Delta {
    Added(i64, Box<Edge>),
    Removed(Vec<i64>),
    /// A local entity got a new live version with these details.
    Details(Box<(EntityUrn, NodeDetails)>),
    /// A local entity's live version is now its tombstone (same type and status).
    Deleted(EntityUrn),
}

/// One node, 24 bytes: its name is `names[start..start + len]` (names are at most
/// `MAX_NAME_BYTES`, 1 KiB; the arena offset is 40 bits, a terabyte of names).
struct Node {
    start_lo: u32,
    start_hi: u8,
    kind: Kind,
    len: u16,
    tenant: u32,
    /// Index into `Graph::details`, `NIL` for none.
    details: u32,
    /// The first edge slot of its outgoing and incoming lists, `NIL` for none.
    first: [u32; 2],
}

impl Node {
    fn start(&self) -> usize {
        (self.start_hi as usize) << 32 | self.start_lo as usize
    }
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
    &names[n.start()..n.start() + n.len as usize]
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
    /// Nodes' details, interned: types and statuses are few and shared by many entities.
    details: IndexSet<NodeDetails>,
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
        self.nodes.push(Node {
            start_lo: start as u32,
            start_hi: (start >> 32) as u8,
            kind: urn.kind(),
            len: urn.name().len() as u16,
            tenant,
            details: NIL,
            first: [NIL; 2],
        });
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
                Delta::Details(d) => {
                    let (urn, details) = *d;
                    self.set_details(&urn, details);
                }
                Delta::Deleted(urn) => {
                    let details = self.details(&urn).map(|d| NodeDetails { deleted: true, ..d.clone() });
                    match details {
                        Some(d) => self.set_details(&urn, d),
                        // Not known here: readers take it from SQLite.
                        None => self.forget_details(&urn),
                    }
                }
            }
        }
    }

    /// Sets a local entity's details (its node is created if the graph has not seen it).
    pub fn set_details(&mut self, urn: &EntityUrn, details: NodeDetails) {
        let n = self.node(urn);
        let d = match self.details.get_index_of(&details) {
            Some(d) => d as u32,
            None => self.details.insert_full(details).0 as u32,
        };
        self.nodes[n as usize].details = d;
    }

    fn forget_details(&mut self, urn: &EntityUrn) {
        if let Some(n) = self.find(urn) {
            self.nodes[n as usize].details = NIL;
        }
    }

    /// A node's details, if the index knows them (see the module's invariant).
    pub fn details(&self, urn: &EntityUrn) -> Option<&NodeDetails> {
        let n = &self.nodes[self.find(urn)? as usize];
        self.details.get_index(n.details as usize)
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_node_is_24_bytes() {
        assert_eq!(std::mem::size_of::<super::Node>(), 24);
    }
}
