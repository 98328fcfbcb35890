//! Dataset serving and the web console, over a real socket on 127.0.0.1: listing, manifest,
//! files with range requests and ETags, lab API keys, a resumable pull that ends verified, and a
//! headless-Chromium screenshot of the console (kept in target/screenshots/).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gleaner_dataset::fixtures::{sample, validator_key};
use gleaner_dataset::pull::{PullOptions, pull};
use gleaner_dataset::{ExportConfig, Manifest, VerifyOptions, export, verify_dir};
use gleaner_protocol::SecretKey;
use gleaner_validator::server::{self, AppState, ServerHandle};
use gleaner_validator::{Clock, Config, Identity, Store};

const LAB: &str = "lab-key";

struct Net {
    _dir: tempfile::TempDir,
    handle: ServerHandle,
    http: reqwest::Client,
    manifest: Manifest,
    dataset_dir: PathBuf,
}

async fn start(lab_tokens: Vec<String>) -> Net {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    let dataset_dir = datasets.join("gleaner-sample");
    let mut ec = ExportConfig::new(&dataset_dir);
    ec.shard_max_bytes = 64 * 1024;
    let manifest = export(sample(1_200, 1_200), &validator_key(), &ec)
        .unwrap()
        .manifest;
    let config = Config {
        lab_tokens,
        per_ip_rps: 10_000,
        per_ip_burst: 10_000,
        datasets_dir: datasets,
        ..Config::default()
    };
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let state = AppState::new(
        store,
        Identity::from_key(validator_key()),
        config,
        Clock::manual(1_767_225_600_000),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = server::spawn(listener, state).unwrap();
    Net {
        _dir: dir,
        handle,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        manifest,
        dataset_dir,
    }
}

impl Net {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle.local_addr())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_are_listed_and_served_with_ranges_and_etags() {
    let net = start(Vec::new()).await;
    let list: serde_json::Value = net
        .http
        .get(net.url("/v1/datasets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["name"], "gleaner-sample");
    assert_eq!(list[0]["rows"], 1_200);
    assert_eq!(list[0]["validator"], validator_key().public().to_string());

    let res = net
        .http
        .get(net.url("/v1/datasets/gleaner-sample/manifest.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let m: Manifest = res.json().await.unwrap();
    assert_eq!(m, net.manifest);
    m.verify_signature().unwrap();

    let shard = &m.shards[0];
    let bytes = std::fs::read(net.dataset_dir.join(&shard.path)).unwrap();
    let url = net.url(&format!("/v1/datasets/gleaner-sample/files/{}", shard.path));
    let res = net.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    let etag = format!("\"{}\"", shard.blake3);
    assert_eq!(res.headers()["etag"], etag.as_str());
    assert_eq!(res.bytes().await.unwrap(), bytes);

    // A range, with a matching If-Range.
    let res = net
        .http
        .get(&url)
        .header("range", "bytes=100-199")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap(), bytes[100..200]);
    // An open-ended range.
    let res = net
        .http
        .get(&url)
        .header("range", format!("bytes={}-", bytes.len() - 10))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap(), bytes[bytes.len() - 10..]);
    // A stale If-Range gets the whole file.
    let res = net
        .http
        .get(&url)
        .header("range", "bytes=100-199")
        .header("if-range", "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().len(), bytes.len());
    // Unsatisfiable.
    let res = net
        .http
        .get(&url)
        .header("range", format!("bytes={}-", bytes.len() + 5))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 416);
    // Conditional GET.
    let res = net
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);

    // Other files and content types.
    for (path, ct) in [
        ("receipts.jsonl", "application/jsonl"),
        ("README.md", "text/markdown; charset=utf-8"),
    ] {
        let res = net
            .http
            .get(net.url(&format!("/v1/datasets/gleaner-sample/files/{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], ct);
    }

    // Only files the manifest lists; no traversal; unknown datasets.
    for path in [
        "/v1/datasets/gleaner-sample/files/manifest.json",
        "/v1/datasets/gleaner-sample/files/../gleaner-sample/README.md",
        "/v1/datasets/gleaner-sample/files/%2e%2e/%2e%2e/validator.db",
        "/v1/datasets/gleaner-sample/files/data",
        "/v1/datasets/.gleaner-sample.old/manifest.json",
        "/v1/datasets/nope/manifest.json",
    ] {
        let res = net.http.get(net.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_keys_guard_datasets_and_pull_uses_them() {
    let net = start(vec![LAB.into()]).await;
    let res = net.http.get(net.url("/v1/datasets")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "unauthorized");
    let res = net
        .http
        .get(net.url("/v1/datasets"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let out = tempfile::tempdir().unwrap();
    let base = net.url("/v1/datasets/gleaner-sample");
    let no_key = PullOptions {
        progress: false,
        ..PullOptions::default()
    };
    assert_eq!(
        pull(&base, out.path(), &no_key).await.unwrap_err().code(),
        "http_error"
    );
    let with_key = PullOptions {
        api_key: Some(LAB.into()),
        ..no_key
    };
    let report = pull(&base, out.path(), &with_key).await.unwrap();
    assert_eq!(report.manifest, net.manifest);
    let v = verify_dir(
        out.path(),
        &VerifyOptions {
            trust: vec![validator_key().public()],
            ..VerifyOptions::default()
        },
    );
    assert!(v.is_ok(), "{:?}", v.failures);
    assert_eq!(v.rows_checked, 1_200);
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

fn screenshots_dir() -> PathBuf {
    // CARGO_TARGET_DIR when set, else the workspace's target/.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("screenshots")
}

fn run_chromium(bin: &Path, args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_renders_overview_and_catalog_in_headless_chromium() {
    let net = start(Vec::new()).await;
    // Cross-checks as the fraud checks leave them: three agreed, a primary refuted, one waiting
    // for the validator's own fetch.
    let db = rusqlite::Connection::open(net._dir.path().join(gleaner_validator::store::DB_FILE))
        .unwrap();
    for (i, outcome) in ["agreed", "check_upheld", "agreed", "unchecked", "agreed"]
        .into_iter()
        .enumerate()
    {
        db.execute(
            "INSERT INTO cross_checks(url, primary_record, primary_node, outcome, created_at_ms)
             VALUES (?1, x'01', 'n1', ?2, 1)",
            rusqlite::params![format!("http://a.example/{i}"), outcome],
        )
        .unwrap();
    }
    // Records by verdict: two accepted, one of them revoked since (a failed cross-check), which
    // the revocation log's trigger records.
    let liar = SecretKey::from_bytes(&[0x11; 32]).public().to_string();
    for i in 0..2u8 {
        db.execute(
            "INSERT INTO records(record_id, batch_id, node, lease_id, url, role, epoch,
                     received_at_ms, verdict, reason, points, text_key, minhash, quality_json)
             VALUES (?1, x'00', ?2, ?3, ?4, 'primary', 1, 0, 'accepted', 'ok', 0, ?1, x'', '{}')",
            rusqlite::params![
                vec![i; 32],
                liar,
                format!("l{i}"),
                format!("http://a.example/{i}")
            ],
        )
        .unwrap();
    }
    db.execute(
        "UPDATE records SET verdict = 'revoked', reason = 'failed_cross_check' WHERE lease_id = 'l1'",
        [],
    )
    .unwrap();
    drop(db);
    // The JSON the page reads.
    let o: serde_json::Value = net
        .http
        .get(net.url("/console/api/overview"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o["validator"], validator_key().public().to_string());
    assert!(o["stats"]["pages_per_hour"].is_array());
    assert_eq!(
        [
            &o["stats"]["records_total"],
            &o["stats"]["records_accepted"],
            &o["stats"]["records_revoked"]
        ],
        [2, 1, 1]
    );
    assert_eq!(
        o["stats"]["rejection_reasons"],
        serde_json::json!([{ "reason": "failed_cross_check", "count": 1 }])
    );
    let revoked = &o["revocations"];
    assert_eq!(revoked.as_array().map(Vec::len), Some(1), "{o}");
    assert_eq!(
        (
            &revoked[0]["url"],
            &revoked[0]["node"],
            &revoked[0]["reason"]
        ),
        (
            &"http://a.example/1".into(),
            &liar.as_str().into(),
            &"failed_cross_check".into()
        )
    );
    assert_eq!(
        o["stats"]["check_outcomes"],
        serde_json::json!([
            { "reason": "agreed", "count": 3 },
            { "reason": "check_upheld", "count": 1 },
            { "reason": "unchecked", "count": 1 },
        ]),
        "most frequent first, then by name"
    );
    let c: serde_json::Value = net
        .http
        .get(net.url("/console/api/datasets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c[0]["name"], "gleaner-sample");
    assert_eq!(c[0]["sample"].as_array().unwrap().len(), 5);
    let page = net.http.get(net.url("/console/")).send().await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");

    let Some(bin) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required under CI (apt-get install -y chromium)"
        );
        eprintln!("SKIPPED: chromium not installed (apt-get install -y chromium)");
        return;
    };
    let url = net.url("/console/");
    let (bin2, url2) = (bin.clone(), url.clone());
    let dom =
        tokio::task::spawn_blocking(move || run_chromium(&bin2, &["--dump-dom".into(), url2]))
            .await
            .unwrap();
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("data-loaded=\"true\""),
        "page did not load its data: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    assert!(html.contains("gleaner-sample"), "catalog missing");
    assert!(html.contains("1,200 rows"), "row count missing");
    assert!(html.contains(&validator_key().public().to_string()));
    assert!(html.contains("data/gleaner-epoch-000001/part-00000.parquet"));
    assert!(
        html.contains("1 accepted · 0 duplicate · 0 rejected · 1 revoked"),
        "records by verdict missing"
    );
    assert!(
        html.contains(r#"<a href="http://a.example/1" rel="noreferrer">http://a.example/1</a></td><td>1</td><td><code>failed_cross_check</code>"#),
        "latest revocations missing"
    );
    assert!(
        html.contains("<td><code>check_upheld</code></td><td>1</td>")
            && html.contains("no node got the check done"),
        "cross-check outcomes missing"
    );

    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("console.png");
    let _ = std::fs::remove_file(&shot);
    let out = tokio::task::spawn_blocking(move || {
        run_chromium(&bin, &[format!("--screenshot={}", shot.display()), url])
    })
    .await
    .unwrap();
    let shot = dir.join("console.png");
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 10_000, "screenshot suspiciously small");
}
