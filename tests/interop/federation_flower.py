"""The launcher with a stock Flower server (flwr 1.42.0's legacy start_server,
scripts/federate_flower.py) in petal-server's place: the same federation file,
the same petal-clients, the same numbers.

Run by ctest (label interop + federation) with the venv's Python;
PETAL_BINARY_DIR must hold petal-server and petal-client.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ["PETAL_SOURCE_DIR"]
BINARY = os.environ["PETAL_BINARY_DIR"]
FEDERATE = os.path.join(SOURCE, "scripts", "federate")
TINY = os.path.join(SOURCE, "tests", "federation", "tiny.yaml")


def orphans(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


class FlowerServerFederationTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="petal_fed_flower_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def run_federation(self, server, *extra):
        out = os.path.join(self.tmp, server)
        r = subprocess.run([FEDERATE, "run", TINY, "--build-dir", BINARY, "--out", out, "--quiet",
                            "--server", server, "--python", sys.executable, *extra],
                           capture_output=True, text=True, timeout=300, cwd=SOURCE)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(orphans(out), [])
        with open(os.path.join(out, "server", "history.json"), encoding="utf-8") as f:
            return r.stdout, json.load(f)

    def test_flower_server_runs_the_same_federation_with_the_same_numbers(self):
        stdout, flower = self.run_federation("flower", "--server-set", "run.num_rounds=3")
        self.assertIn("round 3/3: hr@10", stdout)  # progress lines from the Flower server too
        self.assertTrue(flower["completed"])
        self.assertIn("flwr 1.42.0", flower["server"])
        _, petal = self.run_federation("petal", "--server-set", "run.num_rounds=3")
        for metric in ("hr@10", "ndcg@10", "loss"):
            f = flower["metrics_distributed"][metric]
            p = petal["metrics_distributed"][metric]
            self.assertEqual([r for r, _ in f], [1, 2, 3])
            for (r, a), (_, b) in zip(f, p):
                self.assertAlmostEqual(a, b, places=7, msg=f"{metric} round {r}")  # float32 losses
        for rec in flower["rounds"]:
            self.assertEqual(rec["fit"]["results"], 3)
            self.assertEqual(rec["evaluate"]["results"], 3)

    def test_flower_fedadam_needs_initial_parameters(self):
        out = os.path.join(self.tmp, "adam")
        r = subprocess.run([FEDERATE, "run", TINY, "--build-dir", BINARY, "--out", out, "--quiet",
                            "--server", "flower", "--python", sys.executable,
                            "--server-set", "strategy.name=fedadam"],
                           capture_output=True, text=True, timeout=120, cwd=SOURCE)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("needs run.initial_parameters", r.stdout)
        self.assertEqual(orphans(out), [])
        # With the clients' initial model it runs.
        model = os.path.join(self.tmp, "initial.npz")
        plan = json.loads(subprocess.run([FEDERATE, "plan", TINY, "--json", "--build-dir", BINARY],
                                         capture_output=True, text=True, check=True).stdout)
        argv = plan["client"][0]
        at = argv.index("server.address=127.0.0.1:{port}")
        client = argv[:at - 1] + argv[at + 1:]  # no server needed to export
        subprocess.run(client + ["--export-initial", model], check=True, capture_output=True,
                       timeout=120, cwd=SOURCE)
        _, history = self.run_federation("flower", "--server-set", "strategy.name=fedadam",
                                         "--server-set", "strategy.eta=0.01",
                                         "--server-set", f"run.initial_parameters={model}")
        self.assertEqual(history["strategy"], "fedadam")
        self.assertEqual(len(history["metrics_distributed"]["hr@10"]), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
