"""skre against R (glm, lme4::glmer) on the rats data and three simulated sets.

The numbers come from the R scripts in tests/reference (run there by hand;
R never runs in this suite). "tight" lme4 fits use tight optimizer tolerances;
the default-tolerance numbers are the ones the design contract and the README
quote.
"""

import warnings

import numpy as np
import pytest

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats
from skre.exceptions import BoundaryWarning


def fixef(fit, names):
    return np.array([fit["fixef"][n] for n in names])


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


def test_rats_complete_pooling_matches_glm(rats, reference):
    ref = reference("rats_lme4.json")["complete_pooling"]
    cp = CompletePoolingBinomial(group="batch").fit(*rats)
    assert cp.intercept_ == pytest.approx(-1.707129, abs=1e-6)
    assert cp.intercept_ == pytest.approx(ref["intercept"], abs=1e-8)
    assert cp.loglik_ == pytest.approx(-171.9046, abs=1e-4)
    assert cp.loglik_ == pytest.approx(ref["loglik"], abs=1e-8)
    assert cp.aic_ == pytest.approx(ref["AIC"], abs=1e-7)
    assert cp.bic_ == pytest.approx(ref["BIC"], abs=1e-7)
    # the exact inverse information at the MLE is 1 / (N p (1 - p)); R's glm
    # reports the SE from IRLS weights one iteration before convergence, 2e-5 off
    p, N = 267 / 1739, 1739
    se = np.sqrt(cp.covariance_[0, 0])
    assert se == pytest.approx(np.sqrt(1 / (N * p * (1 - p))), rel=1e-10)
    assert se == pytest.approx(ref["se"], rel=5e-5)


def test_rats_no_pooling_matches_glm(rats, reference):
    ref = reference("rats_lme4.json")["no_pooling"]
    npool = NoPoolingBinomial(group="batch").fit(*rats)
    # R stops 0/n batches at a coefficient near -28, a hair below the exact limit
    assert npool.loglik_ == pytest.approx(ref["saturated_loglik"], abs=1e-9)
    assert npool.loglik_ == pytest.approx(ref["loglik"], abs=1e-8)
    assert npool.aic_ == pytest.approx(ref["AIC"], abs=1e-7)
    assert npool.bic_ == pytest.approx(ref["BIC"], abs=1e-7)


@pytest.mark.parametrize(
    "n_quad, key, b, tau, loglik",
    [
        (25, "nagq25", -1.939012, 0.674118, -157.811),
        (1, "laplace", -1.936913, 0.664577, -157.9258),
    ],
)
def test_rats_multilevel_matches_glmer(rats, reference, n_quad, key, b, tau, loglik):
    ref = reference("rats_lme4.json")["glmer"][key]["tight"]
    m4 = MultilevelBinomial(group="batch", n_quad=n_quad).fit(*rats)
    # the acceptance numbers (lme4 at default tolerances, as the README quotes them)
    assert m4.intercept_ == pytest.approx(b, abs=1e-5)
    assert m4.tau_ == pytest.approx(tau, abs=1e-5)
    assert m4.loglik_ == pytest.approx(loglik, abs=1e-3 if n_quad > 1 else 1e-4)
    # lme4 with tight tolerances agrees to the optimizer's precision
    assert m4.intercept_ == pytest.approx(ref["fixef"]["(Intercept)"], abs=1e-6)
    assert m4.tau_ == pytest.approx(ref["tau"], abs=1e-6)
    assert m4.loglik_ == pytest.approx(
        ref["loglik_with_constants_independent"], abs=1e-6
    )
    assert m4.aic_ == pytest.approx(ref["AIC_with_constants"], abs=1e-5)
    assert m4.converged_ and not m4.boundary_


def test_rats_glmmtmb_agrees_with_laplace(rats, reference):
    ref = reference("rats_lme4.json")["glmmTMB"]
    m = MultilevelBinomial(group="batch", n_quad=1).fit(*rats)
    assert m.intercept_ == pytest.approx(ref["fixef"]["(Intercept)"], abs=1e-6)
    assert m.tau_ == pytest.approx(ref["tau"], abs=1e-6)
    assert m.loglik_ == pytest.approx(ref["loglik"], abs=1e-8)


def _sim(reference_data, name, counts):
    df = reference_data(name)
    if counts:
        return df.drop(columns=["m", "n"]), df[["m", "n"]]
    return df.drop(columns=["y"]), df["y"].to_numpy()


@pytest.mark.parametrize(
    "name, counts, names",
    [
        ("sim_binary", False, ["x1", "x2"]),
        ("sim_counts", True, ["dose"]),
    ],
)
def test_simulated_pooled_match_glm(reference, reference_data, name, counts, names):
    ref = reference(f"{name}.json")
    X, y = _sim(reference_data, f"{name}.csv", counts)
    cp = CompletePoolingBinomial(group="group").fit(X, y)
    want = [ref["complete_pooling"]["coef"][n] for n in ["(Intercept)", *names]]
    np.testing.assert_allclose([cp.intercept_, *cp.coef_], want, atol=1e-6)
    assert cp.loglik_ == pytest.approx(ref["complete_pooling"]["loglik"], abs=1e-6)
    npool = NoPoolingBinomial(group="group").fit(X, y)
    np.testing.assert_allclose(
        npool.coef_, [ref["no_pooling"][n] for n in names], atol=1e-6
    )
    assert npool.loglik_ == pytest.approx(ref["no_pooling"]["loglik"], abs=1e-6)


@pytest.mark.parametrize(
    "name, counts, names",
    [
        ("sim_binary", False, ["x1", "x2"]),
        ("sim_counts", True, ["dose"]),
    ],
)
@pytest.mark.parametrize("n_quad, key", [(25, "nagq25"), (1, "laplace")])
def test_simulated_multilevel_match_glmer(
    reference, reference_data, name, counts, names, n_quad, key
):
    ref = reference(f"{name}.json")["glmer"][key]["tight"]
    X, y = _sim(reference_data, f"{name}.csv", counts)
    m = MultilevelBinomial(group="group", n_quad=n_quad).fit(X, y)
    np.testing.assert_allclose(
        [m.intercept_, *m.coef_], fixef(ref, ["(Intercept)", *names]), atol=1e-5, rtol=0
    )
    assert m.tau_ == pytest.approx(ref["tau"], abs=1e-5)
    assert m.loglik_ == pytest.approx(
        ref["loglik_with_constants_independent"], abs=1e-6
    )


def test_boundary_fit_is_exactly_complete_pooling(reference, reference_data):
    ref = reference("sim_boundary.json")
    X, y = _sim(reference_data, "sim_boundary.csv", True)
    with pytest.warns(BoundaryWarning, match="complete pooling"):
        m = MultilevelBinomial(group="group").fit(X, y)
    assert m.tau_ == 0.0
    assert m.boundary_
    vc = m.variance_components_
    assert (vc["vcov"][0], vc["sdcor"][0], vc["grp"][0]) == (0.0, 0.0, "group")
    assert m.intercept_ == pytest.approx(ref["complete_pooling"]["intercept"], abs=1e-8)
    assert m.loglik_ == pytest.approx(
        ref["glmer"]["nagq25"]["tight"]["loglik_with_constants"], abs=1e-8
    )
    assert ref["glmer"]["nagq25"]["tight"]["tau"] == 0
    est = m.group_estimates()
    assert np.all(np.isfinite(est[["estimate", "lower", "upper"]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cp = CompletePoolingBinomial(group="group").fit(X, y)
    np.testing.assert_allclose(m.predict_proba(X), cp.predict_proba(X), atol=1e-12)
