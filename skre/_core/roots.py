"""Vectorised safeguarded Newton for many independent 1-D monotone equations."""

import numpy as np


def solve_decreasing(fun, x0, lo, hi, *, tol=1e-11, max_iter=100):
    """Roots of decreasing scalar functions, one per element, all at once.

    Parameters
    ----------
    fun : callable ``x -> (f, df)`` evaluating every equation at ``x`` with
        ``df < 0``.
    x0, lo, hi : arrays, start and a bracket ``f(lo) >= 0 >= f(hi)``.

    Newton steps that leave the current bracket are replaced by bisection, so
    the iteration cannot diverge. Returns ``(x, n_iter, converged)``.
    """
    x = np.clip(np.asarray(x0, dtype=float), lo, hi)
    lo = np.array(lo, dtype=float, copy=True)
    hi = np.array(hi, dtype=float, copy=True)
    for it in range(1, max_iter + 1):
        f, df = fun(x)
        lo = np.where(f > 0, x, lo)
        hi = np.where(f < 0, x, hi)
        step = -f / df
        new = x + step
        outside = (new < lo) | (new > hi)
        new = np.where(outside & (f != 0), 0.5 * (lo + hi), new)
        new = np.where(f == 0, x, new)
        change = np.abs(new - x)
        x = new
        if np.all(change <= tol * (1.0 + np.abs(x))):
            return x, it, True
    return x, max_iter, False
