#!/usr/bin/env bash
# Runs every check a change must pass: formatting, lints, a bounded fuzzing
# run of the Wyoming decoder, and all tests (unit, integration, interop with
# the reference Python peers). Installs what it needs first (idempotent).
#
# ATHENA_FUZZ_SECONDS (default 60) bounds the fuzzing run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"

"$ATHENA_ROOT/scripts/setup.sh"
ATHENA_PYTHON="$("$ATHENA_ROOT/scripts/python-env.sh" | tail -n 1)"
# A real Home Assistant for the ha-bridge tests, in its own venv.
ATHENA_HA_PYTHON="$("$ATHENA_ROOT/scripts/python-env.sh" ha-venv "$ATHENA_ROOT/tests/ha-requirements.txt" | tail -n 1)"
# The real wyoming-satellite, in its own venv (it pins an older wyoming).
ATHENA_SATELLITE_PYTHON="$("$ATHENA_ROOT/scripts/python-env.sh" satellite-venv "$ATHENA_ROOT/tests/satellite-requirements.txt" | tail -n 1)"
export ATHENA_PYTHON ATHENA_HA_PYTHON ATHENA_SATELLITE_PYTHON

step() { printf '\n== %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "deployment: Helm, Kustomize, compose, Dockerfile (offline)"
"$ATHENA_ROOT/scripts/validate-deploy.sh"

step "fuzz the Wyoming decoder for ${ATHENA_FUZZ_SECONDS:-60} s"
"$ATHENA_ROOT/scripts/fuzz.sh" "${ATHENA_FUZZ_SECONDS:-60}"

step "models the tests use (checked against their pinned sha256)"
cargo build --locked -p athena
"$CARGO_TARGET_DIR/debug/athena" models pull whisper-tiny.en sample-jfk en_US-joe-medium onnxruntime \
    smollm2-135m-instruct gemma-3-270m qwen2.5-coder-0.5b-instruct

step "cargo test"
cargo test --workspace --locked
