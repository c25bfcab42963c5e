#!/usr/bin/env bash
# The whole test suite on a new machine: set-up (idempotent), build, every test but the `slow`
# ones, then the libraries' C++ tests again in an AddressSanitizer + UBSan build (build-asan;
# OPINE_SANITIZE_TESTS=0 skips it). Extra arguments go to the first ctest (e.g. -L parity).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
bdir=${OPINE_BUILD_DIR:-$root/build}
export OPINE_DATA_ROOT=${OPINE_DATA_ROOT:-$root/../shared/data}
[[ -d "$OPINE_DATA_ROOT" ]] || echo "test: no data root at $OPINE_DATA_ROOT: realdata tests will skip"
(cd "$bdir" && ctest --output-on-failure -j "$(nproc)" -LE slow "$@")

if [[ "${OPINE_SANITIZE_TESTS:-1}" == 1 ]]; then
  echo "test: sanitizer build (build-asan)"
  # The build's own output goes to a log, printed when it fails (ninja reports errors on stdout).
  # The sanitizer runtime options hold for the build too: it runs each test binary to list its tests.
  mkdir -p "$root/build-asan"
  if ! ASAN_OPTIONS=detect_leaks=0 OPINE_BUILD_DIR="$root/build-asan" OPINE_BUILD_TYPE=Debug \
    OPINE_CMAKE_ARGS="-DOPINE_SANITIZE=ON -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DOPINE_BUILD_LAUNCH=OFF -DOPINE_REFERENCE_DIR=$bdir/reference" \
    "$root/scripts/setup.sh" >"$root/build-asan/setup.log" 2>&1; then
    echo "test: the sanitizer build failed; the end of build-asan/setup.log:"
    tail -n 100 "$root/build-asan/setup.log"
    df -h "$root"
    free -m
    exit 1
  fi
  # Leak checking is off: libtorch and OpenMP keep process-lifetime allocations it would report.
  # The libraries' tests only (core, models, quant, peft, data, MPI): the command line and its
  # recipes (launch/) are not built here, and the RealData tests' whole-corpus loops (every shipped
  # tweet through every tokenizer) would repeat at -O0 what the parity tests' edge cases already
  # put under the sanitizers. Both run in the first build.
  (cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j "$(nproc)" -LE "slow|gpu|realdata")
fi
