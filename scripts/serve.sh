#!/usr/bin/env bash
# Starts Athena: every service in one process on embedded defaults.
# Installs what it needs first (idempotent), builds an optimised binary, and
# runs `athena serve` with any arguments given (e.g. `orchestrator stt`).
# Stop it with Ctrl-C; it drains in-flight requests before exiting.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"

"$ATHENA_ROOT/scripts/setup.sh"
cargo build --release --locked -p athena
exec "$CARGO_TARGET_DIR/release/athena" serve "$@"
