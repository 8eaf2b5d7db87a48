"""Issue 22: the model-comparison and model-checking tools, each finding of the
outside tester with a reference computed without skre: scipy's distributions
and integrators, exact identities, direct formulas, and lme4 (the R script
beside its numbers in tests/reference/).
"""

import os
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit, logit
from sklearn.model_selection import GroupKFold, cross_val_score

from skre import (
    CompletePoolingBinomial,
    MultilevelBinomial,
    NoPoolingBinomial,
    binary_rows,
    compare_models,
    lr_test,
)
from skre.datasets import load_rats
from skre.exceptions import BoundaryWarning, SeparationWarning
from skre.priors import HalfCauchy


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


# -- profile intervals -----------------------------------------------------------------
def test_profile_interval_where_the_nuisance_tau_reaches_zero(rats, reference):
    """The first 40 rats batches: an interior fit (tau = 0.289) whose intercept
    profile has tau at its boundary 0 beyond the upper end, and whose tau
    profile never rises by the chi2 cutoff before tau = 0. brentq used to get a
    bracket whose ends had one sign. References: lme4's profile and a
    brute-force profile of a 25-node AGQ likelihood in plain R
    (tests/reference/rats40_profile.R)."""
    ref = reference("rats40_profile.json")
    X, y = rats
    est = MultilevelBinomial(group="batch").fit(X.iloc[:40], y.iloc[:40])
    assert est.converged_ and est.tau_ == pytest.approx(ref["tau"], abs=1e-6)
    prof = est.confint(method="profile")
    brute = ref["brute_force"]
    np.testing.assert_allclose(prof.loc["intercept"], brute["intercept"], atol=2e-6)
    assert prof.loc["tau"].iloc[0] == 0.0
    assert prof.loc["tau"].iloc[1] == pytest.approx(brute["tau_upper"], abs=2e-6)
    # lme4 interpolates its profile with splines: agreement to about 1e-5
    lme4 = ref["lme4_profile_ci_95"]
    np.testing.assert_allclose(prof.loc["intercept"], lme4["intercept"], atol=1e-5)
    np.testing.assert_allclose(prof.loc["tau"], lme4["tau"], atol=1e-5)


# -- deviance residuals ----------------------------------------------------------------
def _deviance_residuals(m, n, p):
    """The textbook formula, each term 0 when its count is 0 (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(m > 0, m * np.log(m / (n * p)), 0.0)
        down = np.where(n - m > 0, (n - m) * np.log((n - m) / (n * (1 - p))), 0.0)
    return np.sign(m - n * p) * np.sqrt(np.maximum(2 * (up + down), 0.0))


def test_deviance_residuals_of_0_of_n_and_n_of_n_groups(rats):
    """No pooling gives the 0/n batches probability exactly 0: their deviance
    residuals are 0 (the saturated term), not 0 * log 0 = NaN."""
    X, y = rats
    Xn = X.assign(batch=np.r_[X["batch"].to_numpy()[:-1], 1])  # batch 1: 0/20 and 4/14
    y_all = y.assign(m=np.where(np.arange(71) == 70, y["n"], y["m"]))  # a 14/14 batch
    for Xi, yi in ((X, y), (X, y_all)):
        est = NoPoolingBinomial(group="batch").fit(Xi, yi)
        m, n = yi["m"].to_numpy(float), yi["n"].to_numpy(float)
        p = est.predict_proba(Xi)[:, 1]
        r = est.residuals(Xi, yi, kind="deviance")
        assert np.all(np.isfinite(r))
        np.testing.assert_allclose(r, _deviance_residuals(m, n, p), atol=1e-6)
        assert np.all(r[(m == 0) | (m == n)] == 0.0)
    # a batch with one 0/20 row and one 4/14 row: p is that batch's 4/34
    est = NoPoolingBinomial(group="batch").fit(Xn, y)
    m, n = y["m"].to_numpy(float), y["n"].to_numpy(float)
    p = est.predict_proba(Xn)[:, 1]
    np.testing.assert_allclose(
        est.residuals(Xn, y, kind="deviance"), _deviance_residuals(m, n, p), atol=1e-6
    )
    # every trial a failure: complete pooling's probability is exactly 0
    zero = y.assign(m=0)
    with pytest.warns(SeparationWarning, match="every trial is a failure"):
        cp = CompletePoolingBinomial(group="batch").fit(X, zero)
    assert np.all(cp.residuals(X, zero, kind="deviance") == 0.0)


# -- simulations need whole trials -----------------------------------------------------
def test_simulation_tools_refuse_fractional_trials_alike(rats):
    """sample_weight 1.5 makes 19 trials 28.5: a binomial draw of 28.5 trials
    does not exist. The bootstrap test of tau used to truncate them to 28 (other
    data than the fit's); it now refuses, as the exact test and the bootstrap
    intervals do, with the same message."""
    X, y = rats
    est = MultilevelBinomial(group="batch").fit(X, y, sample_weight=np.full(71, 1.5))
    odd = int(np.sum(y["n"] % 2 == 1))
    assert odd > 0
    calls = {
        "test_tau(method='bootstrap')": lambda: est.test_tau("bootstrap", n_sims=5),
        "test_tau(method='exact')": lambda: est.test_tau("exact", n_sims=5),
        "confint(method='bootstrap')": lambda: est.confint(
            method="bootstrap", n_boot=5
        ),
    }
    for what, call in calls.items():
        with pytest.raises(ValueError, match=r"fractional (trials|successes)") as err:
            call()
        assert what in str(err.value) and "sample_weight" in str(err.value)
    with pytest.raises(ValueError, match=f"fractional trials \\({odd} of 71 rows"):
        est.test_tau("bootstrap", n_sims=5)
    # whole weights are whole trials: accepted
    twice = MultilevelBinomial(group="batch").fit(X, y, sample_weight=np.full(71, 2))
    assert twice.test_tau("bootstrap", n_sims=3, random_state=0).pvalue > 0


# -- the bootstrap's workers -----------------------------------------------------------
@pytest.mark.parametrize("cls", [CompletePoolingBinomial, MultilevelBinomial])
def test_bootstrap_tasks_pickle_by_reference(rats, monkeypatch, cls):
    """joblib's processes get each task pickled; cloudpickle sends a closure
    or lambda by value, together with the globals it reads, which broke the
    workers (BrokenProcessPool) in a script importing scipy.special.expit.
    The standard library's pickle sends functions by reference only, so it
    pickles a task exactly when no function in it travels by value."""
    sent = []

    class Recording:
        def __init__(self, **kwargs):
            pass

        def __call__(self, tasks):
            out = []
            for func, args, kwargs in tasks:
                sent.append(pickle.dumps((func, args, kwargs)))
                out.append(func(*args, **kwargs))
            return out

    monkeypatch.setattr(joblib, "Parallel", Recording)
    X, y = rats
    est = cls(group="batch").fit(X, y)
    boot = est.confint(method="bootstrap", n_boot=3, random_state=0, n_jobs=2)
    assert len(sent) == 3 and boot.notna().all().all()


@pytest.mark.slow  # 2.9 s: starts worker processes
def test_bootstrap_in_processes_from_a_script_importing_expit(tmp_path):
    """The reported script: run as __main__, it imports expit and asks for
    bootstrap intervals on two processes."""
    script = tmp_path / "boot.py"
    script.write_text(
        "from scipy.special import expit\n"
        "from skre import MultilevelBinomial\n"
        "from skre.datasets import load_rats\n"
        "X, y = load_rats(return_X_y=True)\n"
        "m = MultilevelBinomial(group='batch').fit(X, y)\n"
        "b = m.confint(method='bootstrap', n_boot=4, random_state=0, n_jobs=2)\n"
        "print(b.shape, expit(0.0))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "(2, 2) 0.5" in done.stdout


# -- quantile residuals ----------------------------------------------------------------
def _population_cdf(k, n, b, tau):
    """P(Y <= k), Y ~ Binomial(n, expit(b + tau Z)), by scipy.integrate.quad
    split where the binomial CDF drops (z0) and a few of its widths around it."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    f = lambda z: stats.binom.cdf(k, n, expit(b + tau * z)) * stats.norm.pdf(z)  # noqa: E731
    z0 = (logit((k + 0.5) / (n + 1)) - b) / tau
    width = 6.0 / np.sqrt(n * 0.25) / tau + 0.1
    cuts = sorted({-9.0, 9.0, *np.clip([z0 - width, z0, z0 + width], -40, 40)})
    edges = [-np.inf, *cuts, np.inf]
    return sum(
        integrate.quad(f, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=400)[0]
        for lo, hi in zip(edges[:-1], edges[1:])
    )


@pytest.fixture(scope="module")
def many_trials():
    """20 groups of 100 trials and 20 of 1000, from b = -1.5, tau = 0.7."""
    rng = np.random.default_rng(4)
    n = np.repeat([100, 1000], 20)
    m = rng.binomial(n, expit(-1.5 + 0.7 * rng.standard_normal(40)))
    X = pd.DataFrame({"g": np.arange(40)})
    y = np.column_stack([m, n])
    return X, y, MultilevelBinomial(group="g").fit(X, y)


@pytest.mark.slow  # 3.1 s: quad per point
def test_population_cdf_of_many_trials_against_quad():
    from skre._core.mixture_cdf import logit_normal_binom_logcdf

    rng = np.random.default_rng(0)
    for n in (100, 1000):
        k = np.r_[0, 1, n - 1, n, rng.integers(0, n, 12)]
        for b, tau in ((-1.5, 0.7), (0.3, 0.05), (-3.0, 2.5)):
            got = np.exp(logit_normal_binom_logcdf(k, n, b, tau))
            want = [_population_cdf(int(j), n, b, tau) for j in k]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.slow  # 3.7 s: quad per residual
def test_quantile_residuals_of_groups_with_many_trials(many_trials):
    """Each residual r is the normal quantile of a draw between P(Y < m) and
    P(Y <= m): Phi(r) must lie between the two, computed by quad. With 25
    Gauss-Hermite nodes the CDF was off by up to 0.067 at n = 1000, far more
    than P(Y = m) there (about 0.003)."""
    X, y, est = many_trials
    b, tau = est.intercept_, est.tau_
    bounds = np.array(
        [
            [_population_cdf(m - 1, n, b, tau), _population_cdf(m, n, b, tau)]
            for m, n in y
        ]
    )
    # P(Y = m), the slack the check allows: small next to 0.067 at n = 1000
    assert np.max(np.diff(bounds)[y[:, 1] == 1000]) < 0.01
    draws = [est.residuals(X, y, random_state=seed) for seed in range(3)]
    # groups not seen in fit come from the population under conditional=True too
    new = X.assign(g=X["g"] + 100)
    draws.append(est.residuals(new, y, random_state=0, conditional=True))
    for r in draws:
        u = stats.norm.cdf(r)
        assert np.all(bounds[:, 0] - 1e-9 <= u) and np.all(u <= bounds[:, 1] + 1e-9)


# -- messages --------------------------------------------------------------------------
def test_test_tau_with_priors_says_what_works(rats):
    """A MAP fit (tau_prior) was told to use lr_test, which refuses it too; a
    method='bayes' fit was told test_tau is for 'ML (or MAP)' fits, and a MAP
    fit was then refused. Now lrt and bootstrap (which need the likelihood's
    maximum) refuse both and name what works: score and exact, which use only
    the data, so on either fit they equal the maximum-likelihood fit's."""
    X, y = rats
    ml = MultilevelBinomial(group="batch").fit(X, y)
    fits = {
        "tau_prior=HalfCauchy": MultilevelBinomial(
            group="batch", tau_prior=HalfCauchy(1.0)
        ).fit(X, y),
        "method='bayes'": MultilevelBinomial(
            group="batch", tau_prior=HalfCauchy(1.0), method="bayes"
        ).fit(X, y),
    }
    for what, est in fits.items():
        for method in ("lrt", "bootstrap"):
            with pytest.raises(ValueError) as err:
                est.test_tau(method, n_sims=3)
            text = str(err.value)
            assert f"test_tau(method='{method}')" in text and what in text
            assert "method='score' and method='exact'" in text
            assert "lr_test" not in text and "or MAP" not in text
        assert est.test_tau("score").statistic == ml.test_tau("score").statistic
        a = est.test_tau("exact", n_sims=99, random_state=1)
        b = ml.test_tau("exact", n_sims=99, random_state=1)
        assert (a.statistic, a.pvalue) == (b.statistic, b.pvalue)


def test_messages_name_the_argument_and_show_plain_numbers(rats):
    X, y = rats
    est = MultilevelBinomial(group="batch").fit(X, y)
    calls = [
        lambda rs: est.test_tau("bootstrap", n_sims=2, random_state=rs),
        lambda rs: est.confint(method="bootstrap", n_boot=2, random_state=rs),
        lambda rs: est.simulate(2, random_state=rs),
        lambda rs: est.residuals(X, y, random_state=rs),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"random_state must be .*; got -1\.$"):
            call(-1)
        with pytest.raises(ValueError, match=r"random_state .*; got -5\.$"):
            call(np.int64(-5))
        with pytest.raises(TypeError, match=r"random_state .*; got True\.$"):
            call(np.bool_(True))
    with pytest.raises(ValueError, match=r"n_sims must be at least 1; got 0\.$"):
        est.simulate(np.int64(0))
    with pytest.raises(ValueError, match=r"n_boot must be at least 2; got 1\.$"):
        est.confint(method="bootstrap", n_boot=np.int64(1))
    with pytest.raises(
        ValueError, match=r"level must be in \(0, 1\), e.g. 0.95; got 1.5\.$"
    ):
        est.confint(level=np.float64(1.5))
    with pytest.raises(ValueError, match=r"got 'wald2'\.$"):
        est.confint(method=np.str_("wald2"))
    with pytest.raises(ValueError, match=r"got 'x'\.$"):
        est.test_tau(np.str_("x"))


# -- the boundary ----------------------------------------------------------------------
def test_boundary_fits_have_statistic_0_and_pvalue_1():
    """At tau = 0 the multilevel model is complete pooling: the likelihood
    ratio is exactly 1, the statistic 0 and P(0.5 chi2(0) + 0.5 chi2(1) >= 0)
    = 1. The two log-likelihoods differed by rounding (1e-13), which landed in
    the chi2(1) half and gave p = 0.5 (lr_test, test_tau and the CLI)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"g": np.arange(30)})
    boundary = 0
    for _ in range(20):
        n = rng.integers(5, 40, 30)
        y = np.column_stack([rng.binomial(n, 0.3), n])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BoundaryWarning)
            ml = MultilevelBinomial(group="g").fit(X, y)
        if ml.tau_ != 0.0:
            continue
        boundary += 1
        cp = CompletePoolingBinomial(group="g").fit(X, y)
        for result in (lr_test(cp, ml), ml.test_tau("lrt")):
            assert result.statistic == 0.0 and result.pvalue == 1.0
    assert boundary >= 8


def test_statistics_beyond_rounding_are_kept():
    """Only rounding is zeroed: a statistic of 1e-9 on log-likelihoods near -400
    keeps its mixture p-value (just under 0.5)."""
    from skre._comparison import lr_statistic, mixture_pvalue

    assert lr_statistic(-400.0, -400.0 + 1e-13) == 0.0
    assert lr_statistic(-400.0, -400.0 - 1e-6) == 0.0
    assert lr_statistic(-400.0, -400.0 + 5e-10) == pytest.approx(1e-9, rel=1e-4)
    expected = 0.5 * stats.chi2.sf(1e-9, 1)
    assert mixture_pvalue(1e-9, 0) == pytest.approx(expected, rel=1e-12)


def test_cli_prints_pvalue_1_on_the_boundary(tmp_path, capsys):
    """A boundary data set whose two log-likelihoods differ by 2e-13: the CLI
    printed "p = 0.5"."""
    from skre._cli import main

    m = [4, 8, 2, 4, 7, 9, 1, 4, 5, 7, 6, 13, 4, 7, 10, 10, 2, 5, 12, 5]
    m += [9, 3, 11, 8, 10, 11, 10, 6, 6, 2]
    n = [16, 36, 14, 12, 29, 26, 6, 7, 18, 34, 19, 32, 16, 13, 32, 35, 7, 7, 28]
    n += [16, 25, 10, 35, 20, 36, 32, 29, 13, 31, 6]
    path = tmp_path / "boundary.csv"
    pd.DataFrame({"g": np.arange(30), "m": m, "n": n}).to_csv(path, index=False)
    assert main([str(path), "--successes", "m", "--trials", "n", "--group", "g"]) == 0
    out = capsys.readouterr().out
    assert "τ = 0 (a boundary fit)" in out
    assert "likelihood ratio 0.00, p = 1 (" in out


# -- compare_models --------------------------------------------------------------------
def test_compare_models_refuses_models_grouped_differently(rats):
    """The folds came from the first model's groups in silence: held-out
    batches of one model were not held-out groups of the other."""
    X, y = rats
    Xg = X.assign(litter=np.arange(71) % 10)
    models = {
        "by batch": MultilevelBinomial(group="batch"),
        "by litter": MultilevelBinomial(group="litter"),
    }
    with pytest.raises(ValueError, match="group the rows differently") as err:
        compare_models(models, Xg, y)
    assert "'by batch' by 'batch'" in str(err.value)
    assert "'by litter' by 'litter'" in str(err.value)


def test_compare_models_accepts_one_grouping_under_two_names(rats):
    """The same partition of the rows under another column (other labels) is
    one grouping: both models' held-out scores are GroupKFold's over it."""
    X, y = rats
    Xg = X.assign(code=100 - X["batch"])  # batches 1..71 as 99..29
    models = {
        "by batch": MultilevelBinomial(group="batch"),
        "by code": MultilevelBinomial(group="code"),
    }
    with warnings.catch_warnings():
        # each model takes the other's group column as a covariate: a slope on
        # the batch number, which explains the rats' batches (sorted by their
        # proportions) well enough that some folds fit tau = 0
        warnings.simplefilter("ignore", BoundaryWarning)
        table = compare_models(models, Xg, y, cv=GroupKFold(4))
        for name, est in models.items():
            manual = cross_val_score(est, Xg, y, cv=GroupKFold(4), groups=X["batch"])
            assert table.loc[name, "cv_joint"] == pytest.approx(
                manual.mean(), rel=1e-10
            )


# -- lr_test: the same data, nested ----------------------------------------------------
def _binomial_loglik(m, n, p):
    return float(np.sum(stats.binom.logpmf(m, n, p)))


def _logistic_loglik(m, n, Z):
    """The maximum of a logistic regression's binomial log-likelihood, by scipy."""
    design = np.column_stack([np.ones(len(m)), Z])

    def negative(beta):
        return -_binomial_loglik(m, n, expit(design @ beta))

    start = np.r_[logit(m.sum() / n.sum()), np.zeros(design.shape[1] - 1)]
    best = optimize.minimize(negative, start, method="BFGS", options={"gtol": 1e-10})
    return -best.fun


def test_lr_test_refuses_a_covariate_whose_values_changed(rats):
    """Two fits of the same y whose covariate 'x' holds other values were
    compared (the full logLik then fell below the restricted one)."""
    X, y = rats
    rng = np.random.default_rng(0)
    cp = CompletePoolingBinomial(group="batch").fit(X.assign(x=rng.normal(size=71)), y)
    ml = MultilevelBinomial(group="batch").fit(X.assign(x=rng.normal(size=71)), y)
    with pytest.raises(ValueError, match=r"covariates the full one lacks \(\['x'\]\)"):
        lr_test(cp, ml)
    # the same x in both: nested, and the statistic is the two fits' own
    x = X.assign(x=rng.normal(size=71))
    cp, ml = (
        cls(group="batch").fit(x, y)
        for cls in (CompletePoolingBinomial, MultilevelBinomial)
    )
    assert lr_test(cp, ml).statistic == pytest.approx(2 * (ml.loglik_ - cp.loglik_))


def test_lr_test_of_no_pooling_groupings(rats):
    """Groupings that are not nested were compared (chi2 on 14 df, p = 3e-28);
    nested ones give the likelihood ratio of the two saturated group fits,
    each group at its pooled proportion (computed here with scipy)."""
    X, y = rats
    m, n = y["m"].to_numpy(), y["n"].to_numpy()
    rows = np.arange(71)
    crossed = X.assign(a=rows % 15, b=rows % 29)
    coarse = NoPoolingBinomial(group="a").fit(crossed[["a"]], y)
    fine = NoPoolingBinomial(group="b").fit(crossed[["b"]], y)
    with pytest.raises(ValueError, match="groups are not nested"):
        lr_test(coarse, fine)
    nested = X.assign(a=(rows // 5) % 7, b=rows // 5)  # 15 groups of 5 batches
    coarse = NoPoolingBinomial(group="a").fit(nested[["a"]], y)
    fine = NoPoolingBinomial(group="b").fit(nested[["b"]], y)
    result = lr_test(coarse, fine)

    def saturated(codes):
        M, N = np.bincount(codes, weights=m), np.bincount(codes, weights=n)
        return _binomial_loglik(m, n, (M / N)[codes])

    expected = 2 * (
        saturated(nested["b"].to_numpy()) - saturated(nested["a"].to_numpy())
    )
    assert result.df == 15 - 7
    assert result.statistic == pytest.approx(expected, rel=1e-9)
    assert result.pvalue == pytest.approx(stats.chi2.sf(expected, 8), rel=1e-7)


def test_complete_pooling_with_a_group_level_covariate_is_nested_in_no_pooling(rats):
    """Refused before ('covariates the full one lacks'): x constant within
    groups is a combination of the group intercepts. The statistic against
    scipy: no pooling is saturated, complete pooling a logistic regression."""
    X, y = rats
    m, n = y["m"].to_numpy(), y["n"].to_numpy()
    x = (np.arange(71) % 3).astype(float)
    for cp in (
        CompletePoolingBinomial(group="batch").fit(X.assign(x=x), y),
        CompletePoolingBinomial().fit(pd.DataFrame({"x": x}), y),  # no group column
    ):
        result = lr_test(cp, NoPoolingBinomial(group="batch").fit(X, y))
        expected = 2 * (_binomial_loglik(m, n, m / n) - _logistic_loglik(m, n, x))
        assert result.df == 71 - 2
        assert result.statistic == pytest.approx(expected, rel=1e-7)
        assert result.pvalue == pytest.approx(stats.chi2.sf(expected, 69), rel=1e-6)
    # a covariate that varies within groups is not absorbed by the intercepts
    Xr, yr, wr = binary_rows(X, y)
    inside = np.random.default_rng(1).normal(size=len(yr))
    cp = CompletePoolingBinomial(group="batch").fit(
        Xr.assign(x=inside), yr, sample_weight=wr
    )
    npool = NoPoolingBinomial(group="batch").fit(Xr, yr, sample_weight=wr)
    with pytest.raises(ValueError, match="constant within its groups"):
        lr_test(cp, npool)


def test_lr_test_refuses_unlike_approximations(rats):
    """A Laplace fit (n_quad=1) against 25 nodes gave 0.233 where matching
    rules give 0.0034: the statistic was the approximation's error."""
    X, y = rats
    Xd = X.assign(dose=np.arange(71) % 4)
    small = MultilevelBinomial(group="batch", n_quad=25).fit(X, y)
    with pytest.raises(ValueError, match=r"Laplace approximation \(n_quad=1\)") as err:
        lr_test(small, MultilevelBinomial(group="batch", n_quad=1).fit(Xd, y))
    assert "same n_quad" in str(err.value)
    # 'auto' (exact, raising nodes where 25 are not enough) against a fixed
    # rule is refused too; the same setting on both sides is accepted
    with pytest.raises(ValueError, match=r"exact fit \(n_quad='auto'\)"):
        lr_test(small, MultilevelBinomial(group="batch").fit(Xd, y))
    assert (
        lr_test(small, MultilevelBinomial(group="batch", n_quad=25).fit(Xd, y)).df == 1
    )
    auto = MultilevelBinomial(group="batch").fit(X, y)
    assert lr_test(auto, MultilevelBinomial(group="batch").fit(Xd, y)).df == 1


def test_lr_test_refuses_counts_against_binary_rows(rats):
    """The same trials as counts and as binary rows have different binomial
    constants (logLik -745.674 against -157.811 side by side in the table)."""
    X, y = rats
    Xb, yb, wb = binary_rows(X, y)
    cp = CompletePoolingBinomial(group="batch").fit(Xb, yb, sample_weight=wb)
    ml = MultilevelBinomial(group="batch").fit(X, y)
    with pytest.raises(ValueError, match="binomial coefficients") as err:
        lr_test(cp, ml)
    assert "binary_rows" in str(err.value) and "-745.674" in str(err.value)
    # each form on its own is fine, and the two agree
    ml_b = MultilevelBinomial(group="batch").fit(Xb, yb, sample_weight=wb)
    cp_c = CompletePoolingBinomial(group="batch").fit(X, y)
    binary, counts = lr_test(cp, ml_b), lr_test(cp_c, ml)
    assert binary.statistic == pytest.approx(counts.statistic, abs=1e-8)
    assert binary.table["logLik"].iloc[0] == pytest.approx(cp.loglik_)


def test_lr_test_refuses_dask_fits_it_cannot_check(rats):
    """A fit of a Dask collection keeps no input rows to check against."""
    dd = pytest.importorskip("dask.dataframe")
    X, y = rats
    frame = dd.from_pandas(pd.concat([X, y], axis=1), npartitions=2)
    cp = CompletePoolingBinomial(group="batch").fit(frame[["batch"]], frame[["m", "n"]])
    ml = MultilevelBinomial(group="batch").fit(X, y)
    with pytest.raises(ValueError, match="fitted to a Dask collection") as err:
        lr_test(cp, ml)
    assert "in-memory" in str(err.value)
