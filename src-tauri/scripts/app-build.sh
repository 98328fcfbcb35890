#!/usr/bin/env bash
# `make app-build`: the release binary with the dashboard embedded, from a fresh clone.
# Result: target/release/gleaner-app
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/src-tauri/scripts/ui.sh"
cd "$root"
cargo build -p gleaner-app --release
echo "built $root/target/release/gleaner-app ($(du -h target/release/gleaner-app | cut -f1))"
