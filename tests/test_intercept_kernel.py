"""The compiled random-intercept passes equal numpy's.

``skre/_core/_interpass.c`` solves the conditional modes and evaluates the
adaptive rule, the gradient's per-group parts and Louis' Hessian of a random
intercept without covariates (``MarginalLikelihood`` in
``skre/_core/quadrature.py``), with numpy's steps but its own order of
summation and glibc's vector ``exp`` and ``log``: the two differ by rounding
only. Each case evaluates one likelihood with the compiled library and with
``SKRE_NUMPY_PASS=1`` and compares the value, gradient, Hessian, every
group's mode, scale, nodes, weights and log marginal likelihood, a second
evaluation warm-started from the first, and the value of a larger rule at the
same modes (the node check's). Then whole fits.
"""

import platform
import shutil
import sys

import numpy as np
import pytest

from skre import MultilevelBinomial
from skre._core import kernel
from skre._core.grouping import Collapsed
from skre._core.quadrature import MarginalLikelihood
from skre.datasets import load_rats

needs_kernel = pytest.mark.skipif(
    not kernel.available("_interpass"),
    reason="the compiled random-intercept library is not built here",
)


def test_built_where_it_can_be():
    """On Linux x86-64 with a C compiler ``pip install -e .`` builds it (a
    failed build is only a warning from pip: this test is what notices)."""
    if sys.platform.startswith("linux") and platform.machine() == "x86_64":
        assert shutil.which("cc") is None or kernel._load("_interpass")


def _data(rng, sizes, trials, offset_sd=0.0, b=-0.5, tau=1.0):
    G = len(sizes)
    codes = np.repeat(np.arange(G), sizes)
    rows = len(codes)
    n = rng.integers(1, trials + 1, size=rows).astype(float)
    off = rng.normal(size=rows) * offset_sd if offset_sd else None
    eta = b + tau * rng.normal(size=G)[codes] + (0.0 if off is None else off)
    m = rng.binomial(n.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    return Collapsed(codes, np.empty((rows, 0)), m, n, G, starts, off)


def _rats():
    X, y = load_rats(return_X_y=True)
    y = np.asarray(y, dtype=float)
    G = len(y)
    return Collapsed(np.arange(G), np.empty((G, 0)), y[:, 0], y[:, 1], G, np.arange(G))


def _evaluate(data, K, params, step, monkeypatch, numpy_pass):
    monkeypatch.setenv("SKRE_NUMPY_PASS", numpy_pass)
    weights = np.arange(1, data.n_groups + 1) % 3 + 1.0  # merged groups' counts
    lik = MarginalLikelihood(data, weights, K)
    assert (lik._compiled() is None) == (numpy_pass == "1")
    lik.want_hessian = True
    f, g = lik.value_and_grad(params)
    H = lik.hessian
    post = lik.posterior(params)
    f2, g2 = lik.value_and_grad(params + step)  # from the first's modes
    larger = MarginalLikelihood(data, weights, 2 * K + 1)
    check = larger.group_values_at(params, post)
    lik.want_hessian = False
    f3 = lik.value(params - step)
    return f, g, H, post, f2, g2, check, f3


@needs_kernel
@pytest.mark.parametrize(
    "case, K, params",
    [
        ("rats", 25, [-1.9, 0.67]),
        ("rats", 9, [-1.0, 2.5]),
        ("binary", 15, [-0.4, 1.2]),  # unbalanced groups of binary rows
        ("counts", 25, [0.3, 0.8]),  # counts, several rows a group, offsets
        ("extreme", 11, [4.0, 30.0]),  # logits far beyond +-40 at the nodes
        ("one", 25, [-2.0, 0.3]),  # a single group
    ],
)
def test_compiled_equals_numpy(case, K, params, monkeypatch):
    rng = np.random.default_rng(7)
    data = {
        "rats": _rats,
        "binary": lambda: _data(rng, [1, 2, 3, 7, 30, 5, 1, 12] * 5, 1),
        "counts": lambda: _data(rng, [3, 1, 4] * 20, 40, offset_sd=0.5),
        "extreme": lambda: _data(rng, [6] * 12, 200, b=4.0, tau=8.0),
        "one": lambda: _data(rng, [5], 30),
    }[case]()
    params = np.array(params, dtype=float)
    step = np.array([0.03, -0.02]) * np.abs(params).clip(0.5)
    c = _evaluate(data, K, params, step, monkeypatch, "0")
    n = _evaluate(data, K, params, step, monkeypatch, "1")
    for i in (0, 4, 7):  # values
        assert c[i] == pytest.approx(n[i], rel=1e-13, abs=1e-12)
    for i in (1, 5):  # gradients
        scale = np.max(np.abs(n[i])) + 1.0
        np.testing.assert_allclose(c[i], n[i], rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(c[2], n[2], rtol=1e-10, atol=1e-10)  # Hessians
    pc, pn = c[3], n[3]
    np.testing.assert_allclose(pc.mode, pn.mode, rtol=1e-12, atol=1e-12)
    # both solves stop within rounding of the mode, which moves each logit by
    # tau times as much: the scale follows the logits
    tol = 1e-12 * max(1.0, params[-1])
    np.testing.assert_allclose(pc.sd, pn.sd, rtol=tol)
    np.testing.assert_allclose(pc.nodes, pn.nodes, rtol=tol, atol=tol)
    np.testing.assert_allclose(pc.log_marginal, pn.log_marginal, rtol=1e-13, atol=tol)
    np.testing.assert_allclose(
        np.exp(pc.log_weights), np.exp(pn.log_weights), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(c[6], n[6], rtol=1e-13, atol=tol)  # larger rule


@needs_kernel
@pytest.mark.parametrize(
    "make, kwargs",
    [
        ("rats", {}),
        ("rats", {"n_quad": 9}),
        ("binary", {}),
        ("counts", {"offset": "off"}),
    ],
)
def test_whole_fits_equal_numpy(make, kwargs, monkeypatch):
    """The default and a fixed rule fit to the same estimates either way."""
    import pandas as pd

    if make == "rats":
        X, y = load_rats(return_X_y=True)
    else:
        rng = np.random.default_rng(3)
        data = _data(rng, [4, 9, 2, 6] * 15, 1 if make == "binary" else 25, 0.4)
        X = pd.DataFrame({"g": data.codes, "off": data.offset})
        if make == "binary":
            X = X[["g"]]
        y = np.column_stack([data.successes, data.trials])
    fits = []
    for numpy_pass in ("0", "1"):
        monkeypatch.setenv("SKRE_NUMPY_PASS", numpy_pass)
        group = "batch" if make == "rats" else "g"
        fits.append(MultilevelBinomial(group=group, **kwargs).fit(X, y))
    a, b = fits
    assert a.tau_ == pytest.approx(b.tau_, rel=1e-9)
    assert a.intercept_ == pytest.approx(b.intercept_, rel=1e-9)
    assert a.loglik_ == pytest.approx(b.loglik_, rel=1e-12)
    np.testing.assert_allclose(a.random_effects_, b.random_effects_, rtol=1e-9)
    np.testing.assert_allclose(a.random_effects_sd_, b.random_effects_sd_, rtol=1e-9)
    assert a.n_iter_ == b.n_iter_
