#!/usr/bin/env bash
# Voice pipeline benchmark: a satellite speaks commands (espeak-ng, sent in
# real time) to the whole assistant in one `athena` process against a real
# Home Assistant; prints the time to the first reply audio
# (services/athena/benches/pipeline.rs).
#
# ATHENA_BENCH_RUNS (default 8).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"
"$ATHENA_ROOT/scripts/setup.sh"
ATHENA_HA_PYTHON="$("$ATHENA_ROOT/scripts/python-env.sh" ha-venv "$ATHENA_ROOT/tests/ha-requirements.txt" | tail -n 1)"
export ATHENA_HA_PYTHON
cargo build --release --locked -p athena
"$CARGO_TARGET_DIR/release/athena" models pull whisper-tiny.en en_US-joe-medium onnxruntime
cargo bench --locked -p athena --bench pipeline
