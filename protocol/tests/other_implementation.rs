//! The golden vectors checked by an independent implementation written from the docs alone
//! (`tests/vectors/verify_vectors.py`, Python with blake3 and cryptography from PyPI).
//! `make test` installs those; outside CI the test is skipped, with a message, if they are missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn python_implementation_agrees_with_the_golden_vectors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let probe = Command::new("python3")
        .args(["-c", "import blake3, cryptography"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with blake3 and cryptography is required in CI (make setup installs them)"
        );
        eprintln!("skipped: python3 with blake3 and cryptography not installed (run make setup)");
        return;
    }
    let out = Command::new("python3")
        .arg(dir.join("verify_vectors.py"))
        .arg(&dir)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the independent implementation disagrees:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
