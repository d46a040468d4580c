#!/usr/bin/env bash
# Load test: 20 satellites speaking home commands at once for
# ATHENA_LOAD_SECS (default 300) to the whole assistant in one release-built
# process against a real Home Assistant; prints the latency percentiles and
# memory, and fails on any error or memory growth
# (services/athena/tests/load.rs; the test suite runs it for 120 s).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"
"$ATHENA_ROOT/scripts/setup.sh"
ATHENA_HA_PYTHON="$("$ATHENA_ROOT/scripts/python-env.sh" ha-venv "$ATHENA_ROOT/tests/ha-requirements.txt" | tail -n 1)"
export ATHENA_HA_PYTHON
ATHENA_LOAD_SECS="${ATHENA_LOAD_SECS:-300}" \
    cargo test --release --locked -p athena --test load -- --nocapture 2>&1 \
    | grep --line-buffered -v -E '^[0-9T:.-]+Z +(INFO|WARN|DEBUG)'
