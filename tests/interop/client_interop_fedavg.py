"""Petal C++ clients in a real Flower federation (flwr.server.start_server).

Run by ctest (PETAL_BINARY_DIR points at the build tree with
petal_quadratic_client). Each test starts Flower's own server in a subprocess
on a free loopback port, 2-3 C++ demo clients, waits for the run to finish and
checks what Flower received, decoded with numpy, against the values predicted
independently in Python:
- FedAvg, 3 clients, 3 rounds: every fit reply is exactly the demo client's
  update of the model Flower sent, aggregates are the weighted means, the
  distributed loss falls every round, every process exits cleanly.
- FedProx: proximal_mu reaches the clients and changes their update exactly
  as the proximal term predicts.
- float64 initial parameters chosen by the server (no get_parameters).
"""

import os
import shutil
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_harness as h  # noqa: E402

class FedAvgTest(h.FlowerFederationTest):
    def test_three_clients_three_rounds(self):
        clients = [("cpp-a", 1.0, 10), ("cpp-b", 2.0, 20), ("cpp-c", 6.0, 30)]
        spec = {"strategy": "fedavg", "rounds": 3, "min_clients": 3,
                "fit_config": {"lr": 0.25, "local_epochs": 2}}
        out = self.run_federation(spec, clients, "3,2;4")
        shapes = [(3, 2), (4,)]
        self.assertEqual(out["flwr"], "1.42.0")
        self.assertEqual(len(out["registrations"]), 3)
        self.assertEqual(len({r["cid"] for r in out["registrations"]}), 3)
        initial = [np.zeros(s, dtype=np.float32) for s in shapes]
        losses = self.check_rounds(out, clients, shapes, np.float32, 0.25, 2, 0.0, initial)
        self.assertEqual(len(losses), 3)
        self.assertTrue(losses[0] > losses[1] > losses[2], losses)

        # Every client: one session, nothing failed, the goodbye counted; one of
        # them also answered Flower's get_parameters for the initial model.
        stats = [h.client_stats(self.work.path, name) for name, _, _ in clients]
        for s in stats:
            self.assertEqual(s["status"], "OK")
            self.assertEqual(s["sessions"], 1)
            self.assertEqual(s["failed_instructions"], 0)
        self.assertEqual(sorted(s["instructions"] for s in stats), [7, 7, 8])

    def test_fedprox_proximal_mu_reaches_the_clients_and_changes_the_update(self):
        clients = [("cpp-a", -2.0, 15), ("cpp-b", 4.0, 5)]
        mu = 0.5
        spec = {"strategy": "fedprox", "proximal_mu": mu, "rounds": 3, "min_clients": 2,
                "fit_config": {"lr": 0.1, "local_epochs": 5}}
        out = self.run_federation(spec, clients, "5")
        initial = [np.zeros((5,), dtype=np.float32)]
        self.check_rounds(out, clients, [(5,)], np.float32, 0.1, 5, mu, initial)
        # The proximal term made a difference: without it the update differs.
        first = out["rounds"]["1"]["fit_results"][0]
        with_mu = h.decode_array(first["arrays"][0])
        without = h.quadratic_fit(initial, first["metrics"]["target"], 0.1, 5, 0.0)[0]
        self.assertFalse(np.allclose(with_mu, without))

    def test_float64_model_from_the_server(self):
        clients = [("cpp-a", 1.5, 3), ("cpp-b", -1.0, 1)]
        initial = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5, 0.25])]
        spec = {"strategy": "fedavg", "rounds": 2, "min_clients": 2,
                "fit_config": {"lr": 0.5, "local_epochs": 1},
                "initial": [{"dtype": "float64", "shape": list(a.shape),
                             "data": a.ravel().tolist()} for a in initial]}
        out = self.run_federation(spec, clients, "2,2;3", extra=["--dtype", "float64"])
        self.check_rounds(out, clients, [(2, 2), (3,)], np.float64, 0.5, 1, 0.0, initial)
        for name, _, _ in clients:
            # 2 fit + 2 evaluate + goodbye; no get_parameters (the server had a model).
            self.assertEqual(h.client_stats(self.work.path, name)["instructions"], 5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
