//! Merkle trees: a blake3 tree over record ids (in batch headers), and the epoch-reward claim tree
//! in the Solana merkle-distributor (Jito) convention.
//!
//! ## Record tree (blake3)
//! * leaf hash = `blake3(0x00 ‖ leaf 32 bytes)`; inner node = `blake3(0x01 ‖ left ‖ right)`, in
//!   order (not sorted), so a proof also fixes the leaf's position;
//! * an odd node at the end of a level is carried up unchanged (not duplicated, so no two leaf lists
//!   share a root);
//! * the root of zero leaves is `blake3(0x02)`.
//!
//! ## Reward tree (sha256, Jito merkle-distributor)
//! * leaf = `sha256(0x00 ‖ sha256(claimant 32 bytes ‖ amount u64 LE ‖ locked u64 LE))`;
//! * inner node = `sha256(0x01 ‖ min(a, b) ‖ max(a, b))` (sorted pair, compared as bytes);
//! * an odd last node of a level is paired with itself;
//! * leaves are ordered by claimant key bytes, one leaf per claimant; `amount` is the claimant's
//!   *cumulative* earnings up to and including the epoch, so a claim pays the difference.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{Digest, ProtocolError, PublicKey};

const LEAF: u8 = 0x00;
const NODE: u8 = 0x01;
const EMPTY: u8 = 0x02;

fn leaf_hash(leaf: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(&[LEAF]);
    h.update(leaf.as_bytes());
    Digest::from_bytes(*h.finalize().as_bytes())
}

fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(&[NODE]);
    h.update(left.as_bytes());
    h.update(right.as_bytes());
    Digest::from_bytes(*h.finalize().as_bytes())
}

/// Which side the sibling sits on in a proof step of the ordered (blake3) tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Left,
    Right,
}

/// One step of an inclusion proof in the blake3 tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofStep {
    pub side: Side,
    pub hash: Digest,
}

/// A blake3 Merkle tree over 32-byte leaves (record ids). Keeps every level, so proofs are cheap.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<Digest>>,
}

impl MerkleTree {
    pub fn new(leaves: &[Digest]) -> Self {
        let mut levels = vec![leaves.iter().map(leaf_hash).collect::<Vec<_>>()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let prev = levels.last().map(Vec::as_slice).unwrap_or_default();
            let next = prev
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => node_hash(l, r),
                    [odd] => *odd,
                    _ => Digest::default(),
                })
                .collect();
            levels.push(next);
        }
        MerkleTree { levels }
    }

    pub fn root(&self) -> Digest {
        match self.levels.last().and_then(|l| l.first()) {
            Some(root) => *root,
            None => Digest::of(&[EMPTY]),
        }
    }

    /// The inclusion proof of leaf `index`, or `None` when out of range.
    pub fn proof(&self, mut index: usize) -> Option<Vec<ProofStep>> {
        if index >= self.levels.first()?.len() {
            return None;
        }
        let mut steps = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = index ^ 1;
            if let Some(hash) = level.get(sibling) {
                let side = if sibling < index {
                    Side::Left
                } else {
                    Side::Right
                };
                steps.push(ProofStep { side, hash: *hash });
            }
            index /= 2;
        }
        Some(steps)
    }
}

/// The root of the blake3 tree over `leaves`.
pub fn merkle_root(leaves: &[Digest]) -> Digest {
    MerkleTree::new(leaves).root()
}

/// Checks that `leaf` is in the tree with `root`, following `proof`.
pub fn verify_proof(
    root: &Digest,
    leaf: &Digest,
    proof: &[ProofStep],
) -> Result<(), ProtocolError> {
    let mut acc = leaf_hash(leaf);
    for step in proof {
        acc = match step.side {
            Side::Left => node_hash(&step.hash, &acc),
            Side::Right => node_hash(&acc, &step.hash),
        };
    }
    if &acc == root {
        Ok(())
    } else {
        Err(ProtocolError::BadProof)
    }
}

/// One claimant's cumulative reward, a leaf of the epoch reward tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RewardLeaf {
    /// The payout account (an ed25519 key, i.e. a Solana address).
    pub claimant: PublicKey,
    /// Cumulative points earned up to and including the epoch (claimable, unlocked).
    pub amount: u64,
    /// Cumulative locked amount; always 0 in Gleaner (kept for the convention).
    pub locked: u64,
}

impl RewardLeaf {
    /// `sha256(0x00 ‖ sha256(claimant ‖ amount LE ‖ locked LE))`.
    pub fn hash(&self) -> [u8; 32] {
        let inner = Sha256::new()
            .chain_update(self.claimant.as_bytes())
            .chain_update(self.amount.to_le_bytes())
            .chain_update(self.locked.to_le_bytes())
            .finalize();
        Sha256::new()
            .chain_update([LEAF])
            .chain_update(inner)
            .finalize()
            .into()
    }
}

fn sorted_node(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Sha256::new()
        .chain_update([NODE])
        .chain_update(lo)
        .chain_update(hi)
        .finalize()
        .into()
}

/// The epoch reward tree (Jito merkle-distributor convention, see the module docs).
#[derive(Debug, Clone)]
pub struct RewardTree {
    leaves: Vec<RewardLeaf>,
    levels: Vec<Vec<[u8; 32]>>,
}

impl RewardTree {
    /// Builds the tree; leaves are sorted by claimant and must be unique per claimant.
    pub fn new(mut leaves: Vec<RewardLeaf>) -> Result<Self, ProtocolError> {
        leaves.sort_by_key(|l| l.claimant);
        if leaves.windows(2).any(|w| w[0].claimant == w[1].claimant) {
            return Err(ProtocolError::InvalidField {
                field: "claimant",
                why: "more than one leaf for a claimant".into(),
            });
        }
        let mut levels = vec![leaves.iter().map(RewardLeaf::hash).collect::<Vec<_>>()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let prev = levels.last().map(Vec::as_slice).unwrap_or_default();
            let next = prev
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => sorted_node(l, r),
                    [odd] => sorted_node(odd, odd),
                    _ => [0; 32],
                })
                .collect();
            levels.push(next);
        }
        Ok(RewardTree { leaves, levels })
    }

    /// The root; all zeroes for an empty tree.
    pub fn root(&self) -> [u8; 32] {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or([0; 32])
    }

    /// The leaves, ordered by claimant.
    pub fn leaves(&self) -> &[RewardLeaf] {
        &self.leaves
    }

    /// Total of all cumulative amounts.
    pub fn total(&self) -> u64 {
        self.leaves
            .iter()
            .map(|l| l.amount)
            .fold(0u64, u64::saturating_add)
    }

    /// The proof for a claimant: sibling hashes from the leaf up.
    pub fn proof(&self, claimant: &PublicKey) -> Option<(RewardLeaf, Vec<[u8; 32]>)> {
        let mut index = self
            .leaves
            .binary_search_by(|l| l.claimant.cmp(claimant))
            .ok()?;
        let leaf = self.leaves[index];
        let mut proof = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = level.get(index ^ 1).or_else(|| level.get(index)).copied()?;
            proof.push(sibling);
            index /= 2;
        }
        Some((leaf, proof))
    }
}

/// Checks a reward claim against a published root, with sha256 only (what an on-chain program does).
pub fn verify_reward_proof(
    root: &[u8; 32],
    leaf: &RewardLeaf,
    proof: &[[u8; 32]],
) -> Result<(), ProtocolError> {
    let acc = proof
        .iter()
        .fold(leaf.hash(), |acc, sib| sorted_node(&acc, sib));
    if &acc == root {
        Ok(())
    } else {
        Err(ProtocolError::BadProof)
    }
}
