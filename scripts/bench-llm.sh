#!/usr/bin/env bash
# LLM benchmark: Athena's llm server against llama.cpp's server
# (llama-cpp-python's OpenAI-compatible server) on the same GGUF files,
# 2 threads each, side by side in one run: prompt tokens/s, decode tokens/s
# and time to first token of a voice request with and without the system
# prompt cached; prints tables and the ratios.
#
# ATHENA_BENCH_RUNS (default 5); ATHENA_BENCH_MODELS (comma-separated catalog
# names; default smollm2-135m-instruct,gemma-3-270m,qwen2.5-coder-0.5b-instruct).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"
"$ATHENA_ROOT/scripts/setup.sh"

models="${ATHENA_BENCH_MODELS:-smollm2-135m-instruct,gemma-3-270m,qwen2.5-coder-0.5b-instruct}"
cargo build --release --locked -p athena
IFS=, read -ra names <<<"$models"
"$CARGO_TARGET_DIR/release/athena" models pull "${names[@]}"

# The peer, in the benchmark venv (kept between runs). llama.cpp is built from
# source for x86-64 with AVX-512 but without GGML_NATIVE and without AMX: a
# native build crashes in ggml_backend_amx_mul_mat on CPUs that have AMX. The
# build takes minutes, so a marker in the venv records what was built and the
# build is skipped while it matches.
venv="$ATHENA_CACHE_DIR/bench-venv"
llama_version="0.3.36"
cmake_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX_VNNI=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
marker="$venv/.athena-llama-cpp-python"
want="llama-cpp-python[server]==$llama_version CMAKE_ARGS=$cmake_args"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
if [[ "$(cat "$marker" 2>/dev/null)" != "$want" ]] \
    || ! "$venv/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
    echo "building llama-cpp-python $llama_version from source (several minutes)" >&2
    rm -f "$marker"
    "$venv/bin/pip" uninstall --quiet --yes llama-cpp-python 2>/dev/null || true
    CMAKE_ARGS="$cmake_args" "$venv/bin/pip" install --quiet --disable-pip-version-check \
        --no-cache-dir --no-binary llama-cpp-python "llama-cpp-python[server]==$llama_version"
    "$venv/bin/python" -c 'import llama_cpp.server'
    printf '%s\n' "$want" >"$marker"
fi

ATHENA_BENCH_MODELS="$models" ATHENA_BENCH_PYTHON="$venv/bin/python" \
    ATHENA_BENCH_BIN="$CARGO_TARGET_DIR/release/athena" \
    cargo bench --locked -p athena-llm --bench generate
