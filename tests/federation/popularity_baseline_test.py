"""Tests of scripts/experiments/popularity_baseline.py on a hand-made u.data."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("PETAL_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(SOURCE, "scripts", "experiments", "popularity_baseline.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import popularity_baseline as pb  # noqa: E402

# user, item, rating, timestamp. Training popularity (all but each user's latest):
# item 1: 3 (users 1-3), item 2: 1 (user 4), item 3: 0. Each user has exactly one unrated
# item, so with 1 negative the draw is fixed whatever the seed:
#   user 1: test 2 (pop 1) vs 3 (pop 0): hit at k=1      user 2: the same
#   user 3: test 3 (pop 0) vs 2 (pop 1): miss at k=1     user 4: test 3 (pop 0) vs 1 (pop 3): miss
TINY = """1\t1\t5\t10
1\t2\t4\t20
2\t1\t3\t10
2\t2\t4\t20
3\t1\t5\t10
3\t3\t2\t20
4\t2\t4\t10
4\t3\t1\t20
"""


class PopularityBaselineTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="petal_popularity_")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def write(self, text):
        with open(os.path.join(self.dir, "u.data"), "w", encoding="utf-8") as f:
            f.write(text)

    def cli(self, *args):
        return subprocess.run([sys.executable, SCRIPT, self.dir, *args], capture_output=True,
                              text=True, timeout=60)

    def test_hand_computed_hit_rates(self):
        self.write(TINY)
        by_user = pb.read_ratings(os.path.join(self.dir, "u.data"))
        for seed in (1, 2, 3):
            self.assertEqual(pb.popularity_hr(by_user, seed, k=1, num_negatives=1), 0.5)
            self.assertEqual(pb.popularity_hr(by_user, seed, k=2, num_negatives=1), 1.0)

    def test_latest_rating_is_the_test_item_whatever_the_file_order(self):
        self.write("".join(reversed(TINY.splitlines(keepends=True))))
        by_user = pb.read_ratings(os.path.join(self.dir, "u.data"))
        self.assertEqual(pb.popularity_hr(by_user, 1, k=1, num_negatives=1), 0.5)

    def test_command_line(self):
        self.write(TINY)
        r = self.cli("--k", "1", "--negatives", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("seed 1: popularity HR@1 0.5000 over 4 users", r.stdout)
        self.assertIn("seed 3: popularity HR@1 0.5000 over 4 users", r.stdout)

    def test_bad_input_is_a_clear_error(self):
        r = self.cli()
        self.assertEqual(r.returncode, 2)
        self.assertIn("u.data not found", r.stderr)
        self.write("1\t1\t5\t10\n1\tx\t4\t20\n")
        r = self.cli("--negatives", "1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("u.data:2: expected 4 tab-separated integers", r.stderr)
        self.write("")
        r = self.cli()
        self.assertEqual(r.returncode, 2)
        self.assertIn("no ratings", r.stderr)
        self.write(TINY)
        r = self.cli("--negatives", "2")   # one unrated item per user: the draw cannot finish
        self.assertEqual(r.returncode, 2)
        self.assertIn("has 1 unrated items, 2 negatives needed", r.stderr)
        self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
