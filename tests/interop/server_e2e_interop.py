"""petal-server end to end on loopback with stock Flower clients (flwr 1.42.0).

Run by ctest with PETAL_BINARY_DIR set (petal-server is built there).

Each test starts petal-server (port 0) and Python processes running
flwr.client.start_client(transport="grpc-bidi") with NumPyClients whose replies
are a known function of what they receive (server_flwr_client.py). The server's
saved model (model.npz) is compared with what Flower's own strategy classes
compute from the same replies (server_harness.replay), its history with the
clients' logs. Fault tests: a client killed mid-round, a client that never
answers, malformed results, an oversized message, the server killed (SIGKILL)
or stopped (SIGTERM) and resumed.

Adding petal-client (C++) cases: start them with Federation.add_process() next
to (or instead of) add_flower_client(); the replay only needs each client's
index, which the C++ client must map to the same known update rule.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_flwr_client as known  # noqa: E402
from server_harness import (  # noqa: E402
    Federation,
    base_config,
    evaluators,
    load_model,
    participants,
    replay,
)

from flwr.server import strategy as fl  # noqa: E402


def initial_model():
    return known.initial_arrays(99)


def strict(strategy_name, n=3, **params):
    """A strategy section that waits for all `n` clients every round."""
    return {"name": strategy_name, "min_fit_clients": n, "min_evaluate_clients": n,
            "min_available_clients": n, **params}


class ServerE2E(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.fed = Federation(self.dir)
        self.initial_npz = os.path.join(self.dir, "initial.npz")
        np.savez(self.initial_npz, *initial_model())

    def tearDown(self):
        self.fed.stop()
        self.tmp.cleanup()

    # --- helpers -------------------------------------------------------------
    def run_federation(self, config, behaviors=None, n=3, expect_exit=0, timeout=120, args=()):
        server = self.fed.start_server(config, args=args)
        clients = []
        behaviors = behaviors or {}
        for k in range(n):
            behavior, misbehave_round = behaviors.get(k, ("normal", 1))
            clients.append(self.fed.add_flower_client(server.address, k, behavior=behavior,
                                                      misbehave_round=misbehave_round))
        code = server.wait(timeout=timeout)
        self.assertEqual(code, expect_exit, server.text())
        return server, clients

    def history(self):
        with open(os.path.join(self.dir, "out", "history.json")) as f:
            return json.load(f)

    def assert_models_close(self, got, expected, rtol=1e-6, ctx=""):
        """Equal to 1e-6 relative to each array's scale.

        Flower's default FedAvg rounds every partial sum in the array dtype
        (float32 here) while Petal rounds once, so an element that is the sum of
        terms much larger than itself may differ by a few float32 ulps of those
        terms; hence the tolerance is relative to the array's largest value.
        strategy_golden_interop.py holds the element-wise comparisons."""
        self.assertEqual(len(got), len(expected), ctx)
        for i, (g, e) in enumerate(zip(got, expected)):
            self.assertEqual(g.dtype, e.dtype, f"{ctx} array {i}")
            self.assertEqual(g.shape, e.shape, f"{ctx} array {i}")
            scale = float(np.max(np.abs(e))) if e.size else 0.0
            np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol * scale, err_msg=f"{ctx} array {i}")

    def check_against_flower(self, flower_strategy, clients, rounds, initial):
        parts = {r: participants(clients, r) for r in range(1, rounds + 1)}
        evals = {r: evaluators(clients, r) for r in range(1, rounds + 1)}
        models, losses = replay(flower_strategy, initial, rounds, parts, evals)
        got = load_model(os.path.join(self.dir, "out", "model.npz"))
        self.assert_models_close(got, models[-1], ctx="final model")
        history = self.history()
        self.assertEqual([r["round"] for r in history["rounds"]], list(range(1, rounds + 1)))
        for r, record in enumerate(history["rounds"], start=1):
            self.assertEqual(record["fit"]["results"], len(parts[r]), f"round {r}")
            if losses[r - 1] is not None:
                self.assertAlmostEqual(record["evaluate"]["loss"], losses[r - 1],
                                       delta=1e-5 * abs(losses[r - 1]), msg=f"round {r}")
        return parts, models

    # --- happy paths ---------------------------------------------------------
    def test_fedavg_matches_flower(self):
        config = base_config(self.dir, strict("fedavg"), rounds=3,
                             run={"initial_parameters": self.initial_npz})
        server, clients = self.run_federation(config)
        self.check_against_flower(fl.FedAvg(), clients, 3, initial_model())
        history = self.history()
        self.assertTrue(history["completed"])
        self.assertEqual(history["metrics_distributed_fit"]["acc"][0][0], 1)
        # acc is 0.5 + 0.1 k, weighted by 10 (k + 1): (0.5*10 + 0.6*20 + 0.7*30) / 60
        self.assertAlmostEqual(history["rounds"][0]["fit"]["metrics"]["acc"], 38 / 60)
        for c in clients:
            fits = c.entries("fit")
            self.assertEqual([e["round"] for e in fits], [1, 2, 3])
            for e in fits:
                self.assertEqual(e["config"], {"local_epochs": 2, "server_round": e["round"]})
            for e in c.entries("evaluate"):
                self.assertEqual(e["config"], {"batch": 64, "server_round": e["round"]})
            # ReconnectIns at the end: every client shut down on its own.
            self.assertEqual(c.wait(timeout=30), 0, c.output())
            self.assertTrue(c.entries("exit"), c.output())
        with open(os.path.join(self.dir, "out", "history.csv")) as f:
            rows = f.read().splitlines()
        self.assertEqual(len(rows), 4)
        self.assertTrue(rows[0].startswith("round,fit_sampled,fit_results,fit_failures"))
        self.assertIn("fit_acc", rows[0])
        self.assertIn("evaluate_hr10", rows[0])

    def test_fedadam_matches_flower_with_npy_initial_parameters(self):
        paths = []
        for i, a in enumerate(initial_model()):
            paths.append(os.path.join(self.dir, f"init{i}.npy"))
            np.save(paths[-1], a)
        config = base_config(self.dir, strict("fedadam"), rounds=4,
                             run={"initial_parameters": paths})
        server, clients = self.run_federation(config)
        from flwr.common import ndarrays_to_parameters
        flower = fl.FedAdam(initial_parameters=ndarrays_to_parameters(initial_model()))
        self.check_against_flower(flower, clients, 4, initial_model())

    def test_fedprox_sends_proximal_mu_and_initial_parameters_come_from_a_client(self):
        config = base_config(self.dir, strict("fedprox", proximal_mu=0.25), rounds=2)
        config["run"]["send_server_round"] = True
        server, clients = self.run_federation(config)
        asked = [c for c in clients if c.entries("get_parameters")]
        self.assertEqual(len(asked), 1, "exactly one client is asked for the initial parameters")
        for c in clients:
            for e in c.entries("fit"):
                self.assertEqual(e["config"]["proximal_mu"], 0.25)
        self.check_against_flower(fl.FedProx(proximal_mu=0.25), clients, 2,
                                  known.initial_arrays(asked[0].index))

    # --- faults --------------------------------------------------------------
    def test_client_killed_mid_round_round_completes_with_the_rest(self):
        # min_available 3 makes round 1 wait for all three clients.
        config = base_config(self.dir, {"name": "fedavg", "min_fit_clients": 2,
                                        "min_evaluate_clients": 2, "min_available_clients": 3},
                             rounds=3, run={"initial_parameters": self.initial_npz})
        server = self.fed.start_server(config)
        clients = [self.fed.add_flower_client(server.address, 0),
                   self.fed.add_flower_client(server.address, 1, behavior="crash", misbehave_round=2),
                   self.fed.add_flower_client(server.address, 2)]
        server.wait_for(r"\[ROUND 2\] aggregate_fit: received 2 results and 1 failures", timeout=90)
        # The round went on with the other two. Later samples wait for three
        # available clients again: a replacement joins (any client will do).
        clients.append(self.fed.add_flower_client(server.address, 3))
        self.assertEqual(server.wait(timeout=120), 0, server.text())
        self.assertEqual(clients[1].proc.wait(timeout=10), -signal.SIGKILL)
        parts, _ = self.check_against_flower(fl.FedAvg(), clients, 3, initial_model())
        self.assertEqual(parts[2], [0, 2])
        record = self.history()["rounds"][1]
        self.assertEqual(record["fit"]["failures"], 1)
        self.assertIn("stream ended", record["failure_details"][0]["error"])

    def test_client_killed_below_minimum_fails_cleanly(self):
        # accept_failures=false: a round with a failure keeps the model; then too
        # few clients remain and the next round is skipped after the wait timeout
        # (long enough for three Python clients to start).
        config = base_config(self.dir, strict("fedavg", accept_failures=False), rounds=3,
                             run={"initial_parameters": self.initial_npz,
                                  "client_wait_timeout": 10})
        server, clients = self.run_federation(config, behaviors={2: ("crash", 2)})
        history = self.history()
        r1, r2, r3 = history["rounds"]
        self.assertTrue(r1["fit"]["model_updated"])
        self.assertEqual(r2["fit"]["failures"], 1)
        self.assertFalse(r2["fit"]["model_updated"])
        self.assertEqual(r3["fit"]["sampled"], 0)
        self.assertFalse(r3["fit"]["model_updated"])
        models, _ = replay(fl.FedAvg(), initial_model(), 1, {1: [0, 1, 2]})
        self.assert_models_close(load_model(os.path.join(self.dir, "out", "model.npz")), models[0],
                                 ctx="model after round 1 only")

    def test_client_that_never_answers_times_out(self):
        config = base_config(self.dir, {"name": "fedavg", "min_fit_clients": 2,
                                        "min_evaluate_clients": 2, "min_available_clients": 3},
                             rounds=2, run={"initial_parameters": self.initial_npz,
                                            "round_timeout": 3})
        server = self.fed.start_server(config)
        clients = [self.fed.add_flower_client(server.address, k, behavior=b, misbehave_round=2)
                   for k, b in enumerate(["normal", "normal", "hang"])]
        server.wait_for(r"\[ROUND 2\] fit failure from client \w+: DEADLINE_EXCEEDED: Timeout of 3sec",
                        timeout=90)
        # The hung client's stream is closed by the server; a replacement lets
        # evaluation (min_available 3) go on.
        clients.append(self.fed.add_flower_client(server.address, 3))
        self.assertEqual(server.wait(timeout=120), 0, server.text())
        parts, _ = self.check_against_flower(fl.FedAvg(), clients, 2, initial_model())
        self.assertEqual(parts[2], [0, 1])
        record = self.history()["rounds"][1]
        self.assertEqual(record["fit"]["failures"], 1)
        self.assertLess(record["fit"]["seconds"], 20)

    def run_malformed(self, bad):
        n = 2 + len(bad)
        config = base_config(self.dir, strict("fedavg", n=n), rounds=2,
                             run={"initial_parameters": self.initial_npz})
        behaviors = {2 + i: (b, 2) for i, b in enumerate(bad)}
        server, clients = self.run_federation(config, behaviors=behaviors, n=n, timeout=180)
        parts, _ = self.check_against_flower(fl.FedAvg(), clients, 2, initial_model())
        self.assertEqual(parts[1], list(range(n)))
        self.assertEqual(parts[2], [0, 1])
        record = self.history()["rounds"][1]
        self.assertEqual(record["fit"]["failures"], len(bad))
        return " | ".join(f["error"] for f in record["failure_details"])

    def test_malformed_results_never_reach_the_aggregate(self):
        errors = self.run_malformed(["nan", "inf", "wrong_shape", "zero_examples"])
        self.assertIn("non-finite value", errors)
        self.assertIn("expected shape (4, 3), got (5, 3)", errors)
        self.assertIn("num_examples must be > 0, got 0", errors)

    def test_more_malformed_results_never_reach_the_aggregate(self):
        errors = self.run_malformed(["extra_array", "wrong_dtype", "garbage", "fail_status"])
        self.assertIn("expected 2 arrays, got 3", errors)
        self.assertIn("expected dtype float32, got float64", errors)
        self.assertIn("tensor 0", errors)
        self.assertIn("FIT_NOT_IMPLEMENTED", errors)

    def test_oversized_message_is_refused(self):
        # Evaluation waits (10 s) for a third client, then samples the two left.
        config = base_config(self.dir, {"name": "fedavg", "min_fit_clients": 3,
                                        "min_evaluate_clients": 2, "min_available_clients": 3},
                             rounds=1, run={"initial_parameters": self.initial_npz,
                                            "client_wait_timeout": 10},
                             server={"max_message_length": 65536})
        server, clients = self.run_federation(config, behaviors={1: ("huge", 1)})
        record = self.history()["rounds"][0]
        self.assertEqual(record["fit"]["results"], 2)
        self.assertEqual(record["fit"]["failures"], 1)
        models, _ = replay(fl.FedAvg(), initial_model(), 1, {1: [0, 2]})
        self.assert_models_close(load_model(os.path.join(self.dir, "out", "model.npz")), models[0])

    def test_server_killed_and_resumed_equals_uninterrupted_run(self):
        rounds = 4
        # Reference: an uninterrupted run in its own folder.
        ref_dir = os.path.join(self.dir, "reference")
        os.makedirs(ref_dir)
        ref = Federation(ref_dir)
        try:
            config = base_config(ref_dir, strict("fedadam"), rounds=rounds,
                                 run={"initial_parameters": self.initial_npz})
            server = ref.start_server(config)
            for k in range(3):
                ref.add_flower_client(server.address, k)
            self.assertEqual(server.wait(timeout=120), 0, server.text())
        finally:
            ref.stop()
        reference = load_model(os.path.join(ref_dir, "out", "model.npz"))

        config = base_config(self.dir, strict("fedadam"), rounds=rounds,
                             run={"initial_parameters": self.initial_npz})
        server = self.fed.start_server(config, name="first")
        clients = [self.fed.add_flower_client(server.address, k, tag="a") for k in range(3)]
        server.wait_for(r"\[ROUND 2\] checkpoint saved", timeout=90)
        server.signal(signal.SIGKILL)
        server.wait(timeout=10)
        for c in clients:  # legacy Flower clients exit when their server dies
            c.proc.wait(timeout=30)
        with open(os.path.join(self.dir, "out", "checkpoints", "checkpoint.json")) as f:
            saved_round = json.load(f)["round"]
        self.assertGreaterEqual(saved_round, 2)

        port = server.port
        config["server"]["address"] = f"127.0.0.1:{port}"
        resumed = self.fed.start_server(config, args=["--resume"], name="resumed")
        resumed.wait_for(rf"Resuming after round {saved_round}", timeout=30)
        for k in range(3):
            self.fed.add_flower_client(resumed.address, k, tag="b")
        self.assertEqual(resumed.wait(timeout=120), 0, resumed.text())
        got = load_model(os.path.join(self.dir, "out", "model.npz"))
        for g, r in zip(got, reference):
            np.testing.assert_array_equal(g, r)  # identical, bit for bit
        history = self.history()
        self.assertEqual([r["round"] for r in history["rounds"]], list(range(1, rounds + 1)))

    def test_sigterm_checkpoints_exits_cleanly_and_resumes(self):
        rounds = 3
        config = base_config(self.dir, strict("fedavgm", server_momentum=0.9), rounds=rounds,
                             run={"initial_parameters": self.initial_npz})
        server = self.fed.start_server(config, name="first")
        clients = [self.fed.add_flower_client(server.address, k, tag="a",
                                              behavior="slow" if k == 0 else "normal",
                                              misbehave_round=3)
                   for k in range(3)]
        server.wait_for(r"\[ROUND 3\] configure_fit", timeout=90)
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait(timeout=60), 3, server.text())
        history = self.history()
        self.assertFalse(history["completed"])
        self.assertEqual(history["last_round"], 2)
        with open(os.path.join(self.dir, "out", "checkpoints", "checkpoint.json")) as f:
            self.assertEqual(json.load(f)["round"], 2)
        from flwr.common import ndarrays_to_parameters
        flower = fl.FedAvgM(initial_parameters=ndarrays_to_parameters(initial_model()),
                            server_momentum=0.9)
        models, _ = replay(flower, initial_model(), 2, {1: [0, 1, 2], 2: [0, 1, 2]})
        self.assert_models_close(load_model(os.path.join(self.dir, "out", "model.npz")), models[1],
                                 ctx="model at the stop")
        for c in clients:
            c.proc.wait(timeout=30)

        resumed = self.fed.start_server(config, args=["--resume"], name="resumed")
        new_clients = [self.fed.add_flower_client(resumed.address, k, tag="b") for k in range(3)]
        self.assertEqual(resumed.wait(timeout=120), 0, resumed.text())
        flower = fl.FedAvgM(initial_parameters=ndarrays_to_parameters(initial_model()),
                            server_momentum=0.9)
        models, _ = replay(flower, initial_model(), 3, {1: [0, 1, 2], 2: [0, 1, 2], 3: [0, 1, 2]})
        self.assert_models_close(load_model(os.path.join(self.dir, "out", "model.npz")), models[2],
                                 ctx="final model after resume")
        self.assertEqual(participants(new_clients, 3), [0, 1, 2])
        self.assertTrue(self.history()["completed"])

    def test_tls(self):
        ca_key, ca, key, csr, cert = (os.path.join(self.dir, n) for n in
                                      ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
        ext = os.path.join(self.dir, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)  # noqa: E731
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
            "-days", "2", "-subj", "/CN=petal-test-ca")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=localhost")
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", ext)
        config = base_config(self.dir, strict("fedavg", n=2), rounds=2,
                             run={"initial_parameters": self.initial_npz},
                             server={"tls": {"ca_cert": ca, "cert": cert, "key": key}})
        server = self.fed.start_server(config)
        server.wait_for(r"\(TLS\)", timeout=30)
        clients = [self.fed.add_flower_client(server.address, k, root_certificates=ca)
                   for k in range(2)]
        self.assertEqual(server.wait(timeout=120), 0, server.text())
        self.check_against_flower(fl.FedAvg(), clients, 2, initial_model())


if __name__ == "__main__":
    unittest.main()
