#!/usr/bin/env bash
# Retrieval benchmark: Athena's embedder against sentence-transformers
# (PyPI, PyTorch on the CPU) on the same all-MiniLM-L6-v2 weights, side by
# side in one run, and the embedded store's search latency at 10k and 100k
# vectors; prints tables and the ratios (services/rag-api/benches/rag.rs).
#
# ATHENA_BENCH_RUNS (default 5), ATHENA_BENCH_THREADS (default 2),
# ATHENA_BENCH_ONLY (embed or search).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"
"$ATHENA_ROOT/scripts/setup.sh"

# The peer in its own venv (PyTorch is large; the tests never need it).
ATHENA_BENCH_PYTHON="$("$ATHENA_ROOT/scripts/python-env.sh" bench-rag-venv "$ATHENA_ROOT/tests/bench/rag-requirements.txt" | tail -n 1)"
export ATHENA_BENCH_PYTHON
cargo bench --locked -p athena-rag-api --bench rag
