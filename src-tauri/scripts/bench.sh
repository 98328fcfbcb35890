#!/usr/bin/env bash
# Memory (all processes: the app and its WebKit processes) and idle CPU of the running app, from
# /proc, under Xvfb. Prints figures; asserts nothing. Uses the release build (as users run it).
#   src-tauri/scripts/bench.sh            # builds with app-build.sh first
#   GLEANER_BENCH_BIN=path bench.sh       # measure another binary
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${GLEANER_BENCH_BIN:-}"
if [[ -z "$bin" ]]; then
  "$root/src-tauri/scripts/app-build.sh" >/dev/null
  bin="${CARGO_TARGET_DIR:-$root/target}/release/gleaner-app"
fi
# The platform's floor (a bare WebKitGTK window, no Tauri), measured alongside when it builds.
floor="${CARGO_TARGET_DIR:-$root/target}/webkit-floor"
mkdir -p "$(dirname "$floor")"
if ! cc "$root/src-tauri/scripts/webkit-floor.c" $(pkg-config --cflags --libs webkit2gtk-4.1) \
    -O2 -o "$floor" 2>/dev/null; then
  echo "webkit-floor.c did not build (cc, libwebkit2gtk-4.1-dev); measuring the app only" >&2
  floor=""
fi
exec xvfb-run -a -s "-screen 0 1280x800x24" \
  dbus-run-session -- python3 "$root/src-tauri/scripts/bench.py" "$bin" ${floor:+"$floor"}
