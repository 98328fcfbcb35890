#!/usr/bin/env bash
# `make demo`: the whole Gleaner network on this machine, with no internet. Builds what it needs
# (the dev profile, shared with `make test`), then runs the demo driver (tests/src/bin/gleaner-demo.rs).
# Pass --seeds FILE to crawl real URLs instead of the local sample sites (needs internet).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "Building gleaner, gleaner-validator and the demo driver…"
cargo build --quiet -p gleaner-collector -p gleaner-validator -p gleaner-e2e --bins
# Where cargo put it: CARGO_TARGET_DIR when set (relative to the repository, as cargo reads it).
exec "${CARGO_TARGET_DIR:-target}/debug/gleaner-demo" "$@"
