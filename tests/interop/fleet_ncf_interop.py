"""petal-client, the tag-aware NCF app, as SuperNodes of a real Flower SuperLink.

Run by ctest (builds with LibTorch) as:
    python fleet_ncf_interop.py PATH/TO/petal-client

The same NcfClient that serves the legacy grpc-bidi transport serves the
Fleet API here, selected only in client.yaml (server.transport: grpc-rere,
server.fleet.*). One flower-superlink (flwr 1.42, HTTP Fleet API) and two
petal-client nodes on the synthetic data, then two runs with `flwr run`:
- a ServerApp with a legacy strategy (FedAvg through Flower's default
  workflow, initial parameters fetched from a client with get_parameters);
- a ServerApp with the current strategy API (FedAvg.start with the initial
  model exported by petal-client --export-initial).
Both complete every round with both nodes; the training loss reported by the
clients falls and HR@10 after the last round beats the first evaluation.
"""

import json
import os
import shutil
import sys
import tempfile
import textwrap
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import client_harness as h  # noqa: E402
import fleet_superlink_interop as fl  # noqa: E402

ROUNDS = 3

LEGACY_APP = """\
import json

from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg

OUT = {"fit": {}, "evaluate": {}}


def weighted(metrics, key):
    total = sum(n for n, _ in metrics)
    return sum(n * m[key] for n, m in metrics) / total


class RecordingFedAvg(FedAvg):
    def __init__(self, result_file, **kwargs):
        super().__init__(**kwargs)
        self.result_file = result_file

    def aggregate_fit(self, server_round, results, failures):
        OUT["fit"][server_round] = {
            "results": len(results), "failures": len(failures),
            "train_loss": weighted([(r.num_examples, r.metrics) for _, r in results], "train_loss")
            if results else None}
        return super().aggregate_fit(server_round, results, failures)

    def aggregate_evaluate(self, server_round, results, failures):
        OUT["evaluate"][server_round] = {
            "results": len(results), "failures": len(failures),
            "hr": weighted([(r.num_examples, r.metrics) for _, r in results], "hr@10")
            if results else None}
        with open(self.result_file, "w") as f:
            json.dump(OUT, f)
        return super().aggregate_evaluate(server_round, results, failures)


def server_fn(context):
    cfg = context.run_config
    strategy = RecordingFedAvg(
        cfg["result-file"], min_fit_clients=2, min_evaluate_clients=2, min_available_clients=2,
        on_fit_config_fn=lambda r: {"local_epochs": 1, "lr": 0.005})
    return ServerAppComponents(strategy=strategy,
                               config=ServerConfig(num_rounds=int(cfg["num-server-rounds"])))


app = ServerApp(server_fn=server_fn)
"""

CURRENT_APP = """\
import json

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    with np.load(cfg["initial-npz"]) as z:
        init = ArrayRecord({name: Array(z[name]) for name in z.files})
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=2,
                      min_evaluate_nodes=2, min_available_nodes=2)
    result = strategy.start(grid=grid, initial_arrays=init,
                            train_config=ConfigRecord({"local_epochs": 1, "lr": 0.005}),
                            num_rounds=int(cfg["num-server-rounds"]), timeout=600)
    out = {"train": {r: dict(m) for r, m in result.train_metrics_clientapp.items()},
           "evaluate": {r: dict(m) for r, m in result.evaluate_metrics_clientapp.items()},
           "shapes": [list(v.numpy().shape) for v in result.arrays.values()]}
    with open(cfg["result-file"], "w") as f:
        json.dump(out, f)
"""

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "1.0.0"
description = "Petal NCF over the Fleet API"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "petal"

[tool.flwr.app.components]
serverapp = "{name}.server_app:app"
clientapp = "{name}.client_app:app"

[tool.flwr.app.config]
num-server-rounds = {rounds}
result-file = ""
initial-npz = ""
"""

UNUSED_CLIENT_APP = """\
from flwr.clientapp import ClientApp

app = ClientApp()  # every node of these runs is a petal-client
"""


class NcfOverFleet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="petal_fleet_ncf_")
        cls.dep = fl.Deployment(cls.tmp)
        try:
            cls.dep.start_superlink()
            cls.dep.start_superexec()
            cls.nodes = [cls.start_node(i) for i in range(2)]
        except BaseException:
            cls.dep.shutdown()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dep.shutdown()
        finally:
            if os.environ.get("PETAL_KEEP_TMP"):
                print(f"logs kept in {cls.tmp}")
            else:
                shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def node_sets(cls):
        return {"server.transport": "grpc-rere", "server.fleet.api": "http",
                "server.fleet.poll_interval_s": 0.2, "server.fleet.heartbeat_interval_s": 10}

    @classmethod
    def start_node(cls, i):
        argv = h.petal_client_argv(cls.tmp, cls.dep.port, i, 2, cls.node_sets())
        proc = cls.dep.spawn(f"petal-ncf-{i}", argv)
        fl.wait_until(lambda: "connected to the SuperLink" in proc.text() or not proc.alive(), 120,
                      f"petal-client {i} to join the SuperLink")
        assert proc.alive(), proc.text()
        return proc

    @classmethod
    def write_app(cls, name, server_app):
        root = os.path.join(cls.tmp, name)
        os.makedirs(os.path.join(root, name))
        files = {"pyproject.toml": PYPROJECT.format(name=name, rounds=ROUNDS),
                 f"{name}/__init__.py": "", f"{name}/server_app.py": server_app,
                 f"{name}/client_app.py": UNUSED_CLIENT_APP}
        for rel, text in files.items():
            with open(os.path.join(root, rel), "w") as f:
                f.write(textwrap.dedent(text))
        return root

    def run_app(self, app, name, **config):
        result_file = os.path.join(self.tmp, f"{name}.json")
        run = self.dep.start_run(app, **{"result-file": result_file, **config})
        status = self.dep.wait_run(run)
        self.assertEqual(status, "finished:completed", self.dep.superlink.text()[-3000:])
        for node in self.nodes:
            self.assertTrue(node.alive(), node.text()[-3000:])
        with open(result_file) as f:
            return json.load(f)

    def test_1_legacy_strategy(self):
        out = self.run_app(self.write_app("ncflegacy", LEGACY_APP), "legacy")
        rounds = [str(r) for r in range(1, ROUNDS + 1)]
        for r in rounds:
            self.assertEqual(out["fit"][r]["results"], 2, out)
            self.assertEqual(out["fit"][r]["failures"], 0, out)
            self.assertEqual(out["evaluate"][r]["results"], 2, out)
        losses = [out["fit"][r]["train_loss"] for r in rounds]
        self.assertLess(losses[-1], losses[0], losses)
        self.assertGreater(out["evaluate"][rounds[-1]]["hr"], out["evaluate"][rounds[0]]["hr"], out)

    def test_2_current_strategy_api(self):
        npz, arrays = h.export_initial(self.tmp, 2, self.node_sets())
        out = self.run_app(self.write_app("ncfcurrent", CURRENT_APP), "current", **{"initial-npz": npz})
        rounds = [str(r) for r in range(1, ROUNDS + 1)]
        self.assertEqual(out["shapes"], [list(a.shape) for a in arrays])
        losses = [out["train"][r]["train_loss"] for r in rounds]
        self.assertLess(losses[-1], losses[0], losses)
        self.assertGreater(out["evaluate"][rounds[-1]]["hr@10"], out["evaluate"][rounds[0]]["hr@10"],
                           out)
        for r in rounds:
            self.assertTrue(np.isfinite(out["train"][r]["train_loss"]))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: fleet_ncf_interop.py PATH/TO/petal-client")
    client = os.path.abspath(sys.argv.pop(1))
    os.environ.setdefault("PETAL_BINARY_DIR", os.path.dirname(os.path.dirname(os.path.dirname(client))))
    h.BINARY_DIR = os.environ["PETAL_BINARY_DIR"]
    print(f"petal-client {client}", flush=True)
    unittest.main(verbosity=2, failfast=True)
