"""Summary tables and their text/HTML rendering."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre._summary import _coef_columns, _pvalues
from skre.datasets import load_rats
from skre.exceptions import BoundaryWarning, CollinearityWarning


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


@pytest.fixture(scope="module")
def multilevel(rats):
    return MultilevelBinomial(group="batch").fit(*rats)


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(15), 8)
    x = rng.normal(size=len(g))
    n = np.full(len(g), 10)
    m = rng.binomial(n, 1 / (1 + np.exp(-(-0.5 + 0.8 * x + rng.normal(0, 0.5, 15)[g]))))
    return pd.DataFrame({"g": g, "x": x}), np.column_stack([m, n])


def test_multilevel_tables(multilevel):
    m = multilevel
    s = m.summary()
    fe = s.fixed_effects
    assert list(fe.index) == ["intercept"]
    assert list(fe.columns) == [
        "estimate",
        "std_error",
        "z",
        "p_value",
        "2.5%",
        "97.5%",
    ]
    est, se = fe.loc["intercept", "estimate"], fe.loc["intercept", "std_error"]
    assert est == m.intercept_
    assert se == pytest.approx(
        np.sqrt(m.vcov().loc["intercept", "intercept"]), rel=1e-12
    )
    assert fe.loc["intercept", "z"] == pytest.approx(est / se, rel=1e-12)
    assert fe.loc["intercept", "p_value"] == pytest.approx(
        2 * stats.norm.sf(abs(est / se))
    )
    ci = m.confint()
    np.testing.assert_allclose(fe[["2.5%", "97.5%"]].to_numpy(), ci.loc[["intercept"]])
    re = s.random_effects
    assert list(re.index) == ["batch"]
    assert re.loc["batch", "tau"] == m.tau_
    assert re.loc["batch", "tau_sq"] == pytest.approx(m.tau_**2, rel=1e-14)
    np.testing.assert_allclose(re[["2.5%", "97.5%"]].to_numpy(), ci.loc[["tau"]])
    f = s.fit
    assert f["logLik"] == m.loglik_ and f["AIC"] == m.aic_ and f["BIC"] == m.bic_
    assert f["-2 logLik"] == pytest.approx(-2 * m.loglik_)
    assert f["observations"] == m.nobs_ == 71
    assert f["groups"] == 71 and f["df.resid"] == 69
    assert f["trials"] == m.group_estimates()["trials"].sum()
    assert f["converged"] is True and f["boundary"] is False
    assert f["iterations"] == m.n_iter_


def test_multilevel_profile_intervals(multilevel):
    s = multilevel.summary(level=0.9, method="profile")
    ci = multilevel.confint(level=0.9, method="profile")
    assert list(s.fixed_effects.columns[-2:]) == ["5%", "95%"]
    np.testing.assert_allclose(s.fixed_effects.iloc[:, -2:], ci.loc[["intercept"]])
    np.testing.assert_allclose(s.random_effects.iloc[:, -2:], ci.loc[["tau"]])
    assert "(90%, profile likelihood)" in str(s)


def test_multilevel_se_matches_lme4(multilevel, reference):
    ref = reference("rats_lme4.json")["glmer"]["nagq25"]
    se = multilevel.summary().fixed_effects.loc["intercept", "std_error"]
    # lme4's SE comes from its own finite-difference Hessian; agreement ~1e-6 relative
    assert se == pytest.approx(ref["tight"]["fixef_se"]["(Intercept)"], rel=1e-6)
    assert se == pytest.approx(ref["default"]["fixef_se"]["(Intercept)"], rel=1e-3)
    assert multilevel.summary().random_effects.loc["batch", "tau_sq"] == pytest.approx(
        ref["tight"]["tau_sq"], rel=1e-5
    )


def test_multilevel_text(multilevel):
    text = str(multilevel.summary())
    assert repr(multilevel.summary()) == text
    for piece in [
        "Generalized linear mixed model fit by maximum likelihood",
        "nAGQ = 25",
        " Family: binomial  ( logit )",
        "Formula: cbind(successes, trials - successes) ~ 1 + (1 | batch)",
        "Random effects:",
        "Fixed effects:",
        "Number of obs: 71, groups:  batch, 71",
        " batch  (Intercept) 0.4544   0.6741",
        "(Intercept)   -1.939      0.122  -15.89   <2e-16 ***",
        "Signif. codes",
    ]:
        assert piece in text
    assert "boundary" not in text
    # the AIC line, rounded to one decimal as lme4 prints it
    assert "319.6    324.1   -157.8     315.6       69" in text


def test_laplace_title(rats):
    text = str(MultilevelBinomial(group="batch", n_quad=1).fit(*rats).summary())
    assert "(Laplace\n  Approximation)" in text or "(Laplace Approximation)" in text


def test_html(multilevel, rats):
    out = multilevel.summary()._repr_html_()
    assert out.count("<table") == 3 and "<h4>" in out and "nAGQ = 25" in out
    out = CompletePoolingBinomial(group="batch").fit(*rats).summary()._repr_html_()
    assert out.count("<table") == 2


def test_complete_pooling(rats):
    cp = CompletePoolingBinomial(group="batch").fit(*rats)
    s = cp.summary(method="profile")
    assert s.random_effects is None
    fe = s.fixed_effects
    assert fe.loc["intercept", "estimate"] == cp.intercept_
    assert fe.loc["intercept", "std_error"] == pytest.approx(
        np.sqrt(cp.vcov().iloc[0, 0])
    )
    np.testing.assert_allclose(fe.iloc[:, -2:], cp.confint(method="profile"))
    assert "boundary" not in s.fit.index
    text = str(s)
    assert "Coefficients:" in text and "Random effects" not in text
    # R: summary(glm(cbind(m, n - m) ~ 1, binomial))
    assert "(Intercept) -1.70713    0.06652  -25.66   <2e-16 ***" in text
    assert "345.8    348.1   -171.9     343.8       70" in text


def test_complete_pooling_without_groups(simulated):
    X, y = simulated
    s = CompletePoolingBinomial().fit(X[["x"]], y).summary()
    assert "groups:" not in str(s) and s.fit["groups"] == 1
    assert "~ 1 + x" in s.formula


def test_no_pooling_with_covariate(simulated):
    X, y = simulated
    npool = NoPoolingBinomial(group="g").fit(X, y)
    s = npool.summary(level=0.9)
    fe = s.fixed_effects
    assert list(fe.index) == ["x"]
    se = np.sqrt(npool.vcov().loc["x", "x"])
    assert fe.loc["x", "estimate"] == npool.coef_[0]
    assert fe.loc["x", "std_error"] == pytest.approx(se)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(
        fe.loc["x", ["5%", "95%"]].astype(float),
        npool.coef_[0] + np.array([-z, z]) * se,
    )
    assert s.random_effects is None and s.fit["groups"] == 15
    text = str(s)
    assert "One intercept per group (15 groups" in text
    assert "~ 0 + g + x" in text and "Coefficients:" in text
    with pytest.raises(ValueError, match="Wald"):
        npool.summary(method="profile")


def test_no_pooling_intercept_only(rats):
    s = NoPoolingBinomial(group="batch").fit(*rats).summary()
    assert s.fixed_effects.empty
    assert "One intercept per group (71 groups" in str(s)


def test_multilevel_with_covariate(simulated):
    X, y = simulated
    m = MultilevelBinomial(group="g").fit(X, y)
    fe = m.summary().fixed_effects
    assert list(fe.index) == ["intercept", "x"]
    np.testing.assert_allclose(fe["estimate"], [m.intercept_, *m.coef_])
    np.testing.assert_allclose(fe["std_error"], np.sqrt(np.diag(m.vcov())))
    assert "~ 1 + x + (1 | g)" in str(m.summary())


def test_aliased_covariate_is_na(simulated):
    X, y = simulated
    X = X.assign(x2=2 * X["x"])
    with pytest.warns(CollinearityWarning):
        cp = CompletePoolingBinomial(group="g").fit(X, y)
    s = cp.summary()
    dropped = cp.covariates_[cp._fit_result.design.aliased][0]
    assert s.fixed_effects.loc[dropped].isna().all()
    assert "not defined because of singularities" in str(s)


def test_boundary_fit():
    X = pd.DataFrame({"g": np.arange(30)})
    y = np.tile([6, 20], (30, 1))
    with pytest.warns(BoundaryWarning):
        m = MultilevelBinomial(group="g").fit(X, y)
    s = m.summary()
    assert s.fit["boundary"] is True
    assert s.random_effects.loc["g", "tau"] == 0.0
    assert "boundary (singular) fit: tau = 0" in str(s)
    assert "boundary (singular) fit" in s._repr_html_()


def test_array_input_names():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.repeat(np.arange(10), 5), rng.normal(size=50)])
    y = np.column_stack([rng.binomial(10, 0.3, size=50), np.full(50, 10)])
    s = MultilevelBinomial(group=0).fit(X, y).summary()
    assert s.formula.endswith("~ 1 + `1` + (1 | group)")
    assert list(s.fixed_effects.index) == ["intercept", "1"]


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MultilevelBinomial(group="g").summary()


def test_r_formatting():
    # printCoefmat rounds estimate and SE together to the smallest magnitude
    est, se = _coef_columns(np.array([-1.09837, 0.28830]), np.array([0.09855, 0.05977]))
    assert est == ["-1.09837", "0.28830"] and se == ["0.09855", "0.05977"]
    # R's format.pval(digits = 3)
    assert _pvalues([1.5e-30, 1.41e-6, 0.61523]) == ["< 2e-16", "1.41e-06", "0.615"]
    assert _pvalues([1e-30, 0.61523]) == ["<2e-16", "0.615"]
    assert _pvalues([0.5, 0.0123, np.nan]) == ["0.5000", "0.0123", "NA"]
    assert _pvalues([2e-5, 1.41e-6, 0.000123]) == ["2.00e-05", "1.41e-06", "0.000123"]
