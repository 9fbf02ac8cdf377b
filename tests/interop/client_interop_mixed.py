"""A mixed federation: a stock Flower NumPyClient and a Petal C++ client.

Run by ctest. Flower's own server (start_server, FedAvg, 3 rounds) gets one
Python client (flwr.client.start_client with a NumPyClient) and one C++ demo
client doing the same math. Both must contribute to every round's aggregate,
and the aggregate must be exactly the weighted mean of both replies.
"""

import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_harness as h  # noqa: E402


class MixedFederationTest(h.FlowerFederationTest):
    def test_python_and_cpp_clients_contribute_to_every_round(self):
        cpp = [("cpp", -1.0, 20)]
        python = [("python", 3.0, 10)]
        spec = {"strategy": "fedavg", "rounds": 3, "min_clients": 2,
                "fit_config": {"lr": 0.3, "local_epochs": 2}}
        out = self.run_federation(spec, cpp, "3,2;4", python_clients=python)
        shapes = [(3, 2), (4,)]
        initial = [np.zeros(s, dtype=np.float32) for s in shapes]
        losses = self.check_rounds(out, cpp + python, shapes, np.float32, 0.3, 2, 0.0, initial)
        self.assertTrue(losses[0] > losses[1] > losses[2], losses)
        for r in ("1", "2", "3"):
            impls = sorted(res["metrics"].get("impl", "petal")
                           for res in out["rounds"][r]["fit_results"])
            self.assertEqual(impls, ["petal", "python"], f"round {r}")
        self.assertEqual(len(out["registrations"]), 2)
        self.assertEqual(h.client_stats(self.work.path, "cpp")["status"], "OK")


if __name__ == "__main__":
    unittest.main(verbosity=2)
