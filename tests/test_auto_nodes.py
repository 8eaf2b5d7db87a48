"""n_quad="auto": each group's node count, checked against brute-force
integration and against the fixed 25-node rule (issue 13)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import expit, log_expit

from skre import MultilevelBinomial
from skre._core.accuracy import LEVELS, Target, select_nodes, start_levels
from skre._core.grouping import collapse, subset_groups
from skre._core.nodepass import NodePass
from skre._core.quadrature import (
    MarginalLikelihood,
    MixedLikelihood,
    quadrature_likelihood,
)
from skre.datasets import load_rats


def simulated(groups, rows_per_group, tau, seed=0, trials=1):
    """Binary (or small-count) rows with one covariate; returns X, y."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), rows_per_group)
    x = rng.standard_normal(len(g))
    u = tau * rng.standard_normal(groups)
    n = np.full(len(g), trials)
    m = rng.binomial(n, expit(-0.5 + 0.8 * x + u[g]))
    return pd.DataFrame({"g": g, "x": x}), np.column_stack([m, n])


def brute_log_marginal(data, params, group):
    """log of the integral over u of N(u; 0, tau^2) prod_rows expit(eta)^m
    expit(-eta)^(n - m), eta = b + x beta + u (the likelihood kernel, without
    the binomial coefficients), by scipy's adaptive quadrature."""
    beta, b, tau = params[:-2], params[-2], params[-1]
    end = data.starts[group + 1] if group + 1 < data.n_groups else len(data.codes)
    rows = slice(data.starts[group], end)
    eta0 = b + data.Z[rows] @ beta
    m, n = data.successes[rows], data.trials[rows]

    def log_integrand(u):
        eta = eta0[:, None] + np.atleast_1d(u)[None, :]
        kernel = m @ log_expit(eta) + (n - m) @ log_expit(-eta)
        return (
            kernel
            - 0.5 * (np.atleast_1d(u) / tau) ** 2
            - np.log(tau * np.sqrt(2 * np.pi))
        )

    grid = np.linspace(-12 * tau, 12 * tau, 4001)
    peak = grid[np.argmax(log_integrand(grid))]
    shift = float(log_integrand(peak)[0])
    value, _ = integrate.quad(
        lambda u: float(np.exp(log_integrand(u)[0] - shift)),
        -15 * tau,
        15 * tau,
        points=[peak],
        epsabs=0,
        epsrel=1e-12,
        limit=400,
    )
    return np.log(value) + shift


def collapsed(X, y):
    codes = X["g"].to_numpy()
    data = collapse(
        codes,
        X[["x"]].to_numpy(),
        y[:, 0].astype(float),
        y[:, 1].astype(float),
        int(codes.max()) + 1,
    )
    return data


def test_chosen_counts_are_accurate_against_brute_force():
    """Every group's chosen rule is within the tolerance of scipy's adaptive
    integral, and the groups do not all need 25 nodes."""
    X, y = simulated(groups=60, rows_per_group=3, tau=1.5, seed=3)
    data = collapsed(X, y)
    params = np.array([0.8, -0.5, 1.5])
    weight = np.ones(data.n_groups)
    rtol = 1e-7
    x = np.r_[params[:-1], np.log(params[-1])]
    # the log-likelihood's part of the target alone (no covariance)
    target = Target.at(x, np.zeros((3, 3)), -300.0, data.n_groups, rtol_loglik=rtol)
    # the walk a fit takes when its log-likelihood falls short (a start
    # compares each group once only; the fit is measured next)
    sel = select_nodes(
        data, weight, params, start_levels(data), target, criterion="loglik"
    )
    counts = sel.counts
    assert len(sel.unresolved) == 0
    assert set(np.unique(counts)) <= set(LEVELS)
    assert counts.min() < 25
    chosen = quadrature_likelihood(data, weight, counts).posterior(params).log_marginal
    brute = np.array(
        [brute_log_marginal(data, params, g) for g in range(data.n_groups)]
    )
    total = abs(brute.sum())
    # the per-group allowance of node_counts, with room for its own estimate
    # of the error (the difference to the next rule) being an estimate
    assert np.abs(chosen - brute).max() <= 10 * rtol * total / data.n_groups
    assert abs(chosen.sum() - brute.sum()) <= rtol * total


def test_mixed_likelihood_is_the_sum_of_its_parts():
    """Value and gradient of the mixed rule equal the per-group rules summed."""
    X, y = simulated(groups=40, rows_per_group=2, tau=1.0, seed=5, trials=3)
    data = collapsed(X, y)
    weight = np.arange(1, data.n_groups + 1, dtype=float)
    counts = np.array([LEVELS[1 + i % 4] for i in range(data.n_groups)])
    params = np.array([0.5, -0.3, 1.0])
    mixed = MixedLikelihood(data, weight, counts)
    value, grad = mixed.value_and_grad(params)
    expected_value, expected_grad = 0.0, np.zeros(3)
    for g in range(data.n_groups):
        one = MarginalLikelihood(subset_groups(data, [g]), weight[[g]], int(counts[g]))
        v, dv = one.value_and_grad(params)
        expected_value += v
        expected_grad += dv
    assert value == pytest.approx(expected_value, rel=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-11, atol=1e-12)
    assert mixed.value(params) == pytest.approx(value, rel=1e-14)
    post = mixed.posterior(params)
    assert post.log_marginal @ weight == pytest.approx(value, rel=1e-13)


def test_small_data_auto_is_exactly_25_nodes():
    X, y = load_rats(return_X_y=True)
    auto = MultilevelBinomial(group="batch").fit(X, y)
    fixed = MultilevelBinomial(group="batch", n_quad=25).fit(X, y)
    assert auto.intercept_ == fixed.intercept_ and auto.tau_ == fixed.tau_
    assert "nAGQ = 25" in str(auto.summary())


def test_large_data_auto_matches_fixed_25_nodes():
    """Past 200,000 rows x nodes: fewer nodes for most groups, the same fit."""
    X, y = simulated(groups=3000, rows_per_group=4, tau=1.2, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no quadrature or convergence warning
        auto = MultilevelBinomial(group="g").fit(X, y)
        fixed = MultilevelBinomial(group="g", n_quad=25).fit(X, y)
    nodes = auto._fit_result.n_quad
    assert np.ndim(nodes) == 1 and np.median(nodes) < 25
    for name in ("intercept_", "tau_"):
        assert getattr(auto, name) == pytest.approx(getattr(fixed, name), abs=1e-6)
    np.testing.assert_allclose(auto.coef_, fixed.coef_, atol=1e-6)
    assert auto.loglik_ == pytest.approx(fixed.loglik_, rel=1e-7)
    np.testing.assert_allclose(auto.vcov(), fixed.vcov(), rtol=1e-4)
    low, high = int(np.min(nodes)), int(np.max(nodes))
    assert f"{low} to {high} nodes" in str(auto.summary())


def test_primed_first_step_equals_a_fresh_evaluation(monkeypatch):
    """The node choice keeps its evaluations (with the gradient's sums) and
    the quadrature fit takes its first value and gradient from them: the
    same numbers as evaluating the chosen rule afresh, mixed counts and a
    covariate included."""
    X, y = simulated(groups=400, rows_per_group=30, tau=1.0, seed=4)
    data = collapsed(X, y)
    # groups of 1 to 30 rows, so that counts differ
    keep = np.flatnonzero(np.arange(len(data.codes)) % 30 < 1 + data.codes % 30)
    g = data.codes[keep]
    data = collapse(g, data.Z[keep], data.successes[keep], data.trials[keep], 400)
    weight = np.ones(400)
    params = np.array([0.7, -0.4, 1.1])
    store = {}
    x = np.r_[params[:-1], np.log(params[-1])]
    target = Target.at(x, np.eye(3), -5000.0, 400)
    counts = select_nodes(
        data, weight, params, start_levels(data), target, store=store
    ).counts
    assert len(np.unique(counts)) > 1
    primed = quadrature_likelihood(data, weight, counts)
    primed.prime(store)
    fresh = quadrature_likelihood(data, weight, counts)
    passes = []
    real = NodePass.__call__
    monkeypatch.setattr(
        NodePass,
        "__call__",
        lambda self, *a, **k: passes.append(1) or real(self, *a, **k),
    )
    v1, g1 = primed.value_and_grad(params)
    assert not passes  # no pass over the rows
    v2, g2 = fresh.value_and_grad(params)
    assert passes
    assert v1 == pytest.approx(v2, rel=1e-13)
    np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-10)
    # a different point is evaluated, not taken from the store
    other = params + 0.01
    assert primed.value_and_grad(other)[0] == pytest.approx(
        fresh.value_and_grad(other)[0], rel=1e-13
    )
