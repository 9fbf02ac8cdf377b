#!/usr/bin/env python3
"""Rough popularity reference for ML-100K leave-one-out HR@10 (docs/results-federated.md).

  python3 scripts/experiments/popularity_baseline.py [$PETAL_DATA_DIR/ml-100k]

Each user's latest rating (by timestamp, ties by item id) is the test item; it is ranked by its
number of training ratings against 99 unrated items drawn uniformly (this script's own draw,
seeds 1-3, not petal-train's exact cases); HR@10 counts a hit when fewer than 10 negatives are
strictly more popular (ties go to the test item, so the figure is slightly optimistic).
Standard library only.
"""
import collections
import os
import random
import sys


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("PETAL_DATA_DIR", ""), "ml-100k")
    path = os.path.join(root, "u.data")
    if not os.path.isfile(path):
        sys.exit(f"popularity_baseline: {path} not found (pass the ml-100k folder or set PETAL_DATA_DIR)")
    by_user = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            user, item, _, ts = map(int, line.split("\t"))
            by_user[user].append((ts, item))
    test, popularity, rated = {}, collections.Counter(), {}
    for user, events in by_user.items():
        events.sort()
        test[user] = events[-1][1]
        popularity.update(item for _, item in events[:-1])
        rated[user] = {item for _, item in events}
    items = sorted({item for events in by_user.values() for _, item in events})
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        hits = 0
        for user, target in test.items():
            negatives = set()
            while len(negatives) < 99:
                j = rng.choice(items)
                if j not in rated[user]:
                    negatives.add(j)
            better = sum(1 for j in negatives if popularity[j] > popularity[target])
            hits += better < 10
        print(f"seed {seed}: popularity HR@10 {hits / len(test):.4f} over {len(test)} users")


if __name__ == "__main__":
    main()
