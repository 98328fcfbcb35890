#!/usr/bin/env bash
# `make app-build`: the release binary with the dashboard embedded, from a fresh clone.
# Result: target/release/gleaner-app (or $CARGO_TARGET_DIR/release/gleaner-app)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/src-tauri/scripts/ui.sh"
cd "$root"
cargo build -p gleaner-app --release
bin="${CARGO_TARGET_DIR:-$root/target}/release/gleaner-app"
echo "built $bin ($(du -h "$bin" | cut -f1))"
