#!/usr/bin/env bash
# Fuzzes the Wyoming decoder (crates/wyoming/fuzz, target `decode`) for SECONDS
# (default 60). Exits non-zero if the fuzzer finds a crash; the crashing input is
# then in crates/wyoming/fuzz/artifacts/decode/, and
#   RUSTC_BOOTSTRAP=1 cargo fuzz run decode <that file>
# from crates/wyoming replays it.
#
# cargo-fuzz is installed into ${ATHENA_CACHE_DIR:-$HOME/.cache/athena}/tools on
# first use; fuzz builds go to .../fuzz-target so they never touch the main target
# directory. RUSTC_BOOTSTRAP=1 lets the stable toolchain accept the nightly flags
# cargo-fuzz passes (sanitizers, coverage instrumentation).
set -euo pipefail

seconds="${1:-60}"
if [[ ! "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [SECONDS]" >&2
    exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${ATHENA_CACHE_DIR:-$HOME/.cache/athena}"
tools="$cache_dir/tools"

if [[ ! -x "$tools/bin/cargo-fuzz" ]]; then
    echo "fuzz: installing cargo-fuzz into $tools" >&2
    cargo install --locked cargo-fuzz --root "$tools"
fi
export PATH="$tools/bin:$PATH"
export CARGO_TARGET_DIR="$cache_dir/fuzz-target"
export RUSTC_BOOTSTRAP=1

fuzz_dir="$repo_root/crates/wyoming/fuzz"
corpus="$fuzz_dir/corpus/decode"
mkdir -p "$corpus"
cd "$repo_root/crates/wyoming"

# Debug assertions on, so that integer overflow is a crash too. AddressSanitizer
# where it links; without it otherwise (the crate has no unsafe code of its own).
build_flags=(--debug-assertions)
if ! cargo fuzz build "${build_flags[@]}" decode >&2; then
    echo "fuzz: building with AddressSanitizer failed; using --sanitizer none" >&2
    build_flags+=(--sanitizer none)
    cargo fuzz build "${build_flags[@]}" decode >&2
fi

# The first corpus directory collects new inputs; the seeds are read only.
# -max_len lets inputs grow past the limits the target sets (1-4 KiB).
cargo fuzz run "${build_flags[@]}" decode "$corpus" "$fuzz_dir/seeds/decode" -- \
    -max_total_time="$seconds" \
    -max_len=8192 \
    -dict="$fuzz_dir/decode.dict" \
    -print_final_stats=1
