"""Flower's own (flwr 1.42, numpy 1.26) counterparts of petal_micro_bench's cases, on the
same workload: a pool of 8 distinct random float32 arrays of P elements, result k is
pool[k % 8] (the list holds references, no copies), as petal_micro_bench does.

  .venv/bin/python bench/baselines/flower_micro.py CASE [--mib M] [--k K] [--p P] [--min-time S]

CASE and what it times:
  npy_encode / npy_decode   flwr.common.ndarray_to_bytes / bytes_to_ndarray of one M MiB array
  fedavg                    flwr.server.strategy.aggregate.aggregate (list of (arrays, n))
  fedavg_inplace            aggregate_inplace on FitRes whose Parameters hold .npy bytes (the
                            default FedAvg path of Flower's server: decode + scale + sum)
  fedadam                   FedAdam(initial_parameters).aggregate_fit on the same FitRes
  median                    aggregate_median
  krum                      aggregate_krum(num_malicious=0, to_keep=0)
Repeats the case until --min-time seconds have passed (at least once) and prints one JSON
line: seconds per iteration (mean), iterations, bytes per iteration (input bytes),
GB/s (1e9 bytes), and the process's peak RSS in MiB.
"""

import argparse
import json
import resource
import time

import numpy as np

from flwr.common import Code, FitRes, Status, bytes_to_ndarray, ndarray_to_bytes, \
    ndarrays_to_parameters
from flwr.server.strategy import FedAdam
from flwr.server.strategy import aggregate as agg

POOL = 8


def pool(p):
    rng = np.random.default_rng(100)
    return [[rng.uniform(-1, 1, size=p).astype(np.float32)] for _ in range(POOL)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("--mib", type=int, default=1)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--p", type=int, default=1_000_000)
    ap.add_argument("--min-time", type=float, default=0.5)
    a = ap.parse_args()
    k, p = a.k, a.p
    nbytes = k * p * 4
    if a.case in ("npy_encode", "npy_decode"):
        nbytes = a.mib << 20
        arr = np.random.default_rng(1).uniform(-1, 1, size=nbytes // 4).astype(np.float32)
        if a.case == "npy_encode":
            def run():
                return ndarray_to_bytes(arr)
        else:
            encoded = ndarray_to_bytes(arr)

            def run():
                return bytes_to_ndarray(encoded)
    elif a.case in ("fedavg", "median", "krum"):
        arrays = pool(p)
        results = [(arrays[i % POOL], 1 + i % 50) for i in range(k)]
        fn = {"fedavg": lambda: agg.aggregate(results),
              "median": lambda: agg.aggregate_median(results),
              "krum": lambda: agg.aggregate_krum(results, 0, 0)}[a.case]

        def run():
            return fn()
    elif a.case in ("fedavg_inplace", "fedadam"):
        params = [ndarrays_to_parameters(x) for x in pool(p)]
        results = [(None, FitRes(Status(Code.OK, "Success"), params[i % POOL], 1 + i % 50, {}))
                   for i in range(k)]
        if a.case == "fedavg_inplace":
            def run():
                return agg.aggregate_inplace(results)
        else:
            init = ndarrays_to_parameters([np.random.default_rng(99).uniform(
                -1, 1, size=p).astype(np.float32)])
            strategy = FedAdam(initial_parameters=init)
            rnd = [0]

            def run():
                rnd[0] += 1
                return strategy.aggregate_fit(rnd[0], results, [])
    else:
        raise SystemExit(f"unknown case {a.case}")
    iters = 0
    t0 = time.perf_counter()
    while True:
        out = run()
        iters += 1
        del out
        if time.perf_counter() - t0 >= a.min_time:
            break
    seconds = (time.perf_counter() - t0) / iters
    print(json.dumps({"impl": "flower", "case": a.case, "k": k, "p": p, "mib": a.mib,
                      "seconds": seconds, "iterations": iters, "bytes": nbytes,
                      "gbps": nbytes / seconds / 1e9,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
