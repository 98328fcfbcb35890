//! Epochs: cumulative balances per payout key, the claim Merkle tree and its signed root.
//!
//! A leaf's amount is the payout key's cumulative ledger balance up to and including the epoch,
//! floored at 0 and never below its amount in the previous epoch (a claim contract pays the
//! difference, so cumulative amounts must not shrink; penalties reduce future earnings instead).
//!
//! The balances are running sums (schema version 14): a close adds its epoch's per-payout totals
//! (`ledger_totals`, kept by a trigger on every ledger insert) to the balances the previous close
//! stored (`epoch_balances`) and stores the result. Its work grows with the number of payout keys,
//! not with the ledger, which gains a row a batch for ever; it runs on the writer's connection,
//! where a scan of the whole ledger held every submit behind it.

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
        let mut balances: BTreeMap<String, i64> = BTreeMap::new();
        if epoch > 1 {
            for (claimant, amount) in leaves_of(&tx, epoch - 1)? {
                amounts.insert(claimant, amount);
            }
            balances = per_payout(
                &tx,
                "SELECT payout, balance FROM epoch_balances WHERE epoch = ?1",
                e - 1,
            )?;
        }
        for (payout, total) in per_payout(
            &tx,
            "SELECT payout, amount FROM ledger_totals WHERE epoch = ?1",
            e,
        )? {
            let balance = balances.entry(payout).or_insert(0);
            *balance = balance.saturating_add(total);
        }
        {
            // Only the last close's balances are kept: the next close needs no others, and the
            // ledger (with `ledger_totals`) still gives any epoch's.
            tx.execute("DELETE FROM epoch_balances WHERE epoch < ?1", params![e])
                .op("close_epoch")?;
            let mut insert = tx
                .prepare("INSERT INTO epoch_balances(epoch, payout, balance) VALUES (?1, ?2, ?3)")
                .op("close_epoch")?;
            for (payout, &balance) in &balances {
                insert
                    .execute(params![e, payout, balance])
                    .op("close_epoch")?;
                let floored = u64::try_from(balance.max(0)).unwrap_or(0);
                let slot = amounts.entry(payout.clone()).or_insert(0);
                *slot = (*slot).max(floored);
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

/// `(payout, amount)` rows of `sql` (one `?1`, the epoch) as a map.
fn per_payout(
    conn: &Connection,
    sql: &str,
    epoch: i64,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut stmt = conn.prepare(sql).op("close_epoch")?;
    let rows = stmt
        .query_map(params![epoch], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .op("close_epoch")?;
    rows.map(|row| row.op("close_epoch")).collect()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gleaner_protocol::SecretKey;
    use rusqlite::{Connection, params};

    use super::*;

    fn payout(n: u8) -> String {
        SecretKey::from_bytes(&[n; 32]).public().to_string()
    }

    /// Appends a ledger row for `payout` in the open epoch, as ingest and penalties do, for a
    /// node named after the amount's sign (two nodes may pay one key).
    fn credit(conn: &Connection, payout: &str, amount: i64) {
        let epoch = open_epoch(conn).unwrap();
        let node = format!("{}-{payout}", if amount < 0 { "minus" } else { "plus" });
        conn.execute(
            "INSERT INTO ledger(at_ms, epoch, node, payout, kind, amount, note)
             VALUES (0, ?1, ?2, ?3, 'credit', ?4, '')",
            params![i64::try_from(epoch).unwrap(), node, payout, amount],
        )
        .unwrap();
    }

    /// The leaves of `epoch` by the definition, from the whole ledger: each payout key's
    /// cumulative balance through the epoch, floored at 0 and never below the previous epoch's
    /// leaf; zero amounts have no leaf.
    fn leaves_by_definition(conn: &Connection, epoch: u64) -> BTreeMap<String, u64> {
        let mut amounts = BTreeMap::new();
        for e in 1..=epoch {
            let mut stmt = conn
                .prepare("SELECT payout, SUM(amount) FROM ledger WHERE epoch <= ?1 GROUP BY payout")
                .unwrap();
            let sums: Vec<(String, i64)> = stmt
                .query_map(params![i64::try_from(e).unwrap()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for (payout, sum) in sums {
                let slot = amounts.entry(payout).or_insert(0u64);
                *slot = (*slot).max(u64::try_from(sum.max(0)).unwrap());
            }
        }
        amounts.retain(|_, a| *a > 0);
        amounts
    }

    fn stored_leaves(store: &Store, epoch: u64) -> BTreeMap<String, u64> {
        let (_, leaves) = store.epoch(epoch).unwrap().unwrap();
        leaves
            .into_iter()
            .map(|l| (l.claimant.to_string(), l.amount))
            .collect()
    }

    /// `ledger_totals` is the ledger summed per epoch and payout key, `node_ledger_totals` per
    /// node and epoch.
    fn assert_totals_match_the_ledger(conn: &Connection) {
        let rows = |sql: &str| -> Vec<(i64, String, i64)> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(
            rows("SELECT epoch, payout, amount FROM ledger_totals ORDER BY epoch, payout"),
            rows(
                "SELECT epoch, payout, SUM(amount) FROM ledger
                 GROUP BY epoch, payout ORDER BY epoch, payout"
            )
        );
        assert_eq!(
            rows("SELECT epoch, node, amount FROM node_ledger_totals ORDER BY epoch, node"),
            rows(
                "SELECT epoch, node, SUM(amount) FROM ledger
                 GROUP BY epoch, node ORDER BY epoch, node"
            )
        );
    }

    /// Credits and penalties over four epochs (one of them empty): a balance that goes below 0
    /// and comes back, a leaf that must not shrink, a key that earns nothing for a while. Each
    /// close, from the running totals, gives the leaves the whole ledger defines.
    #[test]
    fn closes_from_running_totals_give_the_leaves_the_whole_ledger_defines() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = SecretKey::from_bytes(&[9; 32]);
        let (a, b, c) = (payout(1), payout(2), payout(3));
        let epochs: [&[(&str, i64)]; 4] = [
            &[(&a, 100), (&b, 50), (&b, -80)],
            &[(&a, -150), (&b, 100), (&c, 10)],
            &[],
            &[(&a, 200), (&c, -10), (&b, 0)],
        ];
        for (i, rows) in epochs.iter().enumerate() {
            let epoch = i as u64 + 1;
            {
                let conn = store.writer().unwrap();
                for (p, amount) in rows.iter() {
                    credit(&conn, p, *amount);
                }
            }
            let root = store.close_epoch(&key, 1_000 + i as i64).unwrap();
            assert_eq!(root.epoch, epoch);
            let conn = store.writer().unwrap();
            assert_totals_match_the_ledger(&conn);
            let kept: Vec<i64> = conn
                .prepare("SELECT DISTINCT epoch FROM epoch_balances")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                kept,
                vec![i64::try_from(epoch).unwrap()],
                "the last close's balances, and only those, are kept"
            );
            let expected = leaves_by_definition(&conn, epoch);
            drop(conn);
            assert_eq!(stored_leaves(&store, epoch), expected, "epoch {epoch}");
            assert_eq!(root.total, expected.values().sum::<u64>(), "epoch {epoch}");
        }
        // Spelled out: A peaked at 100 (kept through its debt), then reached 150; B went to
        // -30, then 70; C earned 10 and kept it when its balance fell back to 0.
        assert_eq!(
            stored_leaves(&store, 4),
            BTreeMap::from([(a, 150), (b, 70), (c, 10)])
        );
    }

    /// A version 13 database (no running totals) with a closed epoch and an open one's ledger
    /// rows: version 14 sums its ledger once, and the next closes give the leaves the whole
    /// ledger defines; ledger rows written after the step are counted by the trigger.
    #[test]
    fn version_14_sums_an_existing_ledger_once() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_bytes(&[9; 32]);
        let (a, b) = (payout(1), payout(2));
        {
            let store = Store::open(dir.path()).unwrap();
            credit(&store.writer().unwrap(), &a, 40);
            credit(&store.writer().unwrap(), &b, 25);
            store.close_epoch(&key, 1).unwrap();
            credit(&store.writer().unwrap(), &a, -60);
            credit(&store.writer().unwrap(), &b, 5);
            // Back to version 13's shape.
            store
                .writer()
                .unwrap()
                .execute_batch(
                    "DROP TRIGGER ledger_totals_add; DROP TABLE ledger_totals;
                     DROP TABLE epoch_balances; DROP TABLE node_ledger_totals;
                     PRAGMA user_version = 13;",
                )
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_totals_match_the_ledger(&store.writer().unwrap());
        store.close_epoch(&key, 2).unwrap();
        credit(&store.writer().unwrap(), &a, 30);
        assert_totals_match_the_ledger(&store.writer().unwrap());
        store.close_epoch(&key, 3).unwrap();
        for epoch in 2..=3 {
            let expected = leaves_by_definition(&store.writer().unwrap(), epoch);
            assert_eq!(stored_leaves(&store, epoch), expected, "epoch {epoch}");
        }
        assert_eq!(stored_leaves(&store, 3), BTreeMap::from([(a, 40), (b, 30)]));
    }
}
