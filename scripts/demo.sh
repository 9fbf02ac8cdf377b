#!/usr/bin/env bash
# Petal's main job on a fresh Debian 12 machine:
#   1. installs what is missing (scripts/setup.sh);
#   2. builds petal-train;
#   3. trains the tag-aware NCF recommender centrally on the embedded synthetic
#      MovieLens-like data (configs/centralized.yaml), one progress line per epoch,
#      and writes metrics (JSON + CSV) and the model (.npz) to out/demo/.
# Idempotent. Options: -j N (build jobs, default 2); any further arguments are
# passed to petal-train (e.g. --set train.epochs=3).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=2
if [ "${1:-}" = "-j" ]; then jobs="$2"; shift 2; fi
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,9p' "$0"; exit 0; fi
. scripts/lib.sh

petal_step "setup"
./scripts/setup.sh

petal_step "configure + build petal-train (build/)"
petal_configure build
cmake --build build -j "$jobs" --target petal-train

out=out/demo
petal_step "centralized tag-aware NCF on synthetic data -> $out/"
build/src/model/petal-train --config configs/centralized.yaml --set output.dir="$out" "$@"

petal_step "done: metrics in $out/ (metrics.csv, metrics.json), model in $out/"
ls -l "$out"
