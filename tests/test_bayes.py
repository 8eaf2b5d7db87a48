"""method="bayes": the hyperparameter posterior by quadrature, against a brute-force
dense grid written here and a long NUTS run (tests/reference/rats_nuts.py)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.integrate import simpson

from skre import MultilevelBinomial
from skre.datasets import load_rats
from skre.priors import Gamma, HalfCauchy


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


@pytest.fixture(scope="module")
def bayes(rats):
    return MultilevelBinomial(
        group="batch", method="bayes", tau_prior=HalfCauchy(1.0)
    ).fit(*rats)


def dense_grid_posterior(m, n):
    """p(b, tau | y) on a 241 x 241 grid: flat prior on b, HalfCauchy(1) on tau,
    each batch's likelihood integrated over u ~ N(0, 1) by 60-point Gauss-Hermite."""
    b = np.linspace(-2.9, -1.0, 241)
    tau = np.linspace(0.1, 1.6, 241)
    x, w = np.polynomial.hermite.hermgauss(60)
    u, w = np.sqrt(2) * x, w / np.sqrt(np.pi)
    pairs, count = np.unique(np.column_stack([m, n]), axis=0, return_counts=True)
    B, T = np.meshgrid(b, tau, indexing="ij")
    logpost = np.log(2 / (np.pi * (1 + T**2)))
    for (mi, ni), c in zip(pairs, count):
        eta = B[..., None] + T[..., None] * u
        lik = np.exp(mi * eta - ni * np.logaddexp(0, eta)) @ w
        logpost = logpost + c * np.log(lik)
    dens = np.exp(logpost - logpost.max())
    return b, tau, dens


def grid_summary(values, dens_marginal):
    dens = dens_marginal / simpson(dens_marginal, x=values)
    mean = simpson(values * dens, x=values)
    sd = np.sqrt(simpson((values - mean) ** 2 * dens, x=values))
    cdf = np.r_[0, np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(values))]
    return mean, sd, np.interp([0.025, 0.975], cdf / cdf[-1], values)


@pytest.mark.slow  # 2.5 s: a dense posterior grid
def test_posterior_matches_a_dense_grid(rats, bayes):
    m, n = rats[1].to_numpy().T
    b, tau, dens = dense_grid_posterior(m, n)
    got = bayes.posterior_summary()
    for name, values, marginal in (
        ("intercept", b, dens.sum(axis=1)),
        ("tau", tau, dens.sum(axis=0)),
    ):
        mean, sd, (lo, hi) = grid_summary(values, marginal)
        np.testing.assert_allclose(got.loc[name], [mean, sd, lo, hi], atol=1e-3)


def test_posterior_matches_nuts_within_monte_carlo_error(bayes, reference):
    ref = reference("rats_nuts.json")
    got = bayes.posterior_summary()
    for name, key in (("intercept", "b"), ("tau", "tau")):
        r = ref[key]
        assert abs(got.loc[name, "mean"] - r["mean"]) < 4 * r["mcse_mean"] + 1e-4
        assert abs(got.loc[name, "2.5%"] - r["q2.5"]) < 4 * r["mcse_q2.5"] + 1e-4
        assert abs(got.loc[name, "97.5%"] - r["q97.5"]) < 4 * r["mcse_q97.5"] + 1e-4
        assert got.loc[name, "sd"] == pytest.approx(r["sd"], rel=0.01)
    new = ref["theta_new"]
    lo, hi = bayes.population_.interval(0.95)
    assert lo == pytest.approx(new["q2.5"], abs=1e-3) and hi == pytest.approx(
        new["q97.5"], abs=2e-3
    )
    table = bayes.group_estimates()
    for g, key in ((1, "theta_batch1"), (71, "theta_batch71")):
        assert table.loc[g, "estimate"] == pytest.approx(ref[key]["mean"], abs=4e-4)
        assert table.loc[g, "lower"] == pytest.approx(ref[key]["q2.5"], abs=2e-3)
        assert table.loc[g, "upper"] == pytest.approx(ref[key]["q97.5"], abs=2e-3)


def test_bayes_carries_tau_uncertainty_into_every_batch(rats, bayes):
    ml = MultilevelBinomial(group="batch").fit(*rats)
    wide = bayes.group_estimates()
    narrow = ml.group_estimates()
    assert np.mean(wide["upper"] - wide["lower"]) > np.mean(
        narrow["upper"] - narrow["lower"]
    )
    assert bayes.prediction_interval()[1] > ml.prediction_interval()[1]
    # the posterior predictive is a proper distribution of theta
    pop = bayes.population_
    assert pop.cdf(pop.ppf(0.3)) == pytest.approx(0.3, abs=1e-10)
    draws = pop.rvs(size=20000, random_state=0)
    assert stats.kstest(draws, pop.cdf).pvalue > 0.001
    proba = bayes.predict_proba(pd.DataFrame({"batch": [1, 999]}))[:, 1]
    assert proba[1] == pytest.approx(pop.mean(), abs=1e-10)
    assert np.isfinite(bayes.score(*rats))


def test_bayes_needs_a_proper_tau_prior(rats):
    for prior in (None, Gamma(2.5, 0)):
        with pytest.raises(ValueError, match="proper tau_prior"):
            MultilevelBinomial(group="batch", method="bayes", tau_prior=prior).fit(
                *rats
            )


def test_frequentist_methods_point_to_the_posterior(bayes):
    for method in (bayes.vcov, bayes.confint):
        with pytest.raises(ValueError, match="posterior_summary"):
            method()


def test_posterior_density_of_tau_integrates_the_joint_posterior():
    """Independent check: the marginal density of tau from the joint posterior
    on a dense (b, tau) grid, integrated with Simpson's rule (no quadrature
    nodes, no whitening, no inner rule of skre's grid)."""
    X, y = load_rats(return_X_y=True)
    est = MultilevelBinomial(
        group="batch", method="bayes", tau_prior=HalfCauchy(1.0)
    ).fit(X, y)
    grid = est.posterior_density("tau")
    assert simpson(grid["density"], x=grid["value"]) == pytest.approx(1.0, abs=1e-4)
    model = est._fit_result.model
    # Simpson in b converges by 81 points (to 1e-10 of the 241-point value);
    # tau stays fine, because the check interpolates linearly in it
    b = np.linspace(-2.8, -1.1, 81)
    tau = np.linspace(0.05, 2.5, 351)
    B, T = np.meshgrid(b, tau, indexing="ij")
    loglik = model.values(np.column_stack([B.ravel(), T.ravel()])).reshape(B.shape)
    log_joint = loglik + HalfCauchy(1.0).logpdf(T)
    joint = np.exp(log_joint - log_joint.max())
    marginal = simpson(joint, x=b, axis=0)
    marginal /= simpson(marginal, x=tau)
    # the bulk of the posterior (the far tail, tau > 1.1, is 0.5-1% high: the
    # inner rule is centred on the global normal approximation)
    for t in (0.5, 0.7, 0.9):
        expected = np.interp(t, tau, marginal)
        assert np.interp(t, grid["value"], grid["density"]) == pytest.approx(
            expected, rel=2e-3
        )
