"""One-dimensional posterior marginals from the nested rule of
:mod:`skre._core.hyperpost`, without new likelihood evaluations.

* ``theta = log tau``: the log density of ``s`` (``theta = theta(s)``) is known
  at every slice of the uniform grid in ``s``; a cubic spline through it, on a
  grid 16 times finer, gives the density and (cumulative Simpson) the CDF.
* a coefficient ``v = c'x`` (x the inner coordinates): given theta its density
  is that of ``a'z`` under the slice's ``exp(l(z)) phi(z)`` (z the whitened
  coordinates, ``l`` the log ratio known at the Gauss-Hermite nodes). ``l`` is
  interpolated by the tensor polynomial through the nodes; along ``a`` the
  density ``phi(s) R(s)`` has ``R(s) = E_w exp(l(s a/|a| + U w))`` over the
  other directions (Gauss-Hermite in w), computed at Chebyshev points of
  ``|s| <= `` the largest node and interpolated in between (held at its edge
  values beyond, where the rule has no information: normal tails). The
  marginal is the mixture of these over the slices.

Quantiles invert the CDF by cubic Hermite interpolation (the density is its
derivative). :func:`quantile_changes` repeats them on the grid of twice the
step and with the inner rules of two nodes fewer: the error estimates.
"""

import numpy as np
from numpy.polynomial import chebyshev
from scipy.integrate import cumulative_simpson
from scipy.interpolate import CubicHermiteSpline, CubicSpline

from .rules import normal_rule

#: slices holding less than this share of the mass enter coefficient
#: marginals as normals with their moments
TINY = 1e-9
#: half-width of the grid of a coefficient, in conditional SDs
SPAN = 9.0


def theta_grid(post, slices=None, sub=16):
    """``(theta, density, s, spline)``: log tau on a grid ``sub`` times finer
    than the slices', its density, s there and the spline of log density in s."""
    slices = post.slices if slices is None else slices
    s = np.array([sl.s for sl in slices])
    lds = np.array([sl.log_mass for sl in slices]) + np.log(post.dtheta_ds(s))
    keep = np.isfinite(lds)
    spline = CubicSpline(s[keep], lds[keep] - lds[keep].max())
    fine = np.linspace(s[keep][0], s[keep][-1], sub * (keep.sum() - 1) + 1)
    dens_s = np.exp(spline(fine))
    return post.theta_of(fine), dens_s / post.dtheta_ds(fine), fine, spline


def theta_density(post, theta):
    """Density of log tau at ``theta`` (normalised over the slices' range)."""
    _, _, fine, spline = theta_grid(post)
    total = cumulative_simpson(np.exp(spline(fine)), x=fine)[-1]
    s = post.s_of(theta)
    inside = (s >= fine[0]) & (s <= fine[-1])
    out = np.where(inside, np.exp(spline(np.clip(s, fine[0], fine[-1]))), 0.0)
    return out / total / post.dtheta_ds(s)


def theta_quantiles(post, probs, slices=None):
    theta, dens, fine, spline = theta_grid(post, slices)
    dens_s = np.exp(spline(fine))
    return post.theta_of(_invert(fine, dens_s, probs))


def _invert(x, dens, probs):
    """Quantiles of a density known on the grid x (normalised here)."""
    cdf = np.r_[0.0, cumulative_simpson(dens, x=x)]
    total = cdf[-1]
    cdf, dens = cdf / total, dens / total
    cdf = np.maximum.accumulate(cdf)
    out = []
    for p in np.atleast_1d(probs):
        k = int(np.clip(np.searchsorted(cdf, p), 1, len(x) - 1))
        piece = CubicHermiteSpline(
            x[k - 1 : k + 1], cdf[k - 1 : k + 1], dens[k - 1 : k + 1]
        )
        roots = piece.solve(p, extrapolate=False)
        roots = roots[(roots >= x[k - 1]) & (roots <= x[k])]
        out.append(roots[0] if len(roots) else np.interp(p, cdf, x))
    return np.array(out)


def _lagrange(nodes, x):
    """(n, len(x)) Lagrange basis of ``nodes`` at ``x``."""
    n = len(nodes)
    B = np.ones((n, len(x)))
    for j in range(n):
        for k in range(n):
            if k != j:
                B[j] *= (x - nodes[k]) / (nodes[j] - nodes[k])
    return B


def _interpolate(values, n, z):
    """Tensor polynomial through ``values`` at the product nodes of the
    n-point normal rule, at the points z (m, d)."""
    d = z.shape[1]
    nodes = normal_rule(n)[0]
    T = values.reshape((n,) * d)
    # contract the last dimension first: (n,)*d x (n, m) -> (n,)*(d-1) x m
    out = np.tensordot(T, _lagrange(nodes, z[:, -1]), axes=([d - 1], [0]))
    for j in range(d - 2, -1, -1):
        B = _lagrange(nodes, z[:, j])  # (n, m)
        out = np.einsum("...im,im->...m", out, B)
    return out


def _log_r_along(sl, direction, s):
    """log R(s) for the unit vector ``direction`` in the slice's whitened
    coordinates (see the module docstring)."""
    d = len(direction)
    lr = np.where(np.isfinite(sl.log_ratio), sl.log_ratio, -745.0)
    if d == 1:
        return _interpolate(lr, sl.n, (direction[0] * s)[:, None])
    # an orthonormal basis of the other directions
    q, _ = np.linalg.qr(np.column_stack([direction, np.eye(d)[:, : d - 1]]))
    U = q[:, 1:]
    w, log_ow = _product_rule(d - 1, sl.n + 2)
    pts = s[:, None, None] * direction + (w @ U.T)[None, :, :]
    vals = _interpolate(lr, sl.n, pts.reshape(-1, d)).reshape(len(s), len(w))
    top = vals.max(axis=1, keepdims=True)
    return top[:, 0] + np.log(np.exp(vals - top) @ np.exp(log_ow))


def _product_rule(d, n):
    from .rules import product_rule

    return product_rule(d, n)


def coefficient_grid(post, c, slices=None, n_grid=801):
    """``(values, density)`` of ``v = c'x`` (c over the inner coordinates and
    theta; its theta entry must be 0), the mixture over the slices."""
    slices = post.slices if slices is None else slices
    W = post.slice_weights(slices)
    c_in = np.asarray(c, dtype=float)[:-1]
    centres = np.array([c_in @ sl.centre for sl in slices])
    a = [sl.chol.T @ c_in for sl in slices]
    alpha = np.array([np.linalg.norm(ai) for ai in a])
    use = W >= 1e-14
    lo = np.min((centres - SPAN * alpha)[use])
    hi = np.max((centres + SPAN * alpha)[use])
    v = np.linspace(lo, hi, n_grid)
    mix = np.zeros(n_grid)
    for sl, w, m, ai, al in zip(slices, W, centres, a, alpha):
        if w < 1e-14:
            continue
        s = (v - m) / al
        if w < TINY or sl.n == 1:  # a normal with the slice's moments
            mean, cov = sl.moments
            mu, sd = c_in @ mean, np.sqrt(c_in @ cov @ c_in)
            dens = np.exp(-0.5 * ((v - mu) / sd) ** 2)
        else:
            edge = normal_rule(sl.n)[0].max()
            k = 2 * sl.n + 1
            cheb = np.cos(np.pi * (np.arange(k) + 0.5) / k) * edge
            log_r = _log_r_along(sl, ai / al, cheb)
            coef = chebyshev.chebfit(cheb / edge, log_r - log_r.max(), k - 1)
            dens = np.exp(-0.5 * s * s + _continued(coef, s / edge, edge))
        total = cumulative_simpson(dens, x=v)[-1]
        if total > 0:
            mix += w * dens / total
    return v, mix


def _continued(coef, t, edge=1.0):
    """The Chebyshev series on [-1, 1], continued beyond by its second-order
    Taylor polynomial at the ends (curvature capped so that the tails of
    ``phi(s) exp(log R)`` still decay)."""
    out = chebyshev.chebval(np.clip(t, -1.0, 1.0), coef)
    d1, d2 = chebyshev.chebder(coef), chebyshev.chebder(coef, 2)
    for end in (-1.0, 1.0):
        past = t * end > 1.0
        if np.any(past):
            dt = t[past] - end
            curv = min(chebyshev.chebval(end, d2), 0.5 * edge * edge)
            out[past] += chebyshev.chebval(end, d1) * dt + 0.5 * curv * dt * dt
    return out


def coefficient_quantiles(post, c, probs, slices=None):
    v, dens = coefficient_grid(post, c, slices)
    return _invert(v, dens, probs)


def quantile_changes(post, C, probs, sds, results):
    """Largest changes (in posterior SDs) of the quantiles of the rows of C and
    of log tau's (``results``: the quantiles of every row, then of theta, on
    the full rule) on the grid of twice the step and with the coarser inner
    rules; ``sds`` the posterior SDs of the rows and of theta."""
    keep = np.isclose(np.mod(np.round(post.s / post.step), 2), 0)
    half = [sl for sl, k in zip(post.slices, keep) if k]
    lower = [sl.coarse if sl.coarse is not None else sl for sl in post.slices]
    out = {}
    for name, slices in (("step", half), ("order", lower)):
        worst = 0.0
        for c, sd, got in zip(C, sds[:-1], results[:-1]):
            q = coefficient_quantiles(post, c, probs, slices)
            worst = max(worst, float(np.max(np.abs(q - got)) / sd))
        q = theta_quantiles(post, probs, slices)
        worst = max(worst, float(np.max(np.abs(q - results[-1])) / sds[-1]))
        out[name] = worst
    return out
