#!/usr/bin/env bash
# Everything `make test` runs, in order. Each part runs only when its code exists in the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1;34m[test]\033[0m %s\n' "$*"; }
start=$(date +%s)

say "Rust: every crate of the workspace"
# Not --all-targets: bench targets are plain binaries (harness = false) that would run whole
# benchmarks in debug mode. Benchmarks run with `make bench`.
cargo test --workspace --lib --bins --tests --no-fail-fast
cargo test --workspace --doc

if [[ -f ui/package.json ]]; then
  say "UI: build and headless Chromium tests"
  npm --prefix ui run build
  npm --prefix ui test
fi

if [[ -x src-tauri/scripts/test-xvfb.sh ]]; then
  say "App: the real window under Xvfb (WebDriver, tray over D-Bus)"
  src-tauri/scripts/test-xvfb.sh
fi

say "all tests passed in $(( $(date +%s) - start )) s"
