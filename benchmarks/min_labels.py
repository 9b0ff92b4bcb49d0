"""The measurement behind ``stats.MIN_LABELS``: coverage by labels in a cell's smaller image arm.

``python benchmarks/min_labels.py [--replications 1500] [--labels 40]``

Runs the seeded simulation of ``tests/stats/test_small_sample_coverage.py`` (a finite population,
a stratified sample, the image effect within a domain that cuts across the strata) with no
minimum, and prints the coverage of the 95% intervals (DSL with the design variance, DSL with R's
sandwich, the stratified Hajek labeled-only estimator) by the number of labels in the smaller
arm. The minimum is the smallest count from which the design intervals keep their promise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "stats")]

from test_small_sample_coverage import domain_coverage  # noqa: E402 - importable once sys.path holds the repository


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=1_500)
    parser.add_argument("--labels", type=int, default=40, help="label budget of the whole population")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    records = domain_coverage(args.replications, args.labels, args.seed, min_arm=1)
    records["smaller arm"] = pd.cut(
        records["smaller_arm"], [1, 2, 3, 4, 6, 9, 1000], right=False, labels=["1", "2", "3", "4-5", "6-8", ">=9"]
    )
    table = records.groupby(["smaller arm", "estimator"], observed=True)["covered"].agg(["mean", "size"])
    print(f"{args.replications} replications, {args.labels} labels: coverage by labels in the smaller arm")
    print(table.unstack("estimator").to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
