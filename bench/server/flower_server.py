"""Flower's own legacy server (flwr.server.start_server, grpc-bidi) for side-by-side figures.

Run as: python flower_server.py PORT ROUNDS MIN_CLIENTS OUT.json [INITIAL.npz]

FedAvg with fraction 1 and min clients = MIN_CLIENTS for fit, evaluate and
availability; initial parameters from INITIAL.npz (else asked from a client).
Writes per-round wall times (configure_fit .. aggregate_fit .. aggregate_evaluate)
and the process's peak RSS to OUT.json.
"""

import json
import resource
import sys
import time

import numpy as np

import flwr
from flwr.common import ndarrays_to_parameters
from flwr.server import ServerConfig
from flwr.server.strategy import FedAvg


class TimedFedAvg(FedAvg):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.times = {}

    def configure_fit(self, server_round, parameters, client_manager):
        out = super().configure_fit(server_round, parameters, client_manager)
        self.times.setdefault(server_round, {})["fit_start"] = time.perf_counter()
        return out

    def aggregate_fit(self, server_round, results, failures):
        t = self.times[server_round]
        t["fit_results"] = len(results)
        t["fit_failures"] = len(failures)
        out = super().aggregate_fit(server_round, results, failures)
        t["fit_end"] = time.perf_counter()
        return out

    def configure_evaluate(self, server_round, parameters, client_manager):
        out = super().configure_evaluate(server_round, parameters, client_manager)
        self.times[server_round]["evaluate_start"] = time.perf_counter()
        return out

    def aggregate_evaluate(self, server_round, results, failures):
        out = super().aggregate_evaluate(server_round, results, failures)
        self.times[server_round]["evaluate_end"] = time.perf_counter()
        return out


def main():
    port, rounds, n, out_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    initial = None
    if len(sys.argv) > 5:
        with np.load(sys.argv[5]) as z:
            initial = ndarrays_to_parameters([z[k] for k in z.files])
    strategy = TimedFedAvg(min_fit_clients=n, min_evaluate_clients=n, min_available_clients=n,
                           initial_parameters=initial)
    flwr.server.start_server(server_address=f"127.0.0.1:{port}",
                             config=ServerConfig(num_rounds=rounds), strategy=strategy)
    rows = []
    for r, t in sorted(strategy.times.items()):
        rows.append({"round": r, "fit_seconds": t["fit_end"] - t["fit_start"],
                     "evaluate_seconds": t.get("evaluate_end", t["fit_end"]) - t.get("evaluate_start", t["fit_end"]),
                     "fit_results": t["fit_results"], "fit_failures": t["fit_failures"]})
    with open(out_path, "w") as f:
        json.dump({"impl": "flower", "flwr": flwr.__version__, "rounds": rows,
                   "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}, f)


if __name__ == "__main__":
    main()
