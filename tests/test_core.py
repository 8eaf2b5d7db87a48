"""The numerical core against scipy's integrators, root finders and distributions."""

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit, gammaln

from skre._core.glm import profile_interval
from skre._core.grouping import Collapsed, collapse, count_patterns
from skre._core.population import LogitNormal
from skre._core.quadrature import MarginalLikelihood
from skre._core.roots import solve_decreasing
from skre.datasets import load_rats


def rats_units():
    m, n = load_rats(return_X_y=True, as_frame=False)[1].T.astype(float)
    return collapse(np.arange(len(m)), np.empty((len(m), 0)), m, n, len(m))


def covariate_rows(seed=0):
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(12), 4)
    Z = rng.normal(size=(len(codes), 2))
    n = rng.integers(1, 9, size=len(codes)).astype(float)
    m = rng.binomial(n.astype(int), 0.4).astype(float)
    return collapse(codes, Z, m, n, 12)


def exact_log_marginal(m, n, offset, tau):
    """log of int prod_i Binom-kernel(m_i | offset_i + tau u) phi(u) du, by
    adaptive quadrature."""

    def log_integrand(u):
        eta = offset + tau * u
        return np.sum(m * eta - n * np.logaddexp(0, eta)) + stats.norm.logpdf(u)

    mode = optimize.minimize_scalar(lambda u: -log_integrand(u)).x
    peak = log_integrand(mode)
    val, _ = integrate.quad(
        lambda u: np.exp(log_integrand(u) - peak),
        -np.inf,
        np.inf,
        epsabs=0,
        epsrel=1e-13,
        points=None,
        limit=200,
    )
    return peak + np.log(val)


def test_agq25_equals_exact_integral_on_rats():
    data = rats_units()
    b, tau = -1.94, 0.67
    post = MarginalLikelihood(data, np.ones(data.n_groups), 25).posterior(
        np.array([b, tau])
    )
    exact = [
        exact_log_marginal(m, n, b, tau) for m, n in zip(data.successes, data.trials)
    ]
    np.testing.assert_allclose(post.log_marginal, exact, atol=1e-9)


def test_one_node_is_the_laplace_formula():
    data = rats_units()
    b, tau = -1.9, 0.6
    post = MarginalLikelihood(data, np.ones(data.n_groups), 1).posterior(
        np.array([b, tau])
    )
    for m, n, u, got in zip(data.successes, data.trials, post.mode, post.log_marginal):

        def h(v):
            return m * (b + tau * v) - n * np.logaddexp(0, b + tau * v) - v * v / 2

        u_star = optimize.brentq(
            lambda v: tau * (m - n * expit(b + tau * v)) - v, -20, 20, xtol=1e-15
        )
        p = expit(b + tau * u_star)
        curvature = tau**2 * n * p * (1 - p) + 1
        assert u == pytest.approx(u_star, abs=1e-12)
        assert got == pytest.approx(h(u_star) - 0.5 * np.log(curvature), abs=1e-10)


@pytest.mark.parametrize("n_quad", [1, 5, 25])
def test_gradient_matches_finite_differences(n_quad):
    data = covariate_rows()
    ml = MarginalLikelihood(data, np.linspace(1, 2, data.n_groups), n_quad)
    theta = np.array([0.3, -0.2, -0.4, 0.8])
    _, grad = ml.value_and_grad(theta)
    eps = 1e-6
    fd = [
        (ml.value(theta + eps * e) - ml.value(theta - eps * e)) / (2 * eps)
        for e in np.eye(len(theta))
    ]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)


def test_marginal_likelihood_at_tau_zero_is_the_pooled_likelihood():
    data = covariate_rows(1)
    theta = np.array([0.2, 0.1, -0.3])
    ml = MarginalLikelihood(data, np.ones(data.n_groups), 25)
    eta = data.Z @ theta[:2] + theta[2]
    pooled = np.sum(data.successes * eta - data.trials * np.logaddexp(0, eta))
    assert ml.value(np.r_[theta, 0.0]) == pytest.approx(pooled, abs=1e-10)
    assert ml.value(np.r_[theta, 1e-7]) == pytest.approx(pooled, abs=1e-9)


def test_profile_interval_matches_the_likelihood_ratio_definition():
    m = np.array([0.0, 3.0, 20.0, 7.0])
    n = np.array([20.0, 20.0, 20.0, 9.0])
    data = Collapsed(np.arange(4), np.empty((4, 0)), m, n, 4, np.arange(4))
    q = stats.chi2.ppf(0.95, 1)
    with np.errstate(divide="ignore"):
        alpha = np.log(m / (n - m))
    lower, upper = profile_interval(data, 0.0, alpha, q)

    def ll(p, mi, ni):
        return stats.binom.logpmf(mi, ni, p)

    for i in range(4):
        phat = m[i] / n[i]
        target = ll(phat, m[i], n[i]) - q / 2
        if m[i] > 0:
            lo = optimize.brentq(
                lambda p: ll(p, m[i], n[i]) - target, 1e-12, phat, xtol=1e-14
            )
            assert expit(lower[i]) == pytest.approx(lo, abs=1e-9)
        else:
            assert lower[i] == -np.inf
        if m[i] < n[i]:
            hi = optimize.brentq(
                lambda p: ll(p, m[i], n[i]) - target, phat, 1 - 1e-12, xtol=1e-14
            )
            assert expit(upper[i]) == pytest.approx(hi, abs=1e-9)
        else:
            assert upper[i] == np.inf
    # 0 of 20: the upper end solves (1 - p)^20 = exp(-q / 2)
    assert expit(upper[0]) == pytest.approx(1 - np.exp(-q / 40), abs=1e-12)


def test_solve_decreasing_matches_brentq():
    c = np.array([-3.0, 0.0, 2.5, 40.0])

    def fun(x):
        return (c - x**3 - x, -3 * x**2 - 1)

    x, _, ok = solve_decreasing(fun, np.zeros(4), np.full(4, -50.0), np.full(4, 50.0))
    assert ok
    for ci, xi in zip(c, x):
        assert xi == pytest.approx(
            optimize.brentq(lambda v: ci - v**3 - v, -50, 50, xtol=1e-15), abs=1e-12
        )


def test_solve_decreasing_cannot_cycle_between_bracket_ends():
    """A twin pair with both successes at tau = 13 (issue 22's twinstut): from
    u = 0 Newton lands exactly on the bracket's end and back, forever (the
    fit spent 9 s in such solves). Steps that do not land strictly inside
    the bracket bisect; the roots agree with brentq."""
    tau, n, m = 13.0, 2.0, 2.0
    offset = np.array([-12.0, -3.0, 0.5])
    calls = []

    def fun(u):
        calls.append(1)
        p = expit(offset + tau * u)
        return tau * (m - n * p) - u, -tau * tau * n * p * (1 - p) - 1.0

    lo, hi = np.full(3, tau * (m - n)), np.full(3, tau * m)
    u, _, ok = solve_decreasing(fun, np.zeros(3), lo, hi)
    assert ok and len(calls) <= 40
    for o, ui in zip(offset, u):
        root = optimize.brentq(
            lambda v, o=o: tau * (m - n * expit(o + tau * v)) - v, 0.0, 2 * tau * m
        )
        assert ui == pytest.approx(root, abs=1e-10)


def test_solve_decreasing_bisects_where_newton_is_slow():
    """Roots on a steep logistic turn (tau = 13): Newton jumps from one side
    to the other, shrinking the bracket slowly; steps not below half the one
    before bisect instead (rtsafe), 45 evaluations -> 10."""
    tau, n, m = 13.0, 2.0, 1.0
    offset = np.linspace(-6, 6, 25)
    calls = []

    def fun(u):
        calls.append(1)
        p = expit(offset + tau * u)
        return tau * (m - n * p) - u, -tau * tau * n * p * (1 - p) - 1.0

    lo, hi = np.full(25, tau * (m - n)), np.full(25, tau * m)
    u, _, ok = solve_decreasing(fun, np.zeros(25), lo, hi)
    assert ok and len(calls) <= 20
    for o, ui in zip(offset, u):
        root = optimize.brentq(
            lambda v, o=o: tau * (m - n * expit(o + tau * v)) - v, lo[0], hi[0]
        )
        assert ui == pytest.approx(root, abs=1e-10)


def test_solve_decreasing_keeps_a_root_whose_step_underflows():
    """An element at its root to rounding (x + step == x, f != 0) stays put
    while the others iterate: bisecting it would throw it out of its root
    (the mode solve of a 10^6-row fit took 55 passes instead of 6)."""
    calls = []

    def fun(x):
        calls.append(1)
        f = np.array([1e-20 - (x[0] - 1.0), 3.0 - x[1] ** 3 - x[1]])
        return f, np.array([-1.0, -3.0 * x[1] ** 2 - 1.0])

    x, _, ok = solve_decreasing(fun, np.array([1.0, 0.0]), -10.0, 10.0)
    assert ok and x[0] == 1.0 and len(calls) <= 12
    assert x[1] == pytest.approx(1.2134116627622296, abs=1e-12)


def test_collapse_merges_identical_rows_and_keeps_sums():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, 200)
    Z = rng.integers(0, 3, size=(200, 2)).astype(float)
    m = rng.integers(0, 3, 200).astype(float)
    n = m + rng.integers(0, 3, 200)
    data = collapse(codes, Z, m, n, 5)
    keys = {(c, *z) for c, z in zip(codes, Z)}
    assert len(data.codes) == len(keys)
    assert np.all(np.diff(data.codes) >= 0)
    np.testing.assert_allclose(data.group_sum(data.trials), np.bincount(codes, n))
    for c, z, mm in zip(data.codes, data.Z, data.successes):
        sel = (codes == c) & np.all(Z == z, axis=1)
        assert mm == m[sel].sum()


def test_count_patterns_round_trip():
    m = np.array([0.0, 1, 0, 2, 1])
    n = np.array([5.0, 5, 5, 6, 5])
    mu, nu, count, index = count_patterns(m, n)
    np.testing.assert_array_equal(mu[index], m)
    np.testing.assert_array_equal(nu[index], n)
    assert count.sum() == 5 and len(mu) == 3


class TestLogitNormal:
    pop = LogitNormal(-1.94, 0.67)

    def test_mean_and_variance_by_quadrature(self):
        def f(x):
            return x * self.pop.pdf(x)

        assert integrate.quad(self.pop.pdf, 0, 1)[0] == pytest.approx(1, abs=1e-10)
        assert self.pop.mean() == pytest.approx(integrate.quad(f, 0, 1)[0], abs=1e-10)
        second = integrate.quad(lambda x: x * x * self.pop.pdf(x), 0, 1)[0]
        assert self.pop.var() == pytest.approx(second - self.pop.mean() ** 2, abs=1e-10)

    def test_cdf_ppf_and_interval(self):
        q = np.array([0.025, 0.5, 0.975])
        np.testing.assert_allclose(self.pop.cdf(self.pop.ppf(q)), q, atol=1e-12)
        lo, hi = self.pop.interval(0.95)
        assert self.pop.cdf(hi) - self.pop.cdf(lo) == pytest.approx(0.95, abs=1e-12)
        assert self.pop.median() == pytest.approx(expit(-1.94))

    def test_rvs_is_seeded_and_follows_the_distribution(self):
        a = self.pop.rvs(size=20000, random_state=1)
        np.testing.assert_array_equal(a, self.pop.rvs(size=20000, random_state=1))
        assert stats.kstest(a, self.pop.cdf).pvalue > 0.01

    @pytest.mark.parametrize(
        "loc, scale",
        [(-1.94, 0.67), (-2.0, 5.0), (1.0, 8.0), (-7.78, 11.94), (2.0, 40.0)],
    )
    def test_mean_and_variance_for_any_scale(self, loc, scale):
        """E[expit(loc + scale Z)] against scipy's quad split where the
        logistic turns (64 Gauss-Hermite nodes gave 0.5004 for 0.5199 at
        scale 40, and 1.4e-5 off at scale 5: issue 22)."""
        pop = LogitNormal(loc, scale)
        turn = -loc / scale

        def moment(k):
            def f(z):
                return expit(loc + scale * z) ** k * stats.norm.pdf(z)

            pts = sorted({turn - 5 / scale, turn, turn + 5 / scale})
            return integrate.quad(
                f, -12, 12, points=pts, limit=400, epsabs=1e-15, epsrel=1e-13
            )[0]

        assert pop.mean() == pytest.approx(moment(1), rel=1e-10)
        assert pop.var() == pytest.approx(moment(2) - moment(1) ** 2, rel=1e-8)

    def test_cdf_outside_the_unit_interval(self):
        """0 below 0 and 1 above 1, like a frozen scipy distribution (it was
        NaN)."""
        np.testing.assert_array_equal(self.pop.cdf([-0.5, 0.0, 1.0, 1.5]), [0, 0, 1, 1])
        assert np.isnan(self.pop.cdf(np.nan))

    def test_point_mass_at_tau_zero(self):
        pop = LogitNormal(-1.0, 0.0)
        assert pop.mean() == pytest.approx(expit(-1.0))
        assert pop.interval(0.9) == pytest.approx((expit(-1.0), expit(-1.0)))
        assert pop.cdf(expit(-1.0) - 1e-9) == 0.0 and pop.cdf(expit(-1.0)) == 1.0


def test_binomial_constant_matches_scipy():
    from skre._core.binomial import log_binom_constant

    m, n = np.array([0.0, 3, 7]), np.array([5.0, 9, 7])
    want = np.sum(
        stats.binom.logpmf(m, n, 0.3) - m * np.log(0.3) - (n - m) * np.log(0.7)
    )
    assert log_binom_constant(m, n) == pytest.approx(want, abs=1e-12)
    assert log_binom_constant(m, n, np.array([2.0, 0, 1])) == pytest.approx(
        2 * (gammaln(6) - gammaln(1) - gammaln(6)) + 0.0, abs=1e-12
    )
