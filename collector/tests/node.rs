//! The node end to end against the stub validator and the fixture site: the library API, the
//! `gleaner` binary, graceful shutdown, and crash safety under SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use gleaner_collector::{
    ActivityKind, ActivityQuery, ExportFormat, Node, NodeConfig, NodeEvent, NodeState, RunOptions,
    RunSummary,
};
use gleaner_protocol::RobotsVerdict;
use gleaner_protocol::api::FailureReason;
use support::*;

const ROBOTS: &str = "User-agent: *\nDisallow: /private\n";

fn config(data: &Path, stub: &Stub, site: &Site) -> NodeConfig {
    NodeConfig {
        data_dir: data.to_path_buf(),
        validators: vec![stub.url()],
        allow_addrs: vec![site.addr],
        min_domain_delay_ms: 0,
        batch_max_records: 4,
        batch_max_age_secs: 1,
        total_timeout_ms: 5_000,
        ..NodeConfig::default()
    }
}

/// Runs `node` until it has no work left (a minute at most) and returns its summary.
async fn run_until_idle(node: &Node) -> RunSummary {
    let opts = RunOptions {
        exit_when_idle: true,
        ..RunOptions::default()
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        node.run(opts, std::future::pending()),
    )
    .await
    .expect("run finishes when idle")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_one_builds_a_verifiable_record() {
    let site = spawn_site(RobotsMode::Body(ROBOTS.into())).await;
    let stub = spawn_stub(vec![], 60_000).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), &stub, &site)).unwrap();

    let r = node.fetch_one(&site.url("/page/3")).await.unwrap();
    r.verify().unwrap();
    assert_eq!(r.lease_id, "local");
    assert_eq!(r.robots, RobotsVerdict::Allowed);
    assert_eq!(r.status, 200);
    assert_eq!(r.lang, "en");
    assert!(r.title.contains("Article 3"));
    assert!(r.text.contains("river valley"));
    assert!(!r.text.contains("Copyright fixture"), "boilerplate removed");
    assert!(
        r.outlinks.iter().any(|l| l.ends_with("/page/4")),
        "{:?}",
        r.outlinks
    );
    assert_eq!(r.node, node.public_key());

    let e = node.fetch_one(&site.url("/private/1")).await.unwrap_err();
    assert_eq!(e.reason(), FailureReason::RobotsDisallowed);
    let e = node.fetch_one(&site.url("/noindex")).await.unwrap_err();
    assert_eq!(e.reason(), FailureReason::NoIndex);
    let e = node.fetch_one(&site.url("/x-noindex")).await.unwrap_err();
    assert_eq!(e.reason(), FailureReason::NoIndex);
    let r = node.fetch_one(&site.url("/x-nofollow")).await.unwrap();
    assert!(r.outlinks.is_empty());
    let r = node.fetch_one(&site.url("/gzip")).await.unwrap();
    assert!(r.wire_bytes < r.body_bytes);

    // The activity log saw the robots.txt request, the pages and the refusal.
    let all = node.activity(&ActivityQuery::default()).unwrap();
    assert_eq!(
        all.iter()
            .filter(|e| e.kind == ActivityKind::Robots)
            .count(),
        1,
        "robots.txt fetched once: {all:#?}"
    );
    assert!(
        all.iter()
            .any(|e| e.kind == ActivityKind::Refused && e.verdict == "robots_disallowed")
    );
    let q = ActivityQuery {
        verdict: Some("ok".into()),
        kind: Some(ActivityKind::Page),
        ..Default::default()
    };
    assert!(node.activity(&q).unwrap().len() >= 4);
    let q = ActivityQuery {
        text: Some("x-nofollow".into()),
        ..Default::default()
    };
    assert_eq!(node.activity(&q).unwrap().len(), 1);
    let q = ActivityQuery {
        domain: Some("127.0.0.1".into()),
        ..Default::default()
    };
    assert_eq!(node.activity(&q).unwrap().len(), all.len());
    let q = ActivityQuery {
        since_ms: Some(gleaner_collector::now_ms() + 60_000),
        ..Default::default()
    };
    assert!(node.activity(&q).unwrap().is_empty());
    let mut csv = Vec::new();
    node.export_activity(&ActivityQuery::default(), ExportFormat::Csv, &mut csv)
        .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with(
        "at_ms,kind,url,domain,status,bytes,verdict,detail,outcome,outcome_reason,points\n"
    ));
    assert_eq!(csv.lines().count(), all.len() + 1);
    let mut jsonl = Vec::new();
    node.export_activity(&ActivityQuery::default(), ExportFormat::Jsonl, &mut jsonl)
        .unwrap();
    for line in String::from_utf8(jsonl).unwrap().lines() {
        let _: gleaner_collector::ActivityEntry = serde_json::from_str(line).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_leases_fetches_submits_and_reports() {
    let site = spawn_site(RobotsMode::Body(ROBOTS.into())).await;
    let mut urls: Vec<String> = (0..10).map(|i| site.url(&format!("/page/{i}"))).collect();
    urls.extend([
        site.url("/private/1"),
        site.url("/missing"),
        site.url("/binary"),
        site.url("/noindex"),
        "http://10.0.0.1/".to_string(),
    ]);
    let stub = spawn_stub(urls, 60_000).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), &stub, &site)).unwrap();
    let mut events = node.subscribe();
    // The validator says it revoked two of this node's records (as after a failed check).
    stub.state.lock().unwrap().revoked = 2;
    let summary = run_until_idle(&node).await;
    assert_eq!(summary.pages, 10);
    assert_eq!(summary.failures, 5);
    {
        let s = stub.state.lock().unwrap();
        assert_eq!(s.credits.len(), 10);
        assert!(s.credits.values().all(|n| *n == 1));
        assert_eq!(s.bad_auth, 0, "every request was signed correctly");
        let reasons: HashSet<FailureReason> = s.failures.iter().map(|f| f.reason).collect();
        let want: HashSet<FailureReason> = [
            FailureReason::RobotsDisallowed,
            FailureReason::HttpError,
            FailureReason::NotHtml,
            FailureReason::NoIndex,
            FailureReason::BlockedAddress,
        ]
        .into();
        assert_eq!(reasons, want);
        assert!(s.leases.is_empty() && s.queue.is_empty());
    }
    let stats = node.stats().unwrap();
    assert_eq!(stats.queue.receipted, 10);
    assert_eq!(
        stats.queue.fetched + stats.queue.batched + stats.queue.submitted,
        0
    );
    assert_eq!(stats.points.credited, 100);
    assert_eq!(
        stats.pages.revoked, 2,
        "revocations come from the validator's standing: no receipt changes"
    );
    // Per epoch, from the stored receipts (the stub credits everything in epoch 1).
    let totals = node.store().epoch_totals(10).unwrap();
    assert_eq!(totals.len(), 1, "{totals:?}");
    assert_eq!((totals[0].epoch, totals[0].points), (1, 100));
    let receipts = node.store().recent_receipts(100).unwrap();
    assert_eq!(receipts.len() as u64, totals[0].batches);
    assert_eq!(receipts.iter().map(|r| r.points).sum::<u64>(), 100);
    assert!(receipts.iter().all(|r| r.verify().is_ok()));
    assert_eq!(stats.pages.failed, 5);
    assert_eq!(
        stats.pages.failed_by_reason.get("robots_disallowed"),
        Some(&1)
    );
    assert!(stats.bandwidth.today_bytes > 0);
    assert!(stats.upload_bytes > 0 && stats.download_bytes > stats.upload_bytes);
    assert!(stats.validators[0].registered && stats.validators[0].reachable);
    let mut fetched = 0;
    let mut receipted = 0;
    while let Ok(ev) = events.try_recv() {
        match ev {
            NodeEvent::Fetched { .. } => fetched += 1,
            NodeEvent::Receipted { .. } => receipted += 1,
            _ => {}
        }
    }
    assert_eq!(fetched, 10);
    assert!(receipted >= 3, "batches of at most 4 records");
    assert_eq!(node.status(), NodeState::Stopped);
    let refused = node
        .activity(&ActivityQuery {
            kind: Some(ActivityKind::Refused),
            ..Default::default()
        })
        .unwrap();
    assert!(
        refused
            .iter()
            .any(|e| e.verdict == "blocked_address" && e.url.contains("10.0.0.1"))
    );
}

/// A job whose links the validator will not follow (`Job::follow_links` false) gets a record
/// without outlinks; the same kind of page leased with links wanted carries them. The signature
/// covers the (empty) list either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_links_only_for_jobs_that_want_them() {
    let site = spawn_site(RobotsMode::Body(ROBOTS.into())).await;
    let (wanted, unwanted) = (site.url("/page/3"), site.url("/page/5"));
    let stub = spawn_stub(vec![wanted.clone(), unwanted.clone()], 60_000).await;
    stub.state
        .lock()
        .unwrap()
        .links_unwanted
        .insert(unwanted.clone());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), &stub, &site)).unwrap();
    let summary = run_until_idle(&node).await;
    assert_eq!(summary.pages, 2);
    let received = stub.state.lock().unwrap().outlinks_received.clone();
    assert!(received.get(&wanted).is_some_and(|&n| n > 0));
    assert_eq!(received.get(&unwanted), Some(&0));
    // The same page fetched with links wanted has some: the difference is the job's flag.
    let r = node.fetch_one(&unwanted).await.unwrap();
    assert!(!r.outlinks.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_releases_leases_and_resume_continues() {
    let site = spawn_site(RobotsMode::NotFound).await;
    let urls: Vec<String> = (0..6).map(|i| site.url(&format!("/page/{i}"))).collect();
    let stub = spawn_stub(urls, 60_000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), &stub, &site);
    cfg.concurrency = 1;
    let node = Node::open(cfg).unwrap();
    node.pause();
    assert!(matches!(
        node.status(),
        NodeState::Paused { until_ms: None }
    ));
    let runner = {
        let node = node.clone();
        tokio::spawn(async move {
            node.run(
                RunOptions {
                    exit_when_idle: true,
                    ..Default::default()
                },
                std::future::pending(),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stub.state.lock().unwrap().credits.len(),
        0,
        "nothing fetched while paused"
    );
    node.pause_for(Duration::from_millis(300));
    assert!(matches!(
        node.status(),
        NodeState::Paused { until_ms: Some(_) }
    ));
    let summary = tokio::time::timeout(Duration::from_secs(30), runner)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(summary.pages, 6);
    assert_eq!(stub.state.lock().unwrap().credits.len(), 6);
}

fn gleaner(data: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_gleaner"));
    c.arg("--data")
        .arg(data)
        .env("GLEANER_CONFIG", data.join("no-such-config.toml"))
        .env("GLEANER_MIN_DOMAIN_DELAY_MS", "0")
        .env("GLEANER_BATCH_RECORDS", "4")
        .env("GLEANER_BATCH_MAX_AGE_SECS", "1")
        .env("GLEANER_LOG", "warn")
        .kill_on_drop(true);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_fetch_clean_key_log_status_config() {
    let site = spawn_site(RobotsMode::Body(ROBOTS.into())).await;
    let dir = tempfile::tempdir().unwrap();
    let allow = site.addr.to_string();

    let out = gleaner(dir.path())
        .args([
            "--json",
            "fetch",
            &site.url("/page/2"),
            "--allow-addr",
            &allow,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec: gleaner_protocol::Record = serde_json::from_slice(&out.stdout).unwrap();
    rec.verify().unwrap();
    assert_eq!(rec.lease_id, "local");

    let out = gleaner(dir.path())
        .args([
            "--json",
            "fetch",
            &site.url("/private/9"),
            "--allow-addr",
            &allow,
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "robots_disallowed");
    let out = gleaner(dir.path())
        .args(["--json", "fetch", "http://2130706433/"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "blocked_address");
    let out = gleaner(dir.path())
        .args(["fetch", "http://169.254.169.254/"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("blocked_address"));

    // clean: plain and gzip files.
    let plain = dir.path().join("a.html");
    std::fs::write(&plain, article(1, 5)).unwrap();
    let gz = dir.path().join("b.html.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(article(2, 5).as_bytes()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
    }
    let out = gleaner(dir.path())
        .arg("clean")
        .arg(&plain)
        .arg(&gz)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (l, n) in lines.iter().zip(["Article 1", "Article 2"]) {
        assert!(l["title"].as_str().unwrap().contains(n));
        assert!(l["text"].as_str().unwrap().contains("river valley"));
        assert_eq!(l["lang"], "en");
        assert!(l["ms"].as_f64().unwrap() >= 0.0);
        assert!(l["file"].is_string());
    }

    // key: created once, 0600, show and export agree.
    let out = gleaner(dir.path())
        .args(["--json", "key", "show"])
        .output()
        .await
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["public_key"], rec.node.to_string());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = gleaner(dir.path())
        .args(["--json", "key", "export"])
        .output()
        .await
        .unwrap();
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seed = hex::decode(exported["secret_seed_hex"].as_str().unwrap()).unwrap();
    let key = gleaner_protocol::SecretKey::from_bytes(&seed.try_into().unwrap());
    assert_eq!(key.public(), rec.node);

    // log: CSV and JSON Lines with filters.
    let out = gleaner(dir.path())
        .args(["log", "--format", "csv"])
        .output()
        .await
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("at_ms,kind,url"));
    assert!(csv.contains("robots_disallowed"));
    let out = gleaner(dir.path())
        .args(["--json", "log", "--kind", "robots"])
        .output()
        .await
        .unwrap();
    let robots_lines = String::from_utf8(out.stdout).unwrap();
    assert!(!robots_lines.is_empty());
    for l in robots_lines.lines() {
        let e: gleaner_collector::ActivityEntry = serde_json::from_str(l).unwrap();
        assert_eq!(e.kind, ActivityKind::Robots);
    }
    let out = gleaner(dir.path())
        .args([
            "--json",
            "log",
            "--verdict",
            "blocked_address",
            "--since",
            "1h",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);

    let out = gleaner(dir.path())
        .args(["--json", "status"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["state"]["state"], "stopped");
    assert!(st["stats"]["bandwidth"]["today_bytes"].as_u64().unwrap() > 0);

    let out = gleaner(dir.path())
        .args(["--json", "config", "show"])
        .env("GLEANER_BANDWIDTH", "12345")
        .output()
        .await
        .unwrap();
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["config"]["limits"]["bandwidth_bytes_per_sec"], 12345);
    let out = gleaner(dir.path())
        .args(["status"])
        .env("GLEANER_BANDWIDTH", "fast")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("GLEANER_BANDWIDTH"));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_leases_and_flushes() {
    let site = spawn_site(RobotsMode::NotFound).await;
    let urls: Vec<String> = (0..40).map(|i| site.url(&format!("/page/{i}"))).collect();
    let stub = spawn_stub(urls, 600_000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = gleaner(dir.path())
        .args([
            "run",
            "--validator",
            &stub.url(),
            "--allow-addr",
            &site.addr.to_string(),
        ])
        // One page per 300 ms: the run is still busy when the signal arrives.
        .env("GLEANER_MIN_DOMAIN_DELAY_MS", "300")
        .env("GLEANER_BATCH_RECORDS", "100")
        .env("GLEANER_BATCH_MAX_AGE_SECS", "3600")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let pid = child.id().unwrap().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = tokio::time::timeout(Duration::from_secs(40), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let s = stub.state.lock().unwrap();
    assert!(
        s.leases.is_empty(),
        "all leases finished or released: {:?}",
        s.leases
    );
    assert!(!s.released.is_empty());
    assert!(
        !s.credits.is_empty(),
        "the partial batch was flushed on exit"
    );
    let store = gleaner_collector::store::Store::open(&dir.path().join("node.sqlite")).unwrap();
    let c = store.counts().unwrap();
    assert_eq!(c.fetched + c.batched + c.submitted, 0);
    assert_eq!(c.receipted as usize, s.credits.len());
}

/// Runs the real binary, SIGKILLs it at pseudo-random moments, restarts it, and checks that no
/// stored record was lost and none was credited twice.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_nothing_and_never_credits_twice() {
    let site = spawn_site(RobotsMode::Body(ROBOTS.into())).await;
    let mut urls: Vec<String> = (0..200).map(|i| site.url(&format!("/page/{i}"))).collect();
    urls.extend((0..10).map(|i| site.url(&format!("/private/{i}"))));
    let stub = spawn_stub(urls, 1_500).await;
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let mut c = gleaner(dir.path());
        c.args([
            "run",
            "--validator",
            &stub.url(),
            "--allow-addr",
            &site.addr.to_string(),
            "--exit-when-idle",
        ])
        // About 70 pages a second: a run takes a few seconds, so the kills land mid-run.
        .env("GLEANER_MIN_DOMAIN_DELAY_MS", "15")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    for _ in 0..6 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait_ms = 150 + (seed >> 33) % 1200;
        let mut child = run().spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait().await;
    }
    assert!(kills >= 3, "the node was killed mid-run");
    // Finish: run until the validator has nothing left (expired leases come back).
    for _ in 0..10 {
        let status = tokio::time::timeout(Duration::from_secs(60), run().status())
            .await
            .expect("a run with --exit-when-idle ends")
            .unwrap();
        assert!(status.success());
        let done = {
            let s = stub.state.lock().unwrap();
            s.queue.is_empty() && s.leases.is_empty()
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1600)).await;
    }
    let s = stub.state.lock().unwrap();
    assert!(s.queue.is_empty() && s.leases.is_empty(), "every job ended");
    assert!(
        s.credits.values().all(|n| *n == 1),
        "a record was credited twice: {:?}",
        s.credits
    );
    assert_eq!(
        s.mismatched_resends, 0,
        "a batch was resent with different bytes"
    );
    // Every stored record is receipted, and exactly the credited ones are stored.
    let conn = rusqlite::Connection::open(dir.path().join("node.sqlite")).unwrap();
    let mut st = conn.prepare("SELECT id, state FROM records").unwrap();
    let rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        rows.iter().all(|(_, state)| state == "receipted"),
        "{rows:?}"
    );
    let stored: HashSet<&String> = rows.iter().map(|(id, _)| id).collect();
    let credited: HashSet<&String> = s.credits.keys().collect();
    assert_eq!(stored, credited);
    // Every page URL ended up in a credited record (possibly fetched twice after a crash, under
    // two leases; both are distinct records), and every private URL was reported.
    let disallowed = s
        .failures
        .iter()
        .filter(|f| f.reason == FailureReason::RobotsDisallowed)
        .count();
    assert!(disallowed >= 10, "{disallowed}");
    assert!(s.credits.len() >= 200);
}

/// A reward leaf for `claimant`.
fn leaf(claimant: gleaner_protocol::PublicKey, amount: u64) -> gleaner_protocol::RewardLeaf {
    gleaner_protocol::RewardLeaf {
        claimant,
        amount,
        locked: 0,
    }
}

/// A site, a stub validator whose jobs are three of its pages, and a node on both (in a new
/// data directory).
async fn node_with_three_pages() -> (Site, Stub, tempfile::TempDir, Node) {
    let site = spawn_site(RobotsMode::Body(ROBOTS.into())).await;
    let urls = (0..3).map(|i| site.url(&format!("/page/{i}"))).collect();
    let stub = spawn_stub(urls, 60_000).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), &stub, &site)).unwrap();
    (site, stub, dir, node)
}

/// What `gleaner [--json] status` prints for the node in `dir` with `validators` configured,
/// having exited 0 (`status` contacts nobody: it shows what the store keeps).
async fn status_of(dir: &Path, validators: &str, json: bool) -> String {
    let mut c = gleaner(dir);
    c.env("GLEANER_VALIDATORS", validators);
    if json {
        c.arg("--json");
    }
    let out = c.arg("status").output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `claimant`'s leaf in `tree` and its proof, against the signed `root`, as a validator serves it.
fn proof_of(
    tree: &gleaner_protocol::RewardTree,
    root: &gleaner_protocol::EpochRoot,
    claimant: &gleaner_protocol::PublicKey,
) -> gleaner_protocol::api::ClaimProof {
    let (leaf, siblings) = tree.proof(claimant).unwrap();
    gleaner_protocol::api::ClaimProof {
        epoch: root.clone(),
        leaf,
        proof: siblings
            .into_iter()
            .map(gleaner_protocol::Digest::from_bytes)
            .collect(),
    }
}

/// The node checks its claims against what the validator signs: its leaf and proof against the
/// epoch's signed root, every listed root's signature, and the key on its own receipts. What
/// does not verify is refused under its code, by the library and by `gleaner rewards` (exit 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reward_claims_are_checked_against_the_signed_roots() {
    use gleaner_protocol::api::ClaimProof;
    use gleaner_protocol::{EpochRoot, RewardTree, SecretKey};

    let (_site, stub, dir, node) = node_with_three_pages().await;
    let checked = node.check_claims(5).await;
    let claims = checked[0].1.as_ref().unwrap();
    assert!(claims.claims.is_empty(), "no closed epoch yet: {claims:?}");
    // Receipts signed by the stub's key are stored: the key the claims must be signed by.
    run_until_idle(&node).await;

    let key = SecretKey::from_bytes(&VALIDATOR_SEED);
    let me = node.payout_key();
    let other = SecretKey::from_bytes(&[42; 32]).public();
    let tree = RewardTree::new(vec![leaf(me, 100), leaf(other, 7)]).unwrap();
    let first = EpochRoot::sign(&key, 1, 1_000, tree.root(), 107, 2);
    // In epoch 2 the tree has no leaf for this node.
    let second_tree = RewardTree::new(vec![leaf(other, 9)]).unwrap();
    let second = EpochRoot::sign(&key, 2, 2_000, second_tree.root(), 9, 1);
    let proof = proof_of(&tree, &first, &me);
    let set = |epochs: Vec<EpochRoot>, proof: ClaimProof| {
        let mut s = stub.state.lock().unwrap();
        s.epochs = epochs;
        s.proofs = [((1, me.to_string()), proof)].into();
    };
    set(vec![second.clone(), first.clone()], proof.clone());
    let checked = node.check_claims(5).await;
    let claims = checked[0].1.as_ref().unwrap();
    assert_eq!(claims.validator, key.public());
    let got: Vec<(u64, u64, bool)> = claims
        .claims
        .iter()
        .map(|c| (c.epoch, c.amount, c.proven))
        .collect();
    assert_eq!(got, [(2, 0, false), (1, 100, true)], "newest first");
    assert!(!claims.claims[0].leaf, "epoch 2's tree has no leaf for it");

    // With epoch 2's leaves published, the missing leaf is proven: the leaves rebuild the
    // signed root without one. Leaves that hold one after all are a lie.
    let publish = |leaves: Vec<gleaner_protocol::RewardLeaf>| {
        stub.state.lock().unwrap().details = [(
            2,
            gleaner_protocol::api::EpochDetail {
                root: second.clone(),
                leaves,
            },
        )]
        .into();
    };
    publish(second_tree.leaves().to_vec());
    let checked = node.check_claims(1).await;
    let claim = &checked[0].1.as_ref().unwrap().claims[0];
    assert_eq!(
        (claim.epoch, claim.amount, claim.proven, claim.leaf),
        (2, 0, true, false)
    );
    publish(vec![leaf(other, 9), leaf(me, 1)]);
    let e = node.check_claims(1).await.remove(0).1.unwrap_err();
    assert_eq!(e.code(), "bad_proof", "{e}");
    stub.state.lock().unwrap().details.clear();

    // A running node checks its claim in the newest closed epoch itself, once an epoch closes,
    // and shows it in its stats.
    set(vec![first.clone()], proof.clone());
    run_until_idle(&node).await;
    let health = node.stats().unwrap().validators.remove(0);
    let claim = health.claim.expect("claim checked");
    assert_eq!((claim.epoch, claim.amount, claim.proven), (1, 100, true));
    assert_eq!(health.claim_error, None);
    // A new payout key is checked at once, not at the next close: the tree has no leaf for it.
    let elsewhere = SecretKey::from_bytes(&[44; 32]).public();
    let mut settings = node.settings();
    settings.payout = Some(elsewhere.to_string());
    node.update_settings(settings.clone()).unwrap();
    run_until_idle(&node).await;
    let claim = node.stats().unwrap().validators.remove(0).claim.unwrap();
    assert_eq!(
        (claim.claimant, claim.amount, claim.proven),
        (elsewhere, 0, false),
        "{claim:?}"
    );
    settings.payout = None;
    node.update_settings(settings).unwrap();

    let code = |node: &Node| {
        let rt = tokio::runtime::Handle::current();
        let node = node.clone();
        std::thread::spawn(move || rt.block_on(node.check_claims(5)))
            .join()
            .unwrap()
            .remove(0)
            .1
            .unwrap_err()
            .code()
    };
    // A leaf with more points than the signed tree holds.
    let mut more = proof.clone();
    more.leaf.amount = 1_000;
    set(vec![second.clone(), first.clone()], more);
    assert_eq!(code(&node), "bad_proof");
    // A listed root changed after signing, even one whose claim is not asked for.
    let mut changed = first.clone();
    changed.total += 1;
    set(vec![second.clone(), changed], proof.clone());
    assert_eq!(code(&node), "bad_epoch_root");
    // A root signed by a key other than the one on this node's receipts.
    let stranger = SecretKey::from_bytes(&[43; 32]);
    let theirs = EpochRoot::sign(&stranger, 3, 3_000, tree.root(), 107, 2);
    set(vec![theirs, second.clone(), first.clone()], proof.clone());
    assert_eq!(code(&node), "wrong_validator");
    // A running node records it (a third epoch closed, so it checks again) and shows no claim.
    run_until_idle(&node).await;
    let health = node.stats().unwrap().validators.remove(0);
    assert_eq!(health.claim, None);
    assert!(
        health
            .claim_error
            .as_deref()
            .is_some_and(|e| e.starts_with("wrong_validator: ")),
        "{:?}",
        health.claim_error
    );

    // The CLI says the same, as JSON, and exits 1.
    let url = stub.url();
    let rewards = |more: &'static [&'static str]| {
        let mut c = gleaner(dir.path());
        c.args(["--json", "rewards", "--validator", &url])
            .args(more);
        c
    };
    let out = rewards(&[]).output().await.unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "wrong_validator", "{v}");
    // And the claims as they are, exit 0.
    set(vec![second, first], proof);
    let out = rewards(&["--last", "1"]).output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The newest epoch only: every root checked, one claim shown. As text, both epochs.
    assert_eq!(v["epochs_listed"], 2, "{v}");
    assert_eq!(v["claims"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        (&v["claims"][0]["epoch"], &v["claims"][0]["proven"]),
        (&serde_json::json!(2), &serde_json::json!(false)),
        "{v}"
    );
    let out = gleaner(dir.path())
        .args(["rewards", "--validator", &url])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("epoch")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("  epoch    2 ") && lines[0].contains("no leaf for this key"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("  epoch    1 ")
            && lines[1].contains("claimable        100 points  proof verified"),
        "{text}"
    );
}

/// A validator older than `GET /v1/epochs` answers it 404: a running node shows no claim and no
/// error, and asks once per open epoch, not at every standing refresh. A validator that is down
/// or overloaded (5xx) is asked again at the next refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_without_epochs_is_not_asked_at_every_refresh() {
    let site = spawn_site(RobotsMode::Body(ROBOTS.into())).await;
    let stub = spawn_stub(vec![], 60_000).await;
    let fail = |status| stub.state.lock().unwrap().epochs_fail = status;
    fail(Some(503));
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), &stub, &site)).unwrap();
    let asked = || stub.state.lock().unwrap().epochs_asked;

    // Overloaded: asked again at each refresh.
    for _ in 0..2 {
        node.submit_round(true, true).await.unwrap();
    }
    assert_eq!(asked(), 2);
    // Older: asked once for the open epoch.
    fail(Some(404));
    for _ in 0..3 {
        node.submit_round(true, true).await.unwrap();
    }
    assert_eq!(asked(), 3, "one question for the open epoch");
    let health = node.stats().unwrap().validators.remove(0);
    assert!(health.standing.is_some(), "the standing still refreshes");
    assert_eq!((health.claim, health.claim_error), (None, None));

    // An epoch closes (the open epoch moves on): asked once more.
    let key = gleaner_protocol::SecretKey::from_bytes(&VALIDATOR_SEED);
    let tree = gleaner_protocol::RewardTree::new(vec![leaf(node.payout_key(), 5)]).unwrap();
    let root = gleaner_protocol::EpochRoot::sign(&key, 1, 1_000, tree.root(), 5, 1);
    stub.state.lock().unwrap().epochs = vec![root];
    for _ in 0..2 {
        node.submit_round(true, true).await.unwrap();
    }
    assert_eq!(asked(), 4);

    // The validator learns to list epochs: the next close is checked and shown.
    {
        let mut s = stub.state.lock().unwrap();
        s.epochs_fail = None;
        let second = gleaner_protocol::EpochRoot::sign(&key, 2, 2_000, tree.root(), 5, 1);
        s.epochs.insert(0, second);
    }
    node.submit_round(true, true).await.unwrap();
    let health = node.stats().unwrap().validators.remove(0);
    let claim = health.claim.expect("checked after the close");
    assert_eq!((claim.epoch, claim.proven), (2, false), "no proof served");
    assert_eq!(asked(), 5);
}

/// What a running node last saw of its validators (standing, revocations, checked claim) is
/// kept in its store: the next start shows it before any validator answers, and `gleaner
/// status`, which contacts nobody, prints it. A validator never heard from says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validators_last_word_outlives_the_run_and_shows_in_status() {
    use gleaner_protocol::{EpochRoot, RewardTree, SecretKey};

    let (site, stub, dir, node) = node_with_three_pages().await;
    let me = node.payout_key();
    let key = SecretKey::from_bytes(&VALIDATOR_SEED);
    let tree = RewardTree::new(vec![leaf(me, 40)]).unwrap();
    let root = EpochRoot::sign(&key, 1, 1_000, tree.root(), 40, 1);
    {
        let mut s = stub.state.lock().unwrap();
        s.revoked = 3;
        s.suspended = Some("hammered a site".into());
        s.epochs = vec![root.clone()];
        s.proofs = [((1, me.to_string()), proof_of(&tree, &root, &me))].into();
    }
    run_until_idle(&node).await;
    let seen = node.stats().unwrap().validators.remove(0);
    drop(node);

    // The validator goes away; a new start still knows what it said.
    let gone = stub.url();
    let node = Node::open(config(dir.path(), &stub, &site)).unwrap();
    let stats = node.stats().unwrap();
    let kept = &stats.validators[0];
    assert_eq!(stats.pages.revoked, 3);
    assert_eq!(kept.standing.as_ref().unwrap().records_revoked, 3);
    assert_eq!(kept.claim, seen.claim);
    assert_eq!(kept.claim.as_ref().unwrap().amount, 40);
    assert_eq!(kept.last_ok_ms, seen.last_ok_ms);
    assert!(
        !kept.reachable && !kept.registered,
        "this run has not reached it"
    );
    drop(node);

    let validators = format!("{gone}, http://127.0.0.1:9");
    let text = status_of(dir.path(), &validators, false).await;
    assert!(
        text.contains(&format!("validator  {gone} (last answer ")),
        "{text}"
    );
    assert!(text.contains(", 3 records revoked"), "{text}");
    assert!(
        text.contains("credibility 0.10 (3 cross-checks passed, 1 failed), "),
        "{text}"
    );
    assert!(
        text.contains(
            "SUSPENDED by the validator's operator (no jobs, no batches taken): hammered a site"
        ),
        "{text}"
    );
    assert!(text.contains("3 accepted records revoked later"), "{text}");
    assert!(
        text.contains("claim in epoch 1: 40 points, proof verified against the signed root"),
        "{text}"
    );
    assert!(
        text.contains("validator  http://127.0.0.1:9 (no answer seen yet)"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&status_of(dir.path(), &validators, true).await).unwrap();
    let shown = &v["stats"]["validators"];
    assert_eq!(shown[0]["standing"]["records_revoked"], 3, "{v}");
    assert_eq!(shown[0]["claim"]["amount"], 40, "{v}");
    assert!(shown[1]["standing"].is_null(), "{v}");

    // A saved entry that no longer reads is skipped, not fatal.
    gleaner_collector::store::Store::open(&dir.path().join("node.sqlite"))
        .unwrap()
        .save_validator_health(&[(gone.clone(), "{\"url\": 7".into())], 0)
        .unwrap();
    let node = Node::open(config(dir.path(), &stub, &site)).unwrap();
    let fresh = node.stats().unwrap().validators.remove(0);
    assert_eq!((fresh.last_ok_ms, fresh.standing), (None, None));
}

/// Validators' numbers are theirs to choose, and a hostile one may send the largest there are:
/// receipts crediting `u64::MAX` a record and standings of `u64::MAX` from two validators. The
/// node stores and sums them saturating; its stats, epochs and status still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_numbers_a_validator_can_send_break_no_sums() {
    let site = spawn_site(RobotsMode::Body(ROBOTS.into())).await;
    let urls = (0..6).map(|i| site.url(&format!("/page/{i}"))).collect();
    let stub = spawn_stub(urls, 60_000).await;
    let other = spawn_stub(vec![], 60_000).await;
    for s in [&stub, &other] {
        let mut s = s.state.lock().unwrap();
        s.record_points = Some(u64::MAX);
        s.points = u64::MAX;
        s.revoked = u64::MAX;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), &stub, &site);
    cfg.validators.push(other.url());
    let node = Node::open(cfg).unwrap();
    let summary = run_until_idle(&node).await;
    assert_eq!(summary.pages, 6);

    let stats = node.stats().unwrap();
    assert_eq!(stats.pages.accepted, 6, "{:?}", stats.pages);
    assert_eq!(stats.points.credited, u64::MAX);
    assert_eq!(stats.points.validator_total, u64::MAX);
    assert_eq!(stats.pages.revoked, u64::MAX);
    let epochs = node.store().epoch_totals(5).unwrap();
    // Six records in batches of at most four: two batches or more (timing decides), each
    // receipt at `u64::MAX`, whose sum no integer holds.
    assert_eq!(epochs[0].points, u64::MAX);
    assert!(epochs[0].batches >= 2, "{epochs:?}");
    let out = gleaner(dir.path())
        .env(
            "GLEANER_VALIDATORS",
            format!("{}, {}", stub.url(), other.url()),
        )
        .args(["--json", "status"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A validator that revokes records it accepted (a failed cross-check, a page found gone) lists
/// them in its revocation log. The node reads its own entries at each standing refresh and
/// keeps them: which pages, why, and the points taken back, in stats, `gleaner status` and an
/// event. Whatever else a validator's log holds (other nodes' entries, entries out of order or
/// not signed by the validator, a record twice) is skipped, and a log already read is not asked
/// for again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_records_are_read_from_the_validators_log_and_shown() {
    use gleaner_protocol::api::Revocation;
    use gleaner_protocol::{Digest, SecretKey};

    let (site, stub, dir, node) = node_with_three_pages().await;
    run_until_idle(&node).await;
    let me = node.public_key();
    let mut ids: Vec<Digest> = stub
        .state
        .lock()
        .unwrap()
        .credits
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 3);
    let stranger = SecretKey::from_bytes(&[0x5e; 32]);
    let signed_by = |key: &SecretKey, seq, id: Digest, node, reason: &str| {
        Revocation::sign(
            key,
            seq,
            id,
            node,
            format!("https://example.org/{seq}"),
            1,
            reason.into(),
        )
    };
    let validator = SecretKey::from_bytes(&VALIDATOR_SEED);
    let entry = |seq, id, node, reason: &str| signed_by(&validator, seq, id, node, reason);
    let mut tampered = entry(8, ids[2], me, "failed_cross_check");
    tampered.reason = "page_not_found".into();
    let asked = || stub.state.lock().unwrap().revocations_asked;
    let mut events = node.subscribe();
    {
        let mut s = stub.state.lock().unwrap();
        s.revoked = 2;
        s.revocations = vec![
            entry(3, ids[0], me, "failed_cross_check"),
            entry(
                5,
                Digest::of(b"theirs"),
                stranger.public(),
                "failed_cross_check",
            ),
            entry(4, ids[1], me, "out_of_order"),
            signed_by(&stranger, 6, ids[2], me, "not_the_validators"),
            entry(7, ids[1], me, "page_not_found"),
            tampered,
            entry(9, ids[0], me, "twice"),
        ];
    }
    node.submit_round(false, true).await.unwrap();
    assert_eq!(asked(), 1);
    let stats = node.stats().unwrap();
    assert_eq!(stats.pages.revoked, 2);
    assert_eq!(stats.pages.accepted, 3, "what the receipts said");
    assert_eq!((stats.points.credited, stats.points.taken_back), (30, 20));
    let revoked = node.revoked(10).unwrap();
    let seen: Vec<_> = revoked
        .iter()
        .map(|r| (r.seq, r.reason.as_str(), r.points, r.known))
        .collect();
    assert_eq!(
        seen,
        [
            (7, "page_not_found", 10, true),
            (3, "failed_cross_check", 10, true)
        ]
    );
    assert_eq!(revoked[0].record_id, ids[1].to_string());
    assert_eq!(revoked[0].url, "https://example.org/7");
    // Each fetched page says what became of it: two revoked (their reasons), one accepted.
    let pages: Vec<String> = (0..3).map(|i| site.url(&format!("/page/{i}"))).collect();
    let mut asked_for: Vec<&str> = pages.iter().map(String::as_str).collect();
    asked_for.push("http://nowhere.example/");
    let outcomes = node.page_outcomes(&asked_for).unwrap();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    let mut seen: Vec<_> = outcomes
        .values()
        .map(|o| (o.outcome.as_str(), o.reason.as_deref(), o.points))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("accepted", Some("ok"), 10),
            ("revoked", Some("failed_cross_check"), 0),
            ("revoked", Some("page_not_found"), 0)
        ]
    );
    let event = loop {
        match events.try_recv() {
            Ok(NodeEvent::Revoked {
                records, points, ..
            }) => break (records, points),
            Ok(_) => continue,
            Err(e) => panic!("no revocation event: {e:?}"),
        }
    };
    assert_eq!(event, (2, 20));

    // Everything the validator counts is kept: its log is not asked again.
    node.submit_round(false, true).await.unwrap();
    assert_eq!(asked(), 1);

    // One more, for a record this store never held (the key was used elsewhere): listed, and
    // no points taken back from this node's receipts.
    {
        let mut s = stub.state.lock().unwrap();
        s.revoked = 3;
        s.revocations.push(entry(
            12,
            Digest::of(b"elsewhere"),
            me,
            "failed_cross_check",
        ));
    }
    node.submit_round(false, true).await.unwrap();
    assert_eq!(asked(), 2);
    let stats = node.stats().unwrap();
    assert_eq!((stats.pages.revoked, stats.points.taken_back), (3, 20));
    let newest = node.revoked(1).unwrap().remove(0);
    assert_eq!((newest.seq, newest.points, newest.known), (12, 0, false));

    // A validator older than the log (404) is asked once per count it reports.
    {
        let mut s = stub.state.lock().unwrap();
        s.revoked = 4;
        s.revocations_fail = Some(404);
    }
    for _ in 0..3 {
        node.submit_round(false, true).await.unwrap();
    }
    assert_eq!(asked(), 3);
    assert_eq!(
        node.stats().unwrap().pages.revoked,
        4,
        "the validator's count"
    );
    stub.state.lock().unwrap().revoked = 5;
    node.submit_round(false, true).await.unwrap();
    assert_eq!(asked(), 4);
    drop(node);

    // `gleaner status` lists them, newest first, and says what was taken back.
    let text = status_of(dir.path(), &stub.url(), false).await;
    assert!(
        text.contains("5 accepted records revoked later by validators' checks, the newest:"),
        "{text}"
    );
    let first =
        text.find("https://example.org/12 (failed_cross_check, epoch 1, 0 points taken back)");
    let second = text.find("https://example.org/7 (page_not_found, epoch 1, 10 points taken back)");
    assert!(first.is_some() && first < second, "{text}");
    assert!(
        text.contains("points     30 credited, 20 of them taken back by revocations"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&status_of(dir.path(), &stub.url(), true).await).unwrap();
    assert_eq!(v["revoked"].as_array().map(Vec::len), Some(3), "{v}");
    assert_eq!(v["revoked"][1]["reason"], "page_not_found", "{v}");
    assert_eq!(v["stats"]["points"]["taken_back"], 20, "{v}");

    // `gleaner log` says the same of each page: in its table, and in both exports (the
    // robots.txt request and other entries carry no outcome).
    let log = |args: &'static [&'static str]| {
        let mut c = gleaner(dir.path());
        c.args(args);
        async move {
            let out = c.output().await.unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let table = log(&["log"]).await;
    let row_of = |text: &str, url: &str| {
        text.lines()
            .find(|l| l.ends_with(&format!(" {url}")) && l.contains(" page "))
            .unwrap_or_else(|| panic!("no row for {url}:\n{text}"))
            .to_string()
    };
    let mut said: Vec<String> = pages
        .iter()
        .map(|u| {
            let row = row_of(&table, u);
            [
                "accepted +10",
                "revoked: failed_cross_check",
                "revoked: page_not_found",
            ]
            .into_iter()
            .find(|o| row.contains(o))
            .unwrap_or_else(|| panic!("no outcome in {row}"))
            .to_string()
        })
        .collect();
    said.sort();
    assert_eq!(
        said,
        [
            "accepted +10",
            "revoked: failed_cross_check",
            "revoked: page_not_found"
        ]
    );
    let robots = table
        .lines()
        .find(|l| l.contains(" robots "))
        .expect("a robots.txt row");
    let cols: Vec<&str> = robots.split_whitespace().collect();
    assert_eq!(
        cols[cols.len() - 2],
        "-",
        "no outcome for robots.txt: {robots}"
    );
    let csv = log(&["log", "--format", "csv"]).await;
    assert!(
        csv.starts_with(gleaner_collector::activity::CSV_HEADER),
        "{csv}"
    );
    let outcome_cols: Vec<String> = pages
        .iter()
        .map(|u| {
            let line = csv
                .lines()
                .find(|l| l.contains(&format!(",page,{u},")))
                .unwrap_or_else(|| panic!("no CSV row for {u}"));
            line.rsplitn(4, ',').take(3).collect::<Vec<_>>().join("|")
        })
        .collect();
    assert!(
        outcome_cols.contains(&"0|page_not_found|revoked".to_string()),
        "{outcome_cols:?}"
    );
    assert!(
        outcome_cols.contains(&"10|ok|accepted".to_string()),
        "{outcome_cols:?}"
    );
    let jsonl = log(&["--json", "log", "--kind", "page"]).await;
    let mut outcomes: Vec<String> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| pages.iter().any(|u| v["url"] == u.as_str()))
        .map(|v| {
            v["outcome"]["outcome"]
                .as_str()
                .unwrap_or("none")
                .to_string()
        })
        .collect();
    outcomes.sort();
    assert_eq!(outcomes, ["accepted", "revoked", "revoked"]);
    drop(site);
}
