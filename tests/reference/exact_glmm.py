"""An independent maximum-likelihood fit of the logistic random-intercept model.

Written for the accuracy tests and benchmarks of issue 22 with numpy and scipy
only (no skre code): each group's integral over its random effect is taken by
the trapezoid rule on a fine grid of ``u`` (``xi = tau * u``, ``u ~ N(0, 1)``),
which converges geometrically for these analytic integrands once the step is
well below the strip of analyticity ``pi / tau`` and the narrowest posterior;
the gradient is the posterior mean of the complete-data score (Fisher's
identity) on the same grid, and scipy's BFGS maximises. Nothing here is
adaptive or shared with skre's Gauss-Hermite machinery.

    loglik(params, data)           # kernel log-likelihood (no binomial constants)
    fit(data, start)               # (params, loglik), params = (beta, b, tau)
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import log_expit, logsumexp


@dataclass
class Grouped:
    """Rows sorted by group: ``codes`` (0..G-1, non-decreasing), covariates
    ``Z`` (rows x p), successes ``m`` and trials ``n``."""

    codes: np.ndarray
    Z: np.ndarray
    m: np.ndarray
    n: np.ndarray

    @classmethod
    def of(cls, groups, Z, m, n):
        _, codes = np.unique(np.asarray(groups), return_inverse=True)
        order = np.argsort(codes, kind="stable")
        Z = np.asarray(Z, dtype=float).reshape(len(codes), -1)
        return cls(
            codes[order],
            Z[order],
            np.asarray(m, dtype=float)[order],
            np.asarray(n, dtype=float)[order],
        )

    @property
    def starts(self):
        return np.flatnonzero(np.r_[True, np.diff(self.codes) != 0])


def grid(tau, step=None, half_width=10.0, trials=0.0):
    """The trapezoid grid of ``u``: step ``min(0.05, 0.1 / tau, s / 5)`` by
    default, where the strip of analyticity of the logistic terms in ``u`` is
    ``pi / tau`` wide and ``s = (1 + tau^2 trials / 4)^(-1/2)`` bounds the
    narrowest posterior SD (of a group of ``trials`` trials), over
    ``+-half_width`` (the standard normal prior beyond 10 is below 1e-21)."""
    if step is None:
        narrowest = 1.0 / np.sqrt(1.0 + tau * tau * trials / 4.0)
        step = min(0.05, 0.1 / max(tau, 1e-12), narrowest / 5.0)
    k = int(np.ceil(half_width / step))
    return np.arange(-k, k + 1) * step, step


def _terms(params, data, step=None, chunk=200_000):
    """Per group: the log integral and the posterior weights' pieces of the
    score, summed over groups: ``(loglik, grad)`` in ``(beta, b, tau)``."""
    beta, b, tau = params[:-2], params[-2], params[-1]
    u, h = grid(tau, step)
    log_w = np.log(h) - 0.5 * u**2 - 0.5 * np.log(2 * np.pi)
    eta0 = b + data.Z @ beta
    starts = data.starts
    G = len(starts)
    p = data.Z.shape[1]
    total, grad = 0.0, np.zeros(p + 2)
    ends = np.r_[starts[1:], len(data.codes)]
    # whole groups in chunks of about `chunk` row-node values
    per = max(1, chunk // len(u))
    g0 = 0
    while g0 < G:
        g1 = g0 + 1
        while g1 < G and ends[g1] - starts[g0] <= per:
            g1 += 1
        r0, r1 = starts[g0], ends[g1 - 1]
        eta = eta0[r0:r1, None] + tau * u[None, :]
        m, n = data.m[r0:r1, None], data.n[r0:r1, None]
        ll = m * log_expit(eta) + (n - m) * log_expit(-eta)
        local = starts[g0:g1] - r0
        a = np.add.reduceat(ll, local, axis=0) + log_w
        L = logsumexp(a, axis=1)
        total += L.sum()
        post = np.exp(a - L[:, None])  # (groups, nodes)
        resid = m - n * np.exp(log_expit(eta))  # (rows, nodes)
        rows_group = np.repeat(np.arange(g1 - g0), np.diff(np.r_[local, r1 - r0]))
        w_rows = post[rows_group]  # each row's group weights
        r_mean = (w_rows * resid).sum(axis=1)  # E[residual] per row
        grad[:-2] += data.Z[r0:r1].T @ r_mean
        grad[-2] += r_mean.sum()
        grad[-1] += (w_rows * resid * u[None, :]).sum()
        g0 = g1
    return total, grad


def loglik(params, data, step=None):
    """The kernel log-likelihood at ``params = (beta, b, tau)``."""
    return _terms(np.asarray(params, dtype=float), data, step)[0]


def fit(data, start, step=None, gtol=1e-9):
    """Maximise over ``(beta, b, log tau)`` by BFGS from ``start`` (in
    ``(beta, b, tau)``), then Newton steps on a central-difference Hessian of
    the exact gradient until the step is below 1e-10 (BFGS stops on the
    objective's rounding, up to 1e-4 short on a flat intercept); the grid
    step is fixed at the start's tau (or ``step``) so that the objective does
    not change under the optimizer. Returns ``(params, loglik, result)``."""
    start = np.asarray(start, dtype=float)
    if step is None:
        most = np.bincount(data.codes, weights=data.n).max()
        step = grid(start[-1], trials=most)[1] / 2

    def objective(x):
        params = np.r_[x[:-1], np.exp(x[-1])]
        value, grad = _terms(params, data, step)
        grad = grad.copy()
        grad[-1] *= params[-1]
        return -value, -grad

    x0 = np.r_[start[:-1], np.log(start[-1])]
    res = optimize.minimize(
        objective, x0, jac=True, method="BFGS", options={"gtol": gtol, "maxiter": 500}
    )
    x = res.x
    for _ in range(10):
        f, g = objective(x)
        H = np.empty((len(x), len(x)))
        for j in range(len(x)):
            e = np.zeros(len(x))
            e[j] = 1e-5 * max(1.0, abs(x[j]))
            H[:, j] = (objective(x + e)[1] - objective(x - e)[1]) / (2 * e[j])
        move = -np.linalg.solve(0.5 * (H + H.T), g)
        x = x + move
        if np.max(np.abs(move)) < 1e-10:
            break
    params = np.r_[x[:-1], np.exp(x[-1])]
    return params, -objective(x)[0], res
