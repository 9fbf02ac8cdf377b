"""Runs petal-train for the figures in docs/results.md and aggregates them.

Every run is one `petal-train --config CONFIG --set ...` invocation writing its
metrics.json under OUT/<run name>/; a run whose metrics.json already exists is
reused (delete the folder to recompute). Standard library only.
"""
import json
import math
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def petal_train_binary():
    """The petal-train binary: $PETAL_TRAIN, else the first build folder that has one."""
    if os.environ.get("PETAL_TRAIN"):
        return os.environ["PETAL_TRAIN"]
    for build in ("build", "build-model"):
        path = os.path.join(ROOT, build, "src", "model", "petal-train")
        if os.path.exists(path):
            return path
    sys.exit("petal-train not found: build it (cmake --build build --target petal-train) "
             "or set PETAL_TRAIN")


def run(out_dir, name, config, overrides, log=print, cached_only=False):
    """Runs (or reuses) one petal-train run; returns its metrics.json as a dict.

    With cached_only, never starts petal-train: returns None when the run has no metrics.json.
    """
    run_dir = os.path.join(out_dir, name)
    metrics = os.path.join(run_dir, "metrics.json")
    if os.path.exists(metrics):
        with open(metrics) as f:
            return json.load(f)
    if cached_only:
        return None
    cmd = ["nice", "-n", "10", petal_train_binary(), "--config", os.path.join(ROOT, config),
           "--out", run_dir, "--set", "output.save_model=false"]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={value}"]
    log(f"[{time.strftime('%H:%M:%S')}] {name}: " + " ".join(shlex.quote(c) for c in cmd[3:]))
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "log.txt"), "w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(os.path.join(run_dir, "log.txt")) as f:
            sys.exit(f"{name} failed (exit {proc.returncode}):\n{f.read()}")
    with open(metrics) as f:
        return json.load(f)


def final(metrics, key):
    return metrics["final"][key]


def mean_std(values):
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def fmt(values, digits=4):
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}"
