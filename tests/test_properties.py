"""Property-based tests: invariances of the fit on random small data (hypothesis).

Every property runs 200 examples in the full run and 50 in the quick tier
(``-m "not slow"``; tests/conftest.py picks the hypothesis profile), on data
kept small (at most 8 groups, 30 rows, 50 trials a row, intercept-only or one
covariate): about 45 s and 12 s on two cores. The estimator class is
drawn with the data, so each property covers all three estimators.
``derandomize=True`` makes every run draw the same examples (no flaky CI, and
strict xfails stay strict).
"""

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial

ESTIMATORS = [CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial]
SETTINGS = settings(  # max_examples from the profile (tests/conftest.py)
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# covariate values: a few repeated levels (rows that merge) and arbitrary reals
COVARIATE = st.one_of(
    st.sampled_from([-1.0, 0.0, 0.5, 2.0]),
    st.floats(-5, 5, allow_nan=False, allow_infinity=False),
)


@st.composite
def datasets(draw, classes=ESTIMATORS, binary=None, mixed=True, covariate=None):
    """``(cls, X, y)``: valid grouped data, counts or binary labels.

    ``mixed=True`` keeps at least one success and one failure overall (the
    data complete pooling can fit with a finite intercept); False also allows
    all-zero and all-success counts. ``covariate``: whether X has a covariate
    column ``x`` (None: drawn).
    """
    cls = draw(st.sampled_from(classes))
    n_groups = draw(st.integers(1, 8))
    n_rows = draw(st.integers(max(n_groups, 2), 30))
    codes = draw(
        st.lists(st.integers(0, n_groups - 1), min_size=n_rows, max_size=n_rows)
    )
    labels = np.array([f"g{c}" for c in codes], dtype=object)
    X = pd.DataFrame({"g": labels})
    if covariate is None:
        covariate = draw(st.booleans())
    if covariate:
        X["x"] = draw(st.lists(COVARIATE, min_size=n_rows, max_size=n_rows))
    if binary is None:
        binary = draw(st.booleans())
    if binary:
        y = np.array(
            draw(st.lists(st.integers(0, 1), min_size=n_rows, max_size=n_rows))
        )
        y[:2] = [0, 1]  # binary labels need both classes
        return cls, X, y
    n = np.array(draw(st.lists(st.integers(0, 50), min_size=n_rows, max_size=n_rows)))
    n[0] = max(n[0], 1)
    m = np.array([draw(st.integers(0, int(k))) for k in n])
    if mixed:
        n[:2] = np.maximum(n[:2], 1)
        m[0], m[1] = 0, n[1]  # one failure and one success
    return cls, X, np.column_stack([m, n])


def fit(cls, X, y, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # convergence, boundary, collinearity
        return cls(group="g").fit(X, y, sample_weight=sample_weight)


def fitted_state(est):
    """The numbers a fit produces, for exact comparison."""
    state = {"intercept_": est.intercept_, "coef_": est.coef_}
    for name in ("tau_", "group_intercepts_"):
        if hasattr(est, name):
            state[name] = getattr(est, name)
    return state


def assert_same_fit(a, b, X):
    sa, sb = fitted_state(a), fitted_state(b)
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def assert_valid_predictions(est, X):
    P = est.predict_proba(X)
    assert P.shape == (len(X), 2)
    assert np.all(np.isfinite(P)), P
    assert np.all((P >= 0) & (P <= 1)), P
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    # a new group: the population / pooled prediction
    P_new = est.predict_proba(X.assign(g="never seen"))
    assert np.all(np.isfinite(P_new)) and np.all((P_new >= 0) & (P_new <= 1))


# data on which the multilevel model used to fail (see tests/test_edge_cases.py)
ALL_ZERO = (
    MultilevelBinomial,
    pd.DataFrame({"g": ["g0", "g1"]}),
    np.array([[0, 5], [0, 3]]),
)
SEPARATED = (
    MultilevelBinomial,
    pd.DataFrame({"g": ["g0", "g0", "g1", "g1"], "x": [-1.0, 1.0, -1.0, 1.0]}),
    np.array([0, 1, 0, 1]),
)


@SETTINGS
@given(datasets(classes=[CompletePoolingBinomial, NoPoolingBinomial], mixed=False))
def test_pooled_fit_never_raises_and_predicts_probabilities(data):
    cls, X, y = data
    assert_valid_predictions(fit(cls, X, y), X)


@SETTINGS
@given(datasets(classes=[MultilevelBinomial], covariate=False))
def test_multilevel_fit_never_raises_and_predicts_probabilities(data):
    # intercept-only data with a success and a failure; covariates (which can
    # separate the outcomes) and all-zero counts are in the test below
    cls, X, y = data
    assert_valid_predictions(fit(cls, X, y), X)


@SETTINGS
@example(ALL_ZERO)
@example(SEPARATED)
@given(datasets(classes=[MultilevelBinomial], mixed=False))
def test_multilevel_degenerate_data_gives_probabilities(data):
    cls, X, y = data
    assert_valid_predictions(fit(cls, X, y), X)


@SETTINGS
@given(datasets(), st.randoms(use_true_random=False))
def test_row_order_does_not_change_the_fit(data, rnd):
    cls, X, y = data
    order = list(range(len(X)))
    rnd.shuffle(order)
    a = fit(cls, X, y)
    b = fit(cls, X.iloc[order].reset_index(drop=True), y[order])
    assert_same_fit(a, b, X)


@SETTINGS
@given(datasets(binary=False), st.data())
def test_splitting_a_row_does_not_change_the_fit(data, draw):
    cls, X, y = data
    i = draw.draw(st.integers(0, len(X) - 1), label="row")
    m, n = (int(v) for v in y[i])
    n1 = draw.draw(st.integers(0, n), label="n1")
    m1 = draw.draw(st.integers(max(0, m - (n - n1)), min(m, n1)), label="m1")
    X2 = pd.concat([X, X.iloc[[i]]], ignore_index=True)
    y2 = np.vstack([y, [[m - m1, n - n1]]])
    y2[i] = [m1, n1]
    assert_same_fit(fit(cls, X, y), fit(cls, X2, y2), X)


@SETTINGS
@given(datasets())
def test_doubling_weights_equals_duplicating_rows(data):
    cls, X, y = data
    weighted = fit(cls, X, y, sample_weight=np.full(len(X), 2.0))
    repeated = fit(cls, pd.concat([X, X], ignore_index=True), np.concatenate([y, y]))
    assert_same_fit(weighted, repeated, X)
    assert weighted.loglik_ == pytest.approx(repeated.loglik_, rel=1e-12, abs=1e-9)


@SETTINGS
@given(datasets())
def test_pickling_keeps_predictions(data):
    cls, X, y = data
    est = fit(cls, X, y)
    clone = pickle.loads(pickle.dumps(est))
    assert_same_fit(est, clone, X)
    with np.errstate(all="ignore"):  # a known 0/0 at fitted probabilities 0 or 1, see
        # test_edge_cases.py::test_pooled_group_estimates_at_probability_0_or_1
        pd.testing.assert_frame_equal(est.group_estimates(), clone.group_estimates())


@SETTINGS
@given(datasets(), st.booleans())
def test_fit_leaves_inputs_unmodified(data, weighted):
    cls, X, y = data
    w = np.arange(1.0, len(X) + 1) if weighted else None
    saved = copy.deepcopy((X, y, w))
    est = fit(cls, X, y, sample_weight=w)
    est.predict_proba(X)
    est.score(X, y, sample_weight=w)
    pd.testing.assert_frame_equal(X, saved[0])
    np.testing.assert_array_equal(y, saved[1])
    if weighted:
        np.testing.assert_array_equal(w, saved[2])


def _corrupt(X, y, kind, i):
    """A copy of ``(X, y, sample_weight)`` with one bad value in row ``i``."""
    X, y = X.copy(), np.array(y, dtype=float)
    w = None
    if kind == "nan covariate":
        X["x"] = 0.0 if "x" not in X else X["x"]
        X.loc[i, "x"] = np.nan
    elif kind == "inf covariate":
        X["x"] = 0.0 if "x" not in X else X["x"]
        X.loc[i, "x"] = -np.inf
    elif kind == "missing group":
        X.loc[i, "g"] = None
    elif kind == "nan y":
        y[i] = np.nan
    elif kind == "negative count":
        y[i, 0] = -1
    elif kind == "successes > trials":
        y[i] = [y[i, 1] + 1, y[i, 1]]
    elif kind == "non-integer count":
        y[i, 1] += 0.5
    elif kind == "negative weight":
        w = np.ones(len(X))
        w[i] = -1.0
    elif kind == "nan weight":
        w = np.ones(len(X))
        w[i] = np.nan
    return X, y, w


COUNT_ONLY = {"negative count", "successes > trials", "non-integer count"}


@SETTINGS
@given(
    datasets(),
    st.data(),
    st.sampled_from(
        [
            "nan covariate",
            "inf covariate",
            "missing group",
            "nan y",
            "negative count",
            "successes > trials",
            "non-integer count",
            "negative weight",
            "nan weight",
        ]
    ),
)
def test_invalid_data_raises_value_or_type_error_naming_the_row(data, draw, kind):
    cls, X, y = data
    if kind in COUNT_ONLY and y.ndim == 1:
        y = np.column_stack([y, np.ones_like(y)])
    i = draw.draw(st.integers(0, len(X) - 1), label="row")
    Xb, yb, w = _corrupt(X, y, kind, i)
    with pytest.raises((ValueError, TypeError)) as info:
        cls(group="g").fit(Xb, yb, sample_weight=w)
    message = str(info.value)
    assert message.strip()
    assert f"row {i}" in message or f"rows {i}," in message, message
