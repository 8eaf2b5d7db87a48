"""The compiled random-slope node pass equals the numpy pass.

``skre/_core/_slopepass.c`` computes what ``SlopeLikelihood._evaluate``'s
numpy loop computes for binary rows, by another route (the product of the
rows' 1 + e^-eta and one log per group and node, vector exp and log): the two
differ by rounding only. Each case compares the value, the gradient and every
group's value and score of one evaluation, with the compiled pass and with
``SKRE_NUMPY_PASS=1``; the cases reach its overflow-free paths (logits beyond
+-600 at some node, a group whose product overflows) and two slopes.
"""

import platform
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from skre import MultilevelBinomial
from skre._core import kernel
from skre._core.slopes import SlopeData

needs_kernel = pytest.mark.skipif(
    not kernel.available(), reason="the compiled node pass is not built here"
)


def test_built_where_it_can_be():
    """On Linux x86-64 with a C compiler, ``pip install -e .`` builds it next
    to its source (a failed build is only a warning from pip: this test is
    what notices)."""
    if sys.platform.startswith("linux") and platform.machine() == "x86_64":
        assert shutil.which("cc") is None or kernel._load()


def _data(rng, sizes, q, scale=1.0, offset=False):
    G = len(sizes)
    codes = np.repeat(np.arange(G), sizes)
    rows = len(codes)
    R = np.column_stack([np.ones(rows), rng.normal(size=(rows, q - 1)) * scale])
    X = rng.normal(size=(rows, 2))
    u = rng.normal(size=(G, q))
    eta = 0.3 * X[:, 0] - 0.2 + np.sum(R * u[codes], axis=1)
    m = (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype(float)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    off = rng.normal(size=rows) if offset else None
    return SlopeData(codes, starts, X, R, m, np.ones(rows), off)


def _both(data, K, x, monkeypatch):
    out = []
    for numpy_pass in ("0", "1"):
        monkeypatch.setenv("SKRE_NUMPY_PASS", numpy_pass)
        lik = data.likelihood(K)
        out.append(lik.evaluate(x))
        out.append(lik.evaluate(x, grad=False)[:3:2])
    return out


def _theta(q, sds=1.0):
    # the lower Cholesky entries, row by row: a correlated covariance
    L = np.tril(np.full((q, q), 0.3)) + np.diag(np.full(q, sds) - 0.3)
    return L[np.tril_indices(q)]


@needs_kernel
@pytest.mark.parametrize(
    "q, K, sizes, scale, sds, offset",
    [
        (2, 9, [20] * 40, 1.0, 1.0, False),  # balanced
        (2, 15, [1, 2, 3, 7, 30, 5, 1, 12] * 5, 1.0, 1.0, True),  # unbalanced
        (2, 25, [4] * 30, 1.0, 2.0, False),
        (3, 7, [6, 2, 9, 15] * 6, 1.0, 1.0, True),  # two slopes
        (2, 9, [5] * 10 + [3000], 1.0, 1.0, False),  # a product that overflows
        (2, 9, [5] * 20, 60.0, 3.0, False),  # logits beyond +-600 at some nodes
        # a group of more than 2^20 row-nodes: its expits computed again
        (2, 25, [5] * 6 + [1700], 1.0, 1.0, True),
    ],
)
def test_compiled_pass_equals_numpy(q, K, sizes, scale, sds, offset, monkeypatch):
    rng = np.random.default_rng(len(sizes) * 7 + q)
    data = _data(rng, sizes, q, scale, offset)
    x = np.r_[0.4, -0.3, 0.1, _theta(q, sds)]
    (f, g, logm, S), (f0, logm0), (nf, ng, nlogm, nS), (nf0, nlogm0) = _both(
        data, K, x, monkeypatch
    )
    assert np.all(np.isfinite(logm)) and np.all(np.isfinite(S))
    # rounding: the product of a group's 1 + e^-eta against the sum of the
    # logs, vector exp and log against numpy's (a few ulps each)
    tol = 1e-13 * np.max(np.bincount(data.codes))
    np.testing.assert_allclose(logm, nlogm, rtol=0, atol=tol * np.abs(nlogm).max())
    np.testing.assert_allclose(logm0, nlogm0, rtol=0, atol=tol * np.abs(nlogm).max())
    np.testing.assert_allclose(f, nf, rtol=tol)
    assert f0 == f and nf0 == nf
    np.testing.assert_allclose(S, nS, rtol=0, atol=1e3 * tol * np.abs(nS).max())
    np.testing.assert_allclose(g, ng, rtol=0, atol=1e3 * tol * np.abs(nS).sum(0).max())


@needs_kernel
@pytest.mark.parametrize(
    "q, K, diagonal, trials, p",
    [
        (2, 9, False, 10, 2),  # counts: numpy's node pass, compiled modes and scores
        (2, 1, False, 10, 2),  # Laplace (no node pass), counts
        (3, 1, False, 1, 2),  # Laplace, binary rows, two slopes
        (3, 5, True, 6, 2),  # diagonal covariance, counts
        (2, 9, False, 1, 0),  # no fixed covariate but the intercept
    ],
)
def test_compiled_modes_and_scores_equal_numpy(q, K, diagonal, trials, p, monkeypatch):
    """``_slopemodes.c`` and ``_slopescores.c`` (every rule, counts too)
    against numpy's modes and scores: the modes, the value, each group's
    value and score."""
    rng = np.random.default_rng([q, K, trials, p])
    sizes = [1, 4, 9, 2, 30, 6] * 6
    data = _data(rng, sizes, q, offset=True)
    n = rng.integers(1, trials + 1, size=len(data.m)).astype(float)
    m = rng.binomial(n.astype(int), 0.3 + 0.4 * data.m).astype(float)
    X = data.X[:, :p]
    data = SlopeData(data.codes, data.starts, X, data.R, m, n, data.offset)
    L = np.diag(np.full(q, 0.8)) if diagonal else None
    theta = np.full(q, 0.8) if diagonal else _theta(q, 0.8)
    x = np.r_[[0.4, -0.3][:p], 0.1, theta]
    # numpy's modes to 1e-15: its steps stop when the slowest group's is
    # below 1e-10, the compiled solver's one step after each group's is
    monkeypatch.setenv("SKRE_NUMPY_PASS", "1")
    exact = data.likelihood(K, diagonal)
    beta, b, Lx = exact.unpack(x)
    offset = b + X @ beta + data.offset
    exact.modes(offset, data.R @ Lx, tol=1e-15, max_iter=200)
    out = []
    for numpy_pass in ("0", "1"):
        monkeypatch.setenv("SKRE_NUMPY_PASS", numpy_pass)
        lik = data.likelihood(K, diagonal)
        if numpy_pass == "1":
            lik.u = exact.u.copy()
        f, g, logm, S = lik.evaluate(x)
        out.append((lik.u, f, g, logm, S))
    (u, f, g, logm, S), (nu, nf, ng, nlogm, nS) = out
    assert L is None or S.shape[1] == p + 1 + q
    # (its last step is skipped below 1e-13 (1 + max |u|): rounding)
    np.testing.assert_allclose(u, exact.u, rtol=0, atol=1e-12)
    np.testing.assert_allclose(logm, nlogm, rtol=1e-12)
    np.testing.assert_allclose(f, nf, rtol=1e-13)
    np.testing.assert_allclose(S, nS, rtol=0, atol=1e-10 * np.abs(nS).max())
    np.testing.assert_allclose(g, ng, rtol=0, atol=1e-10 * np.abs(nS).sum(0).max())


@needs_kernel
def test_fits_equal_with_either_pass(monkeypatch):
    """The default fit of binary rows (the node check included) gives the same
    estimates with either pass."""
    rng = np.random.default_rng(4)
    G, n = 150, 6
    g = np.repeat(np.arange(G), n)
    x = rng.normal(size=G * n)
    u = rng.normal(size=(G, 2)) * [1.0, 0.6]
    y = rng.random(G * n) < 1 / (1 + np.exp(-(0.2 + 0.5 * x + u[g, 0] + u[g, 1] * x)))
    X = pd.DataFrame({"g": g, "x": x})
    fits = []
    for numpy_pass in ("0", "1"):
        monkeypatch.setenv("SKRE_NUMPY_PASS", numpy_pass)
        fits.append(MultilevelBinomial(group="g", random_slopes=["x"]).fit(X, y))
    a, b = fits
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-9)
    np.testing.assert_allclose(a.random_covariance_, b.random_covariance_, rtol=1e-8)
    np.testing.assert_allclose(a.loglik_, b.loglik_, rtol=1e-12)


@needs_kernel
@pytest.mark.parametrize("q", [2, 3])
def test_a_rule_not_in_product_order_takes_the_general_loop(q, monkeypatch):
    """The compiled pass factors e^-eta over the dimensions of a product rule;
    the same nodes in another order take its general loop: the same values."""
    rng = np.random.default_rng(11)
    data = _data(rng, [3, 8, 1, 12] * 5, q, offset=True)
    x = np.r_[0.4, -0.3, 0.1, _theta(q)]
    values = []
    for order in ("product", "shuffled", "numpy"):
        monkeypatch.setenv("SKRE_NUMPY_PASS", "1" if order == "numpy" else "0")
        lik = data.likelihood(7)
        if order == "shuffled":
            perm = rng.permutation(len(lik.t))
            lik.t, lik.log_w = lik.t[perm], lik.log_w[perm]
            assert kernel.product_nodes(lik.t) is None
        else:
            assert kernel.product_nodes(lik.t) is not None
        values.append(lik.evaluate(x))
    for _f, _g, logm, S in values[:2]:
        np.testing.assert_allclose(logm, values[2][2], rtol=1e-13)
        np.testing.assert_allclose(S, values[2][3], rtol=1e-9, atol=1e-12)


@pytest.mark.slow  # (two fits of about 5 s: a replicate that needs 25 nodes)
def test_a_long_newton_step_warns_nothing(monkeypatch):
    """bench_slopes' bias replicate 486 (500 groups of 5 binary rows): with the
    compiled pass, one Newton step reached a covariance so large that a
    group's mode curvature was singular in floating point; the step was
    rejected, but numpy's divide-by-zero warning reached the user (and fails
    this suite, which makes RuntimeWarning an error). Either pass: no
    warning, the same fit."""
    rng = np.random.default_rng([25, 1, 486])
    G, n, sd0, sd1, rho = 500, 5, 1.5, 0.5, 0.3
    cov = np.array([[sd0**2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1**2]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=G)
    g = np.repeat(np.arange(G), n)
    x = rng.standard_normal(G * n)
    eta = -0.5 + 0.5 * x + u[g, 0] + u[g, 1] * x
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    X = pd.DataFrame({"g": g, "x1": x})
    fits = []
    for numpy_pass in ("0", "1"):
        monkeypatch.setenv("SKRE_NUMPY_PASS", numpy_pass)
        fits.append(MultilevelBinomial(group="g", random_slopes=["x1"]).fit(X, y))
    np.testing.assert_allclose(fits[0].loglik_, fits[1].loglik_, rtol=1e-12)


def test_trapezoid_rules_take_the_numpy_pass(monkeypatch):
    """A trapezoid rule's nodes reach |t| = 120, where the compiled pass would
    compute most groups in its slower overflow-free loop: numpy's pass."""
    import skre._core.slopes as slopes

    def refuse(*args, **kwargs):
        raise AssertionError("the compiled pass was called")

    monkeypatch.setattr(slopes, "slope_pass", refuse)
    data = _data(np.random.default_rng(2), [6] * 10, 2)
    x = np.r_[0.4, -0.3, 0.1, _theta(2)]
    assert np.isfinite(data.likelihood("sinh:0.5:3").evaluate(x)[0])
    with pytest.raises(AssertionError, match="compiled pass was called"):
        data.likelihood(9).evaluate(x)


@pytest.mark.parametrize("K", [1, 9])
def test_newton_leaves_the_state_of_the_point_it_returns(K):
    """``newton``'s likelihood holds the modes and scales of the point it
    returns (what ``result_of`` reports), also where it measured a Hessian
    by central differences there (a start at its own estimate: it returns
    after measuring) and where a line search was rejected. ``hessian`` used
    to restore the modes but not the scales: 4e-6 relative off a fresh
    evaluation."""
    from skre._core.slopes import hessian, lower_bounds, newton

    rng = np.random.default_rng(11)
    data = _data(rng, [6] * 60, 2)
    lower = lower_bounds(data.X.shape[1], data.q, False)
    x0 = np.r_[0.3, -0.2, -0.2, _theta(2)]
    for _ in range(2):
        lik = data.likelihood(K)
        x, _, _, _, _ = newton(lik, x0, lower, xtol=1e-9)
        fresh = data.likelihood(K)
        fresh.u = lik.u.copy()
        fresh.evaluate(x)
        np.testing.assert_allclose(lik.C, fresh.C, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(lik.u, fresh.u, rtol=1e-8, atol=1e-10)
        x0 = x  # the second time from the estimate: a Hessian, then done
    C = lik.C.copy()
    hessian(lik, x)
    np.testing.assert_array_equal(lik.C, C)
