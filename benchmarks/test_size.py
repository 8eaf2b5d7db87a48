"""Size and power of the tests of tau = 0 (``MultilevelBinomial.test_tau``).

    python benchmarks/test_size.py [--sets 2000] [--power-sets 500]
                                   [--boot 99] [--exact 199] [--n-jobs 2]

30 groups, every group with the same number of trials (2, 6 or 50), success
probability ``expit(b + xi_g)`` with ``b = logit(0.3)`` and ``xi_g ~ N(0,
tau^2)``. Under tau = 0 (``--sets`` data sets per group size) it reports how
often each test rejects at 5%: the size. Under tau = 0.3 and 0.6
(``--power-sets``) the power. The Monte Carlo tests use ``--exact`` and
``--boot`` simulations (their p-values are (1 + k) / (1 + B), so the 5% level
is exactly attainable with B = 99 or 199). Each data set's seed derives from
its index, so runs are reproducible; ``--json FILE`` writes the numbers.

It is not a test of the suite (CI does not run it): the full run takes about
half an hour on two cores, most of it the bootstrap's refits.
"""

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.special import expit, logit

from skre import MultilevelBinomial

GROUPS = 30
B0 = float(logit(0.3))
METHODS = ("lrt", "score", "exact", "bootstrap")


def one_set(seed, trials, tau, n_exact, n_boot):
    rng = np.random.default_rng(seed)
    n = np.full(GROUPS, trials)
    m = rng.binomial(n, expit(B0 + tau * rng.standard_normal(GROUPS)))
    X = pd.DataFrame({"g": np.arange(GROUPS)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MultilevelBinomial(group="g").fit(X, np.column_stack([m, n]))
        if m.sum() in (0, n.sum()):  # nothing to test: no evidence against tau = 0
            return dict.fromkeys(METHODS, 1.0)
        return {
            "lrt": est.test_tau("lrt").pvalue,
            "score": est.test_tau("score").pvalue,
            "exact": est.test_tau("exact", n_sims=n_exact, random_state=seed).pvalue,
            "bootstrap": est.test_tau(
                "bootstrap", n_sims=n_boot, random_state=seed
            ).pvalue,
        }


def rates(trials, tau, sets, args, offset):
    start = time.perf_counter()
    results = Parallel(n_jobs=args.n_jobs)(
        delayed(one_set)(offset + i, trials, tau, args.exact, args.boot)
        for i in range(sets)
    )
    p = pd.DataFrame(results)
    rejected = (p <= 0.05).mean()
    se = np.sqrt(rejected * (1 - rejected) / sets)
    took = time.perf_counter() - start
    print(
        f"trials {trials:>2}, tau {tau:.1f}, {sets} sets ({took:.0f} s): "
        + ", ".join(f"{k} {rejected[k]:.3f} ± {se[k]:.3f}" for k in METHODS),
        flush=True,
    )
    return {k: [float(rejected[k]), float(se[k])] for k in METHODS}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=2000)
    parser.add_argument("--power-sets", type=int, default=500)
    parser.add_argument("--boot", type=int, default=99)
    parser.add_argument("--exact", type=int, default=199)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    out = {"settings": vars(args), "groups": GROUPS, "p": 0.3, "size": {}, "power": {}}
    for trials in (2, 6, 50):
        out["size"][trials] = rates(trials, 0.0, args.sets, args, 0)
    for tau in (0.3, 0.6):
        for trials in (2, 6, 50):
            key = f"{trials}/{tau}"
            out["power"][key] = rates(trials, tau, args.power_sets, args, 10**6)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=1)


if __name__ == "__main__":
    main()
