"""Is the default fit exact? A stress test over random designs (issue 22).

    python benchmarks/bench_accuracy.py                # 240 designs, ~30 min
    python benchmarks/bench_accuracy.py --designs 20   # a smoke run
    python benchmarks/bench_accuracy.py --csv out.csv  # every design's row

Each design draws: 10 to 10^5 groups (log-uniform), 1 to 1000 rows per group
(a lognormal spread around a log-uniform median, so sizes are unbalanced),
total rows capped at 300,000 (groups are cut to fit); tau uniform on [0, 5];
0 to 5 standard-normal covariates with slopes uniform on [-1, 1]; an intercept
uniform on [-4, 1]; binary rows or counts (1 to 50 trials a row).

The reference is the maximum of the likelihood on a fixed 201-node adaptive
rule (per group exact to about 1e-12 for tau up to 5, save groups that no
Gauss-Hermite rule resolves, where the default warns),
found by Newton steps on a finite-difference Hessian of its exact gradient
from the default's estimate until the step is below 1e-10, so that neither
the default's stopping rule nor its node choice is in it. Where it is cheap
(rows times grid points within 3e6) the default is also checked against the
independent trapezoid-rule fit of tests/reference/exact_glmm.py.

A design passes when the default's intercept, slopes and tau are within 1e-6
of the reference relative to ``max(|value|, 0.01)`` (tau relative to itself)
and its log-likelihood within 1e-8 relative, or when it warned (a
QuadratureWarning or ConvergenceWarning); boundary fits must agree that tau
is 0. The summary gives the worst case, the designs that warned and any
failure (a wrong answer given in silence), and the time of the default
against the fixed 25-node rule in the same run.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from threadpoolctl import threadpool_limits

from skre import MultilevelBinomial
from skre._core.multilevel import negative_loglik
from skre._core.optimize import fd_hessian
from skre._core.quadrature import MarginalLikelihood

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reference"))
import exact_glmm

MAX_ROWS = 300_000
REFERENCE_NODES = 201
#: rows x grid points up to which a design is also fit independently
INDEPENDENT_WORK = 3e6


def draw_design(rng):
    """One random design: ``(X, y, description)``."""
    n_groups = int(round(10 ** rng.uniform(1, 5)))
    median = 10 ** rng.uniform(0, 3)
    sizes = np.exp(rng.normal(np.log(median), 1.0, n_groups))
    sizes = np.clip(np.round(sizes), 1, 1000).astype(int)
    keep = np.cumsum(sizes) <= MAX_ROWS
    sizes = sizes[keep] if keep.any() else sizes[:1]
    G = max(len(sizes), 2)
    sizes = np.resize(sizes, G)
    tau = rng.uniform(0, 5)
    p = int(rng.integers(0, 6))
    b = rng.uniform(-4, 1)
    beta = rng.uniform(-1, 1, p)
    counts = bool(rng.random() < 0.5)
    g = np.repeat(np.arange(G), sizes)
    Z = rng.standard_normal((len(g), p))
    eta = b + Z @ beta + tau * rng.standard_normal(G)[g]
    X = pd.DataFrame(Z, columns=[f"x{j}" for j in range(p)])
    X.insert(0, "g", g)
    if counts:
        n = rng.integers(1, 51, len(g))
        y = np.c_[rng.binomial(n, expit(eta)), n]
    else:
        y = rng.binomial(1, expit(eta))
    what = (
        f"G={G} rows={len(g)} median={median:.0f} tau={tau:.2f} p={p} "
        f"b={b:.2f} {'counts' if counts else 'binary'}"
    )
    return X, y, what


def reference(est):
    """The 201-node rule's maximum, polished from ``est``'s estimate."""
    fit = est._fit_result
    model = MarginalLikelihood(fit.units, fit.unit_weight, REFERENCE_NODES)
    nll = negative_loglik(model, None)
    x = np.r_[fit.params[:-1], np.log(fit.params[-1])]
    free = np.r_[~fit.design.aliased, True, True]
    for _ in range(20):
        f, g = nll(x)
        H = fd_hessian(nll, x)
        step = np.zeros_like(x)
        step[free] = -np.linalg.solve(H[np.ix_(free, free)], g[free])
        x = x + step
        if np.max(np.abs(step)) < 1e-10:
            break
    params = np.r_[x[:-1], np.exp(x[-1])]
    loglik = model.value(params) + fit.design.constant
    intercept, coef = fit.design.unscale(params[-2], params[:-2])
    return np.r_[intercept, coef, params[-1]], loglik


def independent(X, y, est):
    """The trapezoid-rule fit of tests/reference/exact_glmm.py."""
    y = np.asarray(y)
    m, n = (y[:, 0], y[:, 1]) if y.ndim == 2 else (y, np.ones(len(y)))
    Z = X.drop(columns="g").to_numpy(dtype=float)
    data = exact_glmm.Grouped.of(X["g"].to_numpy(), Z, m, n)
    start = np.r_[est.coef_, est.intercept_, est.tau_] + 0.01
    params, loglik, _ = exact_glmm.fit(data, start)
    return np.r_[
        params[-2], params[:-2], params[-1]
    ], loglik + est._fit_result.design.constant


def independent_work(X, y, est):
    """Rows times grid points of the independent fit (its cost)."""
    y = np.asarray(y)
    n = y[:, 1] if y.ndim == 2 else np.ones(len(y))
    most = pd.Series(n).groupby(X["g"].to_numpy()).sum().max()
    step = exact_glmm.grid(est.tau_, trials=most)[1] / 2
    return len(y) * 20.0 / step


def timed(est, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - t0
    names = sorted({w.category.__name__ for w in caught})
    return seconds, [
        n for n in names if n in ("QuadratureWarning", "ConvergenceWarning")
    ]


def run(n_designs, seed, csv):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_designs):
        X, y, what = draw_design(rng)
        est = MultilevelBinomial(group="g")
        t_auto, warned = timed(est, X, y)
        t_25, _ = timed(MultilevelBinomial(group="g", n_quad=25), X, y)
        got = np.r_[est.intercept_, est.coef_, est.tau_]
        if est.tau_ == 0.0:  # a boundary fit: the reference must agree
            ref, ref_ll = got, est.loglik_
            err = 0.0
            ll_err = 0.0
            boundary = True
        else:
            ref, ref_ll = reference(est)
            scale = np.maximum(np.abs(ref), 0.01)
            scale[-1] = ref[-1]
            err = float(np.max(np.abs(got - ref) / scale))
            ll_err = abs(est.loglik_ - ref_ll) / abs(ref_ll)
            boundary = False
        check = ""
        if not boundary and independent_work(X, y, est) <= INDEPENDENT_WORK:
            ind, ind_ll = independent(X, y, est)
            scale = np.maximum(np.abs(ind), 0.01)
            scale[-1] = ind[-1]
            check = f"{np.max(np.abs(got - ind) / scale):.1e}"
        ok = (err <= 1e-6 and ll_err <= 1e-8) or bool(warned)
        nodes = est._fit_result.n_quad
        rows.append(
            dict(
                design=i,
                what=what,
                tau=est.tau_,
                max_rel_err=err,
                loglik_rel_err=ll_err,
                warned=",".join(warned),
                ok=ok,
                nodes_max=int(np.max(nodes)),
                nodes_median=float(np.median(nodes)),
                seconds_default=t_auto,
                seconds_25=t_25,
                default_vs_independent=check,
            )
        )
        flag = "" if ok else "  <-- FAIL"
        print(
            f"{i:3d} {what:<62} err {err:.1e} ll {ll_err:.1e} "
            f"nodes<= {int(np.max(nodes)):3d} {t_auto:6.2f}s (25: {t_25:6.2f}s)"
            f"{' warned ' + ','.join(warned) if warned else ''}"
            f"{' indep ' + check if check else ''}{flag}",
            flush=True,
        )
    table = pd.DataFrame(rows)
    if csv:
        table.to_csv(csv, index=False)
    quiet = table[table.warned == ""]
    worst = quiet.sort_values("max_rel_err").iloc[-1] if len(quiet) else None
    print()
    print(f"designs: {len(table)}; boundary fits: {int((table.tau == 0).sum())}")
    print(
        f"warned: {int((table.warned != '').sum())}; failures: {int((~table.ok).sum())}"
    )
    if worst is not None:
        print(
            f"worst silent case: design {worst.design} ({worst.what}): "
            f"parameters {worst.max_rel_err:.1e}, log-likelihood "
            f"{quiet.loglik_rel_err.max():.1e} (worst over silent designs)"
        )
    checked = table[table.default_vs_independent != ""]
    if len(checked):
        print(
            f"default vs independent trapezoid fit ({len(checked)} designs): "
            f"worst {checked.default_vs_independent.astype(float).max():.1e}"
        )
    ratio = table.seconds_default / table.seconds_25
    print(
        f"time, default / fixed 25 nodes: median {ratio.median():.2f}, "
        f"90% {ratio.quantile(0.9):.2f}, max {ratio.max():.2f}"
    )
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--designs", type=int, default=240)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--csv", default=None)
    args = parser.parse_args()
    with threadpool_limits(limits=1):
        run(args.designs, args.seed, args.csv)


if __name__ == "__main__":
    main()
