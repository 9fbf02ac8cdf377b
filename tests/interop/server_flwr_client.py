"""A stock Flower client for petal-server's end-to-end tests.

Run as: python server_flwr_client.py --address HOST:PORT --index K --log LOG.jsonl
        [--behavior B] [--misbehave-round R] [--root-certificates CA.pem]

It joins with flwr.client.start_client(..., transport="grpc-bidi") and answers
with arrays that are a known function of what it received, so a test can replay
the federation with Flower's own strategies:

    fit:      w = p * (1 + 0.01 * (K + 1)) + 0.1 * (K + 1) * server_round   (in p's dtype)
              num_examples = 10 * (K + 1), metrics {"acc": 0.5 + 0.1 K, "client": K}
    evaluate: loss = float32(mean of the array means + K),
              num_examples = 5 * (K + 1), metrics {"hr10": 0.1 (K + 1)}
    get_parameters: initial_arrays(K)

From --misbehave-round on (default 1), fit follows --behavior:
    normal        as above
    crash         the process kills itself (SIGKILL) in the middle of fit
    hang          never answers (sleeps until killed)
    nan           a NaN in the first array
    inf           an Inf in the last array
    wrong_shape   the first array gets an extra row
    extra_array   one array too many
    wrong_dtype   float64 instead of the received dtype
    zero_examples num_examples = 0
    garbage       tensors that are not .npy data (a raw Client, not NumPyClient)
    fail_status   a non-OK Status (FIT_NOT_IMPLEMENTED), as a Client that lacks fit
    huge          a 400 KB array (for max_message_length tests)
    slow          answers correctly after sleeping 4 s
Every call is appended to LOG as one JSON line: {"method", "round", "config",
"valid" (whether the reply was well-formed), "num_examples", "ts"}.
"""

import argparse
import json
import os
import signal
import sys
import time

import numpy as np

import flwr
from flwr.client import Client, NumPyClient, start_client
from flwr.common import (
    Code,
    EvaluateRes,
    FitRes,
    GetParametersRes,
    Parameters,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)


def initial_arrays(k):
    rng = np.random.default_rng(1000 + k)
    return [rng.standard_normal((4, 3)).astype(np.float32),
            rng.standard_normal((5,)).astype(np.float64)]


def fit_arrays(params, k, server_round):
    return [(p * (1 + 0.01 * (k + 1)) + 0.1 * (k + 1) * server_round).astype(p.dtype) for p in params]


def evaluate_loss(params, k):
    return float(np.float32(np.mean([float(np.mean(p)) for p in params]) + k))


class Logger:
    def __init__(self, path):
        self.path = path

    def write(self, **entry):
        entry["ts"] = time.time()
        with open(self.path, "a") as f:
            f.write(json.dumps(entry, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())


def plain_config(config):
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in config.items()}


class KnownClient(NumPyClient):
    def __init__(self, args, log):
        self.args = args
        self.k = args.index
        self.log = log

    def get_parameters(self, config):
        self.log.write(method="get_parameters", round=0, config=plain_config(config), valid=True)
        return initial_arrays(self.k)

    def fit(self, parameters, config):
        r = int(config.get("server_round", 0))
        behavior = self.args.behavior if r >= self.args.misbehave_round else "normal"
        out = fit_arrays(parameters, self.k, r)
        n = 10 * (self.k + 1)
        valid = behavior in ("normal", "slow")
        self.log.write(method="fit_start", round=r, config=plain_config(config), valid=valid)
        if behavior == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if behavior == "slow":
            time.sleep(4)
        if behavior == "hang":
            while True:
                time.sleep(3600)
        if behavior == "nan":
            out[0] = out[0].copy()
            out[0].flat[0] = np.nan
        elif behavior == "inf":
            out[-1] = out[-1].copy()
            out[-1].flat[-1] = np.inf
        elif behavior == "wrong_shape":
            out[0] = np.concatenate([out[0], out[0][:1]], axis=0)
        elif behavior == "extra_array":
            out.append(np.zeros(3, dtype=np.float32))
        elif behavior == "wrong_dtype":
            out[0] = out[0].astype(np.float64)
        elif behavior == "zero_examples":
            n = 0
        elif behavior == "huge":
            out.append(np.zeros(100_000, dtype=np.float32))
        self.log.write(method="fit", round=r, config=plain_config(config), valid=valid,
                       num_examples=n)
        return out, n, {"acc": 0.5 + 0.1 * self.k, "client": self.k}

    def evaluate(self, parameters, config):
        r = int(config.get("server_round", 0))
        loss = evaluate_loss(parameters, self.k)
        self.log.write(method="evaluate", round=r, config=plain_config(config), valid=True,
                       num_examples=5 * (self.k + 1), loss=loss)
        return loss, 5 * (self.k + 1), {"hr10": 0.1 * (self.k + 1)}


class RawClient(Client):
    """A flwr.client.Client for replies NumPyClient cannot produce."""

    def __init__(self, inner, behavior, misbehave_round):
        self.inner = inner
        self.behavior = behavior
        self.misbehave_round = misbehave_round

    def get_parameters(self, ins):
        return GetParametersRes(Status(Code.OK, "Success"),
                                ndarrays_to_parameters(self.inner.get_parameters(ins.config)))

    def fit(self, ins):
        r = int(ins.config.get("server_round", 0))
        params = parameters_to_ndarrays(ins.parameters)
        if r < self.misbehave_round:
            arrays, n, metrics = self.inner.fit(params, ins.config)
            return FitRes(Status(Code.OK, "Success"), ndarrays_to_parameters(arrays), n, metrics)
        self.inner.log.write(method="fit", round=r, config=plain_config(ins.config), valid=False)
        if self.behavior == "garbage":
            bad = Parameters(tensors=[b"\x93NUMPY garbage", b"not npy at all"],
                             tensor_type="numpy.ndarray")
            return FitRes(Status(Code.OK, "Success"), bad, 10, {})
        return FitRes(Status(Code.FIT_NOT_IMPLEMENTED, "Client does not implement `fit`"),
                      Parameters(tensors=[], tensor_type=""), 0, {})

    def evaluate(self, ins):
        loss, n, metrics = self.inner.evaluate(parameters_to_ndarrays(ins.parameters), ins.config)
        return EvaluateRes(Status(Code.OK, "Success"), loss, n, metrics)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--behavior", default="normal")
    parser.add_argument("--misbehave-round", type=int, default=1)
    parser.add_argument("--root-certificates")
    parser.add_argument("--max-wait-time", type=float, default=60.0)
    args = parser.parse_args()
    log = Logger(args.log)
    numpy_client = KnownClient(args, log)
    if args.behavior in ("garbage", "fail_status"):
        client = RawClient(numpy_client, args.behavior, args.misbehave_round)
    else:
        client = numpy_client.to_client()
    kwargs = {}
    if args.root_certificates:
        with open(args.root_certificates, "rb") as f:
            kwargs["root_certificates"] = f.read()
    else:
        kwargs["insecure"] = True
    log.write(method="start", round=0, config={}, valid=True, flwr=flwr.__version__)
    start_client(server_address=args.address, client=client, transport="grpc-bidi",
                 max_wait_time=args.max_wait_time, **kwargs)
    log.write(method="exit", round=0, config={}, valid=True)


if __name__ == "__main__":
    main()
