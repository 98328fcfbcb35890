//! `dataset export` over a real store fed by real ingest: register, lease, sign, ingest, close an
//! epoch, export (library and CLI), and verify the result offline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gleaner_dataset::{TokenCounter, VerifyOptions, verify_dir};
use gleaner_validator::dataset::{datasets_root, export_from_store};
use gleaner_validator::store::DB_FILE;
use gleaner_validator::testkit::fill_store;
use gleaner_validator::{Identity, Store};

fn fill(data: &std::path::Path) -> (Identity, usize) {
    let (identity, accepted) = fill_store(data, 30).unwrap();
    assert!(accepted >= 20, "{accepted} accepted");
    (identity, accepted)
}

#[test]
fn export_from_a_real_store_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let (identity, accepted) = fill(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let root = datasets_root(tmp.path());
    let summary = export_from_store(&store, identity.secret(), &root, None, None).unwrap();
    assert_eq!(summary.manifest.rows, accepted as u64);
    assert_eq!(summary.manifest.validator, identity.public());
    assert_eq!(summary.manifest.epoch_from, 1);
    assert_eq!(summary.manifest.epoch_to, 2);
    assert_eq!(summary.manifest.name, "gleaner-e000001-e000002");
    let report = verify_dir(
        &summary.dir,
        &VerifyOptions {
            trust: vec![identity.public()],
            ..VerifyOptions::default()
        },
    );
    assert!(report.is_ok(), "{:?}", report.failures);
    assert_eq!(report.rows_checked, accepted as u64);

    let since =
        export_from_store(&store, identity.secret(), &root, Some(2), Some("recent")).unwrap();
    assert!(since.manifest.rows < accepted as u64);
    assert_eq!(since.manifest.epoch_from, 2);
    let err = export_from_store(&store, identity.secret(), &root, Some(9), None).unwrap_err();
    assert_eq!(err.code(), "nothing_to_export");
    let err = export_from_store(&store, identity.secret(), &root, None, Some("../x")).unwrap_err();
    assert_eq!(err.code(), "bad_dataset_name");
}

/// Token counts are not counted at ingest: the first export counts each accepted record and
/// stores the count, later exports write the stored count as given (a store opened read-only
/// counts again and stores nothing), and the exported column is the same either way.
#[test]
fn token_counts_are_counted_by_the_first_export_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (identity, accepted) = fill(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let counts = |store: &Store| {
        let mut out = Vec::new();
        store
            .for_each_accepted(None, |a| {
                out.push((a.seq, a.token_count, a.record.text));
                Ok(())
            })
            .unwrap();
        out
    };
    assert!(counts(&store).iter().all(|(_, n, _)| n.is_none()));
    let root = datasets_root(tmp.path());

    // Read-only (an export next to a running server's writer): counted, nothing stored.
    let reader = Store::open_read_only(tmp.path()).unwrap();
    let read_only =
        export_from_store(&reader, identity.secret(), &root, None, Some("read-only")).unwrap();
    assert!(counts(&store).iter().all(|(_, n, _)| n.is_none()));

    let first = export_from_store(&store, identity.secret(), &root, None, Some("first")).unwrap();
    let mut counter = TokenCounter::new().unwrap();
    let stored = counts(&store);
    assert_eq!(stored.len(), accepted);
    for (seq, n, text) in &stored {
        assert_eq!(*n, Some(counter.count(text)), "record at seq {seq}");
    }
    assert_eq!(
        store.set_token_counts(&[(stored[0].0, 1)]).unwrap(),
        0,
        "a count stays"
    );

    let second = export_from_store(&store, identity.secret(), &root, None, Some("second")).unwrap();
    for other in [&read_only, &second] {
        assert_eq!(first.manifest.shards.len(), other.manifest.shards.len());
        for (a, b) in first.manifest.shards.iter().zip(&other.manifest.shards) {
            assert_eq!(a.blake3, b.blake3, "{} differs", a.path);
        }
    }

    // A stored count is written as given: one made wrong on purpose reaches the dataset.
    let conn = rusqlite::Connection::open(tmp.path().join(DB_FILE)).unwrap();
    conn.execute(
        "UPDATE records SET token_count = 7 WHERE seq = ?1",
        [stored[0].0],
    )
    .unwrap();
    let third = export_from_store(&store, identity.secret(), &root, None, Some("third")).unwrap();
    // The record first in export order is in the first shard, which is what a sample reads.
    let rows = gleaner_dataset::sample_rows(&third.dir, &third.manifest, 10_000).unwrap();
    let sevens = rows.iter().filter(|r| r.token_count == 7).count();
    assert_eq!(
        sevens,
        1,
        "{:?}",
        rows.iter().map(|r| r.token_count).collect::<Vec<_>>()
    );
}

#[test]
fn the_cli_exports_and_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let (identity, accepted) = fill(tmp.path());
    let bin = env!("CARGO_BIN_EXE_gleaner-validator");
    let out = std::process::Command::new(bin)
        .arg("--data")
        .arg(tmp.path())
        .args(["dataset", "export", "--name", "cli-export"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dataset"], "cli-export");
    assert_eq!(v["rows"], accepted);
    let dir = datasets_root(tmp.path()).join("cli-export");
    let report = verify_dir(
        &dir,
        &VerifyOptions {
            trust: vec![identity.public()],
            ..VerifyOptions::default()
        },
    );
    assert!(report.is_ok(), "{:?}", report.failures);

    let out = std::process::Command::new(bin)
        .arg("--data")
        .arg(tmp.path())
        .args(["dataset", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"name\":\"cli-export\""));

    let out = std::process::Command::new(bin)
        .arg("--data")
        .arg(tmp.path())
        .args(["dataset", "export", "--since", "99"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no accepted records"));
}

#[test]
fn the_cli_shows_a_nodes_ledger_and_its_balance() {
    let tmp = tempfile::tempdir().unwrap();
    fill(tmp.path());
    let node = gleaner_protocol::SecretKey::from_bytes(&[7; 32]).public();
    let ledger = Store::open(tmp.path()).unwrap().ledger(&node).unwrap();
    assert!(ledger.len() >= 2, "{ledger:?}");
    let balance: i64 = ledger.iter().map(|e| e.amount).sum();
    let bin = env!("CARGO_BIN_EXE_gleaner-validator");
    let out = std::process::Command::new(bin)
        .arg("--data")
        .arg(tmp.path())
        .args(["ledger", "show", &node.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let seqs: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let expected: Vec<i64> = ledger.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, expected, "one JSON line per entry, oldest first");
    assert!(
        stderr.contains(&format!("{} entries, balance {balance}", ledger.len())),
        "{stderr}"
    );

    let out = std::process::Command::new(bin)
        .arg("--data")
        .arg(tmp.path())
        .args(["ledger", "show", "not-a-key"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("node key"));
}
