//! What an operator's maintenance commands cost: `gleaner-validator backup` and `check` on a
//! store filled as real use fills it (`testkit::fill_store`: one node's records of ~2 kB sample
//! text, answering its leases, in batches of 10 through the real checks, over two epochs).
//!
//! `cargo bench -p gleaner-validator --bench maintenance` (optional: `-- RECORDS`, default
//! 20,000). Prints the store's size, then each command's time over five runs and their median:
//! the check reads every body back (JSON parse, record id, text digest), every receipt, the
//! ledger's totals and the epoch roots; the backup snapshots the database and copies the
//! committed segments, here from the page cache (a fresh process reading a cold disk would add
//! the disk's read time). Then the network statistics the console and `GET /v1/admin/stats`
//! read (`Store::network_stats`), which count the records by verdict and reason, and the crawl
//! requests' progress (`Store::crawl_requests`, one grouped read of every job); the backup again
//! with one dataset export of every accepted record beside the store. Last, a full
//! page of `GET /v1/revocations` (1,000 entries, read from the log and each signed) after
//! 1,000 accepted records are revoked, then the same page served again (signatures kept).
//! Last, a node's check history (`nodes checks`, `GET /v1/admin/nodes/{node}/checks`) once
//! the node has 50,000 judged checks: a page of 500 from its start and from its middle, and the
//! check again, now holding that history to the node's row.

// A benchmark binary: failing loudly on setup errors is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use gleaner_validator::identity::{KEY_FILE, RevocationSigner};
use gleaner_validator::testkit::fill_store;
use gleaner_validator::{Identity, Store};

const RUNS: usize = 5;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn main() {
    let records: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(20_000, |a| a.parse().expect("RECORDS"));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let t = Instant::now();
    let (_, accepted) = fill_store(&data, records).unwrap();
    let bytes: u64 = walk(&data);
    println!(
        "store: {accepted} accepted of {records} records, {:.1} MB, filled in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let identity = Identity::load(&data).unwrap();
    let store = Store::open_read_only(&data).unwrap();
    let mut checks = Vec::new();
    for run in 1..=RUNS {
        let t = Instant::now();
        let report = store.check(&identity.public()).unwrap();
        let took = t.elapsed();
        assert!(report.ok(), "{report:#?}");
        println!(
            "check {run}: {} records, {} bodies, {} batches in {:.3} s ({:.0} records/s)",
            report.records,
            report.bodies,
            report.batches,
            took.as_secs_f64(),
            report.records as f64 / took.as_secs_f64()
        );
        checks.push(took);
    }
    let mut backups = Vec::new();
    for run in 1..=RUNS {
        let dest = tmp.path().join(format!("backup{run}"));
        let t = Instant::now();
        let report = Store::backup(&data, &dest, &[KEY_FILE], None).unwrap();
        let took = t.elapsed();
        println!(
            "backup {run}: database {:.1} MB, bodies {:.1} MB in {:.3} s",
            report.database_bytes as f64 / 1e6,
            report.body_bytes as f64 / 1e6,
            took.as_secs_f64()
        );
        backups.push(took);
        std::fs::remove_dir_all(&dest).unwrap();
    }
    // The same backup with the exported datasets: one export of every accepted record.
    let root = gleaner_validator::dataset::datasets_root(&data);
    let export =
        gleaner_validator::dataset::export_from_store(&store, identity.secret(), &root, None, None)
            .unwrap();
    let mut with_datasets = Vec::new();
    for run in 1..=RUNS {
        let dest = tmp.path().join(format!("full{run}"));
        let t = Instant::now();
        let report = Store::backup(&data, &dest, &[KEY_FILE], Some(&root)).unwrap();
        with_datasets.push(t.elapsed());
        assert_eq!(report.datasets, std::slice::from_ref(&export.manifest.name));
        if run == 1 {
            println!(
                "backup with datasets: {} rows, {:.1} MB of dataset files",
                export.manifest.rows,
                report.dataset_bytes as f64 / 1e6
            );
        }
        std::fs::remove_dir_all(&dest).unwrap();
    }
    let mut stats = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let s = store.network_stats(0).unwrap();
        stats.push(t.elapsed());
        assert_eq!(s.records_total, records as u64);
    }
    // `crawl list` (and `GET /v1/crawl-requests` at most every 5 s): one grouped read of every
    // job.
    let mut crawls = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let progress = store.crawl_requests().unwrap();
        crawls.push(t.elapsed());
        let jobs: u64 = progress.iter().flat_map(|p| p.pages.values()).sum();
        assert_eq!(jobs, records as u64);
    }
    // Revoked as a failed cross-check revokes: the log's trigger appends each.
    let revoked = rusqlite::Connection::open(data.join(gleaner_validator::store::DB_FILE))
        .unwrap()
        .execute(
            "UPDATE records SET verdict = 'revoked', reason = 'failed_cross_check'
              WHERE seq IN (SELECT seq FROM records WHERE verdict = 'accepted' LIMIT 1000)",
            [],
        )
        .unwrap();
    // The page as a fresh server signs it, then as it serves it again (signatures kept).
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let signer = RevocationSigner::new(identity.clone());
        for times in [&mut cold, &mut warm] {
            let t = Instant::now();
            let page = signer.sign(store.revocations(0, 1_000, None).unwrap());
            times.push(t.elapsed());
            assert_eq!(page.len(), revoked);
        }
    }
    // A busy node's check history: 50,000 judged checks, chained as ingest writes them.
    let judged = 50_000i64;
    let node = store.nodes().unwrap()[0].clone();
    {
        let mut conn =
            rusqlite::Connection::open(data.join(gleaner_validator::store::DB_FILE)).unwrap();
        let tx = conn.transaction().unwrap();
        let key = node.node.to_string();
        for i in 1..=judged {
            tx.execute(
                "INSERT INTO cross_checks(id, url, primary_record, primary_node, check_node,
                                          outcome, created_at_ms, similarity)
                 VALUES (?1, 'https://bench.example/' || ?1, x'01', ?2, 'other', 'agreed', ?1,
                         0.9)",
                rusqlite::params![i, key],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO node_judgements(node, check_id, at_ms, verdict, credibility_before,
                                             credibility_after)
                 VALUES (?1, ?2, ?2, 'passed', ?3, ?3)",
                rusqlite::params![key, i, node.credibility],
            )
            .unwrap();
        }
        tx.execute(
            "UPDATE nodes SET checks_passed = ?2 WHERE node = ?1",
            rusqlite::params![key, judged],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let (mut first, mut middle, mut rechecks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        for (times, after) in [(&mut first, 0), (&mut middle, judged / 2)] {
            let t = Instant::now();
            let page = store.judgements_page(&node.node, after, 500).unwrap();
            times.push(t.elapsed());
            assert_eq!(page.len(), 500);
        }
        let t = Instant::now();
        let report = store.check(&identity.public()).unwrap();
        rechecks.push(t.elapsed());
        assert!(report.ok(), "{report:#?}");
    }
    println!(
        "check history of {judged} checks: a page of 500 {:.2} ms from its start, {:.2} ms from \
         its middle; the check with it {:.3} s",
        median(first).as_secs_f64() * 1e3,
        median(middle).as_secs_f64() * 1e3,
        median(rechecks).as_secs_f64()
    );
    let (check, backup, stats) = (median(checks), median(backups), median(stats));
    println!(
        "median of {RUNS}: check {:.3} s ({:.0} records/s), backup {:.3} s ({:.3} s with the \
         datasets), network stats {:.1} ms, crawl list {:.1} ms ({records} jobs), a page of \
         {revoked} revocations read and signed {:.1} ms ({:.1} ms served again)",
        check.as_secs_f64(),
        records as f64 / check.as_secs_f64(),
        backup.as_secs_f64(),
        median(with_datasets).as_secs_f64(),
        stats.as_secs_f64() * 1e3,
        median(crawls).as_secs_f64() * 1e3,
        median(cold).as_secs_f64() * 1e3,
        median(warm).as_secs_f64() * 1e3
    );
}

/// Bytes of the files below `dir`.
fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() { walk(&e.path()) } else { m.len() }
        })
        .sum()
}
