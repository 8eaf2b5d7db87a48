"""Profile-likelihood intervals of a nested-groups fit.

The fixed effects (intercept and slopes on the user's scale) and the two SDs
are profiled on the fit's own rule: each end is where the log-likelihood,
maximised over every other parameter, has dropped by ``chi2_1(level) / 2``
(:func:`skre._core.profile.profile_bounds`, the constrained maxima by BFGS
from the estimate's curvature, with the rule's exact gradient).

The likelihood is even in each SD (its sign flips a standard normal effect),
so the profiles run unconstrained on the SDs' natural scale, and an SD's
lower end is 0 where the profile at 0 is within the drop. At an SD of 0 the
constrained maxima of the other parameters started there never leave it (a
fixed point of the symmetry): the profiles then also start from that SD at
:data:`NUDGE` and keep the farther end of each side.
"""

import numpy as np
from scipy import optimize

from ._intervals import profile_rows

#: where the profiles also start an SD that is 0 at the estimate
NUDGE = 0.05


def profile_intervals(fit, level):
    """``(fixed rows [(lower, upper)] of (intercept, slopes), [(lower,
    upper)] of (tau, tau_outer))``."""
    p = fit.p
    lik = fit.likelihood()
    x = fit.x

    def fun_grad(v):
        f, g, _, _ = lik.evaluate(v)
        if not np.isfinite(f):
            return np.inf, np.zeros(len(v))
        return -f, -g

    free = np.ones(len(x), dtype=bool)
    free[:p] = ~fit.design.aliased
    info = fit.information()
    cov = fit.covariance_of_x()
    C = fit.fixed_map()
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", C, cov, C), 0))
    at_zero = [k for k in (p + 1, p + 2) if x[k] == 0.0]
    starts = [None]
    if at_zero:
        nudged = x.copy()
        nudged[at_zero] = NUDGE
        starts.append(nudged)

    def widest(rows_of):
        ends = [rows_of(start) for start in starts]
        return [
            (min(e[i][0] for e in ends), max(e[i][1] for e in ends))
            for i in range(len(ends[0]))
        ]

    fixed = widest(
        lambda start: profile_rows(
            fun_grad, x, C, info, free, se, level, start=_start(start, free)
        )
    )
    sds = []
    for k in (p + 2, p + 1):  # tau (inner), tau_outer
        c = np.zeros((1, len(x)))
        c[0, k] = 1.0
        s = np.sqrt(cov[k, k]) if x[k] > 0 and cov[k, k] > 0 else max(0.1, x[k])
        f0 = _at_zero(fun_grad, x, k, free)
        sds += widest(
            lambda start, c=c, s=s, f0=f0: profile_rows(
                fun_grad,
                x,
                c,
                info,
                free,
                [s],
                level,
                lower_limit=0.0,
                f_at_lower_limit=f0,
                start=_start(start, free),
            )
        )
    return fixed, [tuple(float(v) for v in ends) for ends in sds]


def _start(start, free):
    return None if start is None else start[free]


def _at_zero(fun_grad, x, k, free):
    """The profile at SD ``k`` = 0: the smallest negative log-likelihood
    over the other free parameters (L-BFGS-B from the estimate and, where
    the other SD is 0 there, from it at :data:`NUDGE` too)."""
    others = free.copy()
    others[k] = False
    base = x.copy()
    base[k] = 0.0
    other_sd = (len(x) - 2) if k == len(x) - 1 else (len(x) - 1)

    def reduced(y):
        v = base.copy()
        v[others] = y
        f, g = fun_grad(v)
        return f, g[others]

    tries = [base.copy()]
    if base[other_sd] == 0.0:
        tries.append(base.copy())
        tries[-1][other_sd] = NUDGE
    best = np.inf
    for start in tries:
        res = optimize.minimize(
            reduced,
            start[others],
            jac=True,
            method="L-BFGS-B",
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500},
        )
        best = min(best, float(res.fun))
    return best
