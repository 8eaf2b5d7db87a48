"""``binomial_model``: the lecture's one-call interface."""

import warnings

import numpy as np
import pandas as pd

from ._validation import dense_array
from .exceptions import GroupLabelWarning


def binomial_model(
    successes,
    trials,
    group=None,
    data=None,
    multilevel=False,
    covariates=None,
    **params,
):
    """Fit one of the three strategies, like the lecture's R ``binomial_model``.

    The lecture's ``binomial_model(m, n, group = batch, data = rats_df,
    multilevel = TRUE)`` in Python: no group fits complete pooling, a group
    fits no pooling, and ``multilevel=True`` partial pooling.

    Read more in the :ref:`User Guide <rats_guide>`.

    Parameters
    ----------
    successes, trials : str or array-like
        Column names in ``data``, or arrays of counts.
    group : str, array-like or None, default=None
        Group labels (a column name in ``data`` or an array). None fits complete
        pooling; a group fits no pooling, or partial pooling if ``multilevel``.
    data : DataFrame, optional
        Where the named columns live.
    multilevel : bool, default=False
        With a group, fit :class:`~skre.MultilevelBinomial` instead of
        :class:`~skre.NoPoolingBinomial`.
    covariates : list of str, optional
        Columns of ``data`` to use as covariates (fixed effects).
    **params
        Passed to the estimator (e.g. ``n_quad=1``).

    Returns
    -------
    estimator
        The fitted estimator.

    See Also
    --------
    CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial : The
        estimators it returns, for use in Pipelines and searches.

    Examples
    --------
    >>> from skre import binomial_model
    >>> from skre.datasets import load_rats
    >>> rats = load_rats().frame
    >>> m3 = binomial_model("m", "n", group="batch", data=rats)
    >>> type(m3).__name__
    'NoPoolingBinomial'
    >>> m4 = binomial_model("m", "n", group="batch", data=rats, multilevel=True)
    >>> round(m4.tau_, 3)
    0.674
    """
    from ._multilevel import MultilevelBinomial
    from ._pooling import CompletePoolingBinomial, NoPoolingBinomial

    def column(v, name):
        if isinstance(v, str):
            if data is None:
                raise ValueError(f"{name}={v!r} is a column name but data is None.")
            if v not in data.columns:
                raise ValueError(
                    f"{name} column {v!r} is not in data; its columns are "
                    f"{list(map(str, data.columns))}."
                )
            return data[v].to_numpy()
        if data is not None and np.ndim(v) == 1 and len(v) != len(data):
            raise ValueError(
                f"{name} has {len(v)} values but data has {len(data)} rows."
            )
        values = dense_array(v, name)
        if values.ndim != 1:
            raise ValueError(
                f"{name} must be one value per row (1-D); got shape {values.shape}."
            )
        return values

    if isinstance(covariates, str):
        covariates = [covariates]
    covariates = list(covariates or [])
    if isinstance(group, str) and group in covariates:
        raise ValueError(
            f"covariates includes the group column {group!r}; the group is not a "
            "covariate (drop it from covariates)."
        )
    if any(not isinstance(c, str) for c in covariates):
        raise TypeError("covariates must be column names (str) of data.")
    m, n = column(successes, "successes"), column(trials, "trials")
    columns = {c: column(c, "covariates") for c in covariates}
    lengths = {"successes": len(m), "trials": len(n)}
    lengths.update({f"covariate {c!r}": len(v) for c, v in columns.items()})
    if group is not None:
        columns["(group)"] = column(group, "group")  # checked here, placed below
        lengths["group"] = len(columns.pop("(group)"))
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise ValueError(
            f"binomial_model needs one value per row in each of "
            f"successes, trials, group and covariates; got {shown}."
        )
    X = pd.DataFrame(columns)
    if group is None:
        if multilevel:
            raise ValueError("multilevel=True needs a group.")
        if X.shape[1] == 0:
            X = pd.DataFrame({"(group)": np.zeros(len(m), dtype=int)})
            est = CompletePoolingBinomial(group="(group)", **params)
        else:
            est = CompletePoolingBinomial(**params)
    else:
        name = group if isinstance(group, str) else "group"
        X.insert(0, name, column(group, "group"))
        cls = MultilevelBinomial if multilevel else NoPoolingBinomial
        est = cls(group=name, **params)
    y = np.column_stack([m, n])
    if est.group is not None:
        return est.fit(X, y)
    with warnings.catch_warnings():  # covariates named as such are not labels
        warnings.filterwarnings(
            "ignore", ".*looks like group labels", GroupLabelWarning
        )
        return est.fit(X, y)
