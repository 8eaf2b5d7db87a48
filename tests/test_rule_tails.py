"""The adaptive rules of random slopes and nested groups keep their tails.

A node's share of a group's integral is its weight times the integrand's
ratio to the rule's normal there, and that ratio grows in the tails where a
group's conditional distribution is wider than its Laplace normal (a group of
one or two rows, all successes). Rules that dropped the nodes of weight below
1e-15 of the largest (|t| > 8.3) had an error floor of 1e-8 to 5e-7 in the
log-likelihood that no larger rule reduced, so the default's check (two such
rules compared) could not see it. Each test below fails with those rules.

References: independent tensor grids (``tests/reference/exact_slopes.py`` for
slopes; the trapezoid grid of ``tests/test_nested.py`` for nested groups),
both converged to 1e-13 in their steps.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit
from test_nested import _simulated
from test_random_slopes import exact_loglik

from skre import MultilevelBinomial


def _nested_brute(X, y, b, sa, sb, h=0.01, width=12.0):
    """Each outer group's log-likelihood (kernel) on a trapezoid grid."""
    grid = np.arange(-width, width + h / 2, h)
    weight = stats.norm.pdf(grid) * h
    out = {}
    for name, rows in X.assign(m=y[:, 0], n=y[:, 1]).groupby("district"):
        given_z = np.ones(len(grid))
        for _, r in rows.groupby("school"):
            eta = b + sa * grid[None, :, None] + sb * grid[None, None, :]
            m, n = r.m.to_numpy()[:, None, None], r.n.to_numpy()[:, None, None]
            given_z *= np.exp(np.sum(m * eta - n * np.logaddexp(0, eta), 0)) @ weight
        out[name] = np.log(given_z @ weight)
    return out


@pytest.mark.parametrize("K", [51, pytest.param(101, marks=pytest.mark.slow)])
def test_nested_rules_converge_to_the_grid(K):
    """Tiny inner groups with an inner SD near 2: each outer group's value
    on the 51- and 101-node rules equals the grid to 1e-10 (1e-7 off with
    the pruned rules, at every size from 35 nodes)."""
    from skre._core.nested import NestedLikelihood

    X, y = _simulated()
    X = X[["district", "school"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 25 nodes: a fixed rule, not the check
        m = MultilevelBinomial(group=["district", "school"], n_quad=25).fit(X, y)
    fit = m._fit_result
    assert m.tau_ > 1.5
    lik = NestedLikelihood(fit.data(), K)
    got = lik.group_loglik(fit.x)
    brute = _nested_brute(X, y, m.intercept_, m.tau_outer_, m.tau_)
    want = np.array([brute[name] for name in fit.outer_groups])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_nested_default_settles_and_equals_the_grid():
    """The same data: the default settles without a warning (with the pruned
    rules no two agreed on the estimates, up to 75 against 101 nodes), and
    its log-likelihood is the grid's to 1e-9."""
    X, y = _simulated()
    X = X[["district", "school"]]
    m = MultilevelBinomial(group=["district", "school"]).fit(X, y)  # warnings fail
    assert m._fit_result.check[3] <= 1.0
    brute = _nested_brute(X, y, m.intercept_, m.tau_outer_, m.tau_)
    constant = np.sum(stats.binom.logpmf(y[:, 0], y[:, 1], 0.5) + y[:, 1] * np.log(2.0))
    assert m.loglik_ == pytest.approx(sum(brute.values()) + constant, abs=1e-9)


def _skewed_slopes(G=60, per=3, seed=2):
    """Groups of 3 binary rows with SDs 2 and 1: wide conditional tails."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(G), per)
    x = rng.normal(size=G * per)
    cov = np.array([[4.0, 0.6], [0.6, 1.0]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=G)
    y = rng.binomial(1, expit(0.3 + 0.5 * x + u[codes, 0] + u[codes, 1] * x))
    return pd.DataFrame({"g": codes, "x0": x}), y


@pytest.mark.parametrize("K", [35, pytest.param(51, marks=pytest.mark.slow)])
def test_slope_rules_converge_to_the_grid(K):
    """A fit's log-likelihood on 35 and 51 nodes per dimension equals the
    tensor grid at its estimate to 1e-10 (the pruned rules: 1.2e-8 and
    1.9e-8 off; the grid's own change from 241 to 321 points is 5e-13)."""
    X, y = _skewed_slopes()
    m = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=K).fit(X, y)
    kernel = exact_loglik(m, X, y, points=241, width=9.0)
    assert m.loglik_ == pytest.approx(kernel, abs=1e-10)
