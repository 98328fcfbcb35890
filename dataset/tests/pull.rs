//! The pull client against a real HTTP server on 127.0.0.1 that cuts connections midway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gleaner_dataset::fixtures::{sample, validator_key};
use gleaner_dataset::pull::{PullOptions, pull};
use gleaner_dataset::{ExportConfig, Manifest, VerifyOptions, export, verify_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the test server misbehaves.
#[derive(Default)]
struct Faults {
    /// Paths whose next response is cut after half the body (then served normally).
    cut_once: HashSet<String>,
    /// Paths always served with one byte flipped.
    corrupt: HashSet<String>,
    /// Replaces the manifest body.
    manifest: Option<Vec<u8>>,
}

struct Server {
    base: String,
    log: Arc<Mutex<Vec<(String, Option<u64>)>>>,
}

async fn serve(root: PathBuf, faults: Faults) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let faults = Arc::new(Mutex::new(faults));
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let (root, log, faults) = (root.clone(), log2.clone(), faults.clone());
            tokio::spawn(async move {
                let _ = handle(sock, &root, &log, &faults).await;
            });
        }
    });
    Server {
        base: format!("http://{addr}/v1/datasets/ds"),
        log,
    }
}

async fn handle(
    mut sock: TcpStream,
    root: &Path,
    log: &Mutex<Vec<(String, Option<u64>)>>,
    faults: &Mutex<Faults>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let range: Option<u64> = head.lines().find_map(|l| {
        let l = l.to_ascii_lowercase();
        l.strip_prefix("range: bytes=")
            .and_then(|r| r.trim().trim_end_matches('-').parse().ok())
    });
    log.lock().unwrap().push((path.clone(), range));
    let rel = path
        .strip_prefix("/v1/datasets/ds/")
        .map(|r| r.strip_prefix("files/").unwrap_or(r).to_string());
    let (body, cut) = {
        let mut f = faults.lock().unwrap();
        let body = match &rel {
            Some(r) if r == "manifest.json" && f.manifest.is_some() => f.manifest.clone(),
            Some(r) => std::fs::read(root.join(r)).ok().map(|mut b| {
                if f.corrupt.contains(r) {
                    let mid = b.len() / 2;
                    b[mid] ^= 0xff;
                }
                b
            }),
            None => None,
        };
        let cut = rel.as_ref().is_some_and(|r| f.cut_once.remove(r));
        (body, cut)
    };
    let Some(body) = body else {
        sock.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await?;
        return Ok(());
    };
    let len = body.len() as u64;
    let start = range.unwrap_or(0).min(len);
    let head = if range.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-range: bytes {start}-{}/{len}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            len - 1,
            len - start
        )
    } else {
        format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n")
    };
    sock.write_all(head.as_bytes()).await?;
    let rest = &body[start as usize..];
    if cut {
        sock.write_all(&rest[..rest.len() / 2]).await?;
        sock.flush().await?;
        // Drop the connection mid-body.
        return Ok(());
    }
    sock.write_all(rest).await?;
    sock.shutdown().await
}

fn exported(tmp: &Path) -> (PathBuf, Manifest) {
    let dir = tmp.join("served");
    let mut config = ExportConfig::new(&dir);
    config.shard_max_bytes = 100 * 1024;
    // With JSON Lines copies, so pulls cover every kind of file a manifest lists.
    config.jsonl = true;
    let m = export(sample(1_500, 1_500), &validator_key(), &config)
        .unwrap()
        .manifest;
    (dir, m)
}

fn quiet() -> PullOptions {
    PullOptions {
        progress: false,
        ..PullOptions::default()
    }
}

#[tokio::test]
async fn an_interrupted_pull_resumes_and_ends_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, manifest) = exported(tmp.path());
    let cut: HashSet<String> = manifest.files().map(|f| f.path.clone()).collect();
    assert!(cut.iter().any(|p| p.ends_with(".jsonl.zst")), "{cut:?}");
    let server = serve(
        dir,
        Faults {
            cut_once: cut.clone(),
            ..Faults::default()
        },
    )
    .await;
    let out = tmp.path().join("pulled");
    let report = pull(&server.base, &out, &quiet()).await.unwrap();
    assert_eq!(
        report.resumed_requests,
        cut.len(),
        "every cut file resumed once"
    );
    let log = server.log.lock().unwrap().clone();
    for path in &cut {
        let url = format!("/v1/datasets/ds/files/{path}");
        let ranges: Vec<_> = log
            .iter()
            .filter(|(p, _)| p == &url)
            .map(|(_, r)| *r)
            .collect();
        assert_eq!(ranges.len(), 2, "{path}: {ranges:?}");
        assert_eq!(ranges[0], None);
        assert!(
            ranges[1].unwrap() > 0,
            "{path} resumed with a Range request"
        );
    }
    let v = verify_dir(
        &out,
        &VerifyOptions {
            trust: vec![validator_key().public()],
            ..VerifyOptions::default()
        },
    );
    assert!(v.is_ok(), "{:?}", v.failures);
    assert_eq!(v.rows_checked, 1_500);

    // Pulling again downloads nothing.
    let again = pull(&server.base, &out, &quiet()).await.unwrap();
    assert_eq!(again.bytes_downloaded, 0);
    assert_eq!(again.files_skipped, manifest.files().count());
}

#[tokio::test]
async fn a_partial_file_from_an_earlier_run_is_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, manifest) = exported(tmp.path());
    let shard = &manifest.shards[0];
    let out = tmp.path().join("pulled");
    let part = out.join(format!("{}.part", shard.path));
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    let bytes = std::fs::read(dir.join(&shard.path)).unwrap();
    std::fs::write(&part, &bytes[..1_000]).unwrap();
    let server = serve(dir, Faults::default()).await;
    let report = pull(&format!("{}/manifest.json", server.base), &out, &quiet())
        .await
        .unwrap();
    assert_eq!(report.resumed_requests, 1);
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains(&(format!("/v1/datasets/ds/files/{}", shard.path), Some(1_000))));
    assert!(!part.exists());
    assert!(verify_dir(&out, &VerifyOptions::default()).is_ok());
}

#[tokio::test]
async fn a_corrupt_file_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, manifest) = exported(tmp.path());
    let bad = manifest.shards[1].path.clone();
    let server = serve(
        dir,
        Faults {
            corrupt: [bad.clone()].into(),
            ..Faults::default()
        },
    )
    .await;
    let out = tmp.path().join("pulled");
    let err = pull(&server.base, &out, &quiet()).await.unwrap_err();
    assert_eq!(err.code(), "download_mismatch");
    assert!(err.to_string().contains(&bad), "{err}");
    assert!(!out.join("manifest.json").exists());
}

#[tokio::test]
async fn a_forged_manifest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, mut manifest) = exported(tmp.path());
    manifest.rows += 1;
    let server = serve(
        dir,
        Faults {
            manifest: Some(manifest.to_json().unwrap()),
            ..Faults::default()
        },
    )
    .await;
    let err = pull(&server.base, &tmp.path().join("pulled"), &quiet())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_manifest");
}
