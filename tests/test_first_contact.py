"""Issue 23 ("First contact"): what a new user met on real data, the numbers.

Expected values come from R (tests/reference/rats_lme4.R, whose JSON holds
``deviance(glm(cbind(m, n - m) ~ 1, binomial))``) or from scipy's binomial
probabilities, never from skre.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats
from skre.exceptions import GroupLabelWarning

# Efron and Morris (1975): hits in the first 45 at-bats of the 1970 season
HITS = np.array([18, 17, 16, 15, 14, 14, 13, 12, 11, 11, 10, 10, 10, 10, 10, 9, 8, 7])


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


def _batting():
    return pd.DataFrame({"player": range(len(HITS))}), HITS


# -- the n_quad loop of the likelihood page -----------------------------------------
def test_fixed_rules_on_rats_do_not_warn(rats):
    """docs/user_guide/likelihood.rst fits n_quad = 2, 3, 5 on the rats: three
    QuadratureWarnings were printed there, blaming 'one binary trial per group'
    on batches of 10-52 rats. The page shows none, so none may be raised."""
    X, y = rats
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # skre's categories
        for k in (1, 2, 3, 5, 10, 25):
            MultilevelBinomial(group="batch", n_quad=k).fit(X, y)


# -- the R deviance ---------------------------------------------------------------
def test_residual_deviance_is_r_deviance(rats, reference):
    """summary() called -2 logLik (343.8) "deviance"; R's summary(glm) reports
    the residual deviance, 175.01 on 70 degrees of freedom."""
    X, y = rats
    s = CompletePoolingBinomial(group="batch").fit(X, y).summary()
    r = reference("rats_lme4.json")["complete_pooling"]  # R's deviance(glm)
    assert s.fit["residual deviance"] == pytest.approx(r["deviance"], rel=1e-9)
    assert s.fit["-2 logLik"] == pytest.approx(-2 * r["loglik"], rel=1e-9)
    text = str(s)
    assert "Residual deviance: 175.01  on 70  degrees of freedom" in text
    assert re.search(r"-2 logLik df.resid\n.* 343\.8 +70\n", text)
    assert "deviance df.resid" not in text


def _saturated(m, n, w=1.0):
    """log-likelihood of one probability per row, from scipy's binomial pmf."""
    return float(np.sum(w * stats.binom.logpmf(m, n, np.where(n > 0, m / n, 0))))


def test_residual_deviance_of_weighted_and_binary_rows(rats):
    """Measured from the rows as given, as R does: weight k is the row k times,
    binary rows have a saturated log-likelihood of 0; and no pooling of one row
    per batch is the saturated model (R: 5e-10, the glm's stopping point)."""
    X, y = rats
    m, n = y["m"].to_numpy(), y["n"].to_numpy()
    w = np.arange(71) % 3 + 1.0
    cp = CompletePoolingBinomial(group="batch").fit(X, y, sample_weight=w)
    expected = 2 * (_saturated(m, n, w) - cp.loglik_)
    assert cp.summary().fit["residual deviance"] == pytest.approx(expected, rel=1e-10)
    Xb = X.loc[X.index.repeat(n)].reset_index(drop=True)
    yb = np.concatenate([np.r_[np.ones(a), np.zeros(b - a)] for a, b in zip(m, n)])
    binary = CompletePoolingBinomial(group="batch").fit(Xb, yb).summary()
    assert binary.fit["residual deviance"] == pytest.approx(
        binary.fit["-2 logLik"], rel=1e-12
    )
    npool = NoPoolingBinomial(group="batch").fit(X, y)
    assert npool.summary().fit["residual deviance"] == pytest.approx(0, abs=1e-8)
    assert "Residual deviance: 0  on 0  degrees of freedom" in str(npool.summary())


# -- R's cbind(successes, failures) habit ---------------------------------------
def test_failures_for_trials_error_names_the_habit():
    """y = [successes, failures] with fewer failures than successes somewhere:
    the error says the second column counts trials (R's cbind habit)."""
    X, hits = _batting()
    y = np.c_[hits, 45 - hits]
    y[0] = [30, 15]  # a row with more successes than failures
    with pytest.raises(ValueError, match=r"successes exceed trials") as info:
        MultilevelBinomial(group="player").fit(X, y)
    message = str(info.value)
    assert "cbind(successes, failures)" in message
    assert "[successes, successes + failures]" in message


def test_summary_says_which_intervals():
    """Efron-Morris printed tau in (0.0002, 32.6) under 'wald', with no word of
    what that is or how to get the likelihood-ratio interval."""
    X, hits = _batting()
    m = MultilevelBinomial(group="player").fit(X, np.c_[hits, np.full(18, 45)])
    text = " ".join(str(m.summary()).split())
    assert "Confidence intervals (95%, Wald, tau's on the log scale" in text
    assert 'likelihood-ratio intervals: summary(method="profile")' in text
    profile = " ".join(str(m.summary(method="profile")).split())
    assert "Confidence intervals (95%, profile likelihood):" in profile
    # no pooling's shared slopes have Wald intervals only: no hint to a method
    # it refuses
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"g": np.repeat(np.arange(10), 20), "x": rng.normal(size=200)})
    npool = NoPoolingBinomial(group="g").fit(X, rng.integers(0, 2, 200))
    text = " ".join(str(npool.summary()).split())
    assert "Confidence intervals (95%, Wald):" in text and "profile" not in text


# -- group= left out ----------------------------------------------------------------
def test_batch_column_without_group_warns_with_the_fix(rats):
    """CompletePoolingBinomial().fit(X, y) on the rats fitted the batch number as
    a slope (~ 1 + batch, intercept -3.80) without a word."""
    X, y = rats
    with pytest.warns(GroupLabelWarning, match="looks like group labels") as caught:
        CompletePoolingBinomial().fit(X, y)
    message = str(caught[0].message)
    assert "column 'batch'" in message and "pass group='batch'" in message
    assert caught[0].filename == __file__  # the user's line, not skre's
    with pytest.warns(GroupLabelWarning, match=r"column 0 .*pass group=0"):
        CompletePoolingBinomial().fit(X.to_numpy(), y.to_numpy())
    # the fix: with group= the column is the groups; as float, a covariate
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupLabelWarning)
        CompletePoolingBinomial(group="batch").fit(X, y)
        CompletePoolingBinomial().fit(X.astype(float), y)


def _herds(n_rows=600, seed=0):
    """Binary rows of 60 herds (10 animals each), laid out herd by herd."""
    rng = np.random.default_rng(seed)
    herd = np.repeat(np.arange(1, 61), n_rows // 60)
    return pd.DataFrame({"herd": herd, "age": rng.uniform(1, 9, n_rows)}), (
        rng.integers(0, 2, n_rows)
    )


@pytest.mark.parametrize(
    "column, warns",
    [
        ("patient_id", True),  # named so, in any order
        ("schoolID", True),
        ("k", True),  # numbered 1..60, each herd's rows together
        ("age_years", False),  # 18 to 65: numbers, not labels
        ("parity", False),  # 0 to 12 in no order: a count
        ("dose", False),  # 0 to 3: too few values to be numbering groups
    ],
)
def test_which_integer_columns_look_like_labels(column, warns):
    X, y = _herds()
    rng = np.random.default_rng(1)
    values = {
        "patient_id": rng.permutation(X["herd"].to_numpy()),
        "schoolID": X["herd"].to_numpy(),
        "k": X["herd"].to_numpy(),
        "age_years": np.sort(rng.integers(18, 66, len(X))),
        "parity": rng.integers(0, 13, len(X)),
        "dose": np.repeat(np.arange(4), len(X) // 4),
    }[column]
    Xc = pd.DataFrame({column: values, "age": X["age"]})
    if warns:
        with pytest.warns(GroupLabelWarning, match=f"pass group='{column}'"):
            CompletePoolingBinomial().fit(Xc, y)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", GroupLabelWarning)
            CompletePoolingBinomial().fit(Xc, y)


def test_string_labels_without_group_name_the_fix():
    X, y = _herds()
    X["herd"] = "h" + X["herd"].astype(str)
    with pytest.raises(TypeError, match=r"If column 'herd' holds group labels, pass "):
        CompletePoolingBinomial().fit(X, y)


def test_binomial_model_covariates_are_taken_as_named():
    """binomial_model(covariates=[...]) names its covariates: none is taken
    for labels (the batch number as a covariate is what was asked for)."""
    from skre import binomial_model

    rats = load_rats().frame
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupLabelWarning)
        fit = binomial_model("m", "n", covariates=["batch"], data=rats)
    assert list(fit.covariates_) == ["batch"]


# -- counts where a tool reads y itself --------------------------------------------
def test_cross_val_predict_on_counts_names_binary_rows(rats):
    """cross_val_predict(method='predict_proba') label-encodes each column of y:
    the fits saw ranks, and failed with 'successes exceed trials ... rows 24,
    32' (rows of ranks)."""
    from sklearn.model_selection import GroupKFold, cross_val_predict

    X, y = rats
    cv = {"cv": GroupKFold(5), "groups": X["batch"]}
    est = MultilevelBinomial(group="batch")
    for method in ("predict_proba", "decision_function"):
        with pytest.raises(ValueError, match=r"skre\.binary_rows\(X, y\)"):
            cross_val_predict(est, X, y, method=method, **cv)
    # labels are not encoded: counts pass through, as before
    assert cross_val_predict(est, X, y, **cv).shape == (71,)


def test_scorer_reading_counts_names_binary_rows(rats):
    """scoring='neg_log_loss' on counts gave NaN on every fold, with a warning
    from log_loss about multi-output targets."""
    from sklearn.model_selection import GroupKFold, cross_val_score, cross_validate

    from skre import binary_rows
    from skre.metrics import joint_log_score

    X, y = rats
    cv = {"cv": GroupKFold(5), "groups": X["batch"]}
    est = CompletePoolingBinomial(group="batch")
    message = r"sklearn\.metrics\.log_loss, which reads y.*skre\.binary_rows"
    with pytest.raises(ValueError, match=message):
        cross_val_score(est, X, y, scoring="neg_log_loss", error_score="raise", **cv)
    with pytest.raises(ValueError, match="All the 5 fits failed") as info:
        cross_val_score(est, X, y, scoring="neg_log_loss", **cv)  # was NaN
    assert re.search(message, str(info.value))
    with pytest.raises(ValueError, match=r"roc_auc_score.*binary_rows"):
        cross_validate(  # several metrics: the first that reads y is named
            est, X, y, scoring=["roc_auc", "accuracy"], error_score="raise", **cv
        )
    # skre's own scores take counts
    own = cross_val_score(est, X, y, **cv)
    assert np.all(np.isfinite(own))
    np.testing.assert_array_equal(
        cross_val_score(est, X, y, scoring=joint_log_score, **cv), own
    )
    # and binary rows are what the message says: finite per-row log losses
    Xb, yb, wb = binary_rows(X, y)
    scores = cross_val_score(
        est,
        Xb,
        yb,
        scoring="neg_log_loss",
        cv=GroupKFold(5),
        groups=Xb["batch"],
        params={"sample_weight": wb},
    )
    assert np.all(np.isfinite(scores))


# -- same data, different held-out scores ----------------------------------------
def test_counts_and_binary_rows_score_alike_on_the_same_folds(rats):
    """The docs showed -0.4195 for counts and -0.4201 for binary rows: the fits
    are identical, GroupKFold's folds are not (it balances rows, and binary_rows
    gives a batch one or two). Folds by label alone give one score."""
    import sklearn
    from sklearn.model_selection import GroupKFold, cross_val_score, cross_validate

    from skre import binary_rows
    from skre.metrics import joint_log_score

    X, y = rats
    Xb, yb, wb = binary_rows(X, y)

    def folds(cv, frame):
        labels = frame["batch"].to_numpy()
        return [set(labels[test]) for _, test in cv.split(frame, groups=labels)]

    assert folds(GroupKFold(5), X) != folds(GroupKFold(5), Xb)
    same = GroupKFold(5, shuffle=True, random_state=0)
    assert folds(same, X) == folds(same, Xb)
    counts = cross_val_score(
        MultilevelBinomial(group="batch"), X, y, cv=same, groups=X["batch"]
    )
    with sklearn.config_context(enable_metadata_routing=True):
        est = (
            MultilevelBinomial(group="batch")
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=True)
        )
        rows = cross_validate(
            est,
            Xb,
            yb,
            cv=same,
            params={"sample_weight": wb, "groups": Xb["batch"]},
            scoring=joint_log_score.set_score_request(sample_weight=True),
        )["test_score"]
    np.testing.assert_allclose(rows, counts, rtol=1e-7)


# -- a quiet test suite ------------------------------------------------------------
def test_every_skre_warning_is_an_error_in_the_tests(request):
    """The root conftest.py makes each warning skre raises an error in the
    suite, so a test must assert it (pytest.warns) or filter it with a reason:
    a passing quick run printed 91 warnings that no test asserted."""
    import skre.exceptions

    rules = [
        arg for mark in request.node.iter_markers("filterwarnings") for arg in mark.args
    ]
    for name in skre.exceptions.__all__:
        category = getattr(skre.exceptions, name)
        assert f"error::{category.__module__}.{category.__qualname__}" in rules
        with pytest.raises(category):
            warnings.warn("unasserted", category, stacklevel=1)
