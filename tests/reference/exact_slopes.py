"""An independent likelihood for random slopes: a plain tensor grid in b.

For tests of skre's random-slope fits (issue 25). Each group's likelihood
``int prod_i Binomial(m_i | n_i, expit(x_i' beta + b0 + r_i' b)) N(b; 0,
Sigma) db`` is computed by the trapezoid rule on a fixed grid in ``b``
itself, centred at 0 and spanning ``width`` SDs of ``Sigma`` along each
axis, with no mode, no scaling and no Gauss-Hermite rule: nothing that
skre's adaptive quadrature uses. The integrand is smooth and decays like a
Gaussian, so the rule converges geometrically in the step; the tests use it
where halving the step changes the value by less than 1e-10.
"""

import numpy as np


def group_integrands(X, R, m, n, beta, b, Sigma, points=161, width=8.0):
    """The grid (k, q), its cell volume and, per row, the binomial kernel at
    every grid point (rows, k), for the rows of one group."""
    q = R.shape[1]
    sd = np.sqrt(np.diag(Sigma))
    axes = [np.linspace(-width * s, width * s, points) for s in sd]
    mesh = np.meshgrid(*axes, indexing="ij")
    grid = np.stack([g.ravel() for g in mesh], axis=1)
    volume = np.prod([a[1] - a[0] for a in axes])
    Sinv = np.linalg.inv(Sigma)
    _, logdet = np.linalg.slogdet(Sigma)
    log_prior = (
        -0.5 * np.einsum("kj,jl,kl->k", grid, Sinv, grid)
        - 0.5 * logdet
        - 0.5 * q * np.log(2 * np.pi)
    )
    # trapezoid end weights along each axis
    w1 = np.ones(points)
    w1[[0, -1]] = 0.5
    wmesh = np.meshgrid(*([w1] * q), indexing="ij")
    log_trap = np.sum([np.log(w.ravel()) for w in wmesh], axis=0)
    eta = (X @ beta + b)[:, None] + R @ grid.T
    kern = m[:, None] * eta - n[:, None] * np.logaddexp(0.0, eta)
    return grid, log_prior + log_trap + np.log(volume), kern


def loglik(groups, X, R, m, n, beta, b, Sigma, points=161, width=8.0):
    """Sum over groups of the log marginal likelihood (binomial kernel only,
    no log C(n, m))."""
    total = 0.0
    for g in np.unique(groups):
        rows = groups == g
        _, log_w, kern = group_integrands(
            X[rows], R[rows], m[rows], n[rows], beta, b, Sigma, points, width
        )
        a = log_w + kern.sum(axis=0)
        top = a.max()
        total += top + np.log(np.exp(a - top).sum())
    return float(total)


def posterior_mean_p(X_new, R_new, group_rows, beta, b, Sigma, points=161):
    """E[expit(x' beta + b0 + r' b) | group's data] for new rows of a group
    (``group_rows`` = (X, R, m, n) of its training rows)."""
    X, R, m, n = group_rows
    grid, log_w, kern = group_integrands(X, R, m, n, beta, b, Sigma, points)
    a = log_w + kern.sum(axis=0)
    w = np.exp(a - a.max())
    w /= w.sum()
    eta = (X_new @ beta + b)[:, None] + R_new @ grid.T
    return (1.0 / (1.0 + np.exp(-eta))) @ w
