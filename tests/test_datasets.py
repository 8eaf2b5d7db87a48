import numpy as np
import pandas as pd
import pytest

from skre import CompletePoolingBinomial, MultilevelBinomial
from skre.datasets import load_rats, make_grouped_binomial


def test_load_rats_forms():
    bunch = load_rats()
    assert list(bunch.frame.columns) == ["batch", "m", "n"]
    assert bunch.frame.shape == (71, 3) and "Tarone" in bunch.DESCR
    assert tuple(bunch.frame.iloc[0]) == (1, 0, 20) and tuple(bunch.frame.iloc[-1]) == (
        71,
        4,
        14,
    )
    X, y = load_rats(return_X_y=True, as_frame=False)
    assert (
        X.shape == (71, 1)
        and y.shape == (71, 2)
        and y.sum(axis=0).tolist() == [267, 1739]
    )


def test_simulator_is_seeded_and_recovers_its_parameters():
    X, y, xi = make_grouped_binomial(
        400, trials=40, intercept=-1.0, tau=0.8, random_state=5
    )
    X2, y2, _ = make_grouped_binomial(
        400, trials=40, intercept=-1.0, tau=0.8, random_state=5
    )
    np.testing.assert_array_equal(y, y2)
    est = MultilevelBinomial(group="group").fit(X, y)
    assert est.intercept_ == pytest.approx(-1.0, abs=0.15)
    assert est.tau_ == pytest.approx(0.8, abs=0.15)
    assert np.corrcoef(est.random_effects_, xi)[0, 1] > 0.8


def test_simulated_covariates_binary_rows():
    X, y, _ = make_grouped_binomial(
        50, trials=30, n_features=2, coef=[1.0, -0.5], binary=True, random_state=1
    )
    assert list(X.columns) == ["group", "x0", "x1"] and set(np.unique(y)) == {0, 1}
    est = MultilevelBinomial(group="group").fit(X, y)
    np.testing.assert_allclose(est.coef_, [1.0, -0.5], atol=0.2)


def test_covariate_scale_does_not_matter():
    """Wildly scaled covariates: the fit is the rescaled fit, to optimizer precision."""
    rng = np.random.default_rng(0)
    n = 600
    g = rng.integers(0, 30, n)
    age = rng.uniform(20, 80, n)
    income = rng.lognormal(10, 0.5, n)
    eta = (
        -1
        + 0.0004 * (age**2 - 2500)
        + 0.3 * (income / 3e4 - 1)
        + rng.normal(0, 0.6, 30)[g]
    )
    yb = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    raw = pd.DataFrame({"g": g, "age2": age**2, "income": income})
    scaled = pd.DataFrame({"g": g, "age2": age**2 / 1e3, "income": income / 1e4})
    for cls in (CompletePoolingBinomial, MultilevelBinomial):
        a, b = cls(group="g").fit(raw, yb), cls(group="g").fit(scaled, yb)
        assert a.converged_ and b.converged_
        np.testing.assert_allclose(a.coef_ * [1e3, 1e4], b.coef_, rtol=1e-6)
        assert a.intercept_ == pytest.approx(b.intercept_, abs=1e-6)
        assert a.loglik_ == pytest.approx(b.loglik_, abs=1e-8)
