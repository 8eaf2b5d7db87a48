"""compare_models: information criteria next to held-out scores, on folds
that hold out the same groups for every model."""

import numpy as np
import pandas as pd

from ._labels import group_column_name
from ._lr_checks import same_partition
from ._validation import _show

AIC_CV_NOTE = (
    "AIC and the held-out scores answer different questions. AIC estimates how "
    "well a model predicts new data from the same groups, and counts each fitted "
    "parameter once: no pooling's per-group intercepts are free parameters that "
    "fit these groups. The held-out scores (GroupKFold) ask about new groups, "
    "which no pooling cannot predict (it falls back on complete pooling) and "
    "partial pooling predicts from the population it estimated."
)


def compare_models(models, X, y, cv=5):
    """Compare fitted-from-scratch models on information criteria and held-out groups.

    Each model is fitted to ``(X, y)`` for its log-likelihood, parameter
    count, AIC and BIC, and cross-validated over held-out groups (GroupKFold
    on the models' group column, or the splitter given): the group-joint
    score (``score``, :data:`skre.metrics.joint_log_score`) and the per-row
    log score (mean log probability of each trial on its own), each as mean
    and standard error over folds, and the paired difference of each model's
    joint score from the best model's, fold by fold, with its standard error.
    The folds are shared, so the models with ``group=`` must group the rows
    alike (the same column, or another with the same partition of the rows);
    models grouped differently are refused (ValueError). Models without
    ``group=`` join any comparison.

    Parameters
    ----------
    models : dict or list of estimators
        The skre estimators (unfitted or fitted: each is cloned); a dict gives
        the row names, a list uses the class names.
    X : array-like or DataFrame of shape (n_samples, n_features)
        As the estimators take it.
    y : array-like of shape (n_samples,) or (n_samples, 2)
        Binary labels or ``[successes, trials]`` counts.
    cv : int or splitter, default=5
        Folds of GroupKFold over the group column, or a splitter whose
        ``split(X, y, groups)`` takes the group labels.

    Returns
    -------
    DataFrame
        One row per model: ``loglik``, ``n_params``, ``AIC``, ``BIC``,
        ``cv_joint`` and ``cv_joint_se``, ``cv_row`` and ``cv_row_se``,
        ``diff_from_best`` and ``diff_se``. ``attrs["note"]`` explains when
        AIC and the held-out scores disagree (and is empty otherwise);
        ``attrs["best"]`` names the best model by held-out joint score.

    Examples
    --------
    >>> from skre import (CompletePoolingBinomial, MultilevelBinomial,
    ...                   NoPoolingBinomial, compare_models)
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> table = compare_models(
    ...     {"complete": CompletePoolingBinomial(group="batch"),
    ...      "no pooling": NoPoolingBinomial(group="batch"),
    ...      "partial": MultilevelBinomial(group="batch")}, X, y)
    >>> table[["n_params", "AIC", "cv_joint"]].round(2)
                n_params     AIC  cv_joint
    complete           1  345.81     -0.43
    no pooling        71  310.80     -0.43
    partial            2  319.62     -0.42
    >>> table.attrs["best"]
    'partial'
    """
    import warnings

    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold

    from ._base import GroupedBinomialMixin
    from ._validation import as_pandas, dense_array

    if isinstance(models, dict):
        named = dict(models)
    else:
        named = {}
        for est in models:
            name = type(est).__name__
            named[name if name not in named else f"{name} #{len(named) + 1}"] = est
    if not named:
        raise ValueError("compare_models needs at least one model.")
    for name, est in named.items():
        if not isinstance(est, GroupedBinomialMixin):
            raise TypeError(
                f"model {_show(name)} is a {type(est).__name__}; compare_models takes "
                "skre estimators."
            )
    grouped = {name: est for name, est in named.items() if est.group is not None}
    if not grouped:
        raise ValueError("compare_models needs a model with group= to split by groups.")
    labels = _common_groups(grouped, as_pandas(X))
    splitter = (
        GroupKFold(n_splits=min(cv, len(np.unique(labels))))
        if isinstance(cv, (int, np.integer))
        else cv
    )
    X = as_pandas(X)
    y_arr = as_pandas(y)

    def take(data, idx):
        return data.iloc[idx] if hasattr(data, "iloc") else dense_array(data, "y")[idx]

    rows = {}
    folds = {}
    for name, est in named.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = clone(est).fit(X, y)
            joint, per_row = [], []
            for train, test in splitter.split(X, None, labels):
                m = clone(est).fit(take(X, train), take(y_arr, train))
                Xt, yt = take(X, test), take(y_arr, test)
                joint.append(m.score(Xt, yt))
                per_row.append(_row_score(m, Xt, yt))
        folds[name] = np.array(joint)
        k = len(joint)
        rows[name] = {
            "loglik": fitted.loglik_,
            "n_params": fitted.n_params_,
            "AIC": fitted.aic_,
            "BIC": fitted.bic_,
            "cv_joint": float(np.mean(joint)),
            "cv_joint_se": float(np.std(joint, ddof=1) / np.sqrt(k))
            if k > 1
            else np.nan,
            "cv_row": float(np.mean(per_row)),
            "cv_row_se": float(np.std(per_row, ddof=1) / np.sqrt(k))
            if k > 1
            else np.nan,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    best = table["cv_joint"].idxmax()
    for name in table.index:
        diff = folds[name] - folds[best]
        table.loc[name, "diff_from_best"] = float(np.mean(diff))
        table.loc[name, "diff_se"] = (
            float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
            if len(diff) > 1
            else np.nan
        )
    table["n_params"] = table["n_params"].astype(int)
    table.attrs["best"] = best
    table.attrs["note"] = AIC_CV_NOTE if table["AIC"].idxmin() != best else ""
    table.attrs["group"] = str(group_column_name(next(iter(grouped.values()))))
    return table


def _common_groups(grouped, X):
    """The group labels the folds are built from: one grouping shared by every
    model with ``group=`` (the same partition of the rows, whatever the
    column's name), else a ValueError: held-out groups of one model would
    not be held-out groups of another, and its score would be of other
    folds than the table says."""
    from ._validation import factorize, split_X

    first, labels, codes = None, None, None
    for name, est in grouped.items():
        own, _, _ = split_X(est, X, reset=True)
        own_codes = factorize(own)[0]
        if first is None:
            first, labels, codes = name, own, own_codes
        elif not same_partition(own_codes, codes):
            raise ValueError(
                "compare_models builds one set of folds over held-out groups, and "
                f"the models group the rows differently: {_show(first)} by "
                f"{_show(str(group_column_name(grouped[first])))}, {_show(name)} "
                f"by {_show(str(group_column_name(est)))}. Compare models grouped by "
                "the same column (models without group= may join any of them)."
            )
    return labels


def _row_score(est, X, y):
    """Mean log probability per trial, each trial on its own."""
    from ._validation import prepare

    rows = prepare(est, X, y, None, reset=False)
    lp0, lp1 = est._log_proba(X)
    m, n = rows.successes, rows.trials
    total = np.where(m > 0, m * lp1, 0.0) + np.where(n - m > 0, (n - m) * lp0, 0.0)
    return float(total.sum() / n.sum())
