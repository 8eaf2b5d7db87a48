"""Loaders for bundled data and a simulator of the multilevel model."""

from importlib import resources

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.utils import Bunch, check_random_state


def load_rats(*, as_frame=True, return_X_y=False):
    """The rats tumour data: 71 batches, m tumours out of n rats.

    In each of 71 batches of laboratory rats, ``m`` of ``n`` rats developed a
    tumour (Tarone, 1982; Gelman et al., *Bayesian Data Analysis*, table 5.1):
    the example of the random-effects lecture that skre follows.

    Read more in the :ref:`User Guide <rats_guide>`.

    Parameters
    ----------
    as_frame : bool, default=True
        Return pandas objects (X a DataFrame with column ``batch``, y a DataFrame
        with columns ``m`` and ``n``); otherwise numpy arrays.
    return_X_y : bool, default=False
        Return ``(X, y)`` ready for the estimators instead of a Bunch.

    Returns
    -------
    Bunch or tuple
        Bunch with ``frame`` (batch, m, n), ``data`` (X), ``target`` (y),
        ``feature_names``, ``target_names`` and ``DESCR``.

    See Also
    --------
    make_grouped_binomial : Simulated data of the same shape, with a known truth.

    Examples
    --------
    >>> from skre.datasets import load_rats
    >>> rats = load_rats()
    >>> rats.frame.shape
    (71, 3)
    >>> int(rats.frame["m"].sum()), int(rats.frame["n"].sum())
    (267, 1739)
    """
    base = resources.files("skre.datasets")
    with (base / "data" / "rats.csv").open() as f:
        frame = pd.read_csv(f)
    descr = (base / "descr" / "rats.rst").read_text()
    X, y = frame[["batch"]], frame[["m", "n"]]
    if not as_frame:
        X, y = X.to_numpy(), y.to_numpy()
    if return_X_y:
        return X, y
    return Bunch(
        frame=frame if as_frame else None,
        data=X,
        target=y,
        feature_names=["batch"],
        target_names=["m", "n"],
        DESCR=descr,
    )


def make_grouped_binomial(
    n_groups=100,
    *,
    trials=20,
    intercept=-1.5,
    tau=0.7,
    n_features=0,
    coef=None,
    binary=False,
    random_state=None,
):
    """Simulate grouped binomial data from the multilevel model.

    ``logit theta_i = intercept + x_i' coef + xi_g(i)`` for row ``i`` in group
    ``g(i)``, with ``xi_g ~ N(0, tau^2)`` independently for each group ``g``.

    Read more in the :ref:`User Guide <priors_gridsearch>`, which simulates ten
    groups whose maximum-likelihood ``tau`` is 0.

    Parameters
    ----------
    n_groups : int, default=100
        Number of groups.
    trials : int or array-like of int, default=20
        Trials per group (one value, or one per group). With covariates or
        ``binary=True`` every trial is its own row with standard-normal covariates.
    intercept, tau : float
        ``b`` and the SD of the group effects on the logit scale.
    n_features : int, default=0
        Number of covariates.
    coef : array-like of shape (n_features,), optional
        Covariate effects; default ``0.5`` each.
    binary : bool, default=False
        Return one row per trial with a 0/1 outcome instead of counts.
    random_state : int, RandomState or None
        Seed or generator; the same seed gives the same data.

    Returns
    -------
    X : DataFrame
        Column ``group`` then covariates ``x0, x1, ...``.
    y : ndarray
        ``(n_rows, 2)`` counts ``[successes, trials]``, or ``(n_rows,)`` 0/1.
    xi : ndarray of shape (n_groups,)
        The true group effects.

    See Also
    --------
    load_rats : The real data of the lecture.
    skre.binary_rows : Counts as weighted binary rows.

    Examples
    --------
    >>> from skre.datasets import make_grouped_binomial
    >>> X, y, xi = make_grouped_binomial(5, trials=10, random_state=0)
    >>> X.shape, y.shape
    ((5, 1), (5, 2))
    """
    rng = check_random_state(random_state)
    n = np.broadcast_to(np.asarray(trials, dtype=np.int64), (n_groups,))
    coef = np.full(n_features, 0.5) if coef is None else np.asarray(coef, dtype=float)
    if coef.shape != (n_features,):
        raise ValueError(
            f"coef must have n_features={n_features} entries; got {coef.shape}."
        )
    xi = tau * rng.standard_normal(n_groups)
    if n_features == 0 and not binary:
        m = rng.binomial(n, expit(intercept + xi))
        return pd.DataFrame({"group": np.arange(n_groups)}), np.column_stack([m, n]), xi
    group = np.repeat(np.arange(n_groups), n)
    Z = rng.standard_normal((len(group), n_features))
    y = rng.binomial(1, expit(intercept + Z @ coef + xi[group]))
    X = pd.DataFrame(Z, columns=[f"x{j}" for j in range(n_features)])
    X.insert(0, "group", group)
    if binary:
        return X, y, xi
    return X, np.column_stack([y, np.ones_like(y)]), xi
