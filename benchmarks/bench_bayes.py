"""Timings of ``MultilevelBinomial(method="bayes")`` for issue 13's targets.

One thread (threadpoolctl), the median of ``--repeats`` runs of each case:

1. rats (71 groups, counts), HalfCauchy(1) on tau: fit (target 0.1 s);
2. 1000 binary rows, 40 groups, 1 covariate: fit + posterior_summary() (3 s);
3. the same with 2 covariates (15 s);
4. 12 groups of 10 trials, HalfCauchy(1) (30 s; it ran 389 s to its node limit
   before, and tests/test_robustness.py now bounds its likelihood evaluations);
5. 6 covariates, refused before any grid is built (5 s; the test checks that no
   grid is built).

Each case also reports the evaluations of the likelihood, the checks of the
nested rule (in posterior SDs) and any QuadratureWarning. Run with
``PYTHONPATH=. python benchmarks/bench_bayes.py``.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from skre import MultilevelBinomial
from skre.datasets import load_rats, make_grouped_binomial
from skre.priors import HalfCauchy


def case(name, X, y, group, repeats, summary):
    fits, totals = [], []
    for _ in range(repeats):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = MultilevelBinomial(
                group=group, method="bayes", tau_prior=HalfCauchy(1.0)
            )
            start = time.perf_counter()
            est.fit(X, y)
            fits.append(time.perf_counter() - start)
            if summary:
                table = est.posterior_summary()
            totals.append(time.perf_counter() - start)
    hyper = est._fit_result.hyper
    warned = sorted({w.category.__name__ for w in caught})
    checks = ", ".join(f"{k} {v:.1e}" for k, v in hyper.changes.items())
    line = f"{name:<42} fit {statistics.median(fits):7.3f} s"
    if summary:
        line += f"   fit + posterior_summary {statistics.median(totals):7.3f} s"
        quantiles = table.attrs.get("quantile_changes", {})
        checks += "; 95% limits " + ", ".join(
            f"{k} {v:.1e}" for k, v in quantiles.items()
        )
    print(line)
    print(f"{'':<42} {hyper.n_evals:,} evaluations; checks (SD): {checks}")
    if warned:
        print(f"{'':<42} warns: {', '.join(warned)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with threadpool_limits(limits=1):
        X, y = load_rats(return_X_y=True)
        est = MultilevelBinomial(group="batch", method="bayes", tau_prior=HalfCauchy())
        est.fit(X, y)  # imports and caches, outside the timings
        case("rats", X, y, "batch", 3 * args.repeats, summary=False)
        for k in (1, 2):
            X, y, _ = make_grouped_binomial(
                40, trials=25, n_features=k, binary=True, random_state=0
            )
            name = f"1000 binary rows, 40 groups, {k} covariate" + "s" * (k > 1)
            case(name, X, y, "group", args.repeats, summary=True)
        X = pd.DataFrame({"g": range(12)})
        y = pd.DataFrame({"m": [0, 1, 2, 1, 3, 0, 5, 1, 2, 0, 4, 1], "n": 10})
        case("12 groups of 10 trials", X, y, "g", 3 * args.repeats, summary=False)
        refusal(args.repeats)


def refusal(repeats):
    """Too many covariates: the refusal comes before the grid."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.standard_normal((200, 6)), columns=list("abcdef"))
    X["g"] = rng.integers(0, 10, 200)
    y = rng.integers(0, 2, 200)
    times = []
    for _ in range(repeats):
        est = MultilevelBinomial(group="g", method="bayes", tau_prior=HalfCauchy(1))
        start = time.perf_counter()
        try:
            est.fit(X, y)
        except ValueError:
            times.append(time.perf_counter() - start)
    print(f"{'6 covariates, refused':<42} fit {statistics.median(times):7.3f} s")


if __name__ == "__main__":
    main()
