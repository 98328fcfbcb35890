#!/usr/bin/env bash
# `make package`: a .deb built by the Tauri bundler (the CLI comes from the UI's npm packages:
# @tauri-apps/cli ships its binary inside the npm package). Works offline.
# Result: target/release/bundle/deb/Gleaner_<version>_amd64.deb
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/src-tauri/scripts/ui.sh"
cd "$root/src-tauri"
# The UI is already built; the bundler runs `cargo build --release` itself.
"$root/ui/node_modules/.bin/tauri" build --bundles deb --ci
ls -l "$root"/target/release/bundle/deb/*.deb
