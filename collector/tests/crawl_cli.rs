//! `gleaner crawl add|list`: the real binary against validators on 127.0.0.1, one that answers
//! as the crawl API does and others that refuse, answer HTML, garbage or too much, or are gone.
//! Every failure exits 1 with the reason code in `--json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, post};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_gleaner");
const KEY: &str = "lab-key-1";

/// What the well-behaved validator was sent: each call's bearer token and body.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

async fn added(State(seen): State<Seen>, headers: HeaderMap, body: String) -> impl IntoResponse {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    seen.lock()
        .unwrap()
        .push((token, serde_json::from_str(&body).unwrap_or(Value::Null)));
    axum::Json(json!({
        "id": 7, "queued": 2, "already_seen": 1,
        "refused": [["ftp://x.example/", "url_scheme"]]
    }))
}

async fn listed() -> impl IntoResponse {
    axum::Json(json!([{
        "id": 7, "created_at_ms": 1_800_000_000_000_i64, "requester": "lab:0",
        "scope": ["a.example", "b.example"], "max_pages": 100, "max_depth": 3,
        "pages_queued": 12, "pages": {"done": 9, "failed": 1, "leased": 2},
        "sitemaps": {"queued": 1}, "finished": false
    }]))
}

async fn start() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let problem = || {
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/problem+json")],
            json!({"type": "urn:gleaner:problem:bad_token", "title": "Unauthorized",
                   "status": 401, "detail": "a valid lab API key is required",
                   "code": "bad_token"})
            .to_string(),
        )
    };
    let app = Router::new()
        .route("/ok/v1/crawl-requests", post(added).get(listed))
        .route(
            "/ok/v1/crawl-requests/{id}",
            delete(
                |axum::extract::Path(id): axum::extract::Path<i64>| async move {
                    if id == 7 {
                        axum::Json(json!({"id": 7, "pages_cancelled": 3, "sitemaps_cancelled": 1}))
                            .into_response()
                    } else {
                        (
                            StatusCode::NOT_FOUND,
                            [(header::CONTENT_TYPE, "application/problem+json")],
                            json!({"type": "urn:gleaner:problem:not_found", "title": "Not Found",
                               "status": 404, "detail": format!("crawl request {id}"),
                               "code": "not_found"})
                            .to_string(),
                        )
                            .into_response()
                    }
                },
            ),
        )
        .route(
            "/refuse/v1/crawl-requests",
            post(move || async move { problem() }).get(move || async move { problem() }),
        )
        .route(
            "/html/v1/crawl-requests",
            post(|| async { (StatusCode::BAD_GATEWAY, "<html>proxy error</html>") })
                .get(|| async { (StatusCode::BAD_GATEWAY, "<html>proxy error</html>") }),
        )
        .route(
            "/garbage/v1/crawl-requests",
            post(|| async { "not json" }).get(|| async { "[{\"id\": \"seven\"}]" }),
        )
        .route(
            "/huge/v1/crawl-requests",
            post(|| async { "x".repeat(17 << 20) }).get(|| async { "x".repeat(17 << 20) }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn gleaner(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .env("GLEANER_API_KEY", KEY)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_add_and_list_speak_the_crawl_api_and_name_each_failure() {
    let (base, seen) = start().await;
    let ok = format!("{base}/ok");

    let out = gleaner(args(&[
        "crawl",
        "add",
        "--validator",
        &ok,
        "--seed",
        "https://a.example/",
        "--seed",
        "https://b.example/x",
        "--domain",
        "c.example",
        "--max-pages",
        "100",
        "--max-depth",
        "1",
    ]))
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("crawl request 7: 2 pages queued, 1 already seen by the network"),
        "{text}"
    );
    assert!(
        text.contains("refused  ftp://x.example/  (url_scheme)"),
        "{text}"
    );
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, format!("Bearer {KEY}"));
    assert_eq!(
        sent[0].1,
        json!({"seeds": ["https://a.example/", "https://b.example/x"],
               "domains": ["c.example"], "sitemaps": [], "max_pages": 100, "max_depth": 1})
    );

    let out = gleaner(args(&["crawl", "list", "--validator", &ok])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("#7 "), "{text}");
    for part in [
        "running",
        "pages: 9 done, 1 failed, 2 in progress, 0 queued (12 of at most 100 queued so far)",
        "1 sitemaps to read",
        "scope: a.example, b.example",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    let out = gleaner(args(&["--json", "crawl", "list", "--validator", &ok])).await;
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["pages"]["done"], 9);

    let out = gleaner(args(&["crawl", "cancel", "--validator", &ok, "7"])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("crawl request 7: cancelled; 3 queued pages dropped, 1 sitemaps left unread"),
        "{text}"
    );
    let out = gleaner(args(&[
        "--json",
        "crawl",
        "cancel",
        "--validator",
        &ok,
        "8",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "not_found", "{v}");

    // Each failure: exit 1, its code in --json, for both commands.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let cases = [
        (format!("{base}/refuse"), "bad_token"),
        (format!("{base}/html"), "http_502"),
        (format!("{base}/garbage"), "bad_answer"),
        (format!("{base}/huge"), "bad_answer"),
        (gone, "validator_unreachable"),
    ];
    for (url, code) in &cases {
        for command in [
            vec![
                "--json",
                "crawl",
                "add",
                "--validator",
                url,
                "--seed",
                "https://a.example/",
            ],
            vec!["--json", "crawl", "list", "--validator", url],
        ] {
            let out = gleaner(args(&command)).await;
            assert_eq!(out.status.code(), Some(1), "{command:?}");
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!("{command:?}: {e}: {}", String::from_utf8_lossy(&out.stdout))
            });
            assert_eq!(v["error"], *code, "{command:?}: {v}");
        }
    }
    // Without a key there is nothing to send: clap refuses before any call.
    let out = Command::new(BIN)
        .args(["crawl", "list", "--validator", &ok])
        .env_remove("GLEANER_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-key"));
}
