"""Does a direction of the slopes separate successes from failures?

A logistic model has infinite maximum-likelihood slopes exactly when some
direction ``(alpha, beta)``, ``beta != 0``, puts every all-failure row on one
side (``eta <= 0``), every all-success row on the other (``eta >= 0``) and
every mixed row on the line, with at least one row strictly off it (complete
or quasi-complete separation; Albert & Anderson 1984, Konis 2007). That is a
linear program, solved here with scipy's HiGHS.
"""

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

#: beyond this many rows the check is skipped (returns None)
MAX_ROWS = 200_000


def separates(Z, successes, trials, codes=None, n_groups=1):
    """True if the covariates separate the outcomes (with one free intercept per
    group when ``codes`` is given), False if not, None if the data are too
    large to check.

    Groups whose rows are all failures (or all successes) are left out: their
    intercept alone goes to -inf (+inf), whatever the slopes do.
    """
    Z = np.asarray(Z, dtype=float)
    n, p = Z.shape
    if p == 0:
        return False
    if n > MAX_ROWS:
        return None
    codes = np.zeros(n, dtype=np.intp) if codes is None else np.asarray(codes)
    zero = successes <= 0
    one = successes >= trials
    M = np.bincount(codes, successes, minlength=n_groups)
    N = np.bincount(codes, trials, minlength=n_groups)
    mixed_group = (M > 0) & (M < N)
    keep = mixed_group[codes]
    if not keep.any():
        return False
    used, group = np.unique(codes[keep], return_inverse=True)
    rows = np.flatnonzero(keep)
    dummies = sp.csr_matrix(
        (np.ones(len(rows)), (np.arange(len(rows)), group.ravel())),
        shape=(len(rows), len(used)),
    )
    A = sp.hstack([dummies, sp.csr_matrix(Z[rows])]).tocsr()
    z, o = zero[rows], one[rows]
    sign = np.where(z, 1.0, np.where(o, -1.0, 0.0))
    # maximise the margin sum: minimise sum(sign * eta) over |alpha|, |beta| <= 1
    c = np.asarray(A.T @ sign).ravel()
    inequality = sign != 0
    equality = ~inequality
    res = linprog(
        c,
        A_ub=sp.diags(sign[inequality]) @ A[inequality] if inequality.any() else None,
        b_ub=np.zeros(int(inequality.sum())) if inequality.any() else None,
        A_eq=A[equality] if equality.any() else None,
        b_eq=np.zeros(int(equality.sum())) if equality.any() else None,
        bounds=(-1.0, 1.0),
        method="highs",
    )
    if res.status != 0:
        return None
    return bool(-res.fun > 1e-7 * max(1.0, np.sqrt(len(rows))))


def separated(data, eta, codes=None, n_groups=1):
    """Whether the covariates of the collapsed rows ``data`` separate the
    outcomes: False when no fitted logit ``eta`` is beyond +-30 (no
    probability within 1e-13 of 0 or 1: a fit that stopped short of infinite
    slopes would have one), else the linear program's answer
    (:func:`separates`; None for data too large)."""
    if len(eta) and np.max(np.abs(eta)) <= 30.0:  # one pass when none is extreme
        return False
    if not np.any(np.abs(eta[np.isfinite(eta)]) > 30.0):
        return False
    return separates(data.Z, data.successes, data.trials, codes, n_groups)
