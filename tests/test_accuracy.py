"""The default fit is exact and checked at its estimate (issue 22).

Every expected value comes from outside skre's Gauss-Hermite machinery: the
trapezoid-rule fit of ``tests/reference/exact_glmm.py`` (numpy and scipy's
BFGS), scipy's ``quad``, or lme4 (``tests/reference/toenail.R``).
"""

import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import expit, gammaln, log_expit

from skre import MultilevelBinomial
from skre.exceptions import BoundaryWarning, QuadratureWarning

REF = Path(__file__).parent / "reference"
sys.path.insert(0, str(REF))
import exact_glmm  # noqa: E402

sys.path.pop(0)


def toenail():
    d = pd.read_csv(REF / "data" / "toenail.csv")
    X = d.assign(treat_time=d.treat * d.time)[
        ["patient", "treat", "time", "treat_time"]
    ]
    return X, d["y"].to_numpy()


def params_of(est):
    return np.r_[est.coef_, est.intercept_, est.tau_]


def exact_fit(X, y, group, start, step=None):
    """The independent maximum-likelihood fit (binary rows)."""
    Z = X.drop(columns=group).to_numpy(dtype=float)
    data = exact_glmm.Grouped.of(X[group].to_numpy(), Z, y, np.ones(len(y)))
    params, loglik, _ = exact_glmm.fit(data, start, step=step)
    return params, loglik


def fit_quietly(est, X, y):
    """Fit, asserting that no warning is raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return est.fit(X, y)


def assert_exact(est, ref_params, ref_loglik):
    got = params_of(est)
    np.testing.assert_allclose(got, ref_params, rtol=1e-6, atol=1e-7)
    assert est.loglik_ == pytest.approx(ref_loglik, rel=1e-8)


@pytest.mark.slow  # 4.5 s: toenail at auto and 100 nodes
def test_toenail_default_is_the_exact_fit():
    """Toenail (tau ~ 4): 25 nodes (lme4's largest rule) leave tau 1.5e-3
    off; the default raises the nodes of the groups that need it (up to 101
    here) and equals the independent exact fit, without a warning. 0.2 gave
    tau = 4.00039 and blamed weak identification."""
    X, y = toenail()
    est = fit_quietly(MultilevelBinomial(group="patient"), X, y)
    start = params_of(est) + np.r_[0.05, -0.05, 0.05, 0.1, 0.3]  # perturbed
    ref_params, ref_loglik = exact_fit(X, y, "patient", start)
    assert ref_params[-1] == pytest.approx(4.00659, abs=1e-5)
    assert_exact(est, ref_params, ref_loglik)
    assert np.max(est._fit_result.n_quad) > 25


def test_new_group_predictions_integrate_the_population_exactly():
    """A new patient's probability is E[expit(b + x'beta + tau Z)] (scipy's
    quad), to rounding: 64 Gauss-Hermite nodes were 1.1e-5 off at tau = 4
    and 1.4% off at tau = 12.8 (issue 22)."""
    X, y = toenail()
    est = MultilevelBinomial(group="patient").fit(X, y)
    new = X.iloc[:7].assign(patient=-1)  # a patient not seen in fit
    got = est.predict_proba(new)[:, 1]
    eta = est.intercept_ + new.drop(columns="patient").to_numpy() @ est.coef_
    for e, p in zip(eta, got):
        turn = -e / est.tau_
        expected = integrate.quad(
            lambda z, e=e: expit(e + est.tau_ * z) * math.exp(-0.5 * z * z),
            -12,
            12,
            points=[turn - 1, turn, turn + 1],
            epsabs=0,
            epsrel=1e-13,
            limit=200,
        )[0] / math.sqrt(2 * math.pi)
        assert p == pytest.approx(expected, rel=1e-11)


def test_toenail_fixed_rules_equal_lme4():
    """n_quad=25 is lme4's nAGQ = 25 and n_quad=1 its Laplace fit (tight
    tolerances); at the Laplace estimate a 3-node check finds it far off and
    says so in numbers on the loglik_ scale."""
    ref = json.loads((REF / "toenail.json").read_text())["fits"]
    X, y = toenail()
    nodes25 = fit_quietly(MultilevelBinomial(group="patient", n_quad=25), X, y)
    with pytest.warns(QuadratureWarning) as caught:
        laplace = MultilevelBinomial(group="patient", n_quad=1).fit(X, y)
    for est, r in ((nodes25, ref["nagq25"]), (laplace, ref["laplace"])):
        fixef = r["fixef"]
        expected = [fixef["treat"], fixef["time"], fixef["treat:time"]]
        np.testing.assert_allclose(est.coef_, expected, rtol=1e-5)
        assert est.intercept_ == pytest.approx(fixef["(Intercept)"], rel=1e-5)
        assert est.tau_ == pytest.approx(r["tau"], rel=1e-5)
        assert est.loglik_ == pytest.approx(r["loglik_with_constants"], rel=1e-8)
        # lme4's as.data.frame(VarCorr(fit)), column for column
        vc, ref_vc = est.variance_components_, r["varcorr"]
        assert list(vc.columns) == list(ref_vc)
        assert list(vc["grp"]) == [ref_vc["grp"]]
        assert list(vc["var1"]) == [ref_vc["var1"]]
        assert vc["var2"].isna().all() and ref_vc["var2"] is None
        assert vc["vcov"][0] == pytest.approx(ref_vc["vcov"], rel=2e-5)
        assert vc["sdcor"][0] == pytest.approx(ref_vc["sdcor"], rel=1e-5)
    message = str(caught[0].message)
    assert "Laplace approximation (n_quad=1) is not accurate" in message
    assert f"instead of {laplace.loglik_:.8g}" in message
    assert "n_quad='auto'" in message and "weakly identified" not in message


@pytest.mark.slow  # 9 s: 10^4 single-row groups at 25 and 51 nodes
def test_single_binary_rows_default_is_the_exact_fit():
    """Issue 22's reproducer: 10^4 groups of one binary row, tau = 2. The
    node counts chosen at the Laplace estimate (tau ~ 0.02) were never
    checked at the final one: 0.2 stopped at tau = 1.129 in silence."""
    rng = np.random.default_rng(0)
    G = 10000
    x = rng.normal(size=G)
    y = rng.binomial(1, expit(-0.3 + 0.8 * x + rng.normal(0, 2, G)))
    X = pd.DataFrame({"g": np.arange(G), "x": x})
    est = fit_quietly(MultilevelBinomial(group="g"), X, y)
    Z = X[["x"]].to_numpy()
    data = exact_glmm.Grouped.of(X["g"].to_numpy(), Z, y, np.ones(G))
    # each group's posterior is at least 0.7 wide and the logistic terms are
    # analytic in a strip pi / tau = 1.6 wide: a step of 0.1 is exact
    start = params_of(est) + np.r_[0.02, -0.02, 0.05]
    ref_params, ref_loglik, _ = exact_glmm.fit(data, start, step=0.1)
    assert ref_params[-1] == pytest.approx(1.88994, abs=1e-4)
    assert_exact(est, ref_params, ref_loglik)


@pytest.mark.slow  # 3.4 s: two real-size fits
def test_fixed_rule_far_off_warns_with_the_measured_cause():
    """Pairs of binary rows with a rare outcome (like the twin data of
    issue 22): Laplace puts tau near 7 where the exact fit has 1.6. An
    explicit n_quad=1 is the user's choice, but a 3-node check at its
    estimate shows how far off it is; the default is exact and quiet."""
    rng = np.random.default_rng(3)
    G = 6000
    g = np.repeat(np.arange(G), 2)
    u = rng.normal(0, 1.7, G)
    male = rng.integers(0, 2, G).repeat(2).astype(float)
    y = rng.binomial(1, expit(-4.6 + 1.2 * male + u[g]))
    X = pd.DataFrame({"g": g, "male": male})
    with pytest.warns(QuadratureWarning, match="standard errors") as caught:
        laplace = MultilevelBinomial(group="g", n_quad=1).fit(X, y)
    assert laplace.tau_ > 5
    assert "with 3 nodes the log-likelihood here is" in str(caught[0].message)
    est = fit_quietly(MultilevelBinomial(group="g"), X, y)
    start = params_of(est) + np.r_[0.05, -0.05, 0.2]
    # posteriors at least 0.6 wide, logistic terms analytic in a strip of
    # pi / tau = 1.9: a step of 0.1 is exact
    ref_params, ref_loglik = exact_fit(X, y, "g", start, step=0.1)
    assert_exact(est, ref_params, ref_loglik)


def _exact_group_loglik(b, tau, m, n):
    """log of the integral of Binom(m | n, expit(b + tau u)) phi(u) du (quad)."""

    def f(u):
        eta = b + tau * u
        return math.exp(m * log_expit(eta) + (n - m) * log_expit(-eta) - 0.5 * u * u)

    value = integrate.quad(
        f, -40, 40, points=[-b / tau], limit=500, epsabs=0, epsrel=1e-12
    )[0]
    const = gammaln(n + 1) - gammaln(m + 1) - gammaln(n - m + 1)
    return math.log(value / math.sqrt(2 * math.pi)) + const


def test_auto_warns_where_no_rule_resolves_the_groups():
    """Groups of 1-3 trials with a weak prior pushing tau to ~17: there no
    Gauss-Hermite rule up to 201 nodes is accurate for the small groups (the
    logistic turns within 1/17 of a prior SD). The default says so, with the
    size of the error it measured, and that error is real (scipy's quad)."""
    from test_newton import ODD_M, ODD_N

    from skre.priors import Gamma

    m, n = np.array(ODD_M[0], float), np.array(ODD_N[0], float)
    X = pd.DataFrame({"g": np.arange(len(m))})
    with pytest.warns(QuadratureWarning, match="201") as caught:
        est = MultilevelBinomial(group="g", tau_prior=Gamma(2.5, 0)).fit(X, np.c_[m, n])
    exact = sum(
        _exact_group_loglik(est.intercept_, est.tau_, mi, ni) for mi, ni in zip(m, n)
    )
    assert abs(est.loglik_ - exact) > 1e-3  # the warning is warranted
    assert "may be off by" in str(caught[0].message)


BIMODAL = {
    # (successes, trials) per group: data whose likelihood in tau has a
    # maximum at (or near) 0 and a higher one far out (issue 22's attack)
    "score negative, interior higher": ([45, 2, 3], [176, 2, 3]),
    "four groups": ([3, 19, 0, 0], [3, 50, 5, 1]),
    "local maximum at 0.15": (
        [60, 29, 2, 0, 0, 0, 0, 0, 2, 3],
        [132, 49, 2, 3, 1, 2, 2, 3, 2, 3],
    ),
}


@pytest.mark.parametrize("case", sorted(BIMODAL))
def test_the_higher_of_two_maxima_in_tau(case):
    """Small data whose likelihood has two maxima in tau: the fit takes the
    higher, as the independent fit from lme4's start (tau = 1) finds it. 0.2
    returned tau = 0 (or 0.148) with a BoundaryWarning (or none), a
    log-likelihood 2.2 (0.9) lower."""
    m, n = (np.array(v, dtype=float) for v in BIMODAL[case])
    X = pd.DataFrame({"g": np.arange(len(m))})
    est = fit_quietly(MultilevelBinomial(group="g"), X, np.c_[m, n])
    data = exact_glmm.Grouped.of(np.arange(len(m)), np.empty((len(m), 0)), m, n)
    ref_params, ref_kernel, _ = exact_glmm.fit(
        data, np.r_[np.log(m.sum() / n.sum()), 1.0]
    )
    constant = float(np.sum(gammaln(n + 1) - gammaln(m + 1) - gammaln(n - m + 1)))
    assert ref_params[-1] > 2.5
    np.testing.assert_allclose(
        [est.intercept_, est.tau_], ref_params, rtol=1e-6, atol=1e-7
    )
    assert est.loglik_ == pytest.approx(ref_kernel + constant, rel=1e-8)


def test_one_trial_per_group_without_covariates_is_not_identified():
    """One binary row per group and no covariates: the likelihood depends on
    (b, tau) only through E[expit(b + tau Z)], so tau is not identified. The
    fit is complete pooling (whose log-likelihood is the closed form), says
    why, and every interval method works (0.2 returned tau = 0.05, and the
    profile interval crashed in brentq)."""
    X = pd.DataFrame({"g": np.arange(100)})
    y = (np.arange(100) < 19).astype(int)
    with pytest.warns(BoundaryWarning, match="not identified") as caught:
        est = MultilevelBinomial(group="g").fit(X, y)
    assert len(caught) == 1 and est.tau_ == 0.0
    assert est.intercept_ == pytest.approx(math.log(19 / 81), rel=1e-10)
    assert est.loglik_ == pytest.approx(19 * math.log(0.19) + 81 * math.log(0.81))
    profile = est.confint(method="profile")
    assert profile.loc["tau"].tolist() == [0.0, np.inf]
    assert np.isnan(est.confint().loc["tau"].iloc[1])
