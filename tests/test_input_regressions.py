"""Regressions of issue 22, "Inputs and messages": each test failed before its fix.

Numbers are checked against independent computations (scikit-learn's
``LogisticRegression`` and ``log_loss``, scipy, direct formulas), never against
skre itself.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq, minimize_scalar
from scipy.special import expit, logit
from scipy.stats import binom
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.exceptions import SeparationWarning
from skre.metrics import joint_log_score
from skre.priors import HalfCauchy, Normal

ESTIMATORS = [CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial]

try:  # test dependencies; only the tests of item 1 need them
    import polars as pl
    import pyarrow as pa
except ImportError:  # pragma: no cover
    pl = pa = None

needs_arrow = pytest.mark.skipif(pa is None, reason="needs polars and pyarrow")


def grouped_binary(n_groups=6, per_group=12, seed=0):
    """Binary rows of a few groups with one covariate; classes overlap."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=len(g))
    y = (rng.random(len(g)) < expit(-0.3 + 0.8 * x + 0.4 * (g % 3 - 1))).astype(int)
    w = rng.integers(1, 4, len(g)).astype(float)
    return pd.DataFrame({"g": g, "x": x}), y, w


def sklearn_coefficients(X, y, w):
    """The complete-pooling maximum-likelihood fit, by scikit-learn."""
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
    lr.fit(X[["x"]].to_numpy(), y, sample_weight=w)
    return lr.intercept_[0], lr.coef_[0]


# -- 1. Arrow-backed y and sample_weight; lazy frames ------------------------------
ARROW_COLUMNS = {
    "polars Series": lambda v: pl.Series("v", v),
    "pyarrow ChunkedArray": lambda v: pa.chunked_array([v[:30], v[30:]]),
    "pyarrow Array": lambda v: pa.array(v),
}


@needs_arrow
@pytest.mark.parametrize("kind", ARROW_COLUMNS)
def test_arrow_backed_y_and_weights_fit_as_logistic_regression(kind):
    X, y, w = grouped_binary()
    as_arrow = ARROW_COLUMNS[kind]
    est = CompletePoolingBinomial(group="g").fit(X, as_arrow(y), as_arrow(w))
    intercept, coef = sklearn_coefficients(X, y, w)
    np.testing.assert_allclose(est.intercept_, intercept, rtol=1e-6)
    np.testing.assert_allclose(est.coef_, coef, rtol=1e-6)
    # score: the weighted mean log probability, by a direct formula
    p = expit(intercept + coef[0] * X["x"].to_numpy())
    direct = np.sum(w * np.where(y == 1, np.log(p), np.log1p(-p))) / w.sum()
    assert est.score(X, as_arrow(y), as_arrow(w)) == pytest.approx(direct, rel=1e-6)


@needs_arrow
@pytest.mark.parametrize("kind", ARROW_COLUMNS)
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_arrow_backed_y_and_weights_equal_numpy(kind, cls):
    X, y, w = grouped_binary()
    as_arrow = ARROW_COLUMNS[kind]
    a = cls(group="g").fit(X, y, w)
    b = cls(group="g").fit(X, as_arrow(y), sample_weight=as_arrow(w))
    assert b.intercept_ == a.intercept_ and np.array_equal(b.coef_, a.coef_)
    np.testing.assert_array_equal(b.classes_, [0, 1])


@needs_arrow
def test_arrow_backed_string_labels_and_no_pooling_estimates():
    """String labels through Arrow; no pooling's intercept-only estimate is the
    weighted observed proportion of each group."""
    X, y, w = grouped_binary()
    labels = np.where(y == 1, "yes", "no")
    est = NoPoolingBinomial(group="g").fit(
        X[["g"]], pl.Series(labels), sample_weight=pa.chunked_array([w])
    )
    np.testing.assert_array_equal(est.classes_, ["no", "yes"])
    frame = pd.DataFrame({"g": X["g"], "wy": w * y, "w": w}).groupby("g").sum()
    np.testing.assert_allclose(
        est.group_estimates()["estimate"], frame["wy"] / frame["w"], rtol=1e-9
    )


@needs_arrow
def test_polars_dataframe_counts_y():
    X, y, _ = grouped_binary()
    counts = pl.DataFrame({"m": y * 2, "n": np.full(len(y), 2)})
    est = CompletePoolingBinomial(group="g").fit(X, counts)
    # [2y, 2] counts are each binary row twice
    intercept, coef = sklearn_coefficients(X, y, np.full(len(y), 2.0))
    np.testing.assert_allclose([est.intercept_, *est.coef_], [intercept, *coef], 1e-6)


@needs_arrow
def test_arrow_nulls_are_reported_by_row():
    X, y, w = grouped_binary()
    with pytest.raises(ValueError, match="y contains NaN or infinity in row 3"):
        CompletePoolingBinomial(group="g").fit(
            X, pl.Series([*y[:3], None, *y[4:]], dtype=pl.Int64)
        )
    weights = pa.chunked_array([[*w[:5], None, *w[6:]]])
    with pytest.raises(ValueError, match="sample_weight contains NaN .* row 5"):
        CompletePoolingBinomial(group="g").fit(X, y, sample_weight=weights)


@needs_arrow
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_lazy_frames_are_refused_with_collect(cls):
    X, y, _ = grouped_binary()
    lazy_X = pl.from_pandas(X).lazy()
    with pytest.raises(TypeError, match=r"X is a polars LazyFrame.*\.collect\(\)"):
        cls(group="g").fit(lazy_X, y)
    lazy_y = pl.DataFrame({"y": y}).lazy()
    with pytest.raises(TypeError, match=r"y is a polars LazyFrame.*\.collect\(\)"):
        cls(group="g").fit(X, lazy_y)
    est = cls(group="g").fit(X, y)
    with pytest.raises(TypeError, match=r"\.collect\(\)"):
        est.predict_proba(lazy_X)


# -- 2. joint_log_score validates y for any classifier -----------------------------
def logistic_and_rows():
    X, y, _ = grouped_binary()
    lr = LogisticRegression().fit(X[["x"]], y)
    return lr, X[["x"]].iloc[:4], y


@pytest.mark.parametrize(
    "counts, message",
    [
        ([[3, 2], [1, 2], [0, 1], [1, 1]], r"successes exceed trials .* row 0"),
        ([[-1, 2], [1, 2], [0, 1], [1, 1]], r"'successes' has negative counts"),
        ([[1, 2], [1, -2], [0, 1], [1, 1]], r"'trials' has negative counts in row 1"),
        ([[1, 2], [0.5, 2], [0, 1], [1, 1]], r"non-integer counts in row 1"),
        ([[1, 2], [1, 2], [np.nan, 1], [1, 1]], r"NaN or infinity in row 2"),
        ([[0, 0]] * 4, r"score needs at least one trial with positive weight"),
    ],
)
def test_joint_log_score_refuses_counts_as_skre_score_does(counts, message):
    lr, X, _ = logistic_and_rows()
    with pytest.raises(ValueError, match=message):
        joint_log_score(lr, X, np.array(counts, dtype=float))
    X_all, y_all, _ = grouped_binary()
    skre_est = CompletePoolingBinomial().fit(X_all[["x"]], y_all)
    with pytest.raises(ValueError, match=message):
        skre_est.score(X, np.array(counts, dtype=float))


def test_joint_log_score_labels_and_lengths():
    lr, X, _ = logistic_and_rows()
    with pytest.raises(ValueError, match=r"labels not seen in fit \(2 in row 1\)"):
        joint_log_score(lr, X, [0, 2, 1, 0])
    with pytest.raises(ValueError, match="continuous"):
        joint_log_score(lr, X, [0, 0.5, 1, 0])
    with pytest.raises(ValueError, match="X has 4 rows but y has 3"):
        joint_log_score(lr, X, [0, 1, 1])
    with pytest.raises(ValueError, match="sample_weight is zero for every row"):
        joint_log_score(lr, X, [[1, 1]] * 4, sample_weight=[0, 0, 0, 0.0])
    with pytest.raises(ValueError, match="at least one trial with positive weight"):
        joint_log_score(lr, X, [[0, 1], [0, 0], [0, 0], [0, 0]], [0, 1, 1, 1])


def test_joint_log_score_counts_equal_log_loss_of_their_rows():

    X, y, _ = grouped_binary()
    lr = LogisticRegression().fit(X[["x"]], y)
    Xs = X[["x"]].iloc[:5]
    counts = np.array([[2, 3], [0, 1], [4, 4], [0, 0], [1, 5]])
    w = np.array([1.0, 2.0, 0.5, 3.0, 1.0])
    # the same trials as binary rows: one success row, one failure row
    rows = np.repeat(np.arange(5), 2)
    labels = np.tile([1, 0], 5)
    weights = np.column_stack([counts[:, 0], counts[:, 1] - counts[:, 0]]).ravel()
    weights = weights * w[rows]
    keep = weights > 0
    expected = -log_loss(
        labels[keep], lr.predict_proba(Xs.iloc[rows[keep]]), sample_weight=weights[keep]
    )
    got = joint_log_score(lr, Xs, counts, sample_weight=w)
    assert got == pytest.approx(expected, rel=1e-12)


# -- 3. a prior's argument without a prior ------------------------------------------
@pytest.mark.parametrize(
    "cls, name",
    [
        (MultilevelBinomial, "tau_prior"),
        (MultilevelBinomial, "coef_prior"),
        (CompletePoolingBinomial, "coef_prior"),
        (NoPoolingBinomial, "group_prior"),
    ],
)
def test_prior_argument_without_a_prior_names_the_prior(cls, name):

    est = cls(group="g")
    with pytest.raises(
        ValueError,
        match=rf"Invalid parameter '{name}__scale' for estimator {cls.__name__}: "
        rf"{name} is None, which has no argument 'scale'\. Set the prior first",
    ):
        est.set_params(**{f"{name}__scale": 1})
    assert getattr(est, name) is None  # nothing changed
    with pytest.raises(ValueError, match=rf"Invalid parameter '{name}__scale'"):
        est.set_params(**{name: None, f"{name}__scale": 1})
    # the prior and its argument in one call work
    prior = HalfCauchy if name == "tau_prior" else Normal
    est.set_params(**{name: prior(), f"{name}__scale": 2.0})
    assert getattr(est, name) == prior(scale=2.0)


def test_nested_argument_of_a_plain_parameter():
    est = MultilevelBinomial(group="g")
    with pytest.raises(
        ValueError, match=r"Invalid parameter 'group__x' .* group is 'g', which has no"
    ):
        est.set_params(group__x=1)
    assert est.group == "g"


# -- 5. True and 1 are distinct group labels ----------------------------------------
MERGING = [(True, 1), (True, 1.0), (False, 0), (np.True_, np.int64(1)), (0.0, False)]


@pytest.mark.parametrize("a, b", MERGING)
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_labels_python_would_merge_are_refused_in_fit(cls, a, b):
    X = pd.DataFrame({"g": pd.Series([a, a, b, b, "c", "c"], dtype=object)})
    y = np.array([[1, 4], [2, 4], [3, 4], [4, 4], [1, 3], [2, 3]])
    with pytest.raises(ValueError, match=r"the group column 'g' holds .* \(row [02]\)"):
        cls(group="g").fit(X, y)
    # an array X: the column by its position
    with pytest.raises(ValueError, match="the group column at position 0 holds"):
        cls(group=0).fit(X.to_numpy(), y)
    assert not hasattr(cls(group="g"), "groups_")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_labels_python_would_merge_are_refused_at_predict(cls):
    X = pd.DataFrame({"g": [True, True, False, False, True, False]})
    y = np.array([[0, 9], [1, 9], [8, 9], [9, 9], [1, 9], [7, 9]])
    est = cls(group="g").fit(X, y)
    np.testing.assert_array_equal(est.groups_, [False, True])
    numbers = pd.DataFrame({"g": pd.Series([True, 1], dtype=object)})
    for method in ("predict_proba", "predict", "decision_function"):
        with pytest.raises(ValueError, match=r"holds the boolean label True \(row 0\)"):
            getattr(est, method)(numbers)
    one = pd.DataFrame({"g": [0, 1]})  # integer labels where fit saw booleans
    for method in ("predict_proba", "predict", "decision_function"):
        with pytest.raises(
            ValueError,
            match=r"the group column 'g' holds 0 in row 0, and a group seen in fit "
            r"is False",
        ):
            getattr(est, method)(one)
    with pytest.raises(ValueError, match="a group seen in fit is False"):
        est.score(one, y[:2])
    # and the reverse: booleans where fit saw integers
    ints = cls(group="g").fit(X.assign(g=X["g"].astype(int)), y)
    with pytest.raises(ValueError, match="holds True in row 0, and a group seen"):
        ints.predict_proba(pd.DataFrame({"g": [True]}))
    # labels of the fit's own type are fine, and strings are not numbers
    assert est.predict_proba(X).shape == (6, 2)
    strings = cls(group="g").fit(X.assign(g=["True", "True", 1, 1, "True", 1]), y)
    assert sorted(map(str, strings.groups_)) == ["1", "True"]


# -- 7. SeparationWarning only for separation ----------------------------------------
def steep_but_overlapping():
    """Classes overlap at x = +-0.01 (1/10 and 9/10), so the slope is finite,
    100 log 9 (the logits of 0.1 and 0.9 are 0.02 apart), and the far rows at
    x = +-10 sit at probabilities within 1e-900 of 0 and 1."""
    X = pd.DataFrame({"g": list("abcd"), "x": [-0.01, 0.01, -10, 10]})
    y = pd.DataFrame({"m": [1, 9, 0, 10], "n": [10, 10, 10, 10]})
    return X, y


def test_steep_overlapping_fit_is_not_a_separation():

    X, y = steep_but_overlapping()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        est = CompletePoolingBinomial(group="g").fit(X, y)
    assert est.converged_
    # scikit-learn's unpenalized fit of the same trials as binary rows
    rows = np.repeat(np.arange(4), 10)
    labels = np.concatenate([np.arange(10) < m for m in y["m"]]).astype(int)
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
    lr.fit(X[["x"]].to_numpy()[rows], labels)
    assert est.coef_[0] == pytest.approx(100 * np.log(9), rel=1e-8)
    assert est.coef_[0] == pytest.approx(lr.coef_[0, 0], rel=1e-4)
    assert est.intercept_ == pytest.approx(0.0, abs=1e-8)


def test_steep_overlapping_within_groups_is_not_a_separation():
    """No pooling: each group's overlapping pair of rows pins the shared slope
    (100 log 9) and its own intercept; group b's row at x = 10 is then at
    probability 1 within 1e-1900, and it has no failure to contradict it."""

    X = pd.DataFrame({"g": list("aabbb"), "x": [-0.01, 0.01, -10.01, -9.99, 10]})
    y = pd.DataFrame({"m": [1, 9, 1, 9, 10], "n": [10] * 5})
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        est = NoPoolingBinomial(group="g").fit(X, y)
    assert est.converged_
    assert est.coef_[0] == pytest.approx(100 * np.log(9), rel=1e-8)


@pytest.mark.parametrize(
    "y", [[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]], ids=["complete", "quasi"]
)
@pytest.mark.parametrize("cls", [CompletePoolingBinomial, NoPoolingBinomial])
def test_separated_data_still_warn(cls, y):

    X = pd.DataFrame({"g": list("abababab"), "x": [0, 0, 1, 1, 2, 2, 3, 3.0]})
    with pytest.warns(SeparationWarning, match="separate successes from failures"):
        cls(group="g").fit(X, np.array(y))


# -- 6. complete pooling's group intervals under separation -------------------------
CHI2 = 3.841458820694124  # chi2_1 0.95 quantile


def quasi_separated():
    """x < 1 fails, x > 1 succeeds, x = 1 has one of each: the slope's
    maximum-likelihood estimate is infinite, the probability at x = 1 is 1/2."""
    X = pd.DataFrame({"g": list("aabbccdd"), "x": [0, 0, 1, 1, 2, 2, 3, 3.0]})
    return X, np.array([0, 0, 0, 1, 1, 1, 1, 1])


def direct_profile_end(X, y, x0, bracket):
    """The likelihood-ratio interval's end of P(success | x = x0), by 1-D
    minimisations: fix a + b x0 = logit(p), minimise over b, and solve for the
    p where the deviance rises by chi2_1(0.95) above its infimum 2 log 2 (the
    x = 1 pair at 1/2, every other row fitted exactly in the limit)."""

    x = X["x"].to_numpy()

    def nll(a, b):
        eta = a + b * x
        return np.sum(np.logaddexp(0, -eta) * y + np.logaddexp(0, eta) * (1 - y))

    def rise(p):
        lp = logit(p)
        return (
            minimize_scalar(lambda b: nll(lp - b * x0, b)).fun
            - 2 * np.log(2)
            - CHI2 / 2
        )

    return brentq(rise, *bracket, xtol=1e-12)


def test_separated_complete_pooling_intervals_are_profile_intervals():

    X, y = quasi_separated()
    with pytest.warns(SeparationWarning, match="separate successes"):
        est = CompletePoolingBinomial(group="g").fit(X, y)
    table = est.group_estimates()
    # a (x = 0, estimate 0): one-sided (0, upper); b (x = 1): 1/2 with the
    # binomial likelihood-ratio interval of 1 in 2, p (1 - p) >= exp(-chi2/2)/4
    assert table.loc["a", "lower"] == 0.0 and table.loc["a", "estimate"] < 1e-12
    assert table.loc["a", "upper"] == pytest.approx(
        direct_profile_end(X, y, 0.0, (1e-9, 0.5)), abs=1e-6
    )
    half_width = np.sqrt(1 - np.exp(-CHI2 / 2)) / 2
    np.testing.assert_allclose(
        table.loc["b", ["estimate", "lower", "upper"]],
        [0.5, 0.5 - half_width, 0.5 + half_width],
        atol=1e-7,
    )
    for g, x0 in (("c", 2.0), ("d", 3.0)):
        assert table.loc[g, "upper"] == 1.0
        assert table.loc[g, "lower"] == pytest.approx(
            direct_profile_end(X, y, x0, (0.3, 1 - 1e-9)), abs=1e-6
        )
    assert np.all(table["lower"] <= table["estimate"])
    assert np.all(table["estimate"] <= table["upper"])
    # the delta method, on request: what it gave before (zero width at b)
    wald = est.group_estimates(method="wald")
    assert wald.loc["b", "upper"] - wald.loc["b", "lower"] < 1e-6


def test_separated_groups_of_two_patterns_are_not_zero_width():
    """Every group holds a failure at x = 0 and a success at x = 1, so every
    group's mean probability is 1/2 at the (infinite) estimate. Its profile,
    min -4 [log(1 - p0) + log p1] given (p0 + p1) / 2 = v, is -4 log(2 - 2v)
    above 1/2: the interval is 1/2 +- (1/2 - exp(-chi2 / 8) / 2)."""

    X = pd.DataFrame({"g": list("aabbccdd"), "x": [0, 1, 0, 1, 0, 1, 0, 1.0]})
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    with pytest.warns(SeparationWarning):
        est = CompletePoolingBinomial(group="g").fit(X, y)
    table = est.group_estimates()
    end = np.exp(-CHI2 / 8) / 2
    np.testing.assert_allclose(table["lower"], end, rtol=1e-6)
    np.testing.assert_allclose(table["upper"], 1 - end, rtol=1e-6)
    np.testing.assert_allclose(table["estimate"], 0.5, rtol=1e-9)


def test_profile_group_intervals_of_a_finite_fit():
    """Intercept only: every group's profile interval is the likelihood-ratio
    interval of the pooled proportion, solved here with scipy."""

    X = pd.DataFrame({"g": list("abc")})
    y = np.array([[3, 10], [5, 12], [1, 9]])
    est = CompletePoolingBinomial(group="g").fit(X, y)
    M, N = 9, 31

    def rise(p):
        return 2 * (binom.logpmf(M, N, M / N) - binom.logpmf(M, N, p)) - CHI2

    expected = [brentq(rise, 1e-6, M / N), brentq(rise, M / N, 1 - 1e-6)]
    table = est.group_estimates(method="profile")
    np.testing.assert_allclose(table[["lower", "upper"]], [expected] * 3, rtol=1e-6)
    # no separation: the default stays the delta method
    wald = est.group_estimates()
    assert not np.allclose(wald["lower"], table["lower"], rtol=1e-6)
    with pytest.raises(
        ValueError, match=r"method must be one of \['wald', 'profile'\]"
    ):
        est.group_estimates(method="exact")


# -- 9. score clips point predictions as log_loss does ------------------------------
def test_no_pooling_score_of_a_zero_group_meeting_a_success_is_minus_log_loss():
    """Group a has 0 of 4 successes, so its estimate is exactly 0; a success of
    a in the scored data made the score -inf. scikit-learn's log_loss clips
    probabilities to [eps, 1 - eps], eps of float64."""

    X = pd.DataFrame({"g": list("aabbcc")})
    y = np.array([[0, 2], [0, 2], [1, 2], [2, 3], [3, 4], [1, 3]])
    est = NoPoolingBinomial(group="g").fit(X, y)
    assert est.group_estimates().loc["a", "estimate"] == 0.0
    X_new = pd.DataFrame({"g": list("aabc")})
    y_new = np.array([1, 0, 1, 0])
    expected = -log_loss(y_new, est.predict_proba(X_new), labels=[0, 1])
    score = est.score(X_new, y_new)
    assert np.isfinite(score)
    assert score == pytest.approx(expected, rel=1e-12)
    # the clipped trial costs log(eps)
    assert expected == pytest.approx(
        (np.log(np.finfo(float).eps) + np.log(1.0) + np.log(3 / 5) + np.log(1 - 4 / 7))
        / 4,
        rel=1e-12,
    )


@pytest.mark.parametrize("cls", [CompletePoolingBinomial, MultilevelBinomial])
def test_degenerate_fit_scores_minus_log_loss(cls):
    """Every training trial a failure: probability 0 of success everywhere."""

    X = pd.DataFrame({"g": list("abc")})
    with pytest.warns(SeparationWarning, match="every trial is a failure"):
        est = cls(group="g").fit(X, np.array([[0, 3], [0, 4], [0, 2]]))
    y_new = np.array([1, 0, 0])
    expected = -log_loss(y_new, est.predict_proba(X), labels=[0, 1])
    assert est.score(X, y_new) == pytest.approx(expected, rel=1e-12)


def test_joint_log_score_clips_another_classifiers_zero_probability():

    X = np.zeros((4, 1))
    dummy = DummyClassifier(strategy="most_frequent").fit(X, [0, 0, 0, 1])
    assert dummy.predict_proba(X)[0, 1] == 0.0
    y = np.array([1, 0, 0, 0])
    expected = -log_loss(y, dummy.predict_proba(X))
    assert joint_log_score(dummy, X, y) == pytest.approx(expected, rel=1e-12)
    counts = np.array([[1, 1], [0, 3]])
    assert joint_log_score(dummy, X[:2], counts) == pytest.approx(expected, rel=1e-12)


# -- 10. messages show plain numbers ------------------------------------------------
def _object_columns(*names):
    return pd.Index(list(names), dtype=object)


NUMPY_SCALAR_MESSAGES = {
    "group position": (
        lambda: CompletePoolingBinomial(group=np.int64(5)).fit(
            pd.DataFrame({"g": [1, 2], "x": [0.0, 1.0]}), [0, 1]
        ),
        "group column 5 is not in X",
    ),
    "group name for an array": (
        lambda: CompletePoolingBinomial(group=np.str_("g")).fit(
            np.zeros((2, 2)), [0, 1]
        ),
        "group='g' names a column",
    ),
    "prior argument": (
        lambda: Normal(scale=np.True_),
        r"scale must be a real number; got True \(bool\)",
    ),
    "covariate column": (
        lambda: CompletePoolingBinomial(group="g").fit(
            pd.DataFrame(
                [[1, "a"], [2, "b"]], columns=_object_columns("g", np.int64(7))
            ),
            [0, 1],
        ),
        "covariate column 7 has dtype",
    ),
    "duplicated columns": (
        lambda: CompletePoolingBinomial(group="g").fit(
            pd.DataFrame(
                [[1, 2.0, 3.0]], columns=_object_columns("g", np.int64(7), np.int64(7))
            ),
            [0],
        ),
        "X has duplicated column names: 7;",
    ),
    "count columns": (
        lambda: CompletePoolingBinomial().fit(
            np.ones((2, 1)),
            pd.DataFrame([[3, 2], [1, 2]], columns=_object_columns(np.int64(0), 1)),
        ),
        r"successes exceed trials \(0 > 1\) in row 0",
    ),
    "nested parameter": (
        lambda: MultilevelBinomial(group=np.str_("g")).set_params(group__x=1),
        "group is 'g', which has no argument 'x'",
    ),
    "population": (
        lambda: __import__("skre").LogitNormal(np.float64(np.nan), np.float64(1.0)),
        "got loc=nan, scale=1.0",
    ),
    "display level": (
        lambda: __import__("skre.plotting._base").plotting._base.check_level(
            np.float64(1.5)
        ),
        "got 1.5",
    ),
    "merged labels": (
        lambda: NoPoolingBinomial(group="g").fit(
            pd.DataFrame({"g": np.array([np.True_, np.int64(1)], dtype=object)}),
            [[1, 2], [1, 2]],
        ),
        r"holds the boolean label True \(row 0\) and the number 1 \(row 1\)",
    ),
    "unknown label in joint_log_score": (
        lambda: joint_log_score(
            LogisticRegression().fit([[0.0], [1.0]], [0, 1]), [[0.0]], np.array([2])
        ),
        r"labels not seen in fit \(2 in row 0\); classes_ is \[0, 1\]",
    ),
}


@pytest.mark.parametrize("case", NUMPY_SCALAR_MESSAGES)
def test_messages_show_numpy_scalars_as_plain_values(case):
    call, message = NUMPY_SCALAR_MESSAGES[case]
    with pytest.raises((ValueError, TypeError), match=message) as info:
        call()
    assert "np." not in str(info.value)
