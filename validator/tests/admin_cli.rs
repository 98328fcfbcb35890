//! The operator's commands through the binary. `backup` and `check` next to a serving validator:
//! the backup reads back through the admin commands as the original does, keeps the validator's
//! key and the exported datasets, checks clean (and a body or dataset damaged afterwards is
//! found), and a destination that holds files is refused. `crawl add` queues seeds and says what
//! it refused, and `crawl list` shows each request with how far it has got. `nodes suspend` and
//! `nodes resume` mark a node and show in `nodes list`. `nodes checks` prints a node's whole
//! check history.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use gleaner_validator::testkit::fill_store;

fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gleaner-validator"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn stdout_of(data: &Path, args: &[&str]) -> String {
    let out = cli(data, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A `gleaner-validator serve` on `data`, killed when dropped.
struct Server(std::process::Child);

impl Server {
    fn start(data: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_gleaner-validator"))
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", &listen])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = Server(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(
                Instant::now() < deadline,
                "the server did not listen on {listen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_backup_taken_next_to_a_server_reads_back_the_same_and_keeps_the_key() {
    let src = tempfile::tempdir().unwrap();
    let (identity, accepted) = fill_store(src.path(), 30).unwrap();
    let node = gleaner_protocol::SecretKey::from_bytes(&[7; 32])
        .public()
        .to_string();
    let _server = Server::start(src.path());

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("backup");
    let dest_arg = dest.to_str().unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&stdout_of(src.path(), &["backup", "--to", dest_arg])).unwrap();
    assert_eq!(report["path"], dest_arg);
    assert_eq!(
        report["records"].as_u64(),
        Some(accepted as u64),
        "{report}"
    );
    assert_eq!(
        report["files"],
        serde_json::json!(["validator.key"]),
        "{report}"
    );
    assert!(report["body_bytes"].as_u64().unwrap() > 0, "{report}");

    for args in [
        &["ledger", "show", node.as_str()][..],
        &["epoch", "list"],
        &["nodes", "list"],
    ] {
        assert_eq!(
            stdout_of(&dest, args),
            stdout_of(src.path(), args),
            "{args:?}"
        );
    }
    // The key came with the backup (`key show` would have made a new one).
    assert_eq!(
        stdout_of(&dest, &["key", "show"]).trim(),
        identity.public().to_string()
    );

    // The backup checks clean end to end; a body damaged afterwards is found.
    let report: serde_json::Value = serde_json::from_str(&stdout_of(&dest, &["check"])).unwrap();
    assert_eq!(report["problems"], 0, "{report}");
    assert_eq!(report["bodies"].as_u64(), Some(accepted as u64), "{report}");
    let segment = dest.join("validator.db-bodies").join("000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(6).position(|w| w == b"\"text\"").unwrap() + 20;
    bytes[at] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let damaged = cli(&dest, &["check"]);
    assert!(!damaged.status.success());
    let report: serde_json::Value = serde_json::from_slice(&damaged.stdout).unwrap();
    assert_eq!(report["problems"], 1, "{report}");
    assert_eq!(report["listed"][0]["code"], "body_mismatch", "{report}");
    let stderr = String::from_utf8_lossy(&damaged.stderr);
    assert!(
        stderr.contains("the check found 1 problem(s)") && stderr.contains("body_mismatch"),
        "{stderr}"
    );

    let again = cli(src.path(), &["backup", "--to", dest_arg]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("invalid_request") && stderr.contains("not empty"),
        "{stderr}"
    );
}

/// `dataset export` and `dataset list` use the directory the server serves datasets from (the
/// config file's `datasets_dir`), and a backup copies the datasets from there unless told not to.
#[test]
fn datasets_go_where_the_config_says_and_come_with_the_backup() {
    let src = tempfile::tempdir().unwrap();
    let (_identity, accepted) = fill_store(src.path(), 30).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let served = elsewhere.path().join("served");
    let config = format!(
        "# Exports on the big disk.\ndatasets_dir = {:?}\n# Closed by hand.\nepoch_interval_secs = 0\n",
        served.to_str().unwrap()
    );
    std::fs::write(src.path().join("validator.toml"), &config).unwrap();

    let export: serde_json::Value = serde_json::from_str(&stdout_of(
        src.path(),
        &["dataset", "export", "--name", "nightly"],
    ))
    .unwrap();
    assert_eq!(export["rows"].as_u64(), Some(accepted as u64), "{export}");
    assert_eq!(export["dir"], served.join("nightly").to_str().unwrap());
    assert!(served.join("nightly/manifest.json").is_file());
    assert!(!src.path().join("datasets").exists());
    let listed = stdout_of(src.path(), &["dataset", "list"]);
    assert!(listed.contains("\"name\":\"nightly\""), "{listed}");

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("backup");
    let report: serde_json::Value = serde_json::from_str(&stdout_of(
        src.path(),
        &["backup", "--to", dest.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(
        report["datasets"],
        serde_json::json!(["nightly"]),
        "{report}"
    );
    assert!(report["dataset_bytes"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        report["files"],
        serde_json::json!(["validator.key", "validator.toml"])
    );
    assert_eq!(
        std::fs::read(dest.join("datasets/nightly/manifest.json")).unwrap(),
        std::fs::read(served.join("nightly/manifest.json")).unwrap()
    );
    // The copy's config no longer names the original's directory, so the copy serves its own
    // datasets: a restore on a machine without that directory loses none of them.
    assert_eq!(
        report["datasets_dir_reset"],
        served.to_str().unwrap(),
        "{report}"
    );
    let copied_config = std::fs::read_to_string(dest.join("validator.toml")).unwrap();
    assert!(
        copied_config.ends_with("\n# Closed by hand.\nepoch_interval_secs = 0\n"),
        "{copied_config}"
    );
    let listed_copy = stdout_of(&dest, &["dataset", "list"]);
    assert_eq!(listed_copy, listed);
    std::fs::remove_dir_all(&served).unwrap();
    let listed_copy = stdout_of(&dest, &["dataset", "list"]);
    assert_eq!(listed_copy, listed, "the copy's own, not the original's");
    let report: serde_json::Value = serde_json::from_str(&stdout_of(&dest, &["check"])).unwrap();
    assert_eq!(
        (report["problems"].as_u64(), report["datasets"].as_u64()),
        (Some(0), Some(1)),
        "{report}"
    );
    // Export again into the original's directory, for the checks below.
    stdout_of(src.path(), &["dataset", "export", "--name", "nightly"]);

    // `check` verifies the served datasets too: clean, then a damaged shard is found (and
    // `--no-datasets` leaves them be).
    let report: serde_json::Value =
        serde_json::from_str(&stdout_of(src.path(), &["check"])).unwrap();
    assert_eq!(
        (report["problems"].as_u64(), report["datasets"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(
        report["dataset_rows"].as_u64(),
        Some(accepted as u64),
        "{report}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(served.join("nightly/manifest.json")).unwrap())
            .unwrap();
    let shard = served
        .join("nightly")
        .join(manifest["shards"][0]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&shard, bytes).unwrap();
    let damaged = cli(src.path(), &["check"]);
    assert!(!damaged.status.success());
    let report: serde_json::Value = serde_json::from_slice(&damaged.stdout).unwrap();
    assert_eq!(report["listed"][0]["code"], "dataset_invalid", "{report}");
    assert!(
        report["listed"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("dataset nightly:"),
        "{report}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&stdout_of(src.path(), &["check", "--no-datasets"])).unwrap();
    assert_eq!(
        (report["problems"].as_u64(), report["datasets"].as_u64()),
        (Some(0), Some(0))
    );

    let bare = out.path().join("bare");
    let report: serde_json::Value = serde_json::from_str(&stdout_of(
        src.path(),
        &["backup", "--to", bare.to_str().unwrap(), "--no-datasets"],
    ))
    .unwrap();
    assert_eq!(report["datasets"], serde_json::json!([]), "{report}");
    assert!(!bare.join("datasets").exists());
    // Without its datasets the copy's config is kept as it was: they are still where it says.
    assert!(report.get("datasets_dir_reset").is_none(), "{report}");
    assert_eq!(
        std::fs::read_to_string(bare.join("validator.toml")).unwrap(),
        config
    );
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn crawl_add_then_list_shows_each_request_and_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(json_lines(&cli(data, &["crawl", "list"])).is_empty());

    let added = json_lines(&cli(
        data,
        &[
            "crawl",
            "add",
            "--seed",
            "https://news.example/",
            "--seed",
            "https://news.example/about",
            "--seed",
            "ftp://files.example/x",
            "--domain",
            "cdn.example",
            "--max-pages",
            "40",
        ],
    ));
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["id"], 1);
    assert_eq!(added[0]["queued"], 2);
    assert_eq!(
        added[0]["refused"][0][0], "ftp://files.example/x",
        "{}",
        added[0]
    );
    // The same seed again is already seen: nothing new is queued.
    let again = json_lines(&cli(
        data,
        &["crawl", "add", "--seed", "https://news.example/"],
    ));
    assert_eq!(
        (
            again[0]["queued"].as_u64(),
            again[0]["already_seen"].as_u64()
        ),
        (Some(0), Some(1))
    );

    let listed = json_lines(&cli(data, &["crawl", "list"]));
    assert_eq!(listed.len(), 2);
    let first = &listed[0];
    assert_eq!(first["requester"], "operator-cli");
    assert_eq!(
        first["scope"],
        serde_json::json!(["cdn.example", "news.example"])
    );
    assert_eq!(
        (first["max_pages"].as_u64(), first["max_depth"].as_u64()),
        (Some(40), Some(3))
    );
    assert_eq!(first["pages_queued"], 2);
    assert_eq!(first["pages"], serde_json::json!({"queued": 2}));
    assert_eq!(first["finished"], false);
    // Nothing of the second was queued: it is finished as it stands.
    assert_eq!(listed[1]["pages"], serde_json::json!({}));
    assert_eq!(listed[1]["finished"], true);

    // Cancelled: its queued pages leave the frontier; an unknown request is not found.
    let cancelled = json_lines(&cli(data, &["crawl", "cancel", "1"]));
    assert_eq!(cancelled[0]["pages_cancelled"], 2, "{}", cancelled[0]);
    let listed = json_lines(&cli(data, &["crawl", "list"]));
    assert_eq!(listed[0]["pages"], serde_json::json!({"cancelled": 2}));
    assert_eq!(listed[0]["finished"], true);
    let unknown = cli(data, &["crawl", "cancel", "99"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("crawl request 99"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    // Without a seed or sitemap, clap refuses before the store is touched.
    let bad = cli(data, &["crawl", "add", "--max-pages", "5"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(json_lines(&cli(data, &["crawl", "list"])).len(), 2);
}

/// `nodes suspend` and `nodes resume` through the binary: the suspension shows in `nodes list`
/// with its reason and time; an unknown node, a bad key and an empty reason fail with a message
/// and change nothing.
#[test]
fn nodes_suspend_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let node = gleaner_protocol::SecretKey::from_bytes(&[74; 32]).public();
    let stranger = gleaner_protocol::SecretKey::from_bytes(&[75; 32]).public();
    gleaner_validator::Store::open(data)
        .unwrap()
        .register_node(&node, &node, "test/1", 1_000)
        .unwrap();
    let (node, stranger) = (node.to_string(), stranger.to_string());
    let suspension = |nodes: &[serde_json::Value]| {
        (
            nodes[0]["suspended_reason"].clone(),
            nodes[0]["suspended_at_ms"].is_i64(),
        )
    };

    for (args, says) in [
        (
            vec!["nodes", "suspend", &stranger, "--reason", "spam"],
            "not found",
        ),
        (
            vec!["nodes", "suspend", "not-a-key", "--reason", "spam"],
            "node key",
        ),
        (vec!["nodes", "suspend", &node, "--reason", " "], "reason"),
        (vec!["nodes", "resume", &stranger], "not found"),
    ] {
        let out = cli(data, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let listed = json_lines(&cli(data, &["nodes", "list"]));
    assert_eq!(suspension(&listed), (serde_json::Value::Null, false));

    let done = json_lines(&cli(
        data,
        &[
            "nodes",
            "suspend",
            &node,
            "--reason",
            "copied other nodes' pages",
        ],
    ));
    assert_eq!(done[0]["reason"], "copied other nodes' pages");
    assert_eq!(done[0]["leases_released"], 0);
    let listed = json_lines(&cli(data, &["nodes", "list"]));
    assert_eq!(
        suspension(&listed),
        (serde_json::json!("copied other nodes' pages"), true)
    );

    let resumed = json_lines(&cli(data, &["nodes", "resume", &node]));
    assert_eq!(resumed[0]["was_suspended"], true);
    let listed = json_lines(&cli(data, &["nodes", "list"]));
    assert_eq!(suspension(&listed), (serde_json::Value::Null, false));
}

/// `nodes checks` prints a node's whole check history, oldest first, across the pages it reads
/// (1,000 rows each), with a count by verdict on stderr; another node's rows are not in it, and
/// a bad key fails with a message. The rows are written straight into the database here: the
/// server's tests make them by real cross-checks.
#[test]
fn nodes_checks_prints_the_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let node = gleaner_protocol::SecretKey::from_bytes(&[76; 32]).public();
    let other = gleaner_protocol::SecretKey::from_bytes(&[77; 32]).public();
    drop(gleaner_validator::Store::open(data).unwrap());
    let conn = rusqlite::Connection::open(data.join(gleaner_validator::store::DB_FILE)).unwrap();
    let (node, other) = (node.to_string(), other.to_string());
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..1_203i64 {
        let who = if i % 100 == 7 { &other } else { &node };
        let verdict = match i {
            9 => "page_gone",
            _ if i % 50 == 3 => "failed",
            _ => "passed",
        };
        tx.execute(
            "INSERT INTO cross_checks(id, url, primary_record, primary_node, check_node,
                                      outcome, created_at_ms, similarity)
             VALUES (?1, 'https://a.example/' || ?1, x'01', ?2, 'c', 'agreed', ?1, 0.9)",
            rusqlite::params![i, who],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO node_judgements(node, check_id, at_ms, verdict, credibility_before,
                                         credibility_after)
             VALUES (?1, ?2, ?2, ?3, 0.25, 0.3)",
            rusqlite::params![who, i, verdict],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(conn);

    let out = cli(data, &["nodes", "checks", &node]);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1_203 - 12);
    let checks: Vec<i64> = rows.iter().map(|r| r["check"].as_i64().unwrap()).collect();
    let mine: Vec<i64> = (0..1_203).filter(|i| i % 100 != 7).collect();
    assert_eq!(
        checks, mine,
        "every row of the node, oldest first, none twice"
    );
    assert_eq!(rows[0]["role"], "primary");
    assert_eq!(rows[0]["url"], "https://a.example/0");
    assert_eq!(rows[8]["check"], 9);
    assert_eq!(rows[8]["verdict"], "page_gone");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1166 passed, 24 failed, 1 page gone"),
        "{stderr}"
    );
    let bad = cli(data, &["nodes", "checks", "not-a-key"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("node key"));
}
