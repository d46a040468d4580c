# Sourced by the other scripts: where caches live. Everything heavy (the
# cargo target directory, the Python venv, models, tools) lives outside the
# clone, so a fresh clone builds incrementally on a machine that built before.
ATHENA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ATHENA_ROOT
export ATHENA_CACHE_DIR="${ATHENA_CACHE_DIR:-$HOME/.cache/athena}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ATHENA_CACHE_DIR/target}"
mkdir -p "$ATHENA_CACHE_DIR"
# Incremental compilation state is kept per checkout path and grows without
# bound when fresh clones share one target directory (tens of GB); whole-crate
# rebuilds of the few crates that change cost less than that.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
