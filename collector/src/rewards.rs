//! A node's reward claims, checked rather than taken on trust. A validator closes each epoch
//! with a signed Merkle root over every payout key's cumulative balance; the node fetches the
//! roots and its own leaf with its proof, and checks them with the protocol crate alone: the
//! root's signature, that the validator's key is the one the node already knows, and that the
//! leaf hashes up to the signed root. What passes is a claim anyone can check the same way (the
//! tree is the sha256 layout claim programs verify).
//!
//! A sorted Merkle tree has no proof that it holds *no* leaf for a claimant, but a validator
//! publishes every leaf of each epoch's tree: when it says the tree has none for this node, the
//! node fetches the leaves, rebuilds the tree and checks that it gives the signed root, total and
//! leaf count without this claimant. Only when the leaves cannot be had (unreachable, or beyond
//! [`crate::submit::MAX_EPOCH_DETAIL_BYTES`]) is the absence the validator's word, and reported
//! as such.

use gleaner_protocol::api::{ClaimProof, EpochDetail};
use gleaner_protocol::{Digest, EpochRoot, PublicKey, RewardTree, verify_reward_proof};
use serde::{Deserialize, Serialize};

use crate::submit::{SubmitError, ValidatorClient};

/// One epoch's claim for one payout key, as checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub epoch: u64,
    pub closed_at_ms: i64,
    /// The epoch's signed reward root.
    pub root: Digest,
    pub claimant: PublicKey,
    /// Cumulative points claimable through this epoch (0 when the tree has no leaf).
    pub amount: u64,
    /// Whether `amount` was verified against the signed root: by the leaf's proof, or, with no
    /// leaf, by rebuilding the tree from every published leaf. False only when the tree has no
    /// leaf for the claimant and its leaves could not be fetched (the validator's word).
    pub proven: bool,
    /// Whether the tree holds a leaf for the claimant.
    pub leaf: bool,
}

/// A validator's epochs and the claims in them, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    pub validator_url: String,
    pub validator: PublicKey,
    /// Closed epochs the validator lists, all of whose roots were checked.
    pub epochs_listed: usize,
    /// Newest first, at most the number asked for.
    pub claims: Vec<Claim>,
}

/// Why a validator's claims could not be checked. Every variant but `Validator` means the
/// validator published something that does not verify.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Validator(#[from] SubmitError),
    #[error("epoch {epoch}'s root from {url} does not verify: {why}")]
    BadRoot {
        url: String,
        epoch: u64,
        why: String,
    },
    /// The validator announces another key than the node's receipts from it carry, or lists a
    /// root signed by another key than the one it announces.
    #[error("{url} answered with a key of {found} where {expected} was expected")]
    WrongValidator {
        url: String,
        expected: PublicKey,
        found: PublicKey,
    },
    #[error("the proof {url} gives for {claimant} in epoch {epoch} does not hold: {why}")]
    BadProof {
        url: String,
        epoch: u64,
        claimant: PublicKey,
        why: String,
    },
}

impl ClaimError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ClaimError::Validator(e) => e.code(),
            ClaimError::BadRoot { .. } => "bad_epoch_root",
            ClaimError::WrongValidator { .. } => "wrong_validator",
            ClaimError::BadProof { .. } => "bad_proof",
        }
    }
}

/// Checks `claimant`'s claims in the `last` newest closed epochs of the validator `client`
/// talks to. `expected`: the validator key this node already trusts (the key on its stored
/// receipts from this validator), if any; a validator signing as anything else is refused.
/// Every listed epoch's root is checked, not only the `last` ones, so a bad root anywhere in
/// the list fails the check.
pub async fn check_claims(
    client: &ValidatorClient,
    claimant: &PublicKey,
    expected: Option<PublicKey>,
    last: usize,
) -> Result<Claims, ClaimError> {
    let url = client.base().to_string();
    let validator = client.info().await?.validator;
    if let Some(expected) = expected.filter(|k| *k != validator) {
        return Err(ClaimError::WrongValidator {
            url,
            expected,
            found: validator,
        });
    }
    let roots = client.epochs().await?;
    for root in &roots {
        check_root(&url, &validator, root)?;
    }
    let mut claims = Vec::new();
    for root in roots.iter().take(last) {
        let claim = match client.claim_proof(root.epoch, claimant).await? {
            Some(proof) => check_claim(&url, root, claimant, proof)?,
            None => check_absence(&url, root, claimant, client.epoch_detail(root.epoch).await)?,
        };
        claims.push(claim);
    }
    Ok(Claims {
        validator_url: url,
        validator,
        epochs_listed: roots.len(),
        claims,
    })
}

/// A listed root: signed by `validator`, and its signature holds.
fn check_root(url: &str, validator: &PublicKey, root: &EpochRoot) -> Result<(), ClaimError> {
    if root.validator != *validator {
        return Err(ClaimError::WrongValidator {
            url: url.to_string(),
            expected: *validator,
            found: root.validator,
        });
    }
    root.verify().map_err(|e| ClaimError::BadRoot {
        url: url.to_string(),
        epoch: root.epoch,
        why: e.to_string(),
    })
}

/// `claimant`'s claim in the checked `root`, before its amount is checked.
fn claim_in(
    root: &EpochRoot,
    claimant: &PublicKey,
    amount: u64,
    proven: bool,
    leaf: bool,
) -> Claim {
    Claim {
        epoch: root.epoch,
        closed_at_ms: root.closed_at_ms,
        root: root.root,
        claimant: *claimant,
        amount,
        proven,
        leaf,
    }
}

/// A claim about `root` that does not hold, and why.
fn bad_proof(url: &str, root: &EpochRoot, claimant: &PublicKey, why: &str) -> ClaimError {
    ClaimError::BadProof {
        url: url.to_string(),
        epoch: root.epoch,
        claimant: *claimant,
        why: why.to_string(),
    }
}

/// The claim `proof` makes against the checked `root`: it must carry that same root, a leaf for
/// `claimant`, and sibling hashes that lead from the leaf to the root.
fn check_claim(
    url: &str,
    root: &EpochRoot,
    claimant: &PublicKey,
    proof: ClaimProof,
) -> Result<Claim, ClaimError> {
    let bad = |why: &str| bad_proof(url, root, claimant, why);
    if proof.epoch != *root {
        return Err(bad("it is against another root than the one listed"));
    }
    if proof.leaf.claimant != *claimant {
        return Err(bad("its leaf is another claimant's"));
    }
    let siblings: Vec<[u8; 32]> = proof.proof.iter().map(|d| *d.as_bytes()).collect();
    verify_reward_proof(root.root.as_bytes(), &proof.leaf, &siblings)
        .map_err(|_| bad("its leaf and sibling hashes do not lead to the signed root"))?;
    Ok(claim_in(root, claimant, proof.leaf.amount, true, true))
}

/// The validator said the checked `root`'s tree has no leaf for `claimant`; `detail` is its
/// published epoch. The leaves must rebuild the signed root, total and leaf count, and hold no
/// leaf for `claimant`; then the zero is proven. Without the leaves, it is the validator's word.
fn check_absence(
    url: &str,
    root: &EpochRoot,
    claimant: &PublicKey,
    detail: Result<EpochDetail, SubmitError>,
) -> Result<Claim, ClaimError> {
    let detail = match detail {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(validator = url, epoch = root.epoch, cause = %e, "epoch leaves unavailable");
            return Ok(claim_in(root, claimant, 0, false, false));
        }
    };
    let bad = |why: &str| bad_proof(url, root, claimant, why);
    if detail.root != *root {
        return Err(bad(
            "its published leaves come with another root than the one listed",
        ));
    }
    let tree = RewardTree::new(detail.leaves)
        .map_err(|_| bad("its published leaves hold a claimant twice"))?;
    if tree.root() != *root.root.as_bytes()
        || tree.total() != root.total
        || tree.leaves().len() != root.leaf_count as usize
    {
        return Err(bad("its published leaves do not rebuild the signed root"));
    }
    if tree.proof(claimant).is_some() {
        return Err(bad("it denies a leaf that its published tree holds"));
    }
    Ok(claim_in(root, claimant, 0, true, false))
}

#[cfg(test)]
mod tests {
    use gleaner_protocol::{RewardLeaf, RewardTree, SecretKey};

    use super::*;

    const URL: &str = "http://validator.test";

    fn tree(claimant: &PublicKey) -> (RewardTree, EpochRoot, SecretKey) {
        let key = SecretKey::from_bytes(&[7; 32]);
        let other = SecretKey::from_bytes(&[8; 32]).public();
        let leaves = vec![
            RewardLeaf {
                claimant: *claimant,
                amount: 120,
                locked: 0,
            },
            RewardLeaf {
                claimant: other,
                amount: 30,
                locked: 0,
            },
        ];
        let tree = RewardTree::new(leaves).unwrap();
        let root = EpochRoot::sign(&key, 3, 1_000, tree.root(), 150, 2);
        (tree, root, key)
    }

    /// [`tree`] with a leaf for `me` beside `claimant`'s and the other one's.
    fn tree_with_me(me: &PublicKey) -> (RewardTree, EpochRoot, SecretKey) {
        let (tree, _, key) = tree(&SecretKey::from_bytes(&[2; 32]).public());
        let mut leaves = tree.leaves().to_vec();
        leaves.push(RewardLeaf {
            claimant: *me,
            amount: 5,
            locked: 0,
        });
        let tree = RewardTree::new(leaves).unwrap();
        let root = EpochRoot::sign(&key, 3, 1_000, tree.root(), tree.total(), 3);
        (tree, root, key)
    }

    fn proof_for(tree: &RewardTree, root: &EpochRoot, claimant: &PublicKey) -> ClaimProof {
        let (leaf, siblings) = tree.proof(claimant).unwrap();
        ClaimProof {
            epoch: root.clone(),
            leaf,
            proof: siblings.into_iter().map(Digest::from_bytes).collect(),
        }
    }

    #[test]
    fn a_leaf_that_leads_to_the_signed_root_is_a_proven_claim() {
        let me = SecretKey::from_bytes(&[1; 32]).public();
        let (tree, root, key) = tree(&me);
        check_root(URL, &key.public(), &root).unwrap();
        let claim = check_claim(URL, &root, &me, proof_for(&tree, &root, &me)).unwrap();
        assert_eq!(
            (claim.epoch, claim.amount, claim.proven, claim.leaf),
            (3, 120, true, true)
        );
    }

    #[test]
    fn no_leaf_is_proven_by_rebuilding_the_tree_from_every_published_leaf() {
        let me = SecretKey::from_bytes(&[1; 32]).public();
        let somebody = SecretKey::from_bytes(&[2; 32]).public();
        // A tree without a leaf for me, and one with.
        let (tree, root, _) = tree(&somebody);
        let (mine, my_root, _) = tree_with_me(&me);
        let detail = |root: &EpochRoot, leaves: &[RewardLeaf]| {
            Ok(EpochDetail {
                root: root.clone(),
                leaves: leaves.to_vec(),
            })
        };
        let claim = check_absence(URL, &root, &me, detail(&root, tree.leaves())).unwrap();
        assert_eq!((claim.amount, claim.proven, claim.leaf), (0, true, false));
        // Without the leaves, the validator's word: a zero, not proven.
        let unreachable = Err(SubmitError::Unreachable {
            url: URL.into(),
            why: "connection refused".into(),
        });
        let word = check_absence(URL, &root, &me, unreachable).unwrap();
        assert_eq!((word.amount, word.proven, word.leaf), (0, false, false));

        let refused = |detail| check_absence(URL, &root, &me, detail).unwrap_err();
        // A leaf left out, an amount changed: the tree no longer rebuilds the signed root.
        let e = refused(detail(&root, &tree.leaves()[..1]));
        assert_eq!(e.code(), "bad_proof", "{e}");
        let mut changed = tree.leaves().to_vec();
        changed[0].amount += 1;
        assert_eq!(refused(detail(&root, &changed)).code(), "bad_proof");
        // A claimant twice.
        let twice = [tree.leaves(), tree.leaves()].concat();
        assert_eq!(refused(detail(&root, &twice)).code(), "bad_proof");
        // Leaves that come with another root.
        assert_eq!(refused(detail(&my_root, tree.leaves())).code(), "bad_proof");
        // The validator said there is no leaf for me, and its own leaves hold one.
        let e = check_absence(URL, &my_root, &me, detail(&my_root, mine.leaves())).unwrap_err();
        assert_eq!(e.code(), "bad_proof", "{e}");
        assert!(e.to_string().contains("denies a leaf"), "{e}");
    }

    #[test]
    fn every_forgery_is_refused_under_its_code() {
        let me = SecretKey::from_bytes(&[1; 32]).public();
        let (tree, root, key) = tree(&me);
        // A root whose total was changed after signing.
        let mut forged = root.clone();
        forged.total += 1;
        let e = check_root(URL, &key.public(), &forged).unwrap_err();
        assert_eq!(e.code(), "bad_epoch_root", "{e}");
        // A root signed by another key than the validator's.
        let stranger = SecretKey::from_bytes(&[9; 32]);
        let theirs = EpochRoot::sign(&stranger, 3, 1_000, tree.root(), 150, 2);
        let e = check_root(URL, &key.public(), &theirs).unwrap_err();
        assert_eq!(e.code(), "wrong_validator", "{e}");
        // A leaf with more points than the tree holds.
        let mut more = proof_for(&tree, &root, &me);
        more.leaf.amount += 1_000;
        let e = check_claim(URL, &root, &me, more).unwrap_err();
        assert_eq!(e.code(), "bad_proof", "{e}");
        // Someone else's (valid) leaf offered as ours.
        let other = SecretKey::from_bytes(&[8; 32]).public();
        let e = check_claim(URL, &root, &me, proof_for(&tree, &root, &other)).unwrap_err();
        assert_eq!(e.code(), "bad_proof", "{e}");
        // A valid proof against another root than the listed one.
        let mut elsewhere = proof_for(&tree, &root, &me);
        elsewhere.epoch = EpochRoot::sign(&key, 3, 1_000, [0; 32], 150, 2);
        let e = check_claim(URL, &root, &me, elsewhere).unwrap_err();
        assert_eq!(e.code(), "bad_proof", "{e}");
        // A sibling hash changed.
        let mut cut = proof_for(&tree, &root, &me);
        cut.proof[0] = Digest::from_bytes([0; 32]);
        let e = check_claim(URL, &root, &me, cut).unwrap_err();
        assert_eq!(e.code(), "bad_proof", "{e}");
    }
}
