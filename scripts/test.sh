#!/usr/bin/env bash
# Runs Petal's whole test suite on a fresh Debian 12 machine:
#   1. installs what is missing (scripts/setup.sh: Debian packages, .venv with pinned flwr);
#   2. builds everything (build/, warnings as errors) and runs every ctest test,
#      including the interop tests against real Flower and numpy;
#   3. rebuilds the decoders under AddressSanitizer + UBSan (build-asan/) and runs
#      the tests labelled "sanitize".
# MovieLens-based tests read PETAL_DATA_DIR (.ci/run points it at ../shared/data).
# Idempotent; incremental on a second run (ccache + ninja). Options: -j N (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    -j) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
. scripts/lib.sh
step() { petal_step "$@"; }

step "setup"
./scripts/setup.sh

ctest_args=(--output-on-failure --no-tests=error -j "$jobs" --timeout 900)
if [ -n "${PETAL_DATA_DIR:-}" ]; then
  if [ ! -f "$PETAL_DATA_DIR/ml-100k/u.data" ]; then
    echo "test.sh: PETAL_DATA_DIR=$PETAL_DATA_DIR has no ml-100k/u.data" >&2
    exit 2
  fi
  export PETAL_DATA_DIR
  echo "MovieLens tests use PETAL_DATA_DIR=$PETAL_DATA_DIR"
else
  echo "WARNING: PETAL_DATA_DIR is not set: the tests labelled 'movielens' are NOT run."
  echo "         Point it at a folder holding ml-100k/ and ml-latest-small/ to run them."
  ctest_args+=(-LE movielens)
fi

step "configure + build (build/)"
petal_configure build
cmake --build build -j "$jobs"

step "ctest (build/)"
ctest --test-dir build "${ctest_args[@]}"

step "sanitizer build (build-asan/: ASan + UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPETAL_SANITIZE=ON -DPETAL_WERROR=ON \
  -DPETAL_WITH_TORCH=OFF -DPETAL_INTEROP_TESTS=OFF > build-asan.configure.log 2>&1 \
  || { cat build-asan.configure.log; exit 1; }
cmake --build build-asan -j "$jobs" --target petal_sanitize_tests
step "ctest -L sanitize (build-asan/)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -L sanitize --output-on-failure --no-tests=error -j "$jobs"

step "all tests passed"
