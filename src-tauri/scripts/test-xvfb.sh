#!/usr/bin/env bash
# The real app under Xvfb: WebDriver (tauri-driver + WebKitWebDriver) drives the window, gdbus drives
# the tray menu over a private session bus. Screenshots: target/screenshots/app-*.png.
# Needs: xvfb, xauth, dbus-daemon, libglib2.0-bin (gdbus), webkit2gtk-driver, tauri-driver (cargo install).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
for tool in xvfb-run dbus-run-session gdbus WebKitWebDriver tauri-driver; do
  command -v "$tool" >/dev/null || { echo "test-xvfb: $tool is missing (see src-tauri/README.md)" >&2; exit 1; }
done
"$root/src-tauri/scripts/ui.sh"
cd "$root"
# The binary `make test` already built: the same command as scripts/test.sh, so nothing is compiled
# again. `-p gleaner-app` or a plain `cargo build` would unify dependency features differently (and
# drop tauri's `test` feature, a dev-dependency) and compile tauri and gtk a second time.
cargo test --workspace --lib --bins --tests --no-run --quiet
# -a: a free display number; e2e.py starts tauri-driver on ports the kernel picks.
exec xvfb-run -a -s "-screen 0 1280x800x24" \
  dbus-run-session -- python3 "$root/src-tauri/scripts/e2e.py" "${CARGO_TARGET_DIR:-$root/target}/debug/gleaner-app"
