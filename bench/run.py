#!/usr/bin/env python3
"""Petal vs Flower + PyTorch, side by side on this machine; regenerates BENCHMARKS.md.

  nice -n 10 .venv/bin/python bench/run.py --build build-bench [--reps 3] \\
      [--only micro,memory,client,round,scale,e2e] [--out out/bench] [--markdown BENCHMARKS.md]
  .venv/bin/python bench/run.py --smoke --build build-bench      # CI: seconds, tiny sizes

Every comparison runs both sides alternately in this one invocation (Petal, Flower,
Petal, Flower, ...; --reps pairs) and reports the median of each side, the ratio
Petal/Flower, and the load average (1 min, from /proc/loadavg) seen around the pairs.

Sections (what each side runs; see BENCHMARKS.md for the figures):
  micro   petal_micro_bench (Google Benchmark) vs bench/baselines/flower_micro.py:
          npy encode/decode 1..256 MiB; FedAvg / FedAvg-from-bytes / FedAdam / median / Krum
          over K x P float32; memcpy of the same bytes.
  memory  one round's aggregation peak RSS: bench/server petal_aggregate_bench (streaming)
          vs flower_aggregate_bench.py (Flower's aggregate_fit over the held results).
  client  (a) start-up (`--export-initial`: process start, data, model, write, exit) and
          training samples/s + client peak RSS in a 1-client federation on Flower's server
          (scripts/federate_flower.py): petal-client vs bench/baselines/flower_client.py
          (Flower NumPyClient + PyTorch TagNCF), same partition, same hyperparameters.
  round   (b) round overhead, 100 clients that answer at once (petal_server_loadgen, fixed
          10-float model): petal-server vs Flower's start_server (bench/server/flower_server.py).
  scale   (c) N concurrently connected loadgen clients (100/1000/5000): each server must
          gather all N for one round (min_available_clients = N); server peak RSS, RSS per
          connection.
  e2e     (d) the ML-100K federation (4 clients, Dirichlet 0.5, FedAvg, R rounds):
          petal-server + 4 petal-clients vs Flower server + 4 PyTorch NumPyClients;
          wall time and final HR@10.
Exit status 0 when every run completed and its output parsed; 1 otherwise.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
BASE = os.path.join(ROOT, "bench", "baselines")


# --------------------------------------------------------------------------- helpers

def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_json(text, what):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{what}: no JSON line in output:\n{text[-2000:]}")


class Proc:
    """A child in its own process group; wait() returns (rc, peak RSS MiB) via wait4."""

    def __init__(self, argv, log_path, env=None, cwd=ROOT):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  cwd=cwd, start_new_session=True)
        self.rc = None
        self.rss = None
        self.seconds = None

    def poll(self):
        if self.rc is not None:
            return self.rc
        pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
        if pid == 0:
            return None
        self._done(status, ru)
        return self.rc

    def _done(self, status, ru):
        self.seconds = time.perf_counter() - self.t0
        self.rc = os.waitstatus_to_exitcode(status)
        self.rss = ru.ru_maxrss / 1024.0
        self.p.returncode = self.rc
        self.log.close()

    def wait(self, timeout):
        deadline = time.time() + timeout
        while self.poll() is None:
            if time.time() > deadline:
                self.kill()
                raise TimeoutError(f"{self.log_path}: no exit within {timeout} s")
            time.sleep(0.05)
        return self.rc

    def kill(self):
        if self.rc is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status, ru = os.wait4(self.p.pid, 0)
            self._done(status, ru)

    def text(self):
        with open(self.log_path) as f:
            return f.read()


def run_once(argv, log_path, timeout, env=None):
    """Runs to completion; returns (stdout+stderr text, seconds, peak RSS MiB)."""
    p = Proc(argv, log_path, env=env)
    try:
        rc = p.wait(timeout)
    finally:
        p.kill()
    if rc != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {rc}:\n{p.text()[-3000:]}")
    return p.text(), p.seconds, p.rss


def wait_port_file(path, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            text = open(path).read().strip()
            if text:
                return int(text)
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.rc}:\n{proc.text()[-3000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"no port in {path} after {timeout} s")


def wait_listening(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.rc}:\n{proc.text()[-3000:]}")
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port} after {timeout} s")


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def alternate(reps, petal, flower, results, key):
    """Runs petal(), flower() alternately `reps` times; stores lists + medians + load."""
    rows = {"petal": [], "flower": [], "load": []}
    for _ in range(reps):
        for side, fn in (("petal", petal), ("flower", flower)):
            rows["load"].append(loadavg())
            rows[side].append(fn())
    rows["load"].append(loadavg())
    results[key] = rows
    return rows


def write_yaml(path, doc):
    # JSON is YAML; no PyYAML needed for writing.
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


# --------------------------------------------------------------------------- sections

class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.smoke = args.smoke
        self.reps = 1 if args.smoke else args.reps
        self.micro_reps = 1 if args.smoke else (args.micro_reps or args.reps)
        self.work = tempfile.mkdtemp(prefix="petal-bench-")
        self.results = {}
        self.counter = 0

    def bin(self, rel):
        path = os.path.join(self.build, rel)
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"{path} is missing: build it first (see BENCHMARKS.md)")
        return path

    def log(self, name):
        self.counter += 1
        return os.path.join(self.work, f"{self.counter:04d}-{name}.log")

    def rundir(self, tag):
        self.counter += 1
        path = os.path.join(self.work, f"{self.counter:04d}-{tag}")
        os.makedirs(path)
        return path

    def progress(self, msg):
        print(f"[bench {time.strftime('%H:%M:%S')} load {loadavg():.2f}] {msg}", flush=True)

    # ---- micro ------------------------------------------------------------
    def petal_micro(self, names, min_time):
        pattern = "^(" + "|".join(re.escape(n) for n in names) + ")$"
        text, _, _ = run_once([self.bin("bench/petal_micro_bench"), f"--benchmark_filter={pattern}",
                               "--benchmark_format=json", f"--benchmark_min_time={min_time}"],
                              self.log("micro"), 1800)
        doc = json.loads(text[text.index("{"):])
        out = {}
        for b in doc["benchmarks"]:
            if b.get("error_occurred"):
                raise RuntimeError(f"{b['name']}: {b.get('error_message')}")
            out[b["name"]] = {"seconds": b["real_time"] / 1e3 if b["time_unit"] == "ms"
                              else b["real_time"] / 1e9, "gbps": b["bytes_per_second"] / 1e9}
        missing = [n for n in names if n not in out]
        if missing:
            raise RuntimeError(f"petal_micro_bench did not run {missing}")
        return out

    def flower_micro(self, case, min_time, **kw):
        argv = [PY, os.path.join(BASE, "flower_micro.py"), case, "--min-time", str(min_time)]
        for k, v in kw.items():
            argv += [f"--{k}", str(v)]
        text, _, _ = run_once(argv, self.log("flower-micro"), 1800)
        return last_json(text, "flower_micro.py")

    def micro(self):
        min_time = 0.01 if self.smoke else 0.5
        res = self.results.setdefault("micro", {})
        for mib in ([1] if self.smoke else [1, 16, 256]):
            for op, case in (("NpyEncode", "npy_encode"), ("NpyDecode", "npy_decode")):
                name = f"BM_{op}/MiB:{mib}/real_time"
                cpy = f"BM_MemcpyNpy/MiB:{mib}/real_time"
                self.progress(f"micro {case} {mib} MiB")
                alternate(self.micro_reps, lambda: self.petal_micro([name, cpy], min_time),
                          lambda: self.flower_micro(case, min_time, mib=mib), res,
                          f"{case}/{mib}MiB")
                res[f"{case}/{mib}MiB"]["petal_name"] = name
                res[f"{case}/{mib}MiB"]["memcpy_name"] = cpy
        sizes = [(10, 100_000)] if self.smoke else [(10, 1_000_000), (100, 1_000_000),
                                                   (10, 10_000_000), (100, 10_000_000)]
        robust_sizes = sizes if self.smoke else sizes[:3]
        cases = [("fedavg", "BM_FedAvg/K:{k}/P:{p}/native:0/real_time", "fedavg", sizes),
                 ("fedavg_bytes", "BM_FedAvgDecode/K:{k}/P:{p}/real_time", "fedavg_inplace", sizes),
                 ("fedadam", "BM_FedAdam/K:{k}/P:{p}/real_time", "fedadam", sizes),
                 ("median", "BM_Median/K:{k}/P:{p}/real_time", "median", robust_sizes),
                 ("krum", "BM_Krum/K:{k}/P:{p}/real_time", "krum", robust_sizes)]
        for label, pattern, fcase, case_sizes in cases:
            # FedAdam is stateful: its first round creates the moments m and v, later rounds
            # reuse them. Both sides loop rounds for at least min_time and report the mean per
            # round, first round included; at 10M parameters one round can exceed 0.5 s, which
            # made that mean a single cold first round on one side and several rounds on the
            # other. A 2 s window gives both sides several rounds.
            case_min_time = min_time if (self.smoke or label != "fedadam") else 2.0
            for k, p in case_sizes:
                name = pattern.format(k=k, p=p)
                cpy = f"BM_MemcpyAgg/K:{k}/P:{p}/real_time"
                extra = [name, cpy]
                if label == "fedavg":
                    extra.append(f"BM_FedAvg/K:{k}/P:{p}/native:1/real_time")
                self.progress(f"micro {label} K={k} P={p}")
                alternate(self.micro_reps, lambda: self.petal_micro(extra, case_min_time),
                          lambda: self.flower_micro(fcase, case_min_time, k=k, p=p), res,
                          f"{label}/K{k}/P{p}")
                res[f"{label}/K{k}/P{p}"]["petal_name"] = name
                res[f"{label}/K{k}/P{p}"]["memcpy_name"] = cpy

    # ---- memory -------------------------------------------------------------
    def memory(self):
        res = self.results.setdefault("memory", {})
        sizes = [(10, 100_000)] if self.smoke else [(100, 1_000_000), (100, 10_000_000)]
        for k, p in sizes:
            self.progress(f"memory K={k} P={p}")

            def petal():
                text, _, _ = run_once([self.bin("tests/server/petal_aggregate_bench"), "--clients",
                                       str(k), "--params", str(p), "--arrays", "1"],
                                      self.log("agg-petal"), 1800)
                return last_json(text, "petal_aggregate_bench")

            def flower():
                text, _, _ = run_once([PY, os.path.join(ROOT, "bench/server/flower_aggregate_bench.py"),
                                       "--clients", str(k), "--params", str(p), "--arrays", "1"],
                                      self.log("agg-flower"), 1800)
                return last_json(text, "flower_aggregate_bench.py")

            alternate(self.micro_reps, petal, flower, res, f"K{k}/P{p}")

    # ---- data for the PyTorch clients ----------------------------------------
    def client_files(self):
        if hasattr(self, "_client_files"):
            return self._client_files
        if self.smoke:
            cfg = os.path.join(ROOT, "configs/client.yaml")
            shared = ["data.synthetic.num_users=120", "data.synthetic.num_items=150",
                      "data.synthetic.mean_interactions=20", "partition.num_partitions=2"]
            n = 2
        else:
            cfg = os.path.join(ROOT, "configs/federation/ml100k/client.yaml")
            shared = ["partition.num_partitions=4"]
            n = 4
        data = []
        for pid in range(n):
            out = os.path.join(self.work, f"client{pid}.npz")
            sets = shared + [f"client.partition_id={pid}"]
            argv = [self.bin("bench/petal_bench_export"), "--config", cfg, "--out", out]
            for s in sets:
                argv += ["--set", s]
            run_once(argv, self.log("export"), 600)
            data.append(out)
        self._client_files = (cfg, shared, data)
        return self._client_files

    def petal_client_argv(self, cfg, shared, pid, address, state):
        argv = [self.bin("src/client/petal-client"), "--config", cfg]
        for s in shared + [f"client.partition_id={pid}", f"server.address={address}",
                           f"client.state_dir={state}", "server.connect_timeout=60s"]:
            argv += ["--set", s]
        return argv

    def flower_client_argv(self, cfg, shared, pid, data, address):
        argv = [PY, os.path.join(BASE, "flower_client.py"), "--data", data, "--config", cfg]
        for s in shared + [f"client.partition_id={pid}"]:
            argv += ["--set", s]
        return argv + ["--server", address]

    # ---- federation runner (server + clients) -------------------------------
    def federation(self, stack, clients, rounds, server_kind, tag):
        """Runs one federation; returns wall seconds, history, client RSS/samples."""
        cfg, shared, data = self.client_files()
        run_dir = self.rundir(f"{tag}-{stack}")
        server_cfg = {
            "server": {"address": "127.0.0.1:0"},
            "run": {"num_rounds": rounds, "round_timeout": 600, "client_wait_timeout": 300},
            "fit_config": {"local_epochs": 1},
            "evaluate_config": {},
            "strategy": {"name": "fedavg", "fraction_fit": 1.0, "fraction_evaluate": 1.0,
                         "min_fit_clients": clients, "min_evaluate_clients": clients,
                         "min_available_clients": clients},
            "output": {"dir": os.path.join(run_dir, "server"), "checkpoint_dir": ""},
            "log_level": "info",
        }
        server_yaml = os.path.join(run_dir, "server.yaml")
        port_file = os.path.join(run_dir, "port")
        if server_kind == "petal":
            write_yaml(server_yaml, server_cfg)
            argv = [self.bin("src/server/petal-server"), "--config", server_yaml, "--port-file", port_file]
        else:
            server_cfg.pop("log_level")
            write_yaml(server_yaml, server_cfg)
            argv = [PY, os.path.join(ROOT, "scripts/federate_flower.py"), "--config", server_yaml,
                    "--port-file", port_file]
        t0 = time.perf_counter()
        server = Proc(argv, os.path.join(run_dir, "server.log"))
        procs = []
        try:
            port = wait_port_file(port_file, server)
            address = f"127.0.0.1:{port}"
            for pid in range(clients):
                if stack == "petal":
                    cargv = self.petal_client_argv(cfg, shared, pid, address,
                                                   os.path.join(run_dir, f"state{pid}"))
                else:
                    cargv = self.flower_client_argv(cfg, shared, pid, data[pid], address)
                procs.append(Proc(cargv, os.path.join(run_dir, f"client{pid}.log")))
            server.wait(3600)
            wall = time.perf_counter() - t0
            for c in procs:
                c.wait(120)
        finally:
            for c in procs:
                c.kill()
            server.kill()
        if server.rc != 0:
            raise RuntimeError(f"{stack} server exited {server.rc}:\n{server.text()[-3000:]}")
        bad = [c for c in procs if c.rc != 0]
        if bad:
            raise RuntimeError(f"{stack} client exited {bad[0].rc}:\n{bad[0].text()[-3000:]}")
        with open(os.path.join(run_dir, "server", "history.json")) as f:
            history = json.load(f)
        rounds_done = history["rounds"]
        if len(rounds_done) != rounds or any(r["fit"]["results"] != clients for r in rounds_done):
            raise RuntimeError(f"{stack}: incomplete federation: {json.dumps(rounds_done)[:2000]}")
        hr = history["metrics_distributed"].get("hr@10", [])
        return {"wall_seconds": wall, "rounds": rounds,
                "final_hr10": hr[-1][1] if hr else None,
                "final_ndcg10": history["metrics_distributed"].get("ndcg@10", [[0, None]])[-1][1],
                "samples_per_second_median": med([r["fit"]["metrics"].get("samples_per_second")
                                                  for r in rounds_done]),
                "fit_seconds_median": med([r["fit"]["seconds"] for r in rounds_done]),
                "client_peak_rss_mib": [c.rss for c in procs],
                "server_peak_rss_mib": server.rss}

    # ---- (a) client (plus the same-model check) ---------------------------------------------------------
    def client(self):
        res = self.results.setdefault("client", {})
        cfg, shared, data = self.client_files()
        init = os.path.join(self.work, "init.npz")

        def petal_start():
            argv = self.petal_client_argv(cfg, shared, 0, "127.0.0.1:1",
                                          os.path.join(self.work, "state-export"))
            _, seconds, rss = run_once(argv + ["--export-initial", init], self.log("pc-start"), 300)
            return {"startup_seconds": seconds, "peak_rss_mib": rss}

        def flower_start():
            argv = self.flower_client_argv(cfg, shared, 0, data[0], "")[:-2]
            _, seconds, rss = run_once(argv + ["--export-initial", init], self.log("fc-start"), 300)
            return {"startup_seconds": seconds, "peak_rss_mib": rss}

        self.progress("client start-up")
        alternate(1 if self.smoke else max(self.reps, 3), petal_start, flower_start, res, "startup")
        # Same model: petal-client's initial global arrays load into the PyTorch model
        # (same count, order and shapes), else this fails.
        text, _, _ = run_once(self.flower_client_argv(cfg, shared, 0, data[0], "")[:-2]
                              + ["--check-initial", init], self.log("check-initial"), 300)
        res["same_global_arrays"] = last_json(text, "flower_client.py --check-initial")["global_arrays"]
        res["same_model"] = self.same_model_check()
        rounds = 1 if self.smoke else 3
        self.progress(f"client training, 1 client x {rounds} rounds on Flower's server")
        alternate(self.reps, lambda: self.federation("petal", 1, rounds, "flower", "train"),
                  lambda: self.federation("flower", 1, rounds, "flower", "train"), res, "train")

    def same_model_check(self):
        """petal-train (1 epoch, pooled data) saves its model; the PyTorch model loads every
        parameter by name and evaluates the same ranking cases: the metrics must agree to
        float rounding (same forward, tag features, cases and metric definitions)."""
        self.progress("same-model check: petal-train model evaluated by the PyTorch model")
        if self.smoke:
            central = os.path.join(ROOT, "configs/centralized.yaml")
            sets = ["data.synthetic.num_users=120", "data.synthetic.num_items=150",
                    "data.synthetic.mean_interactions=20"]
            client_cfg = os.path.join(ROOT, "configs/client.yaml")
        else:
            central = os.path.join(ROOT, "configs/federation/ml100k/centralized.yaml")
            sets = []
            client_cfg = os.path.join(ROOT, "configs/federation/ml100k/client.yaml")
        out = self.rundir("same-model")
        argv = [self.bin("src/model/petal-train"), "--config", central, "--out", out,
                "--set", "train.epochs=1", "--set", "output.save_model=true"]
        for x in sets:
            argv += ["--set", x]
        run_once(argv, self.log("petal-train"), 600)
        with open(os.path.join(out, "metrics.json")) as f:
            petal = json.load(f)["epochs"][-1]
        data = os.path.join(out, "all.npz")
        argv = [self.bin("bench/petal_bench_export"), "--config", client_cfg, "--out", data,
                "--set", "partition.num_partitions=1", "--set", "partition.scheme=iid"]
        for x in sets:
            argv += ["--set", x]
        run_once(argv, self.log("export-all"), 600)
        text, _, _ = run_once([PY, os.path.join(BASE, "flower_client.py"), "--data", data,
                               "--config", client_cfg, "--check-model", os.path.join(out, "model.npz")]
                              + sum([["--set", x] for x in sets], []), self.log("check-model"), 600)
        torch_ev = last_json(text, "flower_client.py --check-model")["evaluate"]
        row = {"petal": {"hr@10": petal["hr@10"], "ndcg@10": petal["ndcg@10"], "loss": petal["eval_loss"]},
               "pytorch": {"hr@10": torch_ev["hr@10"], "ndcg@10": torch_ev["ndcg@10"],
                           "loss": torch_ev["loss"]}}
        row["max_abs_diff"] = max(abs(row["petal"][k] - row["pytorch"][k]) for k in row["petal"])
        if row["max_abs_diff"] > 1e-4:
            raise RuntimeError(f"the PyTorch model does not reproduce Petal's metrics: {row}")
        return row

    # ---- (b) round overhead ---------------------------------------------------
    def loadgen_federation(self, kind, clients, rounds, tag, loadgen_args, timeout):
        run_dir = self.rundir(f"{tag}-{kind}")
        initial = os.path.join(run_dir, "tiny.npz")
        import numpy as np
        np.savez(initial, np.ones(10, np.float32))
        if kind == "petal":
            cfg = {"server": {"address": "127.0.0.1:0"},
                   "run": {"num_rounds": rounds, "initial_parameters": initial,
                           "reconnect_timeout": 30, "client_wait_timeout": timeout},
                   "strategy": {"name": "fedavg", "min_fit_clients": clients,
                                "min_evaluate_clients": clients, "min_available_clients": clients},
                   "output": {"dir": os.path.join(run_dir, "out"), "checkpoint_dir": ""},
                   "log_level": "info"}
            cfg_path = os.path.join(run_dir, "petal.yaml")
            write_yaml(cfg_path, cfg)
            port_file = os.path.join(run_dir, "port")
            server = Proc([self.bin("src/server/petal-server"), "--config", cfg_path, "--port-file",
                           port_file], os.path.join(run_dir, "server.log"))
        else:
            out_json = os.path.join(run_dir, "flower.json")
            port = free_port()
            server = Proc([PY, os.path.join(ROOT, "bench/server/flower_server.py"), str(port),
                           str(rounds), str(clients), out_json, initial],
                          os.path.join(run_dir, "server.log"))
        lg = None
        t0 = time.perf_counter()
        try:
            if kind == "petal":
                port = wait_port_file(port_file, server)
            else:
                wait_listening(port, server)
            lg = Proc([self.bin("tests/server/petal_server_loadgen"), "--server", f"127.0.0.1:{port}",
                       "--clients", str(clients), *loadgen_args], os.path.join(run_dir, "loadgen.log"))
            server.wait(timeout)
            wall = time.perf_counter() - t0
            lg.wait(60)
        except TimeoutError:
            return {"ok": False, "error": f"timed out after {timeout} s", "server_peak_rss_mib":
                    (server.kill(), server.rss)[1], "clients": clients}
        finally:
            if lg:
                lg.kill()
            server.kill()
        if server.rc != 0:
            return {"ok": False, "error": f"server exited {server.rc}: {server.text()[-500:]}",
                    "server_peak_rss_mib": server.rss, "clients": clients}
        if kind == "petal":
            with open(os.path.join(run_dir, "out", "history.json")) as f:
                h = json.load(f)
            rows = [{"fit": r["fit"]["seconds"], "evaluate": r["evaluate"]["seconds"],
                     "results": r["fit"]["results"]} for r in h["rounds"]]
        else:
            with open(out_json) as f:
                h = json.load(f)
            rows = [{"fit": r["fit_seconds"], "evaluate": r["evaluate_seconds"],
                     "results": r["fit_results"]} for r in h["rounds"]]
        ok = len(rows) == rounds and all(r["results"] == clients for r in rows)
        later = rows[1:] if len(rows) > 1 else rows
        return {"ok": ok, "clients": clients, "wall_seconds": wall,
                "fit_ms_median": 1000 * med([r["fit"] for r in later]),
                "round_ms_median": 1000 * med([r["fit"] + r["evaluate"] for r in later]),
                "server_peak_rss_mib": server.rss}

    def round_overhead(self):
        res = self.results.setdefault("round", {})
        clients, rounds = (10, 3) if self.smoke else (100, 20)
        self.progress(f"round overhead: {clients} instant clients x {rounds} rounds")
        args = ["--mode", "fixed", "--params", "10"]
        alternate(self.reps, lambda: self.loadgen_federation("petal", clients, rounds, "round", args, 600),
                  lambda: self.loadgen_federation("flower", clients, rounds, "round", args, 600),
                  res, f"{clients} instant clients")

    # ---- (c) scale -------------------------------------------------------------
    def scale(self):
        res = self.results.setdefault("scale", {})
        sizes = [20] if self.smoke else [100, 1000, 5000]
        timeout = 60 if self.smoke else self.args.scale_timeout
        for n in sizes:
            self.progress(f"scale: {n} concurrently connected clients")
            args = ["--mode", "fixed", "--params", "10", "--channels", str(max(1, n // 500))]
            alternate(1,
                      lambda: self.loadgen_federation("petal", n, 1, "scale", args, timeout),
                      lambda: self.loadgen_federation("flower", n, 1, "scale", args, timeout),
                      res, f"{n}")

    # ---- (d) end to end --------------------------------------------------------
    def e2e(self):
        res = self.results.setdefault("e2e", {})
        clients = 2 if self.smoke else 4
        rounds = 1 if self.smoke else self.args.e2e_rounds
        self.progress(f"end to end: {clients} clients x {rounds} rounds, both stacks")
        alternate(self.args.e2e_reps if not self.smoke else 1,
                  lambda: self.federation("petal", clients, rounds, "petal", "e2e"),
                  lambda: self.federation("flower", clients, rounds, "flower", "e2e"), res,
                  f"{'synthetic' if self.smoke else 'ML-100K'} {clients} clients x {rounds} rounds")


# --------------------------------------------------------------------------- report

def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    versions = {}
    try:
        import flwr
        import numpy
        versions = {"flwr": flwr.__version__, "numpy": numpy.__version__}
        import torch
        versions["torch"] = torch.__version__
    except ImportError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "mem_gib": round(mem, 1),
            "kernel": platform.release(), "python": platform.python_version(), **versions}


def fmt(v, digits=3):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def load_range(rows):
    return f"{min(rows['load']):.1f}-{max(rows['load']):.1f}"


def table(results):
    """Rows: (section, figure, petal, flower, ratio, better, target, load)."""
    out = []

    def add(section, figure, p, f, better, target="", load=""):
        ratio = (p / f) if (p is not None and f not in (None, 0)) else None
        out.append((section, figure, fmt(p), fmt(f), fmt(ratio), better, target, load))

    micro = results.get("micro", {})
    for key, rows in micro.items():
        p = med([r[rows["petal_name"]]["gbps"] for r in rows["petal"]])
        c = med([r[rows["memcpy_name"]]["gbps"] for r in rows["petal"]])
        f = med([r["gbps"] for r in rows["flower"]])
        target = ""
        if key.startswith(("fedavg/", "fedavg_bytes/", "fedadam/")):
            target = f">=5x Flower: {fmt(p / f if f else None)}x; memcpy {fmt(c)} GB/s, " \
                     f"Petal at {fmt(c / p if p else None)}x below (<=2x wanted)"
        else:
            target = f"memcpy {fmt(c)} GB/s"
        add("micro", f"{key} GB/s", p, f, "higher", target, load_range(rows))
        if key.startswith("fedavg/"):
            native = [r[n]["gbps"] for r in rows["petal"] for n in r if n.endswith("native:1/real_time")]
            add("micro", f"{key} GB/s (Petal native float32 accumulation)", med(native), f,
                "higher", "", load_range(rows))
    for key, rows in results.get("memory", {}).items():
        p = med([r["rss_peak_mib"] if "rss_peak_mib" in r else r.get("peak_rss_mib") for r in rows["petal"]])
        f = med([r["rss_peak_mib"] if "rss_peak_mib" in r else r.get("peak_rss_mib") for r in rows["flower"]])
        model_mib = int(key.split("/P")[1]) * 4 / 2 ** 20
        add("memory", f"aggregation peak RSS MiB, {key} (model {model_mib:.0f} MiB)", p, f, "lower",
            "O(model)", load_range(rows))
        pt = med([r.get("total_seconds") for r in rows["petal"]])
        ft = med([r.get("total_seconds") for r in rows["flower"]])
        add("memory", f"aggregation seconds (generated results, aggregate_bench), {key}", pt, ft, "lower",
            "", load_range(rows))
    client = results.get("client", {})
    if "startup" in client:
        rows = client["startup"]
        add("client", "start-up seconds (--export-initial: data + model + write)",
            med([r["startup_seconds"] for r in rows["petal"]]),
            med([r["startup_seconds"] for r in rows["flower"]]), "lower", "< 0.5 s", load_range(rows))
        add("client", "start-up peak RSS MiB", med([r["peak_rss_mib"] for r in rows["petal"]]),
            med([r["peak_rss_mib"] for r in rows["flower"]]), "lower", "", load_range(rows))
    if "same_model" in client:
        sm = client["same_model"]
        out.append(("client", "same model: petal-train's 1-epoch model evaluated by each side "
                    "(HR@10; NDCG@10, loss in results.json)", fmt(sm["petal"]["hr@10"], 6),
                    fmt(sm["pytorch"]["hr@10"], 6), "", "equal",
                    f"max abs diff of HR/NDCG/loss {sm['max_abs_diff']:.1e}", ""))
    if "train" in client:
        rows = client["train"]
        add("client", "training samples/s (1 client, 1 thread, median over rounds)",
            med([r["samples_per_second_median"] for r in rows["petal"]]),
            med([r["samples_per_second_median"] for r in rows["flower"]]), "higher", ">= 2x",
            load_range(rows))
        add("client", "client peak RSS MiB (training run)",
            med([r["client_peak_rss_mib"][0] for r in rows["petal"]]),
            med([r["client_peak_rss_mib"][0] for r in rows["flower"]]), "lower", "", load_range(rows))
        add("client", "HR@10 after the training run (equal quality)",
            med([r["final_hr10"] for r in rows["petal"]]),
            med([r["final_hr10"] for r in rows["flower"]]), "equal", "", load_range(rows))
    for key, rows in results.get("round", {}).items():
        add("round", f"fit phase ms per round, {key}",
            med([r.get("fit_ms_median") for r in rows["petal"]]),
            med([r.get("fit_ms_median") for r in rows["flower"]]), "lower", ">= 5x lower",
            load_range(rows))
        add("round", f"fit + evaluate ms per round, {key}",
            med([r.get("round_ms_median") for r in rows["petal"]]),
            med([r.get("round_ms_median") for r in rows["flower"]]), "lower", ">= 5x lower",
            load_range(rows))
        add("round", f"server peak RSS MiB, {key}",
            med([r.get("server_peak_rss_mib") for r in rows["petal"]]),
            med([r.get("server_peak_rss_mib") for r in rows["flower"]]), "lower", "", load_range(rows))
    scale = results.get("scale", {})
    for key, rows in scale.items():
        p, f = rows["petal"][0], rows["flower"][0]
        out.append(("scale", f"{key} connected clients: round completed", fmt(p["ok"]), fmt(f["ok"]),
                    "", "yes", ">= 5,000", load_range(rows)))
        add("scale", f"{key} clients: server peak RSS MiB", p.get("server_peak_rss_mib"),
            f.get("server_peak_rss_mib"), "lower", "", load_range(rows))
    keys = sorted(scale, key=int)
    if len(keys) >= 2:
        per_conn, spans = [], []
        for side in ("petal", "flower"):
            done = [k for k in keys if scale[k][side][0].get("ok")]
            if len(done) >= 2:
                lo, hi = done[0], done[-1]
                per_conn.append((scale[hi][side][0]["server_peak_rss_mib"]
                                 - scale[lo][side][0]["server_peak_rss_mib"]) * 1024 / (int(hi) - int(lo)))
                spans.append(f"{side} {lo}->{hi}")
            else:
                per_conn.append(None)
        add("scale", "server RSS KiB per connected client (peak RSS slope between the smallest and "
            "largest N that completed)", per_conn[0], per_conn[1], "lower", "; ".join(spans))
    for key, rows in results.get("e2e", {}).items():
        add("e2e", f"wall seconds, {key}", med([r["wall_seconds"] for r in rows["petal"]]),
            med([r["wall_seconds"] for r in rows["flower"]]), "lower", "", load_range(rows))
        add("e2e", f"final HR@10, {key}", med([r["final_hr10"] for r in rows["petal"]]),
            med([r["final_hr10"] for r in rows["flower"]]), "equal", "match within noise",
            load_range(rows))
        add("e2e", f"final NDCG@10, {key}", med([r["final_ndcg10"] for r in rows["petal"]]),
            med([r["final_ndcg10"] for r in rows["flower"]]), "equal", "", load_range(rows))
        add("e2e", f"client samples/s (clients share 2 cores), {key}",
            med([r["samples_per_second_median"] for r in rows["petal"]]),
            med([r["samples_per_second_median"] for r in rows["flower"]]), "higher", "",
            load_range(rows))
        add("e2e", f"client peak RSS MiB, {key}",
            med([max(r["client_peak_rss_mib"]) for r in rows["petal"]]),
            med([max(r["client_peak_rss_mib"]) for r in rows["flower"]]), "lower", "", load_range(rows))
    return out


NOTES = """\
## How each figure is made

All figures come from one invocation of `bench/run.py`; each comparison runs Petal then
Flower, `reps` times in a row (A B A B ...), and the table shows the median of each side.
The load average column is the 1-minute load seen before and after the runs of that row
(the machine is shared; figures taken under load are slower on both sides).

- **micro**: `petal_micro_bench` (Google Benchmark, `bench/micro/micro_bench.cc`) against
  `bench/baselines/flower_micro.py` (flwr.common `ndarray_to_bytes`/`bytes_to_ndarray`,
  flwr.server.strategy.aggregate `aggregate`, `aggregate_inplace`, `aggregate_median`,
  `aggregate_krum`, `FedAdam.aggregate_fit`). GB/s = input bytes (K x P x 4) / time.
  Both sides draw result k from the same kind of pool of 8 distinct random float32 arrays
  (k mod 8), so K = 100 x P = 10M streams 320 MB, not 4 GB. `fedavg` is the numeric kernel
  (Petal `WeightedAverage` float64 accumulation vs Flower `aggregate`); `fedavg_bytes`
  starts from the parsed .npy bytes of each result (Petal: `DecodeNpy(std::string&&)`, which
  takes the bytes over and views them without a copy, as petal-server does with each FitRes,
  + `WeightedAverage`; Flower: its default FedAvg path `aggregate_inplace`, whose `np.load`
  copies); `fedadam` adds one FedAdam server step and is timed over at least 2 s of
  rounds on both sides (the others over 0.5 s), so that the first round, which creates
  the optimizer state, is averaged with later ones on both sides alike; the memcpy column is
  `BM_MemcpyAgg`/`BM_MemcpyNpy`, a memcpy of the same input bytes (the machine's ceiling;
  `BM_MemcpyNpy` copies into a fresh allocation each time, as encode/decode do). Petal's
  FedAvg accumulates in float64 (its default `accumulation: float64`), so it moves 4 input
  bytes plus 16 accumulator bytes per element and result; `native` is the float32-order
  mode. Debian's libbenchmark prints "Library was built as DEBUG": that is the harness
  library's own build; the measured code is Petal's RelWithDebInfo build (kernels -O3).
- **memory**: peak RSS of one round's aggregation of K results of P float32:
  `petal_aggregate_bench` (results arrive one at a time and are dropped after folding,
  as petal-server does) vs `flower_aggregate_bench.py` (Flower's `aggregate_fit` over the
  list of K results, as Flower's server holds them). Both from bench/server.
- **client**: start-up = wall time of `--export-initial` (process start, data, model,
  write the initial global arrays, exit). petal-client parses ML-100K's raw files and
  splits/partitions them; the PyTorch client reads the already-exported partition (.npz
  from `petal_bench_export`), imports flwr, numpy and torch. Training: one client
  (partition 0 of 4, Dirichlet 0.5) in a 1-client federation on Flower's own server
  (`scripts/federate_flower.py`), 1 local epoch per round, 1 thread on both sides, median
  of the `samples_per_second` fit metric over rounds; peak RSS of the client process
  (wait4). The PyTorch model (`bench/baselines/tag_ncf_torch.py`) mirrors TagNcf: same
  layers, sizes, initialization scheme, BCE with 4 sampled negatives, Adam with the same
  parameter groups, embedding_reg, batch 256, lr 1e-3, leave-one-out HR@10 / NDCG@10.
  Same-model check (every run, smoke included): `petal-train` trains 1 epoch on the pooled
  data and saves every parameter; the PyTorch model loads them by name and evaluates the
  same ranking cases; HR@10, NDCG@10 and the loss must agree within 1e-4 (they agree to
  ~1e-15), which pins the forward pass, the tag features and the metrics to Petal's.
  Training itself differs only in random streams (negatives, order, initial values).
- **round**: 100 `petal_server_loadgen` streams that answer every instruction at once
  with a 10-float model; 20 rounds of FedAvg; median fit-phase and fit+evaluate times of
  rounds 2..20; petal-server vs `bench/server/flower_server.py` (`start_server`).
- **scale**: N loadgen streams (N/500 HTTP/2 connections); the server must see all N
  clients connected at once (min_available_clients = N) and finish one round with N
  results within the timeout (`--scale-timeout`, default 120 s). RSS per connection =
  (peak RSS at the largest N that completed - at the smallest N) / (difference in N).
  Flower's legacy gRPC server runs each Join stream on a thread of a pool of
  `max_concurrent_workers = 1000` (its default in
  flwr/server/superlink/fleet/grpc_bidi/grpc_server.py; `start_server` does not expose it),
  so with its defaults it cannot serve more than 1,000 streams at once. The harness keeps
  Flower's defaults (it neither tunes the baseline down nor up).
- **e2e**: the ML-100K federation of configs/federation/ml100k (4 clients, Dirichlet 0.5,
  FedAvg, 1 local epoch per round): petal-server + 4 petal-clients against Flower's server
  (`scripts/federate_flower.py`) + 4 PyTorch NumPyClients on the same partitions. Wall time
  from server start to server exit; final distributed HR@10 / NDCG@10.
"""


def targets(results):
    """The issue's targets, each with the figure it is judged on and met / not met."""
    rows = []

    def verdict(ok):
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    micro = results.get("micro", {})
    for key in [k for k in micro if k.startswith(("fedavg/", "fedavg_bytes/", "fedadam/"))]:
        r = micro[key]
        p = med([x[r["petal_name"]]["gbps"] for x in r["petal"]])
        c = med([x[r["memcpy_name"]]["gbps"] for x in r["petal"]])
        f = med([x["gbps"] for x in r["flower"]])
        rows.append((f"Aggregation >= 5x Flower ({key})", f"{p / f:.2f}x", verdict(p / f >= 5)))
        rows.append((f"Aggregation within 2x of memcpy ({key})", f"memcpy/Petal = {c / p:.2f}",
                     verdict(c / p <= 2)))
    for key, r in results.get("memory", {}).items():
        p = med([x.get("peak_rss_mib") for x in r["petal"]])
        model_mib = int(key.split("/P")[1]) * 4 / 2 ** 20
        k = int(key.split("/")[0][1:])
        rows.append((f"Aggregation peak memory O(model) ({key}; rule: <= 4 x model + 64 MiB)",
                     f"{p:.0f} MiB for a {model_mib:.0f} MiB model ({k} results = {k * model_mib:.0f} MiB)",
                     verdict(p <= 4 * model_mib + 64)))
    client = results.get("client", {})
    if "train" in client:
        r = client["train"]
        p = med([x["samples_per_second_median"] for x in r["petal"]])
        f = med([x["samples_per_second_median"] for x in r["flower"]])
        hp = med([x["final_hr10"] for x in r["petal"]])
        hf = med([x["final_hr10"] for x in r["flower"]])
        rows.append(("Client training >= 2x PyTorch samples/s at equal quality",
                     f"{p / f:.2f}x (HR@10 {hp:.3f} vs {hf:.3f})", verdict(p / f >= 2)))
    if "startup" in client:
        p = med([x["startup_seconds"] for x in client["startup"]["petal"]])
        rows.append(("Client start-up < 0.5 s", f"{p:.2f} s", verdict(p < 0.5)))
    for key, r in results.get("round", {}).items():
        p = med([x.get("round_ms_median") for x in r["petal"]])
        f = med([x.get("round_ms_median") for x in r["flower"]])
        rows.append((f"Round overhead >= 5x lower than Flower ({key}, fit + evaluate)",
                     f"{f / p:.1f}x lower ({p:.1f} vs {f:.1f} ms)", verdict(f / p >= 5)))
    scale = results.get("scale", {})
    if scale:
        done = [int(k) for k in scale if scale[k]["petal"][0].get("ok")]
        best = max(done) if done else 0
        rows.append(("Scale >= 5,000 concurrently connected clients",
                     f"largest N tried that completed: {best:,}", verdict(best >= 5000)))
    return rows


def markdown(doc):
    m = doc["machine"]
    lines = [
        "# Benchmarks: Petal vs Flower + PyTorch",
        "",
        "Generated by `bench/run.py` (do not edit by hand; re-run it to regenerate).",
        "",
        f"- Date: {doc['started'][:10]} (run {doc['started']} .. {doc['finished']} UTC)",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, Linux {m['kernel']}; "
        f"the load average column shows what ran beside each row (the benchmark's own processes "
        f"included)",
        f"- Software: Python {m['python']}, flwr {m.get('flwr')}, numpy {m.get('numpy')}, "
        f"torch {m.get('torch')} (Debian python3-torch; Petal links Debian LibTorch 1.13.1)",
        f"- Command: `{doc['command']}`",
        f"- Alternating pairs per comparison: micro and memory {doc.get('micro_reps', doc['reps'])}, "
        f"client and round {doc['reps']} (start-up at least 3), scale 1, e2e {doc.get('e2e_reps', 1)}; "
        f"`uptime` at the end: `{doc['uptime']}`",
    ]
    if doc["failures"]:
        lines.append("- FAILED sections: " + "; ".join(f.splitlines()[0] for f in doc["failures"]))
    lines += ["", "| section | figure | Petal | Flower | Petal/Flower | better | target / note | load avg (1 min) |",
              "|---|---|---|---|---|---|---|---|"]
    for row in table(doc["results"]):
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    lines += ["", "## Targets (issue 8)", "", "| target | where we stand | verdict |", "|---|---|---|"]
    try:
        for row in targets(doc["results"]):
            lines.append("| " + " | ".join(row) + " |")
    except (KeyError, TypeError, ZeroDivisionError, ValueError) as e:
        lines.append(f"| (cannot evaluate: {e!r}) | | |")
    lines += ["", NOTES]
    extra = doc.get("notes", "")
    if extra:
        lines += ["## Notes of this run", "", extra]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--build", default="build-bench", help="build tree with the binaries")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one pair each (CI)")
    ap.add_argument("--reps", type=int, default=3, help="alternating pairs per comparison")
    ap.add_argument("--micro-reps", type=int, default=0,
                    help="pairs for the micro and memory sections (default --reps)")
    ap.add_argument("--e2e-rounds", type=int, default=20)
    ap.add_argument("--e2e-reps", type=int, default=1)
    ap.add_argument("--scale-timeout", type=int, default=120,
                    help="seconds each server gets to gather N clients and finish the round")
    ap.add_argument("--only", default="micro,memory,client,round,scale,e2e")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "bench"), help="results folder")
    ap.add_argument("--markdown", default="", help="also write this Markdown table file")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    ap.add_argument("--notes", default="", help="a file whose text goes under 'Notes of this run'")
    ap.add_argument("--render", default="", help="only re-render --markdown from this results.json")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            doc = json.load(f)
        if args.notes:
            doc["notes"] = open(args.notes).read()
        md = markdown(doc)
        with open(args.markdown or os.path.join(os.path.dirname(args.render), "BENCHMARKS.md"), "w") as f:
            f.write(md + "\n")
        print(md)
        return 0
    if "PETAL_DATA_DIR" not in os.environ and not args.smoke and \
            any(s in args.only for s in ("client", "e2e")):
        ap.error("PETAL_DATA_DIR must point at a folder with ml-100k/ (client and e2e sections)")
    os.makedirs(args.out, exist_ok=True)
    bench = Bench(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    failures = []
    sections = {"micro": bench.micro, "memory": bench.memory, "client": bench.client,
                "round": bench.round_overhead, "scale": bench.scale, "e2e": bench.e2e}
    for name in args.only.split(","):
        try:
            sections[name]()
        except Exception as e:  # report and go on with the next section
            failures.append(f"{name}: {e}")
            print(f"[bench] section {name} FAILED: {e}", file=sys.stderr, flush=True)
    for name in args.only.split(","):
        if not bench.results.get(name) and not any(f.startswith(name + ":") for f in failures):
            failures.append(f"{name}: produced no results")
    doc = {"started": started.isoformat(timespec="seconds"),
           "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "command": " ".join([os.path.relpath(PY, ROOT) if PY.startswith(ROOT) else PY] + sys.argv),
           "smoke": args.smoke, "reps": bench.reps, "micro_reps": bench.micro_reps,
           "e2e_reps": 1 if args.smoke else args.e2e_reps, "machine": machine(),
           "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
           "failures": failures, "results": bench.results,
           "notes": open(args.notes).read() if args.notes else ""}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    try:
        md = markdown(doc)
    except Exception as e:  # a figure that does not parse fails the run
        print(f"[bench] cannot render the table: {e!r}", file=sys.stderr)
        raise
    with open(os.path.join(args.out, "BENCHMARKS.md"), "w") as f:
        f.write(md + "\n")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md + "\n")
    print(md)
    print(f"[bench] results in {args.out}/results.json; work folder {bench.work}"
          + ("" if args.keep else " (removed)"))
    if not args.keep:
        shutil.rmtree(bench.work, ignore_errors=True)
    if failures:
        print("[bench] FAILED sections:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
