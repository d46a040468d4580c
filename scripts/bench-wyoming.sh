#!/usr/bin/env bash
# Benchmarks Athena's Wyoming server against the reference Python package,
# side by side on this machine, and prints a table with the ratio.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"

"$ATHENA_ROOT/scripts/setup.sh"
ATHENA_PYTHON="$("$ATHENA_ROOT/scripts/python-env.sh" | tail -n 1)"
export ATHENA_PYTHON
cargo bench --locked -p wyoming --bench echo
