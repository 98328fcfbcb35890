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

/// Token counts are counted once, at acceptance, and stored; records stored before schema
/// version 5 have none, and the export counts theirs: the exported column is the same either way.
#[test]
fn token_counts_come_from_acceptance_or_from_the_export() {
    let tmp = tempfile::tempdir().unwrap();
    let (identity, accepted) = fill(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let mut counter = TokenCounter::new().unwrap();
    let mut checked = 0;
    store
        .for_each_accepted(None, |a| {
            assert_eq!(a.token_count, Some(counter.count(&a.record.text)));
            checked += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(checked, accepted);
    let root = datasets_root(tmp.path());
    let fresh = export_from_store(&store, identity.secret(), &root, None, Some("fresh")).unwrap();

    // As a store migrated from version 4 would hold them: no counts for half the records.
    let conn = rusqlite::Connection::open(tmp.path().join(DB_FILE)).unwrap();
    let cleared = conn
        .execute(
            "UPDATE records SET token_count = NULL WHERE rowid % 2 = 0 AND verdict = 'accepted'",
            [],
        )
        .unwrap();
    assert!(cleared > 0);
    let mut missing = 0;
    store
        .for_each_accepted(None, |a| {
            missing += usize::from(a.token_count.is_none());
            Ok(())
        })
        .unwrap();
    assert!(missing > 0 && missing < accepted, "{missing} of {accepted}");
    let old = export_from_store(&store, identity.secret(), &root, None, Some("old")).unwrap();
    assert_eq!(fresh.manifest.shards.len(), old.manifest.shards.len());
    for (a, b) in fresh.manifest.shards.iter().zip(&old.manifest.shards) {
        assert_eq!(a.blake3, b.blake3, "{} differs", a.path);
    }
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
