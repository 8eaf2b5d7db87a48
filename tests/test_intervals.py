"""Intervals against R (glm, lme4), scipy and independent quadrature."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats
from skre.exceptions import BoundaryWarning, CollinearityWarning


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


@pytest.fixture(scope="module")
def m4(rats):
    return MultilevelBinomial(group="batch").fit(*rats)


def test_complete_pooling_confint_matches_r(rats, reference):
    ref = reference("rats_lme4.json")["complete_pooling"]
    cp = CompletePoolingBinomial(group="batch").fit(*rats)
    # R's SE uses the IRLS weights of the previous iteration (2e-5 relative)
    np.testing.assert_allclose(
        cp.confint().loc["intercept"], ref["wald_ci_95"], atol=5e-6
    )
    np.testing.assert_allclose(
        cp.confint(method="profile").loc["intercept"], ref["profile_ci_95"], atol=5e-6
    )
    ci = cp.confint(level=0.9)
    assert list(ci.columns) == ["5%", "95%"]


def test_multilevel_confint_matches_lme4(m4, reference):
    ref = reference("rats_lme4_intervals.json")["nagq25"]
    prof = m4.confint(method="profile")
    np.testing.assert_allclose(
        prof.loc["intercept"], ref["profile_ci_95"]["(Intercept)"], atol=1e-5
    )
    np.testing.assert_allclose(
        prof.loc["tau"], ref["profile_ci_95"]["sd_(Intercept)|batch"], atol=1e-5
    )
    # lme4 interpolates its profile with splines: agreement to ~1e-6
    np.testing.assert_allclose(prof.loc["tau"], [0.450709, 0.954939], atol=2e-6)
    np.testing.assert_allclose(prof.loc["intercept"], [-2.202855, -1.716614], atol=2e-6)
    wald = m4.confint()
    np.testing.assert_allclose(
        wald.loc["intercept"], ref["wald_ci_95"]["(Intercept)"], atol=1e-5
    )
    assert m4.vcov().iloc[0, 0] == pytest.approx(ref["vcov_hessian"], rel=1e-4)
    # Wald for tau is built on log tau: positive, and asymmetric around tau
    lo, hi = wald.loc["tau"]
    assert 0 < lo < m4.tau_ < hi
    assert np.log(hi) - np.log(m4.tau_) == pytest.approx(np.log(m4.tau_) - np.log(lo))


def test_profile_interval_is_where_the_profile_drops_by_the_chi2_quantile(m4):
    """Independent check: fix tau at each end, maximise over b with scipy."""
    target = m4.loglik_ - stats.chi2.ppf(0.95, 1) / 2
    ml = m4._fit_result.model
    for tau_end in m4.confint(method="profile").loc["tau"]:
        best = optimize.minimize_scalar(
            lambda b: -ml.value(np.array([b, tau_end])),
            bounds=(-4, 0),
            method="bounded",
            options={"xatol": 1e-10},
        )
        const = m4.loglik_ - ml.value(m4._fit_result.params)
        assert -best.fun + const == pytest.approx(target, abs=1e-6)


def test_no_pooling_intervals_for_a_batch_with_no_tumours(rats):
    npool = NoPoolingBinomial(group="batch").fit(*rats)
    prof = npool.group_estimates()
    assert prof.loc[1, "lower"] == 0.0 and 0.05 < prof.loc[1, "upper"] < 0.2
    exact = npool.group_estimates(method="exact")
    assert exact.loc[1, "lower"] == 0.0
    assert exact.loc[1, "upper"] == pytest.approx(0.1684335, abs=1e-7)
    m, n = rats[1].to_numpy().T
    for g in (1, 36, 71):
        ci = stats.binomtest(int(m[g - 1]), int(n[g - 1])).proportion_ci(method="exact")
        np.testing.assert_allclose(
            exact.loc[g, ["lower", "upper"]], [ci.low, ci.high], atol=1e-10
        )
    wald = npool.group_estimates(method="wald")
    # a 0/n batch: infinite logit, infinite SE, so the Wald interval is (0, 1)
    # (R's confint.default gives the same from glm's huge SE), never a point
    assert (wald.loc[1, "lower"], wald.loc[1, "upper"]) == (0.0, 1.0)
    p, k = m[70] / n[70], n[70]
    half = stats.norm.ppf(0.975) / np.sqrt(k * p * (1 - p))
    np.testing.assert_allclose(
        wald.loc[71, ["lower", "upper"]],
        expit(np.log(p / (1 - p)) + np.array([-half, half])),
        atol=1e-12,
    )
    X = rats[0].assign(x=np.arange(71.0))
    # one row per batch: x is constant within groups, dropped (and said so)
    with pytest.warns(CollinearityWarning, match="'x' is constant within every group"):
        est = NoPoolingBinomial(group="batch").fit(X, rats[1])
    with pytest.raises(ValueError, match="intercept-only"):
        est.group_estimates(method="exact")


def test_multilevel_group_intervals_are_conditional_quantiles(m4):
    """The interval holds 95% of the batch's conditional distribution, by quad."""
    b, tau = m4.intercept_, m4.tau_
    table = m4.group_estimates()
    for g, (m, n) in {1: (0, 20), 71: (4, 14), 67: (16, 52)}.items():

        def dens(u):
            eta = b + tau * u
            return np.exp(m * eta - n * np.logaddexp(0, eta) - u * u / 2)

        total = integrate.quad(dens, -15, 15, epsabs=0, epsrel=1e-12)[0]
        for q, col in ((0.025, "lower"), (0.975, "upper")):
            u_q = optimize.brentq(
                lambda v: (
                    integrate.quad(dens, -15, v, epsabs=0, epsrel=1e-12)[0] / total - q
                ),
                -15,
                15,
                xtol=1e-12,
            )
            assert table.loc[g, col] == pytest.approx(expit(b + tau * u_q), rel=2e-4)
    assert 0 < table.loc[1, "lower"] < table.loc[1, "upper"] < 1


def test_conditional_modes_and_sds(rats, reference):
    ref = reference("rats_lme4_intervals.json")
    lap = MultilevelBinomial(group="batch", n_quad=1).fit(*rats)
    np.testing.assert_allclose(
        lap.random_effects_, ref["laplace"]["per_batch"]["cond_mode"], atol=1e-5
    )
    np.testing.assert_allclose(
        lap.random_effects_sd_, ref["laplace"]["per_batch"]["cond_sd"], atol=1e-5
    )
    # nAGQ = 25: skre's modes equal lme4's ranef (tests/test_reference_ranef.py);
    # checked here independently by a root finder
    m4 = MultilevelBinomial(group="batch").fit(*rats)
    m, n = rats[1].to_numpy().T
    b, tau = m4.intercept_, m4.tau_
    for g in (0, 35, 70):
        xi = optimize.brentq(
            lambda v: m[g] - n[g] * expit(b + v) - v / tau**2, -5, 5, xtol=1e-14
        )
        assert m4.random_effects_[g] == pytest.approx(xi, abs=1e-9)
        p = expit(b + xi)
        assert m4.random_effects_sd_[g] == pytest.approx(
            1 / np.sqrt(n[g] * p * (1 - p) + 1 / tau**2), abs=1e-9
        )


def test_prediction_interval(m4):
    assert m4.prediction_interval() == pytest.approx(m4.population_.interval(0.95))
    lo, hi = m4.prediction_interval(include_parameter_uncertainty=True)
    plo, phi = m4.prediction_interval()
    assert lo < plo and hi > phi
    # independent check: Monte Carlo over the normal approximation of (b, log tau)
    H = m4._fit_result.interior[2]
    cov = np.linalg.inv(H)
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal([m4.intercept_, np.log(m4.tau_)], cov, size=400_000)
    theta = expit(draws[:, 0] + np.exp(draws[:, 1]) * rng.standard_normal(len(draws)))
    np.testing.assert_allclose([lo, hi], np.quantile(theta, [0.025, 0.975]), rtol=5e-3)


def test_boundary_intervals_start_at_zero(reference_data):
    df = reference_data("sim_boundary.csv")
    with pytest.warns(BoundaryWarning):
        m = MultilevelBinomial(group="group").fit(df[["group"]], df[["m", "n"]])
    prof = m.confint(method="profile")
    lo, hi = prof.loc["tau"]
    assert lo == 0.0 and 0 < hi < 2
    # the upper end: the best fit with tau fixed there is chi2/2 below the maximum
    target = m.loglik_ - stats.chi2.ppf(0.95, 1) / 2
    const = m.loglik_ - m._fit_result.model.value(m._fit_result.params)
    best = optimize.minimize_scalar(
        lambda b: -m._fit_result.model.value(np.array([b, hi])),
        bounds=(-3, 2),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert -best.fun + const == pytest.approx(target, abs=1e-6)
    cp = CompletePoolingBinomial(group="group").fit(df[["group"]], df[["m", "n"]])
    np.testing.assert_allclose(
        prof.loc["intercept"], cp.confint(method="profile").loc["intercept"], atol=1e-8
    )
    assert np.isnan(m.confint().loc["tau", "97.5%"])
    assert np.all(np.isfinite(m.group_estimates()[["lower", "upper"]]))


@pytest.mark.slow
def test_profile_coverage_for_b_on_simulated_rats():
    """400 rats-sized data sets from the fitted model: the 95% profile interval
    for b covers the truth 93-97% of the time (benchmarks/coverage.py runs more
    and reports tau and per-batch theta)."""
    _, y = load_rats(return_X_y=True)
    n = y["n"].to_numpy()
    X = pd.DataFrame({"batch": np.arange(len(n))})
    rng = np.random.default_rng(20261125)
    b, tau = -1.94, 0.674
    hits = 0
    for _ in range(400):
        m = rng.binomial(n, expit(b + tau * rng.standard_normal(len(n))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BoundaryWarning)
            est = MultilevelBinomial(group="batch").fit(X, np.column_stack([m, n]))
            lo, hi = est.confint(method="profile").loc["intercept"]
        hits += lo <= b <= hi
    assert 0.93 <= hits / 400 <= 0.97
