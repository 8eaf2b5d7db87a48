"""Nested random intercepts on mlmRev's guImmun: Laplace against lme4, and
the exact default.

2159 children of 1595 mothers in 161 Guatemalan communities, immunized or
not: ``immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural
+ pcInd81 + (1 | comm/mom)`` (Rodriguez and Goldman's data, a classic case
where the Laplace approximation puts the mothers' SD far too low). Reads the
data and lme4's fit from ``tests/reference`` (written by
``tests/reference/nested_lme4.R``); prints skre's Laplace fit against lme4's
polished optimum, the default (exact) fit, its Wald intervals, the
times (one thread, medians of ``--repeats`` Laplace fits), and
likelihood-ratio tests of each level: the nested fit against the one-level
fits of the communities and of the (comm, mom) pairs.

    python benchmarks/nested_guimmun.py [--repeats 3] [--small]
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from skre import MultilevelBinomial, lr_test

REF = Path(__file__).resolve().parents[1] / "tests" / "reference"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--small", action="store_true", help="kid2p + rural + pcInd81 only"
    )
    args = parser.parse_args()
    d = pd.read_csv(REF / "data" / "guImmun.csv", dtype={"comm": str, "mom": str})
    ref = json.loads((REF / "nested_lme4.json").read_text())
    ref = ref["small" if args.small else "full"]
    cols = [c for c in ref["beta"] if c != "(Intercept)"]
    X, y = d[["comm", "mom", *cols]], d["immun"]
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        lap = MultilevelBinomial(group=["comm", "mom"], n_quad=1).fit(X, y)
        times.append(time.perf_counter() - t)
    print(f"Laplace (n_quad=1): median {np.median(times):.2f} s of {args.repeats}")
    ours = np.r_[lap.intercept_, lap.coef_, lap.tau_, lap.tau_outer_]
    theirs = np.r_[
        [ref["beta"][c] for c in ["(Intercept)", *cols]],
        ref["sd_inner"],
        ref["sd_outer"],
    ]
    rel = np.abs(ours - theirs) / np.abs(theirs)
    print(f"  largest relative difference from lme4's optimum: {rel.max():.2g}")
    print(
        f"  log-likelihood {lap.loglik_:.6f} (lme4 {ref['loglik']:.6f}; "
        f"lme4's own glmer stopped at {ref['glmer_loglik']:.6f}: "
        f"{ref['glmer_messages'] or 'converged'})"
    )
    t = time.perf_counter()
    exact = MultilevelBinomial(group=["comm", "mom"]).fit(X, y)
    elapsed = time.perf_counter() - t
    check = exact._fit_result.check
    print(
        f"\nDefault (exact): {elapsed:.1f} s, {check[0]} nodes per dimension "
        f"(checked against {check[1]}: log-likelihood {check[2]:.2g}, largest "
        f"move {check[3]:.2f} of its target)"
    )
    print(exact.summary())
    print("\nLaplace against the default:")
    table = pd.DataFrame(
        {
            "Laplace": np.r_[lap.tau_, lap.tau_outer_, lap.loglik_],
            "exact": np.r_[exact.tau_, exact.tau_outer_, exact.loglik_],
        },
        index=["SD(mom:comm)", "SD(comm)", "log-likelihood"],
    )
    print(table.round(4).to_string())
    print("\nEach level by lr_test (the default's exact fits):")
    pairs = X.drop(columns=["comm", "mom"]).assign(pair=d["comm"] + "/" + d["mom"])
    for name, one in (
        ("(1 | comm)", MultilevelBinomial(group="comm").fit(X.drop(columns="mom"), y)),
        ("(1 | comm:mom)", MultilevelBinomial(group="pair").fit(pairs, y)),
    ):
        t = lr_test(one, exact)
        print(
            f"  {name} against (1 | comm/mom): loglik {one.loglik_:.4f}, "
            f"statistic {t.statistic:.3f}, p = {t.pvalue:.3g} ({t.null})"
        )


if __name__ == "__main__":
    main()
