//! The operator's crawl commands through the binary: `crawl add` queues seeds and says what it
//! refused, and `crawl list` shows each request with how far it has got.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gleaner-validator"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
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

    // Without a seed or sitemap, clap refuses before the store is touched.
    let bad = cli(data, &["crawl", "add", "--max-pages", "5"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(json_lines(&cli(data, &["crawl", "list"])).len(), 2);
}
