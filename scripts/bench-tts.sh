#!/usr/bin/env bash
# Text-to-speech benchmark: Athena against piper-tts (in-process) and
# wyoming-piper (Wyoming server) from PyPI on the same Piper voice and ONNX
# Runtime, side by side in one run; prints a table and the ratios.
#
# ATHENA_BENCH_RUNS (default 10).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"
"$ATHENA_ROOT/scripts/setup.sh"

cargo build --release --locked -p athena
"$CARGO_TARGET_DIR/release/athena" models pull en_US-joe-medium onnxruntime

# The peers, in the benchmark venv (kept between runs).
venv="$ATHENA_CACHE_DIR/bench-venv"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import piper, wyoming_piper' 2>/dev/null \
    || "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "piper-tts==1.8.0" "wyoming-piper==2.5.2" "onnxruntime==1.32.0"

ATHENA_BENCH_PYTHON="$venv/bin/python" ATHENA_BENCH_BIN="$CARGO_TARGET_DIR/release/athena" \
    cargo bench --locked -p athena-tts --bench speak
