#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: builds what the harness runs (in BUILD_DIR, default
# build-bench) and runs bench/run.py under nice, Petal and Flower + PyTorch alternately.
#   PETAL_DATA_DIR=/path/with/ml-100k scripts/bench.sh [bench/run.py options...]
#   scripts/bench.sh --smoke                      # seconds, synthetic data, no BENCHMARKS.md
# Needs scripts/setup.sh's packages (libbenchmark-dev, python3-torch) and .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build-bench}"
targets=(petal_micro_bench petal_bench_export petal-server petal-client petal-train
         petal_server_loadgen petal_aggregate_bench)
mkdir -p "$BUILD_DIR"
log="$BUILD_DIR/bench-configure.log"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPETAL_WERROR=ON \
  -DPETAL_BUILD_BENCHMARKS=ON -DPETAL_PYTHON="$PWD/.venv/bin/python" > "$log" 2>&1 \
  || { cat "$log"; exit 1; }
nice -n 10 cmake --build "$BUILD_DIR" -j 2 --target "${targets[@]}"
markdown=(--markdown BENCHMARKS.md)
for arg in "$@"; do
  if [ "$arg" = "--smoke" ]; then markdown=(); fi
done
exec nice -n 10 .venv/bin/python bench/run.py --build "$BUILD_DIR" "${markdown[@]}" "$@"
