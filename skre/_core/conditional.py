"""Quantiles of each group's conditional distribution of its effect.

The density ``exp(h_g(u))`` of every group is evaluated exactly on a grid
around its mode and integrated by the cumulative Simpson rule: the
intervals of :meth:`~skre.MultilevelBinomial.group_estimates` and the
inverse-CDF draws of ``simulate``, with no normal approximation.
"""

import numpy as np
from scipy.integrate import cumulative_simpson
from scipy.special import ndtri

from .binomial import kernel


def conditional_quantiles(
    model, params, probs, *, span=10.0, n_grid=401, posterior=None
):
    """Quantiles of each group's conditional distribution of ``u`` given its data.

    The density ``exp(h_g(u))`` is evaluated exactly on a grid of ``n_grid``
    points over ``u_hat +- span * s`` (s the Laplace scale), integrated by the
    cumulative Simpson rule and inverted within each cell (density taken as linear
    there); tails beyond
    ``span`` scales hold well under 1e-20 of the mass for these log-concave
    densities. ``probs`` is one list for every group, or an array of shape
    (n_groups, k) with each group's own probabilities (inverse-CDF draws).
    Returns an array of shape (n_groups, k).
    """
    data = model.data
    beta, b, tau = params[:-2], params[-2], params[-1]
    # the fitted posterior when given: answers must not depend on earlier calls
    post = posterior if posterior is not None else model.posterior(params)
    t = np.linspace(-span, span, n_grid)
    probs = np.asarray(probs, dtype=float)
    per_group = probs.ndim == 2
    probs = probs if per_group else np.atleast_1d(probs)
    if tau == 0.0:
        return post.mode[:, None] + ndtri(probs)  # u | y ~ N(0, 1)
    offset = model._offset(beta, b)
    out = np.empty((data.n_groups, probs.shape[-1]))
    # whole groups in chunks of about 2e6 rows x grid points
    rows_per_group = np.diff(np.r_[data.starts, len(data.codes)])
    chunk = (np.cumsum(rows_per_group) - 1) // max(1, 2_000_000 // n_grid)
    bounds = np.r_[0, np.flatnonzero(np.diff(chunk)) + 1, data.n_groups]
    for g0, g1 in zip(bounds[:-1], bounds[1:]):
        r0, r1 = (
            data.starts[g0],
            (data.starts[g1] if g1 < data.n_groups else len(data.codes)),
        )
        u = post.mode[g0:g1, None] + post.sd[g0:g1, None] * t[None, :]
        codes = data.codes[r0:r1] - g0
        eta = offset[r0:r1, None] + tau * u[codes]
        ll = kernel(eta, data.successes[r0:r1, None], data.trials[r0:r1, None])
        h = np.add.reduceat(ll, data.starts[g0:g1] - r0, axis=0) - 0.5 * u**2
        dens = np.exp(h - h.max(axis=1, keepdims=True))
        step = u[:, 1:] - u[:, :-1]
        cdf = np.concatenate(
            [np.zeros((g1 - g0, 1)), cumulative_simpson(dens, x=u, axis=1)], axis=1
        )
        dens /= cdf[:, -1:]
        cdf /= cdf[:, -1:]
        rows = np.arange(g1 - g0)
        for j in range(probs.shape[-1]):
            q = probs[g0:g1, j] if per_group else probs[j]
            k = np.clip((cdf < np.reshape(q, (-1, 1))).sum(axis=1), 1, n_grid - 1)
            # inside the cell the density is nearly linear: solve the quadratic
            f0, f1, hk = dens[rows, k - 1], dens[rows, k], step[rows, k - 1]
            a, c = (f1 - f0) / (2 * hk), cdf[rows, k - 1] - q
            disc = np.sqrt(np.maximum(f0 * f0 - 4 * a * c, 0.0))
            with np.errstate(invalid="ignore", divide="ignore"):
                quad = np.where(
                    np.abs(a) * hk > 1e-12 * np.maximum(f0, 1e-300),
                    (-f0 + disc) / (2 * a),
                    -c / np.maximum(f0, 1e-300),
                )
            out[g0:g1, j] = u[rows, k - 1] + np.clip(quad, 0.0, hk)
    return out
