"""GammaPrecision: BUGS's gamma on the precision 1/tau^2, as a prior on tau."""

import warnings

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.integrate import simpson
from sklearn.base import clone

from skre import MultilevelBinomial
from skre.datasets import load_rats
from skre.exceptions import QuadratureWarning
from skre.priors import GammaPrecision


@pytest.mark.parametrize("shape, rate", [(1.0, 1.0), (0.5, 0.01), (3.0, 2.0)])
def test_density_of_tau_from_a_gamma_on_the_precision(shape, rate):
    prior = GammaPrecision(shape, rate)
    tau = np.array([0.05, 0.3, 1.0, 4.0])
    # the precision's gamma density times |d(1/tau^2)/d tau| = 2 / tau^3
    expected = stats.gamma(shape, scale=1 / rate).logpdf(tau**-2) + np.log(2 / tau**3)
    np.testing.assert_allclose(prior.logpdf(tau), expected, rtol=1e-12)
    total = integrate.quad(lambda t: np.exp(prior.logpdf(t)), 0, np.inf)[0]
    assert total == pytest.approx(1.0, abs=1e-8)
    h = 1e-6 * tau
    slope = (prior.logpdf(tau + h) - prior.logpdf(tau - h)) / (2 * h)
    np.testing.assert_allclose(prior.dlogpdf(tau), slope, rtol=1e-6)
    assert prior.logpdf(0.0) == -np.inf and prior.logpdf(-1.0) == -np.inf
    # tau itself: its draws, as 1/sqrt of gamma draws, follow the density
    draws = 1 / np.sqrt(stats.gamma(shape, scale=1 / rate).rvs(4000, random_state=0))
    cdf = np.vectorize(
        lambda t: integrate.quad(lambda u: np.exp(prior.logpdf(u)), 0, t)[0]
    )
    assert stats.kstest(draws[:300], cdf).pvalue > 0.001


def test_validated_and_searchable():
    with pytest.raises(ValueError, match="rate must be positive"):
        GammaPrecision(1.0, 0.0)
    with pytest.raises(ValueError, match="shape must be positive"):
        GammaPrecision(-1.0, 1.0)
    est = MultilevelBinomial(group="batch", tau_prior=GammaPrecision(1.0, 1.0))
    copy = clone(est).set_params(tau_prior__rate=0.5)
    assert copy.tau_prior == GammaPrecision(1.0, 0.5)
    assert repr(copy.tau_prior) == "GammaPrecision(shape=1.0, rate=0.5)"


@pytest.mark.slow  # 3.4 s: a dense posterior grid
def test_bayes_with_the_bugs_prior_matches_a_dense_grid():
    X, y = load_rats(return_X_y=True)
    prior = GammaPrecision(1.0, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuadratureWarning)
        est = MultilevelBinomial(group="batch", method="bayes", tau_prior=prior)
        got = est.fit(X, y).posterior_summary()
    assert est._fit_result.hyper.converged
    model = est._fit_result.model
    b = np.linspace(-3.2, -0.7, 201)
    theta = np.linspace(-3.0, 1.5, 451)
    B, T = np.meshgrid(b, theta, indexing="ij")
    loglik = model.values(np.column_stack([B.ravel(), np.exp(T.ravel())]))
    log_joint = loglik.reshape(B.shape) + prior.logpdf(np.exp(T)) + T
    joint = np.exp(log_joint - log_joint.max())
    tau_marginal = simpson(joint, x=b, axis=0)
    tau_marginal /= simpson(tau_marginal, x=theta)
    mean = simpson(np.exp(theta) * tau_marginal, x=theta)
    sd = np.sqrt(simpson((np.exp(theta) - mean) ** 2 * tau_marginal, x=theta))
    assert got.loc["tau", "mean"] == pytest.approx(mean, abs=1e-5 * sd)
    assert got.loc["tau", "sd"] == pytest.approx(sd, abs=1e-5 * sd)
    b_marginal = simpson(joint, x=theta, axis=1)
    b_marginal /= simpson(b_marginal, x=b)
    assert got.loc["intercept", "mean"] == pytest.approx(
        simpson(b * b_marginal, x=b), abs=1e-5
    )
