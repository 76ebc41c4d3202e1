# Sourced by the setup, demo and test scripts (and by developers' shells) so that every
# cargo call shares one target directory and links the same libduckdb.so.
WEBACCEL_CACHE="${WEBACCEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/webaccel}"
export WEBACCEL_CACHE
# Outside the clone, so CI's fresh clone reuses this machine's build (a clean build is ~20+ min).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$WEBACCEL_CACHE/target}"
# DuckDB is linked, not bundled: setup copies npm's libduckdb.so here, and the rpath lets the
# binaries (and the kernel Jupyter starts) find it without LD_LIBRARY_PATH.
export DUCKDB_LIB_DIR="$WEBACCEL_CACHE/lib"
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-rpath,$DUCKDB_LIB_DIR"
# Paths a build bakes in (CARGO_MANIFEST_DIR) name the clone that built it; CI builds from
# another clone into the same target directory, so the clone at hand is named at run time.
WEBACCEL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export WEBACCEL_ORT_DIR="${WEBACCEL_ORT_DIR:-$WEBACCEL_ROOT/node_modules/onnxruntime-web/dist}"
export WEBACCEL_TEST_GATEWAY="$WEBACCEL_ROOT/tests/ipfs-gateway"
