#!/usr/bin/env bash
# Creates (or refreshes) a Python virtual environment the tests use to run
# reference peers, and prints its interpreter's path as the last line on stdout.
#
# By default the venv lives at ${ATHENA_CACHE_DIR:-$HOME/.cache/athena}/venv with
# the packages of tests/requirements.txt; `python-env.sh NAME FILE` makes the
# venv NAME from requirements FILE instead (Home Assistant has its own, its
# pins clash with the peers'). Packages are installed only when the file has
# changed since the last install (its sha256 is kept in a stamp file inside the
# venv).
#
# Usage: ATHENA_PYTHON="$(bash scripts/python-env.sh | tail -n 1)"
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${2:-$repo_root/tests/requirements.txt}"
cache_dir="${ATHENA_CACHE_DIR:-$HOME/.cache/athena}"
venv="$cache_dir/${1:-venv}"
python="$venv/bin/python"
stamp="$venv/.requirements.sha256"

if [[ ! -f "$requirements" ]]; then
    echo "python-env: $requirements is missing" >&2
    exit 1
fi

if [[ ! -x "$python" ]]; then
    echo "python-env: creating $venv" >&2
    mkdir -p "$cache_dir"
    python3 -m venv "$venv" >&2
fi

wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
installed="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$wanted" != "$installed" ]]; then
    echo "python-env: installing $requirements" >&2
    "$python" -m pip install --quiet --disable-pip-version-check \
        --requirement "$requirements" >&2
    # Written only after a successful install, so a failed one is retried.
    echo "$wanted" >"$stamp"
else
    echo "python-env: $venv is up to date" >&2
fi

echo "$python"
