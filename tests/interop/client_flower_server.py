"""A real Flower server (flwr.server.start_server) for the client interop tests.

Run as: python client_flower_server.py SPEC.json OUT.json

SPEC keys: port, strategy ("fedavg" | "fedprox"), rounds, min_clients,
fit_config (dict sent with every FitIns), proximal_mu (fedprox), initial
(list of {"dtype","shape","data"} or null: ask a client), certificates
([ca, cert, key] paths or null), max_message_length, round_timeout,
die_in_round (kill this process right after that round's fit results arrive),
record_arrays (default true; false keeps only tensor sizes, for big models),
strategy "fedadam" (needs initial or initial_npz), initial_npz (.npz whose
arrays, in file order, are the initial model), fedadam {eta, eta_l, tau,
beta_1, beta_2}, weighted_metrics (aggregate every numeric fit/evaluate metric
as a num_examples-weighted mean; History then carries them).
Every fit result also records "delta_norm": the L2 distance between the
arrays returned and the arrays sent to that client.

OUT records what the server saw: every registration (cid, time), every fit
and evaluate result and failure per round (tensors decoded with numpy), the
aggregated model per round and Flower's History. It is written at the end
(and before dying in die_in_round). Lines "REGISTERED <cid>" and
"FIT_RESULTS <round>" are printed as things happen.
"""

import json
import os
import sys
import time

import numpy as np

import flwr
from flwr.common import (
    Code,
    FitRes,
    EvaluateRes,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server import ServerConfig
from flwr.server.client_manager import SimpleClientManager
from flwr.server.strategy import FedAdam, FedAvg, FedProx
from flwr.supercore.grpc import GRPC_MAX_MESSAGE_LENGTH


def encode_array(a):
    a = np.asarray(a)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": a.ravel().tolist()}


def decode_array(d):
    return np.asarray(d["data"], dtype=d["dtype"]).reshape(d["shape"])


def scalar_json(v):
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    return v


class Recorder:
    def __init__(self, out_path):
        self.out_path = out_path
        self.data = {"flwr": flwr.__version__, "registrations": [], "unregistrations": [],
                     "rounds": {}, "history": None}

    def round(self, r):
        return self.data["rounds"].setdefault(str(r), {})

    def dump(self):
        tmp = self.out_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.out_path)


def make_client_manager(recorder):
    class RecordingClientManager(SimpleClientManager):
        def register(self, client):
            ok = super().register(client)
            recorder.data["registrations"].append({"cid": client.cid, "t": time.time(), "ok": ok})
            print(f"REGISTERED {client.cid}", flush=True)
            return ok

        def unregister(self, client):
            recorder.data["unregistrations"].append({"cid": client.cid, "t": time.time()})
            super().unregister(client)

    return RecordingClientManager()


def describe_failure(f):
    if isinstance(f, BaseException):
        return {"exception": repr(f)}
    proxy, res = f
    return {"cid": proxy.cid, "code": int(res.status.code.value), "message": res.status.message}


def delta_norm(sent_arrays, parameters):
    if sent_arrays is None:
        return None
    got = parameters_to_ndarrays(parameters)
    if len(got) != len(sent_arrays) or any(a.shape != b.shape for a, b in zip(got, sent_arrays)):
        return None
    return float(np.sqrt(sum(np.sum((a.astype(np.float64) - b.astype(np.float64)) ** 2)
                             for a, b in zip(got, sent_arrays))))


def weighted_mean_metrics(pairs):
    """[(num_examples, metrics)] -> num_examples-weighted mean of every numeric metric."""
    total = sum(n for n, _ in pairs)
    keys = set()
    for _, m in pairs:
        keys |= {k for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if total == 0:
        return {}
    return {k: sum(n * float(m[k]) for n, m in pairs if k in m) / total for k in sorted(keys)}


def make_strategy(spec, recorder):
    base = {"fedavg": FedAvg, "fedprox": FedProx,
            "fedadam": FedAdam}[spec.get("strategy", "fedavg")]
    sent = {}
    die_in_round = spec.get("die_in_round")
    record_arrays = spec.get("record_arrays", True)

    def tensor_lens(parameters):
        return [len(t) for t in parameters.tensors]

    class Recording(base):
        def configure_fit(self, server_round, parameters, client_manager):
            instructions = super().configure_fit(server_round, parameters, client_manager)
            rec = recorder.round(server_round)
            for proxy, ins in instructions:
                sent[proxy.cid] = parameters_to_ndarrays(ins.parameters)
            rec["fit_ins"] = [{"cid": proxy.cid, "tensor_lens": tensor_lens(ins.parameters),
                               "config": {k: scalar_json(v) for k, v in ins.config.items()}}
                              for proxy, ins in instructions]
            return instructions

        def configure_evaluate(self, server_round, parameters, client_manager):
            instructions = super().configure_evaluate(server_round, parameters, client_manager)
            rec = recorder.round(server_round)
            rec["evaluate_ins"] = [{"cid": proxy.cid, "tensor_lens": tensor_lens(ins.parameters),
                                    "config": {k: scalar_json(v) for k, v in ins.config.items()}}
                                   for proxy, ins in instructions]
            return instructions

        def aggregate_fit(self, server_round, results, failures):
            rec = recorder.round(server_round)
            rec["fit_results"] = [{
                "cid": proxy.cid,
                "code": int(res.status.code.value),
                "message": res.status.message,
                "num_examples": res.num_examples,
                "metrics": {k: scalar_json(v) for k, v in res.metrics.items()},
                "tensor_type": res.parameters.tensor_type,
                "tensor_lens": tensor_lens(res.parameters),
                "shapes": [list(a.shape) for a in parameters_to_ndarrays(res.parameters)],
                "dtypes": [a.dtype.name for a in parameters_to_ndarrays(res.parameters)],
                "delta_norm": delta_norm(sent.get(proxy.cid), res.parameters),
                "arrays": ([encode_array(a) for a in parameters_to_ndarrays(res.parameters)]
                           if record_arrays else None),
            } for proxy, res in results]
            rec["fit_failures"] = [describe_failure(f) for f in failures]
            print(f"FIT_RESULTS {server_round}", flush=True)
            if die_in_round == server_round:
                recorder.dump()
                print("DYING", flush=True)
                os._exit(17)
            aggregated, metrics = super().aggregate_fit(server_round, results, failures)
            if aggregated is not None and record_arrays:
                rec["aggregated"] = [encode_array(a) for a in parameters_to_ndarrays(aggregated)]
            return aggregated, metrics

        def aggregate_evaluate(self, server_round, results, failures):
            rec = recorder.round(server_round)
            rec["evaluate_results"] = [{
                "cid": proxy.cid,
                "code": int(res.status.code.value),
                "loss": res.loss,
                "num_examples": res.num_examples,
                "metrics": {k: scalar_json(v) for k, v in res.metrics.items()},
            } for proxy, res in results]
            rec["evaluate_failures"] = [describe_failure(f) for f in failures]
            return super().aggregate_evaluate(server_round, results, failures)

    fit_config = spec.get("fit_config", {})
    kwargs = dict(
        min_fit_clients=spec["min_clients"],
        min_evaluate_clients=spec["min_clients"],
        min_available_clients=spec["min_clients"],
        on_fit_config_fn=lambda r: dict(fit_config, round=r),
    )
    if spec.get("weighted_metrics"):
        kwargs["fit_metrics_aggregation_fn"] = weighted_mean_metrics
        kwargs["evaluate_metrics_aggregation_fn"] = weighted_mean_metrics
    if spec.get("initial_npz"):
        with np.load(spec["initial_npz"]) as z:
            kwargs["initial_parameters"] = ndarrays_to_parameters([z[k] for k in z.files])
    if spec.get("initial") is not None:
        kwargs["initial_parameters"] = ndarrays_to_parameters(
            [decode_array(d) for d in spec["initial"]])
    if base is FedProx:
        kwargs["proximal_mu"] = spec["proximal_mu"]
    if base is FedAdam:
        kwargs.update(spec.get("fedadam", {}))
    return Recording(**kwargs)


def main():
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    recorder = Recorder(out_path)
    certificates = None
    if spec.get("certificates"):
        certificates = tuple(open(p, "rb").read() for p in spec["certificates"])
    history = flwr.server.start_server(
        server_address=f"127.0.0.1:{spec['port']}",
        config=ServerConfig(num_rounds=spec["rounds"], round_timeout=spec.get("round_timeout")),
        strategy=make_strategy(spec, recorder),
        client_manager=make_client_manager(recorder),
        grpc_max_message_length=spec.get("max_message_length", GRPC_MAX_MESSAGE_LENGTH),
        certificates=certificates,
    )
    recorder.data["history"] = {
        "losses_distributed": history.losses_distributed,
        "metrics_distributed_fit": {k: v for k, v in history.metrics_distributed_fit.items()},
        "metrics_distributed": {k: v for k, v in history.metrics_distributed.items()},
    }
    recorder.dump()
    print("SERVER_DONE", flush=True)


if __name__ == "__main__":
    main()
