"""Figures of the C++ client SDK, measured against real Flower, with exactness checks.

Run by ctest (and by hand to refresh docs/client.md):

    PETAL_BINARY_DIR=build .venv/bin/python tests/interop/client_interop_figures.py

Measures, with the demo client (examples/quadratic_client):
- start-up: from spawning the client process to Flower's server registering
  it (SimpleClientManager.register, i.e. the Join stream reached the server),
  over repeated runs against one in-process Flower grpc-bidi server;
- peak RSS of the client process (its VmHWM at exit) in a
  3-round FedAvg run, for a small model and a 1M-float32 (4 MB) model;
- bytes sent and received per round (serialized protobuf messages, without
  gRPC/HTTP2 framing), from the client's own counters.
The byte counts are checked exactly: the client's counters must equal the
sizes of the same messages rebuilt with Flower's own serde from what the
server recorded. Timings are reported, not asserted (benchmarks, not tests).
Results go to stdout and $PETAL_BINARY_DIR/client_figures.json.
"""

import io
import json
import os
import statistics
import sys
import time
import unittest

import numpy as np

from flwr.common import (
    Code,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersRes,
    Parameters,
    ReconnectIns,
    Status,
    serde,
)
from flwr.proto.transport_pb2 import ClientMessage, ServerMessage
from flwr.server.client_manager import SimpleClientManager
from flwr.server.superlink.fleet.grpc_bidi.grpc_server import start_grpc_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_harness as h  # noqa: E402

STARTUP_RUNS = 10
FIGURES = {}


def npy_len(shape, dtype=np.float32):
    buf = io.BytesIO()
    np.save(buf, np.zeros(shape, dtype=dtype), allow_pickle=False)
    return len(buf.getvalue())


def params_of(lens):
    return Parameters(tensors=[b"\0" * n for n in lens], tensor_type="numpy.ndarray")


def metric_value(v):
    return bytes.fromhex(v["bytes"]) if isinstance(v, dict) else v


class TimedClientManager(SimpleClientManager):
    def __init__(self):
        super().__init__()
        self.registered = {}

    def register(self, client):
        self.registered[client.cid] = time.time()
        return super().register(client)


class FiguresTest(h.FlowerFederationTest):
    @classmethod
    def tearDownClass(cls):
        print(json.dumps(FIGURES, indent=2))
        if h.BINARY_DIR:
            with open(os.path.join(h.BINARY_DIR, "client_figures.json"), "w") as f:
                json.dump(FIGURES, f, indent=2)

    def test_startup_to_first_registered_connection(self):
        manager = TimedClientManager()
        port = h.free_port()
        server = start_grpc_server(client_manager=manager, server_address=f"127.0.0.1:{port}")
        try:
            spawn_to_registered = []
            in_process = []
            for i in range(STARTUP_RUNS):
                known = set(manager.registered)
                proc = h.start_quadratic_client(self.work.path, f"startup-{i}", port, 0.0, 1)
                self.procs.append(proc)
                deadline = time.time() + 30
                while not set(manager.registered) - known:
                    self.assertIsNone(proc.poll(), proc.output())
                    self.assertLess(time.time(), deadline, "client did not register")
                    time.sleep(0.001)
                (cid,) = set(manager.registered) - known
                spawn_to_registered.append(manager.registered[cid] - proc.started)
                proxy = manager.all()[cid]
                proxy.reconnect(ReconnectIns(seconds=None), timeout=30, group_id=None)
                self.assertEqual(proc.wait(30), 0, proc.output())
                stats = h.client_stats(self.work.path, f"startup-{i}")
                in_process.append(stats["first_connected_unix"] - stats["started_unix"])
        finally:
            server.stop(grace=None)
        ms = [1000 * t for t in spawn_to_registered]
        FIGURES["startup_spawn_to_registered_ms"] = {
            "runs": STARTUP_RUNS, "median": round(statistics.median(ms), 1),
            "min": round(min(ms), 1), "max": round(max(ms), 1)}
        FIGURES["startup_main_to_connected_ms"] = {
            "median": round(1000 * statistics.median(in_process), 1)}
        self.assertTrue(all(0 < t < 30 for t in spawn_to_registered))

    def run_and_measure(self, label, shapes_flag, shapes):
        clients = [("a", 1.0, 10), ("b", 3.0, 30)]
        rounds = 3
        config = {"lr": 0.25, "local_epochs": 1}
        spec = {"strategy": "fedavg", "rounds": rounds, "min_clients": 2, "fit_config": config,
                "record_arrays": False}
        out = self.run_federation(spec, clients, shapes_flag)
        by_target = {t: name for name, t, _ in clients}
        cid_of = {}
        sent = {name: 0 for name, _, _ in clients}
        received = {name: 0 for name, _, _ in clients}
        per_round_sent = {name: [] for name, _, _ in clients}
        for r in range(1, rounds + 1):
            rec = out["rounds"][str(r)]
            for res in rec["fit_results"]:
                name = by_target[res["metrics"]["target"]]
                cid_of[res["cid"]] = name
                metrics = {k: metric_value(v) for k, v in res["metrics"].items()}
                fit = FitRes(Status(Code.OK, "Success"), params_of(res["tensor_lens"]),
                             res["num_examples"], metrics)
                size = ClientMessage(fit_res=serde.fit_res_to_proto(fit)).ByteSize()
                sent[name] += size
                per_round_sent[name].append(size)
            for res in rec["evaluate_results"]:
                name = cid_of[res["cid"]]
                ev = EvaluateRes(Status(Code.OK, "Success"), res["loss"], res["num_examples"],
                                 {k: metric_value(v) for k, v in res["metrics"].items()})
                size = ClientMessage(evaluate_res=serde.evaluate_res_to_proto(ev)).ByteSize()
                sent[name] += size
                per_round_sent[name][-1] += size
            for kind, field, ins_type in (("fit_ins", "fit_ins", FitIns),
                                          ("evaluate_ins", "evaluate_ins", EvaluateIns)):
                for ins in rec[kind]:
                    config_back = {k: metric_value(v) for k, v in ins["config"].items()}
                    proto = getattr(serde, f"{field}_to_proto")(
                        ins_type(params_of(ins["tensor_lens"]), config_back))
                    received[cid_of[ins["cid"]]] += ServerMessage(**{field: proto}).ByteSize()
        goodbye_in = ServerMessage(reconnect_ins=serde.reconnect_ins_to_proto(
            ReconnectIns(seconds=None))).ByteSize()
        goodbye_out = ClientMessage(
            disconnect_res=ClientMessage.DisconnectRes(reason=1)).ByteSize()
        zeros = params_of([npy_len(s) for s in shapes])
        get_params_out = ClientMessage(get_parameters_res=serde.get_parameters_res_to_proto(
            GetParametersRes(Status(Code.OK, "Success"), zeros))).ByteSize()
        get_params_in = ServerMessage(get_parameters_ins=ServerMessage.GetParametersIns()).ByteSize()

        rss_mib = {}
        for name, _, _ in clients:
            stats = h.client_stats(self.work.path, name)
            self.assertGreater(stats["peak_rss_kib"], 0)
            rss_mib[name] = round(stats["peak_rss_kib"] / 1024, 1)
            answered_get_parameters = stats["instructions"] == 2 * rounds + 2
            want_sent = sent[name] + goodbye_out + (get_params_out if answered_get_parameters else 0)
            want_received = (received[name] + goodbye_in +
                             (get_params_in if answered_get_parameters else 0))
            self.assertEqual(stats["bytes_sent"], want_sent, name)
            self.assertEqual(stats["bytes_received"], want_received, name)
        FIGURES[label] = {
            "model_float32_values": int(sum(np.prod(s) for s in shapes)),
            "model_npy_bytes": sum(npy_len(s) for s in shapes),
            "bytes_sent_per_round": per_round_sent["a"][0],
            "bytes_received_per_round": round(received["a"] / rounds),
            "peak_rss_mib": rss_mib,
        }

    def test_small_model_rss_and_bytes(self):
        self.run_and_measure("quadratic_10_floats", "10", [(10,)])

    def test_4mb_model_rss_and_bytes(self):
        self.run_and_measure("quadratic_1M_floats", "1000,1000", [(1000, 1000)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
