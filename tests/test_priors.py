"""Priors: the objects, MAP fits against blme, identities, and grid search."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats, make_grouped_binomial
from skre.exceptions import BoundaryWarning
from skre.priors import Flat, Gamma, HalfCauchy, HalfNormal, HalfStudentT, Normal


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


PROPER = [
    Normal(0.3, 2.0),
    HalfNormal(1.5),
    HalfCauchy(0.7),
    HalfStudentT(3.0, 1.2),
    Gamma(2.0, 1.5),
]


@pytest.mark.parametrize("prior", PROPER)
def test_proper_priors_are_normalised_densities_with_the_right_slope(prior):
    lo = -np.inf if isinstance(prior, Normal) else 0.0
    total = integrate.quad(lambda x: np.exp(prior.logpdf(x)), lo, np.inf)[0]
    assert total == pytest.approx(1.0, abs=1e-8)
    for x in (0.2, 1.0, 3.0):
        h = 1e-6
        fd = (prior.logpdf(x + h) - prior.logpdf(x - h)) / (2 * h)
        assert float(prior.dlogpdf(x)) == pytest.approx(float(fd), rel=1e-6)


def test_priors_match_scipy():
    x = np.array([0.1, 0.8, 2.5])
    np.testing.assert_allclose(
        HalfCauchy(0.7).logpdf(x), stats.halfcauchy.logpdf(x, scale=0.7)
    )
    np.testing.assert_allclose(
        HalfNormal(1.5).logpdf(x), stats.halfnorm.logpdf(x, scale=1.5)
    )
    np.testing.assert_allclose(
        Gamma(2.0, 1.5).logpdf(x), stats.gamma.logpdf(x, 2.0, scale=1 / 1.5)
    )
    np.testing.assert_allclose(
        Normal(0.3, 2.0).logpdf(x), stats.norm.logpdf(x, 0.3, 2.0)
    )


def test_priors_are_values():
    assert Normal(0, 1) == Normal(0.0, 1.0) and hash(Normal(0, 1)) == hash(
        Normal(0.0, 1.0)
    )
    assert HalfCauchy(1) != HalfCauchy(2)
    assert repr(Gamma(2.5, 0)) == "Gamma(shape=2.5, rate=0.0)"
    assert repr(HalfCauchy(np.float64(0.5))) == "HalfCauchy(scale=0.5)"  # plain floats
    assert not Gamma(2.5, 0).proper and Gamma(2.5, 1).proper and not Flat().proper
    with pytest.raises(AttributeError):
        HalfCauchy(1.0).scale = 2.0  # frozen
    with pytest.raises(ValueError, match="HalfCauchy: scale must be positive"):
        HalfCauchy(-1.0)
    est = MultilevelBinomial(group="batch", tau_prior=HalfCauchy(1.0))
    assert clone(est).get_params()["tau_prior"] == HalfCauchy(1.0)
    assert pickle.loads(pickle.dumps(est)).tau_prior == HalfCauchy(1.0)


@pytest.mark.parametrize("n_quad, key", [(25, "nagq25"), (1, "laplace")])
def test_gamma_prior_reproduces_blme(rats, reference, n_quad, key):
    ref = reference("rats_blme.json")["bglmer"][key]["tight"]
    m = MultilevelBinomial(group="batch", n_quad=n_quad, tau_prior=Gamma(2.5, 0)).fit(
        *rats
    )
    assert m.intercept_ == pytest.approx(ref["fixef"]["(Intercept)"], abs=1e-6)
    assert m.tau_ == pytest.approx(ref["tau"], abs=1e-6)
    # blme reports the unpenalised likelihood at its estimates, as skre does
    assert m.loglik_ == pytest.approx(ref["loglik_with_constants"], abs=1e-6)


def test_gamma_prior_keeps_tau_off_the_boundary(reference_data):
    df = reference_data("sim_boundary.csv")
    X, y = df[["group"]], df[["m", "n"]]
    with pytest.warns(BoundaryWarning):
        assert MultilevelBinomial(group="group").fit(X, y).tau_ == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MultilevelBinomial(group="group", tau_prior=Gamma(2.5, 0)).fit(X, y)
    assert m.tau_ > 0.05 and not m.boundary_
    # mode of log L + 1.5 log tau: the derivative vanishes there
    x = np.r_[m._fit_result.params[:-1], np.log(m.tau_)]
    from skre._core.multilevel import negative_loglik

    _, grad = negative_loglik(m._fit_result.model, m._fit_result.log_prior)(x)
    np.testing.assert_allclose(grad, 0.0, atol=1e-5)


def test_half_cauchy_mode_in_tau_stays_at_a_boundary(reference_data):
    """A density that is largest at tau = 0 cannot move the mode in tau off it
    (documented; the posterior mean of method="bayes" is the remedy)."""
    df = reference_data("sim_boundary.csv")
    with pytest.warns(BoundaryWarning):
        m = MultilevelBinomial(group="group", tau_prior=HalfCauchy(1.0)).fit(
            df[["group"]], df[["m", "n"]]
        )
    assert m.tau_ == 0.0


@pytest.mark.filterwarnings(
    "ignore::skre.exceptions.GroupLabelWarning"
)  # new groups named by strings after integer batches, on purpose
def test_group_prior_at_the_multilevel_estimates_gives_its_conditional_modes(rats):
    m4 = MultilevelBinomial(group="batch").fit(*rats)
    prior = Normal(m4.intercept_, m4.tau_)
    npool = NoPoolingBinomial(group="batch", group_prior=prior).fit(*rats)
    np.testing.assert_allclose(
        npool.group_intercepts_, m4.intercept_ + m4.random_effects_, atol=1e-8
    )
    assert np.all(np.isfinite(npool.group_intercepts_))
    # new groups are integrated over the prior, exactly like the multilevel model's
    new = pd.DataFrame({"batch": ["a", "b"]})
    counts = np.array([[3, 17], [0, 9]])
    assert npool.score(new, counts) == pytest.approx(m4.score(new, counts), abs=1e-10)
    np.testing.assert_allclose(
        npool.predict_proba(new), m4.predict_proba(new), atol=1e-12
    )


def test_coef_prior_shrinks_slopes():
    X, y, _ = make_grouped_binomial(30, trials=10, n_features=2, random_state=3)
    mle = CompletePoolingBinomial(group="group").fit(X, y)
    wide = CompletePoolingBinomial(group="group", coef_prior=Normal(0, 1e6)).fit(X, y)
    tight = CompletePoolingBinomial(group="group", coef_prior=Normal(0, 1e-4)).fit(X, y)
    np.testing.assert_allclose(wide.coef_, mle.coef_, atol=1e-6)
    np.testing.assert_allclose(tight.coef_, 0.0, atol=1e-3)
    m = MultilevelBinomial(group="group", coef_prior=Normal(0, 1e-4)).fit(X, y)
    np.testing.assert_allclose(m.coef_, 0.0, atol=1e-3)
    with pytest.raises(TypeError, match="Normal or Flat"):
        CompletePoolingBinomial(group="group", coef_prior=HalfCauchy(1)).fit(X, y)


def test_grid_search_over_priors_in_parallel(rats):
    X, y = rats
    cv = GroupKFold(n_splits=5)
    grid = GridSearchCV(
        MultilevelBinomial(group="batch"),
        {"tau_prior": [None, HalfCauchy(1.0), Gamma(2.5, 0), HalfNormal(0.5)]},
        cv=cv,
        n_jobs=2,
    ).fit(X, y, groups=X["batch"])
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert "HalfCauchy(scale=1.0)" in map(str, grid.cv_results_["param_tau_prior"])
    grid = GridSearchCV(
        NoPoolingBinomial(group="batch"),
        {"group_prior": [Normal(-1.94, s) for s in (0.2, 0.67, 2.0)]},
        cv=cv,
        n_jobs=2,
    ).fit(X, y, groups=X["batch"])
    scores = grid.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert grid.best_params_["group_prior"] == Normal(-1.94, 0.67)
