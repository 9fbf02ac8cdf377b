"""Process harness for petal-server end-to-end tests (imported by server_*.py tests).

- PetalServer: runs petal-server with a config dict (written as YAML; JSON is
  YAML), captures its log, waits for log lines (event-driven, with timeouts),
  exposes the bound port.
- FlowerClient: runs server_flwr_client.py (a stock flwr NumPyClient joining
  with start_client(transport="grpc-bidi")) and reads its call log.
- Federation: a server plus clients, always torn down (process groups killed)
  in stop(). Clients of other kinds (the C++ petal-client, once it exists) plug
  in through Federation.add_process().
- replay(): what Flower's own strategy computes for the same client updates.

Everything binds 127.0.0.1 port 0 and every wait has a deadline.
"""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from flwr.common import Code, EvaluateRes, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server_flwr_client as known  # noqa: E402  (the clients' arithmetic, for replays)

CLIENT_SCRIPT = os.path.join(HERE, "server_flwr_client.py")


def binary_dir():
    return os.environ["PETAL_BINARY_DIR"]


def petal_server_binary():
    return os.path.join(binary_dir(), "src", "server", "petal-server")


class PetalServer:
    def __init__(self, workdir, config, args=(), name="server"):
        self.workdir = workdir
        self.config_path = os.path.join(workdir, f"{name}.yaml")
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=1)
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.lines = []
        self._queue = queue.Queue()
        self.proc = subprocess.Popen(
            [petal_server_binary(), "--config", self.config_path, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env={**os.environ, "PETAL_LOG_LEVEL": os.environ.get("PETAL_LOG_LEVEL", "info")})
        self._port = None
        self._port_known = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        with open(self.log_path, "w") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                self.lines.append(line)
                m = re.search(r"listening on [^ ]*:(\d+)", line)
                if m and self._port is None:
                    self._port = int(m.group(1))
                    self._port_known.set()
                self._queue.put(line)
        self._queue.put(None)
        self._port_known.set()

    def wait_for(self, pattern, timeout=60):
        """Consumes log lines until one matches `pattern`; returns the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no log line matching {pattern!r} within {timeout}s:\n" + self.text())
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"petal-server exited before logging {pattern!r}:\n" + self.text())
            m = regex.search(line)
            if m:
                return m

    @property
    def port(self):
        if not self._port_known.wait(timeout=60) or self._port is None:
            raise RuntimeError("petal-server did not report a listening port:\n" + self.text())
        return self._port

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def wait(self, timeout=120):
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"petal-server still running after {timeout}s:\n" + self.text())
        self._reader.join(timeout=10)
        return code

    def signal(self, sig):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def text(self):
        return "".join(self.lines[-200:])

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


class FlowerClient:
    def __init__(self, workdir, address, index, behavior="normal", misbehave_round=1,
                 root_certificates=None, tag=""):
        self.index = index
        self.log_path = os.path.join(workdir, f"client{index}{tag}.jsonl")
        self.out_path = os.path.join(workdir, f"client{index}{tag}.out")
        args = [sys.executable, CLIENT_SCRIPT, "--address", address, "--index", str(index),
                "--log", self.log_path, "--behavior", behavior,
                "--misbehave-round", str(misbehave_round)]
        if root_certificates:
            args += ["--root-certificates", root_certificates]
        self._out = open(self.out_path, "w")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def entries(self, method=None):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            out = [json.loads(line) for line in f if line.strip()]
        return [e for e in out if method is None or e["method"] == method]

    def wait(self, timeout=60):
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self._out.close()

    def output(self):
        with open(self.out_path) as f:
            return f.read()[-4000:]


class Federation:
    """A petal-server and its clients; stop() always cleans up."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.servers = []
        self.clients = []
        self.processes = []

    def start_server(self, config, args=(), name="server"):
        server = PetalServer(self.workdir, config, args, name)
        self.servers.append(server)
        return server

    def add_flower_client(self, address, index, **kw):
        c = FlowerClient(self.workdir, address, index, **kw)
        self.clients.append(c)
        return c

    def add_process(self, args, name):
        """Any other client process (e.g. a C++ petal-client); killed in stop()."""
        out = open(os.path.join(self.workdir, f"{name}.out"), "w")
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append((p, out))
        return p

    def stop(self):
        for c in self.clients:
            c.kill()
        for p, out in self.processes:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
            out.close()
        for s in self.servers:
            s.kill()


def base_config(workdir, strategy, rounds=3, **sections):
    """A petal-server config for tests: port 0, short waits, outputs in workdir."""
    config = {
        "server": {"address": "127.0.0.1:0"},
        "run": {"num_rounds": rounds, "round_timeout": 60, "client_wait_timeout": 60,
                "reconnect_timeout": 10},
        "fit_config": {"local_epochs": 2},
        "evaluate_config": {"batch": 64},
        "strategy": strategy,
        "output": {"dir": os.path.join(workdir, "out"),
                   "checkpoint_dir": os.path.join(workdir, "out", "checkpoints")},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


def load_model(path):
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def participants(clients, round_number):
    """Indices of the clients whose fit in `round_number` returned a valid result."""
    return sorted(c.index for c in clients
                  for e in c.entries("fit") if e["round"] == round_number and e["valid"])


def evaluators(clients, round_number):
    return sorted(c.index for c in clients
                  for e in c.entries("evaluate") if e["round"] == round_number)


def replay(strategy, initial, rounds, participants_by_round, evaluators_by_round=None):
    """Runs Flower's `strategy` on the updates the known clients would send.

    Returns the global model after every round (Flower's trajectory) and the
    federated losses Flower would aggregate from the evaluating clients."""
    x = [np.array(a) for a in initial]
    models, losses = [], []
    for r in range(1, rounds + 1):
        ks = participants_by_round[r]
        results = [(None, FitRes(Status(Code.OK, "Success"),
                                 ndarrays_to_parameters(known.fit_arrays(x, k, r)), 10 * (k + 1),
                                 {})) for k in ks]
        params, _ = strategy.aggregate_fit(r, results, [])
        if params is not None:
            x = parameters_to_ndarrays(params)
        models.append([np.array(a) for a in x])
        evals = [(None, EvaluateRes(Status(Code.OK, "Success"), known.evaluate_loss(x, k),
                                    5 * (k + 1), {}))
                 for k in (evaluators_by_round or participants_by_round)[r]]
        losses.append(strategy.aggregate_evaluate(r, evals, [])[0] if evals else None)
    return models, losses
