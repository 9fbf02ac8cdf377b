"""petal-client (tag-aware NCF, LibTorch) in federations run by real Flower 1.42.

Run by ctest when the build has LibTorch. Data: the embedded synthetic
generator, small enough to train in seconds. Each test starts Flower's own
server (start_server, or the grpc-bidi server with its GrpcClientProxy) and
petal-client processes built from configs/client.yaml plus --set overrides.
- FedAvg, 3 clients, 3 rounds: Flower decodes every tensor with numpy (shapes
  and dtypes of the exported initial model), the weighted training loss falls
  every round and federated HR@10 is higher after round 3 than after round 1.
- FedProx: proximal_mu reaches the clients and shrinks their update (same
  seeds, same data: only mu differs).
- FedAdam with initial parameters exported by petal-client --export-initial.
- A mixed federation with a stock Flower NumPyClient: both contribute, the
  aggregate is the exact weighted mean.
- A malformed FitIns (wrong shapes) gets FIT_NOT_IMPLEMENTED with the reason
  and the client stays connected.
- Faults: the server dies mid-round and a client is killed; the restarted
  client resumes its local state, and both finish with a new server.
- Local DP: every round's dp_epsilon is the RDP bound for the rounds so far.
"""

import math
import os
import signal
import sys
import time
import unittest

import numpy as np

from flwr.common import Code, FitIns, ReconnectIns, ndarrays_to_parameters
from flwr.server.client_manager import SimpleClientManager
from flwr.server.superlink.fleet.grpc_bidi.grpc_server import start_grpc_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_harness as h  # noqa: E402

FIT_CONFIG = {"local_epochs": 2, "lr": 0.005}


class NcfFederationTest(h.FlowerFederationTest):
    def run_ncf(self, spec, num_clients, sets=None, python_peers=(), run_timeout=h.RUN_TIMEOUT):
        port = h.free_port()
        spec = dict(spec, port=port)
        server, out_path = h.start_server(self.work.path, f"server-{port}", spec)
        self.procs.append(server)
        h.wait_listening(port, server)
        clients = []
        for i in range(num_clients):
            clients.append(h.start_petal_client(self.work.path, f"petal-{port}-{i}", port, i,
                                                num_clients, sets))
        for name, npz, n in python_peers:
            clients.append(h.Proc(name, [sys.executable, h.PEER_SCRIPT, f"127.0.0.1:{port}",
                                         "nudge", npz, str(n)], self.work.path))
        self.procs.extend(clients)
        self.assertEqual(server.wait(run_timeout), 0, server.output())
        for p in clients:
            self.assertEqual(p.wait(60), 0, f"{p.name}:\n{p.output()}")
        return h.read_json(out_path), clients

    def assert_all_rounds_ok(self, out, rounds, num_clients):
        for r in range(1, rounds + 1):
            rec = out["rounds"][str(r)]
            self.assertEqual(rec["fit_failures"], [], f"round {r}")
            self.assertEqual(len(rec["fit_results"]), num_clients, f"round {r}")
            self.assertEqual(rec["evaluate_failures"], [], f"round {r}")
            self.assertEqual(len(rec["evaluate_results"]), num_clients, f"round {r}")
            for res in rec["fit_results"]:
                self.assertEqual(res["code"], 0, res["message"])
                self.assertEqual(res["tensor_type"], "numpy.ndarray")

    def test_fedavg_three_clients_loss_falls_and_hr_rises(self):
        _, initial = h.export_initial(self.work.path, 3)
        spec = {"strategy": "fedavg", "rounds": 3, "min_clients": 3, "fit_config": FIT_CONFIG,
                "weighted_metrics": True, "record_arrays": False}
        out, clients = self.run_ncf(spec, 3)
        self.assert_all_rounds_ok(out, 3, 3)
        for r in ("1", "2", "3"):
            for res in out["rounds"][r]["fit_results"]:
                self.assertEqual(res["shapes"], [list(a.shape) for a in initial])
                self.assertEqual(res["dtypes"], ["float32"] * len(initial))
                self.assertEqual(res["metrics"]["local_epochs"], 2)
                self.assertGreater(res["metrics"]["samples_per_second"], 0)
        fit = out["history"]["metrics_distributed_fit"]
        loss = [v for _, v in fit["train_loss"]]
        hr = [v for _, v in out["history"]["metrics_distributed"]["hr@10"]]
        print(f"train_loss per round {loss}, hr@10 per round {hr}")
        self.assertTrue(loss[0] > loss[1] > loss[2], loss)
        self.assertGreater(hr[2], hr[0])
        self.assertGreater(hr[2], 0.1)  # better than ranking 100 candidates at random
        for i in range(3):
            self.assertTrue(os.path.exists(os.path.join(self.work.path, f"state-{i}",
                                                        "local_state.npz")))

    def test_fedprox_mu_reaches_the_clients_and_shrinks_the_update(self):
        norms = {}
        for mu in (0.0, 2.0):
            strategy = {"strategy": "fedprox", "proximal_mu": mu} if mu else {"strategy": "fedavg"}
            spec = dict(strategy, rounds=1, min_clients=2, fit_config=FIT_CONFIG,
                        record_arrays=False)
            sets = {"client.state_dir": os.path.join(self.work.path, f"mu{mu}-{{partition_id}}")}
            out, _ = self.run_ncf(spec, 2, sets)
            self.assert_all_rounds_ok(out, 1, 2)
            for res in out["rounds"]["1"]["fit_results"]:
                self.assertEqual(res["metrics"]["proximal_mu"], mu)
                norms[(mu, res["metrics"]["partition_id"])] = res["delta_norm"]
        print(f"update norms {norms}")
        for pid in (0, 1):
            self.assertLess(norms[(2.0, pid)], norms[(0.0, pid)])

    def test_fedadam_with_an_exported_initial_model(self):
        npz, initial = h.export_initial(self.work.path, 2)
        spec = {"strategy": "fedadam", "rounds": 3, "min_clients": 2, "fit_config": FIT_CONFIG,
                "initial_npz": npz, "fedadam": {"eta": 0.01, "eta_l": 0.01, "tau": 1e-3},
                "weighted_metrics": True, "record_arrays": False}
        out, clients = self.run_ncf(spec, 2)
        self.assert_all_rounds_ok(out, 3, 2)
        # The server had a model, so nobody was asked for get_parameters: each
        # client answered 3 fit + 3 evaluate + the goodbye.
        for c in clients:
            self.assertIn("done: 3 fit(s), 7 instruction(s) (0 failed)", c.output())
        hr = [v for _, v in out["history"]["metrics_distributed"]["hr@10"]]
        self.assertTrue(all(0.0 <= v <= 1.0 for v in hr), hr)
        for r in ("2", "3"):
            for res in out["rounds"][r]["fit_results"]:
                self.assertGreater(res["delta_norm"], 0.0)

    def test_mixed_federation_with_a_stock_numpy_client(self):
        npz, initial = h.export_initial(self.work.path, 1)
        spec = {"strategy": "fedavg", "rounds": 2, "min_clients": 2, "fit_config": FIT_CONFIG}
        out, _ = self.run_ncf(spec, 1, python_peers=[("python-peer", npz, 50)])
        self.assert_all_rounds_ok(out, 2, 2)
        for r in ("1", "2"):
            rec = out["rounds"][r]
            impls = sorted(res["metrics"].get("impl", "petal") for res in rec["fit_results"])
            self.assertEqual(impls, ["petal", "python"])
            weighted = [([h.decode_array(a) for a in res["arrays"]], res["num_examples"])
                        for res in rec["fit_results"]]
            for got, want in zip([h.decode_array(a) for a in rec["aggregated"]],
                                 h.fedavg(weighted)):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            python = next(res for res in rec["fit_results"] if "impl" in res["metrics"])
            elements = sum(a.size for a in initial)
            self.assertAlmostEqual(python["delta_norm"], 0.001 * math.sqrt(elements), places=4)

    def test_malformed_fit_gets_a_failure_status_and_the_client_stays(self):
        npz, initial = h.export_initial(self.work.path, 1)
        manager = SimpleClientManager()
        port = h.free_port()
        server = start_grpc_server(client_manager=manager, server_address=f"127.0.0.1:{port}")
        try:
            client = h.start_petal_client(self.work.path, "petal", port, 0, 1)
            self.procs.append(client)
            self.assertTrue(manager.wait_for(1, timeout=60), client.output())
            (proxy,) = manager.all().values()
            bad = [np.zeros((3, 3), np.float32)] + initial[1:]
            res = proxy.fit(FitIns(ndarrays_to_parameters(bad), FIT_CONFIG), timeout=60,
                            group_id=None)
            self.assertEqual(res.status.code, Code.FIT_NOT_IMPLEMENTED)
            self.assertTrue(res.status.message.startswith("error: INVALID_ARGUMENT"),
                            res.status.message)
            self.assertIn("item_gmf.weight", res.status.message)
            nan = [a.copy() for a in initial]
            nan[2][0, 0] = np.nan
            res = proxy.fit(FitIns(ndarrays_to_parameters(nan), FIT_CONFIG), timeout=60,
                            group_id=None)
            self.assertEqual(res.status.code, Code.FIT_NOT_IMPLEMENTED)
            res = proxy.fit(FitIns(ndarrays_to_parameters(initial), {"lr": "fast"}), timeout=60,
                            group_id=None)
            self.assertEqual(res.status.code, Code.FIT_NOT_IMPLEMENTED)
            self.assertIn("lr", res.status.message)
            self.assertIn(proxy.cid, manager.all())
            res = proxy.fit(FitIns(ndarrays_to_parameters(initial), FIT_CONFIG), timeout=60,
                            group_id=None)
            self.assertEqual(res.status.code, Code.OK)
            self.assertEqual(res.status.message, "Success")
            proxy.reconnect(ReconnectIns(seconds=None), timeout=60, group_id=None)
            self.assertEqual(client.wait(60), 0, client.output())
        finally:
            server.stop(grace=None)

    def test_server_dies_and_a_killed_client_resumes_its_state(self):
        port = h.free_port()
        spec = {"port": port, "strategy": "fedavg", "rounds": 2, "min_clients": 2,
                "fit_config": FIT_CONFIG, "record_arrays": False}
        first, _ = h.start_server(self.work.path, "server1", dict(spec, die_in_round=2))
        self.procs.append(first)
        h.wait_listening(port, first)
        clients = [h.start_petal_client(self.work.path, f"petal-{i}", port, i, 2) for i in (0, 1)]
        self.procs.extend(clients)
        self.assertEqual(first.wait(h.RUN_TIMEOUT), 17, first.output())
        for c in clients:
            self.assertTrue(c.wait_for_output("cannot reach the server", 60), c.output())
        # Kill client 1 outright and start it again on the same state dir.
        clients[1].signal(signal.SIGKILL)
        self.assertIsNotNone(clients[1].wait(30))
        restarted = h.start_petal_client(self.work.path, "petal-1-again", port, 1, 2)
        self.procs.append(restarted)
        self.assertTrue(restarted.wait_for_output("resumed local state", 60), restarted.output())

        second, out_path = h.start_server(self.work.path, "server2", spec)
        self.procs.append(second)
        self.assertEqual(second.wait(h.RUN_TIMEOUT), 0, second.output())
        for c in (clients[0], restarted):
            self.assertEqual(c.wait(60), 0, c.output())
        out = h.read_json(out_path)
        self.assert_all_rounds_ok(out, 2, 2)
        self.assertIn("lost the connection", clients[0].output())

    def test_local_dp_reports_the_rdp_epsilon_of_every_round(self):
        sigma, clip, delta = 1.5, 0.5, 1e-5
        sets = {"privacy.enabled": "true", "privacy.noise_multiplier": sigma,
                "privacy.clipping_norm": clip, "privacy.delta": delta}
        spec = {"strategy": "fedavg", "rounds": 3, "min_clients": 2, "fit_config": FIT_CONFIG,
                "record_arrays": False}
        out, _ = self.run_ncf(spec, 2, sets)
        self.assert_all_rounds_ok(out, 3, 2)
        for r in (1, 2, 3):
            slope = r * 2.0 / sigma ** 2
            want = slope + 2.0 * math.sqrt(slope * math.log(1.0 / delta))
            for res in out["rounds"][str(r)]["fit_results"]:
                self.assertEqual(res["metrics"]["dp_rounds"], r)
                self.assertAlmostEqual(res["metrics"]["dp_epsilon"], want, places=9)
                self.assertEqual(res["metrics"]["dp_delta"], delta)


if __name__ == "__main__":
    unittest.main(verbosity=2)
