"""Shared pieces of the client SDK's interop tests against real Flower.

Not a test itself. The tests (client_interop_*.py) import it to:
- find free loopback ports and run processes in their own process groups,
  bounded in time and always killed (Proc);
- run a real Flower server (flwr.server.start_server, in client_flower_server.py)
  as a subprocess and read back what it received;
- start Petal's demo client (examples/quadratic_client, built in-tree as
  petal_quadratic_client) and predict its replies with numpy.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_SCRIPT = os.path.join(HERE, "client_flower_server.py")
PEER_SCRIPT = os.path.join(HERE, "client_numpy_peer.py")
BINARY_DIR = os.environ.get("PETAL_BINARY_DIR", "")


def quadratic_client_path():
    path = os.path.join(BINARY_DIR, "tests", "client", "petal_quadratic_client")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: build the petal_quadratic_client target first "
                           "(PETAL_BINARY_DIR must point at the build tree)")
    return path


def flower_env():
    env = dict(os.environ)
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A subprocess in its own process group, output captured to a file.

    Use as a context manager: leaving the block kills the whole group
    (SIGTERM, then SIGKILL after a grace period) and reaps it.
    """

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = os.path.join(workdir, f"{name}.log")
        self._log = open(self.log_path, "wb")
        self.started = time.time()
        self.popen = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      env=env or flower_env(), start_new_session=True)
        self.rusage = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False

    def poll(self):
        return self.wait(0)

    def wait(self, timeout):
        """Waits for exit; returns the exit code, or None on timeout.

        Reaps with os.wait4 (never Popen.wait) so the child's resource usage
        (peak RSS) is kept in self.rusage.
        """
        deadline = time.time() + timeout
        while True:
            if self.popen.returncode is not None:
                return self.popen.returncode
            try:
                pid, status, rusage = os.wait4(self.popen.pid, os.WNOHANG)
            except ChildProcessError:
                return self.popen.returncode
            if pid == self.popen.pid:
                self.rusage = rusage
                self.popen.returncode = os.waitstatus_to_exitcode(status)
                return self.popen.returncode
            if time.time() >= deadline:
                return None
            time.sleep(0.02)

    def signal(self, sig):
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self):
        if self.popen.returncode is None:
            self.signal(signal.SIGTERM)
            if self.wait(5) is None:
                self.signal(signal.SIGKILL)
                self.wait(10)
        else:
            # The leader exited; make sure nothing else of its group survives.
            self.signal(signal.SIGKILL)
        self._log.close()

    def output(self):
        self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for_output(self, needle, timeout):
        """Waits until `needle` appears in the output; True if it did."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.output():
                return True
            if self.poll() is not None:
                return needle in self.output()
            time.sleep(0.05)
        return False


def start_server(workdir, name, spec):
    """Starts client_flower_server.py with `spec`; returns (Proc, out_path)."""
    spec_path = os.path.join(workdir, f"{name}.spec.json")
    out_path = os.path.join(workdir, f"{name}.out.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    proc = Proc(name, [sys.executable, SERVER_SCRIPT, spec_path, out_path], workdir)
    return proc, out_path


def wait_listening(port, proc, timeout=60):
    """Waits until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.name} exited early:\n{proc.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{proc.name} did not listen on {port} within {timeout}s:\n"
                         f"{proc.output()}")


def start_quadratic_client(workdir, name, port, target, num_examples, shapes="3,2;4",
                           extra=()):
    argv = [quadratic_client_path(), "--server", f"127.0.0.1:{port}", "--name", name,
            "--target", repr(float(target)), "--num-examples", str(num_examples),
            "--shapes", shapes, "--initial-backoff", "200ms", "--max-backoff", "1s",
            "--max-elapsed", "60s", "--connect-timeout", "5s",
            "--stats-json", os.path.join(workdir, f"{name}.stats.json"), *extra]
    return Proc(name, argv, workdir)


def petal_client_path():
    path = os.path.join(BINARY_DIR, "src", "client", "petal-client")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: build the petal-client target first")
    return path


# A small synthetic federation that trains in seconds on 2 cores.
NCF_SMALL = {
    "data.synthetic.num_users": 240,
    "data.synthetic.num_items": 200,
    "data.synthetic.num_tags": 20,
    "data.synthetic.mean_interactions": 30,
    "data.synthetic.min_interactions": 8,
    "model.gmf_dim": 16,
    "model.mlp_embedding_dim": 16,
    "model.tag_dim": 16,
    "model.mlp_layers": "[32, 16]",
    "train.batch_size": 128,
    "eval.full_catalog": "false",
}


def petal_client_argv(workdir, port, partition_id, num_partitions, sets=None):
    """argv of petal-client with configs/client.yaml and test overrides."""
    source = os.environ.get("PETAL_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
    overrides = dict(NCF_SMALL)
    overrides.update({
        "server.address": f"127.0.0.1:{port}",
        "server.retry.initial_backoff": "200ms",
        "server.retry.max_backoff": "1s",
        "server.retry.max_elapsed": "60s",
        "server.connect_timeout": "5s",
        "client.partition_id": partition_id,
        "client.state_dir": os.path.join(workdir, "state-{partition_id}"),
        "partition.num_partitions": num_partitions,
    })
    overrides.update(sets or {})
    argv = [petal_client_path(), "--config", os.path.join(source, "configs", "client.yaml")]
    for key, value in overrides.items():
        argv += ["--set", f"{key}={value}"]
    return argv


def start_petal_client(workdir, name, port, partition_id, num_partitions, sets=None):
    return Proc(name, petal_client_argv(workdir, port, partition_id, num_partitions, sets), workdir)


def export_initial(workdir, num_partitions, sets=None):
    """Runs petal-client --export-initial; returns the arrays in wire order."""
    path = os.path.join(workdir, "initial.npz")
    argv = petal_client_argv(workdir, 1, 0, num_partitions, sets) + ["--export-initial", path]
    proc = Proc("export-initial", argv, workdir)
    if proc.wait(120) != 0:
        raise AssertionError(f"--export-initial failed:\n{proc.output()}")
    proc.kill()
    with np.load(path) as z:
        return path, [z[k] for k in z.files]


def start_python_client(workdir, name, port, target, num_examples, shapes):
    """A stock Flower NumPyClient (flwr.client.start_client) with the same math."""
    argv = [sys.executable, PEER_SCRIPT, f"127.0.0.1:{port}", repr(float(target)),
            str(num_examples), shapes]
    return Proc(name, argv, workdir)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def client_stats(workdir, name):
    return read_json(os.path.join(workdir, f"{name}.stats.json"))


def parse_shapes(text):
    shapes = []
    for part in text.split(";"):
        shapes.append(tuple(int(d) for d in part.split(",")) if part else ())
    return shapes


def quadratic_fit(arrays, target, lr, epochs, mu):
    """What the demo client returns for `arrays`: float64 steps, cast back."""
    out = []
    for a in arrays:
        w = np.asarray(a).astype(np.float64)
        wg = w.copy()
        for _ in range(epochs):
            w = w - lr * ((w - target) + mu * (w - wg))
        out.append(w.astype(np.asarray(a).dtype))
    return out


def quadratic_loss(arrays, target):
    return float(sum(0.5 * np.sum((np.asarray(a, dtype=np.float64) - target) ** 2)
                     for a in arrays))


def fedavg(weighted):
    """Plain weighted average in float64: [(arrays, n)] -> arrays."""
    total = sum(n for _, n in weighted)
    layers = zip(*[[np.asarray(a, dtype=np.float64) * n for a in arrays]
                   for arrays, n in weighted])
    return [sum(layer) / total for layer in layers]


def test_failed(testcase):
    """True if `testcase` (a running unittest.TestCase) has failed so far."""
    result = getattr(getattr(testcase, "_outcome", None), "result", None)
    if result is None:
        return True
    return any(t is testcase for t, _ in result.errors + result.failures)


class Workdir:
    """A temporary directory kept (and printed) if the test fails."""

    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def dump_logs(self):
        for name in sorted(os.listdir(self.path)):
            if name.endswith(".log"):
                with open(os.path.join(self.path, name), "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                print(f"----- {name} -----\n{text[-6000:]}", file=sys.stderr)


def decode_array(d):
    """Inverse of client_flower_server.encode_array."""
    return np.asarray(d["data"], dtype=d["dtype"]).reshape(d["shape"])


RUN_TIMEOUT = 180


class FlowerFederationTest(unittest.TestCase):
    """Base of tests that run a whole Flower federation (server + clients)."""

    def setUp(self):
        self.work = Workdir("petal_client_interop_")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.kill()
        if test_failed(self):
            self.work.dump_logs()
        else:
            shutil.rmtree(self.work.path, ignore_errors=True)

    def run_federation(self, spec, clients, shapes, extra=(), python_clients=()):
        """Starts the server and the clients; waits for everyone to finish.

        `clients` are C++ demo clients, `python_clients` stock Flower
        NumPyClients (client_numpy_peer.py); both as (name, target, n).
        """
        port = free_port()
        spec = dict(spec, port=port)
        server, out_path = start_server(self.work.path, "server", spec)
        self.procs.append(server)
        wait_listening(port, server)
        for name, target, n in clients:
            self.procs.append(start_quadratic_client(self.work.path, name, port, target, n,
                                                     shapes=shapes, extra=extra))
        for name, target, n in python_clients:
            self.procs.append(start_python_client(self.work.path, name, port, target, n, shapes))
        self.assertEqual(server.wait(RUN_TIMEOUT), 0, server.output())
        for p in self.procs[1:]:
            self.assertEqual(p.wait(60), 0, f"{p.name}:\n{p.output()}")
        return read_json(out_path)

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
                arrays = [decode_array(a) for a in res["arrays"]]
                self.assertEqual([a.shape for a in arrays], shapes)
                self.assertTrue(all(a.dtype == np.dtype(dtype) for a in arrays))
                want = quadratic_fit(sent, target, lr, epochs, mu)
                for got, exp in zip(arrays, want):
                    np.testing.assert_array_equal(got, exp)
                self.assertAlmostEqual(res["metrics"]["loss"], quadratic_loss(want, target),
                                       places=9)
                weighted.append((arrays, res["num_examples"]))
            aggregated = [decode_array(a) for a in rec["aggregated"]]
            for got, exp in zip(aggregated, fedavg(weighted)):
                np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-6)
            # Federated evaluation of the aggregate on every client.
            self.assertEqual(rec["evaluate_failures"], [])
            self.assertEqual(len(rec["evaluate_results"]), len(clients))
            total = 0.0
            count = 0
            for res in rec["evaluate_results"]:
                target = res["metrics"]["target"]
                want_loss = np.float32(quadratic_loss(aggregated, target))
                self.assertAlmostEqual(res["loss"], float(want_loss), delta=1e-5 * (1 + want_loss))
                total += res["loss"] * res["num_examples"]
                count += res["num_examples"]
            flower_loss = dict(out["history"]["losses_distributed"])[r]
            self.assertAlmostEqual(flower_loss, total / count, places=6)
            losses.append(flower_loss)
            sent = [a.astype(dtype) for a in aggregated]
        return losses


def decode_array(d):
    return np.asarray(d["data"], dtype=d["dtype"]).reshape(d["shape"])
