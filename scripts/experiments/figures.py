#!/usr/bin/env python3
"""Reproduces the model figures of docs/results.md with petal-train.

  PETAL_DATA_DIR=/path/to/data python3 scripts/experiments/figures.py ml100k-loo
  python3 scripts/experiments/figures.py throughput        # synthetic, no data needed
  python3 scripts/experiments/figures.py all

Figures: ml100k-loo, ml100k-rating, ml-latest-loo, ml-latest-rating, ml100k-cold,
ml-latest-cold, throughput, tag-search.
--cached-only builds the tables from the runs that exist and starts none
(a variant with missing runs is reported over the runs it has).
Runs go to out/experiments/<figure>/<run>/ (reused when their metrics.json
exists: delete a folder to recompute) and each figure's markdown table is
printed and written to out/experiments/<figure>.md. Every run is
`nice -n 10 petal-train --config <config> --set ...`; the exact command is in
the run's log line and its config.yaml. Uses only the Python standard library.
"""
import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import petal_runs as pr  # noqa: E402

OUT = os.path.join(pr.ROOT, "out", "experiments")
SEEDS = (1, 2, 3)
CACHED_ONLY = False
VARIANTS = (  # name, overrides
    ("TagNCF", {}),
    ("no tags", {"model.use_tags": "false"}),
    ("GMF only (MF)", {"model.use_tags": "false", "model.gmf_only": "true"}),
)


def slug(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def runs_of(figure, name, config, overrides_list):
    """The runs of one variant (the cached ones only with --cached-only) and their labels."""
    got = []
    for label, overrides in overrides_list:
        m = pr.run(os.path.join(OUT, figure), f"{slug(name)}_{label}", config, overrides,
                   cached_only=CACHED_ONLY)
        if m is not None:
            got.append((label, m))
    return got


def seeded_rows(figure, config, variants, extra, cells):
    """One table row per variant over SEEDS: `cells(col, runs)` gives the cells after the name
    (col(key) = the final metric of every run). Returns ({variant: {seed label: metrics}}, rows)."""
    per_variant, rows = {}, []
    for name, overrides in variants:
        got = runs_of(figure, name, config,
                      [(f"seed{seed}", dict(overrides, seed=seed, **extra)) for seed in SEEDS])
        per_variant[name] = dict(got)
        runs = [m for _, m in got]
        if not runs:
            rows.append(f"| {name} | not run |")
            continue
        seeds_note = ("" if len(got) == len(SEEDS) else
                      f" ({len(got)} of {len(SEEDS)} seeds: {', '.join(l for l, _ in got)})")
        row = cells(lambda key: [pr.final(m, key) for m in runs], runs)
        rows.append(f"| {name}{seeds_note} | " + " | ".join(row) + " |")
    return per_variant, rows


def paired_differences(per_variant, pairs, hr_key, ndcg_key, lead="Paired"):
    """Lines "Paired by seed (...), A − B: HR@10 ...; NDCG@10 ..." for each (A, B) with common seeds."""
    lines = []
    for tagged_name, plain_name in pairs:
        tags, plain = per_variant.get(tagged_name, {}), per_variant.get(plain_name, {})
        paired = [s for s in tags if s in plain]
        if not paired:
            continue
        d_hr = [pr.final(tags[s], hr_key) - pr.final(plain[s], hr_key) for s in paired]
        d_ndcg = [pr.final(tags[s], ndcg_key) - pr.final(plain[s], ndcg_key) for s in paired]
        lines += ["", f"{lead} by seed ({', '.join(paired)}), {tagged_name} − "
                  f"{plain_name}: HR@10 {', '.join(f'{d:+.4f}' for d in d_hr)} (mean "
                  f"{sum(d_hr) / len(d_hr):+.4f}); NDCG@10 "
                  f"{', '.join(f'{d:+.4f}' for d in d_ndcg)} (mean {sum(d_ndcg) / len(d_ndcg):+.4f})."]
    return lines


def ranking_figure(figure, config, title):
    lines = [f"### {title}", "",
             f"`{config}`, leave-one-out (latest interaction per user vs 99 sampled negatives, "
             f"split seed 1), model seeds {', '.join(map(str, SEEDS))}; mean ± sample std over seeds.",
             "", "| model | HR@10 | NDCG@10 | full-catalog P@10 | full-catalog R@10 | train s/run |",
             "|---|---|---|---|---|---|"]
    per_variant, rows = seeded_rows(
        figure, config, VARIANTS + DROPOUT_VARIANTS, {},
        lambda col, runs: [pr.fmt(col("hr@10")), pr.fmt(col("ndcg@10")), pr.fmt(col("precision@10")),
                           pr.fmt(col("recall@10")),
                           f"{sum(m['train_seconds'] for m in runs) / len(runs):.0f}"])
    lines += rows
    lines += paired_differences(per_variant, (("TagNCF", "no tags"),
                                              ("TagNCF, user_dropout 0.3", "no tags, user_dropout 0.3"),
                                              ("TagNCF, user_dropout 0.3", "no tags")),
                                "hr@10", "ndcg@10")
    return lines


def rating_figure(figure, config, title, folds, fold_label):
    lines = [f"### {title}", "",
             f"`{config}`, explicit mode (MSE), seed 1; predictions clipped to the training rating "
             f"range; {fold_label}.", "",
             "| model | RMSE (mean over folds) | MAE | RMSE per fold |", "|---|---|---|---|"]
    for name, overrides in VARIANTS:
        got = runs_of(figure, name, config,
                      [(f"fold{fold}", dict(overrides, **{"split.fold": fold})) for fold in folds])
        if not got:
            lines.append(f"| {name} | not run | | |")
            continue
        rmse = [pr.final(m, "rmse") for _, m in got]
        mae = [pr.final(m, "mae") for _, m in got]
        folds_note = "" if len(got) == len(folds) else f" ({len(got)} of {len(folds)} folds)"
        lines.append(f"| {name}{folds_note} | {pr.fmt(rmse)} | {pr.fmt(mae)} | "
                     f"{', '.join(f'{label}: {r:.4f}' for (label, _), r in zip(got, rmse))} |")
    return lines


def throughput_figure(figure):
    """petal-train on the default config (and ML-100K when available) under /usr/bin/time -v."""
    lines = ["### petal-train throughput and memory", "",
             "| workload | samples/s (training) | train s | total s | peak RSS |", "|---|---|---|---|---|"]
    cases = [("synthetic default (configs/centralized.yaml)", "configs/centralized.yaml", [])]
    if os.environ.get("PETAL_DATA_DIR"):
        cases.append(("ML-100K implicit (configs/model/ml100k_implicit.yaml)",
                      "configs/model/ml100k_implicit.yaml", []))
    for label, config, extra in cases:
        run_dir = os.path.join(OUT, figure, slug(label))
        os.makedirs(run_dir, exist_ok=True)
        cmd = ["/usr/bin/time", "-v", "nice", "-n", "10", pr.petal_train_binary(), "--config",
               os.path.join(pr.ROOT, config), "--out", run_dir] + extra
        print(" ".join(cmd), flush=True)
        proc = subprocess.run(cmd, cwd=pr.ROOT, capture_output=True, text=True)
        with open(os.path.join(run_dir, "log.txt"), "w") as f:
            f.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            sys.exit(f"{label} failed:\n{proc.stdout}{proc.stderr}")
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
        with open(os.path.join(run_dir, "metrics.json")) as f:
            m = json.load(f)
        lines.append(f"| {label} | {m['samples_per_second']:.0f} | {m['train_seconds']:.1f} | "
                     f"{m['total_seconds']:.1f} | {rss_kb / 1024:.0f} MiB |")
    load = os.getloadavg()
    lines += ["", f"Load average when measured: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
              f"(shared 2-core machine)."]
    return lines


# DropoutNet-style user dropout: the tag path learns to rank without the user embedding.
# Chosen on the validation split (tag-search) for cold-start users; shown on every
# leave-one-out figure with the same setting for the model without tags.
DROPOUT_VARIANTS = (
    ("TagNCF, user_dropout 0.3", {"train.user_dropout": 0.3}),
    ("no tags, user_dropout 0.3", {"model.use_tags": "false", "train.user_dropout": 0.3}),
)

# Cold start: a seeded fifth of the users never trains and is ranked from its history alone
# (split.cold_users). Without tags such a user can only get the popularity ranking.
COLD_FRACTION = 0.2


def cold_figure(figure, config, title):
    lines = [f"### {title}", "",
             f"`{config}` with `--set split.cold_users={COLD_FRACTION}`: leave-one-out (split seed "
             f"1); {COLD_FRACTION:.0%} of the users (seeded by the split seed) are held out of "
             f"training and ranked from their training history alone (no user embedding: "
             f"`LocalWorkload::EvaluateColdStart`); model seeds {', '.join(map(str, SEEDS))}; "
             f"mean ± sample std over seeds.", "",
             "| model | cold HR@10 | cold NDCG@10 | warm HR@10 | warm NDCG@10 |",
             "|---|---|---|---|---|"]
    per_variant, rows = seeded_rows(
        figure, config, VARIANTS + DROPOUT_VARIANTS, {"split.cold_users": COLD_FRACTION},
        lambda col, runs: [pr.fmt(col("cold_hr@10")), pr.fmt(col("cold_ndcg@10")),
                           pr.fmt(col("hr@10")), pr.fmt(col("ndcg@10"))])
    lines += rows
    some = next((m for runs in per_variant.values() for m in runs.values()), None)
    if some is not None:
        cs = some.get("cold_start", {})
        lines += ["", f"{cs.get('cold_users')} cold users ({cs.get('cold_history_interactions')} "
                  f"history interactions, {cs.get('cold_ranking_cases')} ranking cases); the warm "
                  f"columns rank the other users' held-out items as in the leave-one-out figure."]
    lines += paired_differences(per_variant, (("TagNCF", "no tags"),
                                              ("TagNCF, user_dropout 0.3", "no tags")),
                                "cold_hr@10", "cold_ndcg@10", "Cold users, paired")
    return lines


# Tag-branch search on the validation split (seeds 1 and 2): the knobs that only the tag
# branch has, against the same model without tags. Runs: out/experiments/tag-search/.
TAG_SEARCH = (
    ("ml100k", "configs/model/ml100k_implicit.yaml", (
        ("no tags", {"model.use_tags": "false"}),
        ("TagNCF", {}),
        ("tag_dim 8", {"model.tag_dim": 8}),
        ("tag_dim 16", {"model.tag_dim": 16}),
        ("tag_dim 64", {"model.tag_dim": 64}),
        ("profile_half_life 10", {"model.profile_half_life": 10}),
        ("profile_half_life 30", {"model.profile_half_life": 30}),
        ("user_dropout 0.1", {"train.user_dropout": 0.1}),
        ("user_dropout 0.2", {"train.user_dropout": 0.2}),
        ("user_dropout 0.3", {"train.user_dropout": 0.3}),
        ("item_dropout 0.1", {"train.item_dropout": 0.1}),
        ("item_dropout 0.3", {"train.item_dropout": 0.3}),
        ("no tags, user_dropout 0.1", {"model.use_tags": "false", "train.user_dropout": 0.1}),
        ("no tags, user_dropout 0.3", {"model.use_tags": "false", "train.user_dropout": 0.3}),
    )),
    ("mllatest", "configs/model/ml_latest_implicit.yaml", (
        ("no tags", {"model.use_tags": "false"}),
        ("TagNCF", {}),
        ("tag_dim 16", {"model.tag_dim": 16}),
        ("own_tag_weight 1", {"model.own_tag_weight": 1.0}),
        ("own_tag_weight 10", {"model.own_tag_weight": 10.0}),
        ("profile_max_tags 16", {"model.profile_max_tags": 16}),
        ("profile_max_tags 256", {"model.profile_max_tags": 256}),
        ("user_dropout 0.3", {"train.user_dropout": 0.3}),
        ("no tags, user_dropout 0.3", {"model.use_tags": "false", "train.user_dropout": 0.3}),
    )),
)


# Cold users on the validation split: how much user dropout the profile path needs.
COLD_SEARCH = (
    ("no tags", {"model.use_tags": "false"}),
    ("TagNCF", {}),
    ("user_dropout 0.1", {"train.user_dropout": 0.1}),
    ("user_dropout 0.3", {"train.user_dropout": 0.3}),
)


def tag_search_figure(figure):
    lines = ["### Tag-branch search (validation split, seeds 1 and 2)", ""]
    for data, config, variants in TAG_SEARCH:
        lines += [f"`{config}` with `split.validation=true` (the test items are never seen).", "",
                  "| variant | HR@10 (mean of 2 seeds) | NDCG@10 | HR@10 per seed |",
                  "|---|---|---|---|"]
        for name, overrides in variants:
            got = runs_of(figure, f"{data} {name}", config,
                          [(f"seed{seed}", dict(overrides, seed=seed, **{"split.validation": "true"}))
                           for seed in (1, 2)])
            if not got:
                lines.append(f"| {name} | not run | | |")
                continue
            hr = [pr.final(m, "hr@10") for _, m in got]
            ndcg = [pr.final(m, "ndcg@10") for _, m in got]
            lines.append(f"| {name}{'' if len(got) == 2 else ' (1 of 2 seeds)'} | "
                         f"{sum(hr) / len(hr):.4f} | {sum(ndcg) / len(ndcg):.4f} | "
                         f"{', '.join(f'{h:.4f}' for h in hr)} |")
        lines.append("")
    config = "configs/model/ml100k_implicit.yaml"
    lines += [f"`{config}` with `split.validation=true` and `split.cold_users={COLD_FRACTION}` "
              "(20 % of the users never train and are ranked from their history).", "",
              "| variant | cold HR@10 (mean of 2 seeds) | cold NDCG@10 | cold HR@10 per seed | "
              "warm HR@10 |", "|---|---|---|---|---|"]
    for name, overrides in COLD_SEARCH:
        got = runs_of(figure, f"ml100k cold {name}", config,
                      [(f"seed{seed}", dict(overrides, seed=seed, **{
                          "split.validation": "true", "split.cold_users": COLD_FRACTION}))
                       for seed in (1, 2)])
        if not got:
            lines.append(f"| {name} | not run | | | |")
            continue
        mean = lambda key: sum(pr.final(m, key) for _, m in got) / len(got)  # noqa: E731
        per_seed = ", ".join(f"{pr.final(m, 'cold_hr@10'):.4f}" for _, m in got)
        lines.append(f"| {name}{'' if len(got) == 2 else ' (1 of 2 seeds)'} | "
                     f"{mean('cold_hr@10'):.4f} | {mean('cold_ndcg@10'):.4f} | {per_seed} | "
                     f"{mean('hr@10'):.4f} |")
    lines.append("")
    return lines


FIGURES = {
    "ml100k-loo": lambda f: ranking_figure(f, "configs/model/ml100k_implicit.yaml",
                                           "ML-100K leave-one-out ranking"),
    "ml100k-rating": lambda f: rating_figure(f, "configs/model/ml100k_explicit.yaml",
                                             "ML-100K rating prediction (u1..u5)", range(1, 6),
                                             "ML-100K's predefined folds u1..u5 (80/20)"),
    "ml-latest-loo": lambda f: ranking_figure(f, "configs/model/ml_latest_implicit.yaml",
                                              "ml-latest-small leave-one-out ranking"),
    "ml-latest-rating": lambda f: rating_figure(
        f, "configs/model/ml_latest_explicit.yaml", "ml-latest-small rating prediction (5-fold)",
        range(1, 6), "5-fold cross-validation over ratings shuffled with split seed 1"),
    "ml100k-cold": lambda f: cold_figure(f, "configs/model/ml100k_implicit.yaml",
                                         "ML-100K cold-start users"),
    "ml-latest-cold": lambda f: cold_figure(f, "configs/model/ml_latest_implicit.yaml",
                                            "ml-latest-small cold-start users"),
    "throughput": throughput_figure,
    "tag-search": tag_search_figure,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", choices=sorted(FIGURES) + ["all"])
    parser.add_argument("--cached-only", action="store_true",
                        help="tables from existing runs only; start no petal-train run")
    args = parser.parse_args()
    global CACHED_ONLY
    CACHED_ONLY = args.cached_only
    if CACHED_ONLY and args.figure in ("throughput", "all"):
        sys.exit("--cached-only does not apply to the throughput figure (it always measures)")
    names = sorted(FIGURES) if args.figure == "all" else [args.figure]
    if any(n != "throughput" for n in names) and not os.environ.get("PETAL_DATA_DIR"):
        sys.exit("PETAL_DATA_DIR is not set (a folder with ml-100k/ and ml-latest-small/)")
    os.makedirs(OUT, exist_ok=True)
    for name in names:
        lines = FIGURES[name](name)
        text = "\n".join(lines) + "\n"
        with open(os.path.join(OUT, name + ".md"), "w") as f:
            f.write(text)
        print(text, flush=True)


if __name__ == "__main__":
    main()
