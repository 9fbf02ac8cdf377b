"""petal-server with C++ Petal clients, alone and mixed with stock Flower clients.

Run by ctest with PETAL_BINARY_DIR set; needs petal-server and the C++ SDK
example client (tests/client/petal_quadratic_client, no LibTorch).

The C++ client (examples/quadratic_client, built on Petal's client SDK) and
the Python NumPyClient (client_numpy_peer.py) run the same known local
training (gradient steps on 1/2 ||w - t||^2, FedProx's proximal term included),
so Flower's own strategy classes can replay the federation: the server's saved
model and its federated losses must match that replay.
"""

import json
import os
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import client_harness as ch  # noqa: E402  (argv of the SDK client and its math)
from server_harness import Federation, base_config, load_model  # noqa: E402

from flwr.common import (  # noqa: E402
    Code,
    EvaluateRes,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server import strategy as fl  # noqa: E402

SHAPES = "4,3;5"
LR, EPOCHS = 0.1, 2


def initial_model():
    rng = np.random.default_rng(5)
    return [rng.standard_normal((4, 3)).astype(np.float32),
            rng.standard_normal((5,)).astype(np.float32)]


class MixedFederation(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.fed = Federation(self.dir)
        self.initial_npz = os.path.join(self.dir, "initial.npz")
        np.savez(self.initial_npz, *initial_model())

    def tearDown(self):
        self.fed.stop()
        self.tmp.cleanup()

    def run_clients(self, strategy, rounds, cpp, python):
        """cpp/python: lists of (target, num_examples)."""
        n = len(cpp) + len(python)
        section = {"name": strategy["name"], "min_fit_clients": n, "min_evaluate_clients": n,
                   "min_available_clients": n, **{k: v for k, v in strategy.items() if k != "name"}}
        config = base_config(self.dir, section, rounds=rounds,
                             run={"initial_parameters": self.initial_npz})
        config["fit_config"] = {"lr": LR, "local_epochs": EPOCHS}
        server = self.fed.start_server(config)
        procs = []
        for i, (target, num) in enumerate(cpp):
            argv = [ch.quadratic_client_path(), "--server", server.address, "--name", f"cpp{i}",
                    "--target", repr(float(target)), "--num-examples", str(num), "--shapes", SHAPES,
                    "--initial-backoff", "200ms", "--max-backoff", "1s", "--max-elapsed", "60s",
                    "--connect-timeout", "5s"]
            procs.append(self.fed.add_process(argv, f"cpp{i}"))
        for i, (target, num) in enumerate(python):
            argv = [sys.executable, ch.PEER_SCRIPT, server.address, repr(float(target)), str(num),
                    SHAPES]
            procs.append(self.fed.add_process(argv, f"python{i}"))
        self.assertEqual(server.wait(timeout=180), 0, server.text())
        for p in procs:  # every client, C++ or Python, left after the server's ReconnectIns
            self.assertEqual(p.wait(timeout=60), 0)
        return server

    def replay(self, flower, rounds, clients, mu):
        x = initial_model()
        losses = []
        for r in range(1, rounds + 1):
            results = [(None, FitRes(Status(Code.OK, "Success"),
                                     ndarrays_to_parameters(ch.quadratic_fit(x, t, LR, EPOCHS, mu)),
                                     n, {})) for t, n in clients]
            x = parameters_to_ndarrays(flower.aggregate_fit(r, results, [])[0])
            evals = [(None, EvaluateRes(Status(Code.OK, "Success"),
                                        float(np.float32(ch.quadratic_loss(x, t))), n, {}))
                     for t, n in clients]
            losses.append(flower.aggregate_evaluate(r, evals, [])[0])
        return x, losses

    def check(self, flower, rounds, clients, mu=0.0):
        expected, losses = self.replay(flower, rounds, clients, mu)
        got = load_model(os.path.join(self.dir, "out", "model.npz"))
        for g, e in zip(got, expected):
            self.assertEqual(g.dtype, e.dtype)
            scale = float(np.max(np.abs(e)))
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6 * scale)
        with open(os.path.join(self.dir, "out", "history.json")) as f:
            history = json.load(f)
        for r, record in enumerate(history["rounds"], start=1):
            self.assertEqual(record["fit"]["results"], len(clients), f"round {r}")
            self.assertEqual(record["fit"]["failures"], 0, f"round {r}")
            self.assertAlmostEqual(record["evaluate"]["loss"], losses[r - 1],
                                   delta=1e-5 * abs(losses[r - 1]), msg=f"round {r}")
        return history

    def test_fedavg_three_petal_clients(self):
        clients = [(3.0, 20), (-1.0, 30), (0.5, 10)]
        self.run_clients({"name": "fedavg"}, 3, cpp=clients, python=[])
        self.check(fl.FedAvg(), 3, clients)

    def test_fedadam_three_petal_clients(self):
        clients = [(2.0, 15), (-2.0, 25), (1.0, 35)]
        self.run_clients({"name": "fedadam", "eta": 0.05}, 4, cpp=clients, python=[])
        flower = fl.FedAdam(initial_parameters=ndarrays_to_parameters(initial_model()), eta=0.05)
        self.check(flower, 4, clients)

    def test_fedprox_mixed_petal_and_flower_clients(self):
        cpp = [(3.0, 20), (-1.0, 30)]
        python = [(0.5, 10), (1.5, 40)]
        self.run_clients({"name": "fedprox", "proximal_mu": 0.5}, 3, cpp=cpp, python=python)
        history = self.check(fl.FedProx(proximal_mu=0.5), 3, cpp + python, mu=0.5)
        # Both kinds reported fit metrics; the Python peer's include proximal_mu = 0.5.
        self.assertAlmostEqual(history["rounds"][0]["fit"]["metrics"]["proximal_mu"], 0.5)


if __name__ == "__main__":
    unittest.main()
