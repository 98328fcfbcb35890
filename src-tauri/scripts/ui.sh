#!/usr/bin/env bash
# Builds the dashboard into ui/dist (installing its locked npm packages when missing or stale).
# Sourced by the other scripts; safe to run alone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ ! -d "$root/ui/node_modules" || "$root/ui/package-lock.json" -nt "$root/ui/node_modules/.package-lock.json" ]]; then
  npm --prefix "$root/ui" ci --no-audit --no-fund --loglevel=error
fi
npm --prefix "$root/ui" run build --silent
