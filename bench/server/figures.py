"""petal-server figures (docs/server.md), reproducible with one command.

Run from the repository root after building petal-server, petal_server_loadgen
and petal_aggregate_bench in BUILD:
    .venv/bin/python bench/server/figures.py BUILD [--repeats 3] [--quick]
        [--only aggregation,round_overhead,server_round,idle,concurrent_round]
        [--flower] [--out FILE.json] [--markdown FILE.md]

Every figure is the median of --repeats runs; the 1-minute load average is
recorded before each run (the machine is shared) and reported next to the
figure as min..max.

1. aggregation: one round's aggregation of K in {10, 100} results of 1M float32
   parameters (petal_aggregate_bench: results folded in one at a time, as the
   server does); time of Add() for all K + Finish(), and the process's peak RSS.
2. round_overhead: petal-server + 100 loadgen clients that answer at once with a
   10-parameter model, 20 rounds; per run the median fit and evaluate phase
   times of rounds 2..20 (what the server itself costs per round).
3. server_round: 100 loadgen clients echoing a 1M float32 model, 3 rounds;
   median fit-phase time of rounds 2..3 and the server's peak RSS.
4. idle: N in {100, 1000, 5000} idle Join streams (the server waits for N+1
   clients), once with one TCP connection per client and once multiplexed 500
   streams per connection; the server's RSS when all N are registered, minus
   its RSS before any client, divided by N = memory per connected client.
5. concurrent_round: one full round (fit + evaluate + reconnect) with N in
   {100, 1000, 5000} clients on their own connections: all results arrive?
--flower adds Flower's own legacy server / aggregate_fit to 1-3 for comparison.
Prints a Markdown table and writes every measurement as JSON.
"""

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable


def loadavg():
    return round(os.getloadavg()[0], 2)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def load_range(loads):
    return f"{min(loads):.2f}..{max(loads):.2f}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_json(argv, timeout=600):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0 and not out.stdout.strip():
        raise RuntimeError(f"{argv[0]} exited {out.returncode}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def stop(proc, sig=signal.SIGTERM, timeout=60):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------
# 1. aggregation


def aggregation(build, repeats, quick, flower):
    rows = []
    variants = [("fedavg", "float64"), ("fedavg", "native"), ("fedadam", "float64")]
    for k in ([10] if quick else [10, 100]):
        for strategy, acc in variants:
            runs, loads = [], []
            for _ in range(repeats):
                loads.append(loadavg())
                runs.append(run_json([f"{build}/tests/server/petal_aggregate_bench", "--clients",
                                      str(k), "--params", "1000000", "--strategy", strategy,
                                      "--accumulation", acc]))
            rows.append({"impl": "petal", "strategy": strategy, "accumulation": acc, "clients": k,
                         "seconds": med([r["total_seconds"] for r in runs]),
                         "ms_per_client": med([r["ms_per_client"] for r in runs]),
                         "peak_rss_mib": med([r["peak_rss_mib"] for r in runs]),
                         "rss_before_mib": med([r["rss_before_mib"] for r in runs]),
                         "load": loads, "runs": runs})
        if flower:
            for strategy in ["fedavg", "fedadam"]:
                runs, loads = [], []
                for _ in range(repeats):
                    loads.append(loadavg())
                    runs.append(run_json([PY, f"{ROOT}/bench/server/flower_aggregate_bench.py",
                                          "--clients", str(k), "--params", "1000000",
                                          "--strategy", strategy]))
                rows.append({"impl": "flower", "strategy": strategy, "accumulation": "-",
                             "clients": k, "seconds": med([r["total_seconds"] for r in runs]),
                             "peak_rss_mib": med([r["peak_rss_mib"] for r in runs]),
                             "load": loads, "runs": runs})
    return rows


# --------------------------------------------------------------------------
# petal-server / Flower server drivers


def petal_config(work, initial, rounds, clients, log_level="warn", min_available=None,
                 wait_timeout=None):
    return {
        "server": {"address": "127.0.0.1:0", "max_concurrent_streams": 1000},
        "run": {"num_rounds": rounds, "initial_parameters": initial, "reconnect_timeout": 60,
                **({"client_wait_timeout": wait_timeout} if wait_timeout else {})},
        "strategy": {"name": "fedavg", "min_fit_clients": clients,
                     "min_evaluate_clients": clients,
                     "min_available_clients": min_available or clients},
        "output": {"dir": os.path.join(work, "out"), "checkpoint_dir": ""},
        "log_level": log_level,
    }


def start_petal_server(build, work, config):
    cfg = os.path.join(work, "petal.yaml")
    with open(cfg, "w") as f:
        json.dump(config, f)  # JSON is YAML
    port_file = os.path.join(work, "port")
    if os.path.exists(port_file):
        os.remove(port_file)
    log_path = os.path.join(work, "petal.log")
    log = open(log_path, "w")
    server = subprocess.Popen([f"{build}/src/server/petal-server", "--config", cfg,
                               "--port-file", port_file], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.time() + 30
    while not (os.path.exists(port_file) and open(port_file).read().strip()):
        if time.time() > deadline or server.poll() is not None:
            stop(server)
            raise RuntimeError(open(log_path).read()[-2000:])
        time.sleep(0.05)
    return server, int(open(port_file).read()), log_path


def petal_server_run(build, work, config, clients, loadgen_args, timeout=600):
    """Runs petal-server + loadgen to completion; returns (history, peak_rss_mib, loadgen)."""
    server, port, log_path = start_petal_server(build, work, config)
    try:
        lg = run_json([f"{build}/tests/server/petal_server_loadgen", "--server",
                       f"127.0.0.1:{port}", "--clients", str(clients), *loadgen_args],
                      timeout=timeout)
        server.wait(timeout=120)
    finally:
        stop(server)
    text = open(log_path).read()
    m = re.search(r"peak RSS ([\d.]+) MiB", text)
    if server.returncode != 0 or not m:
        raise RuntimeError(f"petal-server exited {server.returncode}: {text[-2000:]}")
    with open(os.path.join(config["output"]["dir"], "history.json")) as f:
        history = json.load(f)
    return history, float(m.group(1)), lg


def flower_server_run(build, work, rounds, clients, initial, loadgen_args, timeout=900):
    port = free_port()
    out = os.path.join(work, "flower.json")
    log_path = os.path.join(work, "flower.log")
    with open(log_path, "w") as log:
        server = subprocess.Popen([PY, f"{ROOT}/bench/server/flower_server.py", str(port),
                                   str(rounds), str(clients), out, initial],
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError(open(log_path).read()[-2000:])
                time.sleep(0.1)
        run_json([f"{build}/tests/server/petal_server_loadgen", "--server", f"127.0.0.1:{port}",
                  "--clients", str(clients), *loadgen_args], timeout=timeout)
        server.wait(timeout=120)
    finally:
        stop(server)
    with open(out) as f:
        return json.load(f)


# --------------------------------------------------------------------------
# 2. round overhead, 3. server round


def round_overhead(build, work, repeats, quick, flower):
    clients, rounds = 100, (5 if quick else 20)
    initial = os.path.join(work, "tiny.npz")
    np.savez(initial, np.ones(10, np.float32))
    lg_args = ["--mode", "fixed", "--params", "10", "--channels", str(clients)]
    fits, evals, rss, loads = [], [], [], []
    for _ in range(repeats):
        loads.append(loadavg())
        history, peak, _ = petal_server_run(build, work,
                                            petal_config(work, initial, rounds, clients, "info"),
                                            clients, lg_args)
        fits.append(1000 * med([r["fit"]["seconds"] for r in history["rounds"][1:]]))
        evals.append(1000 * med([r["evaluate"]["seconds"] for r in history["rounds"][1:]]))
        rss.append(peak)
    result = {"clients": clients, "rounds": rounds,
              "petal": {"fit_ms": med(fits), "evaluate_ms": med(evals), "peak_rss_mib": med(rss),
                        "fit_ms_runs": fits, "evaluate_ms_runs": evals, "load": loads}}
    if flower:
        fits, evals, rss, loads = [], [], [], []
        for _ in range(repeats):
            loads.append(loadavg())
            fl = flower_server_run(build, work, rounds, clients, initial, lg_args)
            fits.append(1000 * med([r["fit_seconds"] for r in fl["rounds"][1:]]))
            evals.append(1000 * med([r["evaluate_seconds"] for r in fl["rounds"][1:]]))
            rss.append(fl["peak_rss_mib"])
        result["flower"] = {"fit_ms": med(fits), "evaluate_ms": med(evals),
                            "peak_rss_mib": med(rss), "load": loads}
    return result


def server_round(build, work, repeats, quick, flower):
    clients = 20 if quick else 100
    initial = os.path.join(work, "big.npz")
    rng = np.random.default_rng(1)
    np.savez(initial, *[rng.standard_normal(250_000).astype(np.float32) for _ in range(4)])
    lg_args = ["--mode", "echo", "--channels", str(clients)]
    fits, rss, loads = [], [], []
    for _ in range(repeats):
        loads.append(loadavg())
        history, peak, _ = petal_server_run(build, work,
                                            petal_config(work, initial, 3, clients, "info"),
                                            clients, lg_args)
        fits.append(med([r["fit"]["seconds"] for r in history["rounds"][1:]]))
        rss.append(peak)
    result = {"clients": clients, "params": 1_000_000,
              "petal": {"fit_seconds": med(fits), "peak_rss_mib": med(rss), "fit_runs": fits,
                        "rss_runs": rss, "load": loads}}
    if flower:
        fits, rss, loads = [], [], []
        for _ in range(repeats):
            loads.append(loadavg())
            fl = flower_server_run(build, work, 3, clients, initial, lg_args)
            fits.append(med([r["fit_seconds"] for r in fl["rounds"][1:]]))
            rss.append(fl["peak_rss_mib"])
        result["flower"] = {"fit_seconds": med(fits), "peak_rss_mib": med(rss), "load": loads}
    return result


# --------------------------------------------------------------------------
# 4. idle streams, 5. a full round with many clients


def idle_once(build, work, n, channels, initial):
    # The server waits for n + 1 clients, so the n streams stay idle.
    config = petal_config(work, initial, 1, n + 1, "info", wait_timeout=3600)
    server, port, log_path = start_petal_server(build, work, config)
    loadgen = None
    try:
        time.sleep(0.5)  # let the listening server settle before the baseline
        base = rss_mib(server.pid)
        t0 = time.time()
        loadgen = subprocess.Popen([f"{build}/tests/server/petal_server_loadgen", "--server",
                                    f"127.0.0.1:{port}", "--clients", str(n), "--channels",
                                    str(channels)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        want = f"({n} connected)"
        deadline = time.time() + 300
        while True:
            with open(log_path) as f:
                if want in f.read():
                    break
            if time.time() > deadline or loadgen.poll() is not None or server.poll() is not None:
                raise RuntimeError(f"{n} clients did not all connect: "
                                   f"{open(log_path).read()[-1500:]}")
            time.sleep(0.1)
        connect_seconds = time.time() - t0
        time.sleep(1.0)  # registration logged; let the streams' first reads settle
        full = rss_mib(server.pid)
        client_rss = rss_mib(loadgen.pid)
    finally:
        stop(server)  # SIGTERM while waiting for clients: a clean stop
        if loadgen is not None:
            stop(loadgen, signal.SIGKILL)
    return {"rss_base_mib": base, "rss_mib": full, "per_client_kib": 1024 * (full - base) / n,
            "connect_seconds": connect_seconds, "loadgen_rss_mib": client_rss,
            "server_exit": server.returncode}


def idle(build, work, repeats, quick):
    initial = os.path.join(work, "tiny.npz")
    np.savez(initial, np.ones(10, np.float32))
    rows = []
    for n in ([100, 1000] if quick else [100, 1000, 5000]):
        for layout, channels in [("connection per client", n),
                                 ("500 streams per connection", max(1, -(-n // 500)))]:
            runs, loads = [], []
            for _ in range(repeats):
                loads.append(loadavg())
                runs.append(idle_once(build, work, n, channels, initial))
            rows.append({"clients": n, "layout": layout, "channels": channels,
                         "rss_mib": med([r["rss_mib"] for r in runs]),
                         "rss_base_mib": med([r["rss_base_mib"] for r in runs]),
                         "per_client_kib": med([r["per_client_kib"] for r in runs]),
                         "connect_seconds": med([r["connect_seconds"] for r in runs]),
                         "load": loads, "runs": runs})
    return rows


def concurrent_round(build, work, quick, sizes):
    initial = os.path.join(work, "tiny.npz")
    np.savez(initial, np.ones(10, np.float32))
    rows = []
    for n in sizes or ([100, 1000] if quick else [100, 1000, 5000]):
        load = loadavg()
        t0 = time.time()
        try:
            history, rss, lg = petal_server_run(
                build, work, petal_config(work, initial, 1, n, "info", wait_timeout=300), n,
                ["--mode", "fixed", "--params", "10", "--channels", str(n)], timeout=900)
        except (subprocess.SubprocessError, RuntimeError) as e:
            rows.append({"clients": n, "ok": False, "error": str(e)[-500:], "load": [load]})
            break
        r = history["rounds"][0]
        ok = r["fit"]["results"] == n and r["evaluate"]["results"] == n
        rows.append({"clients": n, "ok": ok, "fit_results": r["fit"]["results"],
                     "evaluate_results": r["evaluate"]["results"],
                     "fit_seconds": r["fit"]["seconds"], "evaluate_seconds": r["evaluate"]["seconds"],
                     "peak_rss_mib": rss, "wall_seconds": time.time() - t0,
                     "loadgen": lg["statuses"], "load": [load]})
        if not ok:
            break
    return rows


# --------------------------------------------------------------------------


def markdown(results):
    out = []
    if "aggregation" in results:
        out += ["### Aggregation, 1M float32 parameters per result", "",
                "| impl | strategy | accumulation | clients | time (s) | ms/client | peak RSS (MiB) | load avg |",
                "|---|---|---|---:|---:|---:|---:|---|"]
        for r in results["aggregation"]:
            out.append(f"| {r['impl']} | {r['strategy']} | {r['accumulation']} | {r['clients']} | "
                       f"{r['seconds']:.3f} | {r.get('ms_per_client') or float('nan'):.2f} | "
                       f"{r['peak_rss_mib']:.1f} | {load_range(r['load'])} |")
        out.append("")
    if "round_overhead" in results:
        ro = results["round_overhead"]
        out += [f"### Round overhead, {ro['clients']} clients answering at once (10 parameters), "
                f"{ro['rounds']} rounds", "",
                "| server | fit phase (ms) | evaluate phase (ms) | peak RSS (MiB) | load avg |",
                "|---|---:|---:|---:|---|"]
        for impl in ["petal", "flower"]:
            if impl in ro:
                x = ro[impl]
                out.append(f"| {impl} | {x['fit_ms']:.1f} | {x['evaluate_ms']:.1f} | "
                           f"{x['peak_rss_mib']:.1f} | {load_range(x['load'])} |")
        out.append("")
    if "server_round" in results:
        sr = results["server_round"]
        out += [f"### Server round, {sr['clients']} clients echoing 1M float32", "",
                "| server | fit phase (s) | peak RSS (MiB) | load avg |", "|---|---:|---:|---|"]
        for impl in ["petal", "flower"]:
            if impl in sr:
                x = sr[impl]
                out.append(f"| {impl} | {x['fit_seconds']:.2f} | {x['peak_rss_mib']:.1f} | "
                           f"{load_range(x['load'])} |")
        out.append("")
    if "idle" in results:
        out += ["### Idle connected clients", "",
                "| clients | layout | server RSS (MiB) | before clients (MiB) | per client (KiB) | "
                "all registered after (s) | load avg |",
                "|---:|---|---:|---:|---:|---:|---|"]
        for r in results["idle"]:
            out.append(f"| {r['clients']} | {r['layout']} | {r['rss_mib']:.1f} | "
                       f"{r['rss_base_mib']:.1f} | {r['per_client_kib']:.1f} | "
                       f"{r['connect_seconds']:.2f} | {load_range(r['load'])} |")
        out.append("")
    if "concurrent_round" in results:
        out += ["### One full round with N clients (own connection each)", "",
                "| clients | all results | fit (s) | evaluate (s) | peak RSS (MiB) | load avg |",
                "|---:|---|---:|---:|---:|---|"]
        for r in results["concurrent_round"]:
            if not r.get("fit_results") and not r["ok"]:
                out.append(f"| {r['clients']} | failed: {r.get('error', '')[:80]} | | | | |")
                continue
            out.append(f"| {r['clients']} | {'yes' if r['ok'] else 'NO'} | {r['fit_seconds']:.2f} | "
                       f"{r['evaluate_seconds']:.2f} | {r['peak_rss_mib']:.1f} | "
                       f"{load_range(r['load'])} |")
        out.append("")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("build", help="build directory with petal-server and the bench binaries")
    p.add_argument("--repeats", type=int, default=3, help="runs per figure (median reported)")
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    p.add_argument("--flower", action="store_true", help="also measure Flower's server/strategies")
    p.add_argument("--only", default="aggregation,round_overhead,server_round,idle,concurrent_round")
    p.add_argument("--sizes", default="", help="client counts for concurrent_round, e.g. 1000,5000")
    p.add_argument("--out", default="", help="write every measurement here (JSON)")
    p.add_argument("--markdown", default="", help="write the tables here")
    args = p.parse_args()
    build = os.path.abspath(args.build)
    for binary in ["src/server/petal-server", "tests/server/petal_server_loadgen",
                   "tests/server/petal_aggregate_bench"]:
        if not os.access(os.path.join(build, binary), os.X_OK):
            sys.exit(f"figures.py: {build}/{binary} is missing; build it first")
    only = args.only.split(",")
    results = {"machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname()),
                           "repeats": args.repeats}}
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else None
    with tempfile.TemporaryDirectory() as work:
        if "aggregation" in only:
            results["aggregation"] = aggregation(build, args.repeats, args.quick, args.flower)
        if "round_overhead" in only:
            results["round_overhead"] = round_overhead(build, work, args.repeats, args.quick,
                                                       args.flower)
        if "server_round" in only:
            results["server_round"] = server_round(build, work, args.repeats, args.quick,
                                                   args.flower)
        if "idle" in only:
            results["idle"] = idle(build, work, args.repeats, args.quick)
        if "concurrent_round" in only:
            results["concurrent_round"] = concurrent_round(build, work, args.quick, sizes)
    table = markdown(results)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
