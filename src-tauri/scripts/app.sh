#!/usr/bin/env bash
# `make app`: builds the dashboard and runs the desktop app (debug build). Extra arguments go to
# the app (e.g. --hidden to start in the tray only).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/src-tauri/scripts/ui.sh"
cd "$root"
exec cargo run -p gleaner-app -- "$@"
