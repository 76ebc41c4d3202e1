#!/usr/bin/env bash
# README command 1: set up what is missing, build and install the release binary (and its
# kernelspec), then run the demo script on embedded defaults.
# It detects the browsers, runs all-MiniLM-L6-v2 on wasm and webgpu, prints a table, and
# appends the rows to the default results database (WEBACCEL_DB overrides it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"
# What users run is optimised: tokenization, image resizing and every host-side step. The
# kernelspec points at this binary, so notebooks use it too; the Rust cells' helper (evcxr)
# is built beside it, where the kernel looks for it (about 5 minutes more on a first build).
echo "webaccel setup: building the release binaries (a first build takes a long while)" >&2
(cd "$ROOT" && cargo build --quiet --release -p webaccel-kernel -p webaccel-rust)
"$CARGO_TARGET_DIR/release/webaccel" install >&2
exec "$CARGO_TARGET_DIR/release/webaccel" run "$ROOT/notebooks/demo.rhai"
