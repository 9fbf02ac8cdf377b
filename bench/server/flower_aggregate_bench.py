"""Flower's own aggregation on the same workload as petal_aggregate_bench.

Run as: python flower_aggregate_bench.py --clients 100 --params 1000000 [--strategy fedavg]

Flower's aggregate_fit takes the whole list of results, so all K results are
held in memory (as they are in Flower's server after fit_clients). Times only
strategy.aggregate_fit (default legacy strategy settings, in-place FedAvg) and
reports the process's peak RSS (ru_maxrss) and its RSS before the results were
built, in MiB, as one JSON line.
"""

import argparse
import json
import resource
import time

import numpy as np

from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
from flwr.server import strategy as fl


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def model(rng, params, arrays):
    sizes = [params // arrays + (1 if a < params % arrays else 0) for a in range(arrays)]
    return [rng.uniform(-1, 1, size=n).astype(np.float32) for n in sizes]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--params", type=int, default=1_000_000)
    p.add_argument("--arrays", type=int, default=4)
    p.add_argument("--strategy", default="fedavg")
    args = p.parse_args()
    rng = np.random.default_rng(7)
    initial = ndarrays_to_parameters(model(rng, args.params, args.arrays))
    strategy = {
        "fedavg": lambda: fl.FedAvg(),
        "fedadam": lambda: fl.FedAdam(initial_parameters=initial),
        "fedmedian": lambda: fl.FedMedian(),
    }[args.strategy]()
    before = rss_mib()
    results = [(None, FitRes(Status(Code.OK, "Success"),
                             ndarrays_to_parameters(model(rng, args.params, args.arrays)),
                             1 + k % 50, {})) for k in range(args.clients)]
    t0 = time.perf_counter()
    params, _ = strategy.aggregate_fit(1, results, [])
    seconds = time.perf_counter() - t0
    assert params is not None
    print(json.dumps({"impl": "flower", "strategy": args.strategy, "clients": args.clients,
                      "params": args.params, "total_seconds": seconds,
                      "ms_per_client": 1000 * seconds / args.clients, "rss_before_mib": before,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


if __name__ == "__main__":
    main()
