#!/usr/bin/env python3
"""Rough popularity reference for ML-100K leave-one-out HR@10 (docs/results-federated.md).

  python3 scripts/experiments/popularity_baseline.py [ML100K_DIR] [--k 10] [--negatives 99]

ML100K_DIR defaults to $PETAL_DATA_DIR/ml-100k. Each user's latest rating (by timestamp, ties
by item id) is the test item; it is ranked by its number of training ratings against
--negatives unrated items drawn uniformly (this script's own draw, seeds 1-3, not petal-train's
exact cases); HR@k counts a hit when fewer than k negatives are strictly more popular (ties go
to the test item, so the figure is slightly optimistic). Standard library only.
Exit status 2 with a message naming the file and line for missing or malformed data.
"""
import argparse
import collections
import os
import random
import sys


class DataError(Exception):
    pass


def read_ratings(path):
    """{user: [(timestamp, item), ...]} from a tab-separated u.data file."""
    if not os.path.isfile(path):
        raise DataError(f"{path} not found (pass the ml-100k folder or set PETAL_DATA_DIR)")
    by_user = collections.defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            try:
                user, item, _, ts = map(int, fields)
            except ValueError:
                raise DataError(f"{path}:{number}: expected 4 tab-separated integers "
                                f"(user, item, rating, timestamp), got {line.strip()!r}") from None
            by_user[user].append((ts, item))
    if not by_user:
        raise DataError(f"{path}: no ratings")
    return by_user


def popularity_hr(by_user, seed, k=10, num_negatives=99):
    """HR@k of the popularity ranker over all users, negatives drawn with `seed`."""
    test, popularity, rated = {}, collections.Counter(), {}
    for user, events in by_user.items():
        events = sorted(events)
        test[user] = events[-1][1]
        popularity.update(item for _, item in events[:-1])
        rated[user] = {item for _, item in events}
    items = sorted({item for events in by_user.values() for _, item in events})
    rng = random.Random(seed)
    hits = 0
    for user, target in test.items():
        unrated = len(items) - len(rated[user])
        if unrated < num_negatives:
            raise DataError(f"user {user} has {unrated} unrated items, {num_negatives} "
                            f"negatives needed")
        negatives = set()
        while len(negatives) < num_negatives:
            j = rng.choice(items)
            if j not in rated[user]:
                negatives.add(j)
        better = sum(1 for j in negatives if popularity[j] > popularity[target])
        hits += better < k
    return hits / len(test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?",
                        default=os.path.join(os.environ.get("PETAL_DATA_DIR", ""), "ml-100k"))
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--negatives", type=int, default=99)
    args = parser.parse_args(argv)
    try:
        by_user = read_ratings(os.path.join(args.data, "u.data"))
        for seed in (1, 2, 3):
            hr = popularity_hr(by_user, seed, args.k, args.negatives)
            print(f"seed {seed}: popularity HR@{args.k} {hr:.4f} over {len(by_user)} users")
    except DataError as e:
        print(f"popularity_baseline: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
