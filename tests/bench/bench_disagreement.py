"""Disagreement rules at scale: every rule on 100,000 pairwise items.

Each item has 3 human labels and one judge's verdicts in both orders (5 labels, 500,000 rows),
with `unable`, `invalid` verdicts, confidences and a 5% share of gold items, so that every
rule has work to do. It prints the best of --repeat rounds of `disagreement.reasons` with all
rules on, and how many items each rule routes; nothing is asserted.

    .venv/bin/python tests/bench/bench_disagreement.py
    .venv/bin/python tests/bench/bench_disagreement.py --items 10000
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from calibration import disagreement  # noqa: E402

ALL_ON = {
    "no_majority": True,
    "low_agreement": 0.7,
    "judge_conflict": True,
    "judge_inconsistent": True,
    "low_confidence": 0.6,
    "unable": True,
    "gold_miss": True,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    labels, gold = make_data(args.items, args.seed)
    best, found = float("inf"), None
    for _ in range(args.repeat):
        started = time.perf_counter()
        found = disagreement.reasons(labels, ALL_ON, gold)
        best = min(best, time.perf_counter() - started)
    counts = disagreement.rule_counts(found)
    print(
        f"disagreement.reasons, {args.items:,} items x (3 human + 2 judge orders) = "
        f"{len(labels):,} labels, all rules on: {best:.3f}s (best of {args.repeat})"
    )
    print(f"routed {counts['routed']:,} items; per rule: {counts['rules']}")


def make_data(n_items, seed):
    """Humans agree with a true answer most of the time; the judge flips one order in ten."""
    rng = np.random.default_rng(seed)
    choices = np.array(["A", "B", "tie"], dtype=object)
    truth = rng.choice(choices, p=[0.45, 0.4, 0.15], size=n_items)
    items = np.array([f"i{k}" for k in range(n_items)], dtype=object)
    humans = np.where(rng.random((3, n_items)) < 0.75, truth, rng.choice(choices, (3, n_items)))
    humans[rng.random((3, n_items)) < 0.02] = "unable"
    first = np.where(rng.random(n_items) < 0.8, truth, rng.choice(choices, n_items))
    second = np.where(rng.random(n_items) < 0.9, first, rng.choice(choices, n_items))
    second[rng.random(n_items) < 0.01] = "invalid"
    frames = [
        frame(items, f"rater{k}", "human", humans[k], rng.choice(["AB", "BA"], n_items), np.nan)
        for k in range(3)
    ]
    for order, verdicts in (("AB", first), ("BA", second)):
        frames.append(frame(items, "judge", "llm", verdicts, order, rng.random(n_items)))
    is_gold = rng.random(n_items) < 0.05
    gold = {
        item: {"pref": answer} for item, answer in zip(items[is_gold], truth[is_gold], strict=True)
    }
    return pd.concat(frames, ignore_index=True), gold


def frame(items, rater, kind, values, order, confidence):
    return pd.DataFrame(
        {
            "item": items,
            "rater": rater,
            "kind": kind,
            "question": "pref",
            "value": values,
            "order": order,
            "confidence": confidence,
        }
    )


if __name__ == "__main__":
    main()
