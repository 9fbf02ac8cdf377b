#!/usr/bin/env bash
# End-to-end checks of petal-train: help, a short synthetic run and its outputs
# (metrics.json/csv, config.yaml, model.npz readable by numpy), and the exit
# codes and messages of config and data errors.
# Usage: petal_train_cli_test.sh PETAL_TRAIN SOURCE_DIR [PYTHON]
set -uo pipefail
bin="$1"
src="$2"
python="${3:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_exit CODE PATTERN -- ARGS...: runs petal-train, checks the exit code and that the output matches.
expect_exit() {
  local code="$1" pattern="$2"
  shift 3
  local out rc
  out="$(cd "$src" && timeout 120 "$bin" "$@" 2>&1)"
  rc=$?
  if [ "$rc" != "$code" ]; then fail "petal-train $* exited $rc, expected $code; output:"; echo "$out"; return; fi
  if ! grep -qE -- "$pattern" <<<"$out"; then fail "petal-train $*: output lacks /$pattern/:"; echo "$out"; fi
}

small=(--set data.synthetic.num_users=80 --set data.synthetic.num_items=120
       --set data.synthetic.mean_interactions=15 --set model.gmf_dim=8
       --set model.mlp_embedding_dim=8 --set model.tag_dim=8 --set "model.mlp_layers=[16, 8]"
       --set train.epochs=2)

expect_exit 0 "Usage: petal-train" -- --help
expect_exit 0 "epoch +2/2 .*hr@10 [0-9.]+ +ndcg@10" -- "${small[@]}" --out "$tmp/run"
for f in metrics.json metrics.csv config.yaml model.npz; do
  [ -s "$tmp/run/$f" ] || fail "missing $tmp/run/$f"
done
[ "$(wc -l < "$tmp/run/metrics.csv")" = 3 ] || fail "metrics.csv should have a header and 2 rows"
head -1 "$tmp/run/metrics.csv" | grep -q "^epoch,train_loss" || fail "metrics.csv header: $(head -1 "$tmp/run/metrics.csv")"
grep -q '"hr@10"' "$tmp/run/metrics.json" || fail "metrics.json lacks hr@10"
if [ -n "$python" ]; then
  "$python" - "$tmp/run/model.npz" <<'PY' || fail "numpy could not read model.npz as expected"
import sys, numpy as np
m = np.load(sys.argv[1])
names = list(m.keys())
assert names[0] == "user_gmf.weight", names
assert m["item_gmf.weight"].shape == (120, 8) and m["item_gmf.weight"].dtype == np.float32
assert "tag_embedding.weight" in names and "output.bias" in names
assert all(np.isfinite(m[n]).all() for n in names)
PY
fi
# Explicit mode on a k-fold rating split prints RMSE.
expect_exit 0 "rmse [0-9.]+ +mae" -- "${small[@]}" --set model.mode=explicit --set split.protocol=kfold \
  --set eval.full_catalog=false --set output.save_model=false --out "$tmp/explicit"

# Cold-start users: held out of training, ranked from their history; warm and cold metrics.
expect_exit 0 "epoch +2/2 .*hr@10 [0-9.]+ .*cold hr@10 [0-9.]+ +ndcg@10" -- "${small[@]}" \
  --set split.cold_users=0.25 --set output.save_model=false --out "$tmp/cold"
grep -q '"cold_hr@10"' "$tmp/cold/metrics.json" || fail "metrics.json lacks cold_hr@10"
grep -q '"cold_users": 20' "$tmp/cold/metrics.json" || fail "metrics.json: not 20 cold users of 80"
grep -q '"cold_ranking_cases": 20' "$tmp/cold/metrics.json" || fail "metrics.json lacks 20 cold cases"
expect_exit 2 "split.cold_users.*leave_one_out" -- --set split.protocol=kfold --set split.cold_users=0.1

# Config errors: exit 2, naming the key.
expect_exit 2 "unknown key 'model.gmf_dimm'" -- --set model.gmf_dimm=3
expect_exit 2 "train.lr" -- --set train.lr=-1
expect_exit 2 "split.protocol" -- --set split.protocol=random
expect_exit 2 "no-such.yaml" -- --config "$tmp/no-such.yaml"
expect_exit 2 "unknown option '--epochs'" -- --epochs 3
# Data errors: exit 1, naming the file and line.
printf 'user,item,rating,timestamp\n1,10,4,100\n2,10,x,101\n' > "$tmp/bad.csv"
expect_exit 1 "bad.csv:3: column 3 \(rating\)" -- --set data.source=csv --set "data.path=$tmp/bad.csv" --out "$tmp/bad"
saved="${PETAL_DATA_DIR-__unset__}"
unset PETAL_DATA_DIR
expect_exit 1 "PETAL_DATA_DIR is not set" -- --set data.source=ml-100k --out "$tmp/ml"
if [ "$saved" != __unset__ ]; then export PETAL_DATA_DIR="$saved"; fi

if [ "$failures" != 0 ]; then echo "$failures check(s) failed"; exit 1; fi
echo "all petal-train checks passed"
