//! Epoch close over a long ledger: what `gleaner-validator epoch close` (and its timer) costs the
//! writer's connection as the ledger grows, against the whole-ledger sum that schema versions up
//! to 13 ran in its place, and what the running totals cost each ledger insert.
//!
//! `cargo bench -p gleaner-validator --bench epoch` (optional: `-- ROWS PAYOUTS EPOCHS`, default
//! 1,000,000 ledger rows over 1,000 payout keys and 10 epochs). The ledger gains a row per batch
//! that earns points (and one per penalty), so a validator taking 2,000 records/s in batches of
//! 100 appends ~1.7 million rows a day. Each epoch's rows are appended in one transaction, then
//! the epoch is closed; the bench prints, per epoch, the close's time and the time of the old
//! close's sum over the ledger (`SELECT payout, SUM(amount) … WHERE epoch <= ?1 GROUP BY
//! payout`, run alone on a second connection: a lower bound of what the old close held the
//! writer for). Then the same rows are appended to a store without the trigger that keeps the
//! totals, for its cost per insert. Also: one node's status (its total and open-epoch points, what
//! the desktop app polls) from the per-node totals, against the sums over its ledger rows that
//! versions up to 13 ran (medians of 21 reads; the other figures are one long operation each).

// A benchmark binary: failing loudly on setup errors is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Instant;

use gleaner_protocol::{PublicKey, SecretKey};
use gleaner_validator::Store;
use gleaner_validator::store::DB_FILE;
use rusqlite::{Connection, params};

/// Appends `rows` ledger rows to `epoch`, payout keys drawn from `payouts` by a fixed sequence,
/// in one transaction; returns the seconds taken.
fn append(
    conn: &mut Connection,
    epoch: i64,
    rows: usize,
    payouts: &[String],
    seed: &mut u64,
) -> f64 {
    let t = Instant::now();
    let tx = conn.transaction().expect("transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO ledger(at_ms, epoch, node, payout, kind, amount, batch_id, note)
                 VALUES (?1, ?2, ?3, ?3, 'credit', ?4, x'00', '')",
            )
            .expect("prepare");
        for i in 0..rows {
            *seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let payout = &payouts[(*seed >> 33) as usize % payouts.len()];
            // Mostly credits, now and then a penalty.
            let amount = if seed.is_multiple_of(50) {
                -200
            } else {
                100 + (*seed >> 50) as i64 % 400
            };
            insert
                .execute(params![i as i64, epoch, payout, amount])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    t.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rows = args.first().copied().unwrap_or(1_000_000);
    let payouts_n = args.get(1).copied().unwrap_or(1_000).max(1);
    let epochs = args.get(2).copied().unwrap_or(10).max(1);
    let per_epoch = rows / epochs;
    // Each node pays its own key: the ledger's node and payout columns hold the same key.
    let keys: Vec<PublicKey> = (0..payouts_n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            SecretKey::from_bytes(&seed).public()
        })
        .collect();
    let payouts: Vec<String> = keys.iter().map(ToString::to_string).collect();
    let key = SecretKey::from_bytes(&[7; 32]);
    println!(
        "epoch close: {rows} ledger rows over {payouts_n} payout keys, {epochs} epochs of {per_epoch}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let mut conn = Connection::open(dir.path().join(DB_FILE)).expect("open");
    conn.busy_timeout(std::time::Duration::from_secs(60))
        .expect("busy timeout");
    let mut seed = 1u64;
    let (mut append_s, mut closes, mut scans) = (0.0, Vec::new(), Vec::new());
    for epoch in 1..=epochs as i64 {
        append_s += append(&mut conn, epoch, per_epoch, &payouts, &mut seed);
        let t = Instant::now();
        let scanned: usize = conn
            .prepare("SELECT payout, SUM(amount) FROM ledger WHERE epoch <= ?1 GROUP BY payout")
            .expect("prepare")
            .query_map(params![epoch], |r| r.get::<_, i64>(1))
            .expect("scan")
            .count();
        let scan_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let root = store.close_epoch(&key, epoch).expect("close");
        let close_ms = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "epoch {epoch}: ledger {} rows; close {close_ms:.1} ms ({} leaves); \
             whole-ledger sum (versions ≤ 13) {scan_ms:.1} ms ({scanned} keys)",
            epoch as usize * per_epoch,
            root.leaf_count
        );
        closes.push(close_ms);
        scans.push(scan_ms);
    }
    // A node's status (what the tray app polls): its total and its open epoch's points.
    let (node, node_s) = (keys[0], &payouts[0]);
    store
        .register_node(&node, &node, "bench", 0)
        .expect("register");
    let node_rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM ledger WHERE node = ?1",
            params![node_s],
            |r| r.get(0),
        )
        .expect("count");
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let standing = median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(store.node_standing(&node).expect("standing"));
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    let open = epochs as i64 + 1;
    let old_sums = median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                let sums: (i64, i64) = conn
                    .query_row(
                        "SELECT (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE node = ?1),
                                (SELECT COALESCE(SUM(amount), 0) FROM ledger
                                  WHERE node = ?1 AND epoch = ?2)",
                        params![node_s, open - 1],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .expect("sums");
                std::hint::black_box(sums);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    println!(
        "node status ({node_rows} ledger rows of this node): {standing:.3} ms (median of 21); \
         the two sums over its ledger rows that versions ≤ 13 ran for it {old_sums:.3} ms"
    );

    let last = |v: &[f64]| v.last().copied().unwrap_or(0.0);
    println!(
        "epoch close: last close {:.1} ms, its whole-ledger sum alone {:.1} ms ({:.0}× longer)",
        last(&closes),
        last(&scans),
        last(&scans) / last(&closes).max(1e-9)
    );

    // The same appends without the trigger that keeps the running totals.
    let plain_dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(plain_dir.path()).expect("store"));
    let mut plain = Connection::open(plain_dir.path().join(DB_FILE)).expect("open");
    plain
        .execute_batch("DROP TRIGGER ledger_totals_add")
        .expect("drop trigger");
    let mut seed = 1u64;
    let mut plain_s = 0.0;
    for epoch in 1..=epochs as i64 {
        plain_s += append(&mut plain, epoch, per_epoch, &payouts, &mut seed);
    }
    let n = (per_epoch * epochs).max(1) as f64;
    println!(
        "ledger appends: {:.2} µs a row with the running totals, {:.2} µs without \
         (one row per batch of up to 1,000 records)",
        append_s * 1e6 / n,
        plain_s * 1e6 / n
    );
}
