"""Pickle size of a fitted MultilevelBinomial (issue 11's lean-pickle target).

    python benchmarks/pickle_size.py [--rows 100000] [--groups 1000] [--covariates 3]

Fits binary rows with continuous covariates, then reports the pickle size
after fit, after ``confint()`` and ``confint(method="profile")``, and after
``group_estimates()`` and ``score()``, next to the size of the input data.
The target: at most 6 MB after ``confint()`` at the default sizes.
"""

import argparse
import pickle
import time

import numpy as np
import pandas as pd

from skre import MultilevelBinomial


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--covariates", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    g = rng.integers(0, args.groups, args.rows)
    Z = rng.standard_normal((args.rows, args.covariates))
    eta = -0.5 + Z @ np.linspace(0.5, -0.3, args.covariates)
    eta += rng.normal(0, 0.7, args.groups)[g]
    y = (rng.random(args.rows) < 1 / (1 + np.exp(-eta))).astype(int)
    X = pd.DataFrame(Z, columns=[f"x{j}" for j in range(args.covariates)])
    X.insert(0, "g", g)
    data_mb = (X.memory_usage(deep=True).sum() + y.nbytes) / 1e6
    print(
        f"{args.rows} rows, {args.groups} groups, {args.covariates} covariates; "
        f"input data {data_mb:.1f} MB"
    )

    def size(est):
        return len(pickle.dumps(est)) / 1e6

    start = time.perf_counter()
    est = MultilevelBinomial(group="g").fit(X, y)
    print(f"fit ({time.perf_counter() - start:.2f} s)          {size(est):6.2f} MB")
    est.confint()
    print(f"after confint()          {size(est):6.2f} MB  (target <= 6 MB)")
    est.confint(method="profile")
    print(f"after profile confint()  {size(est):6.2f} MB")
    est.group_estimates()
    est.score(X, y)
    print(f"after group_estimates, score {size(est):6.2f} MB")
    back = pickle.loads(pickle.dumps(est))
    same = np.array_equal(back.predict_proba(X), est.predict_proba(X))
    print(f"unpickled predictions identical: {same}")


if __name__ == "__main__":
    main()
