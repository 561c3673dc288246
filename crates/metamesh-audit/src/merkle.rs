//! RFC 6962 Merkle tree hashing over record hashes, computed in a stream.
//!
//! Leaf `i` of the tree is the hash of record `i + 1`; the tree hashes are RFC 6962 §2.1's:
//! `leaf = SHA-256(0x00 || record_hash)`, `node = SHA-256(0x01 || left || right)`, and the root of
//! an empty tree is `SHA-256("")`. Inclusion proofs are checked with `ct-merkle` (see
//! `proof.rs`), and tests check that [`Frontier`] and [`inclusion_path`] agree with its
//! in-memory tree, so the two implementations hold each other honest.
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

/// The tree hash of the leaves read so far and, when `index` is among the first `size`, its
/// inclusion path: one pass over the record hashes in order, O(log n) memory.
pub struct PathBuilder {
    index: u64,
    size: u64,
    all: Frontier,
    /// One frontier per path range, in path order; `order` visits them by start.
    ranges: Vec<((u64, u64), Frontier)>,
    order: Vec<usize>,
    cursor: usize,
    leaf: Option<Hash>,
}

impl PathBuilder {
    /// A builder for the path of leaf `index` in the tree of the first `size` leaves.
    pub fn new(index: u64, size: u64) -> PathBuilder {
        let ranges: Vec<_> = path_ranges(index, size).into_iter().map(|r| (r, Frontier::new())).collect();
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_by_key(|&i| ranges[i].0 .0);
        PathBuilder { index, size, all: Frontier::new(), ranges, order, cursor: 0, leaf: None }
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
            return;
        }
        while self.ranges[self.order[self.cursor]].0 .1 <= i {
            self.cursor += 1;
        }
        self.ranges[self.order[self.cursor]].1.push(record_hash);
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
        let path = self.ranges.iter().map(|(_, f)| f.root()).collect();
        Some((self.leaf?, self.all.root(), path))
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
    fn frontier_bytes_must_fit_the_size() {
        assert!(Frontier::from_parts(3, &[0; 32]).is_none());
        assert!(Frontier::from_parts(3, &[0; 64]).is_some());
    }
}
