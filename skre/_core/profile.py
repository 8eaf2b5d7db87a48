"""Profile-likelihood (likelihood-ratio) intervals for linear functions of parameters.

Given a smooth negative log-likelihood ``f(x)`` with its gradient, minimised at
``x_hat``, the interval for ``v = c'x`` at level ``1 - alpha`` is the set of
``v`` whose profile ``min {f(x) : c'x = v}`` exceeds ``f(x_hat)`` by at most
``chi2_1(1 - alpha) / 2``. The constrained minimum is found in the null space
of ``c`` with the same BFGS wrapper as the fit; the ends by Brent's method.
"""

import numpy as np
from scipy.optimize import brentq

from .optimize import _positive_definite, minimize_smooth

#: iterations of each constrained minimum: converged profiles take a few to a
#: few dozen; where the nuisance parameters run off (separation) a solve never
#: converges, and 200 iterations of line searches that extrapolate there cost
#: 2,000 evaluations each (two slopes' profile intervals under separation: 28 s)
INNER_MAX_ITER = 50
#: how far (in units of the larger of the estimate, 1 and its first step) the
#: bracket looks for the rise before it calls the end infinite: a profile
#: still flat there is flat (an intercept under separation); each further
#: doubling costs a constrained solve that cannot converge
FLAT = 1e8


def profile_bounds(
    fun_grad,
    x_hat,
    c,
    drop,
    *,
    se,
    hess=None,
    lower_limit=-np.inf,
    f_at_lower_limit=None,
    start=None,
):
    """Ends of the likelihood-ratio interval for ``v = c'x``.

    Parameters
    ----------
    fun_grad : callable ``x -> (f, grad)``, ``f`` the negative log-likelihood.
    x_hat : the minimiser of ``f``.
    c : (k,) direction of the linear function.
    drop : allowed increase of ``f``, ``chi2_1(level) / 2``.
    se : a rough standard error of ``v`` (the Wald one), for the first bracket.
    hess : Hessian of ``f`` at ``x_hat`` (for the constrained optimizer's start).
    lower_limit, f_at_lower_limit : where ``v`` stops (e.g. ``log tau -> -inf``)
        and the profile there; the lower end is ``lower_limit`` when the profile
        never rises by ``drop`` before it.
    start : a point whose other coordinates (its part in the null space of
        ``c``) start each side's first constrained minimum, instead of
        ``x_hat``'s: off a stationary point of the nuisance parameters that
        is not their minimum away from ``x_hat`` (a symmetry's fixed point).

    Returns
    -------
    (lower, upper)
    """
    x_hat = np.asarray(x_hat, dtype=float)
    c = np.asarray(c, dtype=float)
    # profile c'x / K with K a power of 2 near |c| (exact): a slope on a
    # covariate of scale 1e-170 has |c| near 1e170 and c'c would overflow; the
    # ends are located to 1e-10 of this normalized scale (of the scale of v
    # itself that would mean nothing for a covariate in units of 1e-160)
    top = np.max(np.abs(c))
    K = 2.0 ** np.round(np.log2(top)) if top > 0 else 1.0
    ends = _profile_bounds(
        fun_grad,
        x_hat,
        c / K,
        drop,
        se / K,
        hess,
        lower_limit / K,
        f_at_lower_limit,
        xtol=1e-10,
        start=start,
    )
    return tuple(K * e for e in ends)


def _profile_bounds(
    fun_grad, x_hat, c, drop, se, hess, lower_limit, f_at_lower_limit, xtol, start
):
    k = len(x_hat)
    v_hat = float(c @ x_hat)
    f_hat = fun_grad(x_hat)[0]
    # orthonormal basis of the null space of c
    null = np.linalg.svd(c[None, :])[2][1:].T if k > 1 else np.zeros((1, 0))
    if hess is not None and k > 1:
        h_inv0 = _positive_definite(null.T @ hess @ null)
    else:
        h_inv0 = None
    starts, values = {}, {}
    phi_start = np.zeros(k - 1)
    if start is not None and k > 1:
        phi_start = null.T @ (np.asarray(start, dtype=float) - x_hat)

    def profile(v, side):
        """``(f(v) - f_hat - drop, solved)``, computed once per ``v``: brentq
        evaluates its bracket's ends again, and must see the signs the
        bracketing saw."""
        key = (side, float(v))
        if key not in values:
            values[key] = _evaluate(v, side)
        return values[key]

    def _evaluate(v, side):
        x0 = x_hat + c * (v - v_hat) / (c @ c)
        if k == 1:
            return fun_grad(x0)[0] - f_hat - drop, True

        def reduced(phi):
            f, g = fun_grad(x0 + null @ phi)
            return f, null.T @ g

        def solve(phi0):
            return minimize_smooth(
                reduced,
                phi0,
                hess_inv0=h_inv0,
                polish=1,
                measure_hessian=False,
                max_iter=INNER_MAX_ITER,
            )

        # warm start from the last solved point on this side; a run that did
        # not converge may have stopped on a plateau (a nuisance tau heading to
        # 0), from which the optimizer would not move at the next v
        res = solve(starts.get(side, phi_start))
        if not res.converged and side in starts:
            cold = solve(np.zeros(k - 1))  # the estimate's own nuisance values
            res = cold if cold.converged or cold.fun < res.fun else res
        if res.converged:
            starts[side] = res.x
        return res.fun - f_hat - drop, res.converged

    se = se if np.isfinite(se) and se > 0 else 0.1 * max(1.0, abs(v_hat))
    # under separation the Wald SE is astronomically large: bracket from a
    # step on the scale of the estimate instead (then doubling, as always)
    se = min(se, 10.0 * max(1.0, abs(v_hat)))
    ends = []
    for side in (-1.0, 1.0):
        if (
            side < 0
            and f_at_lower_limit is not None
            and f_at_lower_limit - f_hat <= drop
        ):
            ends.append(lower_limit)  # the profile never rises by `drop` on this side
            continue
        inner, step, outer = v_hat, se, None
        for _ in range(60):
            if step > FLAT * max(1.0, abs(v_hat), se):
                break  # no rise this far out: a flat profile, the end infinite
            trial = v_hat + side * step
            if side < 0 and trial <= lower_limit:
                trial = 0.5 * (inner + lower_limit)
            rise, solved = profile(trial, side)
            # a rise counts only where the inner minimum was found: far out on
            # a flat profile (separation) a failed inner optimizer overstates
            # it. An unsolved value is still an upper bound of the profile, so
            # a point at or below the cutoff moves the bracket's inner end;
            # one above it does not (brentq needs opposite signs at the ends)
            if rise > 0 and solved:
                outer = trial
                break
            if rise <= 0:
                inner = trial
            step = 2.0 * step
        if outer is None:
            ends.append(lower_limit if side < 0 else np.inf)
            continue
        ends.append(
            brentq(
                lambda v, s: profile(v, s)[0],
                inner,
                outer,
                args=(side,),
                xtol=xtol,
                rtol=1e-12,
                maxiter=500,
            )
        )
    return tuple(ends)
