#!/usr/bin/env bash
# Petal's main job on a fresh Debian 12 machine:
#   1. installs what is missing (scripts/setup.sh);
#   2. builds petal-server, petal-client and petal-train (build/);
#   3. runs a federation on loopback (configs/federation/demo.yaml): petal-server
#      and 4 petal-clients, each holding a non-IID partition (Dirichlet alpha 0.5
#      over genres) of the embedded synthetic MovieLens-like data, FedAvg for 10
#      rounds, one progress line per round (logs in out/federation/demo/logs/);
#   4. trains the same model centrally on the pooled data, one line per epoch;
#   5. writes out/federation/demo/report/: report.csv (HR@10 and NDCG@10 per round,
#      federated vs centralized), report.svg (the plot), report.md (summary).
# Idempotent (every run starts the federation afresh). A few minutes on 2 cores.
# Options: -j N (build jobs, default 2); --movielens DIR (MovieLens 100K from
# DIR/ml-100k instead of the synthetic data); --rounds R (rounds and epochs,
# default 10); --clients N (default 4).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=2
movielens=""
rounds=""
clients=""
while [ $# -gt 0 ]; do
  case "$1" in
    -j) jobs="$2"; shift 2 ;;
    --movielens) movielens="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
. scripts/lib.sh

federation=configs/federation/demo.yaml
out=out/federation/demo
args=(--out "$out" --build-dir build)
title="Demo: synthetic MovieLens-like data, 4 clients (Dirichlet 0.5), FedAvg"
if [ -n "$movielens" ]; then
  if [ ! -f "$movielens/ml-100k/u.data" ]; then
    echo "demo.sh: $movielens/ml-100k/u.data not found (--movielens takes the folder holding ml-100k/)" >&2
    exit 2
  fi
  args+=(--shared-set data.source=ml-100k --shared-set "data.path=$(cd "$movielens" && pwd)/ml-100k")
  title="Demo: MovieLens 100K, 4 clients (Dirichlet 0.5), FedAvg"
fi
if [ -n "$rounds" ]; then
  args+=(--server-set "run.num_rounds=$rounds" --centralized-set "train.epochs=$rounds")
fi
if [ -n "$clients" ]; then
  args+=(--clients "$clients")
  title="${title/4 clients/$clients clients}"
fi

petal_step "setup"
./scripts/setup.sh

petal_step "configure + build petal-server, petal-client, petal-train (build/)"
petal_configure build
cmake --build build -j "$jobs" --target petal-server petal-client petal-train

petal_step "federated: petal-server + clients on 127.0.0.1 ($federation)"
scripts/federate plan "$federation" "${args[@]}" | sed -n '1,2p'
scripts/federate run "$federation" "${args[@]}" --quiet

petal_step "centralized baseline: the same model on the pooled data"
scripts/federate baseline "$federation" "${args[@]}"

petal_step "report: federated vs centralized -> $out/report/"
scripts/federate_report.py --title "$title" \
  --federated "FedAvg=$out/server/history.json" \
  --centralized "Centralized=$out/centralized/metrics.json" \
  --out "$out/report"

petal_step "done: $out/report/report.md (summary), report.svg (plot), report.csv (per round)"
