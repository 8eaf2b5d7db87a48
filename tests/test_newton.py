"""Newton steps on the Louis Hessian: small fits without covariates.

The Hessian is checked against central differences of the exact AGQ gradient
(itself checked against differences of the value in test_core); the optimizer
against BFGS alone on the same objective.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from skre import MultilevelBinomial
from skre._core import multilevel, optimize
from skre._core.grouping import Collapsed
from skre._core.multilevel import make_log_prior, negative_loglik
from skre._core.nodepass import NodePass
from skre._core.optimize import minimize_smooth
from skre._core.quadrature import MarginalLikelihood
from skre.datasets import load_rats
from skre.exceptions import BoundaryWarning, ConvergenceWarning, QuadratureWarning
from skre.priors import Gamma, HalfCauchy


def intercept_only(one_row, seed=0, G=40):
    """Counts without covariates: one row per group, or 1-4 rows per group."""
    rng = np.random.default_rng(seed)
    sizes = np.ones(G, dtype=int) if one_row else rng.integers(1, 5, G)
    codes = np.repeat(np.arange(G), sizes)
    n = rng.integers(1, 30, len(codes)).astype(float)
    eta = -0.8 + 0.9 * rng.normal(size=G)[codes]
    m = rng.binomial(n.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    return Collapsed(codes, np.empty((len(codes), 0)), m, n, G, starts)


def fd_hessian_of(grad, x, step=1e-5):
    H = np.empty((len(x), len(x)))
    for j in range(len(x)):
        e = np.zeros(len(x))
        e[j] = step
        H[:, j] = (grad(x + e) - grad(x - e)) / (2 * step)
    return H


@pytest.mark.parametrize("one_row", [True, False])
@pytest.mark.parametrize("tau", [0.0, 0.05, 0.7, 1.5])
def test_louis_hessian_equals_differences_of_the_gradient(one_row, tau):
    """In (b, tau), with unequal group weights, on both node passes (the
    one-row one and the chunked one, forced to several chunks). The Louis
    Hessian is the exact marginal's on the nodes; the differences are of the
    rule's own gradient, so they agree to the rule's error."""
    data = intercept_only(one_row)
    weight = np.random.default_rng(1).integers(1, 4, data.n_groups).astype(float)
    model = MarginalLikelihood(data, weight, 25)
    if not one_row:
        model._pass = NodePass(data, 25, max_elements=25 * 7)
        assert len(model._pass.chunks) > 1 and not model._pass.one_row
    model.want_hessian = True
    params = np.array([-0.6, tau])
    model.value_and_grad(params)
    H = model.hessian
    ref = fd_hessian_of(lambda p: model.value_and_grad(p)[1], params)
    np.testing.assert_allclose(H, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    model.want_hessian = False
    model.value_and_grad(params)
    assert model.hessian is None  # only when asked for


def test_objective_hessian_in_log_tau_with_a_prior():
    """negative_loglik's Hessian: the model's taken from tau to log tau, plus
    the prior's (a central difference of its gradient)."""
    data = intercept_only(True, seed=2)
    model = MarginalLikelihood(data, np.ones(data.n_groups), 25)
    model.want_hessian = True
    nll = negative_loglik(model, make_log_prior(0, HalfCauchy(0.5)))
    x = np.array([-0.7, np.log(0.6)])
    nll(x)
    H = nll.hessian(x)
    ref = fd_hessian_of(lambda z: nll(z)[1], x)
    np.testing.assert_allclose(H, ref, rtol=1e-6, atol=1e-7 * np.abs(ref).max())
    assert nll.hessian(x + 0.1) is None  # only at the point last evaluated


def test_newton_converges_where_bfgs_does_in_fewer_evaluations():
    """On the rats objective: the same optimum as BFGS alone, in 5 evaluations
    where BFGS takes 7 (from the same start and first curvature)."""
    X, y = load_rats(return_X_y=True)
    m, n = y["m"].to_numpy(float), y["n"].to_numpy(float)
    G = len(m)
    data = Collapsed(np.arange(G), np.empty((G, 0)), m, n, G, np.arange(G))
    runs = {}
    for newton in (False, True):
        model = MarginalLikelihood(data, np.ones(G), 25)
        model.want_hessian = newton
        nll = negative_loglik(model)
        res = minimize_smooth(
            nll,
            np.array([-1.8, np.log(0.58)]),
            hess_inv0=np.diag([0.02, 0.05]),
            hessian=nll.hessian if newton else None,
        )
        assert res.converged
        runs[newton] = res
    np.testing.assert_allclose(runs[True].x, runs[False].x, rtol=0, atol=1e-8)
    assert runs[True].n_eval <= 5 < runs[False].n_eval


def rats_objective():
    X, y = load_rats(return_X_y=True)
    m, n = y["m"].to_numpy(float), y["n"].to_numpy(float)
    G = len(m)
    data = Collapsed(np.arange(G), np.empty((G, 0)), m, n, G, np.arange(G))
    model = MarginalLikelihood(data, np.ones(G), 25)
    model.want_hessian = True
    return negative_loglik(model)


@pytest.mark.parametrize("skew", [1.0, 1.05])
def test_a_blind_last_step_only_in_the_quadratic_phase(skew):
    """With last_step, the final Newton step (below it, after a full step it
    is below 10x the square of) is taken without evaluating: one evaluation
    fewer, the optimum to 1e-10 all the same. A Hessian 5% off converges
    only linearly: no blind step, the evaluations it needs."""
    x0 = np.array([-1.8, np.log(0.58)])
    runs = {}
    for last_step in (0.0, 1e-6):
        nll = rats_objective()

        def hessian(x, nll=nll):
            return skew * nll.hessian(x)

        runs[last_step] = minimize_smooth(nll, x0, hessian=hessian, last_step=last_step)
    plain, blind = runs[0.0], runs[1e-6]
    assert plain.converged and blind.converged
    np.testing.assert_allclose(blind.x, plain.x, rtol=0, atol=1e-10)
    if skew == 1.0:
        assert blind.n_eval == plain.n_eval - 1
        assert "not evaluated" in blind.message
    else:
        assert blind.n_eval == plain.n_eval and blind.message == "converged"


def test_newton_hands_a_plateau_over_to_bfgs():
    """f = (b - 1)^2 + exp(2 x) has its infimum at x -> -inf: every exact
    Newton step in x is -1/2, so Newton alone would step on for ever. The
    steps stop shrinking, BFGS takes over and ends the run as it does alone
    (fit_multilevel then decides the boundary)."""
    calls = {"n": 0}

    def fun_grad(z):
        calls["n"] += 1
        e = np.exp(2 * z[1])
        return (z[0] - 1) ** 2 + e, np.array([2 * (z[0] - 1), 2 * e])

    def hessian(z):
        return np.diag([2.0, 4 * np.exp(2 * z[1])])

    res = minimize_smooth(fun_grad, np.array([0.0, 0.0]), hessian=hessian)
    plain = minimize_smooth(fun_grad, np.array([0.0, 0.0]))
    assert abs(res.x[0] - 1) < 1e-8 and res.x[1] < -5
    assert res.n_eval <= plain.n_eval + 3 and res.n_iter < 100


def test_a_missing_hessian_leaves_bfgs_as_it_was():
    def fun_grad(z):
        return float(np.sum((z - 1) ** 4 + z**2)), 4 * (z - 1) ** 3 + 2 * z

    plain = minimize_smooth(fun_grad, np.zeros(3))
    none = minimize_smooth(fun_grad, np.zeros(3), hessian=lambda z: None)
    np.testing.assert_array_equal(plain.x, none.x)
    assert none.n_eval == plain.n_eval  # BFGS starts from the first evaluation


def test_rats_fit_takes_four_newton_steps():
    X, y = load_rats(return_X_y=True)
    est = MultilevelBinomial(group="batch").fit(X, y)
    assert est.n_iter_ == 4


def tiny_tau_counts(d, G=40):
    """Groups of 10^4 trials whose successes alternate 5000 +- d: a spread
    just above binomial for d > 50 (tau from 0.004 at d = 51), below for
    d <= 50 (the boundary)."""
    m = 5000 + d * np.tile([1, -1], G // 2)
    return pd.DataFrame({"g": np.arange(G)}), np.c_[m, np.full(G, 10_000)]


def fit_counting(monkeypatch, X, y, stop=True, **kwargs):
    """The fit and the gradient evaluations its likelihood made; ``stop=False``
    moves the early boundary stop out of reach (the path before it)."""
    if not stop:
        monkeypatch.setattr(multilevel, "LOG_TAU_ZERO", -np.inf)
    est = MultilevelBinomial(group="g", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        est.fit(X, y)
    monkeypatch.undo()
    return est, est._fit_result.model.n_eval


@pytest.mark.parametrize("tau_prior", [None, HalfCauchy(1.0)])
@pytest.mark.parametrize("d", [20, 50])
def test_small_fits_heading_to_tau_zero_stop_and_decide_the_boundary(
    monkeypatch, d, tau_prior
):
    """Steps heading below tau = 0.01 stop and the boundary is decided there:
    the same complete-pooling answer as crawling along the plateau, in a
    fraction of the evaluations."""
    X, y = tiny_tau_counts(d)
    early, n_early = fit_counting(monkeypatch, X, y, tau_prior=tau_prior)
    crawl, n_crawl = fit_counting(monkeypatch, X, y, False, tau_prior=tau_prior)
    assert early.boundary_ and crawl.boundary_ and early.tau_ == 0.0
    assert early.intercept_ == crawl.intercept_
    assert early.loglik_ == crawl.loglik_
    assert n_early <= 12 and n_crawl >= 3 * n_early


@pytest.mark.parametrize("d", [51, 53])
def test_an_optimum_below_the_stop_is_still_reached(monkeypatch, d):
    """A positive tau^2 score at complete pooling: not the boundary, so the
    steps go on from where they stopped to the optimum below tau = 0.01 that
    the uninterrupted path finds."""
    X, y = tiny_tau_counts(d)
    early, _ = fit_counting(monkeypatch, X, y)
    plain, _ = fit_counting(monkeypatch, X, y, False)
    assert not early.boundary_ and 0 < early.tau_ < 0.01
    assert early.tau_ == pytest.approx(plain.tau_, rel=1e-6)
    assert early.intercept_ == pytest.approx(plain.intercept_, abs=1e-10)
    assert early.loglik_ == pytest.approx(plain.loglik_, abs=1e-9)


# two odd data sets of 1-3 trials a group, found by comparing fits with and
# without Newton steps on 900 random small data sets: separated groups, tau
# far above what 1-3 trials can pin down
ODD_M = [
    [0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1]
    + [3, 0, 0, 0, 2, 0, 2, 0, 0, 0, 3, 2, 0, 3, 0, 1, 0, 1, 0, 0, 0, 3, 0, 0, 0]
    + [0, 0, 0, 2, 3, 0, 0, 0, 0, 3],
    [0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 1, 2, 3, 0, 0, 1, 1, 0, 0, 0, 0]
    + [0, 1, 2, 2, 0, 1, 0, 2, 0, 2, 1, 0, 0, 3, 0, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0]
    + [0, 3, 0, 3, 2, 0, 0, 3, 1, 3, 0, 3, 0, 1, 0, 0, 2, 0, 3, 0, 0, 0],
]
ODD_N = [
    [3, 2, 2, 1, 3, 2, 2, 1, 2, 3, 2, 3, 2, 2, 3, 1, 3, 3, 1, 3, 1, 1, 3, 1, 1, 1]
    + [3, 3, 1, 1, 2, 1, 3, 3, 2, 1, 3, 2, 2, 3, 2, 3, 3, 3, 1, 1, 1, 3, 1, 2, 2]
    + [2, 1, 1, 2, 3, 3, 3, 2, 1, 3],
    [2, 1, 3, 3, 3, 3, 1, 3, 3, 3, 2, 2, 1, 2, 3, 1, 2, 3, 3, 3, 1, 3, 3, 2, 1, 1]
    + [3, 1, 2, 3, 2, 1, 2, 2, 1, 3, 1, 1, 1, 3, 3, 1, 1, 2, 3, 2, 1, 1, 1, 1, 1]
    + [2, 3, 3, 3, 2, 1, 1, 3, 1, 3, 1, 3, 1, 2, 1, 3, 2, 2, 3, 1, 3, 2],
]


@pytest.mark.parametrize("case", [0, 1])
def test_newton_leaves_far_starts_to_bfgs(monkeypatch, case):
    """Far from the optimum the Louis Hessian can be indefinite (case 1) or
    imply a leap (case 0: 5 in log tau, into the worse of two posterior
    modes, tau 79 with log-likelihood -53.2 against tau 9.43 and -49.8).
    Newton hands such starts to BFGS: the same fit as BFGS alone."""
    X = pd.DataFrame({"g": np.arange(len(ODD_M[case]))})
    y = np.c_[ODD_M[case], ODD_N[case]]
    kwargs = {"tau_prior": Gamma(2.5, 0)} if case == 0 else {}
    # the fixed 25-node rule these cases were found on: the subject is the
    # optimizer (the default raises the nodes here and warns that no rule
    # resolves these groups at such a tau: see test_accuracy.py)
    kwargs["n_quad"] = 25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuadratureWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        est = MultilevelBinomial(group="g", **kwargs).fit(X, y)
        monkeypatch.setattr(optimize, "NEWTON_MAX_STEP", 0.0)  # BFGS alone
        bfgs = MultilevelBinomial(group="g", **kwargs).fit(X, y)
    assert est.tau_ == pytest.approx(bfgs.tau_, rel=1e-6)
    assert est.loglik_ == pytest.approx(bfgs.loglik_, abs=1e-8)
    if case == 0:
        assert est.tau_ == pytest.approx(9.429, abs=1e-3) and est.loglik_ > -49.9


def test_an_indefinite_hessian_hands_over_before_any_newton_step():
    """f = (a^2 - 1)^2 + b^2 from a = 0.1, where f'' < 0 in a: no Newton step
    on a made-up positive version of it; BFGS from the start's curvature,
    exactly as without a Hessian."""

    def fun_grad(z):
        a, b = z
        return (a * a - 1) ** 2 + b * b, np.array([4 * a * (a * a - 1), 2 * b])

    calls = []

    def hessian(z):
        calls.append(z.copy())
        return np.diag([12 * z[0] ** 2 - 4, 2.0])

    x0, start = np.array([0.1, 0.5]), np.diag([0.25, 0.5])
    res = minimize_smooth(fun_grad, x0, hess_inv0=start, hessian=hessian)
    plain = minimize_smooth(fun_grad, x0, hess_inv0=start)
    assert len(calls) == 1
    np.testing.assert_array_equal(res.x, plain.x)
    assert res.converged and abs(abs(res.x[0]) - 1) < 1e-8


def test_polish_stops_where_its_differences_leave_the_domain():
    """The polish's finite-difference Hessian at a point next to where the
    objective refuses (as the multilevel fit refuses log tau beyond its cap)
    has a NaN column: the run ends there, not converged, instead of raising
    LinAlgError from eigh (found on 8 separated rows with a Gamma(2.5, 0)
    prior pushing tau to its cap)."""

    def fun_grad(z):
        if z[-1] > 1.0:
            return np.inf, np.full(len(z), np.nan)
        return float(np.sum((z[:-1] - 1) ** 2) - z[-1]), np.r_[2 * (z[:-1] - 1), -1.0]

    x0 = np.array([0.0, 0.5, 2.0, 1.0 - 1e-7])
    res = minimize_smooth(fun_grad, x0, hess_inv0=np.eye(4))
    assert not res.converged and res.x[-1] <= 1.0
    assert np.isfinite(res.fun)


@pytest.mark.parametrize("max_iter", [1, 2, 3])
def test_max_iter_message_quotes_the_limit_given(max_iter):
    """The Newton steps and BFGS share max_iter; the warning quoted BFGS's
    remainder ("reached max_iter=0" for max_iter=2 on the rats: issue 22)."""
    from skre.datasets import load_rats

    X, y = load_rats(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match=f"reached max_iter={max_iter} "):
        MultilevelBinomial(group="batch", max_iter=max_iter).fit(X, y)
