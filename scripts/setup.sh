#!/usr/bin/env bash
# Installs what Gleaner's build and tests need, idempotently: it checks before it installs.
#   Debian packages: GTK/WebKit for the Tauri app, Xvfb/D-Bus/WebKitWebDriver for its tests,
#                    Chromium for UI and console tests.
#   Python packages: pyarrow, DuckDB and Hugging Face datasets (the third-party readers the dataset
#                    tests use), blake3 and cryptography (the independent protocol check).
#   npm packages:    the UI's lockfile (npm ci), only when node_modules is missing or stale.
#   cargo tools:     tauri-driver, for the app's WebDriver tests.
# Set GLEANER_SETUP_SKIP=apt,pip,npm,cargo (any subset) to skip parts.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() { [[ ",${GLEANER_SETUP_SKIP:-}," == *",$1,"* ]]; }
say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

DEBIAN_PACKAGES=(
  build-essential pkg-config curl file ca-certificates
  # Tauri v2 on Linux (see ../shared/notes/tauri-linux.md)
  libssl-dev libgtk-3-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev
  # running the app under a virtual display, driving it, and its tray over D-Bus
  xvfb xauth xdotool imagemagick webkit2gtk-driver dbus-daemon dbus-x11 libglib2.0-bin
  # headless browser for the UI and console tests
  chromium
)

if ! skip apt; then
  missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
      if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; else
        say "missing Debian packages: ${missing[*]}"
        say "run as root, or: sudo apt-get install -y ${missing[*]}"
        exit 1
      fi
    else SUDO=""; fi
    say "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "Debian packages: all present"
  fi
fi

if ! skip pip; then
  if python3 -c "import pyarrow, duckdb, datasets, blake3, cryptography" 2>/dev/null; then
    say "Python readers: present"
  else
    say "installing pyarrow, duckdb, datasets, blake3, cryptography (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check pyarrow duckdb datasets blake3 cryptography \
      || python3 -m pip install --quiet --break-system-packages pyarrow duckdb datasets blake3 cryptography
  fi
fi

if ! skip npm && [[ -f ui/package-lock.json ]]; then
  if [[ ! -d ui/node_modules || ui/package-lock.json -nt ui/node_modules/.package-lock.json ]]; then
    say "installing UI packages (npm ci)"
    npm --prefix ui ci --no-audit --no-fund --loglevel=error
  else
    say "UI packages: present"
  fi
fi

if ! skip cargo && [[ -d src-tauri ]]; then
  if command -v tauri-driver >/dev/null || [[ -x "$HOME/.cargo/bin/tauri-driver" ]]; then
    say "tauri-driver: present"
  else
    say "installing tauri-driver (crates.io)"
    cargo install tauri-driver --locked --quiet
  fi
fi
say "done"
