"""Vectorised safeguarded Newton for many independent 1-D monotone equations."""

import numpy as np


def solve_decreasing(fun, x0, lo, hi, *, tol=1e-12, max_iter=100, last_step=0.0):
    """Roots of decreasing scalar functions, one per element, all at once.

    Parameters
    ----------
    fun : callable ``x -> (f, df, *extra)`` evaluating every equation at ``x``
        with ``df < 0``; ``extra`` is anything computed on the way.
    x0, lo, hi : arrays, start and a bracket ``f(lo) >= 0 >= f(hi)``.

    Newton steps that do not land strictly inside the current bracket are
    replaced by bisection, so the iteration cannot diverge or cycle (a step
    landing exactly on a bracket end would revisit a point already
    evaluated: on the twin-pair data of issue 22, at tau = 13, Newton went back
    and forth between two such points for all 100 iterations). It stops at
    the first ``x`` whose Newton step is below ``tol * (1 + |x|)`` everywhere
    and returns ``(x, extra, converged)`` with ``extra`` evaluated at that
    ``x``, so callers need no extra pass.

    With ``last_step > 0``, once every Newton step is below
    ``last_step * (1 + |x|)`` it takes that step and returns without evaluating
    there (``extra`` is then from the point before): Newton's error after it
    is of the order of the step squared, so ``last_step = 1e-7`` meets
    ``tol = 1e-12`` for callers that recompute what they need at the root
    themselves. It saves one evaluation of ``fun`` per solve.
    """
    x = np.clip(np.asarray(x0, dtype=float), lo, hi)
    lo = np.array(lo, dtype=float, copy=True)
    hi = np.array(hi, dtype=float, copy=True)
    for _ in range(max_iter):
        f, df, *extra = fun(x)
        step = -f / df
        size = (np.abs(step) / (1.0 + np.abs(x))).max()
        if size <= tol:
            return x, extra, True
        if last_step > 0 and size <= last_step:
            new = x + step
            if np.all((new >= lo) & (new <= hi)):
                return new, extra, True
        lo = np.where(f > 0, x, lo)
        hi = np.where(f < 0, x, hi)
        new = x + step
        outside = (new <= lo) | (new >= hi)
        if outside.any():  # bisect where Newton leaves the open bracket
            x = np.where(outside & (f != 0), 0.5 * (lo + hi), np.where(f == 0, x, new))
        else:  # (where f == 0 the step is 0: new is x)
            x = new
    return x, fun(x)[2:], False
