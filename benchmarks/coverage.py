"""Coverage of skre's 95% intervals on data simulated from the fitted rats model.

    python benchmarks/coverage.py [--n-sets 1000] [--seed 1]

Each data set has the rats batch sizes (71 batches, n = 10..52) and
theta_g = expit(b + xi_g), xi_g ~ N(0, tau^2) with b = -1.94, tau = 0.674 (the
nAGQ = 25 fit). Reported: how often the profile intervals of
``MultilevelBinomial.confint`` cover b and tau, how often each batch's
``group_estimates`` interval covers its true theta_g (the interval is
conditional on the fitted b and tau), and the same for the no-pooling profile
interval. The test suite runs 400 sets for b only (tests/test_intervals.py).
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit

from skre import MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-sets", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    n = load_rats().frame["n"].to_numpy()
    X = pd.DataFrame({"batch": np.arange(len(n))})
    rng = np.random.default_rng(args.seed)
    b, tau = -1.94, 0.674
    hits = {"b": 0, "tau": 0, "theta (multilevel)": 0, "theta (no pooling)": 0}
    boundary = 0
    start = time.perf_counter()
    for _ in range(args.n_sets):
        theta = expit(b + tau * rng.standard_normal(len(n)))
        y = np.column_stack([rng.binomial(n, theta), n])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = MultilevelBinomial(group="batch").fit(X, y)
            ci = m.confint(method="profile")
            g = m.group_estimates()
            npool = NoPoolingBinomial(group="batch").fit(X, y).group_estimates()
        boundary += m.boundary_
        hits["b"] += ci.iloc[0, 0] <= b <= ci.iloc[0, 1]
        hits["tau"] += ci.loc["tau"].iloc[0] <= tau <= ci.loc["tau"].iloc[1]
        hits["theta (multilevel)"] += np.mean(
            (g["lower"] <= theta) & (theta <= g["upper"])
        )
        hits["theta (no pooling)"] += np.mean(
            (npool["lower"] <= theta) & (theta <= npool["upper"])
        )
    seconds = time.perf_counter() - start
    print(
        f"{args.n_sets} simulated rats data sets (seed {args.seed}), {seconds:.1f} s; "
        f"{boundary} boundary fits"
    )
    se = np.sqrt(0.95 * 0.05 / args.n_sets)
    print(f"Monte Carlo SE of a 95% coverage estimate: {se:.4f}")
    for name, count in hits.items():
        print(f"  {name:<20} {count / args.n_sets:.4f}")


if __name__ == "__main__":
    main()
