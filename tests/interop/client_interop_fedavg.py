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

RUN_TIMEOUT = 180


class FlowerFederationTest(unittest.TestCase):
    def setUp(self):
        self.work = h.Workdir("petal_client_fedavg_")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.kill()
        if h.test_failed(self):
            self.work.dump_logs()
        else:
            shutil.rmtree(self.work.path, ignore_errors=True)

    def run_federation(self, spec, clients, shapes, extra=()):
        """Starts the server and the clients; waits for everyone to finish."""
        port = h.free_port()
        spec = dict(spec, port=port)
        server, out_path = h.start_server(self.work.path, "server", spec)
        self.procs.append(server)
        h.wait_listening(port, server)
        for name, target, n in clients:
            self.procs.append(h.start_quadratic_client(self.work.path, name, port, target, n,
                                                       shapes=shapes, extra=extra))
        self.assertEqual(server.wait(RUN_TIMEOUT), 0, server.output())
        for p in self.procs[1:]:
            self.assertEqual(p.wait(60), 0, f"{p.name}:\n{p.output()}")
        return h.read_json(out_path)

    def check_rounds(self, out, clients, shapes, dtype, lr, epochs, mu, initial):
        """Replays the run in numpy and compares every tensor Flower saw."""
        by_target = {t: (name, n) for name, t, n in clients}
        sent = [np.asarray(a, dtype=dtype) for a in initial]
        losses = []
        rounds = out["rounds"]
        self.assertEqual(sorted(rounds, key=int), [str(r) for r in range(1, len(rounds) + 1)])
        for r in range(1, len(rounds) + 1):
            rec = rounds[str(r)]
            self.assertEqual(rec["fit_failures"], [], f"round {r}")
            self.assertEqual(len(rec["fit_results"]), len(clients), f"round {r}")
            weighted = []
            for res in rec["fit_results"]:
                self.assertEqual(res["code"], 0)
                self.assertEqual(res["message"], "Success")
                self.assertEqual(res["tensor_type"], "numpy.ndarray")
                target = res["metrics"]["target"]
                self.assertIn(target, by_target)
                self.assertEqual(res["num_examples"], by_target[target][1])
                self.assertEqual(res["metrics"]["proximal_mu"], mu)
                self.assertEqual(res["metrics"]["local_epochs"], epochs)
                arrays = [h_decode(a) for a in res["arrays"]]
                self.assertEqual([a.shape for a in arrays], shapes)
                self.assertTrue(all(a.dtype == np.dtype(dtype) for a in arrays))
                want = h.quadratic_fit(sent, target, lr, epochs, mu)
                for got, exp in zip(arrays, want):
                    np.testing.assert_array_equal(got, exp)
                self.assertAlmostEqual(res["metrics"]["loss"], h.quadratic_loss(want, target),
                                       places=9)
                weighted.append((arrays, res["num_examples"]))
            aggregated = [h_decode(a) for a in rec["aggregated"]]
            for got, exp in zip(aggregated, h.fedavg(weighted)):
                np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-6)
            # Federated evaluation of the aggregate on every client.
            self.assertEqual(rec["evaluate_failures"], [])
            self.assertEqual(len(rec["evaluate_results"]), len(clients))
            total = 0.0
            count = 0
            for res in rec["evaluate_results"]:
                target = res["metrics"]["target"]
                want_loss = np.float32(h.quadratic_loss(aggregated, target))
                self.assertAlmostEqual(res["loss"], float(want_loss), delta=1e-5 * (1 + want_loss))
                total += res["loss"] * res["num_examples"]
                count += res["num_examples"]
            flower_loss = dict(out["history"]["losses_distributed"])[r]
            self.assertAlmostEqual(flower_loss, total / count, places=6)
            losses.append(flower_loss)
            sent = [a.astype(dtype) for a in aggregated]
        return losses


def h_decode(d):
    return np.asarray(d["data"], dtype=d["dtype"]).reshape(d["shape"])


class FedAvgTest(FlowerFederationTest):
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
        with_mu = h_decode(first["arrays"][0])
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
