#!/usr/bin/env bash
# README command 1: set up what is missing, then run the demo script on embedded defaults.
# It detects the browsers, runs all-MiniLM-L6-v2 on wasm and webgpu, prints a table, and
# appends the rows to the default results database (WEBACCEL_DB overrides it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"
exec "$CARGO_TARGET_DIR/debug/webaccel" run "$ROOT/notebooks/demo.rhai"
