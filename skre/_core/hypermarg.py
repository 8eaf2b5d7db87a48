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
  ``|s| <=`` the largest node and interpolated in between; beyond, where the
  rule has no information, ``log R`` continues as its second-order Taylor
  polynomial at the edge. Each slice's density is tabulated on its own grid
  (the conditional SDs grow by orders of magnitude towards tau = 0), and the
  marginal is their mixture.

Quantiles invert the CDF by cubic Hermite interpolation (the density is its
derivative). :func:`quantile_changes` repeats them on the grid of twice the
step and with the inner rules of two nodes fewer: the error estimates.
"""

import numpy as np
from numpy.polynomial import chebyshev
from scipy.integrate import cumulative_simpson
from scipy.interpolate import CubicHermiteSpline, CubicSpline

from .roots import solve_decreasing
from .rules import normal_rule, product_rule

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
    _, _, fine, spline = theta_grid(post, slices)
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
    U = np.linalg.qr(direction[:, None], mode="complete")[0][:, 1:]
    w, log_ow = product_rule(d - 1, sl.n + 2)
    pts = s[:, None, None] * direction + (w @ U.T)[None, :, :]
    vals = _interpolate(lr, sl.n, pts.reshape(-1, d)).reshape(len(s), len(w))
    top = vals.max(axis=1, keepdims=True)
    return top[:, 0] + np.log(np.exp(vals - top) @ np.exp(log_ow))


class CoefficientMarginal:
    """The posterior of ``v = c'x`` (c over the inner coordinates and theta,
    its theta entry 0) as the mixture over the slices of their conditional
    densities, each tabulated on its own grid of ``n_grid`` points over
    ``SPAN`` conditional SDs (the conditional SDs may differ by orders of
    magnitude between the bulk and the tail towards tau = 0)."""

    def __init__(self, post, c, slices=None, n_grid=401):
        slices = post.slices if slices is None else slices
        W = post.slice_weights(slices)
        c_in = np.asarray(c, dtype=float)[:-1]
        self.s = np.linspace(-SPAN, SPAN, n_grid)
        parts = []
        for sl, w in zip(slices, W):
            if w < 1e-14:
                continue
            a = sl.chol.T @ c_in
            alpha = float(np.linalg.norm(a))
            centre = float(c_in @ sl.centre)
            if w < TINY or sl.n == 1:  # a normal with the slice's moments
                mean, cov = sl.moments
                centre, alpha = float(c_in @ mean), float(np.sqrt(c_in @ cov @ c_in))
                dens = np.exp(-0.5 * self.s**2)
            else:
                edge = normal_rule(sl.n)[0].max()
                k = 2 * sl.n + 1
                cheb = np.cos(np.pi * (np.arange(k) + 0.5) / k) * edge
                log_r = _log_r_along(sl, a / alpha, cheb)
                coef = chebyshev.chebfit(cheb / edge, log_r - log_r.max(), k - 1)
                dens = np.exp(-0.5 * self.s**2 + _continued(coef, self.s / edge, edge))
            cdf = np.r_[0.0, cumulative_simpson(dens, x=self.s)]
            dens, cdf = dens / cdf[-1], cdf / cdf[-1]
            parts.append((w, centre, alpha, np.maximum.accumulate(cdf), dens))
        total = sum(p[0] for p in parts)
        self.parts = [(w / total, *rest) for w, *rest in parts]

    def density(self, v):
        v = np.asarray(v, dtype=float)
        out = np.zeros(v.shape)
        for w, centre, alpha, _, dens in self.parts:
            out += w * np.interp((v - centre) / alpha, self.s, dens, 0.0, 0.0) / alpha
        return out

    def cdf(self, v):
        """The CDF at v, each slice's by cubic Hermite interpolation on its
        grid (its density the derivative), and the density there."""
        v = np.asarray(v, dtype=float)
        F, f = np.zeros(v.shape), np.zeros(v.shape)
        s, step = self.s, self.s[1] - self.s[0]
        for w, centre, alpha, cdf, dens in self.parts:
            t = (v - centre) / alpha
            k = np.clip(((t - s[0]) // step).astype(int), 0, len(s) - 2)
            u = np.clip((t - s[k]) / step, 0.0, 1.0)
            h00, h10 = (1 + 2 * u) * (1 - u) ** 2, u * (1 - u) ** 2
            h01, h11 = u * u * (3 - 2 * u), u * u * (u - 1)
            val = h00 * cdf[k] + h01 * cdf[k + 1]
            val += step * (h10 * dens[k] + h11 * dens[k + 1])
            F += w * np.where(t < s[0], 0.0, np.where(t > s[-1], 1.0, val))
            f += w * np.interp(t, s, dens, 0.0, 0.0) / alpha
        return F, f

    def quantiles(self, probs):
        probs = np.atleast_1d(np.asarray(probs, dtype=float))
        lo = min(c - SPAN * a for _, c, a, _, _ in self.parts)
        hi = max(c + SPAN * a for _, c, a, _, _ in self.parts)

        def fun(v):
            F, f = self.cdf(v)
            return probs - F, -np.maximum(f, 1e-300)

        start = np.full(len(probs), sum(w * c for w, c, *_ in self.parts))
        lo, hi = np.full(len(probs), lo), np.full(len(probs), hi)
        return solve_decreasing(fun, start, lo, hi, tol=1e-13)[0]


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
    return CoefficientMarginal(post, c, slices).quantiles(probs)


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
