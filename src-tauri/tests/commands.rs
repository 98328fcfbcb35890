//! The commands through Tauri's mock runtime (no display): what the dashboard sends, what it gets.
//! The node is the real library (`gleaner-collector`) in a temporary folder; nothing is fetched
//! except from a local server the test starts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gleaner_app::node::collector::CollectorNode;
use gleaner_app::state::AppState;
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;
use tauri::{App, Listener, WebviewWindow, WebviewWindowBuilder};

struct Harness {
    app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    logins: Arc<Mutex<Vec<bool>>>,
}

fn harness(dir: &Path) -> Harness {
    let node = Arc::new(CollectorNode::open(&dir.join("config.toml"), &dir.join("node")).unwrap());
    node.start();
    let logins = Arc::new(Mutex::new(Vec::new()));
    let seen = logins.clone();
    let state = AppState::new(
        node,
        dir.join("app.json"),
        dir.join("exports"),
        Box::new(move |on| {
            seen.lock().unwrap().push(on);
            Ok(())
        }),
    )
    .unwrap();
    let app = gleaner_app::with_commands(mock_builder())
        .manage(state)
        .build(mock_context(noop_assets()))
        .unwrap();
    gleaner_app::events::spawn(app.handle());
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    Harness {
        app,
        window,
        logins,
    }
}

impl Harness {
    /// Invokes `cmd` as the dashboard would; Ok(answer) or Err(error JSON).
    fn call(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            &self.window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                // On Linux `http://tauri.localhost` counts as remote and is refused.
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().unwrap())
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.call(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    fn err_code(&self, cmd: &str, args: Value) -> String {
        let err = self.call(cmd, args).expect_err(cmd);
        err["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{cmd}: untyped error {err}"))
            .to_string()
    }
}

fn query(limit: u32) -> Value {
    json!({"query": {"search": "", "domain": "", "verdict": "", "offset": 0, "limit": limit}})
}

#[test]
fn status_and_first_run_onboarding_persist() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let status = h.ok("status", json!({}));
    // No validator yet: the node cannot run, and says what to do.
    assert_eq!(status["state"], "offline");
    assert!(
        status["detail"]
            .as_str()
            .unwrap()
            .contains("add a validator")
    );
    assert_eq!(status["onboarded"], false);
    let key = status["publicKey"].as_str().unwrap().to_string();
    assert!(key.parse::<gleaner_protocol::PublicKey>().is_ok());
    assert_eq!(h.ok("complete_onboarding", json!({}))["onboarded"], true);
    drop(h);

    let again = harness(dir.path());
    let status = again.ok("status", json!({}));
    assert_eq!(status["onboarded"], true);
    assert_eq!(
        status["publicKey"],
        key.as_str(),
        "same node key after a restart"
    );
}

#[test]
fn pause_resume_and_timed_pause() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    assert_eq!(h.ok("pause", json!({}))["state"], "paused");
    assert_eq!(h.ok("resume", json!({}))["state"], "offline");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let paused = h.ok("pause_for", json!({"minutes": 60}));
    assert_eq!(paused["state"], "paused");
    let until = paused["pausedUntilMs"].as_i64().unwrap();
    assert!(
        (before + 3_590_000..=before + 3_610_000).contains(&until),
        "{until}"
    );
    assert_eq!(
        h.err_code("pause_for", json!({"minutes": 0})),
        "invalid_argument"
    );
    assert_eq!(
        h.err_code("pause_for", json!({"minutes": 100_000})),
        "invalid_argument"
    );
    // A malformed argument is refused before reaching the app.
    assert!(h.call("pause_for", json!({"minutes": "soon"})).is_err());
}

#[test]
fn status_changes_are_pushed_to_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let (tx, rx) = mpsc::channel();
    h.app.listen_any(gleaner_app::events::STATUS, move |event| {
        let _ = tx.send(event.payload().to_string());
    });
    h.ok("pause", json!({}));
    let payload: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(payload["state"], "paused");
    assert!(payload["publicKey"].is_string());
}

#[test]
fn settings_round_trip_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let mut settings = h.ok("settings", json!({}));
    assert_eq!(settings["notifications"], true);
    assert_eq!(settings["startAtLogin"], false);
    settings["validators"] = json!(["https://validator.example/"]);
    settings["rateCapBps"] = json!(512_000);
    settings["monthlyCapBytes"] = json!(10_737_418_240u64);
    settings["schedule"] = json!({"start": "22:00", "end": "07:00"});
    settings["idleOnly"] = json!(true);
    settings["blocklist"] = json!(["Example.COM", "ads.example.net"]);
    settings["startAtLogin"] = json!(true);
    let saved = h.ok("update_settings", json!({ "settings": settings }));
    assert_eq!(saved["validators"], json!(["https://validator.example"]));
    assert_eq!(
        saved["blocklist"],
        json!(["ads.example.net", "example.com"])
    );
    assert_eq!(
        *h.logins.lock().unwrap(),
        [true],
        "start at login applied once"
    );
    assert_eq!(h.ok("settings", json!({})), saved);

    let mut bad = saved.clone();
    bad["validators"] = json!(["ftp://nope"]);
    assert_eq!(
        h.err_code("update_settings", json!({ "settings": bad })),
        "invalid_settings"
    );
    let mut bad = saved.clone();
    bad["payoutAddress"] = json!("not-a-key");
    assert_eq!(
        h.err_code("update_settings", json!({ "settings": bad })),
        "invalid_settings"
    );
    assert_eq!(
        h.ok("settings", json!({})),
        saved,
        "a refusal changes nothing"
    );
    drop(h);

    let again = harness(dir.path());
    assert_eq!(
        again.ok("settings", json!({})),
        saved,
        "settings survive a restart"
    );
}

#[test]
fn activity_paging_is_bounded_and_export_writes_csv() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let page = h.ok("activity", query(25));
    assert_eq!(page["total"], 0);
    assert_eq!(page["entries"], json!([]));
    assert_eq!(h.err_code("activity", query(0)), "invalid_argument");
    assert_eq!(h.err_code("activity", query(10_000)), "invalid_argument");
    assert!(
        h.call(
            "activity",
            json!({"query": {"verdict": "bogus", "limit": 5}})
        )
        .is_err()
    );

    let export = h.ok("export_activity", query(0));
    assert_eq!(export["rows"], 0);
    let path = export["path"].as_str().unwrap();
    assert!(path.starts_with(dir.path().join("exports").to_str().unwrap()));
    let csv = std::fs::read_to_string(path).unwrap();
    assert!(csv.starts_with(&format!("{}\n", gleaner_app::model::ACTIVITY_CSV_HEADER)));
}

#[test]
fn stats_and_key_export() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let stats = h.ok("stats", json!({}));
    assert_eq!(stats["bandwidth"]["todayBytes"], 0);
    assert_eq!(stats["pages"]["fetched"], 0);
    assert_eq!(stats["points"]["epochs"], json!([]));
    // The shape the UI reads (camelCase), with nothing revoked yet.
    assert_eq!(stats["pages"]["revokedPages"], json!([]));
    assert_eq!(stats["points"]["takenBack"], 0);
    let key = h.ok("export_key", json!({}));
    let key = key.as_str().unwrap();
    assert_eq!(key.len(), 64, "the key's seed as hex");
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
}

/// A tiny HTML server on 127.0.0.1: `/robots.txt` disallows `/private`, every other path is a page.
fn local_site() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (kind, body) = if path == "/robots.txt" {
                (
                    "text/plain",
                    "User-agent: *\nDisallow: /private\n".to_string(),
                )
            } else {
                let words = "Gleaner test page with enough plain words to be kept by the cleaner. "
                    .repeat(20);
                (
                    "text/html; charset=utf-8",
                    format!(
                        "<html><head><title>{path}</title></head><body><article><h1>Page {path}</h1><p>{words}</p></article></body></html>"
                    ),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn activity_of_real_fetches_filters_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let site = local_site();
    // The only exemption from the public-address policy: this exact local socket.
    std::fs::write(
        dir.path().join("config.toml"),
        format!("allow_addrs = [\"{site}\"]\n"),
    )
    .unwrap();
    let node =
        CollectorNode::open(&dir.path().join("config.toml"), &dir.path().join("node")).unwrap();
    for path in ["/a", "/b", "/private"] {
        let fetched = tauri::async_runtime::block_on(
            node.library().fetch_one(&format!("http://{site}{path}")),
        );
        // `/a`'s record waits in the queue for a validator: its row says so.
        if path == "/a" {
            let record = fetched.unwrap();
            assert!(
                node.library()
                    .store()
                    .insert_record("http://validator.invalid", &record)
                    .unwrap()
            );
        }
    }
    drop(node);
    let h = harness(dir.path());

    let all = h.ok("activity", query(25));
    let entries = all["entries"].as_array().unwrap();
    assert!(all["total"].as_u64().unwrap() >= 4, "{all}");
    assert_eq!(all["domains"], json!(["127.0.0.1"]));
    assert!(
        entries
            .iter()
            .any(|e| e["robots"] == true && e["url"].as_str().unwrap().ends_with("/robots.txt"))
    );
    let a = entries
        .iter()
        .find(|e| e["verdict"] == "ok" && e["url"].as_str().unwrap().ends_with("/a"))
        .unwrap();
    assert_eq!(
        a["outcome"],
        json!({"outcome": "queued", "reason": null, "points": 0})
    );
    let b = entries
        .iter()
        .find(|e| e["verdict"] == "ok" && e["url"].as_str().unwrap().ends_with("/b"))
        .unwrap();
    assert!(b["outcome"].is_null(), "no record kept: {b}");
    assert!(
        entries
            .iter()
            .filter(|e| e["robots"] == true || e["verdict"] != "ok")
            .all(|e| e["outcome"].is_null()),
        "{all}"
    );

    let refused = h.ok(
        "activity",
        json!({"query": {"verdict": "refused", "limit": 25}}),
    );
    assert_eq!(refused["total"], 1, "{refused}");
    assert_eq!(refused["entries"][0]["reason"], "robots_disallowed");
    assert_eq!(refused["entries"][0]["method"], "—");

    let search = h.ok("activity", json!({"query": {"search": "/b", "limit": 25}}));
    assert!(
        search["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["url"].as_str().unwrap().contains("/b"))
    );
    assert!(search["total"].as_u64().unwrap() >= 1);

    let paged = h.ok("activity", json!({"query": {"offset": 1, "limit": 2}}));
    assert_eq!(paged["entries"].as_array().unwrap().len(), 2);
    assert_eq!(paged["entries"][0], all["entries"][1]);

    let export = h.ok("export_activity", json!({"query": {"verdict": "ok"}}));
    let csv = std::fs::read_to_string(export["path"].as_str().unwrap()).unwrap();
    assert_eq!(
        csv.lines().count() as u64,
        1 + export["rows"].as_u64().unwrap()
    );
    assert!(csv.lines().skip(1).all(|l| l.contains(",ok,")), "{csv}");
    // The export says what became of each page, as the view does: the kept record is queued.
    let row_a = csv
        .lines()
        .find(|l| l.contains("/a,"))
        .expect("a row for /a");
    assert!(row_a.ends_with(",queued,,0"), "{row_a}");
    let row_b = csv
        .lines()
        .find(|l| l.contains("/b,"))
        .expect("a row for /b");
    assert!(row_b.ends_with(",,,"), "no record kept: {row_b}");

    let stats = h.ok("stats", json!({}));
    assert!(stats["pages"]["failed"].as_u64().is_some(), "{stats}");
}
