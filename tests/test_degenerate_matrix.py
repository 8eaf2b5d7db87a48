"""Every public method on every kind of fit, each cell a specific answer.

Fits: all-zero, all-one, one group, tau = 0 boundary, separation by a
covariate, an aliased covariate, and ``method="bayes"``; estimators: complete,
no and partial pooling. The expected answers come from closed forms (the
Clopper-Pearson one-sided bound ``1 - (alpha/2)^(1/N)``, the profile end
``log(expm1(q / 2N))`` of an intercept-only likelihood ``-N softplus(a)``),
from complete pooling (which a tau = 0 fit must equal) and from the fit
without the aliased column.
"""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit
from sklearn.model_selection import GroupKFold, cross_val_score

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats
from skre.exceptions import BoundaryWarning, SeparationWarning
from skre.plotting import CaterpillarDisplay, PopulationDisplay, ShrinkageDisplay
from skre.priors import HalfCauchy

matplotlib.use("Agg")

CP, NP, ML = CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial
Q95 = stats.chi2.ppf(0.95, 1)
TRIALS = np.array([10, 12, 8, 10, 20, 5])


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def data(case):
    X = pd.DataFrame({"g": list("abcdef")})
    if case == "all_zero":
        return X, pd.DataFrame({"m": 0, "n": TRIALS})
    if case == "all_one":
        return X, pd.DataFrame({"m": TRIALS, "n": TRIALS})
    if case == "one_group":
        return X.assign(g="a"), pd.DataFrame({"m": [3, 1, 2, 4, 5, 1], "n": TRIALS})
    if case == "boundary":  # identical proportions: the ML tau is 0
        return X, pd.DataFrame({"m": [3] * 6, "n": [10] * 6})
    if case == "separation":  # x < 0 all fail, x > 0 all succeed, in every group
        Xs = pd.DataFrame(
            {"g": np.repeat(list("abcd"), 4), "x": np.tile([-2.0, -1, 1, 2], 4)}
        )
        return Xs, pd.DataFrame({"m": np.tile([0, 0, 5, 5], 4), "n": 5})
    if case in ("aliased", "plain", "rats", "rats_aliased"):
        Xr, yr = load_rats(return_X_y=True)
        if case in ("aliased", "plain"):
            Xr = Xr.assign(x=np.arange(71) % 5 / 2.0)
        return (Xr.assign(c=1.0) if "aliased" in case else Xr), yr
    raise ValueError(case)


FITS = {}


def fit(cls, case, **params):
    key = (cls, case, tuple(sorted(params.items())))
    if key not in FITS:
        X, y = data(case)
        group = "batch" if case in ("aliased", "plain", "rats", "rats_aliased") else "g"
        FITS[key] = (quiet(cls(group=group, **params).fit, X, y), X, y)
    return FITS[key]


def one_sided(N, level=0.95):
    return 1 - ((1 - level) / 2) ** (1 / N)


# -- all zero / all one ----------------------------------------------------------------
@pytest.mark.parametrize("cls", [CP, NP, ML])
@pytest.mark.parametrize("case", ["all_zero", "all_one"])
def test_degenerate_predictions_and_score(cls, case):
    est, X, y = fit(cls, case)
    limit = 0.0 if case == "all_zero" else 1.0
    P = est.predict_proba(X)
    np.testing.assert_array_equal(P[:, 1], limit)
    np.testing.assert_array_equal(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.predict(X), int(limit))
    assert np.all(est.decision_function(X) == (-np.inf if limit == 0 else np.inf))
    assert est.score(X, y) == 0.0  # the data have probability 1 under the fit
    other = y.assign(m=np.where(limit == 0, 1, TRIALS - 1))  # an impossible outcome
    # costs log(eps) per such trial, as log_loss's clip (issue 22, item 9)
    eps = np.finfo(float).eps
    assert est.score(X, other) == pytest.approx(np.log(eps) * len(X) / TRIALS.sum())
    assert est.loglik_ == pytest.approx(0.0, abs=1e-12)  # sum of log C(n, 0) = 0


@pytest.mark.parametrize("cls", [CP, ML])
@pytest.mark.parametrize("case", ["all_zero", "all_one"])
def test_degenerate_intervals_are_one_sided_and_exact(cls, case):
    est, X, y = fit(cls, case)
    N = TRIALS.sum()
    table = est.group_estimates()
    bound = one_sided(N)
    if case == "all_zero":
        assert (table["lower"] == 0).all() and np.allclose(table["upper"], bound)
        assert est.intercept_ == -np.inf
    else:
        assert (table["upper"] == 1).all() and np.allclose(table["lower"], 1 - bound)
        assert est.intercept_ == np.inf
    wald = est.confint(method="wald")
    assert tuple(wald.loc["intercept"]) == (-np.inf, np.inf)
    prof = est.confint(method="profile")
    end = np.log(np.expm1(Q95 / (2 * N)))  # -N softplus(a) = -q/2
    if case == "all_zero":
        assert prof.loc["intercept", "2.5%"] == -np.inf
        assert prof.loc["intercept", "97.5%"] == pytest.approx(end, rel=1e-12)
    else:
        assert prof.loc["intercept", "97.5%"] == np.inf
        assert prof.loc["intercept", "2.5%"] == pytest.approx(-end, rel=1e-12)
    assert est.vcov().loc["intercept", "intercept"] == np.inf
    text = str(est.summary())
    assert ("-Inf" if case == "all_zero" else "Inf") in text and "one-sided" in text
    if cls is ML:
        assert tuple(prof.loc["tau"]) == (0.0, np.inf)  # not identified
        for with_params in (False, True):
            lo, hi = est.prediction_interval(include_parameter_uncertainty=with_params)
            expected = (0.0, bound) if case == "all_zero" else (1 - bound, 1.0)
            assert (lo, hi) == pytest.approx(expected, rel=1e-12)
        assert est.population_.mean() == (0.0 if case == "all_zero" else 1.0)


@pytest.mark.parametrize("case", ["all_zero", "all_one"])
def test_degenerate_no_pooling_intervals_per_group(case):
    est, X, y = fit(NP, case)
    exact = est.group_estimates(method="exact")
    per_group = one_sided(TRIALS)
    if case == "all_zero":
        np.testing.assert_allclose(exact["upper"], per_group, rtol=1e-12)
        assert (exact["lower"] == 0).all()
    else:
        np.testing.assert_allclose(exact["lower"], 1 - per_group, rtol=1e-12)
    prof = est.group_estimates()
    # the likelihood-ratio end: n log(1 - p) = -q/2
    ends = 1 - np.exp(-Q95 / (2 * TRIALS))
    if case == "all_zero":
        np.testing.assert_allclose(prof["upper"], ends, rtol=1e-9)
    wald = est.group_estimates(method="wald")
    assert (wald["lower"] == 0).all() and (wald["upper"] == 1).all()  # infinite SE


def test_cross_validation_with_an_all_zero_training_fold():
    X = pd.DataFrame({"g": list("abcd")})
    y = pd.DataFrame({"m": [0, 0, 3, 0], "n": [10, 10, 10, 10]})
    cv = [(np.array([0, 1]), np.array([2, 3]))]  # train on the all-zero groups
    for cls in (CP, NP, ML):
        score = quiet(cross_val_score, cls(group="g"), X, y, cv=cv, error_score="raise")
        # 3 successes the fit says are impossible, each log(eps) as in log_loss
        assert score[0] == pytest.approx(3 * np.log(np.finfo(float).eps) / 20)
    score = quiet(cross_val_score, ML(group="g"), X, y, cv=GroupKFold(2), groups=X["g"])
    assert not np.isnan(score).any()


# -- one group, boundary: the multilevel fit is complete pooling -----------------------
@pytest.mark.parametrize("case", ["one_group", "boundary"])
def test_tau_zero_fits_equal_complete_pooling(case):
    ml, X, y = fit(ML, case)
    cp = fit(CP, case)[0]
    assert ml.tau_ == 0.0 and ml.boundary_
    assert ml.intercept_ == pytest.approx(cp.intercept_, abs=1e-9)
    np.testing.assert_allclose(ml.predict_proba(X), cp.predict_proba(X), rtol=1e-9)
    for method in ("wald", "profile"):
        np.testing.assert_allclose(
            ml.confint(method=method).loc["intercept"],
            cp.confint(method=method).loc["intercept"],
            rtol=1e-7,
        )
    lo, hi = ml.confint(method="profile").loc["tau"]
    assert lo == 0.0 and 0 < hi < np.inf
    assert ml.confint(method="wald").loc["tau", "2.5%"] == 0.0
    np.testing.assert_allclose(
        ml.group_estimates()[["estimate", "lower", "upper"]],
        cp.group_estimates()[["estimate", "lower", "upper"]],
        rtol=1e-7,
    )
    # the prediction interval has positive width: b's Wald interval
    b, se = cp.intercept_, np.sqrt(cp.covariance_[0, 0])
    expected = expit(b + np.array([-1, 1]) * stats.norm.ppf(0.975) * se)
    for with_params in (False, True):
        got = ml.prediction_interval(include_parameter_uncertainty=with_params)
        np.testing.assert_allclose(got, expected, rtol=1e-7)
    assert "boundary" in str(ml.summary())


# -- separation ------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [CP, ML])
def test_separation(cls):
    X, y = data("separation")
    with pytest.warns(Warning) as caught:
        est = cls(group="g").fit(X, y)
    # the four groups are identical, so the multilevel tau is 0 as well
    expected = {SeparationWarning} | ({BoundaryWarning} if cls is ML else set())
    assert {w.category for w in caught} == expected
    separation = next(w for w in caught if w.category is SeparationWarning)
    assert "separate successes from failures" in str(separation.message)
    P = est.predict_proba(X)[:, 1]
    assert np.all((P >= 0) & (P <= 1)) and np.all(np.isfinite(P))
    assert np.all(P[y["m"].to_numpy() == 0] < 1e-6) and np.all(P[y["m"] > 0] > 1 - 1e-6)
    prof = quiet(est.confint, method="profile")
    assert profile_evaluations(est) <= 60_000  # was 618,540 (28 s): see below
    lo, hi = prof.loc["x"]
    assert 0 < lo < est.coef_[0] and hi == np.inf  # [l, inf): no finite upper end
    assert tuple(prof.loc["intercept"]) == (-np.inf, np.inf)  # flat profile
    assert est.vcov().loc["x", "x"] > 1e6  # a vanishing information
    assert "x" in str(est.summary())


def profile_evaluations(est):
    """Objective evaluations of est.confint(method="profile"). Under
    separation the constrained minima cannot converge (the slope runs off):
    each took 200 iterations of extrapolating line searches, and the flat
    intercept's bracket doubled 60 times a side; now 50 iterations, and a
    bracket still flat 1e8 out ends at infinity (about 31,000 evaluations)."""
    from skre._core import profile

    counts = []
    real = profile.minimize_smooth

    def counted(*args, **kwargs):
        res = real(*args, **kwargs)
        counts.append(res.n_eval)
        return res

    profile.minimize_smooth = counted
    try:
        quiet(est.confint, method="profile")
    finally:
        profile.minimize_smooth = real
    return sum(counts)


@pytest.mark.parametrize("cls", [CP, ML])
def test_overlapping_classes_do_not_claim_separation(cls):
    """A steep but finite slope (classes overlap near 0) puts points far out at
    probability 0 or 1: a finite, converged fit, so no SeparationWarning
    (issue 22, item 7: it used to warn that the covariates do not separate)."""
    X = pd.DataFrame({"g": list("abcd"), "x": [-0.01, 0.01, -10, 10]})
    y = pd.DataFrame({"m": [1, 9, 0, 10], "n": [10, 10, 10, 10]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = cls(group="g").fit(X, y)
    texts = " ".join(str(w.message) for w in caught)
    assert "numerically 0 or 1" not in texts and "separate" not in texts
    assert est.coef_[0] == pytest.approx(2 * np.log(9) / 0.02, rel=1e-6)


# -- aliased covariate -----------------------------------------------------------------
@pytest.mark.parametrize("cls", [CP, NP, ML])
def test_aliased_covariate_is_na_and_changes_nothing_else(cls):
    est, X, y = fit(cls, "aliased")
    ref = fit(cls, "plain")[0]
    assert est.coef_[-1] == 0.0 and est.n_params_ == ref.n_params_
    np.testing.assert_allclose(
        est.predict_proba(X), ref.predict_proba(X.drop(columns="c")), rtol=1e-9
    )
    cov = est.vcov()
    assert cov.loc["c"].isna().all()
    np.testing.assert_allclose(cov.drop(index="c", columns="c"), ref.vcov(), rtol=1e-6)
    if cls is NP:
        return
    for method in ("wald", "profile"):
        for _ in range(2):  # a second call gives the same (no state left behind)
            table = est.confint(method=method)
            assert table.loc["c"].isna().all()
            np.testing.assert_allclose(
                table.drop(index="c"), ref.confint(method=method), rtol=1e-6
            )


def test_aliased_covariate_in_bayes():
    est = fit(ML, "rats_aliased", method="bayes", tau_prior=HalfCauchy(1.0))[0]
    ref = fit(ML, "rats", method="bayes", tau_prior=HalfCauchy(1.0))[0]
    assert est.intercept_ == pytest.approx(ref.intercept_, rel=1e-9)
    post = est.posterior_summary()
    assert post.loc["c"].isna().all()
    np.testing.assert_allclose(post.drop(index="c"), ref.posterior_summary(), rtol=1e-6)


# -- bayes -----------------------------------------------------------------------------
def test_bayes_fit_methods():
    est, X, y = fit(ML, "rats", method="bayes", tau_prior=HalfCauchy(1.0))
    for name in ("confint", "vcov", "summary"):
        with pytest.raises(ValueError, match=rf"{name}\(\).*posterior_summary"):
            getattr(est, name)()
    P = est.predict_proba(X)[:, 1]
    assert np.all((P > 0) & (P < 1))
    assert est.prediction_interval() == est.population_.interval(0.95)
    table = est.group_estimates()
    assert (table["lower"] < table["estimate"]).all()
    assert (table["estimate"] < table["upper"]).all()
    assert np.isfinite(est.posterior_summary().to_numpy()).all()
    assert est.score(X, y) < 0


def test_bayes_refuses_data_without_successes():
    X, y = data("all_zero")
    est = ML(group="g", method="bayes", tau_prior=HalfCauchy(1.0))
    with pytest.raises(ValueError, match="improper.*method='ml'"):
        est.fit(X, y)
    assert not hasattr(est, "intercept_")


# -- displays on every kind of fit -----------------------------------------------------
@pytest.mark.parametrize(
    "case", ["all_zero", "all_one", "one_group", "boundary", "separation", "aliased"]
)
def test_displays_on_every_fit(case):
    ml = fit(ML, case)[0]
    npool = fit(NP, case)[0]
    cat = CaterpillarDisplay.from_estimator(ml)
    widths = cat.upper - cat.lower
    assert np.all(widths > 0)  # never a zero-width bar
    pop = PopulationDisplay.from_estimator(ml)
    assert pop.interval[1] > pop.interval[0]
    ShrinkageDisplay.from_estimators(npool, ml)
    matplotlib.pyplot.close("all")
