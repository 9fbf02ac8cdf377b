"""Figures of petal-client (tag-aware NCF) in a real Flower run; a measurement, not a test.

    PETAL_BINARY_DIR=build PETAL_SOURCE_DIR=$PWD .venv/bin/python \
        tests/interop/client_ncf_figures.py [--clients 2] [--rounds 3] [--set key=value ...]

Runs Flower's start_server (FedAvg, local_epochs 1) with petal-clients built
from configs/client.yaml unchanged (synthetic data: 1500 users, 1000 items),
then prints JSON: start-up (process spawn -> Flower registered the client:
data generation, LibTorch load, model build and connection), local training
samples/s (the fit metric), peak RSS (each client's VmHWM, from its last log
line) and bytes sent/received per round (client counters / rounds, including
the evaluate round trip, for clients not also asked for the initial model). Every process is bounded and killed at the end.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_harness as h  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    args = parser.parse_args()

    work = h.Workdir("petal_ncf_figures_")
    port = h.free_port()
    spec = {"port": port, "strategy": "fedavg", "rounds": args.rounds,
            "min_clients": args.clients, "fit_config": {"local_epochs": 1},
            "record_arrays": False}
    procs = []
    try:
        server, out_path = h.start_server(work.path, "server", spec)
        procs.append(server)
        h.wait_listening(port, server)
        clients = []
        for i in range(args.clients):
            source = os.environ.get("PETAL_SOURCE_DIR",
                                    os.path.dirname(os.path.dirname(h.HERE)))
            base = [h.petal_client_path(), "--config",
                    os.path.join(source, "configs", "client.yaml")]
            for key, value in [("server.address", f"127.0.0.1:{port}"),
                               ("client.partition_id", i),
                               ("partition.num_partitions", args.clients),
                               ("client.state_dir",
                                os.path.join(work.path, "state-{partition_id}"))]:
                base += ["--set", f"{key}={value}"]
            for item in args.sets:
                base += ["--set", item]
            proc = h.Proc(f"petal-{i}", base, work.path)
            procs.append(proc)
            clients.append(proc)
        if server.wait(900) != 0:
            raise SystemExit(f"server failed:\n{server.output()}")
        for c in clients:
            if c.wait(120) != 0:
                raise SystemExit(f"{c.name} failed:\n{c.output()}")
        out = h.read_json(out_path)
        registered = sorted(r["t"] for r in out["registrations"])
        spawned = sorted(c.started for c in clients)
        startup_ms = [1000 * (r - s) for r, s in zip(registered, spawned)]
        speeds = [res["metrics"]["samples_per_second"]
                  for rec in out["rounds"].values() for res in rec["fit_results"]]
        done = {}
        for c in clients:
            m = re.search(r"done: (\d+) fit\(s\), (\d+) instruction\(s\) \((\d+) failed\), "
                          r"(\d+) bytes sent, (\d+) received, peak RSS ([\d.]+) MiB", c.output())
            if m is None:
                raise SystemExit(f"{c.name}: no summary line:\n{c.output()[-2000:]}")
            done[c.name] = {"fits": int(m[1]), "instructions": int(m[2]), "failed": int(m[3]),
                            "bytes_sent": int(m[4]), "bytes_received": int(m[5]),
                            "peak_rss_mib": float(m[6])}
        first = out["rounds"]["1"]["fit_results"][0]
        figures = {
            "clients": args.clients, "rounds": args.rounds,
            "global_arrays": len(first["tensor_lens"]),
            "global_npy_bytes": sum(first["tensor_lens"]),
            "startup_spawn_to_registered_ms": [round(t) for t in startup_ms],
            "train_samples_per_second": {"median": round(statistics.median(speeds)),
                                         "min": round(min(speeds)), "max": round(max(speeds))},
            "peak_rss_mib": {k: v["peak_rss_mib"] for k, v in done.items()},
            # Clients that were not also asked for the initial model (get_parameters).
            "bytes_sent_per_round": {k: round(v["bytes_sent"] / args.rounds)
                                     for k, v in done.items()
                                     if v["instructions"] == 2 * args.rounds + 1},
            "bytes_received_per_round": {k: round(v["bytes_received"] / args.rounds)
                                         for k, v in done.items()
                                         if v["instructions"] == 2 * args.rounds + 1},
            "hr@10_per_round": [res for res in (
                sum(r["metrics"].get("hr@10", 0) * r["num_examples"] for r in rec["evaluate_results"])
                / max(1, sum(r["num_examples"] for r in rec["evaluate_results"]))
                for _, rec in sorted(out["rounds"].items(), key=lambda kv: int(kv[0])))],
        }
        print(json.dumps(figures, indent=2))
        shutil.rmtree(work.path, ignore_errors=True)  # kept (with the logs) on failure
    finally:
        for p in procs:
            p.kill()


if __name__ == "__main__":
    main()
