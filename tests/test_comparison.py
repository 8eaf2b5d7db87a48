"""Issue 12: likelihood-ratio tests with the boundary, tests of tau = 0, the
parametric bootstrap, simulation, residuals and the comparison table.

References are independent of the code under test: R's log-likelihoods
(tests/reference/rats_lme4.json), scipy's distributions, exact enumeration of
small conditional distributions, finite differences and Monte Carlo.
"""

import itertools
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit
from sklearn.model_selection import GroupKFold, cross_val_score

from skre import (
    CompletePoolingBinomial,
    MultilevelBinomial,
    NoPoolingBinomial,
    binary_rows,
    compare_models,
    lr_test,
)
from skre.datasets import load_rats, make_grouped_binomial
from skre.exceptions import BoundaryWarning
from skre.priors import HalfCauchy

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


@pytest.fixture(scope="module")
def fits(rats):
    X, y = rats
    return (
        CompletePoolingBinomial(group="batch").fit(X, y),
        NoPoolingBinomial(group="batch").fit(X, y),
        MultilevelBinomial(group="batch").fit(X, y),
    )


# -- lr_test ---------------------------------------------------------------------------
def test_rats_lrt_matches_r_log_likelihoods(fits, reference):
    cp, _, ml = fits
    ref = reference("rats_lme4.json")
    ll_ml = ref["glmer"]["nagq25"]["tight"]["loglik_with_constants"]
    ll_cp = ref["complete_pooling"]["loglik"]
    result = lr_test(cp, ml)
    assert result.statistic == pytest.approx(2 * (ll_ml - ll_cp), abs=1e-6)
    assert result.statistic == pytest.approx(28.18721, abs=1e-5)
    # the 50:50 mixture of chi2(0) and chi2(1)
    assert result.pvalue == pytest.approx(0.5 * stats.chi2.sf(28.18721, 1), rel=1e-3)
    assert result.pvalue == pytest.approx(5.5065e-8, rel=1e-3)
    assert result.df == 1 and "Self & Liang" in result.null
    text = str(result)
    assert "Pr(>Chisq)" in text and "MultilevelBinomial" in text


def test_lrt_for_fixed_effects_is_chi2(rats):
    X, y = rats
    Xc = X.assign(dose=np.arange(71) % 4, other=np.arange(71) % 3)
    small = CompletePoolingBinomial(group="batch").fit(Xc[["batch"]], y)
    big = CompletePoolingBinomial(group="batch").fit(Xc, y)
    result = lr_test(small, big)
    assert result.df == 2
    expected = 2 * (big.loglik_ - small.loglik_)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.pvalue == pytest.approx(stats.chi2.sf(expected, 2), rel=1e-12)
    # complete pooling in partial pooling with one more covariate: mixture of
    # chi2(1) and chi2(2)
    ml = MultilevelBinomial(group="batch").fit(Xc[["batch", "dose"]], y)
    mixed = lr_test(small, ml)
    stat = mixed.statistic
    assert mixed.pvalue == pytest.approx(
        0.5 * stats.chi2.sf(stat, 1) + 0.5 * stats.chi2.sf(stat, 2), rel=1e-12
    )


def test_lrt_binary_rows_and_counts_agree(rats, fits):
    X, y = rats
    Xb, yb, wb = binary_rows(X, y)
    cp = CompletePoolingBinomial(group="batch").fit(Xb, yb, sample_weight=wb)
    ml = MultilevelBinomial(group="batch").fit(Xb, yb, sample_weight=wb)
    assert lr_test(cp, ml).statistic == pytest.approx(
        lr_test(fits[0], fits[2]).statistic, abs=1e-8
    )


def test_lrt_refuses_what_it_cannot_test(rats, fits):
    X, y = rats
    cp, npool, ml = fits
    with pytest.raises(ValueError, match="not nested"):
        lr_test(ml, npool)
    with pytest.raises(ValueError, match="no more parameters"):
        lr_test(ml, MultilevelBinomial(group="batch").fit(X, y))
    other = CompletePoolingBinomial(group="batch").fit(X, y.assign(m=y["m"] // 2))
    with pytest.raises(ValueError, match="same data"):
        lr_test(other, ml)
    with pytest.raises(ValueError, match="tau_prior"):
        lr_test(
            cp, MultilevelBinomial(group="batch", tau_prior=HalfCauchy(1)).fit(X, y)
        )
    extra = CompletePoolingBinomial(group="batch").fit(X.assign(z=np.arange(71)), y)
    with pytest.raises(ValueError, match="covariates the full one lacks"):
        lr_test(extra, ml)


# -- test_tau --------------------------------------------------------------------------
def test_tau_lrt_equals_lr_test(fits):
    cp, _, ml = fits
    a, b = ml.test_tau("lrt"), lr_test(cp, ml)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-10)
    assert a.pvalue == pytest.approx(b.pvalue, rel=1e-8)


def test_score_statistic_against_finite_differences(fits):
    """U = d loglik / d tau^2 at tau = 0 (at the complete-pooling fit), by a
    finite difference of the marginal likelihood itself."""
    from skre._comparison import score_statistic

    cp, _, ml = fits
    fit = ml._fit_result
    b = float(fit.pooled.intercepts[0])
    model = fit.model
    eps = 1e-4
    fd = (model.value(np.array([b, eps])) - model.value(np.array([b, 0.0]))) / eps**2
    data = fit.design.data
    p = expit(b)
    R = data.successes - data.trials * p
    W = data.trials * p * (1 - p)
    assert 0.5 * np.sum(R**2 - W) == pytest.approx(fd, rel=1e-3)
    z = score_statistic(fit.design)
    assert z > 5 and ml.test_tau("score").pvalue == pytest.approx(stats.norm.sf(z))


def test_score_statistic_is_standard_normal_under_the_null():
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"g": np.repeat(np.arange(40), 3), "x": rng.normal(size=120)})
    trials = rng.integers(5, 30, 120)
    zs = []
    from skre._comparison import score_statistic

    for _ in range(300):
        m = rng.binomial(trials, expit(-0.5 + 0.4 * X["x"].to_numpy()))
        # the statistic needs only the null (complete-pooling) fit's design
        est = CompletePoolingBinomial(group="g").fit(X, np.column_stack([m, trials]))
        zs.append(score_statistic(est._fit_result.design))
    zs = np.array(zs)
    assert abs(zs.mean()) < 0.2 and abs(zs.std() - 1) < 0.15


def test_exact_test_against_enumeration():
    """Three small groups: enumerate every table with the observed total and
    weigh it by the multivariate hypergeometric pmf. The p-value with random
    tie-breaking lies between P(T > t) and P(T >= t); the conservative one
    in ``details`` estimates P(T >= t), and the share of ties P(T = t)."""
    n = np.array([4, 5, 6])
    m = np.array([0, 2, 5])
    X = pd.DataFrame({"g": ["a", "b", "c"]})
    est = MultilevelBinomial(group="g").fit(X, np.column_stack([m, n]))
    p_hat = m.sum() / n.sum()
    observed = np.sum((m - n * p_hat) ** 2)
    above = tie = 0.0
    for table in itertools.product(*(range(k + 1) for k in n)):
        table = np.array(table)
        if table.sum() != m.sum():
            continue
        pmf = stats.multivariate_hypergeom.pmf(table, n, m.sum())
        t = np.sum((table - n * p_hat) ** 2)
        if abs(t - observed) < 1e-9:
            tie += pmf
        elif t > observed:
            above += pmf
    assert tie > 0.005  # the case exercises the ties
    B = 40000
    result = est.test_tau("exact", n_sims=B, random_state=0)
    upper = above + tie
    se = np.sqrt(upper * (1 - upper) / B)
    assert result.details["pvalue_conservative"] == pytest.approx(upper, abs=4 * se)
    se_tie = np.sqrt(tie * (1 - tie) / B)
    assert result.details["n_ties"] / B == pytest.approx(tie, abs=4 * se_tie)
    assert above - 4 * se <= result.pvalue <= upper + 4 * se
    assert result.statistic == pytest.approx(observed)


@pytest.mark.slow  # 4000 fits: about 20 s
def test_exact_test_size_is_exact_with_ties():
    """30 groups of 2 trials: the statistic takes few values. Under the null,
    with n_sims = 19, the test rejects at p <= 0.05 (rank 1 of 20) with
    probability 1/20 exactly; counting ties against the null gives about
    half that. 4000 data sets: Monte Carlo SE 0.0034."""
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"g": np.arange(30)})
    n = np.full(30, 2)
    rejected = conservative = 0
    sets = 4000
    for k in range(sets):
        m = rng.binomial(n, 0.3)
        est = MultilevelBinomial(group="g", n_quad=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, np.column_stack([m, n]))
        r = est.test_tau("exact", n_sims=19, random_state=k)
        rejected += r.pvalue <= 0.05
        conservative += r.details["pvalue_conservative"] <= 0.05
    assert abs(rejected / sets - 0.05) < 4 * 0.0034
    assert conservative / sets < 0.04


def test_exact_test_refuses_covariates(rats):
    X, y = rats
    est = MultilevelBinomial(group="batch").fit(X.assign(x=np.arange(71) % 3), y)
    with pytest.raises(ValueError, match="use method='bootstrap'"):
        est.test_tau("exact")


def test_bootstrap_test_is_reproducible_and_parallel_invariant(fits):
    _, _, ml = fits
    a = ml.test_tau("bootstrap", n_sims=40, random_state=5)
    b = ml.test_tau("bootstrap", n_sims=40, random_state=5, n_jobs=2)
    np.testing.assert_array_equal(a.details["simulated"], b.details["simulated"])
    assert a.pvalue == b.pvalue == 1 / 41  # rats: tau is far from 0
    assert a.statistic == pytest.approx(ml.test_tau().statistic)


def test_test_tau_on_boundary_data():
    X = pd.DataFrame({"g": list("abcdef")})
    y = np.column_stack([[3] * 6, [10] * 6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MultilevelBinomial(group="g").fit(X, y)
    assert est.test_tau().statistic == 0.0 and est.test_tau().pvalue == 1.0
    exact = est.test_tau("exact", n_sims=500, random_state=0)
    assert exact.statistic == 0.0  # every group at the pooled rate
    assert exact.details["pvalue_conservative"] == 1.0
    assert exact.pvalue > 0.9  # only its place among the tables with T = 0 varies


# -- bootstrap intervals ---------------------------------------------------------------
def test_bootstrap_tau_interval_on_rats(fits):
    _, _, ml = fits
    boot = ml.confint(method="bootstrap", n_boot=300, random_state=3, n_jobs=2)
    lo, hi = boot.loc["tau"]
    assert boot.attrs["n_failed"] == 0
    # percentile intervals of tau sit a little low of the profile (0.451, 0.955):
    # the sampling distribution of tau-hat is less skewed than the likelihood
    assert 0.38 < lo < 0.50 and 0.82 < hi < 0.98
    plo, phi = ml.confint(method="profile").loc["intercept"]
    blo, bhi = boot.loc["intercept"]
    assert abs(blo - plo) < 0.06 and abs(bhi - phi) < 0.06


@pytest.mark.parametrize("cls", [CompletePoolingBinomial, NoPoolingBinomial])
def test_bootstrap_intervals_of_the_pooled_models(cls):
    """Near the Wald intervals when the slope's estimate is nearly normal (no
    pooling needs large groups: with few rows per group its slope carries the
    incidental-parameter bias, which the bootstrap doubles)."""
    X, y, _ = make_grouped_binomial(25, trials=200, n_features=1, random_state=1)
    est = cls(group="group").fit(X, y)
    boot = est.confint(method="bootstrap", n_boot=200, random_state=0)
    wald = est.confint()
    assert list(boot.index) == list(wald.index)
    np.testing.assert_allclose(boot.to_numpy(), wald.to_numpy(), atol=0.06)
    again = est.confint(method="bootstrap", n_boot=200, random_state=0, n_jobs=2)
    pd.testing.assert_frame_equal(boot, again)


def test_failed_or_unconverged_refits_are_counted_and_warned(rats):
    X, y = rats
    est = MultilevelBinomial(group="batch", max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    with pytest.warns(UserWarning, match="did not converge"):
        boot = est.confint(method="bootstrap", n_boot=20, random_state=0)
    assert boot.attrs["n_unconverged"] > 0


# -- simulate --------------------------------------------------------------------------
def test_simulated_means_match_the_conditional_expectation(rats, fits):
    X, y = rats
    _, _, ml = fits
    sims = ml.simulate(4000, random_state=0)
    n = y["n"].to_numpy()
    expected = n * ml.predict_proba(X)[:, 1]  # n E[theta_g | data]
    z = (sims.mean(axis=0) - expected) / (sims.std(axis=0) / np.sqrt(4000))
    assert np.abs(z).max() < 4.0 and abs(z.mean()) < 0.5
    new = ml.simulate(4000, random_state=1, new_groups=True)
    pop = n * ml.population_.mean()
    z_new = (new.mean(axis=0) - pop) / (new.std(axis=0) / np.sqrt(4000))
    assert np.abs(z_new).max() < 4.0


def test_simulate_follows_the_training_rows(rats):
    X, y = rats
    Xb, yb, wb = binary_rows(X, y)
    order = np.random.default_rng(0).permutation(len(yb))
    Xs, ys = Xb.iloc[order], yb[order]
    # the distinct binary rows without their weights: one success and one
    # failure row per batch (0/n batches: a failure row) fit tau = 0
    with pytest.warns(BoundaryWarning, match="boundary fit"):
        est = MultilevelBinomial(group="batch").fit(Xs, ys)
    sims = est.simulate(3000, random_state=0)
    assert sims.shape == (3000, len(ys)) and set(np.unique(sims)) <= {0, 1}
    p = est.predict_proba(Xs)[:, 1]
    assert np.abs(sims.mean(axis=0) - p).max() < 0.05  # row by row, in input order
    np.testing.assert_array_equal(sims, est.simulate(3000, random_state=0))
    cp = CompletePoolingBinomial(group="batch").fit(X, y)
    draws = cp.simulate(2, random_state=0, X=X.head(3), trials=[10, 20, 30])
    assert draws.shape == (2, 3) and (draws <= [10, 20, 30]).all()


# -- residuals -------------------------------------------------------------------------
def test_quantile_residuals_of_simulated_data_are_standard_normal(rats, fits):
    X, y = rats
    _, _, ml = fits
    n = y["n"].to_numpy()
    pvalues = []
    for seed in range(20):
        for new_groups in (False, True):
            ys = np.column_stack(
                [ml.simulate(1, random_state=seed, new_groups=new_groups)[0], n]
            )
            r = ml.residuals(X, ys, random_state=100 + seed)
            pvalues.append(stats.kstest(r, "norm").pvalue)
    assert np.mean(np.array(pvalues) < 0.05) <= 0.15
    Xb, yb, _ = make_grouped_binomial(80, trials=5, n_features=1, random_state=3)
    big = MultilevelBinomial(group="group").fit(Xb, yb)
    ysim = np.column_stack([big.simulate(1, random_state=9)[0], yb[:, 1]])
    assert stats.kstest(big.residuals(Xb, ysim, random_state=1), "norm").pvalue > 0.01


def test_pearson_and_deviance_residuals(rats, fits, reference):
    X, y = rats
    cp = fits[0]
    m, n = y.to_numpy().T
    p = 267 / 1739
    np.testing.assert_allclose(
        cp.residuals(X, y, kind="pearson"), (m - n * p) / np.sqrt(n * p * (1 - p))
    )
    dev = cp.residuals(X, y, kind="deviance")
    ref = reference("rats_lme4.json")
    # the squared deviance residuals add up to the residual deviance (R's glm)
    saturated, loglik = ref["no_pooling"]["loglik"], ref["complete_pooling"]["loglik"]
    assert np.sum(dev**2) == pytest.approx(2 * (saturated - loglik), rel=1e-9)
    assert np.all(np.sign(dev) == np.sign(m - n * p))


# -- compare_models --------------------------------------------------------------------
def test_compare_models_table(rats):
    X, y = rats
    models = {
        "complete": CompletePoolingBinomial(group="batch"),
        "no pooling": NoPoolingBinomial(group="batch"),
        "partial": MultilevelBinomial(group="batch"),
    }
    table = compare_models(models, X, y, cv=5)
    assert list(table.index) == list(models)
    assert table.loc["no pooling", "n_params"] == 71
    assert table["AIC"].idxmin() == "no pooling" and table.attrs["best"] == "partial"
    assert "AIC" in table.attrs["note"] and "new groups" in table.attrs["note"]
    manual = cross_val_score(
        MultilevelBinomial(group="batch"), X, y, cv=GroupKFold(5), groups=X["batch"]
    )
    assert table.loc["partial", "cv_joint"] == pytest.approx(manual.mean(), rel=1e-12)
    assert table.loc["partial", "diff_from_best"] == 0.0
    assert table.loc["complete", "diff_from_best"] < 0
    assert (table["cv_row"] < 0).all() and (table["cv_joint_se"] > 0).all()


# -- the residual display --------------------------------------------------------------
def test_residual_display(rats, fits):
    from skre.plotting import ResidualDisplay

    X, y = rats
    disp = ResidualDisplay.from_estimator(fits[2], X, y, random_state=0)
    r = fits[2].residuals(X, y, random_state=0)
    np.testing.assert_array_equal(np.sort(r), disp.qq_points_.get_ydata())
    assert disp.ks_pvalue_ == pytest.approx(stats.kstest(r, "norm").pvalue)
    assert len(disp.scatter_.get_offsets()) == 71
    matplotlib.pyplot.close("all")
