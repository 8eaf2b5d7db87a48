"""Nested groups: lr_test, simulate, residuals and the bootstrap.

References: the brute-force tensor grid of ``test_nested.py`` (the
log-likelihoods, the posterior of a seen pair), scipy's ``quad`` and ``binom``
for population probabilities, and scipy's chi-square for the boundary
mixture.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.special import expit
from test_nested import GRID, GRID_W, _brute_loglik, _inner_lik, _simulated

from skre import CompletePoolingBinomial, MultilevelBinomial, lr_test
from skre.exceptions import BoundaryWarning

NESTED = ["district", "school"]


def _pairs(X):
    return X.assign(pair=X.district + "/" + X.school.astype(str))[["pair", "x"]]


# -- lr_test ---------------------------------------------------------------------
def test_lr_test_of_each_level_equals_brute_force():
    """The nested model against each one-level model: 2 (loglik difference)
    of the brute-force grid (a one-level model is the nested one with the
    other SD at 0), and p from 0.5 chi2(0) + 0.5 chi2(1)."""
    X, y = _simulated()
    m = MultilevelBinomial(group=NESTED).fit(X, y)
    full = _brute_loglik(X, y, m.intercept_, m.coef_[0], m.tau_outer_, m.tau_)
    outer = MultilevelBinomial(group="district").fit(X[["district", "x"]], y)
    pairs = MultilevelBinomial(group="pair").fit(_pairs(X), y)
    for one, sds, held in (
        (outer, (outer.tau_, 0.0), "(tau)"),
        (pairs, (0.0, pairs.tau_), "(tau_outer)"),
    ):
        restricted = _brute_loglik(X, y, one.intercept_, one.coef_[0], *sds)
        t = lr_test(one, m)
        assert t.statistic == pytest.approx(2 * (full - restricted), abs=1e-6)
        assert t.statistic > 0.1
        assert t.df == 1
        assert t.pvalue == pytest.approx(0.5 * stats.chi2.sf(t.statistic, 1), 1e-12)
        assert "boundary" in t.null and held in t.null


@pytest.mark.parametrize("seed, which", [(3, "outer"), (4, "pairs")])
def test_lr_test_at_the_boundary_is_one(seed, which):
    """A nested fit with the added level's SD at 0 is the one-level model:
    statistic 0, p = 1."""
    X, y = _simulated(seed=seed)
    with pytest.warns(BoundaryWarning):
        m = MultilevelBinomial(group=NESTED).fit(X, y)
    if which == "outer":
        one = MultilevelBinomial(group="district").fit(X[["district", "x"]], y)
    else:
        one = MultilevelBinomial(group="pair").fit(_pairs(X), y)
    t = lr_test(one, m)
    assert (t.statistic, t.pvalue) == (0.0, 1.0)


def test_lr_test_of_a_covariate_between_nested_fits():
    """Two nested fits with the same groups, one covariate apart: chi2(1) of
    the brute-force log-likelihoods (25 nodes: on these tiny groups the
    default's finest rules differ by 1.5e-7 without the covariate, and it
    warns)."""
    X, y = _simulated()
    m = MultilevelBinomial(group=NESTED, n_quad=25).fit(X, y)
    m0 = MultilevelBinomial(group=NESTED, n_quad=25).fit(X[NESTED], y)
    full = _brute_loglik(X, y, m.intercept_, m.coef_[0], m.tau_outer_, m.tau_)
    null = _brute_loglik(X, y, m0.intercept_, 0.0, m0.tau_outer_, m0.tau_)
    t = lr_test(m0, m)
    assert t.statistic == pytest.approx(2 * (full - null), abs=1e-6)
    assert t.pvalue == pytest.approx(stats.chi2.sf(t.statistic, 1), rel=1e-12)


def test_lr_test_refuses_what_is_not_one_level_apart():
    X, y = _simulated()
    m = MultilevelBinomial(group=NESTED).fit(X, y)
    one = MultilevelBinomial(group="district").fit(X[["district", "x"]], y)
    with pytest.raises(ValueError, match="not the reverse"):
        lr_test(m, one)
    with pytest.raises(NotImplementedError, match="one level at a time"):
        lr_test(CompletePoolingBinomial().fit(X[["x"]], y), m)
    # school labels repeat across districts: group="school" is neither level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        school = MultilevelBinomial(group="school").fit(X[["school", "x"]], y)
        merged = MultilevelBinomial(group=NESTED).fit(X.assign(district="one"), y)
    with pytest.raises(ValueError, match="neither the full model's outer"):
        lr_test(school, m)
    with pytest.raises(ValueError, match="group the rows differently"):
        lr_test(merged, m)


# -- simulate --------------------------------------------------------------------
def _population_p(eta, s):
    """E[expit(eta + s Z)], Z ~ N(0, 1), by quad."""
    f = lambda z: expit(eta + s * z) * stats.norm.pdf(z)  # noqa: E731
    return integrate.quad(f, -12, 12, epsabs=1e-13)[0]


def test_simulate_new_groups_draws_outer_and_inner_effects():
    """Means of single rows and of products of two rows: the same pair
    (both effects shared), two pairs of one outer group (the outer effect
    shared), two outer groups (nothing shared), against quad."""
    X, y = _simulated()
    m = MultilevelBinomial(group=NESTED, n_quad=7).fit(X, y)
    sa, sb = m.tau_outer_, m.tau_
    rows = pd.DataFrame(
        {"district": ["d1", "d1", "d1", "zz"], "school": [0, 0, 5, 0], "x": 0.3}
    )
    eta = m.intercept_ + m.coef_[0] * 0.3
    n_sims = 200_000
    sims = m.simulate(n_sims, random_state=0, new_groups=True, X=rows)
    assert sims.shape == (n_sims, 4)

    def inner(a):  # P(success | outer effect a)
        return _population_p(eta + a, sb)

    def pair(a):  # P(both rows of one pair succeed | a)
        f = lambda w: expit(eta + a + w) ** 2 * stats.norm.pdf(w, scale=sb)  # noqa: E731
        return integrate.quad(f, -12 * sb, 12 * sb)[0]

    def over_a(g):
        f = lambda a: g(a) * stats.norm.pdf(a, scale=sa)  # noqa: E731
        return integrate.quad(f, -12 * sa, 12 * sa, epsabs=1e-12)[0]

    p = _population_p(eta, np.hypot(sa, sb))
    expected = {
        "p": p,
        "same pair": over_a(pair),
        "same outer": over_a(lambda a: inner(a) ** 2),
        "two outers": p * p,
    }
    got = {
        "p": sims.mean(),
        "same pair": np.mean(sims[:, 0] * sims[:, 1]),
        "same outer": np.mean(sims[:, 0] * sims[:, 2]),
        "two outers": np.mean(sims[:, 0] * sims[:, 3]),
    }
    se = {k: np.sqrt(v * (1 - v) / n_sims) for k, v in expected.items()}
    for key, value in expected.items():
        assert abs(got[key] - value) < 4.5 * se[key], key
    # the three differ by far more than the noise: the test tells them apart
    assert expected["same pair"] - expected["same outer"] > 10 * se["same pair"]
    assert expected["same outer"] - expected["two outers"] > 10 * se["same outer"]


def test_simulate_training_rows_and_seeds():
    X, y = _simulated()
    m = MultilevelBinomial(group=NESTED, n_quad=7).fit(X, y)
    a = m.simulate(4, random_state=3, new_groups=True)
    b = m.simulate(4, random_state=3, new_groups=True)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, len(X))
    assert np.all((a >= 0) & (a <= y[:, 1]))
    with pytest.raises(NotImplementedError, match="new_groups=True"):
        m.simulate(2)
    # rows of new outer groups only: their draws are the population's anyway
    new = X.assign(district=X.district + "_new")
    assert m.simulate(2, random_state=0, X=new).shape == (2, len(X))


# -- residuals -------------------------------------------------------------------
def test_pearson_and_deviance_residuals_are_at_predict_proba():
    X, y = _simulated()
    m = MultilevelBinomial(group=NESTED, n_quad=7).fit(X, y)
    p = m.predict_proba(X)[:, 1]
    k, n = y[:, 0], y[:, 1]
    pearson = (k - n * p) / np.sqrt(n * p * (1 - p))
    np.testing.assert_allclose(m.residuals(X, y, kind="pearson"), pearson, 1e-10)
    mu = n * p
    with np.errstate(divide="ignore", invalid="ignore"):
        d = 2 * (
            np.where(k > 0, k * np.log(k / mu), 0)
            + np.where(n > k, (n - k) * np.log((n - k) / (n - mu)), 0)
        )
    np.testing.assert_allclose(
        m.residuals(X, y, kind="deviance"), np.sign(k - mu) * np.sqrt(d), 1e-8
    )


def test_quantile_residuals_lie_between_the_population_cdfs():
    """Default: each row's logit over N(eta, tau_outer^2 + tau^2): the
    residual is the normal quantile of a point between P(Y < m) and P(Y <=
    m) (quad)."""
    X, y = _simulated()
    m = MultilevelBinomial(group=NESTED, n_quad=7).fit(X, y)
    r = stats.norm.cdf(m.residuals(X, y, random_state=0))
    s = np.hypot(m.tau_outer_, m.tau_)
    eta = m.intercept_ + m.coef_[0] * X["x"].to_numpy()
    for i in range(0, len(X), 5):

        def cdf(k, i=i):
            f = lambda z: (  # noqa: E731
                stats.binom.cdf(k, y[i, 1], expit(eta[i] + s * z)) * stats.norm.pdf(z)
            )
            return integrate.quad(f, -12, 12, epsabs=1e-13)[0]

        assert cdf(y[i, 0] - 1) - 1e-9 <= r[i] <= cdf(y[i, 0]) + 1e-9


def test_conditional_quantile_residuals_use_the_pair_posterior():
    """conditional=True, a new row of a seen pair: between P(Y < m) and P(Y
    <= m) over the pair's posterior of (outer, inner) effects (the grid); of
    a new inner group of a seen outer group: over the outer effect's
    posterior and the population of inner effects."""
    X, y = _simulated()
    m = MultilevelBinomial(group=NESTED, n_quad=25).fit(X, y)
    b, c, sa, sb = m.intercept_, m.coef_[0], m.tau_outer_, m.tau_
    rows = X.assign(m=y[:, 0], n=y[:, 1]).query("district == 'd2'")
    school = rows.school.iloc[0]
    liks = {s: _inner_lik(r, b, c, sa, sb) for s, r in rows.groupby("school")}
    given_z = {s: L @ GRID_W for s, L in liks.items()}
    post_z = np.prod(list(given_z.values()), axis=0) * GRID_W
    joint = liks[school] * GRID_W[None, :] * (post_z / given_z[school])[:, None]
    joint /= joint.sum()
    x_new, n_new = -0.5, 6
    p = expit(b + c * x_new + sa * GRID[:, None] + sb * GRID[None, :])
    new = pd.DataFrame({"district": ["d2"] * 7, "school": school, "x": x_new})
    k = np.arange(7)
    got = stats.norm.cdf(
        m.residuals(new, np.c_[k, np.full(7, n_new)], conditional=True, random_state=1)
    )
    for j in k:
        upper = np.sum(joint * stats.binom.cdf(j, n_new, p))
        lower = np.sum(joint * stats.binom.cdf(j - 1, n_new, p))
        assert lower - 1e-7 <= got[j] <= upper + 1e-7
        assert upper - lower > 0.01  # the bounds are not trivial
    # a new inner group of the same outer group: the outer effect's
    # posterior and N(0, 1) for the inner one
    post = post_z / post_z.sum()
    got = stats.norm.cdf(
        m.residuals(
            new.assign(school=99),
            np.c_[k, np.full(7, n_new)],
            conditional=True,
            random_state=1,
        )
    )
    for j in k:
        upper = post @ (stats.binom.cdf(j, n_new, p) @ GRID_W)
        lower = post @ (stats.binom.cdf(j - 1, n_new, p) @ GRID_W)
        assert lower - 1e-7 <= got[j] <= upper + 1e-7
        assert upper - lower > 0.01


def test_one_inner_group_per_outer_group_is_refused():
    """Every outer group with one inner group: only tau_outer^2 + tau^2 is
    identified."""
    X, y = _simulated()
    est = MultilevelBinomial(group=NESTED)
    with pytest.raises(ValueError, match="not separately identifiable"):
        est.fit(X.assign(school=0), y)
    assert not hasattr(est, "coef_")


# -- the bootstrap -----------------------------------------------------------------
def test_bootstrap_refits_the_same_rows():
    """The bootstrap's refit data with the observed successes is the training
    data: the same fit; and percentile rows for both SDs."""
    from skre._checking import refit_data

    X, y = _simulated()
    m = MultilevelBinomial(group=NESTED, n_quad=7).fit(X, y)
    copy, Xr, yr = refit_data(m, m._fit_result.design.data.successes)
    assert copy.group == NESTED and list(Xr.columns) == [*NESTED, "x"]
    copy.fit(Xr, yr)
    assert copy.loglik_ == pytest.approx(m.loglik_, abs=1e-9)
    np.testing.assert_allclose(
        [copy.tau_, copy.tau_outer_, *copy.coef_], [m.tau_, m.tau_outer_, *m.coef_]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a refit may not converge
        ci = m.confint(method="bootstrap", n_boot=8, random_state=0)
    assert list(ci.index) == ["intercept", "x", "tau", "tau_outer"]
    assert np.all(np.isfinite(ci.to_numpy()))
    assert np.all(ci.iloc[:, 0] <= ci.iloc[:, 1])
