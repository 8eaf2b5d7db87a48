"""Exact identities: aggregated = expanded rows, weights = repetition, order and
splitting of rows, no pooling = observed proportions, tau -> 0 = pooling."""

import numpy as np
import pandas as pd
import pytest

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats

ESTIMATORS = [CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial]


def expand(X, y):
    """One row per trial with a 0/1 outcome."""
    m, n = np.asarray(y, dtype=int).T
    rows = np.repeat(np.arange(len(X)), n)
    outcome = np.concatenate([np.r_[np.ones(a), np.zeros(b - a)] for a, b in zip(m, n)])
    return X.iloc[rows].reset_index(drop=True), outcome.astype(int)


def fitted_parameters(est):
    params = {"intercept": est.intercept_, "coef": est.coef_}
    for name in ("tau_", "group_intercepts_", "random_effects_"):
        if hasattr(est, name):
            params[name] = getattr(est, name)
    params["estimates"] = est.group_estimates()[
        ["estimate", "lower", "upper"]
    ].to_numpy()
    return params


def assert_same_fit(a, b, atol):
    pa, pb = fitted_parameters(a), fitted_parameters(b)
    for key in pa:
        np.testing.assert_allclose(pa[key], pb[key], atol=atol, rtol=0, err_msg=key)


def counts_with_covariate(seed=0, n_groups=25):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), 3)
    dose = np.tile([0.0, 1.0, 2.0], n_groups)
    n = rng.integers(3, 12, size=len(g))
    xi = rng.normal(0, 0.8, n_groups)[g]
    m = rng.binomial(n, 1 / (1 + np.exp(-(-0.7 + 0.5 * dose + xi))))
    return pd.DataFrame({"g": g, "dose": dose}), np.column_stack([m, n])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_rats_aggregated_equals_binary_rows(cls):
    X, y = load_rats(return_X_y=True)
    Xb, yb = expand(X, y)
    agg = cls(group="batch").fit(X, y)
    binary = cls(group="batch").fit(Xb, yb)
    assert_same_fit(agg, binary, atol=1e-6)
    # the score excludes binomial coefficients, so both forms score the same
    assert agg.score(X, y) == pytest.approx(agg.score(Xb, yb), abs=1e-10)
    # log-likelihoods differ exactly by the binomial constants, as in R
    from scipy.special import gammaln

    m, n = y.to_numpy().T
    const = np.sum(gammaln(n + 1) - gammaln(m + 1) - gammaln(n - m + 1))
    assert agg.loglik_ - binary.loglik_ == pytest.approx(const, abs=1e-6)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_covariates_aggregated_equals_binary_rows(cls):
    X, y = counts_with_covariate()
    Xb, yb = expand(X, y)
    assert_same_fit(cls(group="g").fit(X, y), cls(group="g").fit(Xb, yb), atol=1e-6)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_weights_equal_repeated_rows(cls):
    X, y = counts_with_covariate(seed=1)
    w = np.random.default_rng(2).integers(0, 4, size=len(X))
    w[0] = 0  # a zero weight drops the row, nothing else
    rep = np.repeat(np.arange(len(X)), w)
    weighted = cls(group="g").fit(X, y, sample_weight=w)
    repeated = cls(group="g").fit(X.iloc[rep], y[rep])
    assert_same_fit(weighted, repeated, atol=1e-8)
    assert weighted.loglik_ == pytest.approx(repeated.loglik_, abs=1e-8)
    assert weighted.score(X, y, sample_weight=w) == pytest.approx(
        repeated.score(X.iloc[rep], y[rep]), abs=1e-10
    )


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_row_order_and_row_splitting_do_not_change_the_fit(cls):
    X, y = counts_with_covariate(seed=3)
    ref = cls(group="g").fit(X, y)
    perm = np.random.default_rng(4).permutation(len(X))
    assert_same_fit(ref, cls(group="g").fit(X.iloc[perm], y[perm]), atol=1e-10)
    # split every row (m, n) into (a, k) and (m - a, n - k) of the same group
    k = y[:, 1] // 2
    a = np.minimum(y[:, 0], k)
    Xs = pd.concat([X, X], ignore_index=True)
    ys = np.vstack([np.column_stack([a, k]), y - np.column_stack([a, k])])
    assert_same_fit(ref, cls(group="g").fit(Xs, ys), atol=1e-10)


def test_intercept_only_no_pooling_is_the_observed_proportion():
    X, y = load_rats(return_X_y=True)
    est = NoPoolingBinomial(group="batch").fit(X, y).group_estimates()
    m, n = y.to_numpy().T
    np.testing.assert_allclose(est["estimate"], m / n, rtol=1e-12, atol=1e-15)
    assert np.all(est.loc[m == 0, "estimate"] == 0.0)


def test_tau_to_zero_is_complete_pooling():
    """Groups that differ by less than binomial noise give the pooled fit."""
    X = pd.DataFrame({"g": np.arange(40)})
    y = np.column_stack([np.full(40, 6), np.full(40, 20)])  # every group 6/20
    with pytest.warns(UserWarning, match="tau is 0"):
        m = MultilevelBinomial(group="g").fit(X, y)
    cp = CompletePoolingBinomial(group="g").fit(X, y)
    assert m.tau_ == 0.0
    assert m.intercept_ == pytest.approx(cp.intercept_, abs=1e-12)
    assert m.loglik_ == pytest.approx(cp.loglik_, abs=1e-10)
    np.testing.assert_allclose(m.group_estimates()["estimate"], 0.3, atol=1e-12)
