"""Tests of scripts/federate_report.py (CSV, SVG, markdown) on hand-made runs."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

SOURCE = os.environ.get("PETAL_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
REPORT = os.path.join(SOURCE, "scripts", "federate_report.py")
SVG = "{http://www.w3.org/2000/svg}"


def history(hr, ndcg, completed=True, seconds=2.0):
    """A petal-server/petal-sim history.json with the given per-round metrics."""
    rounds = [{"round": i + 1, "fit": {"seconds": seconds, "results": 4, "sampled": 4},
               "evaluate": {"seconds": 0.5, "metrics": {"hr@10": h, "ndcg@10": n}}}
              for i, (h, n) in enumerate(zip(hr, ndcg))]
    return {"completed": completed, "last_round": len(hr), "strategy": "fedavg", "rounds": rounds,
            "metrics_distributed": {"hr@10": [[i + 1, v] for i, v in enumerate(hr)],
                                    "ndcg@10": [[i + 1, v] for i, v in enumerate(ndcg)],
                                    "loss": [[i + 1, 0.3] for i in range(len(hr))]},
            "losses_distributed": [[i + 1, 0.3] for i in range(len(hr))]}


def metrics(hr, ndcg):
    """A petal-train metrics.json."""
    return {"epochs": [{"epoch": i + 1, "train_loss": 0.2, "train_seconds": 3.0, "hr@10": h,
                        "ndcg@10": n, "eval_seconds": 0.5} for i, (h, n) in enumerate(zip(hr, ndcg))],
            "final": {"hr@10": hr[-1], "ndcg@10": ndcg[-1]}}


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="petal_report_")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def write(self, name, doc):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    def report(self, *args):
        out = os.path.join(self.dir, "report")
        r = subprocess.run([sys.executable, REPORT, "--out", out, *args], capture_output=True,
                           text=True, timeout=60)
        return r, out

    def test_one_federated_run_against_the_baseline(self):
        fed = self.write("fed/server/history.json", history([0.5, 0.6, 0.76], [0.3, 0.35, 0.45]))
        self.write("cent/metrics.json", metrics([0.55, 0.7, 0.8], [0.32, 0.42, 0.5]))
        r, out = self.report("--federated", f"FedAvg={os.path.dirname(os.path.dirname(fed))}",
                             "--centralized", f"Centralized={self.dir}/cent", "--title", "T & <x>")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "report.csv"), encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([row["round"] for row in rows], ["1", "2", "3"])
        self.assertAlmostEqual(float(rows[2]["FedAvg hr@10"]), 0.76)
        self.assertAlmostEqual(float(rows[0]["Centralized ndcg@10"]), 0.32)
        # The SVG is well-formed, has one panel per metric and one line per series and panel.
        tree = ET.parse(os.path.join(out, "report.svg"))
        lines = tree.getroot().findall(f"{SVG}polyline")
        self.assertEqual(len(lines), 4)
        texts = "".join(t.text or "" for t in tree.getroot().iter(f"{SVG}text"))
        self.assertIn("HR@10", texts)
        self.assertIn("NDCG@10", texts)
        self.assertIn("T & <x>", texts)  # escaped in the file, intact after parsing
        # Points sit where the values say: higher HR is higher on the page (smaller y).
        fed_line = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
        self.assertEqual(len(fed_line), 3)
        self.assertGreater(fed_line[0][1], fed_line[2][1])
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            md = f.read()
        self.assertIn("| FedAvg | federated | 3 | 0.7600 | 0.4500 |", md)
        self.assertIn("= **95.0 %** of centralized", md)
        self.assertIn("Best federated: **FedAvg**", md)
        self.assertIn("![report](report.svg)", md)
        self.assertIn("| 2.5 |", md)  # seconds per round (fit 2.0 + evaluate 0.5)

    def test_seeds_are_averaged_with_a_band(self):
        a = self.write("a/history.json", history([0.5, 0.7], [0.3, 0.4]))
        b = self.write("b/history.json", history([0.6, 0.9], [0.3, 0.5]))
        c = self.write("c/history.json", history([0.4, 0.6], [0.2, 0.3]))
        cent = self.write("cent/metrics.json", metrics([0.7, 0.8], [0.4, 0.5]))
        r, out = self.report("--federated", f"FedProx={a},{b}", "--federated", f"FedAdam={c}",
                             "--centralized", f"Centralized={cent}")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "report.csv"), encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        self.assertAlmostEqual(float(rows[1]["FedProx hr@10"]), 0.8)
        self.assertAlmostEqual(float(rows[1]["FedProx hr@10 std"]), 0.1414214, places=6)
        self.assertNotIn("FedAdam hr@10 std", rows[0])
        root = ET.parse(os.path.join(out, "report.svg")).getroot()
        self.assertEqual(len(root.findall(f"{SVG}polygon")), 2)  # one band per metric
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            md = f.read()
        self.assertIn("0.8000 ± 0.1414", md)
        self.assertIn("Best federated: **FedProx**", md)  # 0.8 = 100 % beats 0.6

    def test_rating_runs_report_rmse(self):
        doc = {"metrics_distributed": {"rmse": [[1, 1.1], [2, 0.95]], "mae": [[1, 0.9], [2, 0.75]]}}
        fed = self.write("r/history.json", doc)
        cent = self.write("rc/metrics.json",
                          {"epochs": [{"epoch": 1, "rmse": 1.0, "mae": 0.8}, {"epoch": 2, "rmse": 0.9, "mae": 0.7}]})
        r, out = self.report("--federated", f"F={fed}", "--centralized", f"C={cent}")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            md = f.read()
        self.assertIn("final RMSE", md)
        with open(os.path.join(out, "report.svg"), encoding="utf-8") as f:
            self.assertIn("lower is better", f.read())

    def test_bad_inputs_fail_with_a_clear_message(self):
        good = self.write("g/history.json", history([0.5], [0.3]))
        nan = self.write("n/history.json", '{"metrics_distributed": {"hr@10": [[1, NaN]]}}')
        cases = [
            (["--federated", "nolabel"], "LABEL=PATH"),
            (["--federated", f"A={self.dir}/missing"], "no history.json"),
            (["--federated", f"A={self.write('x/history.json', '{not json')}"], "not valid JSON"),
            (["--federated", f"A={self.write('y/history.json', {'rounds': []})}"], "metrics_distributed"),
            (["--federated", f"A={self.write('z/history.json', {'metrics_distributed': {'hr@10': [[1, 'x']]}})}"],
             "finite number"),
            (["--federated", f"A={nan}"], "finite number"),
            (["--federated", f"A={good}", "--federated", f"A={good}"], "used twice"),
            (["--centralized", f"C={self.write('m/metrics.json', {'final': {}})}"], "no 'epochs'"),
            (["--federated", f"A={self.write('q/history.json', {'metrics_distributed': {'acc': [[1, 0.5]]}})}"],
             "neither hr@10"),
            ([], "at least one"),
        ]
        for args, message in cases:
            r, _ = self.report(*args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertIn(message, r.stderr, args)

    def test_incomplete_runs_are_flagged(self):
        fed = self.write("i/history.json", history([0.5, 0.6], [0.3, 0.4], completed=False))
        r, out = self.report("--federated", f"Stopped={fed}")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            self.assertIn("incomplete runs", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
