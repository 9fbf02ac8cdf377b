"""Flower's own server-side objects drive a Petal C++ client, one instruction at a time.

Run by ctest. The test process runs Flower's grpc-bidi server
(flwr.server.superlink.fleet.grpc_bidi.grpc_server.start_grpc_server) with a
SimpleClientManager and talks to the C++ demo client through Flower's
GrpcClientProxy, exactly as flwr.server.Server does:
- all five instruction kinds, decoded by Flower's serde (get_properties,
  get_parameters, fit, evaluate, reconnect with and without seconds);
- malformed instructions (wrong shapes, tensor count, dtype, NaN/Inf, config
  values of the wrong type, undecodable tensors, a foreign tensor_type) get a
  non-OK status naming the problem, and the client stays connected on the
  same stream (same cid);
- a ServerMessage with no instruction is not answered: the client closes the
  stream (Flower's proxy raises, i.e. counts a failure) and rejoins;
- message size limits on either side.
"""

import os
import shutil
import sys
import time
import unittest

import numpy as np

from flwr.common import (
    Code,
    EvaluateIns,
    FitIns,
    GetParametersIns,
    GetPropertiesIns,
    Parameters,
    ReconnectIns,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.proto.transport_pb2 import ServerMessage
from flwr.server.client_manager import SimpleClientManager
from flwr.server.superlink.fleet.grpc_bidi.grpc_bridge import InsWrapper
from flwr.server.superlink.fleet.grpc_bidi.grpc_server import start_grpc_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_harness as h  # noqa: E402

TIMEOUT = 30  # per instruction (Flower aborts the stream after it)
SHAPES = [(3, 2), (4,)]


def good_model(scale=1.0):
    return [np.arange(6, dtype=np.float32).reshape(3, 2) * scale,
            np.array([1.0, -1.0, 0.5, 2.0], dtype=np.float32) * scale]


class ProxyTest(unittest.TestCase):
    def setUp(self):
        self.work = h.Workdir("petal_client_proxy_")
        self.procs = []
        self.servers = []

    def tearDown(self):
        for p in self.procs:
            p.kill()
        for s in self.servers:
            s.stop(grace=None)
        if h.test_failed(self):
            self.work.dump_logs()
        else:
            shutil.rmtree(self.work.path, ignore_errors=True)

    def start(self, server_limit=None, client_args=(), shapes="3,2;4", target=2.0):
        self.manager = SimpleClientManager()
        self.port = h.free_port()
        kwargs = {} if server_limit is None else {"max_message_length": server_limit}
        self.servers.append(start_grpc_server(client_manager=self.manager,
                                              server_address=f"127.0.0.1:{self.port}", **kwargs))
        self.client = h.start_quadratic_client(self.work.path, "cpp", self.port, target, 7,
                                               shapes=shapes, extra=client_args)
        self.procs.append(self.client)
        return self.wait_for_new_proxy(set())

    def wait_for_new_proxy(self, known_cids, timeout=TIMEOUT):
        """Waits until a client whose cid is not in `known_cids` registers."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            fresh = [p for cid, p in self.manager.all().items() if cid not in known_cids]
            if fresh:
                return fresh[0]
            if self.client.poll() is not None:
                self.fail(f"client exited ({self.client.poll()}):\n{self.client.output()}")
            time.sleep(0.02)
        self.fail(f"no new client registered within {timeout}s:\n{self.client.output()}")

    def assert_still_connected(self, proxy):
        self.assertIn(proxy.cid, self.manager.all())
        self.assertIsNone(self.client.poll())

    def fit(self, proxy, parameters, config=None):
        return proxy.fit(FitIns(parameters, config or {"lr": 0.5, "local_epochs": 1}),
                         timeout=TIMEOUT, group_id=None)

    def test_every_instruction_kind_and_every_malformed_fit(self):
        proxy = self.start()

        props = proxy.get_properties(GetPropertiesIns({"question": "who"}), timeout=TIMEOUT,
                                     group_id=None)
        self.assertEqual(props.status.code, Code.OK)
        self.assertEqual(props.status.message, "Success")
        self.assertEqual(props.properties,
                         {"target": 2.0, "num_examples": 7, "num_arrays": 2, "sdk": "petal"})

        params = proxy.get_parameters(GetParametersIns({}), timeout=TIMEOUT, group_id=None)
        self.assertEqual(params.status.code, Code.OK)
        self.assertEqual(params.parameters.tensor_type, "numpy.ndarray")
        arrays = parameters_to_ndarrays(params.parameters)
        self.assertEqual([a.shape for a in arrays], SHAPES)
        self.assertTrue(all(a.dtype == np.float32 and not a.any() for a in arrays))

        model = good_model()
        res = self.fit(proxy, ndarrays_to_parameters(model), {"lr": 0.5, "local_epochs": 3})
        self.assertEqual(res.status.code, Code.OK)
        self.assertEqual(res.status.message, "Success")
        self.assertEqual(res.num_examples, 7)
        for got, want in zip(parameters_to_ndarrays(res.parameters),
                             h.quadratic_fit(model, 2.0, 0.5, 3, 0.0)):
            np.testing.assert_array_equal(got, want)
        self.assertEqual(res.metrics["local_epochs"], 3)

        ev = proxy.evaluate(EvaluateIns(ndarrays_to_parameters(model), {}), timeout=TIMEOUT,
                            group_id=None)
        self.assertEqual(ev.status.code, Code.OK)
        self.assertEqual(ev.num_examples, 7)
        self.assertAlmostEqual(ev.loss, float(np.float32(h.quadratic_loss(model, 2.0))), places=4)
        self.assertEqual(ev.metrics, {"target": 2.0})

        bad_fits = [
            ("wrong shape", ndarrays_to_parameters([np.zeros(2, np.float32), model[1]]), None,
             "error: INVALID_ARGUMENT: array 0: shape (2,), expected (3, 2)"),
            ("too few arrays", ndarrays_to_parameters(model[:1]), None,
             "error: INVALID_ARGUMENT: expected 2 arrays, got 1"),
            ("wrong dtype", ndarrays_to_parameters([model[0].astype(np.float64), model[1]]), None,
             "error: INVALID_ARGUMENT: array 0: dtype float64, expected float32"),
            ("NaN", ndarrays_to_parameters([model[0], np.array([1, np.nan, 0, 0], np.float32)]),
             None, "error: INVALID_ARGUMENT: array 1: element 1 is not finite"),
            ("Inf", ndarrays_to_parameters([np.full((3, 2), np.inf, np.float32), model[1]]), None,
             "error: INVALID_ARGUMENT: array 0: element 0 is not finite"),
            ("lr of the wrong type", ndarrays_to_parameters(model), {"lr": "fast"},
             "error: INVALID_ARGUMENT:"),
            ("local_epochs of the wrong type", ndarrays_to_parameters(model),
             {"local_epochs": 1.5}, "error: INVALID_ARGUMENT:"),
            ("undecodable tensor", Parameters(tensors=[b"junk", b"\x93NUMPY"],
                                              tensor_type="numpy.ndarray"), None,
             "error: INVALID_ARGUMENT: fit_ins: tensor 0:"),
            ("foreign tensor_type", Parameters(tensors=[b"\x00" * 8], tensor_type="cpp_double"),
             None, "error: INVALID_ARGUMENT: fit_ins: unsupported tensor_type 'cpp_double'"),
        ]
        for what, parameters, config, message in bad_fits:
            with self.subTest(what):
                res = self.fit(proxy, parameters, config)
                self.assertEqual(res.status.code, Code.FIT_NOT_IMPLEMENTED)
                self.assertTrue(res.status.message.startswith(message), res.status.message)
                self.assertEqual(parameters_to_ndarrays(res.parameters), [])
                self.assertEqual(res.num_examples, 0)
                self.assert_still_connected(proxy)
        res = self.fit(proxy, ndarrays_to_parameters(model), {"lr": 1, "local_epochs": "x"})
        self.assertIn("local_epochs", res.status.message)
        ev = proxy.evaluate(EvaluateIns(ndarrays_to_parameters(model[:1]), {}), timeout=TIMEOUT,
                            group_id=None)
        self.assertEqual(ev.status.code, Code.EVALUATE_NOT_IMPLEMENTED)
        self.assertIn("expected 2 arrays, got 1", ev.status.message)

        # Still the same stream: a good fit works.
        res = self.fit(proxy, ndarrays_to_parameters(model))
        self.assertEqual(res.status.code, Code.OK)
        self.assert_still_connected(proxy)
        self.assertIn("fit failed, answering with a failure status: error: INVALID_ARGUMENT: "
                      "array 0: shape (2,), expected (3, 2)", self.client.output())

        # An empty ServerMessage: the client sends nothing and closes the
        # stream, which Flower's proxy reports as an exception (a failure).
        with self.assertRaises(Exception):
            proxy.bridge.request(InsWrapper(server_message=ServerMessage(), timeout=TIMEOUT))
        proxy2 = self.wait_for_new_proxy({proxy.cid})
        self.assertNotIn(proxy.cid, self.manager.all())
        self.assertEqual(proxy2.get_properties(GetPropertiesIns({}), timeout=TIMEOUT,
                                               group_id=None).status.code, Code.OK)

        # ReconnectIns with seconds: DisconnectRes(RECONNECT), back after that long.
        asked = time.time()
        disconnect = proxy2.reconnect(ReconnectIns(seconds=1), timeout=TIMEOUT, group_id=None)
        self.assertEqual(disconnect.reason, "RECONNECT")
        proxy3 = self.wait_for_new_proxy({proxy.cid, proxy2.cid})
        self.assertGreaterEqual(time.time() - asked, 1.0)

        # The goodbye Flower sends at the end of a run: DisconnectRes, exit 0.
        disconnect = proxy3.reconnect(ReconnectIns(seconds=None), timeout=TIMEOUT, group_id=None)
        self.assertEqual(disconnect.reason, "RECONNECT")
        self.assertEqual(self.client.wait(TIMEOUT), 0, self.client.output())
        stats = h.client_stats(self.work.path, "cpp")
        self.assertEqual(stats["status"], "OK")
        self.assertEqual(stats["sessions"], 3)
        self.assertEqual(stats["failed_instructions"], len(bad_fits) + 2)

    def test_reply_larger_than_the_client_limit_is_answered_as_a_failure(self):
        proxy = self.start(client_args=["--max-message-length", "300"], shapes="100")
        res = proxy.get_parameters(GetParametersIns({}), timeout=TIMEOUT, group_id=None)
        self.assertEqual(res.status.code, Code.GET_PARAMETERS_NOT_IMPLEMENTED)
        self.assertIn("RESOURCE_EXHAUSTED", res.status.message)
        self.assertIn("more than max_message_length (300 bytes)", res.status.message)
        props = proxy.get_properties(GetPropertiesIns({}), timeout=TIMEOUT, group_id=None)
        self.assertEqual(props.status.code, Code.OK)
        self.assert_still_connected(proxy)

    def test_instruction_larger_than_the_client_limit_is_a_fatal_error(self):
        proxy = self.start(client_args=["--max-message-length", "1000"], shapes="2000")
        big = [np.ones(2000, dtype=np.float32)]
        with self.assertRaises(Exception):
            self.fit(proxy, ndarrays_to_parameters(big))
        self.assertEqual(self.client.wait(TIMEOUT), 3, self.client.output())
        self.assertIn("larger than max_message_length (1000 bytes)", self.client.output())

    def test_reply_larger_than_the_server_limit_makes_the_client_reconnect(self):
        proxy = self.start(server_limit=2000, shapes="1000")
        with self.assertRaises(Exception):
            proxy.get_parameters(GetParametersIns({}), timeout=TIMEOUT, group_id=None)
        proxy2 = self.wait_for_new_proxy({proxy.cid})
        props = proxy2.get_properties(GetPropertiesIns({}), timeout=TIMEOUT, group_id=None)
        self.assertEqual(props.status.code, Code.OK)
        self.assertIn("lost the connection", self.client.output())
        self.assertIn("RESOURCE_EXHAUSTED", self.client.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
