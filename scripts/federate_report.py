#!/usr/bin/python3
"""Federated vs centralized report: per-round metrics as CSV, an SVG plot, a markdown summary.

  scripts/federate_report.py --federated FedAvg=out/federation/demo/server \\
      --centralized Centralized=out/federation/demo/centralized --out out/federation/demo/report

Inputs:
  --federated LABEL=PATH[,PATH...]    history.json of petal-server, petal-sim or
                                      scripts/federate_flower.py (or a folder holding it,
                                      directly or in server/); several paths = seeds,
                                      averaged (the plot shades min..max)
  --centralized LABEL=PATH[,PATH...]  metrics.json of petal-train (or its folder)
Each federated round is compared with the same-numbered centralized epoch (one
round with local_epochs 1 is one pass over every client's data, like an epoch).
Metrics: HR@10 and NDCG@10 (ranking), or RMSE and MAE (rating), whichever the
runs report. Writes report.csv, report.svg and report.md to --out.
Python standard library only; the SVG is written by this script.
"""
import argparse
import html
import json
import math
import os
import statistics
import sys

RANKING = ("hr@10", "ndcg@10")
RATING = ("rmse", "mae")
NAMES = {"hr@10": "HR@10", "ndcg@10": "NDCG@10", "rmse": "RMSE", "mae": "MAE"}
HIGHER_IS_BETTER = {"hr@10": True, "ndcg@10": True, "rmse": False, "mae": False}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


class ReportError(Exception):
    pass


# ---------------------------------------------------------------------------
# Reading runs
# ---------------------------------------------------------------------------

def _find(path, names):
    if os.path.isfile(path):
        return path
    for name in names:
        candidate = os.path.join(path, name)
        if os.path.isfile(candidate):
            return candidate
    raise ReportError(f"{path}: no {' or '.join(names)} there")


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ReportError(f"{path}: {e.strerror}") from None
    except ValueError as e:
        raise ReportError(f"{path}: not valid JSON ({e})") from None


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReportError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def read_federated(path):
    """{metric: {round: value}} plus per-round seconds from a federated history.json."""
    file = _find(path, ("history.json", os.path.join("server", "history.json")))
    doc = _load_json(file)
    if not isinstance(doc, dict) or not isinstance(doc.get("metrics_distributed"), dict):
        raise ReportError(f"{file}: not a federated history (no 'metrics_distributed')")
    series = {}
    for metric, points in doc["metrics_distributed"].items():
        if not isinstance(points, list):
            raise ReportError(f"{file}: metrics_distributed.{metric} is not a list")
        values = {}
        for i, point in enumerate(points):
            where = f"{file}: metrics_distributed.{metric}[{i}]"
            if not isinstance(point, list) or len(point) != 2:
                raise ReportError(f"{where}: expected [round, value]")
            values[int(_number(point[0], where))] = _number(point[1], where)
        series[metric] = values
    seconds = {}
    for record in doc.get("rounds", []) or []:
        if isinstance(record, dict) and isinstance(record.get("round"), int) and record["round"] > 0:
            total = 0.0
            for phase in ("fit", "evaluate"):
                s = (record.get(phase) or {}).get("seconds")
                if isinstance(s, (int, float)):
                    total += s
            seconds[record["round"]] = total
    return {"file": file, "series": series, "seconds": seconds,
            "completed": doc.get("completed", True), "strategy": doc.get("strategy", "")}


def read_centralized(path):
    """{metric: {epoch: value}} from petal-train's metrics.json."""
    file = _find(path, ("metrics.json",))
    doc = _load_json(file)
    if not isinstance(doc, dict) or not isinstance(doc.get("epochs"), list):
        raise ReportError(f"{file}: not a petal-train metrics.json (no 'epochs')")
    series = {}
    seconds = {}
    for i, row in enumerate(doc["epochs"]):
        if not isinstance(row, dict) or "epoch" not in row:
            raise ReportError(f"{file}: epochs[{i}] has no 'epoch'")
        epoch = int(_number(row["epoch"], f"{file}: epochs[{i}].epoch"))
        for metric in RANKING + RATING:
            if metric in row:
                series.setdefault(metric, {})[epoch] = _number(row[metric], f"{file}: epochs[{i}].{metric}")
        s = row.get("train_seconds", 0.0)
        if isinstance(s, (int, float)):
            seconds[epoch] = float(s) + float(row.get("eval_seconds", 0.0) or 0.0)
    return {"file": file, "series": series, "seconds": seconds, "completed": True, "strategy": ""}


def parse_spec(text, flag):
    label, sep, paths = text.partition("=")
    if not sep or not label or not paths:
        raise ReportError(f"{flag}: expected LABEL=PATH[,PATH...], got '{text}'")
    return label, [p for p in paths.split(",") if p]


class Series:
    """One label: one or more runs (seeds) of the same setting."""

    def __init__(self, label, kind, runs):
        self.label, self.kind, self.runs = label, kind, runs

    def steps(self, metric):
        common = None
        for run in self.runs:
            steps = set(run["series"].get(metric, {}))
            common = steps if common is None else common & steps
        return sorted(common or ())

    def values(self, metric, step):
        return [run["series"][metric][step] for run in self.runs]

    def mean(self, metric, step):
        return statistics.fmean(self.values(metric, step))

    def std(self, metric, step):
        v = self.values(metric, step)
        return statistics.stdev(v) if len(v) > 1 else 0.0

    def last_step(self, metric):
        steps = self.steps(metric)
        return steps[-1] if steps else None

    def seconds_per_step(self):
        per_run = [statistics.fmean(r["seconds"].values()) for r in self.runs if r["seconds"]]
        return statistics.fmean(per_run) if per_run else None


def choose_metrics(all_series):
    have = set()
    for s in all_series:
        for run in s.runs:
            have |= set(run["series"])
    if all(m in have for m in RANKING):
        return RANKING
    if all(m in have for m in RATING):
        return RATING
    raise ReportError("the runs report neither hr@10/ndcg@10 nor rmse/mae")


# ---------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------

def write_csv(path, all_series, metrics):
    steps = sorted({st for s in all_series for m in metrics for st in s.steps(m)})
    header = ["round"]
    for s in all_series:
        for m in metrics:
            header.append(f"{s.label} {m}")
            if len(s.runs) > 1:
                header.append(f"{s.label} {m} std")
    lines = [",".join(_csv(h) for h in header)]
    for st in steps:
        row = [str(st)]
        for s in all_series:
            for m in metrics:
                have = st in s.steps(m)
                row.append(f"{s.mean(m, st):.6f}" if have else "")
                if len(s.runs) > 1:
                    row.append(f"{s.std(m, st):.6f}" if have else "")
        lines.append(",".join(row))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _csv(text):
    return f'"{text}"' if any(c in text for c in ',"\n') else text


def nice_ticks(lo, hi, count=5):
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt_tick(v):
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def write_svg(path, all_series, metrics, title):
    panel_w, panel_h = 460, 320
    margin = {"l": 62, "r": 18, "t": 56, "b": 50}
    legend_h = 22 * ((len(all_series) + 1) // 2) + 10
    width = margin["l"] + len(metrics) * (panel_w + margin["l"] + margin["r"]) - margin["l"]
    height = margin["t"] + panel_h + margin["b"] + legend_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="15" '
           f'font-weight="bold">{html.escape(title)}</text>']
    colors = {s.label: PALETTE[i % len(PALETTE)] for i, s in enumerate(all_series)}
    for k, metric in enumerate(metrics):
        x0 = margin["l"] + k * (panel_w + margin["l"] + margin["r"])
        y0 = margin["t"]
        steps = sorted({st for s in all_series for st in s.steps(metric)})
        if not steps:
            continue
        values = []
        for s in all_series:
            for st in s.steps(metric):
                values += s.values(metric, st)
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.08 or 0.05
        yt = nice_ticks(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        xt = nice_ticks(min(steps), max(steps), count=min(10, max(1, max(steps) - min(steps))))
        xt = [t for t in xt if float(t).is_integer()] or [min(steps), max(steps)]
        x_lo, x_hi = min(xt[0], min(steps)), max(xt[-1], max(steps))
        y_lo, y_hi = yt[0], yt[-1]
        sx = lambda v: x0 + (v - x_lo) / ((x_hi - x_lo) or 1) * panel_w  # noqa: E731
        sy = lambda v: y0 + panel_h - (v - y_lo) / ((y_hi - y_lo) or 1) * panel_h  # noqa: E731
        out.append(f'<text x="{x0 + panel_w / 2:.1f}" y="{y0 - 10}" text-anchor="middle" '
                   f'font-size="13" font-weight="bold">{NAMES[metric]} '
                   f'({"higher" if HIGHER_IS_BETTER[metric] else "lower"} is better)</text>')
        for t in yt:
            out.append(f'<line x1="{x0}" y1="{sy(t):.1f}" x2="{x0 + panel_w}" y2="{sy(t):.1f}" '
                       f'stroke="#e5e5e5"/>')
            out.append(f'<text x="{x0 - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt_tick(t)}</text>')
        for t in xt:
            out.append(f'<line x1="{sx(t):.1f}" y1="{y0 + panel_h}" x2="{sx(t):.1f}" '
                       f'y2="{y0 + panel_h + 4}" stroke="#333"/>')
            out.append(f'<text x="{sx(t):.1f}" y="{y0 + panel_h + 17}" text-anchor="middle">'
                       f'{int(t)}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{panel_w}" height="{panel_h}" fill="none" '
                   f'stroke="#333"/>')
        out.append(f'<text x="{x0 + panel_w / 2:.1f}" y="{y0 + panel_h + 36}" text-anchor="middle">'
                   f'federated round / centralized epoch</text>')
        out.append(f'<text transform="translate({x0 - 46},{y0 + panel_h / 2:.1f}) rotate(-90)" '
                   f'text-anchor="middle">{NAMES[metric]}</text>')
        for s in all_series:
            st = s.steps(metric)
            if not st:
                continue
            color = colors[s.label]
            dash = ' stroke-dasharray="6,4"' if s.kind == "centralized" else ""
            if len(s.runs) > 1:
                upper = [(sx(t), sy(max(s.values(metric, t)))) for t in st]
                lower = [(sx(t), sy(min(s.values(metric, t)))) for t in reversed(st)]
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in upper + lower)
                out.append(f'<polygon points="{pts}" fill="{color}" fill-opacity="0.15" stroke="none"/>')
            pts = " ".join(f"{sx(t):.1f},{sy(s.mean(metric, t)):.1f}" for t in st)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
            for t in st:
                out.append(f'<circle cx="{sx(t):.1f}" cy="{sy(s.mean(metric, t)):.1f}" r="2.6" '
                           f'fill="{color}"><title>{html.escape(s.label)} {NAMES[metric]} '
                           f'{t}: {s.mean(metric, t):.4f}</title></circle>')
    ly = margin["t"] + panel_h + margin["b"] + 6
    for i, s in enumerate(all_series):
        lx = margin["l"] + (i % 2) * (width - margin["l"]) / 2
        y = ly + (i // 2) * 22
        dash = ' stroke-dasharray="6,4"' if s.kind == "centralized" else ""
        runs = f" (mean of {len(s.runs)} runs, band = min..max)" if len(s.runs) > 1 else ""
        out.append(f'<line x1="{lx:.1f}" y1="{y:.1f}" x2="{lx + 28:.1f}" y2="{y:.1f}" '
                   f'stroke="{colors[s.label]}" stroke-width="2"{dash}/>')
        kind = "" if s.kind in s.label.lower() else f" ({s.kind})"
        out.append(f'<text x="{lx + 34:.1f}" y="{y + 4:.1f}">{html.escape(s.label)}'
                   f'{kind}{html.escape(runs)}</text>')
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def _pm(series, metric, step):
    m = series.mean(metric, step)
    if len(series.runs) > 1:
        return f"{m:.4f} ± {series.std(metric, step):.4f}"
    return f"{m:.4f}"


def write_markdown(path, all_series, metrics, title, files):
    primary = metrics[0]
    better = HIGHER_IS_BETTER[primary]
    central = [s for s in all_series if s.kind == "centralized"]
    fed = [s for s in all_series if s.kind == "federated"]
    lines = [f"# {title}", ""]
    lines.append(f"Per round: [{os.path.basename(files['csv'])}]({os.path.basename(files['csv'])}); "
                 f"plot: [{os.path.basename(files['svg'])}]({os.path.basename(files['svg'])}). "
                 f"A federated round (every client trains `local_epochs` on its own data, then the "
                 f"server aggregates) is compared with the same-numbered centralized epoch.")
    lines += ["", "![report](" + os.path.basename(files["svg"]) + ")", ""]
    header = ["run", "kind", "rounds/epochs"] + [f"final {NAMES[m]}" for m in metrics] + \
             [f"best {NAMES[primary]} (at)", "s per round/epoch"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for s in all_series:
        last = s.last_step(primary)
        if last is None:
            continue
        steps = s.steps(primary)
        pick = max if better else min
        best = pick(steps, key=lambda t: s.mean(primary, t))
        sec = s.seconds_per_step()
        cells = [s.label, s.kind + (f", {len(s.runs)} runs" if len(s.runs) > 1 else ""), str(last)]
        cells += [_pm(s, m, s.last_step(m)) if s.last_step(m) is not None else "-" for m in metrics]
        cells += [f"{s.mean(primary, best):.4f} ({best})", f"{sec:.1f}" if sec is not None else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if central and fed:
        c = central[0]
        c_last = c.last_step(primary)
        c_val = c.mean(primary, c_last)
        pick = max if better else min
        c_best = pick(c.steps(primary), key=lambda t: c.mean(primary, t))
        c_best_val = c.mean(primary, c_best)
        lines.append(f"Relative to {c.label} ({NAMES[primary]} {c_val:.4f} after its last epoch, "
                     f"{c_last}; its best epoch, {c_best}, had {c_best_val:.4f}):")
        lines.append("")
        scored = []
        for s in fed:
            last = s.last_step(primary)
            if last is None:
                continue
            v = s.mean(primary, last)
            ratio = v / c_val if c_val else float("nan")
            scored.append((ratio, s, last, v))
            same = c.steps(primary)
            at = f"; at epoch {last} the baseline had {c.mean(primary, last):.4f}" \
                if last in same and last != c_last else ""
            lines.append(f"- {s.label}: {v:.4f} after round {last} = **{100 * ratio:.1f} %** of "
                         f"centralized ({100 * v / c_best_val:.1f} % of its best epoch){at}.")
        if scored:
            pick = max if better else min
            ratio, s, last, v = pick(scored, key=lambda x: x[0])
            lines += ["", f"Best federated: **{s.label}**, {NAMES[primary]} {v:.4f} = "
                          f"{100 * ratio:.1f} % of the centralized {c_val:.4f}."]
        lines.append("")
    incomplete = [s.label for s in all_series for r in s.runs if not r["completed"]]
    if incomplete:
        lines += [f"Note: incomplete runs (stopped before their last round): {', '.join(incomplete)}.", ""]
    lines.append("Inputs:")
    lines.append("")
    for s in all_series:
        for r in s.runs:
            lines.append(f"- {s.label}: `{r['file']}`")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--federated", action="append", default=[], metavar="LABEL=PATH[,PATH]")
    parser.add_argument("--centralized", action="append", default=[], metavar="LABEL=PATH[,PATH]")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--title", default="Federated vs centralized")
    parser.add_argument("--quiet", action="store_true", help="do not print the summary")
    args = parser.parse_args(argv)
    try:
        if not args.federated and not args.centralized:
            raise ReportError("give at least one --federated or --centralized run")
        all_series = []
        labels = set()
        for flag, kind, reader in (("--federated", "federated", read_federated),
                                   ("--centralized", "centralized", read_centralized)):
            for spec in getattr(args, kind):
                label, paths = parse_spec(spec, flag)
                if label in labels:
                    raise ReportError(f"label '{label}' used twice")
                labels.add(label)
                all_series.append(Series(label, kind, [reader(p) for p in paths]))
        metrics = choose_metrics(all_series)
        os.makedirs(args.out, exist_ok=True)
        files = {"csv": os.path.join(args.out, "report.csv"),
                 "svg": os.path.join(args.out, "report.svg"),
                 "md": os.path.join(args.out, "report.md")}
        write_csv(files["csv"], all_series, metrics)
        write_svg(files["svg"], all_series, metrics, args.title)
        lines = write_markdown(files["md"], all_series, metrics, args.title, files)
    except ReportError as e:
        print(f"federate_report: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        for line in lines:
            if line.startswith("|") or line.startswith("- ") or line.startswith("Best"):
                print(line)
        print(f"wrote {files['csv']}, {files['svg']}, {files['md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
