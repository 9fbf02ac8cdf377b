#!/usr/bin/python3
"""Reproduces the figures of docs/results-federated.md (needs PETAL_DATA_DIR with ml-100k/).

  PETAL_DATA_DIR=/path scripts/federate_figures.py tune           # hyperparameters, validation split
  PETAL_DATA_DIR=/path scripts/federate_figures.py ml100k         # FedAvg/FedProx/FedAdam vs centralized
  PETAL_DATA_DIR=/path scripts/federate_figures.py cross-device   # 943 clients, 10% per round
  PETAL_DATA_DIR=/path scripts/federate_figures.py all

Every run is `nice -n 10` scripts/federate (server + 4 client processes),
scripts/federate baseline (petal-train) or petal-sim, with the exact command in
its log; runs go to out/federated-figures/<figure>/<run>/ and are reused when
they finished (delete a folder to redo it). Each figure writes a markdown
table to out/federated-figures/<figure>.md and a report (CSV, SVG, markdown)
with scripts/federate_report.py. Options: --build-dir (default build/),
--seeds (default 1,2,3). Python standard library only (plus the launcher's
PyYAML).
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "out", "federated-figures")
FEDERATE = os.path.join(ROOT, "scripts", "federate")
REPORT = os.path.join(ROOT, "scripts", "federate_report.py")
ML100K = os.path.join(ROOT, "configs", "federation", "ml100k.yaml")
CROSS = os.path.join(ROOT, "configs", "federation", "ml100k-cross-device.yaml")

# The strategies of the ML-100K figure. FedProx's mu and FedAdam's eta were
# chosen with `tune` (validation split, seed 1; HR@10 after 20 rounds): mu
# 0.001 of {0.001, 0.01, 0.1}, eta 0.1 of {0.001, 0.003, 0.01, 0.03, 0.1, 0.3}.
# FedAvg keeps the centralized baseline's lr 0.001 and 1 local epoch.
STRATEGIES = (
    ("FedAvg", []),
    ("FedProx", ["strategy.name=fedprox", "strategy.proximal_mu=0.001"]),
    ("FedAdam", ["strategy.name=fedadam", "strategy.eta=0.1", "strategy.beta_1=0.9",
                 "strategy.beta_2=0.99", "strategy.tau=1e-9"]),
)
# The tuning grid: (label, server sets, client sets).
TUNING = (
    ("FedAvg, 1 local epoch", [], []),
    ("FedAvg, 2 local epochs", ["fit_config.local_epochs=2"], []),
    ("FedAvg, lr 0.002", [], ["train.lr=0.002"]),
    ("FedProx mu 0.001", ["strategy.name=fedprox", "strategy.proximal_mu=0.001"], []),
    ("FedProx mu 0.01", ["strategy.name=fedprox", "strategy.proximal_mu=0.01"], []),
    ("FedProx mu 0.1", ["strategy.name=fedprox", "strategy.proximal_mu=0.1"], []),
    ("FedAdam eta 0.001", ["strategy.name=fedadam", "strategy.eta=0.001"], []),
    ("FedAdam eta 0.003", ["strategy.name=fedadam", "strategy.eta=0.003"], []),
    ("FedAdam eta 0.01", ["strategy.name=fedadam", "strategy.eta=0.01"], []),
    ("FedAdam eta 0.03", ["strategy.name=fedadam", "strategy.eta=0.03"], []),
    ("FedAdam eta 0.1 (Flower's default)", ["strategy.name=fedadam", "strategy.eta=0.1"], []),
    ("FedAdam eta 0.3", ["strategy.name=fedadam", "strategy.eta=0.3"], []),
)


def slug(text):
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_").replace("__", "_")


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run(cmd, log, what):
    """Runs one experiment under nice, logging the command and its output."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    full = ["nice", "-n", "10", *cmd]
    print(f"[figures] {what}: {shlex.join(full)}", flush=True)
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as f:
        f.write(f"$ {shlex.join(full)}\n")
        f.flush()
        r = subprocess.run(full, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    load1 = os.getloadavg()[0]
    print(f"[figures]   -> status {r.returncode} in {time.monotonic() - start:.0f} s "
          f"(load average {load1:.1f})", flush=True)
    if r.returncode != 0:
        sys.exit(f"[figures] {what} failed (status {r.returncode}); see {log}")


def federated(args, figure, name, fed, seed, server_sets=(), client_sets=(), shared_sets=()):
    out = os.path.join(OUT, figure, name)
    history = load(os.path.join(out, "server", "history.json"))
    if history and history.get("completed"):
        return out, history
    cmd = [FEDERATE, "run", fed, "--out", out, "--quiet", "--build-dir", args.build_dir,
           "--client-set", f"client.seed={seed}", "--centralized-set", f"seed={seed}"]
    for s in server_sets:
        cmd += ["--server-set", s]
    for s in client_sets:
        cmd += ["--client-set", s]
    for s in shared_sets:
        cmd += ["--shared-set", s]
    run(cmd, os.path.join(OUT, figure, f"{name}.log"), f"{figure}/{name}")
    return out, load(os.path.join(out, "server", "history.json"))


def centralized(args, figure, seed, fed=ML100K, shared_sets=()):
    out = os.path.join(OUT, figure, f"centralized_seed{seed}")
    metrics = load(os.path.join(out, "centralized", "metrics.json"))
    if metrics:
        return os.path.join(out, "centralized"), metrics
    cmd = [FEDERATE, "baseline", fed, "--out", out, "--build-dir", args.build_dir,
           "--client-set", f"client.seed={seed}", "--centralized-set", f"seed={seed}"]
    for s in shared_sets:
        cmd += ["--shared-set", s]
    run(cmd, os.path.join(OUT, figure, f"centralized_seed{seed}.log"), f"{figure}/centralized seed {seed}")
    return os.path.join(out, "centralized"), load(os.path.join(out, "centralized", "metrics.json"))


def last(history, metric):
    return history["metrics_distributed"][metric][-1][1]


def best_round(history, metric):
    return max(history["metrics_distributed"][metric], key=lambda p: p[1])


def central_last(metrics, metric):
    return metrics["epochs"][-1][metric]


def fmt(values):
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def seconds_per_round(history):
    rounds = [r for r in history.get("rounds", []) if r.get("round", 0) > 0]
    if not rounds:
        return float("nan")
    return statistics.fmean((r["fit"]["seconds"] + r["evaluate"]["seconds"]) for r in rounds)


def write(figure, lines):
    path = os.path.join(OUT, f"{figure}.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"[figures] wrote {path}")


def fig_tune(args):
    figure = "tune"
    shared = ["split.validation=true"]
    _, cent = centralized(args, figure, 1, shared_sets=shared)
    c = central_last(cent, "hr@10")
    lines = ["### Tuning on the validation split (ML-100K, 4 clients, Dirichlet 0.5, seed 1)", "",
             "Each user's second-latest interaction against 99 sampled negatives (the test item is "
             "never seen). 20 rounds; centralized: 20 epochs.", "",
             f"Centralized (validation): HR@10 {c:.4f} after epoch 20, best "
             f"{max(e['hr@10'] for e in cent['epochs']):.4f}.", "",
             "| setting | HR@10 after 20 rounds | best HR@10 (round) | NDCG@10 | % of centralized |",
             "|---|---|---|---|---|"]
    for label, server_sets, client_sets in TUNING:
        _, h = federated(args, figure, slug(label), ML100K, 1, server_sets, client_sets, shared)
        b = best_round(h, "hr@10")
        lines.append(f"| {label} | {last(h, 'hr@10'):.4f} | {b[1]:.4f} ({b[0]}) | "
                     f"{last(h, 'ndcg@10'):.4f} | {100 * last(h, 'hr@10') / c:.1f} % |")
    write(figure, lines)


def fig_ml100k(args):
    figure = "ml100k"
    seeds = args.seeds
    cents = [centralized(args, figure, s) for s in seeds]
    c_hr = [central_last(m, "hr@10") for _, m in cents]
    c_ndcg = [central_last(m, "ndcg@10") for _, m in cents]
    c_best = [max(e["hr@10"] for e in m["epochs"]) for _, m in cents]
    c_secs = [statistics.fmean(e["train_seconds"] + e.get("eval_seconds", 0) for e in m["epochs"])
              for _, m in cents]
    lines = ["### ML-100K, 4 clients, Dirichlet alpha 0.5 over genres: federated vs centralized", "",
             f"`configs/federation/ml100k.yaml`, leave-one-out test (latest interaction vs 99 "
             f"negatives), 20 rounds of `local_epochs` 1 vs 20 centralized epochs; seeds "
             f"{', '.join(map(str, seeds))} (model initialization and training order; same "
             f"partition); mean ± sample std.", "",
             "| run | HR@10 | NDCG@10 | HR@10 vs centralized | best HR@10 over rounds | s per round |",
             "|---|---|---|---|---|---|",
             f"| Centralized (20 epochs) | {fmt(c_hr)} | {fmt(c_ndcg)} | 100 % | {fmt(c_best)} | "
             f"{statistics.fmean(c_secs):.1f} (per epoch) |"]
    specs = [("Centralized", ",".join(p for p, _ in cents))]
    ratios = {}
    for label, server_sets in STRATEGIES:
        runs = [federated(args, figure, f"{slug(label)}_seed{s}", ML100K, s, server_sets) for s in seeds]
        hr = [last(h, "hr@10") for _, h in runs]
        ndcg = [last(h, "ndcg@10") for _, h in runs]
        best = [best_round(h, "hr@10")[1] for _, h in runs]
        ratio = [a / b for a, b in zip(hr, c_hr)]
        ratios[label] = statistics.fmean(ratio)
        secs = statistics.fmean(seconds_per_round(h) for _, h in runs)
        lines.append(f"| {label} | {fmt(hr)} | {fmt(ndcg)} | {100 * statistics.fmean(ratio):.1f} % | "
                     f"{fmt(best)} | {secs:.1f} |")
        specs.append((label, ",".join(p for p, _ in runs)))
    top = max(ratios, key=ratios.get)
    lines += ["", f"Best federated: {top}, {100 * ratios[top]:.1f} % of centralized HR@10 "
                  f"(target: >= 95 %: {'met' if ratios[top] >= 0.95 else 'NOT met'})."]
    cmd = [sys.executable, REPORT, "--out", os.path.join(OUT, figure, "report"), "--quiet",
           "--title", "ML-100K, 4 clients, Dirichlet 0.5: federated vs centralized (3 seeds)"]
    for label, paths in specs:
        cmd += ["--centralized" if label == "Centralized" else "--federated", f"{label}={paths}"]
    subprocess.run(cmd, check=True)
    lines.append(f"\nPlot and per-round CSV: {os.path.relpath(os.path.join(OUT, figure, 'report'), ROOT)}/")
    write(figure, lines)


def fig_cross_device(args):
    figure = "cross-device"
    seeds = args.seeds
    sim = os.path.join(args.build_dir, "src", "client", "sim", "petal-sim")
    cents = [centralized(args, "ml100k", s) for s in seeds]
    lines = ["### Cross-device ML-100K: 943 clients (one per user), 10 % sampled per round", "",
             "`configs/federation/ml100k-cross-device.yaml` with petal-sim (2 worker threads): "
             "FedAvg, 94 users per round, 5 local epochs per visit, user embeddings local, "
             "all 943 users evaluated every 10 rounds.", "",
             "| seed | HR@10 (round) | NDCG@10 | vs centralized HR@10 | s per round (fit) | "
             "s per evaluation of 943 | peak RSS MiB | load average |",
             "|---|---|---|---|---|---|---|---|"]
    specs = []
    for (cent_path, cent), seed in zip(cents, seeds):
        out = os.path.join(OUT, figure, f"seed{seed}")
        history = load(os.path.join(out, "history.json"))
        if not (history and history.get("completed")):
            run([sim, "--federation", CROSS, "--out", out, "--set", f"client:client.seed={seed}"],
                os.path.join(OUT, figure, f"seed{seed}.log"), f"{figure} seed {seed}")
            history = load(os.path.join(out, "history.json"))
            with open(os.path.join(out, "load.txt"), "w", encoding="utf-8") as f:
                f.write(f"{os.getloadavg()[0]:.1f}\n")
        summary = load(os.path.join(out, "simulation.json"))
        fits = [r["fit"]["seconds"] for r in history["rounds"]]
        evals = [r["evaluate"]["seconds"] for r in history["rounds"] if r["evaluate"]["sampled"]]
        hr = history["metrics_distributed"]["hr@10"][-1]
        c_hr = central_last(cent, "hr@10")
        try:
            with open(os.path.join(out, "load.txt"), encoding="utf-8") as f:
                load1 = f.read().strip()
        except OSError:
            load1 = "?"
        lines.append(f"| {seed} | {hr[1]:.4f} ({hr[0]}) | {last(history, 'ndcg@10'):.4f} | "
                     f"{100 * hr[1] / c_hr:.1f} % | {statistics.fmean(fits):.2f} | "
                     f"{statistics.fmean(evals):.1f} | {summary['peak_rss_mib']:.0f} | {load1} |")
        specs.append(out)
    subprocess.run([sys.executable, REPORT, "--out", os.path.join(OUT, figure, "report"), "--quiet",
                    "--title", "ML-100K cross-device (943 clients, 10 % per round) vs centralized",
                    "--federated", f"FedAvg cross-device={','.join(specs)}",
                    "--centralized", f"Centralized={','.join(p for p, _ in cents)}"], check=True)
    write(figure, lines)


# Cross-device tuning grid: (label, petal-sim --set overrides). Validation
# split, seed 1, 50 rounds (FedAvg's HR@10 is flat after round 10).
CROSS_TUNING = (
    ("FedAvg", []),
    ("FedAvgM server momentum 0.9", ["server:strategy.name=fedavgm",
                                     "server:strategy.server_momentum=0.9"]),
    ("FedAdam eta 0.01", ["server:strategy.name=fedadam", "server:strategy.eta=0.01"]),
    ("FedAdam eta 0.1", ["server:strategy.name=fedadam", "server:strategy.eta=0.1"]),
    ("FedAvg, 1 local epoch", ["server:fit_config.local_epochs=1"]),
    ("FedAvg, client Adam lr 0.01", ["client:train.lr=0.01"]),
    ("FedAvg, client SGD lr 0.5", ["client:train.optimizer=sgd", "client:train.lr=0.5"]),
    # Diagnostic: every user trains in every round (no user waits ~10 rounds between visits).
    ("FedAvg, all 943 clients per round, 10 rounds", ["server:strategy.fraction_fit=1.0",
                                                      "server:run.num_rounds=10"]),
    # Diagnostics of the user embeddings (30 rounds; FedAvg has 0.371 / 0.382 / 0.379 at
    # rounds 10 / 20 / 30): more local steps per visit, embeddings that hardly ever train,
    # a larger initialization to break the symmetry between clients.
    ("FedAvg, client batch 32 (about 7x the local steps), 30 rounds",
     ["client:train.batch_size=32", "server:run.num_rounds=30"]),
    ("FedAvg, user embeddings kept untrained (user_dropout 0.99), 30 rounds",
     ["client:train.user_dropout=0.99", "server:run.num_rounds=30"]),
    ("FedAvg, embeddings initialized with std 0.1 (not 0.01), 30 rounds",
     ["client:model.init_std=0.1", "server:run.num_rounds=30"]),
)
CROSS_TUNING_ROUNDS = 50


def fig_cross_tune(args):
    figure = "cross-device-tune"
    sim = os.path.join(args.build_dir, "src", "client", "sim", "petal-sim")
    _, cent = centralized(args, "tune", 1, shared_sets=["split.validation=true"])
    c = central_last(cent, "hr@10")
    lines = [f"### Cross-device tuning on the validation split (943 clients, 10 % per round, "
             f"seed 1, {CROSS_TUNING_ROUNDS} rounds)", "",
             f"Centralized (validation): HR@10 {c:.4f} after epoch 20.", "",
             "| setting | HR@10 (round) | best HR@10 (round) | NDCG@10 | % of centralized |",
             "|---|---|---|---|---|"]
    for label, sets in CROSS_TUNING:
        out = os.path.join(OUT, figure, slug(label))
        history = load(os.path.join(out, "history.json"))
        if not (history and history.get("completed")):
            cmd = [sim, "--federation", CROSS, "--out", out, "--set", "client:client.seed=1",
                   "--set", "shared:split.validation=true",
                   "--set", f"server:run.num_rounds={CROSS_TUNING_ROUNDS}"]
            for x in sets:
                cmd += ["--set", x]
            run(cmd, os.path.join(OUT, figure, f"{slug(label)}.log"), f"{figure}/{label}")
            history = load(os.path.join(out, "history.json"))
        hr = history["metrics_distributed"]["hr@10"][-1]
        b = best_round(history, "hr@10")
        lines.append(f"| {label} | {hr[1]:.4f} ({hr[0]}) | {b[1]:.4f} ({b[0]}) | "
                     f"{last(history, 'ndcg@10'):.4f} | {100 * hr[1] / c:.1f} % |")
    write(figure, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("figure", choices=("tune", "ml100k", "cross-device-tune", "cross-device",
                                           "all"))
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    if not os.path.isfile(os.path.join(os.environ.get("PETAL_DATA_DIR", "/nonexistent"), "ml-100k", "u.data")):
        sys.exit("federate_figures: set PETAL_DATA_DIR to a folder holding ml-100k/")
    figures = {"tune": fig_tune, "ml100k": fig_ml100k, "cross-device-tune": fig_cross_tune,
               "cross-device": fig_cross_device}
    for name in (figures if args.figure == "all" else [args.figure]):
        figures[name](args)


if __name__ == "__main__":
    main()
