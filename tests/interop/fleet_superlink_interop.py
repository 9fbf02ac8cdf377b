"""Petal SuperNodes in a real Flower deployment (flwr from PETAL_PYTHON's venv).

Run by ctest as:
    python fleet_superlink_interop.py PATH/TO/petal_fleet_demo_node

One `flower-superlink --insecure` on loopback (free ports, state in a temp
dir, Fleet API over HTTP and, through FLWR_INTERNAL_GRPC_FLEET_API, over gRPC
too) with a separate `flower-superexec` (so that a ServerApp survives a
SuperLink restart) serves every case, in order:

 1. A ServerApp on the current strategy API (flwr.serverapp.strategy.FedAvg,
    3 rounds) run with `flwr run`, 3 Petal nodes (2 over HTTP, 1 over gRPC):
    every round completes, the evaluation loss falls, and the global model and
    losses equal an exact re-computation of FedAvg over the nodes' quadratics.
 2. A ServerApp with a legacy strategy (flwr.server.strategy.FedAvg through
    Flower's DefaultWorkflow, initial model from a node's get_parameters), with
    the same exact check.
 3. A failure in one node's Client: an error reply, counted as a failure in
    that round; the node serves the next round.
 4. A Petal node killed (SIGKILL) mid-run and restarted with its state dir: it
    rejoins, restores its private state and serves the remaining rounds.
 5. Two Petal nodes leave gracefully (SIGTERM), and a mixed run of one stock
    `flower-supernode` with a Python ClientApp plus one Petal node completes
    with the exact expected model.
 6. The SuperLink is killed mid-run and restarted (same database, same ports):
    the nodes reconnect with backoff and the run finishes every round.

Every process is started in its own session and killed in finally blocks.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import numpy as np

import flwr

DEMO = None
VENV_BIN = os.path.dirname(sys.executable)
# flwr >= 1.40 serves the Fleet API over HTTP by default (gRPC-rere only with
# FLWR_INTERNAL_GRPC_FLEET_API=1); older SuperLinks serve gRPC-rere only. The
# test runs against whichever flwr the interpreter has.
FLWR_VERSION = tuple(int(x) for x in flwr.__version__.split(".")[:2])
HTTP_FLEET = FLWR_VERSION >= (1, 40)
# Before 1.37 the `flwr` CLI talks to a gRPC Control API on its own port.
GRPC_CONTROL = FLWR_VERSION < (1, 37)
DIM = 3  # length of w; b has 2 elements
LR = 0.5
STEPS = 2
START_TIMEOUT = 90
RUN_TIMEOUT = 240

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "1.0.0"
description = "Petal Fleet API interop test app"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "petal"

[tool.flwr.app.components]
serverapp = "{name}.server_app:app"
clientapp = "{name}.client_app:app"

[tool.flwr.app.config]
num-server-rounds = 3
min-nodes = 3
lr = {lr}
local-steps = {steps}
fail-seed = -1.0
fail-round = -1
result-file = ""
"""

SERVER_APP = """\
import json

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

app = ServerApp()


class RecordingFedAvg(FedAvg):
    rounds = {}

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        self.rounds[server_round] = {
            "results": sorted(m.metadata.src_node_id for m in replies if not m.has_error()),
            "failures": [m.error.reason for m in replies if m.has_error()],
        }
        return super().aggregate_train(server_round, replies)


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    n = int(cfg["min-nodes"])
    strategy = RecordingFedAvg(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=n,
                               min_evaluate_nodes=n, min_available_nodes=n)
    init = ArrayRecord({"w": Array(np.zeros(3, dtype=np.float32)), "b": Array(np.zeros(2))})
    train_config = ConfigRecord({"lr": float(cfg["lr"]), "local-steps": int(cfg["local-steps"])})
    if int(cfg["fail-round"]) >= 1:
        train_config["fail-round"] = int(cfg["fail-round"])
        train_config["fail-seed"] = float(cfg["fail-seed"])
    result = strategy.start(grid=grid, initial_arrays=init, train_config=train_config,
                            num_rounds=int(cfg["num-server-rounds"]), timeout=600)
    out = {
        "rounds": strategy.rounds,
        "train": {r: dict(m) for r, m in result.train_metrics_clientapp.items()},
        "evaluate": {r: dict(m) for r, m in result.evaluate_metrics_clientapp.items()},
        "arrays": {k: v.numpy().astype(float).tolist() for k, v in result.arrays.items()},
    }
    with open(cfg["result-file"], "w") as f:
        json.dump(out, f)
"""

LEGACY_SERVER_APP = """\
import json

from flwr.common import parameters_to_ndarrays
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg

OUT = {"rounds": {}, "evaluate": {}}


class RecordingFedAvg(FedAvg):
    def __init__(self, result_file, **kwargs):
        super().__init__(**kwargs)
        self.result_file = result_file

    def aggregate_fit(self, server_round, results, failures):
        params, metrics = super().aggregate_fit(server_round, results, failures)
        OUT["rounds"][server_round] = {"results": len(results), "failures": len(failures)}
        if params is not None:
            OUT["arrays"] = [a.astype(float).tolist() for a in parameters_to_ndarrays(params)]
        return params, metrics

    def aggregate_evaluate(self, server_round, results, failures):
        loss, metrics = super().aggregate_evaluate(server_round, results, failures)
        OUT["evaluate"][server_round] = loss
        with open(self.result_file, "w") as f:
            json.dump(OUT, f)
        return loss, metrics


def server_fn(context):
    cfg = context.run_config
    n = int(cfg["min-nodes"])
    strategy = RecordingFedAvg(
        cfg["result-file"], min_fit_clients=n, min_evaluate_clients=n, min_available_clients=n,
        on_fit_config_fn=lambda r: {"lr": float(cfg["lr"]), "local-steps": int(cfg["local-steps"]),
                                    "server-round": r})
    return ServerAppComponents(strategy=strategy,
                               config=ServerConfig(num_rounds=int(cfg["num-server-rounds"])))


app = ServerApp(server_fn=server_fn)
"""

# The same quadratic as petal_fleet_demo_node, as a stock Python ClientApp.
CLIENT_APP = """\
import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


def target(context, size):
    return float(context.node_config["seed"]) + 0.5 * np.arange(size)


@app.train()
def train(msg: Message, context: Context):
    arrays = msg.content["arrays"]
    x = np.concatenate([arrays["w"].numpy().astype(np.float64), arrays["b"].numpy()])
    t = target(context, x.size)
    cfg = msg.content["config"]
    before = float(np.mean((x - t) ** 2))
    for _ in range(int(cfg["local-steps"])):
        x = x - float(cfg["lr"]) * 2.0 * (x - t) / x.size
    state = context.state.config_records.setdefault("demo", ConfigRecord({"fits": 0}))
    state["fits"] = int(state["fits"]) + 1
    reply = RecordDict({
        "arrays": ArrayRecord({"w": Array(x[:3].astype(np.float32)), "b": Array(x[3:])}),
        "metrics": MetricRecord({"num-examples": int(context.node_config["num-examples"]),
                                 "train_loss": before, "fits": int(state["fits"])}),
    })
    return Message(reply, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context):
    arrays = msg.content["arrays"]
    x = np.concatenate([arrays["w"].numpy().astype(np.float64), arrays["b"].numpy()])
    loss = float(np.mean((x - target(context, x.size)) ** 2))
    reply = RecordDict({"metrics": MetricRecord({"num-examples": int(context.node_config["num-examples"]),
                                                 "loss": loss, "mse": loss})})
    return Message(reply, reply_to=msg)
"""


# --- the expected numbers ----------------------------------------------------------

def node_fit(x, seed, lr, steps):
    t = seed + 0.5 * np.arange(x.size)
    x = x.astype(np.float64).copy()
    for _ in range(steps):
        x = x - lr * 2.0 * (x - t) / x.size
    x[:DIM] = x[:DIM].astype(np.float32)
    return x


def node_loss(x, seed):
    t = seed + 0.5 * np.arange(x.size)
    return float(np.mean((x - t) ** 2))


def simulate(rounds, nodes, skip=()):
    """FedAvg over quadratic nodes [(seed, num_examples)]; `skip` holds (round, seed)."""
    x = np.zeros(DIM + 2)
    losses = []
    for r in range(1, rounds + 1):
        fits = [(node_fit(x, s, LR, STEPS), n) for s, n in nodes if (r, s) not in skip]
        total = sum(n for _, n in fits)
        x = sum(n * xi for xi, n in fits) / total
        x[:DIM] = x[:DIM].astype(np.float32)
        total_eval = sum(n for _, n in nodes)
        losses.append(sum(n * node_loss(x, s) for s, n in nodes) / total_eval)
    return x, losses


# --- processes ----------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Proc:
    """A child process in its own session, logging to a file."""

    def __init__(self, name, cmd, log_path, env):
        self.name, self.cmd, self.log_path = name, cmd, log_path
        self.log = open(log_path, "ab")
        self.popen = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def count(self, pattern):
        return len(re.findall(pattern, self.text()))

    def alive(self):
        return self.popen.poll() is None

    def send(self, sig):
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the process group and waits; SIGKILL after `timeout`. Returns the exit code."""
        if self.alive():
            self.send(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.send(signal.SIGKILL)
                self.popen.wait(timeout=10)
        self.send(signal.SIGKILL)  # stray children of the group
        self.log.close()
        return self.popen.returncode


class Deployment:
    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.grpc_port = free_port()
        self.control_port = free_port()
        self.home = os.path.join(root, "flwr_home")
        os.makedirs(self.home)
        with open(os.path.join(self.home, "config.toml"), "w") as f:
            f.write(f'[superlink]\ndefault = "local"\n\n[superlink.local]\n'
                    f'address = "127.0.0.1:{self.control_port if GRPC_CONTROL else self.port}"\n'
                    f'insecure = true\n')
        self.env = dict(os.environ, FLWR_HOME=self.home, FLWR_TELEMETRY_ENABLED="0",
                        FLWR_DISABLE_UPDATE_CHECK="1", FLWR_INTERNAL_GRPC_FLEET_API="1",
                        PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
        self.env.pop("PETAL_LOG_LEVEL", None)
        self.procs = []
        self.runs = 0
        self.superlink = None
        self.superlink_starts = 0

    def log(self, name):
        return os.path.join(self.root, name + ".log")

    def spawn(self, name, cmd):
        proc = Proc(name, cmd, self.log(name), self.env)
        self.procs.append(proc)
        return proc

    def start_superlink(self):
        self.superlink_starts += 1
        self.superlink = self.spawn(f"superlink{self.superlink_starts}", [
            os.path.join(VENV_BIN, "flower-superlink"), "--insecure", "--host", "127.0.0.1",
            "--port", str(self.port), "--fleet-api-address", f"127.0.0.1:{self.grpc_port}",
            "--isolation", "process", "--database", os.path.join(self.root, "state.db"),
            "--disable-runtime-dependency-installation"]
            + (["--control-api-address", f"127.0.0.1:{self.control_port}"] if GRPC_CONTROL else []))
        wait_until(lambda: "Application startup complete" in self.superlink.text()
                   and "Fleet API (gRPC-rere)" in self.superlink.text() or not self.superlink.alive(),
                   START_TIMEOUT, "flower-superlink to start")
        assert self.superlink.alive(), self.superlink.text()

    def start_superexec(self):
        exe = os.path.join(VENV_BIN, "flower-superexec")
        cmd = [exe, "--insecure", "--runtime-api-address", f"127.0.0.1:{self.port}"]
        usage = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60, env=self.env)
        if "--plugin-type" in usage.stdout:  # flwr < 1.37 runs one SuperExec per app type
            cmd += ["--plugin-type", "serverapp"]
        proc = self.spawn("superexec", cmd)
        wait_until(lambda: "Starting Flower SuperExec" in proc.text() or not proc.alive(), START_TIMEOUT,
                   "flower-superexec to start")
        assert proc.alive(), proc.text()
        return proc

    def start_petal(self, name, seed, num_examples, api="http", state_dir=None):
        if not HTTP_FLEET:
            api = "grpc"
        address = f"127.0.0.1:{self.port if api == 'http' else self.grpc_port}"
        cmd = [DEMO, "--superlink", address, "--api", api, "--insecure", "--name", name,
               "--seed", str(seed), "--num-examples", str(num_examples), "--poll-interval", "0.2",
               "--heartbeat-interval", "10", "--max-backoff", "2", "--retry-max-elapsed", "180"]
        if state_dir:
            cmd += ["--state-dir", state_dir]
        proc = self.spawn(name, cmd)
        wait_until(lambda: "connected to the SuperLink" in proc.text() or not proc.alive(), 30,
                   f"{name} to connect")
        assert proc.alive(), proc.text()
        proc.node_id = int(re.findall(r"as node (\d+)", proc.text())[-1])
        return proc

    def start_python_supernode(self, name, seed, num_examples):
        return self.spawn(name, [
            os.path.join(VENV_BIN, "flower-supernode"), "--insecure", "--superlink",
            f"127.0.0.1:{self.port if HTTP_FLEET else self.grpc_port}", "--port", str(free_port()),
            "--node-config", f"seed={float(seed)} num-examples={num_examples}"])

    def flwr(self, *args, timeout=60):
        return subprocess.run([os.path.join(VENV_BIN, "flwr"), *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def start_run(self, app_dir, **config):
        """Starts `flwr run --stream` (one light process that ends with the run); returns it
        once the SuperLink has accepted the run, with its run id."""
        overrides = " ".join(f"{k}={json.dumps(v)}" for k, v in config.items())
        self.runs += 1
        proc = self.spawn(f"flwr-run{self.runs}", [os.path.join(VENV_BIN, "flwr"), "run", app_dir, "local",
                                                   "--run-config", overrides, "--stream"])
        wait_until(lambda: "Successfully started run" in proc.text() or not proc.alive(), 60,
                   "flwr run to start the run")
        found = re.search(r"Successfully started run (\d+)", proc.text())
        assert found, proc.text()
        proc.run_id = int(found.group(1))
        return proc

    def run_status(self, run_id):
        proc = self.flwr("ls", "local", "--run-id", str(run_id), "--format", "json")
        if proc.returncode != 0:
            return "unknown"
        try:
            payload = json.loads(proc.stdout[proc.stdout.index("{"):])
            return payload["runs"][0]["status"]
        except (ValueError, KeyError, IndexError):
            return "unknown"

    def wait_run(self, run, timeout=RUN_TIMEOUT):
        """Waits for the run to finish: mostly by waiting on its `flwr run --stream` process
        (no polling load), checking the status when it ends and every 15 s otherwise (the
        stream may break when the SuperLink restarts)."""
        deadline = time.monotonic() + timeout
        last_check = time.monotonic()
        while time.monotonic() < deadline:
            try:
                run.popen.wait(timeout=3)
                ended = True
            except subprocess.TimeoutExpired:
                ended = False
            if ended or time.monotonic() - last_check > 15:
                last_check = time.monotonic()
                status = self.run_status(run.run_id)
                if status.startswith("finished"):
                    return status
        raise AssertionError(f"run {run.run_id} did not finish within {timeout} s:\n" + run.text()[-3000:])

    def shutdown(self):
        # Nodes and runs first (they leave cleanly while the SuperLink is up), then the rest.
        last = ("superlink", "superexec")
        for proc in reversed([p for p in self.procs if not p.name.startswith(last)]):
            proc.stop(timeout=10)
        for proc in reversed([p for p in self.procs if p.name.startswith(last)]):
            proc.stop(timeout=10)


class FleetSuperLinkInterop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="petal_fleet_")
        cls.dep = Deployment(cls.tmp)
        try:
            cls.app = cls.write_app("petalfleet", SERVER_APP)
            cls.legacy_app = cls.write_app("petalfleetlegacy", LEGACY_SERVER_APP)
            cls.dep.start_superlink()
            cls.dep.start_superexec()
            cls.state_c = os.path.join(cls.tmp, "state_c")
            cls.a = cls.dep.start_petal("petal-a", seed=0, num_examples=10)
            cls.b = cls.dep.start_petal("petal-b", seed=1, num_examples=30)
            cls.c = cls.dep.start_petal("petal-c", seed=2, num_examples=20, api="grpc", state_dir=cls.state_c)
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
    def write_app(cls, name, server_app):
        root = os.path.join(cls.tmp, name)
        os.makedirs(os.path.join(root, name))
        files = {"pyproject.toml": PYPROJECT.format(name=name, lr=LR, steps=STEPS),
                 f"{name}/__init__.py": "", f"{name}/server_app.py": server_app,
                 f"{name}/client_app.py": CLIENT_APP}
        for rel, text in files.items():
            with open(os.path.join(root, rel), "w") as f:
                f.write(textwrap.dedent(text))
        return root

    def run_app(self, app, name, **config):
        result_file = os.path.join(self.tmp, f"{name}.json")
        run = self.dep.start_run(app, **{"result-file": result_file, **config})
        status = self.dep.wait_run(run)
        self.assertEqual(status, "finished:completed", self.dep.superlink.text()[-3000:])
        with open(result_file) as f:
            return json.load(f)

    def assert_model(self, arrays, expected):
        got = np.concatenate([np.asarray(arrays["w"] if isinstance(arrays, dict) else arrays[0]),
                              np.asarray(arrays["b"] if isinstance(arrays, dict) else arrays[1])])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    def test_1_current_api_fedavg_with_three_petal_nodes(self):
        result = self.run_app(self.app, "current", **{"num-server-rounds": 3, "min-nodes": 3})
        ids = sorted([self.a.node_id, self.b.node_id, self.c.node_id])
        for r in ("1", "2", "3"):
            self.assertEqual(result["rounds"][r]["results"], ids)
            self.assertEqual(result["rounds"][r]["failures"], [])
        expected, losses = simulate(3, [(0, 10), (1, 30), (2, 20)])
        self.assert_model(result["arrays"], expected)
        got = [result["evaluate"][r]["loss"] for r in ("1", "2", "3")]
        np.testing.assert_allclose(got, losses, rtol=1e-5)
        self.assertTrue(got[0] > got[1] > got[2], got)
        self.assertEqual(result["evaluate"]["3"]["mse"], result["evaluate"]["3"]["mse"])
        self.assertIn("received train message", self.c.text())  # the gRPC node took part

    def test_2_legacy_strategy_through_the_default_workflow(self):
        result = self.run_app(self.legacy_app, "legacy", **{"num-server-rounds": 2, "min-nodes": 3})
        for r in ("1", "2"):
            self.assertEqual(result["rounds"][r], {"results": 3, "failures": 0})
        expected, losses = simulate(2, [(0, 10), (1, 30), (2, 20)])
        self.assert_model(result["arrays"], expected)
        np.testing.assert_allclose([result["evaluate"][r] for r in ("1", "2")], losses, rtol=1e-5)
        self.assertIn("get_parameters", "".join(p.text() for p in (self.a, self.b, self.c)))

    def test_3_client_failure_is_an_error_reply_not_a_dead_node(self):
        result = self.run_app(self.app, "failure", **{"num-server-rounds": 3, "min-nodes": 3,
                                                      "fail-seed": 1.0, "fail-round": 2})
        self.assertEqual(len(result["rounds"]["1"]["results"]), 3)
        self.assertEqual(result["rounds"]["2"]["results"], sorted([self.a.node_id, self.c.node_id]))
        self.assertEqual(len(result["rounds"]["2"]["failures"]), 1)
        self.assertIn("demo failure injected in round 2", result["rounds"]["2"]["failures"][0])
        self.assertEqual(len(result["rounds"]["3"]["results"]), 3)  # petal-b is still serving
        expected, _ = simulate(3, [(0, 10), (1, 30), (2, 20)], skip={(2, 1)})
        self.assert_model(result["arrays"], expected)
        self.assertTrue(self.b.alive())

    def test_4_petal_node_killed_and_restarted_rejoins(self):
        cls = type(self)
        fits_before = cls.c.count(r"fit \(round")
        replies_before = cls.c.count("sent train reply")
        result_file = os.path.join(self.tmp, "restart_node.json")
        run = self.dep.start_run(self.app, **{"num-server-rounds": 3, "min-nodes": 3,
                                              "result-file": result_file})
        # Kill it between instructions (a node killed in the middle of pushing a reply
        # leaves a push session that Flower only abandons after 180 s).
        wait_until(lambda: cls.c.count("sent train reply") > replies_before, RUN_TIMEOUT,
                   "petal-c's first reply")
        old_id = cls.c.node_id
        cls.c.stop(signal.SIGKILL)
        cls.c = self.dep.start_petal("petal-c-restarted", seed=2, num_examples=20, api="grpc",
                                     state_dir=self.state_c)
        self.assertNotEqual(cls.c.node_id, old_id)
        restored = re.search(r"restored private state from .*: (\d+) local fits", cls.c.text())
        self.assertIsNotNone(restored, cls.c.text())
        self.assertEqual(int(restored.group(1)), fits_before + 1)
        self.assertEqual(self.dep.wait_run(run), "finished:completed")
        with open(result_file) as f:
            result = json.load(f)
        self.assertIn(old_id, result["rounds"]["1"]["results"])
        self.assertIn(cls.c.node_id, result["rounds"]["3"]["results"])
        self.assertEqual(len(result["rounds"]["3"]["results"]), 3)
        self.assertIn("fit (round 3)", cls.c.text())

    def test_5_mixed_run_stock_supernode_and_petal_node(self):
        cls = type(self)
        for node in (cls.a, cls.b):
            self.assertEqual(node.stop(signal.SIGTERM), 0, node.text())
            self.assertIn("left the SuperLink", node.text())
        cls.py = self.dep.start_python_supernode("python-supernode", seed=5, num_examples=15)
        result = self.run_app(self.app, "mixed", **{"num-server-rounds": 2, "min-nodes": 2})
        for r in ("1", "2"):
            self.assertEqual(len(result["rounds"][r]["results"]), 2)
            self.assertIn(cls.c.node_id, result["rounds"][r]["results"])
        expected, losses = simulate(2, [(2, 20), (5, 15)])
        self.assert_model(result["arrays"], expected)
        np.testing.assert_allclose([result["evaluate"][r]["loss"] for r in ("1", "2")], losses, rtol=1e-5)

    def test_6_superlink_restarted_mid_run(self):
        cls = type(self)
        evals_before = cls.c.count("sent evaluate reply")
        result_file = os.path.join(self.tmp, "restart_superlink.json")
        run = self.dep.start_run(self.app, **{"num-server-rounds": 3, "min-nodes": 2,
                                              "result-file": result_file})
        wait_until(lambda: cls.c.count("sent evaluate reply") > evals_before, RUN_TIMEOUT,
                   "the first round to finish")
        self.dep.superlink.stop(signal.SIGKILL)
        wait_until(lambda: cls.c.count("retrying in") >= 1, 60, "petal-c to notice the outage")
        self.dep.start_superlink()
        self.assertEqual(self.dep.wait_run(run), "finished:completed")
        with open(result_file) as f:
            result = json.load(f)
        for r in ("1", "2", "3"):
            self.assertEqual(len(result["rounds"][r]["results"]), 2, result["rounds"])
        expected, _ = simulate(3, [(2, 20), (5, 15)])
        self.assert_model(result["arrays"], expected)
        self.assertTrue(cls.c.alive())
        self.assertTrue(cls.py.alive())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: fleet_superlink_interop.py PATH/TO/petal_fleet_demo_node")
    DEMO = os.path.abspath(sys.argv.pop(1))
    print(f"flwr {flwr.__version__}; demo node {DEMO}", flush=True)
    unittest.main(verbosity=2, failfast=True)
