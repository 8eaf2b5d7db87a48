"""``binary_rows``: counts as weighted binary rows, which every sklearn tool takes."""

import numpy as np
import pandas as pd

from ._validation import _counts, as_pandas, check_sample_weight, dense_array


def binary_rows(X, y, sample_weight=None):
    """Turn ``[successes, trials]`` counts into weighted binary rows.

    Each row of counts ``(m, n)`` becomes a success row (label 1, weight
    ``m``) and a failure row (label 0, weight ``n - m``), times the row's own
    ``sample_weight``; rows of weight 0 are dropped. This is the form that
    scikit-learn tools which inspect ``y`` expect: ``cross_val_predict``,
    most scorers (``neg_log_loss``, ``roc_auc``, ``neg_brier_score``),
    stratified splitters, ``CalibratedClassifierCV`` and successive halving
    all treat a 2-column ``y`` as a multi-output target and would silently
    fit skre on the ranks of the counts. skre fits the binary rows exactly as
    it fits the counts (identical parameters; row collapsing merges them back,
    so the fit is as fast). ``loglik_`` differs only by the binomial
    constants, which binary rows do not have (as in R).

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
        Rows of covariates and the group column; any dataframe with column
        names is returned as a pandas DataFrame.
    y : array-like of shape (n_samples, 2) or (n_samples,)
        Counts ``[successes, trials]``; 1-D binary labels are returned as they
        are.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights of the rows of counts.

    Returns
    -------
    X_rows : ndarray or DataFrame of shape (n_rows, n_features)
        The rows of X, each repeated for its success and failure row (a
        DataFrame gets a fresh RangeIndex).
    y_rows : ndarray of shape (n_rows,)
        1 for success rows, 0 for failure rows.
    sample_weight : ndarray of shape (n_rows,)
        The weights: successes and failures of the row (times its weight).

    Examples
    --------
    >>> from skre import MultilevelBinomial, binary_rows
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> Xb, yb, wb = binary_rows(X, y)
    >>> Xb.shape, int(yb.sum()), float(wb.sum())  # 14 batches have no tumour
    ((128, 1), 57, 1739.0)
    >>> counts = MultilevelBinomial(group="batch").fit(X, y)
    >>> rows = MultilevelBinomial(group="batch").fit(Xb, yb, sample_weight=wb)
    >>> rows.tau_ == counts.tau_
    True
    """
    X = as_pandas(X)
    frame = isinstance(X, pd.DataFrame)
    if not frame:
        X = dense_array(X, "X")
    y = as_pandas(y, "y")
    names = list(y.columns) if hasattr(y, "columns") else ["successes", "trials"]
    arr = dense_array(y, "y")
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
        w = check_sample_weight(sample_weight, len(arr))
        return X, arr.ravel(), w
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"y must be 1-D binary labels or (n, 2) counts [successes, trials]; "
            f"got shape {arr.shape}."
        )
    if len(X) != len(arr):
        raise ValueError(f"X has {len(X)} rows but y has {len(arr)}; they must match.")
    m, n = _counts(arr, names)
    w = check_sample_weight(sample_weight, len(arr))
    weights = np.column_stack([w * m, w * (n - m)]).ravel()  # success, failure
    keep = weights > 0
    index = np.repeat(np.arange(len(arr)), 2)[keep]
    X_rows = X.iloc[index].reset_index(drop=True) if frame else X[index]
    y_rows = np.tile(np.array([1, 0]), len(arr))[keep]
    return X_rows, y_rows, weights[keep]
