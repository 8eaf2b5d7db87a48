"""The nested rule of method="bayes" (skre._core.hyperpost, hypermarg, bayes_grid)
against exact answers: a synthetic posterior with closed-form moments and a long
tail towards tau = 0, a brute-force grid on the rats data, and the reference
likelihood (MarginalLikelihood.values)."""

import warnings

import numpy as np
import pytest
from scipy import integrate, special, stats

from skre import MultilevelBinomial
from skre._core.bayes_grid import BatchLikelihood
from skre._core.hypermarg import coefficient_quantiles, theta_quantiles
from skre._core.hyperpost import fit_hyperposterior, moment_summary
from skre.datasets import load_rats, make_grouped_binomial
from skre.exceptions import QuadratureWarning
from skre.priors import HalfCauchy

A, C, MU, K, S = 3.0, 2.0, 0.5, 0.3, 0.2


class SkewedPosterior:
    """-log p(b, theta): exp(theta) ~ Gamma(A, rate C) (a tail like exp(A theta)
    towards tau = 0) and b | theta ~ N(MU + K theta, S^2 exp(-theta))."""

    def values(self, b, t):
        r = b - MU - K * t
        return (
            -A * t + C * np.exp(t) + 0.5 * np.log(2 * np.pi * S * S) - 0.5 * t
        ) + 0.5 * r * r * np.exp(t) / (S * S)

    def __call__(self, x):
        b, t = x
        r = b - MU - K * t
        e = np.exp(t) / (S * S)
        grad = [r * e, -A + C * np.exp(t) - 0.5 - K * r * e + 0.5 * r * r * e]
        return float(self.values(b, t)), np.array(grad)

    def batch(self, X):
        return self.values(X[:, 0], X[:, 1])


def bayes_without_warning(X, y, group):
    """A Bayes fit (HalfCauchy(1) on tau) and its posterior summary, with a
    QuadratureWarning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuadratureWarning)
        est = MultilevelBinomial(
            group=group, method="bayes", tau_prior=HalfCauchy(1.0)
        ).fit(X, y)
        return est, est.posterior_summary()


def test_nested_rule_meets_its_tolerance_on_a_known_posterior():
    post = fit_hyperposterior(SkewedPosterior(), np.array([0.0, 0.0]))
    assert post.converged
    mean_t, var_t = special.digamma(A) - np.log(C), special.polygamma(1, A)
    exact_mean = [MU + K * mean_t, mean_t, A / C]
    exact_sd = np.sqrt([K * K * var_t + S * S * C / (A - 1), var_t, A / C / C])
    rows = np.eye(2)
    mean, sd = moment_summary(post, post.slices, rows)
    assert np.max(np.abs(mean - exact_mean) / exact_sd) < 1e-5
    assert np.max(np.abs(sd - exact_sd) / exact_sd) < 1e-5
    # quantiles: tau's from the gamma, b's from the mixture over theta
    tau_q = stats.gamma(A, scale=1 / C).ppf([0.025, 0.975])
    got = np.exp(theta_quantiles(post, [0.025, 0.975]))
    assert np.max(np.abs(got - tau_q)) / exact_sd[2] < 1e-4

    def cdf(q):
        def integrand(t):
            z = (q - MU - K * t) / (S * np.exp(-t / 2))
            return (
                stats.norm.cdf(z)
                * stats.gamma(A, scale=1 / C).pdf(np.exp(t))
                * np.exp(t)
            )

        return integrate.quad(integrand, -30, 5, epsabs=1e-13, limit=200)[0]

    got = coefficient_quantiles(post, np.array([1.0, 0.0]), [0.025, 0.975])
    for p, q in zip([0.025, 0.975], got):
        assert abs(cdf(q) - p) / stats.norm.pdf(stats.norm.ppf(p)) < 1e-4


@pytest.mark.parametrize("features", [0, 2])
def test_batch_likelihood_is_the_reference_likelihood(features):
    if features:
        X, y, _ = make_grouped_binomial(
            15, trials=8, n_features=features, binary=True, random_state=1
        )
        group = "group"
    else:
        X, y = load_rats(return_X_y=True)
        group = "batch"
    fit = MultilevelBinomial(group=group).fit(X, y)._fit_result
    rng = np.random.default_rng(0)
    P = fit.params + 0.3 * rng.standard_normal((200, len(fit.params)))
    P[:, -1] = fit.tau * np.exp(rng.standard_normal(200))
    P[:4, -1] = [1e-9, 1e-3, 20.0, 1e3]  # tau near 0 and very large
    fast = BatchLikelihood(fit.units, fit.unit_weight, 25, fit.posterior.mode)
    np.testing.assert_allclose(fast.values(P), fit.model.values(P), rtol=1e-12)


def test_rats_summary_matches_a_brute_force_grid(reference):
    """The 95% limits, means and SDs to 1e-5 posterior SD of a 541 x 2121
    grid (tests/reference/rats_bayes_grid.py); the old product rule's limits
    were off by up to 2e-3 SD."""
    ref = reference("rats_bayes_grid.json")
    X, y = load_rats(return_X_y=True)
    _, got = bayes_without_warning(X, y, "batch")
    for name in ("intercept", "tau"):
        expected = ref[name]
        for col in ("mean", "sd", "2.5%", "97.5%"):
            err = abs(got.loc[name, col] - expected[col]) / expected["sd"]
            assert err < 1e-5, (name, col, err)


def test_covariate_case_converges_and_says_nothing():
    """The case of issue 13 (1000 binary rows, 40 groups, 1 covariate), which
    the product rule could not finish within 150,000 evaluations."""
    X, y, _ = make_grouped_binomial(
        40, trials=25, n_features=1, binary=True, random_state=0
    )
    est, table = bayes_without_warning(X, y, "group")
    hyper = est._fit_result.hyper
    assert hyper.converged and max(hyper.changes.values()) <= 1e-5
    assert hyper.n_evals < 10_000
    assert np.isfinite(table.to_numpy()).all()


def test_a_stop_at_the_evaluation_limit_is_reported(monkeypatch):
    # a tolerance the budget cannot reach: the refinements stop, and say so
    post = fit_hyperposterior(
        SkewedPosterior(), np.array([0.0, 0.0]), tol=1e-14, max_evals=3000
    )
    assert not post.converged and max(post.changes.values()) > 1e-14
    assert post.n_evals <= 3000
    import skre._bayes

    original = skre._bayes.fit_hyperposterior

    def limited(*args, **kwargs):  # fit_bayes passes its own tol: override it
        return original(*args, **{**kwargs, "tol": 1e-14, "max_evals": 2000})

    monkeypatch.setattr(skre._bayes, "fit_hyperposterior", limited)
    X, y = load_rats(return_X_y=True)
    est = MultilevelBinomial(group="batch", method="bayes", tau_prior=HalfCauchy(1.0))
    with pytest.warns(QuadratureWarning, match="stopped at .* may be off by"):
        est.fit(X, y)
    assert not est._fit_result.hyper.converged
