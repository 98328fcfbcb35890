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
