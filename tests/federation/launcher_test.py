"""End-to-end tests of scripts/federate (the local launcher) and petal-sim.

Run by ctest (tests/federation/CMakeLists.txt) with PETAL_SOURCE_DIR and
PETAL_BINARY_DIR set; needs petal-server, petal-client, petal-train and
petal-sim built in PETAL_BINARY_DIR. Every run uses its own output folder, and
every test checks that no process mentioning that folder is left afterwards.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE = os.environ.get("PETAL_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("PETAL_BINARY_DIR", os.path.join(SOURCE, "build"))
FEDERATE = os.path.join(SOURCE, "scripts", "federate")
TINY = os.path.join(SOURCE, "tests", "federation", "tiny.yaml")
SIM = os.path.join(BINARY, "src", "client", "sim", "petal-sim")


def processes_mentioning(text):
    """PIDs of live processes whose command line contains `text` (zombies excluded)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != b"Z":
            found.append((int(pid), cmdline))
    return found


class LauncherTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="petal_federate_")
        self.out = os.path.join(self.tmp, "run")
        self.launcher = None

    def tearDown(self):
        if self.launcher is not None and self.launcher.poll() is None:
            os.killpg(self.launcher.pid, signal.SIGKILL)
            self.launcher.wait()
        leftovers = processes_mentioning(self.tmp)
        for pid, _ in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.assertEqual(leftovers, [], "processes left running")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def federate(self, *args, timeout=240):
        return subprocess.run([FEDERATE, *args, "--build-dir", BINARY], capture_output=True,
                              text=True, timeout=timeout, cwd=SOURCE)

    def start(self, *args):
        """The launcher in the background (own process group), stdout line-readable."""
        self.launcher = subprocess.Popen(
            [FEDERATE, "run", TINY, "--build-dir", BINARY, "--out", self.out, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=SOURCE,
            start_new_session=True)
        return self.launcher

    def read_until(self, proc, needle, timeout=120):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if needle in line:
                return seen
        self.fail(f"'{needle}' not seen; output:\n{''.join(seen[-40:])}")

    def assert_no_processes(self):
        # The launcher has returned: its teardown must already have reaped everything.
        leftovers = processes_mentioning(self.out)
        self.assertEqual(leftovers, [], "orphans after the launcher exited")

    def history(self):
        with open(os.path.join(self.out, "server", "history.json"), encoding="utf-8") as f:
            return json.load(f)

    # -- tests ------------------------------------------------------------------
    def test_run_completes_every_round_and_streams_prefixed_logs(self):
        r = self.federate("run", TINY, "--out", self.out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_no_processes()
        history = self.history()
        self.assertTrue(history["completed"])
        self.assertEqual(history["last_round"], 2)
        self.assertEqual([p[0] for p in history["metrics_distributed"]["hr@10"]], [1, 2])
        for record in history["rounds"]:
            self.assertEqual(record["fit"]["results"], 3)
            self.assertEqual(record["fit"]["failures"], 0)
            self.assertEqual(record["evaluate"]["results"], 3)
        # One progress line per round, then the summary.
        self.assertIn("round 1/2: hr@10", r.stdout)
        self.assertIn("round 2/2: hr@10", r.stdout)
        self.assertIn("every process exited 0", r.stdout)
        # Streamed logs: every process, with its prefix.
        self.assertIn("server   | ", r.stdout)
        for i in range(3):
            self.assertIn(f"client-{i} | ", r.stdout)
            with open(os.path.join(self.out, "logs", f"client-{i}.log"), encoding="utf-8") as f:
                log = f.read()
            self.assertIn(f"client.partition_id={i}", log.splitlines()[0])  # the exact command
            self.assertIn("done: 2 fit(s)", log)
            self.assertTrue(os.path.exists(os.path.join(self.out, "clients", f"client-{i}",
                                                        "local_state.npz")))
        with open(os.path.join(self.out, "plan.json"), encoding="utf-8") as f:
            plan = json.load(f)
        self.assertEqual(len(plan["client"]), 3)
        # A second run in the same folder starts afresh (no resumed client state).
        r2 = self.federate("run", TINY, "--out", self.out, "--quiet")
        self.assertEqual(r2.returncode, 0, r2.stdout + r2.stderr)
        self.assertNotIn("server   | ", r2.stdout)
        with open(os.path.join(self.out, "logs", "client-0.log"), encoding="utf-8") as f:
            self.assertNotIn("resumed local state", f.read())
        self.assertEqual(self.history()["metrics_distributed"], history["metrics_distributed"])
        self.assert_no_processes()

    def test_clients_flag_and_overrides_change_the_topology(self):
        r = self.federate("run", TINY, "--out", self.out, "--quiet", "--clients", "2",
                          "--server-set", "run.num_rounds=1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        history = self.history()
        self.assertEqual(history["last_round"], 1)
        self.assertEqual(history["rounds"][0]["fit"]["results"], 2)
        self.assertFalse(os.path.exists(os.path.join(self.out, "logs", "client-2.log")))

    def test_a_killed_client_stops_the_federation_without_orphans(self):
        proc = self.start("--quiet", "--server-set", "run.num_rounds=50")
        self.read_until(proc, "round 1/50")
        with open(os.path.join(self.out, "plan.json"), encoding="utf-8") as f:
            victim_cmd = json.load(f)["client"][1]
        victims = [pid for pid, cmd in processes_mentioning(self.out)
                   if "client.partition_id=1" in cmd and "petal-client" in cmd]
        self.assertEqual(len(victims), 1, victim_cmd)
        started = time.monotonic()
        os.kill(victims[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 1, out)
        self.assertIn("client-1 exited with status -9", out)
        self.assertLess(time.monotonic() - started, 30)
        self.assert_no_processes()

    def test_sigint_tears_everything_down(self):
        proc = self.start("--quiet", "--server-set", "run.num_rounds=50")
        self.read_until(proc, "round 1/50")
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 130, out)
        self.assertIn("SIGINT: stopping the federation", out)
        self.assertLess(time.monotonic() - started, 30)
        self.assert_no_processes()
        # The server was stopped politely: it kept the last completed round.
        history = self.history()
        self.assertFalse(history["completed"])
        self.assertGreaterEqual(history["last_round"], 1)

    def test_timeout_is_enforced(self):
        r = self.federate("run", TINY, "--out", self.out, "--quiet", "--timeout", "4",
                          "--server-set", "run.num_rounds=1000")
        self.assertEqual(r.returncode, 124, r.stdout + r.stderr)
        self.assertIn("timed out", r.stdout)
        self.assert_no_processes()

    def test_a_client_that_cannot_start_fails_the_run(self):
        r = self.federate("run", TINY, "--out", self.out, "--quiet",
                          "--client-set", "train.batch_size=0")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("exited with status 1", r.stdout)
        self.assertIn("batch_size", r.stdout)  # the failing client's log tail
        self.assert_no_processes()

    def test_bad_federations_are_usage_errors(self):
        bad = os.path.join(self.tmp, "bad.yaml")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("clients: 2\nserver: {config: x.yaml}\nclient: {config: y.yaml}\n")
        r = self.federate("plan", bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("server.config: no such file", r.stderr)
        with open(bad, "w", encoding="utf-8") as f:
            f.write(f"clients: 2\nclinets: 3\nserver: {{config: {TINY}}}\nclient: {{config: {TINY}}}\n")
        r = self.federate("plan", bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown key 'clinets'", r.stderr)
        # The baseline must see the clients' data.
        r = self.federate("plan", TINY, "--centralized-set", "data.synthetic.num_users=999")
        self.assertEqual(r.returncode, 2)
        self.assertIn("data.synthetic", r.stderr)
        # An output folder the launcher did not make is never cleared.
        foreign = os.path.join(self.tmp, "foreign")
        os.makedirs(foreign)
        with open(os.path.join(foreign, "keep.txt"), "w", encoding="utf-8") as f:
            f.write("mine")
        r = self.federate("run", TINY, "--out", foreign)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not made by scripts/federate", r.stderr)
        self.assertTrue(os.path.exists(os.path.join(foreign, "keep.txt")))

    def test_sim_reproduces_the_multi_process_federation(self):
        r = self.federate("run", TINY, "--out", self.out, "--quiet",
                          "--server-set", "run.num_rounds=3")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        sim_out = os.path.join(self.tmp, "sim")
        s = subprocess.run([SIM, "--federation", TINY, "--out", sim_out, "--threads", "2",
                            "--set", "server:run.num_rounds=3"],
                           capture_output=True, text=True, timeout=240, cwd=SOURCE)
        self.assertEqual(s.returncode, 0, s.stdout + s.stderr)
        self.assertIn("round   3/3", s.stdout)
        with open(os.path.join(sim_out, "history.json"), encoding="utf-8") as f:
            sim = json.load(f)
        procs = self.history()
        # Same partitions, same initial model, same strategy code, deterministic
        # clients: the same numbers, round by round (the evaluation averages may
        # differ in the last bits: they are summed in arrival order).
        for metric in ("hr@10", "ndcg@10", "loss"):
            a = procs["metrics_distributed"][metric]
            b = sim["metrics_distributed"][metric]
            self.assertEqual([p[0] for p in a], [1, 2, 3])
            self.assertEqual([p[0] for p in b], [1, 2, 3])
            for (ra, va), (_, vb) in zip(a, b):
                self.assertAlmostEqual(va, vb, places=9, msg=f"{metric} round {ra}")
        for ra, rb in zip(procs["rounds"], sim["rounds"]):
            self.assertAlmostEqual(ra["fit"]["metrics"]["train_loss"],
                                   rb["fit"]["metrics"]["train_loss"], places=9)
        # Quality trend: training loss falls in both.
        losses = [r["fit"]["metrics"]["train_loss"] for r in sim["rounds"]]
        self.assertLess(losses[-1], losses[0])

    def test_sim_command_line(self):
        out = os.path.join(self.tmp, "sim_fraction")
        s = subprocess.run([SIM, "--federation", TINY, "--out", out, "--clients", "12",
                            "--fraction", "0.25", "--set", "server:run.num_rounds=1"],
                           capture_output=True, text=True, timeout=120, cwd=SOURCE)
        self.assertEqual(s.returncode, 0, s.stdout + s.stderr)
        with open(os.path.join(out, "history.json"), encoding="utf-8") as f:
            record = json.load(f)["rounds"][0]
        self.assertEqual(record["fit"]["sampled"], 3)  # 25 % of 12
        self.assertEqual(record["evaluate"]["sampled"], 12)  # fraction_evaluate 1: everyone
        with open(os.path.join(out, "simulation.json"), encoding="utf-8") as f:
            summary = json.load(f)
        self.assertEqual(summary["num_clients"], 12)
        self.assertEqual(len(summary["round_seconds"]), 1)
        for args, message in ((["--out", out], "--federation is required"),
                              (["--federation", TINY, "--set", "run.num_rounds=1"], "server:KEY=VALUE"),
                              (["--federation", TINY, "--set", "servr:a=1"], "unknown target"),
                              (["--federation", TINY, "--fraction", "2"], "fraction_fit"),
                              (["--federation", TINY, "--threads", "0"], "--threads"),
                              (["--federation", TINY, "--set", "client:train.lrr=1"], "train.lrr")):
            r = subprocess.run([SIM, *args], capture_output=True, text=True, timeout=60, cwd=SOURCE)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertIn(message, r.stderr, args)

    def test_sim_reads_the_same_configs_as_the_launcher(self):
        r = self.federate("plan", TINY, "--json", "--clients", "5", "--server-set", "run.seed=4")
        self.assertEqual(r.returncode, 0, r.stderr)
        plan = json.loads(r.stdout)
        s = subprocess.run([SIM, "--federation", TINY, "--print-config", "--clients", "5",
                            "--set", "server:run.seed=4"], capture_output=True, text=True,
                           timeout=60, cwd=SOURCE)
        self.assertEqual(s.returncode, 0, s.stderr)
        # Every --set the launcher gives petal-server that is not about sockets or
        # folders is in petal-sim's effective server config, with the same value.
        import yaml  # noqa: PLC0415  (python3-yaml, installed by setup.sh)
        server_text, client_text = s.stdout.split("# client (", 1)
        server = yaml.safe_load(server_text)
        client = yaml.safe_load(client_text.split("\n", 1)[1])

        def get(doc, dotted):
            for part in dotted.split("."):
                doc = doc[part]
            return doc

        def sets(argv):
            return [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]

        checked = 0
        for s_ in sets(plan["server"]):
            key, value = s_.split("=", 1)
            if key.startswith(("server.", "output.")):
                continue
            self.assertEqual(str(get(server, key)), value, key)
            checked += 1
        self.assertGreaterEqual(checked, 5)  # the file's sets + min_* clients
        for s_ in sets(plan["client"][0]):
            key, value = s_.split("=", 1)
            if key in ("server.address", "client.state_dir", "client.partition_id"):
                continue
            self.assertEqual(str(get(client, key)).replace(" ", ""), value.replace(" ", ""), key)
            checked += 1
        self.assertIn("partition.num_partitions=5", sets(plan["client"][0]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
