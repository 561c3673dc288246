//! RFC 6962 Merkle tree hashing over record hashes, computed in a stream.
//!
//! Leaf `i` of the tree is the hash of record `i + 1`; the tree hashes are RFC 6962 §2.1's:
//! `leaf = SHA-256(0x00 || record_hash)`, `node = SHA-256(0x01 || left || right)`, and the root of
//! an empty tree is `SHA-256("")`. Inclusion and consistency proofs are checked with `ct-merkle`
//! (see `proof.rs` and `consistency.rs`), and tests check that [`Frontier`], [`inclusion_path`]
//! and [`ConsistencyBuilder`] agree with its in-memory tree, so the two implementations hold
//! each other honest.
//!
//! Which nodes a consistency proof holds is `ct-merkle`'s choice
//! ([`ct_merkle::indices_for_consistency_proof`]); this module only maps those nodes to the leaf
//! ranges they cover and hashes the ranges in one pass over the log.
//!
//! Nothing here keeps the tree: a [`Frontier`] holds one hash per set bit of the leaf count (the
//! roots of the perfect subtrees the leaves so far form, largest first), so verifying a log of
//! any length takes O(log n) memory and about two SHA-256 compressions per record.

use sha2::{Digest, Sha256};

use crate::Hash;

/// Root of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// `SHA-256(0x00 || record_hash)`.
pub fn leaf_hash(record_hash: &Hash) -> Hash {
    let mut block = [0u8; 33];
    block[1..].copy_from_slice(record_hash);
    Sha256::digest(block).into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut block = [0u8; 65];
    block[0] = 1;
    block[1..33].copy_from_slice(left);
    block[33..].copy_from_slice(right);
    Sha256::digest(block).into()
}

/// The right edge of a growing tree: enough to compute its root and keep appending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first; one per set bit of `size`.
    nodes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds a frontier from [`Frontier::to_bytes`]; `None` when the byte count does not fit
    /// `size`.
    pub fn from_parts(size: u64, bytes: &[u8]) -> Option<Frontier> {
        if bytes.len() != size.count_ones() as usize * 32 {
            return None;
        }
        let nodes = bytes.chunks_exact(32).map(|c| c.try_into().expect("chunks are 32 bytes")).collect();
        Some(Frontier { size, nodes })
    }

    /// The subtree roots concatenated (for caching next to a checkpoint).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.nodes.concat()
    }

    /// Number of leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the leaf for `record_hash`.
    pub fn push(&mut self, record_hash: &Hash) {
        let mut h = leaf_hash(record_hash);
        // Each trailing 1 bit of the old size is a perfect subtree of the same height as the
        // one being carried: merge them, like binary addition.
        let mut bits = self.size;
        while bits & 1 == 1 {
            let left = self.nodes.pop().expect("one node per set bit");
            h = node_hash(&left, &h);
            bits >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The RFC 6962 Merkle tree hash of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else { return EMPTY_ROOT };
        nodes.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// The leaf ranges `[start, end)` whose subtree hashes make up the inclusion path of leaf
/// `index` in a tree of `size` leaves, nearest sibling first (RFC 6962 §2.1.1, `PATH(m, D[n])`).
pub fn path_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    assert!(index < size, "leaf index out of range");
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0, size);
    // Walk down from the root, collecting the other half at each split; reverse at the end.
    while hi - lo > 1 {
        let k = largest_power_of_two_below(hi - lo);
        if index < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// The root hashes of disjoint leaf ranges, fed the leaves in order: one [`Frontier`] per
/// range, O(number of ranges) memory.
struct RangeRoots {
    /// `[start, end)` and the frontier of its leaves, in the caller's order.
    ranges: Vec<((u64, u64), Frontier)>,
    /// Indices into `ranges` by start; `cursor` is the first one not wholly behind the feed.
    order: Vec<usize>,
    cursor: usize,
}

impl RangeRoots {
    fn new(ranges: Vec<(u64, u64)>) -> RangeRoots {
        let ranges: Vec<_> = ranges.into_iter().map(|r| (r, Frontier::new())).collect();
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_by_key(|&i| ranges[i].0 .0);
        RangeRoots { ranges, order, cursor: 0 }
    }

    /// Feeds leaf `i` (leaves come in order); a leaf in no range is skipped.
    fn push(&mut self, i: u64, record_hash: &Hash) {
        while self.order.get(self.cursor).is_some_and(|&k| self.ranges[k].0 .1 <= i) {
            self.cursor += 1;
        }
        if let Some(&k) = self.order.get(self.cursor) {
            let ((start, _), frontier) = &mut self.ranges[k];
            if *start <= i {
                frontier.push(record_hash);
            }
        }
    }

    /// The roots, in the order the ranges were given.
    fn roots(&self) -> Vec<Hash> {
        self.ranges.iter().map(|(_, f)| f.root()).collect()
    }
}

/// The tree hash of the leaves read so far and, when `index` is among the first `size`, its
/// inclusion path: one pass over the record hashes in order, O(log n) memory.
pub struct PathBuilder {
    index: u64,
    size: u64,
    all: Frontier,
    /// The subtree hashes of the path, in path order.
    path: RangeRoots,
    leaf: Option<Hash>,
}

impl PathBuilder {
    /// A builder for the path of leaf `index` in the tree of the first `size` leaves.
    pub fn new(index: u64, size: u64) -> PathBuilder {
        PathBuilder { index, size, all: Frontier::new(), path: RangeRoots::new(path_ranges(index, size)), leaf: None }
    }

    /// Feeds the next record hash; leaves beyond `size` are ignored.
    pub fn push(&mut self, record_hash: &Hash) {
        let i = self.all.size();
        if i >= self.size {
            return;
        }
        self.all.push(record_hash);
        if i == self.index {
            self.leaf = Some(*record_hash);
        }
        self.path.push(i, record_hash);
    }

    /// Leaves fed so far (at most `size`).
    pub fn fed(&self) -> u64 {
        self.all.size()
    }

    /// `(record hash of leaf index, root, path)` once all `size` leaves were fed.
    pub fn finish(self) -> Option<(Hash, Hash, Vec<Hash>)> {
        if self.all.size() != self.size {
            return None;
        }
        Some((self.leaf?, self.all.root(), self.path.roots()))
    }
}

/// The largest tree size `ct-merkle` handles (its node indices are `u64`s, two per leaf).
pub const MAX_TREE_SIZE: u64 = u64::MAX / 2 + 1;

/// The leaf ranges `[start, end)` whose subtree hashes make up the RFC 6962 consistency proof
/// `PROOF(old_size, D[new_size])` (§2.1.2), in proof order.
///
/// The nodes are `ct-merkle`'s ([`ct_merkle::indices_for_consistency_proof`], which numbers the
/// nodes of a left-balanced tree as RFC 9420's array-based trees do); a node at level `k` with
/// index `x` covers the `2^k` leaves from `(x >> (k + 1)) << k`, cut at `new_size`.
///
/// # Panics
/// When `old_size` is 0, `old_size > new_size` or `new_size > MAX_TREE_SIZE`.
pub fn consistency_ranges(old_size: u64, new_size: u64) -> Vec<(u64, u64)> {
    assert!(old_size > 0 && old_size <= new_size && new_size <= MAX_TREE_SIZE, "tree sizes out of range");
    ct_merkle::indices_for_consistency_proof(old_size, new_size - old_size)
        .into_iter()
        .map(|x| {
            let level = x.trailing_ones();
            let start = x.checked_shr(level + 1).unwrap_or(0) << level;
            (start, start.saturating_add(1 << level).min(new_size))
        })
        .collect()
}

/// The roots of the trees of the first `old_size` and the first `new_size` leaves, and the
/// consistency proof between them: one pass over the record hashes in order, O(log n) memory.
pub struct ConsistencyBuilder {
    old_size: u64,
    new_size: u64,
    all: Frontier,
    old_root: Option<Hash>,
    proof: RangeRoots,
}

impl ConsistencyBuilder {
    /// A builder for the proof from `old_size` to `new_size` leaves.
    ///
    /// # Panics
    /// As [`consistency_ranges`]: `0 < old_size <= new_size <= MAX_TREE_SIZE` is the caller's
    /// to check.
    pub fn new(old_size: u64, new_size: u64) -> ConsistencyBuilder {
        ConsistencyBuilder {
            old_size,
            new_size,
            all: Frontier::new(),
            old_root: None,
            proof: RangeRoots::new(consistency_ranges(old_size, new_size)),
        }
    }

    /// Feeds the next record hash; leaves beyond `new_size` are ignored.
    pub fn push(&mut self, record_hash: &Hash) {
        let i = self.all.size();
        if i >= self.new_size {
            return;
        }
        self.all.push(record_hash);
        self.proof.push(i, record_hash);
        if i + 1 == self.old_size {
            self.old_root = Some(self.all.root());
        }
    }

    /// Leaves fed so far (at most `new_size`).
    pub fn fed(&self) -> u64 {
        self.all.size()
    }

    /// `(old root, new root, proof)` once all `new_size` leaves were fed.
    pub fn finish(self) -> Option<(Hash, Hash, Vec<Hash>)> {
        if self.all.size() != self.new_size {
            return None;
        }
        Some((self.old_root?, self.all.root(), self.proof.roots()))
    }
}

/// Convenience over [`PathBuilder`]: `(root, path)` of leaf `index` among `hashes`.
pub fn inclusion_path(hashes: &[Hash], index: u64) -> (Hash, Vec<Hash>) {
    let mut b = PathBuilder::new(index, hashes.len() as u64);
    hashes.iter().for_each(|h| b.push(h));
    let (_, root, path) = b.finish().expect("all leaves fed");
    (root, path)
}

#[cfg(test)]
mod tests {
    use ct_merkle::mem_backed_tree::MemoryBackedTree;

    use super::*;

    fn hashes(n: usize) -> Vec<Hash> {
        (0..n).map(|i| Sha256::digest((i as u64).to_be_bytes()).into()).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(Frontier::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn agrees_with_ct_merkle() {
        for n in 1..=70usize {
            let hs = hashes(n);
            let mut tree = MemoryBackedTree::<Sha256, Hash>::new();
            let mut frontier = Frontier::new();
            for h in &hs {
                tree.push(*h);
                frontier.push(h);
            }
            let root = tree.root();
            assert_eq!(frontier.root(), <[u8; 32]>::from(*root.as_bytes()), "root of {n} leaves");
            let again = Frontier::from_parts(frontier.size(), &frontier.to_bytes()).unwrap();
            assert_eq!(again, frontier);
            for m in 0..n {
                let (r, path) = inclusion_path(&hs, m as u64);
                assert_eq!(r, frontier.root());
                assert_eq!(path.concat(), tree.prove_inclusion(m).as_bytes(), "path of {m} in {n}");
            }
        }
    }

    #[test]
    fn consistency_proofs_agree_with_ct_merkle() {
        let hs = hashes(70);
        for new in 1..=70usize {
            let mut tree = MemoryBackedTree::<Sha256, Hash>::new();
            hs[..new].iter().for_each(|h| tree.push(*h));
            for old in 1..=new {
                let mut b = ConsistencyBuilder::new(old as u64, new as u64);
                hs.iter().for_each(|h| b.push(h));
                assert_eq!(b.fed(), new as u64);
                let (old_root, new_root, proof) = b.finish().unwrap();
                let mut f = Frontier::new();
                hs[..old].iter().for_each(|h| f.push(h));
                assert_eq!(old_root, f.root(), "old root {old} of {new}");
                assert_eq!(new_root, <[u8; 32]>::from(*tree.root().as_bytes()), "new root {new}");
                assert_eq!(proof.concat(), tree.prove_consistency(new - old).as_bytes(), "proof {old} -> {new}");
            }
        }
    }

    #[test]
    fn consistency_builder_needs_every_leaf() {
        let mut b = ConsistencyBuilder::new(2, 5);
        hashes(4).iter().for_each(|h| b.push(h));
        assert!(b.finish().is_none());
    }

    #[test]
    fn consistency_ranges_of_large_trees_do_not_overflow() {
        let ranges = consistency_ranges(MAX_TREE_SIZE - 3, MAX_TREE_SIZE);
        assert!(ranges.iter().all(|&(s, e)| s < e && e <= MAX_TREE_SIZE), "{ranges:?}");
        assert_eq!(consistency_ranges(1 << 40, 1 << 40), Vec::<(u64, u64)>::new());
    }

    #[test]
    fn frontier_bytes_must_fit_the_size() {
        assert!(Frontier::from_parts(3, &[0; 32]).is_none());
        assert!(Frontier::from_parts(3, &[0; 64]).is_some());
    }
}
