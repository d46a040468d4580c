#!/usr/bin/env bash
# Installs the system packages Athena needs to build and test, idempotently:
# packages already installed are not touched, and apt runs only when one is
# missing. Safe to run any number of times.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# Build: a C toolchain, cmake and libclang for -sys crates (whisper.cpp,
# espeak-ng), libsonic for espeak-ng. Run: espeak-ng's phoneme data for Piper
# voices. Tests: Python venvs for reference peers; docker-compose (1.29)
# validates compose.yaml without a Docker engine; redis-server backs the
# Redis state tests; espeak-ng speaks the commands of the pipeline tests
# in a voice that is not ours.
packages=(build-essential pkg-config python3 python3-venv curl ca-certificates docker-compose cmake libclang-dev libsonic-dev espeak-ng-data redis-server espeak-ng)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
