//! `gleaner dataset verify|pull`: the real binary on exported datasets, over 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use gleaner_dataset::fixtures::{sample, validator_key};
use gleaner_dataset::{ExportConfig, export};

const BIN: &str = env!("CARGO_BIN_EXE_gleaner");

#[test]
fn verify_passes_then_fails_naming_the_tampered_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let m = export(sample(300, 800), &validator_key(), &ExportConfig::new(&dir))
        .unwrap()
        .manifest;
    let key = validator_key().public().to_string();
    let out = Command::new(BIN)
        .args(["dataset", "verify"])
        .arg(&dir)
        .args(["--trust", &key])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("result     OK"), "{stdout}");
    assert!(stdout.contains("300 rows"), "{stdout}");

    // Another key is not trusted: non-zero exit.
    let other = gleaner_protocol::SecretKey::from_bytes(&[3; 32])
        .public()
        .to_string();
    let out = Command::new(BIN)
        .args(["dataset", "verify"])
        .arg(&dir)
        .args(["--trust", &other])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("untrusted_validator"));

    // A flipped byte in the shard: the JSON output names the shard.
    let shard = &m.shards[0].path;
    let path = dir.join(shard);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{BIN} --json dataset verify {}", dir.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["place"] == shard.as_str() && f["code"] == "digest_mismatch"),
        "{v}"
    );
}

/// A validator's revocation log served as `GET /v1/revocations` serves it: `after` and `limit`,
/// oldest first. `backwards` serves every page from the start again (a broken or hostile log).
#[derive(Default)]
struct RevocationLog {
    entries: Vec<gleaner_protocol::api::Revocation>,
    pages_served: u32,
    backwards: bool,
    /// No revocation log at all (a validator older than it): 404.
    missing: bool,
    /// A dataset served as the validator serves one, at `/v1/datasets/ds/`.
    dataset: Option<std::path::PathBuf>,
}

async fn serve_revocations(
    log: std::sync::Arc<std::sync::Mutex<RevocationLog>>,
) -> std::net::SocketAddr {
    use axum::extract::{Query, State};
    type Shared = std::sync::Arc<std::sync::Mutex<RevocationLog>>;
    async fn page(
        State(log): State<Shared>,
        Query(q): Query<std::collections::HashMap<String, u64>>,
    ) -> Result<axum::Json<Vec<gleaner_protocol::api::Revocation>>, axum::http::StatusCode> {
        let mut log = log.lock().unwrap();
        log.pages_served += 1;
        if log.missing {
            return Err(axum::http::StatusCode::NOT_FOUND);
        }
        let after = if log.backwards { 0 } else { q["after"] };
        let limit = q["limit"] as usize;
        Ok(axum::Json(
            log.entries
                .iter()
                .filter(|r| r.seq > after)
                .take(limit)
                .cloned()
                .collect(),
        ))
    }
    async fn file(
        State(log): State<Shared>,
        axum::extract::Path(path): axum::extract::Path<String>,
    ) -> Result<Vec<u8>, axum::http::StatusCode> {
        let dir = log.lock().unwrap().dataset.clone();
        dir.and_then(|d| std::fs::read(d.join(path)).ok())
            .ok_or(axum::http::StatusCode::NOT_FOUND)
    }
    async fn manifest(State(log): State<Shared>) -> Result<Vec<u8>, axum::http::StatusCode> {
        file(State(log), axum::extract::Path("manifest.json".into())).await
    }
    let app = axum::Router::new()
        .route(
            gleaner_protocol::api::PATH_REVOCATIONS,
            axum::routing::get(page),
        )
        .route(
            "/v1/datasets/ds/manifest.json",
            axum::routing::get(manifest),
        )
        .route("/v1/datasets/ds/files/{*path}", axum::routing::get(file))
        .with_state(log);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// `gleaner dataset revoked`: the rows its validator revoked after the export, found by record
/// id in the validator's revocation log, read a page at a time over a real socket; exit 1 while
/// there are any. A log whose pages go backwards is refused, not read for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_finds_the_rows_the_validator_took_back() {
    use gleaner_protocol::Digest;
    use gleaner_protocol::api::Revocation;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let manifest = export(sample(300, 800), &validator_key(), &ExportConfig::new(&dir))
        .unwrap()
        .manifest;
    let rows = gleaner_dataset::dataset_rows(&dir, &manifest).unwrap();
    assert_eq!(rows.len(), 300);
    let by_row = |n: u64| rows.values().find(|r| r.row == n).unwrap().clone();
    let (early, late) = (by_row(5), by_row(250));
    // 2,500 revocations, three pages: two of them name rows of this dataset.
    let entries: Vec<Revocation> = (1..=2_500u64)
        .map(|seq| {
            let (record_id, url) = match seq {
                700 => (early.id.parse().unwrap(), early.url.clone()),
                2_100 => (late.id.parse().unwrap(), late.url.clone()),
                _ => (
                    Digest::of(&seq.to_le_bytes()),
                    format!("https://elsewhere.example/{seq}"),
                ),
            };
            Revocation::sign(
                &validator_key(),
                seq,
                record_id,
                gleaner_dataset::fixtures::node_key().public(),
                url,
                1,
                if seq == 700 {
                    "page_not_found".into()
                } else {
                    "failed_cross_check".into()
                },
            )
        })
        .collect();
    let log = std::sync::Arc::new(std::sync::Mutex::new(RevocationLog {
        entries,
        ..RevocationLog::default()
    }));
    let addr = serve_revocations(log.clone()).await;
    let revoked = |json: bool| {
        let mut c = tokio::process::Command::new(BIN);
        if json {
            c.arg("--json");
        }
        c.args(["dataset", "revoked"])
            .arg(&dir)
            .args(["--validator", &format!("http://{addr}/")]);
        c.output()
    };

    let out = revoked(true).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&v["rows"], &v["revocations_listed"]),
        (&300.into(), &2_500.into())
    );
    let found: Vec<(String, u64, String)> = v["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["row"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (early.id.clone(), 5, "page_not_found".into()),
            (late.id.clone(), 250, "failed_cross_check".into())
        ]
    );
    assert_eq!(log.lock().unwrap().pages_served, 3);
    let out = revoked(false).await.unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("REVOKED    {} {}", early.id, early.url)),
        "{text}"
    );
    assert!(
        text.contains("result     2 rows revoked since the export"),
        "{text}"
    );

    // Nothing of this dataset revoked: exit 0.
    log.lock()
        .unwrap()
        .entries
        .retain(|r| r.seq != 700 && r.seq != 2_100);
    let out = revoked(false).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("result     no row revoked"));

    // An entry the dataset's validator did not sign (another key signed it, or its reason was
    // changed after signing) makes the log untrustworthy: exit 2, `bad_revocation`.
    let original = log.lock().unwrap().entries[1_000].clone();
    let stranger = gleaner_protocol::SecretKey::from_bytes(&[0x5e; 32]);
    let mut changed = original.clone();
    changed.reason = "page_not_found".into();
    let forgeries = [
        Revocation::sign(
            &stranger,
            original.seq,
            original.record_id,
            original.node,
            original.url.clone(),
            original.epoch,
            original.reason.clone(),
        ),
        changed,
    ];
    for forged in forgeries {
        log.lock().unwrap().entries[1_000] = forged;
        let out = revoked(true).await.unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["error"], "bad_revocation", "{v}");
    }
    log.lock().unwrap().entries[1_000] = original;

    // Pages that start over each time: refused after the second.
    {
        let mut log = log.lock().unwrap();
        log.backwards = true;
        log.pages_served = 0;
    }
    let out = revoked(true).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "could not tell: not 1, rows revoked"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "http_error", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("out of order"),
        "{v}"
    );
    assert_eq!(log.lock().unwrap().pages_served, 2);
}

/// `gleaner dataset pull` says how many of the pulled rows its validator has revoked since the
/// export (the validator's URL is the dataset URL's), and still verifies and exits 0: the rows
/// are as signed, `dataset revoked` lists which to drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_says_how_many_rows_were_revoked_since_the_export() {
    use gleaner_protocol::api::Revocation;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let manifest = export(sample(40, 800), &validator_key(), &ExportConfig::new(&dir))
        .unwrap()
        .manifest;
    let rows = gleaner_dataset::dataset_rows(&dir, &manifest).unwrap();
    let row = rows.values().next().unwrap().clone();
    let log = std::sync::Arc::new(std::sync::Mutex::new(RevocationLog {
        entries: vec![Revocation::sign(
            &validator_key(),
            1,
            row.id.parse().unwrap(),
            gleaner_dataset::fixtures::node_key().public(),
            row.url.clone(),
            1,
            "failed_cross_check".into(),
        )],
        dataset: Some(dir.clone()),
        ..RevocationLog::default()
    }));
    let addr = serve_revocations(log.clone()).await;
    let url = format!("http://{addr}/v1/datasets/ds");
    let key = validator_key().public().to_string();
    let pull = |json: bool, out: std::path::PathBuf| {
        let mut c = tokio::process::Command::new(BIN);
        if json {
            c.arg("--json");
        }
        c.args(["dataset", "pull", &url, "--quiet", "--trust", &key])
            .arg("--out")
            .arg(out);
        c.output()
    };
    let out = pull(true, tmp.path().join("a")).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&v["ok"], &v["revoked_rows"]),
        (&true.into(), &1.into()),
        "{v}"
    );
    let out = pull(false, tmp.path().join("b")).await.unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("revoked    1 rows since the export: `gleaner dataset revoked "),
        "{text}"
    );
    // A validator that lists no revocations (older, 404): the pull says it could not check.
    log.lock().unwrap().missing = true;
    let out = pull(false, tmp.path().join("c")).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("revoked    not checked: "), "{text}");
}
