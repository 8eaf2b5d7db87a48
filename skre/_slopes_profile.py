"""Profile-likelihood intervals of a random-slope fit.

The fixed effects (intercept and slopes on the user's scale) and the SDs of
the random effects are profiled on the fit's own rule: each end is where the
log-likelihood, maximised over every other parameter, has dropped by
``chi2_1(level) / 2`` (:func:`skre._core.profile.profile_bounds`, the
constrained maxima by BFGS from the estimate's curvature).

The fixed effects are linear in the fit's parameters. The SD of effect ``j``
is the length of row ``j`` of the Cholesky factor ``L``; it is profiled in
polar coordinates of that row (the SD and ``j`` angles: ``L[j, 0] = s cos
a1``, ``L[j, 1] = s sin a1 cos a2``, ...), the same likelihood on the same
rule (reordering the effects instead would change an adaptive product
rule's nodes, hence its value, by the rule's error). The sign of a Cholesky
diagonal entry does not change the likelihood (it flips one standard normal
``u``), so the profiles run unconstrained, and an SD's lower end is 0 where
the profile at 0 is within the drop.

Correlations keep their Wald intervals on Fisher's z.
"""

import numpy as np
from scipy import stats

from ._core.optimize import _positive_definite, minimize_smooth
from ._core.profile import profile_bounds

#: a Cholesky diagonal entry below this is at 0 (a singular fit), and where
#: the profiles' constrained maxima also start from NUDGE instead
ZERO, NUDGE = 1e-8, 0.05
_FREE = object()  # ends(start=_FREE): from off the fixed points


def _diagonal_mask(q, diagonal):
    """Which packed Cholesky entries are on the diagonal."""
    if diagonal:
        return np.ones(q, dtype=bool)
    rows, cols = np.tril_indices(q)
    return rows == cols


def _negative(lik):
    """``x -> (-loglik, -gradient)`` of ``lik`` (its modes warm-started)."""

    def fun_grad(x):
        f, g, _, _ = lik.evaluate(x)
        if not np.isfinite(f):
            return np.inf, np.zeros(len(x))
        return -f, -g

    return fun_grad


class _Polar:
    """``x = (beta, b, theta)`` from ``y``, where row ``j`` of ``L`` is in
    polar coordinates ``(s, a_1, ..., a_j)``: ``y[k]`` is then effect ``j``'s SD."""

    def __init__(self, p, q, j):
        self.p, self.q, self.j = p, q, j
        rows, cols = np.tril_indices(q)
        self.at = p + 1 + np.flatnonzero(rows == j)  # row j's entries in x
        self.k = int(self.at[0])  # the SD's position in y

    def to_x(self, y):
        x = np.array(y, dtype=float)
        s, angles = y[self.k], y[self.k + 1 : self.k + 1 + self.j]
        row, rest = np.empty(self.j + 1), s
        for i, a in enumerate(angles):
            row[i] = rest * np.cos(a)
            rest = rest * np.sin(a)
        row[self.j] = rest
        x[self.at] = row
        return x

    def to_y(self, x):
        y = np.array(x, dtype=float)
        row = x[self.at]
        y[self.k] = np.sqrt(row @ row)
        for i in range(self.j):
            tail = np.sqrt(row[i + 1 :] @ row[i + 1 :])
            y[self.k + 1 + i] = np.arctan2(tail, row[i])
        return y

    def jacobian(self, y, h=1e-6):
        """``dx/dy`` (central differences of the map: no likelihood)."""
        J = np.eye(len(y))
        for i in range(self.k, self.k + 1 + self.j):
            up, down = y.copy(), y.copy()
            up[i] += h
            down[i] -= h
            J[:, i] = (self.to_x(up) - self.to_x(down)) / (2 * h)
        return J


def _in_polar(fun_grad, polar):
    """``fun_grad`` of ``x`` as a function of ``polar``'s ``y``."""

    def in_y(y):
        f, g = fun_grad(polar.to_x(y))
        return f, polar.jacobian(y).T @ g

    return in_y


def _min_at(fun_grad, y, fixed, hess):
    """``min f`` over the coordinates not ``fixed`` (bool), from ``y``."""
    free = ~fixed

    def reduced(z):
        full = y.copy()
        full[free] = z
        f, g = fun_grad(full)
        return f, g[free]

    res = minimize_smooth(
        reduced,
        y[free],
        hess_inv0=_positive_definite(hess[np.ix_(free, free)]),
        polish=1,
        measure_hessian=False,
    )
    return res.fun


def profile_rows(fit, data, lik_of, level, say=None):
    """``(fixed_rows, sd_rows)``: the ``(lower, upper)`` ends of the fixed
    effects (the rows of ``fit.fixed_map()``) and of each random effect's SD.

    ``data``: the fit's rows (:class:`~skre._core.slopes.SlopeData`);
    ``lik_of(data)``: the fit's likelihood (its rule, its prior) on rows;
    ``say(what)``: a progress callback (verbose) or None.
    """
    drop = stats.chi2.ppf(level, 1) / 2
    p = len(fit.design.covariates)
    aliased = np.r_[fit.design.aliased, np.zeros(len(fit.x) - p, dtype=bool)]
    free = ~aliased

    def ends(fg, x_hat, c, hess, lower_limit=-np.inf, f_lower=None, start=None):
        """The profile's ends; from ``start`` too where the fit is singular
        (the farther end of each side: both are ends of lower bounds of the
        profile, the higher of which is the profile)."""
        if start is True:
            one = ends(fg, x_hat, c, hess, lower_limit, f_lower)
            two = ends(fg, x_hat, c, hess, lower_limit, f_lower, _FREE)
            return min(one[0], two[0]), max(one[1], two[1])
        nudged = None
        if start is _FREE:
            nudged = _off_the_fixed_points(x_hat)[free]
        fixed = np.where(free, 0.0, x_hat)

        def reduced(z):
            full = fixed.copy()
            full[free] = z
            f, g = fg(full)
            return f, g[free]

        Hf = hess[np.ix_(free, free)]
        cov = np.linalg.pinv(Hf)
        se = float(np.sqrt(max(c[free] @ cov @ c[free], 0.0)))
        return profile_bounds(
            reduced,
            x_hat[free],
            c[free],
            drop,
            se=se,
            hess=Hf,
            lower_limit=lower_limit,
            f_at_lower_limit=f_lower,
            start=nudged,
        )

    q, diag = fit.q, fit.diagonal
    at = np.flatnonzero(np.r_[np.zeros(p + 1, bool), _diagonal_mask(q, diag)])
    singular = bool(np.any(np.abs(fit.x[at]) < ZERO))

    def _off_the_fixed_points(point):
        """``point`` (x, or y of a polar row) with the Cholesky diagonal
        entries at 0 moved off it (NUDGE), where the constrained maxima would
        otherwise stay: the likelihood is even in each of them."""
        out = point.copy()
        if polar_now[0] is None:
            out[at] = np.where(np.abs(out[at]) < ZERO, NUDGE, out[at])
            return out
        polar = polar_now[0]
        x = polar.to_x(point)
        x[at] = np.where(np.abs(x[at]) < ZERO, NUDGE, x[at])
        moved = polar.to_y(x)
        moved[polar.k] = point[polar.k]  # (the profiled SD is held anyway)
        return moved

    polar_now = [None]
    lik = lik_of(data)
    lik.u = fit.modes.copy()
    H = np.zeros((len(fit.x),) * 2)
    H[np.ix_(free, free)] = fit.information()[np.ix_(free, free)]
    fixed_rows = []
    for c in fit.fixed_map():
        if not np.any(c[free]):
            fixed_rows.append((np.nan, np.nan))  # an aliased covariate's slope
            continue
        fixed_rows.append(ends(_negative(lik), fit.x, c, H, start=singular or None))
        if say:
            say("fixed")
    sd_rows = []
    for j in range(fit.q):  # each SD: row j of L in polar coordinates
        if fit.diagonal or j == 0:  # the SD is an entry of x already
            c = np.zeros(len(fit.x))
            k = p + 1 + (j if fit.diagonal else 0)
            c[k] = 1.0
            fg, y_hat, Hy = _negative(lik), fit.x, H
            polar_now[0] = None
        else:
            polar = polar_now[0] = _Polar(p, fit.q, j)
            k, y_hat = polar.k, polar.to_y(fit.x)
            J = polar.jacobian(y_hat)
            Hy = J.T @ H @ J  # (the gradient vanishes at the estimate)
            fg = _in_polar(_negative(lik), polar)
            c = np.zeros(len(y_hat))
            c[k] = 1.0
        at_zero = y_hat.copy()
        at_zero[k] = 0.0
        held = aliased.copy()
        held[k] = True
        lik.u = fit.modes.copy()
        f_zero = _min_at(fg, at_zero, held, Hy)
        lik.u = fit.modes.copy()
        sd_rows.append(ends(fg, y_hat, c, Hy, 0.0, f_zero, singular or None))
        if say:
            say("SD")
    return fixed_rows, sd_rows
