#!/usr/bin/env bash
# README command 2: set up what is missing, then run the whole test suite: the Rust tests
# (unit, and browser tests against real Chromium), then the end-to-end tests in Python
# (onnxruntime reference, jupyter_client, nbclient) against the built binary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
source "$ROOT/scripts/env.sh"
cd "$ROOT"

# One test thread: the browser tests start real browsers and this is a two-core machine.
cargo test --workspace -- --test-threads=1
# `cargo test` builds the binaries' test harnesses, not the binaries: on a fresh target
# directory neither the kernel nor its Rust-cell helper would exist for the tests below.
cargo build -p webaccel-kernel -p webaccel-rust --bins

# The end-to-end tests get their own Jupyter data directory and results database, so they
# neither use nor disturb the user's.
export WEBACCEL_BIN="$CARGO_TARGET_DIR/debug/webaccel"
# The slowest tests are listed at the end: the suite's time is watched against CI's budget.
"$WEBACCEL_CACHE/venv/bin/python" -m pytest -p no:cacheprovider --durations=20 "$ROOT/tests" "$@"
