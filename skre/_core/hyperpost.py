"""The posterior of the hyperparameters by deterministic quadrature.

With one random intercept the hyperparameters ``x = (beta, b, log tau)`` are few,
and their posterior ``p(x | y) ∝ L(x) p(x)`` (the group effects integrated out
exactly by adaptive quadrature) can be integrated on a grid instead of sampled.
The grid is a product Gauss-Hermite rule in coordinates whitened by the
Hessian at the posterior mode, each node weighted by the ratio of the posterior
to the Gaussian it was built on; the number of nodes per dimension is raised
until posterior means and SDs are stable. One-dimensional marginals (for
quantiles) integrate the other coordinates the same way along each value.
"""

from dataclasses import dataclass

import numpy as np
from scipy.integrate import cumulative_simpson

from .optimize import _positive_definite, fd_hessian, minimize_smooth
from .rules import product_rule

#: nodes per dimension of the first two grids; convergence needs both
FIRST_GRIDS = (9, 13)


#: likelihood evaluations allowed over all grids of one fit
MAX_EVALS = 150_000


def first_grids_cost(dim):
    """Evaluations of the first two grids, the least that can show convergence."""
    return sum(int(n) ** int(dim) for n in FIRST_GRIDS)


@dataclass
class HyperPosterior:
    mode: np.ndarray
    chol: np.ndarray  # Cholesky factor of the inverse Hessian at the mode
    nodes: np.ndarray  # (m, dim) x values
    weights: np.ndarray  # (m,) posterior weights, summing to 1
    n_per_dim: int
    converged: bool  # means and SDs stable between the last two grids

    def mean(self, values):
        return self.weights @ values

    def sd(self, values):
        m = self.mean(values)
        return np.sqrt(np.maximum(self.weights @ (values - m) ** 2, 0.0))


def _values(neg_logpost, x):
    """``neg_logpost`` at every row of x, in one batch when it offers one."""
    batch = getattr(neg_logpost, "batch", None)
    if batch is not None:
        return batch(x)
    return np.array([neg_logpost(xi)[0] for xi in x])


def fit_hyperposterior(
    neg_logpost, x0, *, max_evals=MAX_EVALS, tol=1e-5, progress=None
):
    """Mode, Hessian and quadrature of ``exp(-neg_logpost(x))``.

    ``neg_logpost(x) -> (f, grad)``. Starts with 9 nodes per dimension and adds
    4 until the posterior means and SDs of every coordinate change by less
    than ``tol`` (in posterior SDs), or the next grid would take the
    evaluations beyond ``max_evals`` (``converged`` is then False). The caller
    checks :func:`first_grids_cost` first: the first two grids must fit. ``progress(n,
    nodes, change)`` is called after each grid.
    """
    res = minimize_smooth(neg_logpost, x0, polish=3)
    mode = res.x
    H = fd_hessian(neg_logpost, mode)
    cov = _positive_definite(H)
    L = np.linalg.cholesky(cov)
    dim = len(mode)
    f_mode = neg_logpost(mode)[0]
    previous, n, spent = None, FIRST_GRIDS[0], 0
    while True:
        z, logw = product_rule(dim, n)
        x = mode + z @ L.T
        f = _values(neg_logpost, x)
        spent += len(x)
        logr = logw + 0.5 * np.sum(z * z, axis=1) - (f - f_mode)
        logr[~np.isfinite(logr)] = -np.inf
        w = np.exp(logr - logr.max())
        w /= w.sum()
        summary = np.r_[w @ x, np.sqrt(np.maximum(w @ (x - w @ x) ** 2, 0.0))]
        sds = np.r_[summary[dim:], summary[dim:]]
        change = (
            np.inf
            if previous is None
            else float(np.max(np.abs(summary - previous) / sds))
        )
        if progress is not None:
            progress(n, len(x), change)
        done = change <= tol
        if done or spent + (n + 4) ** dim > max_evals:
            return HyperPosterior(mode, L, x, w, n, bool(done))
        previous, n = summary, n + 4


def marginal_quantiles(neg_logpost, post, c, probs, **grid):
    """Quantiles of ``v = c'x`` under the posterior (see :func:`marginal_density`)."""
    values, dens = marginal_density(neg_logpost, post, c, **grid)
    cdf = np.r_[0.0, cumulative_simpson(dens, x=values)]
    cdf /= cdf[-1]
    cdf = np.maximum.accumulate(cdf)
    return np.interp(probs, cdf, values)


def marginal_density(neg_logpost, post, c, *, n_grid=161, span=7.0, n_inner=None):
    """Density of ``v = c'x`` under the posterior on a grid of ``n_grid`` values
    (``span`` SDs either side of the mode), by integrating over the other
    directions at each value; normalised to integrate to 1 (Simpson's rule).
    Returns ``(values, density)``."""
    mode, L = post.mode, post.chol
    cov = L @ L.T
    var = float(c @ cov @ c)
    v_hat, sd = float(c @ mode), np.sqrt(var)
    # x = mode + k (v - v_hat) + N phi: k the regression of x on v,
    # N spans c's null space
    k = cov @ c / var
    cond = cov - np.outer(k, k) * var
    vals, vecs = np.linalg.eigh(0.5 * (cond + cond.T))
    keep = vals > 1e-12 * max(vals.max(), 1e-300)
    N = vecs[:, keep] * np.sqrt(vals[keep])
    inner = n_inner or max(5, min(15, int(round(4000 ** (1 / max(N.shape[1], 1))))))
    z, logw = product_rule(N.shape[1], inner)
    grid = v_hat + sd * np.linspace(-span, span, n_grid)
    f_mode = neg_logpost(mode)[0]
    # every grid value of v with every inner node, evaluated in one batch
    x = mode + k * (grid - v_hat)[:, None, None] + (z @ N.T)[None, :, :]
    f = _values(neg_logpost, x.reshape(-1, len(mode))).reshape(n_grid, len(z))
    terms = logw + 0.5 * np.sum(z * z, axis=1) - (f - f_mode)
    terms = np.where(np.isfinite(terms), terms, -np.inf)
    dens = np.exp(terms).sum(axis=1)
    return grid, dens / cumulative_simpson(dens, x=grid)[-1]
