//! Epochs: cumulative balances per payout key, the claim Merkle tree and its signed root.
//!
//! A leaf's amount is the payout key's cumulative ledger balance up to and including the epoch,
//! floored at 0 and never below its amount in the previous epoch (a claim contract pays the
//! difference, so cumulative amounts must not shrink; penalties reduce future earnings instead).

use std::collections::BTreeMap;

use gleaner_protocol::api::ClaimProof;
use gleaner_protocol::{Digest, EpochRoot, PublicKey, RewardLeaf, RewardTree, SecretKey};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Op, Store, StoreError, key_from, open_epoch};

impl Store {
    /// Closes the open epoch: builds and signs its reward tree, stores root and leaves, and opens
    /// the next epoch. Returns the signed root.
    pub fn close_epoch(&self, key: &SecretKey, now_ms: i64) -> Result<EpochRoot, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().op("close_epoch")?;
        let epoch = open_epoch(&tx)?;
        let e = i64::try_from(epoch).unwrap_or(i64::MAX);
        let mut amounts: BTreeMap<String, u64> = BTreeMap::new();
        if epoch > 1 {
            for (claimant, amount) in leaves_of(&tx, epoch - 1)? {
                amounts.insert(claimant, amount);
            }
        }
        {
            let mut stmt = tx
                .prepare("SELECT payout, SUM(amount) FROM ledger WHERE epoch <= ?1 GROUP BY payout")
                .op("close_epoch")?;
            let rows = stmt
                .query_map(params![e], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .op("close_epoch")?;
            for row in rows {
                let (payout, sum) = row.op("close_epoch")?;
                let sum = u64::try_from(sum.max(0)).unwrap_or(0);
                let slot = amounts.entry(payout).or_insert(0);
                *slot = (*slot).max(sum);
            }
        }
        let mut leaves = Vec::with_capacity(amounts.len());
        for (claimant, amount) in &amounts {
            if *amount == 0 {
                continue;
            }
            leaves.push(RewardLeaf {
                claimant: key_from(claimant, "payout key")?,
                amount: *amount,
                locked: 0,
            });
        }
        let tree = RewardTree::new(leaves).map_err(|e| StoreError::Corrupt {
            what: "reward leaves",
            why: e.to_string(),
        })?;
        let root = EpochRoot::sign(
            key,
            epoch,
            now_ms,
            tree.root(),
            tree.total(),
            u32::try_from(tree.leaves().len()).unwrap_or(u32::MAX),
        );
        let json = serde_json::to_string(&root).map_err(|e| StoreError::Corrupt {
            what: "epoch root",
            why: e.to_string(),
        })?;
        tx.execute(
            "INSERT INTO epochs(epoch, closed_at_ms, root_json) VALUES (?1, ?2, ?3)",
            params![e, now_ms, json],
        )
        .op("close_epoch")?;
        for leaf in tree.leaves() {
            tx.execute(
                "INSERT INTO epoch_leaves(epoch, claimant, amount) VALUES (?1, ?2, ?3)",
                params![
                    e,
                    leaf.claimant.to_string(),
                    i64::try_from(leaf.amount).unwrap_or(i64::MAX)
                ],
            )
            .op("close_epoch")?;
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'open_epoch'",
            params![(epoch + 1).to_string()],
        )
        .op("close_epoch")?;
        tx.commit().op("close_epoch")?;
        tracing::info!(epoch, total = root.total, leaves = root.leaf_count, root = %root.root, "epoch closed");
        Ok(root)
    }

    /// A closed epoch's signed root and all its leaves (ordered by claimant).
    pub fn epoch(&self, epoch: u64) -> Result<Option<(EpochRoot, Vec<RewardLeaf>)>, StoreError> {
        let conn = self.reader()?;
        let Some(root) = epoch_root(&conn, epoch)? else {
            return Ok(None);
        };
        let tree = tree_of(&conn, epoch)?;
        Ok(Some((root, tree.leaves().to_vec())))
    }

    /// The claim proof of `claimant` in a closed epoch; `None` if the epoch is not closed or the
    /// claimant has no leaf.
    pub fn epoch_proof(
        &self,
        epoch: u64,
        claimant: &PublicKey,
    ) -> Result<Option<ClaimProof>, StoreError> {
        let conn = self.reader()?;
        let Some(root) = epoch_root(&conn, epoch)? else {
            return Ok(None);
        };
        let tree = tree_of(&conn, epoch)?;
        Ok(tree.proof(claimant).map(|(leaf, proof)| ClaimProof {
            epoch: root,
            leaf,
            proof: proof.into_iter().map(Digest::from_bytes).collect(),
        }))
    }
}

fn epoch_root(conn: &Connection, epoch: u64) -> Result<Option<EpochRoot>, StoreError> {
    let json: Option<String> = conn
        .query_row(
            "SELECT root_json FROM epochs WHERE epoch = ?1",
            params![i64::try_from(epoch).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )
        .optional()
        .op("epoch_root")?;
    json.map(|j| {
        serde_json::from_str(&j).map_err(|e| StoreError::Corrupt {
            what: "epoch root",
            why: e.to_string(),
        })
    })
    .transpose()
}

fn leaves_of(conn: &Connection, epoch: u64) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT claimant, amount FROM epoch_leaves WHERE epoch = ?1")
        .op("epoch_leaves")?;
    let rows = stmt
        .query_map(params![i64::try_from(epoch).unwrap_or(i64::MAX)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .op("epoch_leaves")?;
    let mut out = Vec::new();
    for row in rows {
        let (c, a) = row.op("epoch_leaves")?;
        out.push((c, u64::try_from(a).unwrap_or(0)));
    }
    Ok(out)
}

fn tree_of(conn: &Connection, epoch: u64) -> Result<RewardTree, StoreError> {
    let mut leaves = Vec::new();
    for (c, amount) in leaves_of(conn, epoch)? {
        leaves.push(RewardLeaf {
            claimant: key_from(&c, "claimant")?,
            amount,
            locked: 0,
        });
    }
    RewardTree::new(leaves).map_err(|e| StoreError::Corrupt {
        what: "reward leaves",
        why: e.to_string(),
    })
}
