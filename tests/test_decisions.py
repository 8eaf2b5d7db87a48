"""Acting on group estimates: exceedance, flags, ranks, a new batch's count and
the historical-control test, each against a computation of its own here
(scipy's quad and distributions, exact pairwise rank formulas, brute-force
sums, the NUTS reference of tests/reference/rats_nuts.json)."""

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit, logit

from skre import (
    CompletePoolingBinomial,
    HistoricalControlTest,
    MultilevelBinomial,
    NoPoolingBinomial,
    PredictiveCounts,
    binary_rows,
)
from skre.datasets import load_rats, make_grouped_binomial
from skre.exceptions import BoundaryWarning, SeparationWarning
from skre.priors import HalfCauchy, Normal


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


@pytest.fixture(scope="module")
def ml(rats):
    return MultilevelBinomial(group="batch").fit(*rats)


@pytest.fixture(scope="module")
def history(rats):
    X, y = rats
    old = (X["batch"] <= 70).to_numpy()
    fit = MultilevelBinomial(group="batch").fit(X[old], y[old])
    return fit, X[~old], y[~old]


# -- independent references -------------------------------------------------------
def conditional_density(successes, trials, offsets, b_tau):
    """The unnormalised density of a group's effect xi given its rows, by
    direct evaluation of the binomial pmf and the normal density."""
    tau = b_tau

    def f(xi):
        p = expit(np.asarray(offsets) + xi)
        return np.prod(stats.binom.pmf(successes, trials, p)) * stats.norm.pdf(
            xi, 0, tau
        )

    return f


def quad_exceedance(successes, trials, offsets, tau, c):
    """P(theta > c) for one group by scipy's quad, theta the trials-weighted mean
    of expit(offsets + xi), its root found by brentq."""
    f = conditional_density(successes, trials, offsets, tau)
    w = np.asarray(trials) / np.sum(trials)

    def theta(xi):
        return float(w @ expit(np.asarray(offsets) + xi))

    root = optimize.brentq(lambda x: theta(x) - c, -60, 60, xtol=1e-14)
    # the mode, to split the integral where the mass is
    mode = optimize.minimize_scalar(lambda x: -np.log(f(x) + 1e-300)).x
    span = 12 * tau
    edges = sorted({mode - span, mode, root, mode + span})
    edges = [e for e in edges if mode - span <= e <= mode + span]
    parts = [
        integrate.quad(f, a, b, epsabs=0, epsrel=1e-12, limit=200)[0]
        for a, b in zip(edges[:-1], edges[1:])
    ]
    total = sum(parts)
    upper = sum(p for p, a in zip(parts, edges[:-1]) if a >= root)
    return upper / total


# -- the acceptance numbers -------------------------------------------------------
def test_rats_history_plug_in_pvalue(history):
    fit, X_new, y_new = history
    assert fit.intercept_ == pytest.approx(-1.955292, abs=2e-6)
    assert fit.tau_ == pytest.approx(0.679335, abs=2e-6)
    test = fit.historical_control_test(
        X_new, y_new, alternative="greater", include_parameter_uncertainty=False
    )
    assert isinstance(test, HistoricalControlTest)
    assert test.pvalue == pytest.approx(0.17256, abs=1e-5)
    # and to 1e-10 against scipy's quad of P(M >= 4 | 14, theta)
    b, tau = fit.intercept_, fit.tau_
    ref = integrate.quad(
        lambda z: stats.binom.sf(3, 14, expit(b + tau * z)) * stats.norm.pdf(z),
        -12,
        12,
        epsabs=1e-14,
    )[0]
    assert test.pvalue == pytest.approx(ref, abs=1e-10)
    assert "plug-in" in test.method


def test_rats_history_default_includes_parameter_uncertainty(history):
    fit, X_new, y_new = history
    test = fit.historical_control_test(X_new, y_new)
    assert "posterior" in test.method and "HalfNormal(1)" in test.method
    # wider predictive distribution: a larger p-value than the plug-in one
    assert 0.17256 < test.pvalue < 0.2
    assert list(test.table.columns) == [
        "trials",
        "successes",
        "expected",
        "pvalue",
        "adjusted",
    ]
    assert test.table.loc[71, "successes"] == 4 and test.table.loc[71, "trials"] == 14


@pytest.mark.slow  # 3 s: a (b, tau) grid of 12,000 points
def test_history_pvalue_with_the_posterior_matches_a_dense_grid(history):
    """The default p-value is the posterior predictive P(M >= 4) under flat b
    and HalfNormal(1) tau: a brute-force grid over (b, tau) gives it too."""
    fit, X_new, y_new = history
    X, y = load_rats(return_X_y=True)
    m = y["m"].to_numpy()[:70]
    n = y["n"].to_numpy()[:70]
    z, wz = np.polynomial.hermite_e.hermegauss(40)
    wz = wz / wz.sum()
    bs = np.linspace(-3.0, -0.9, 106)
    taus = np.linspace(1e-4, 2.2, 111)
    B, T = np.meshgrid(bs, taus, indexing="ij")
    p = expit(B[..., None] + T[..., None] * z)  # (b, tau, node)
    loglik = np.zeros(B.shape)
    for mg, ng in zip(m, n):
        loglik += np.log(stats.binom.pmf(mg, ng, p) @ wz)
    logpost = loglik + stats.halfnorm.logpdf(T)
    post = np.exp(logpost - logpost.max())
    post /= post.sum()
    tail = stats.binom.sf(3, 14, p) @ wz
    ref = float((post * tail).sum())
    test = fit.historical_control_test(X_new, y_new)
    assert test.pvalue == pytest.approx(ref, abs=5e-4)


def test_plug_in_exceedance_matches_scipy_quad(ml, rats):
    X, y = rats
    for c in (0.05, 0.15, 0.3):
        got = ml.exceedance(c)
        for g in (1, 20, 50, 69, 71):
            row = y[X["batch"] == g]
            ref = quad_exceedance(
                row["m"].to_numpy(),
                row["n"].to_numpy(),
                [ml.intercept_],
                ml.tau_,
                c,
            )
            assert got.loc[g, "probability"] == pytest.approx(ref, abs=1e-8)
    new = ml.exceedance(0.2).attrs["new_group"]
    ref = stats.norm.sf((logit(0.2) - ml.intercept_) / ml.tau_)
    assert new == pytest.approx(ref, abs=1e-12)


def test_exceedance_with_covariates_and_rows_matches_quad():
    X, y, _ = make_grouped_binomial(
        30, trials=8, n_features=1, binary=True, random_state=3
    )
    fit = MultilevelBinomial(group="group").fit(X, y)
    c = 0.4
    got = fit.exceedance(c)
    coef, b = fit.coef_[0], fit.intercept_
    for g in fit.groups_[:6]:
        rows = X["group"] == g
        offsets = b + coef * X.loc[rows, "x0"].to_numpy()
        ref = quad_exceedance(
            np.asarray(y)[rows.to_numpy()], np.ones(rows.sum()), offsets, fit.tau_, c
        )
        assert got.loc[g, "probability"] == pytest.approx(ref, abs=1e-8)
        # estimate as group_estimates reports it
    pd.testing.assert_series_equal(
        got["estimate"], fit.group_estimates()["estimate"], check_names=False
    )


def test_per_group_and_quantile_thresholds(ml):
    c = pd.Series(np.linspace(0.05, 0.3, 71), index=ml.groups_)
    got = ml.exceedance(c[::-1])  # any order of labels
    for g in (3, 40, 71):
        assert got.loc[g, "probability"] == pytest.approx(
            ml.exceedance(float(c[g])).loc[g, "probability"], abs=1e-14
        )
    assert np.isnan(got.attrs["new_group"])
    q = ml.exceedance(quantile=0.9)
    assert q["threshold"].iloc[0] == pytest.approx(ml.population_.ppf(0.9))
    assert q.attrs["new_group"] == pytest.approx(0.1, abs=1e-9)


@pytest.mark.slow  # 2.2 s: a Bayes fit and its node posteriors
def test_bayes_exceedance_matches_nuts(rats, reference):
    ref = reference("rats_nuts.json")
    bayes = MultilevelBinomial(
        group="batch", method="bayes", tau_prior=HalfCauchy(1.0)
    ).fit(*rats)
    for g, key in ((1, "theta_batch1"), (71, "theta_batch71")):
        for q, expect in (("q2.5", 0.975), ("q97.5", 0.025)):
            got = bayes.exceedance(ref[key][q]).loc[g, "probability"]
            assert got == pytest.approx(expect, abs=2.5e-3)
    new = ref["theta_new"]
    got = bayes.exceedance(new["q50"]).attrs["new_group"]
    assert got == pytest.approx(0.5, abs=3e-3)
    # the flag is moot for a Bayes fit: the same numbers either way
    a = bayes.exceedance(0.2)
    b = bayes.exceedance(0.2, include_parameter_uncertainty=True)
    pd.testing.assert_frame_equal(a, b)


def pairwise_expected_ranks(ml, rats):
    """E[rank_g] = 1 + sum_h P(theta_h > theta_g): exact for independent
    conditionals, by a dense trapezoid grid of each group's density."""
    X, y = rats
    m, n = y["m"].to_numpy(), y["n"].to_numpy()
    xi = np.linspace(-6, 6, 6001)
    p = expit(ml.intercept_ + xi)
    logd = stats.binom.logpmf(m[:, None], n[:, None], p[None, :]) + stats.norm.logpdf(
        xi, 0, ml.tau_
    )
    d = np.exp(logd - logd.max(axis=1, keepdims=True))
    d /= np.trapezoid(d, xi, axis=1)[:, None]
    cdf = integrate.cumulative_trapezoid(d, xi, axis=1, initial=0)
    sf = 1 - cdf
    # P(theta_h > theta_g) = int f_g(t) S_h(t) dt
    P = np.trapezoid(d[:, None, :] * sf[None, :, :], xi, axis=2)  # [g, h]
    np.fill_diagonal(P, 0.0)
    return 1 + P.sum(axis=1)


def test_expected_ranks_match_exact_pairwise_sums(ml, rats):
    exact = pairwise_expected_ranks(ml, rats)
    r = ml.ranks(n_draws=20000, random_state=1)
    se = r.attrs["mc_se"]
    assert se < 0.2
    np.testing.assert_allclose(r["expected_rank"].to_numpy(), exact, atol=4.5 * se)
    assert r["expected_rank"].sum() == pytest.approx(71 * 72 / 2)
    assert (r["rank_lower"] <= r["expected_rank"]).all()
    assert (r["expected_rank"] <= r["rank_upper"]).all()
    assert (r["simultaneous_lower"] <= r["rank_lower"]).all()
    assert (r["simultaneous_upper"] >= r["rank_upper"]).all()
    low = ml.ranks(direction="lower", n_draws=20000, random_state=1)
    np.testing.assert_allclose(
        low["expected_rank"].to_numpy(), 72 - exact, atol=4.5 * se
    )


def test_ranks_are_reproducible_and_top_k(ml):
    a = ml.ranks(top=5, random_state=7, n_draws=1000)
    b = ml.ranks(top=5, random_state=7, n_draws=1000)
    pd.testing.assert_frame_equal(a, b)
    assert a["p_top"].sum() == pytest.approx(5.0)
    assert not ml.ranks(random_state=8, n_draws=1000).equals(a.drop(columns="p_top"))


def test_flags_are_bayesian_fdr(ml):
    flags = ml.flag_groups(0.2, fdr=0.2)
    pep = 1 - flags["probability"].to_numpy()
    np.testing.assert_allclose(flags["pep"], pep)
    # q-value by its definition: the mean PEP of the groups whose PEP is at
    # most this group's (ties included)
    q = np.array([pep[pep <= p].mean() for p in pep])
    np.testing.assert_allclose(flags["qvalue"], q, rtol=1e-12)
    chosen = flags["flagged"].to_numpy()
    # the flagged set's mean PEP (its expected false share) is within fdr
    assert pep[chosen].mean() <= 0.2
    np.testing.assert_array_equal(chosen, q <= 0.2)
    assert "Bayesian FDR" in flags.attrs["error_rate"]
    # batches 64, 65 and 66 are all 6 of 20: flagged alike
    assert flags.loc[[64, 65, 66], "qvalue"].nunique() == 1
    assert flags.loc[[64, 65, 66], "flagged"].nunique() == 1


def test_no_pooling_jeffreys_and_benjamini_hochberg(rats):
    fit = NoPoolingBinomial(group="batch").fit(*rats)
    X, y = rats
    m, n = y["m"].to_numpy(), y["n"].to_numpy()
    got = fit.exceedance(0.2)
    np.testing.assert_allclose(
        got["probability"], stats.beta.sf(0.2, m + 0.5, n - m + 0.5), atol=1e-14
    )
    for g in (1, 60, 71):
        k = g - 1
        ref = stats.binomtest(int(m[k]), int(n[k]), 0.2, alternative="greater").pvalue
        assert got.loc[g, "pvalue"] == pytest.approx(ref, rel=1e-10)
    flags = fit.flag_groups(0.1, fdr=0.1)
    p = flags["pvalue"].to_numpy()
    # Benjamini-Hochberg by its definition: the largest k with p_(k) <= k q / m
    srt = np.sort(p)
    ok = np.flatnonzero(srt <= np.arange(1, 72) * 0.1 / 71)
    k = ok.max() + 1 if len(ok) else 0
    assert flags["flagged"].sum() == k
    assert set(np.flatnonzero(flags["flagged"])) == set(
        np.argsort(p, kind="stable")[:k]
    )
    assert "Benjamini-Hochberg" in flags.attrs["error_rate"]


def test_no_pooling_with_a_group_prior_is_the_exact_posterior(rats):
    fit = NoPoolingBinomial(group="batch", group_prior=Normal(-1.9, 0.7)).fit(*rats)
    X, y = rats
    row = y[X["batch"] == 71]
    ref = quad_exceedance(row["m"].to_numpy(), row["n"].to_numpy(), [-1.9], 0.7, 0.25)
    assert fit.exceedance(0.25).loc[71, "probability"] == pytest.approx(ref, abs=1e-8)


def test_complete_pooling_is_degenerate_and_documented(rats):
    fit = CompletePoolingBinomial(group="batch").fit(*rats)
    got = fit.exceedance(0.15)
    se = np.sqrt(fit.vcov().iloc[0, 0])
    ref = stats.norm.sf((logit(0.15) - fit.intercept_) / se)
    np.testing.assert_allclose(got["probability"], ref, rtol=1e-6)
    with pytest.raises(ValueError, match="no group effects to flag"):
        fit.flag_groups(0.15)
    with pytest.raises(ValueError, match="quantile= needs a population"):
        fit.exceedance(quantile=0.5)
    r = fit.ranks(random_state=0, n_draws=400)  # all tied: ranks shared evenly
    assert r["expected_rank"].mean() == pytest.approx(36.0)
    assert (r["expected_rank"] - 36).abs().max() < 5


def test_boundary_fit_uses_complete_pooling(rats):
    X, y = rats
    same = y.copy()
    same["m"] = (0.15 * same["n"]).round().astype(int)
    with pytest.warns(BoundaryWarning):
        fit = MultilevelBinomial(group="batch").fit(X, same)
    assert fit.tau_ == 0.0
    cp = CompletePoolingBinomial(group="batch").fit(X, same)
    np.testing.assert_allclose(
        fit.exceedance(0.16)["probability"],
        cp.exceedance(0.16)["probability"],
        atol=1e-8,
    )
    assert (
        fit.exceedance(0.16, include_parameter_uncertainty=True)["probability"]
        .between(0, 1)
        .all()
    )
    assert fit.flag_groups(0.16).attrs["n_flagged"] == 0
    d = fit.predictive_counts(20)
    np.testing.assert_allclose(
        d.probabilities, stats.binom.pmf(np.arange(21), 20, expit(fit.intercept_))
    )


def test_counts_and_binary_rows_agree(rats):
    X, y = rats
    a = MultilevelBinomial(group="batch").fit(X, y)
    Xb, yb, wb = binary_rows(X, y)
    b = MultilevelBinomial(group="batch").fit(Xb, yb, sample_weight=wb)
    pd.testing.assert_frame_equal(a.exceedance(0.2), b.exceedance(0.2), atol=1e-7)
    np.testing.assert_allclose(
        a.ranks(random_state=0, n_draws=500)["expected_rank"],
        b.ranks(random_state=0, n_draws=500)["expected_rank"],
        atol=0.5,
    )


def test_predictive_counts_match_direct_sums(ml):
    d = ml.predictive_counts(14)
    assert isinstance(d, PredictiveCounts)
    b, tau = ml.intercept_, ml.tau_
    for k in (0, 3, 9, 14):
        ref = integrate.quad(
            lambda z: stats.binom.pmf(k, 14, expit(b + tau * z)) * stats.norm.pdf(z),
            -12,
            12,
            epsabs=1e-15,
        )[0]
        assert d.pmf(k) == pytest.approx(ref, abs=1e-11)
    assert d.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert d.mean() == pytest.approx(14 * ml.population_.mean(), abs=1e-9)
    assert d.sf(3) == pytest.approx(1 - d.cdf(3), abs=1e-12)
    lo, hi = d.interval(0.9)
    assert d.cdf(hi) - d.cdf(lo - 1) >= 0.9
    k = d.ppf(0.95)
    assert d.cdf(k) >= 0.95 > d.cdf(k - 1)
    lo, top = d.interval(0.9, alternative="greater")
    assert d.sf(lo - 1) >= 0.9 > d.sf(lo) and top == 14
    wide = ml.predictive_counts(14, include_parameter_uncertainty=True)
    assert wide.var() > d.var()


def test_history_with_covariates_matches_brute_force():
    """Rows of a new group with different covariates: the total successes
    convolve the rows' binomials; brute force enumerates every outcome."""
    X, y, _ = make_grouped_binomial(
        25, trials=6, n_features=1, binary=False, random_state=2
    )
    fit = MultilevelBinomial(group="group").fit(X, y)
    X_new = pd.DataFrame({"group": [900, 900], "x0": [-1.0, 1.5]})
    y_new = np.array([[2, 3], [3, 4]])
    test = fit.historical_control_test(
        X_new, y_new, include_parameter_uncertainty=False
    )
    eta = fit.intercept_ + fit.coef_[0] * X_new["x0"].to_numpy()

    def p_ge(xi):
        p1, p2 = expit(eta + xi)
        pm1 = stats.binom.pmf(np.arange(4), 3, p1)
        pm2 = stats.binom.pmf(np.arange(5), 4, p2)
        tot = np.convolve(pm1, pm2)
        return tot[5:].sum()

    ref = integrate.quad(
        lambda z: p_ge(fit.tau_ * z) * stats.norm.pdf(z), -12, 12, epsabs=1e-13
    )[0]
    assert test.pvalue == pytest.approx(ref, abs=1e-9)


def test_several_new_batches_are_corrected(history):
    fit, X_new, y_new = history
    Xn = pd.DataFrame({"batch": [101, 102, 103]})
    yn = np.array([[4, 14], [9, 14], [0, 20]])
    raw = fit.historical_control_test(Xn, yn, correction=None)
    p = raw.table["pvalue"].to_numpy()
    holm = fit.historical_control_test(Xn, yn)
    order = np.argsort(p)
    expect = np.maximum.accumulate(p[order] * np.array([3, 2, 1]))
    np.testing.assert_allclose(holm.table["adjusted"].to_numpy()[order], expect)
    np.testing.assert_allclose(holm.pvalue, holm.table["adjusted"])
    bonf = fit.historical_control_test(Xn, yn, correction="bonferroni")
    np.testing.assert_allclose(bonf.pvalue, np.minimum(1, 3 * p))
    less = fit.historical_control_test(Xn, yn, alternative="less", correction=None)
    two = fit.historical_control_test(Xn, yn, alternative="two-sided", correction=None)
    np.testing.assert_allclose(
        two.table["pvalue"],
        np.minimum(1, 2 * np.minimum(p, less.table["pvalue"])),
    )


def test_bad_input_is_refused(ml, history, rats):
    fit, X_new, y_new = history
    X, y = rats
    with pytest.raises(ValueError, match="exactly one of threshold"):
        ml.exceedance()
    with pytest.raises(ValueError, match="exactly one of threshold"):
        ml.exceedance(0.2, quantile=0.5)
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\)"):
        ml.exceedance(1.2)
    with pytest.raises(TypeError, match="threshold must be a number"):
        ml.exceedance("0.2")
    with pytest.raises(ValueError, match="one per group"):
        ml.exceedance([0.1, 0.2])
    with pytest.raises(ValueError, match=r"no threshold for group\(s\) \[71\]"):
        ml.exceedance({g: 0.2 for g in range(1, 71)})
    with pytest.raises(ValueError, match="in the fitted history"):
        fit.historical_control_test(X[X["batch"] == 3], y[X["batch"] == 3])
    with pytest.raises(ValueError, match="alternative must be"):
        fit.historical_control_test(X_new, y_new, alternative="bigger")
    with pytest.raises(ValueError, match="correction must be"):
        fit.historical_control_test(X_new, y_new, correction="fdr")
    with pytest.raises(ValueError, match="whole numbers"):
        ml.predictive_counts(2.5)
    with pytest.raises(ValueError, match="direction must be"):
        ml.ranks(direction="up")
    with pytest.raises(ValueError, match="top must be"):
        ml.ranks(top=0)
    with pytest.raises(ValueError, match="n_draws must be"):
        ml.ranks(n_draws=10)
    with pytest.raises(TypeError, match="include_parameter_uncertainty"):
        ml.exceedance(0.2, include_parameter_uncertainty="yes")


def test_degenerate_fits_raise_documented_errors(rats):
    X, y = rats
    zero = y.copy()
    zero["m"] = 0
    with pytest.warns(SeparationWarning):
        fit = MultilevelBinomial(group="batch").fit(X, zero)
    for call in (
        lambda: fit.exceedance(0.1),
        lambda: fit.flag_groups(0.1),
        lambda: fit.ranks(),
        lambda: fit.predictive_counts(10),
        lambda: fit.historical_control_test(
            pd.DataFrame({"batch": [99]}), np.array([[1, 10]])
        ),
    ):
        with pytest.raises(ValueError, match="every trial in the training data"):
            call()
    npool = NoPoolingBinomial(group="batch").fit(X, zero)  # Jeffreys still works
    assert npool.exceedance(0.1)["probability"].between(0, 1).all()
    with pytest.raises(ValueError, match="NoPoolingBinomial with covariates"):
        Xc, yc, _ = make_grouped_binomial(10, trials=5, n_features=1, random_state=0)
        NoPoolingBinomial(group="group").fit(Xc, yc).exceedance(0.3)


def test_map_and_many_covariates(rats):
    X, y = rats
    fit = MultilevelBinomial(group="batch", tau_prior=HalfCauchy(1.0)).fit(X, y)
    e = fit.exceedance(0.2, include_parameter_uncertainty=True)
    assert "posterior of the hyperparameters" in e.attrs["method"]
    Xc, yc, _ = make_grouped_binomial(20, trials=10, n_features=3, random_state=1)
    big = MultilevelBinomial(group="group").fit(Xc, yc)
    assert big.exceedance(0.3)["probability"].between(0, 1).all()
    with pytest.raises(ValueError, match="include_parameter_uncertainty=False"):
        big.exceedance(0.3, include_parameter_uncertainty=True)


def test_refit_replaces_everything_and_pickles(rats):
    X, y = rats
    fit = MultilevelBinomial(group="batch")
    fit.fit(X[X["batch"] <= 50], y[X["batch"] <= 50])
    fit.exceedance(0.2, include_parameter_uncertainty=True)  # caches a posterior
    fit.fit(X, y)
    fresh = MultilevelBinomial(group="batch").fit(X, y)
    pd.testing.assert_frame_equal(
        fit.exceedance(0.2, include_parameter_uncertainty=True),
        fresh.exceedance(0.2, include_parameter_uncertainty=True),
    )
    again = pickle.loads(pickle.dumps(fit))
    # the cached posterior grid is rebuilt on demand, not pickled
    assert "_reference" not in again._fit_result.__dict__
    pd.testing.assert_frame_equal(again.exceedance(0.2), fresh.exceedance(0.2))


@pytest.mark.parametrize("trials", [5, 600])
def test_predictive_counts_at_a_large_tau(trials):
    """A cut-off normal for the extreme counts (tau ~ 5): the pmf still
    matches scipy's quad (an adaptive rule per count was off by 3e-4)."""
    rng = np.random.default_rng(4)
    G = 40
    p = expit(-1 + 5 * rng.normal(size=G))
    X = pd.DataFrame({"g": np.arange(G)})
    y = np.column_stack([rng.binomial(5, p), np.full(G, 5)])
    fit = MultilevelBinomial(group="g").fit(X, y)
    assert fit.tau_ > 3
    b, tau = fit.intercept_, fit.tau_
    d = fit.predictive_counts(trials)
    for k in (0, 1, trials // 2, trials):

        def f(e, k=k):
            return stats.binom.pmf(k, trials, expit(e)) * stats.norm.pdf(e, b, tau)

        edges = [b - 15 * tau, -30, -5, 5, 30, b + 15 * tau]
        ref = sum(
            integrate.quad(f, x0, x1, epsabs=1e-15, epsrel=1e-12, limit=2000)[0]
            for x0, x1 in zip(edges[:-1], edges[1:])
        )
        assert d.pmf(k) == pytest.approx(ref, abs=1e-10)
