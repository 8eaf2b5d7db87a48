"""The cases of issue 13 against gpboost and LogisticRegression, in one run.

    python benchmarks/bench_peers.py            # about 8 minutes on 2 cores
    python benchmarks/bench_peers.py --no-bayes # skip the slow Bayes cases

Every pool runs one thread (threadpoolctl, and gpboost's own
``num_parallel_threads=1``); times are wall-clock medians of ``fit`` after a
warm-up, with the baseline of each case from the same run (``bench_fit.py``'s
``time_fit`` and table). Cases:

1. rats: LogisticRegression on the 1739 binary rows (intercept only: the
   baseline), skre's default fit on the 71 count rows and on the binary rows,
   gpboost's ``GPModel`` (Laplace, C++) on the binary rows. Then against the
   PyPI package ``glmm`` (Rust) in its own venv (``--glmm-python``, default
   /work/venv-glmm/bin/python; proportions with the trials as weights, as it
   takes counts): its 25-node adaptive quadrature (the baseline) and Laplace,
   and skre's default (25 nodes on data this small) and ``n_quad=1``, on the
   71 count rows, in ``--rounds`` alternating rounds of 100 fits each (glmm's
   timed inside its own process after a warm-up, one thread), medians over
   all rounds; both log-likelihoods are printed (the same model).
2. 10^5 groups x 10 binary rows, and 10^3 groups x 1000, 5 covariates:
   LogisticRegression on the covariates (baseline), skre with the default
   ``n_quad="auto"``, fixed 25 nodes and Laplace, and ``GPModel``; then tau
   from each, and the largest difference of the default from the 25-node fit.
3. Peak memory of the default fit on 10^6 binary rows, 5 covariates and 10^3
   groups, above the input (tracemalloc's peak of the allocations made
   during ``fit``: numpy's arrays included).
4. method="bayes" (HalfCauchy(1) on tau): rats; 1000 binary rows, 40 groups
   and 1 or 2 covariates, fit plus ``posterior_summary()`` (one repeat).

gpboost is optional (``pip install gpboost``): without it its rows say so.
"""

import argparse
import os
import sys
import tempfile
import textwrap
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import (
    Row,
    expand_counts,
    fmt_seconds,
    print_table,
    run_json_script,
    time_fit,
    unpenalized_logistic,
)

from skre import MultilevelBinomial
from skre.datasets import load_rats, make_grouped_binomial
from skre.priors import HalfCauchy

try:
    import gpboost
except ImportError:  # an optional, benchmark-only dependency
    gpboost = None


def gp_fit(groups, Z, y):
    """gpboost's GPModel: random intercept per group, Bernoulli logit, Laplace."""
    model = gpboost.GPModel(
        group_data=groups, likelihood="bernoulli_logit", num_parallel_threads=1
    )
    model.set_optim_params(params={"trace": False})
    model.fit(y=y, X=np.column_stack([np.ones(len(y)), Z]))
    return model


def gp_row(rows, case, fit, repeats):
    if gpboost is None:
        rows.append(Row(case, "gpboost GPModel", note="skipped: gpboost not installed"))
        return
    rows.append(time_fit(case, "gpboost GPModel (Laplace, C++)", fit, repeats))


def case_rats(rows, repeats):
    case = "rats (71 groups)"
    X, y = load_rats(return_X_y=True)
    batch, yb = expand_counts(X["batch"].to_numpy(), y["m"].to_numpy(), y["n"])
    Xb = pd.DataFrame({"batch": batch})
    lr = unpenalized_logistic()
    zero = np.zeros((len(yb), 1))
    rows.append(
        time_fit(
            case,
            "LogisticRegression 1739 binary rows",
            lambda: lr.fit(zero, yb),
            repeats,
            baseline=True,
        )
    )
    est = MultilevelBinomial(group="batch")
    rows.append(
        time_fit(case, "skre default, 71 count rows", lambda: est.fit(X, y), repeats)
    )
    rows.append(
        time_fit(
            case, "skre default, 1739 binary rows", lambda: est.fit(Xb, yb), repeats
        )
    )
    gp_row(rows, case, lambda: gp_fit(batch, np.empty((len(yb), 0)), yb), repeats)


GLMM_RATS = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import glmm
    from importlib.metadata import version
    d = np.load(sys.argv[1])
    per, nagq = int(sys.argv[2]), int(sys.argv[3])
    n = d["n"].astype(float)
    data = {"y": d["m"] / n, "batch": d["batch"]}
    def fit():
        return glmm.fit(data, "y ~ 1 + (1 | batch)", "binomial", nagq=nagq, weights=n)
    f = fit()  # warm-up
    times = []
    for _ in range(per):
        t = time.perf_counter()
        fit()
        times.append(time.perf_counter() - t)
    print("JSON" + json.dumps({"times": times, "loglik": float(f.loglik),
                               "version": version("glmm")}))
    """
)


def case_rats_glmm(rows, glmm_python, rounds, per=100):
    case = "rats vs glmm (71 count rows)"
    X, y = load_rats(return_X_y=True)
    if not (glmm_python and Path(glmm_python).exists()):
        rows.append(Row(case, "glmm", note=f"skipped: no python at {glmm_python!r}"))
        return
    env = dict(os.environ, RAYON_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env["OPENBLAS_NUM_THREADS"] = "1"
    names = {
        25: ("glmm nagq=25 (Rust)", "skre default (25 nodes)"),
        1: ("glmm Laplace (Rust)", "skre n_quad=1 (Laplace)"),
    }
    times = {name: [] for pair in names.values() for name in pair}
    logliks = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rats.npz")
        np.savez(
            path, batch=X["batch"].to_numpy(), m=y["m"].to_numpy(), n=y["n"].to_numpy()
        )
        for _ in range(rounds):
            for nagq, (g_name, s_name) in names.items():
                out, error = run_json_script(
                    glmm_python, GLMM_RATS, [path, per, nagq], env=env
                )
                if out is None:
                    rows.append(Row(case, g_name, error=f"glmm failed ({error})"))
                    return
                times[g_name] += out["times"]
                logliks[g_name] = out["loglik"]
                est = MultilevelBinomial(
                    group="batch", n_quad=nagq if nagq == 1 else "auto"
                )
                row = time_fit(case, s_name, lambda: est.fit(X, y), per)
                times[s_name] += row.times
                logliks[s_name] = est.loglik_
    for pair in names.values():
        for name in pair:
            rows.append(
                Row(
                    case,
                    name,
                    times=times[name],
                    repeats=len(times[name]),
                    baseline=name == names[25][0],
                    note=f"loglik {logliks[name]:.9f}",
                )
            )


def case_covariates(rows, repeats, n_groups, trials):
    """Binary rows with 5 covariates: LogisticRegression, skre's three rules
    and gpboost, then how far the default is from 25 nodes."""
    case = f"10^{round(np.log10(n_groups))} groups x {trials} rows, 5 cov"
    X, y, _ = make_grouped_binomial(
        n_groups, trials=trials, n_features=5, binary=True, random_state=0
    )
    Z = X.drop(columns="group").to_numpy(dtype=float)
    lr = unpenalized_logistic()
    rows.append(
        time_fit(
            case,
            "LogisticRegression 10^6 x 5",
            lambda: lr.fit(Z, y),
            repeats,
            baseline=True,
        )
    )
    fits = {}
    for label, n_quad in (
        ("default n_quad='auto'", "auto"),
        ("n_quad=25", 25),
        ("n_quad=1 (Laplace)", 1),
    ):
        est = MultilevelBinomial(group="group", n_quad=n_quad)
        rows.append(
            time_fit(case, f"skre {label}", lambda est=est: est.fit(X, y), repeats)
        )
        fits[n_quad] = est
    groups = X["group"].to_numpy()
    gp = {}
    gp_row(rows, case, lambda: gp.update(model=gp_fit(groups, Z, y)), repeats)
    auto, full = fits["auto"], fits[25]
    diff = np.max(
        np.abs(
            np.r_[
                auto.intercept_ - full.intercept_,
                auto.coef_ - full.coef_,
                auto.tau_ - full.tau_,
            ]
        )
    )
    rel = abs(auto.loglik_ - full.loglik_) / abs(full.loglik_)
    print(
        f"  .. tau: auto {auto.tau_:.4f}, 25 nodes {full.tau_:.4f}, "
        f"Laplace {fits[1].tau_:.4f}; auto vs 25 nodes: parameters {diff:.1e}, "
        f"log-likelihood {rel:.1e} relative"
    )
    if "model" in gp:
        variance = np.asarray(gp["model"].get_cov_pars(), dtype=float).ravel()[0]
        print(f"  .. gpboost tau {np.sqrt(variance):.4f}")


def case_memory():
    X, y, _ = make_grouped_binomial(
        1000, trials=1000, n_features=5, binary=True, random_state=0
    )
    est = MultilevelBinomial(group="group")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X.iloc[:1000], y[:1000])  # imports and caches outside the trace
        tracemalloc.start()
        tracemalloc.reset_peak()
        est.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    data = X.memory_usage(deep=True).sum() + y.nbytes
    print(
        f"  .. peak memory of the default fit on 10^6 x 5 binary rows: "
        f"{peak / 1e6:.0f} MB above the input ({data / 1e6:.0f} MB)"
    )


def case_bayes(rows):
    prior = HalfCauchy(1.0)
    X, y = load_rats(return_X_y=True)
    est = MultilevelBinomial(group="batch", method="bayes", tau_prior=prior)
    rows.append(time_fit("bayes", "rats fit", lambda: est.fit(X, y), 5))
    for p in (1, 2):
        X, y, _ = make_grouped_binomial(
            40, trials=25, n_features=p, binary=True, random_state=0
        )
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = MultilevelBinomial(group="group", method="bayes", tau_prior=prior)
            est.fit(X, y)
            t_fit = time.perf_counter() - t0
            est.posterior_summary()
        total = time.perf_counter() - t0
        warned = sorted({w.category.__name__ for w in caught})
        print(
            f"  .. bayes, {len(y)} binary rows, 40 groups, {p} covariate(s): fit "
            f"{fmt_seconds(t_fit)}, fit + posterior_summary {fmt_seconds(total)}"
            + (f" (warns: {', '.join(warned)})" if warned else "")
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-bayes", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--glmm-python", default="/work/venv-glmm/bin/python")
    args = parser.parse_args()
    rows = []
    with threadpool_limits(limits=1):
        case_rats(rows, 30)
        case_rats_glmm(rows, args.glmm_python, args.rounds)
        case_covariates(rows, args.repeats, 100_000, 10)
        case_covariates(rows, args.repeats, 1000, 1000)
        case_memory()
        if not args.no_bayes:
            case_bayes(rows)
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
