#!/usr/bin/env bash
# The whole test suite on a new machine: set-up (idempotent), build, then every test but the
# `slow` ones. Extra arguments go to ctest (e.g. -L parity).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
bdir=${OPINE_BUILD_DIR:-$root/build}
export OPINE_DATA_ROOT=${OPINE_DATA_ROOT:-$root/../shared/data}
[[ -d "$OPINE_DATA_ROOT" ]] || echo "test: no data root at $OPINE_DATA_ROOT: realdata tests will skip"
cd "$bdir"
ctest --output-on-failure -j "$(nproc)" -LE slow "$@"
