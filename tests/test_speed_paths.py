"""The fast paths of issue 13 against the plain computations they replace:
the chunked row-node pass, the sparse group sums, numpy's expit, the numpy
BFGS and its convergence rules."""

import numpy as np
import pytest
from scipy import optimize
from scipy.special import expit, log_expit

from skre._core.binomial import fast_expit, kernel, residual_and_weight
from skre._core.grouping import Collapsed, collapse, standardize
from skre._core.nodepass import NodePass, log_expit_and_expit
from skre._core.optimize import _positive_definite, minimize_smooth
from skre._core.quadrature import MarginalLikelihood


def rows(n_groups=300, binary=True, seed=0, p=2):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, n_groups)
    codes = np.repeat(np.arange(n_groups), sizes)
    Z = rng.normal(size=(len(codes), p))
    if binary:
        n = np.ones(len(codes))
        m = rng.binomial(1, 0.3, len(codes)).astype(float)
    else:
        n = rng.integers(1, 9, len(codes)).astype(float)
        m = rng.binomial(n.astype(int), 0.3).astype(float)
    return collapse(codes, Z, m, n, n_groups)


def test_log_expit_and_expit_equal_scipy_over_the_whole_range():
    eta = np.r_[np.linspace(-745, 745, 200_001), -1e-300, 0.0, 1e-300, 36.7, -36.7]
    log_p, p = log_expit_and_expit(eta.copy())
    ref = log_expit(eta)
    np.testing.assert_allclose(log_p, ref, rtol=4e-16, atol=0)
    # p = exp(log p): exp turns log p's rounding into |log p| ulps of p; below
    # eta = -709 scipy's expit flushes p to 0 where ours is subnormal
    eps, normal = np.finfo(float).eps, eta > -709
    bound = 2 * eps * expit(eta) * (1 + np.abs(ref))
    assert np.all(np.abs(p - expit(eta))[normal] <= bound[normal])
    assert np.all(p[~normal] < 1e-307)


def test_fast_expit_equals_scipy():
    eta = np.linspace(-700, 700, 100_001)
    np.testing.assert_allclose(fast_expit(eta), expit(eta), rtol=1e-15, atol=0)
    assert fast_expit(np.array([-np.inf, np.inf])).tolist() == [0.0, 1.0]
    r, w, p = residual_and_weight(eta, 0.3 * np.ones_like(eta), np.ones_like(eta))
    p_ref = expit(eta)  # 1 - p cancels near p = 1: agreement to eps absolute
    np.testing.assert_allclose(w, p_ref * (1 - p_ref), rtol=1e-14, atol=4e-16)
    np.testing.assert_allclose(r, 0.3 - p_ref, rtol=1e-14, atol=4e-16)


@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_sparse_group_sum_equals_reduceat(shape):
    data = rows(seed=1)
    values = np.random.default_rng(2).normal(size=(len(data.codes), *shape))
    ref = np.add.reduceat(values, data.starts, axis=0)
    np.testing.assert_allclose(data.group_sum(values), ref, rtol=1e-13, atol=1e-13)
    w = np.random.default_rng(3).random(len(data.codes))
    np.testing.assert_allclose(
        data.weighted_group_sum(w, data.Z),
        np.add.reduceat(w[:, None] * data.Z, data.starts, axis=0),
        rtol=1e-13,
        atol=1e-13,
    )


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("max_elements", [1, 37, 10**9])
def test_node_pass_equals_the_whole_array_computation(binary, max_elements):
    """Chunks of whole groups (one group per chunk, odd sizes, one chunk) give
    the sums the unchunked formulas give."""
    data = rows(binary=binary, seed=4)
    K, G = 9, data.n_groups
    rng = np.random.default_rng(5)
    offset = rng.normal(size=len(data.codes))
    nodes = rng.normal(size=(G, K))
    log_prior = rng.normal(size=(G, K))
    h, np_sum, p_mean, w_sum = NodePass(data, K, max_elements)(
        offset, 0.8 * nodes, log_prior, grad=True, row_means=True, weights=True
    )
    eta = offset[:, None] + 0.8 * nodes[data.codes]
    m, n = data.successes[:, None], data.trials[:, None]
    ref_h = np.add.reduceat(kernel(eta, m, n), data.starts, axis=0)
    np.testing.assert_allclose(h, ref_h, rtol=1e-12, atol=1e-10)
    p = expit(eta)
    np.testing.assert_allclose(
        np_sum, np.add.reduceat(n * p, data.starts, axis=0), rtol=1e-12, atol=1e-12
    )
    w_ref = np.add.reduceat(n * p * (1 - p), data.starts, axis=0)
    np.testing.assert_allclose(w_sum, w_ref, rtol=1e-12, atol=1e-12)
    a = log_prior + ref_h
    pi = np.exp(a - a.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p_mean, np.sum(pi[data.codes] * p, axis=1), rtol=1e-12)


def test_agq_gradient_still_matches_finite_differences_with_chunks():
    data = rows(binary=True, seed=6, n_groups=2000)
    model = MarginalLikelihood(data, np.ones(data.n_groups), 9)
    assert len(NodePass(data, 9).chunks) > 1  # the chunked path is exercised
    params = np.array([0.3, -0.2, -0.5, 0.9])
    f, g = model.value_and_grad(params)
    for j in range(len(params)):
        e = np.zeros(len(params))
        e[j] = 1e-6
        fd = (model.value(params + e) - model.value(params - e)) / 2e-6
        assert g[j] == pytest.approx(fd, rel=1e-6, abs=1e-6)


def test_positive_definite_keeps_a_zero_coordinate_apart():
    H = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
    inv = _positive_definite(H)
    assert inv[2, 0] == inv[2, 1] == inv[0, 2] == inv[1, 2] == 0.0
    np.testing.assert_allclose(inv[:2, :2], np.linalg.inv(H[:2, :2]), rtol=1e-14)


def test_bfgs_finds_the_rosenbrock_minimum():
    def fg(x):
        return optimize.rosen(x), optimize.rosen_der(x)

    res = minimize_smooth(
        fg, np.array([-1.2, 1.0]), gtol=1e-10, max_iter=500, hess_inv0=np.eye(2)
    )
    assert res.converged
    np.testing.assert_allclose(res.x, np.ones(2), atol=1e-8)


def test_bfgs_does_not_stop_on_a_flat_start():
    """The log tau gradient vanishes as tau -> 0: a line search must extrapolate
    rather than accept tiny steps whose gradient is below gtol."""

    def fg(x):  # minimum at x = 0, gradient ~ 1e-12 at x = -12
        return -np.exp(x[0]) + 0.5 * np.exp(2 * x[0]), np.array(
            [-np.exp(x[0]) + np.exp(2 * x[0])]
        )

    res = minimize_smooth(fg, np.array([-12.0]), gtol=1e-20, hess_inv0=np.eye(1))
    assert res.converged and abs(res.x[0]) < 1e-6


def test_gradient_rounding_floor_needs_its_scale():
    def fg(x):  # a gradient stuck at 1e-7 (rounding of a huge objective)
        return 0.0, np.array([1e-7])

    common = dict(gtol=1e-9, xtol=1e-12, max_iter=3, hess_inv0=np.eye(1), polish=0)
    assert not minimize_smooth(fg, np.zeros(1), **common).converged
    big = minimize_smooth(fg, np.zeros(1), grad_scale=5e8, **common)
    assert big.converged


def test_empty_covariate_groups_sum_through_reduceat():
    data = Collapsed(
        np.array([0, 0, 1]), np.empty((3, 0)), np.ones(3), np.ones(3), 2, np.r_[0, 2]
    )
    assert data.group_sum(np.array([1.0, 2.0, 3.0])).tolist() == [3.0, 3.0]
    assert data.group_sum(np.ones((3, 2))).tolist() == [[2.0, 2.0], [1.0, 1.0]]


def test_small_gradient_on_a_plateau_is_not_convergence():
    """As tau -> 0 the log tau gradient and curvature vanish together: a
    gradient below gtol there is far from the optimum, which the Newton step
    shows."""

    def fg(x):
        return 1e-12 * (x[0] - 5.0) ** 2, np.array([2e-12 * (x[0] - 5.0)])

    res = minimize_smooth(fg, np.zeros(1), gtol=1e-9, hess_inv0=np.array([[5e11]]))
    assert res.converged and res.x[0] == pytest.approx(5.0, abs=1e-6)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("max_rows", [1, 50, 10**9])
def test_mode_pass_equals_the_whole_array_computation(binary, max_rows):
    """The mode solve's chunked sums and the sums at the modes equal the plain
    formulas (one group per chunk, a few groups, one chunk)."""
    from skre._core.binomial import residual_and_weight
    from skre._core.nodepass import ModePass

    data = rows(binary=binary, seed=7)
    rng = np.random.default_rng(8)
    offset = rng.normal(size=len(data.codes))
    xi = rng.normal(size=data.n_groups)
    mp = ModePass(data, max_rows)
    eta = offset + xi[data.codes]
    r, w, p = residual_and_weight(eta, data.successes, data.trials)

    def gsum(values):
        return np.add.reduceat(values, data.starts, axis=0)

    R, W = mp.sums(offset, xi)
    np.testing.assert_allclose(R, gsum(r), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(W, gsum(w), rtol=1e-12, atol=1e-14)
    at = mp.at_mode(offset, xi, grad=True, rows=True)
    np.testing.assert_allclose(
        at.h0, gsum(kernel(eta, data.successes, data.trials)), rtol=1e-12
    )
    np.testing.assert_allclose(at.W, gsum(w), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(at.R0, gsum(r), rtol=1e-12, atol=1e-12)
    v = w * (1 - 2 * p)
    np.testing.assert_allclose(at.V, gsum(v), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(at.WZ, gsum(w[:, None] * data.Z), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(at.VZ, gsum(v[:, None] * data.Z), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(at.r0, r, rtol=1e-12, atol=1e-14)
    lean = mp.at_mode(offset, xi, grad=False)
    assert lean.R0 is None and lean.WZ is None and lean.r0 is None


def test_row_logsumexp_when_the_middle_node_is_not_the_peak():
    from scipy.special import logsumexp

    from skre._core.nodepass import row_logsumexp

    a = np.array([[0.0, -1.0, 900.0], [-5.0, 0.0, -5.0], [-np.inf, -np.inf, 1.0]])
    np.testing.assert_allclose(
        row_logsumexp(a), logsumexp(a, axis=1), rtol=1e-14, atol=1e-15
    )


@pytest.mark.parametrize("prior", ["halfcauchy", "gamma"])
def test_profile_ends_meet_the_definition_with_a_tau_prior(prior):
    """Each end of the intercept's profile interval (rats, with a prior on tau)
    is where the penalised log-likelihood, maximised over log tau by scipy's
    bounded scalar minimiser, has dropped by chi2_1(0.95) / 2. The numpy BFGS
    once left these inner problems short of their minimum."""
    from scipy import stats

    from skre import MultilevelBinomial
    from skre._core.multilevel import negative_loglik
    from skre.datasets import load_rats
    from skre.priors import Gamma, HalfCauchy

    X, y = load_rats(return_X_y=True)
    tau_prior = HalfCauchy(1.0) if prior == "halfcauchy" else Gamma(2.5, 0)
    est = MultilevelBinomial(group="batch", tau_prior=tau_prior).fit(X, y)
    fit = est._fit_result
    nll = negative_loglik(fit.model, fit.log_prior)
    f_hat = nll(np.r_[est.intercept_, np.log(est.tau_)])[0]
    drop = stats.chi2.ppf(0.95, 1) / 2
    for end in est.confint(method="profile").loc["intercept"]:
        inner = optimize.minimize_scalar(
            lambda lt, end=end: nll(np.r_[end, lt])[0],
            bounds=(-4.0, 1.5),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert inner.fun - f_hat == pytest.approx(drop, abs=1e-6)


def test_a_sharp_tau_prior_gives_complete_pooling():
    """HalfNormal(1e-8) on tau: its gradient at the start implies a step of
    1e12 in log tau; the line search's first trial is capped, and the fit
    reaches tau -> 0, where it equals complete pooling."""
    from skre import CompletePoolingBinomial, MultilevelBinomial
    from skre.datasets import load_rats
    from skre.exceptions import BoundaryWarning
    from skre.priors import HalfNormal

    X, y = load_rats(return_X_y=True)
    with pytest.warns(BoundaryWarning):  # the prior holds tau at 0
        est = MultilevelBinomial(group="batch", tau_prior=HalfNormal(1e-8)).fit(X, y)
    cp = CompletePoolingBinomial(group="batch").fit(X, y)
    assert est.converged_ and 0.0 <= est.tau_ <= 1e-6
    assert est.intercept_ == pytest.approx(cp.intercept_, abs=1e-6)


@pytest.mark.parametrize(
    "unit,shift",
    [(1.0, 0.0), (1e160, 0.0), (1e-170, 0.0), (1e300, 0.0), (1e-300, 5e-299)],
)
def test_standardize_fast_and_careful_moments_agree(unit, shift):
    """The moments taken directly, with the careful path only when they may
    have overflowed or underflowed, equal those of the unscaled values."""
    rng = np.random.default_rng(3)
    x = rng.integers(-1000, 1000, size=(500, 2)).astype(float)
    x[:, 1] = 7.0  # a constant column
    w = rng.integers(1, 5, 500).astype(float)
    Zs, mean, scale = standardize(shift + unit * x, w)
    ref_mean = np.average(x, axis=0, weights=w)
    ref_sd = np.sqrt(np.average((x - ref_mean) ** 2, axis=0, weights=w))
    np.testing.assert_allclose(
        Zs[:, 0], (x[:, 0] - ref_mean[0]) / ref_sd[0], rtol=1e-12
    )
    np.testing.assert_allclose(scale[0], unit * ref_sd[0], rtol=1e-12)
    np.testing.assert_allclose(mean, shift + unit * ref_mean, rtol=1e-12)
    # the constant column stays constant (its mean's rounding may leave a
    # nonzero value there): the aliasing check then drops it
    assert np.all(np.isfinite(Zs)) and np.ptp(Zs[:, 1]) == 0.0 and scale[1] > 0


def test_a_staged_fit_stops_within_its_step_of_the_optimum():
    """Large fits stop their quadrature steps at a Newton step of 1e-6
    (REFINE_XTOL): polished to 1e-12 with measured Hessians, the estimate
    moves by less than that."""
    from skre._core.multilevel import (
        REFINE_XTOL,
        InMemory,
        fit_multilevel,
        negative_loglik,
    )

    rng = np.random.default_rng(11)
    G, k = 2000, 6
    codes = np.repeat(np.arange(G), k)
    Z = rng.normal(size=(G * k, 2))
    eta = -0.4 + Z @ [0.7, -0.3] + rng.normal(0, 1.1, G)[codes]
    m = (rng.random(G * k) < expit(eta)).astype(float)
    source = InMemory(collapse(codes, Z, m, np.ones(G * k), G), np.ones(G))
    assert source.n_rows * 25 > 200_000  # staged
    fit = fit_multilevel(source, 25)
    assert fit.converged
    x = np.r_[fit.beta, fit.b, np.log(fit.tau)]
    nll = negative_loglik(fit.model)
    polished = minimize_smooth(
        lambda v: tuple(np.asarray(a) / G for a in nll(v)), x, xtol=1e-12, gtol=0.0
    )
    assert polished.converged
    moved = np.max(np.abs(polished.x - x))
    assert moved <= 1e-6 and moved <= REFINE_XTOL


def test_last_newton_step_without_evaluation_meets_the_tolerance():
    """solve_decreasing(last_step=1e-7) takes its last Newton step blind: the
    roots still equal scipy's brentq to 1e-12, with fewer evaluations."""
    from skre._core.roots import solve_decreasing

    rng = np.random.default_rng(2)
    c = rng.normal(0, 5, 200)
    evals = []

    def fun(x):
        evals.append(1)
        return c - x**3 - x, -3 * x**2 - 1.0

    blind, _, ok = solve_decreasing(fun, np.zeros(200), -50, 50, last_step=1e-7)
    n_blind = len(evals)
    evals.clear()
    full, _, _ = solve_decreasing(fun, np.zeros(200), -50, 50)
    assert ok and n_blind < len(evals)
    ref = [
        optimize.brentq(lambda v, ci=ci: ci - v**3 - v, -50, 50, xtol=1e-15) for ci in c
    ]
    np.testing.assert_allclose(blind, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(full, ref, rtol=1e-12, atol=1e-14)


def test_a_staged_fit_heading_to_tau_zero_decides_the_boundary_first(monkeypatch):
    """When the Laplace stage of a large fit goes towards tau = 0, the boundary
    is decided before the quadrature's Newton steps, which on that plateau
    only crawl (they used to take all 200 iterations): the same
    complete-pooling answer in a few evaluations."""
    import pandas as pd

    from skre import CompletePoolingBinomial, MultilevelBinomial

    rng = np.random.default_rng(7)
    G, k = 1000, 12
    g = np.repeat(np.arange(G), k)
    Z = rng.normal(size=(G * k, 2))
    y = (rng.random(G * k) < expit(-0.3 + Z @ [0.5, -0.2])).astype(int)
    X = pd.DataFrame({"g": g, "a": Z[:, 0], "b": Z[:, 1]})
    calls = []
    real = MarginalLikelihood.value_and_grad
    monkeypatch.setattr(
        MarginalLikelihood,
        "value_and_grad",
        lambda self, p: calls.append(len(self.t)) or real(self, p),
    )
    with pytest.warns(UserWarning, match="boundary"):
        est = MultilevelBinomial(group="g").fit(X, y)
    assert len(g) * 25 > 200_000  # a staged fit
    assert est.tau_ == 0.0 and est.converged_
    cp = CompletePoolingBinomial(group="g").fit(X, y)
    np.testing.assert_allclose(est.coef_, cp.coef_, rtol=1e-9)
    assert sum(1 for k in calls if k > 1) <= 3  # quadrature evaluations


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("p", [0, 2])
def test_one_row_per_group_passes_equal_the_chunked_ones(binary, p):
    """With one row per group in one chunk (small intercept-only data) the
    passes skip their gathers and group sums; the numbers are those of the
    general chunked path, bit for bit."""
    from skre._core.nodepass import ModePass

    rng = np.random.default_rng(9)
    G = 60
    n = np.ones(G) if binary else rng.integers(1, 30, G).astype(float)
    m = rng.binomial(n.astype(int), 0.3).astype(float)
    data = Collapsed(np.arange(G), rng.normal(size=(G, p)), m, n, G, np.arange(G))
    offset, xi = rng.normal(size=G), rng.normal(size=(G, 7))
    log_prior = rng.normal(size=(G, 7))
    fast, chunked = NodePass(data, 7), NodePass(data, 7, max_elements=7 * 16)
    assert fast.one_row and not chunked.one_row
    for a, b in zip(
        fast(offset, xi, log_prior, True, True, True),
        chunked(offset, xi, log_prior, True, True, True),
    ):
        np.testing.assert_array_equal(a, b)
    mode_fast, mode_chunked = ModePass(data), ModePass(data, max_rows=16)
    assert mode_fast.one_row and not mode_chunked.one_row
    for a, b in zip(
        mode_fast.sums(offset, xi[:, 0]), mode_chunked.sums(offset, xi[:, 0])
    ):
        np.testing.assert_array_equal(a, b)
    at_fast = mode_fast.at_mode(offset, xi[:, 0], grad=True, rows=True)
    at_chunked = mode_chunked.at_mode(offset, xi[:, 0], grad=True, rows=True)
    for name in ("W", "R0", "V", "h0", "WZ", "VZ", "r0"):
        a, b = getattr(at_fast, name), getattr(at_chunked, name)
        if p or name not in ("WZ", "VZ"):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("tau", [0.0, 0.8, 3.0])
def test_value_at_another_rules_modes_equals_value(tau):
    """The accuracy check evaluates the finer rule at the fitted rule's modes
    and scales instead of solving for them again: the same value."""
    data = rows(binary=False, seed=3)
    params = np.array([0.4, -0.2, -0.5, tau])
    coarse = MarginalLikelihood(data, np.ones(data.n_groups), 7)
    fine = MarginalLikelihood(data, np.ones(data.n_groups), 15)
    post = coarse.posterior(params)
    assert fine.value_at(params, post) == pytest.approx(fine.value(params), rel=1e-13)


def test_feature_names_fast_path_equals_sklearn():
    """skre reads a pandas frame's string column names itself (sklearn's
    check is a tenth of a small fit) and leaves every other case to sklearn."""
    import pandas as pd
    from sklearn.utils.validation import _get_feature_names

    from skre._validation import feature_names

    frames = [
        pd.DataFrame({"g": [1], "x": [2.0]}),
        pd.DataFrame({0: [1], 1: [2.0]}),
        pd.DataFrame({np.str_("g"): [1]}),
        pd.DataFrame(index=[0]),
    ]
    for X in frames:
        ours, theirs = feature_names(X), _get_feature_names(X)
        assert (ours is None and theirs is None) or list(ours) == list(theirs)
    mixed = pd.DataFrame({"g": [1], 0: [2.0]})
    with pytest.raises(TypeError, match="string names"):
        feature_names(mixed)
