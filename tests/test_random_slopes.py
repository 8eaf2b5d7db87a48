"""Random slopes, MultilevelBinomial(random_slopes=[...]) (issue 25).

References: lme4's Laplace fits of mlmRev's Contraception data, polished by
Newton steps on lme4's own deviance (tests/reference/slopes_lme4.R), and an
independent tensor-grid likelihood in b (tests/reference/exact_slopes.py)."""

import json
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from skre import MultilevelBinomial
from skre.exceptions import BoundaryWarning
from skre.priors import LKJ, Gamma, HalfNormal

REF = Path(__file__).parent / "reference"
sys.path.insert(0, str(REF))
import exact_slopes  # noqa: E402

FIXED = ["age", "age2", "urban", "livch1", "livch2", "livch3"]
NAMES = ["(Intercept)", *FIXED]


@pytest.fixture(scope="module")
def contraception():
    d = pd.read_csv(REF / "data" / "contraception.csv")
    return d[["district", *FIXED]], d["use"].to_numpy()


@pytest.fixture(scope="module")
def lme4():
    return json.loads((REF / "slopes_lme4.json").read_text())


@pytest.mark.parametrize("covariance", ["unstructured", "diagonal"])
def test_laplace_equals_lme4(contraception, lme4, covariance):
    """n_quad=1 is glmer(..., nAGQ = 1): fixed effects, SDs, correlation and
    log-likelihood within 1e-5 relative, lme4's variance table row for row."""
    X, y = contraception
    ref = lme4["contraception"]["fits"][covariance]
    polished = ref["polished"]
    est = MultilevelBinomial(
        group="district", random_slopes=["urban"], covariance=covariance, n_quad=1
    ).fit(X, y)
    fixef = np.r_[est.intercept_, est.coef_]
    expected = [polished["fixef"][name] for name in NAMES]
    np.testing.assert_allclose(fixef, expected, rtol=1e-5)
    assert est.loglik_ == pytest.approx(polished["loglik"], rel=1e-10)
    vc, ref_vc = est.variance_components_, ref["varcorr"]
    np.testing.assert_allclose(vc["sdcor"], ref_vc["sdcor"], rtol=1e-5)
    np.testing.assert_allclose(vc["vcov"], ref_vc["vcov"], rtol=2e-5)
    assert list(vc["grp"]) == ref_vc["grp"]
    assert list(vc["var1"]) == ref_vc["var1"]
    assert [None if pd.isna(v) else v for v in vc["var2"]] == ref_vc["var2"]
    assert est.tau_ == pytest.approx(ref_vc["sdcor"][0], rel=1e-5)


def simulated(G=40, per=8, seed=1, slopes=1):
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(G), per)
    Z = rng.normal(size=(G * per, slopes))
    q = slopes + 1
    sd = np.r_[1.0, np.full(slopes, 0.5)]
    corr = np.full((q, q), 0.3) + 0.7 * np.eye(q)
    Sigma = corr * np.outer(sd, sd)
    B = rng.multivariate_normal(np.zeros(q), Sigma, size=G)
    eta = -0.5 + Z @ np.full(slopes, 0.7) + B[codes, 0]
    eta += np.sum(B[codes, 1:] * Z, axis=1)
    y = rng.binomial(1, expit(eta))
    X = pd.DataFrame({"g": codes, **{f"x{j}": Z[:, j] for j in range(slopes)}})
    return X, y


def exact_loglik(est, X, y, **grid):
    Z = X.drop(columns="g").to_numpy(float)
    R = np.column_stack([np.ones(len(Z)), Z[:, : est.random_covariance_.shape[0] - 1]])
    return exact_slopes.loglik(
        X["g"].to_numpy(),
        Z,
        R,
        y.astype(float),
        np.ones(len(y)),
        est.coef_,
        est.intercept_,
        est.random_covariance_,
        **grid,
    )


def test_default_is_the_exact_maximum():
    """The default's log-likelihood equals an independent tensor-grid
    integral to 1e-7 at its estimate, and that integral's own gradient
    there moves no estimate by more than 1e-6 of itself (the estimate is
    the exact likelihood's maximum, not the rule's)."""
    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"]).fit(X, y)
    assert est.loglik_ == pytest.approx(exact_loglik(est, X, y), abs=1e-7)
    # the exact likelihood's gradient in (b, beta, Sigma entries), by
    # central differences of the grid integral
    base = (est.intercept_, est.coef_.copy(), est.random_covariance_.copy())

    def at(delta):
        clone = MultilevelBinomial()
        clone.intercept_ = base[0] + delta[0]
        clone.coef_ = base[1] + delta[1:2]
        S = base[2].copy()
        S[0, 0] += delta[2]
        S[1, 1] += delta[3]
        S[0, 1] += delta[4]
        S[1, 0] += delta[4]
        clone.random_covariance_ = S
        return exact_loglik(clone, X, y, points=81)

    h = 1e-4
    g = np.empty(5)
    H = np.empty((5, 5))
    f0 = at(np.zeros(5))
    for j in range(5):
        e = np.eye(5)[j] * h
        fp, fm = at(e), at(-e)
        g[j] = (fp - fm) / (2 * h)
        H[j, j] = (fp - 2 * f0 + fm) / h**2
        for k in range(j):
            ek = np.eye(5)[k] * h
            H[j, k] = H[k, j] = (at(e + ek) - at(e - ek) - at(ek - e) + at(-e - ek)) / (
                4 * h * h
            )
    move = np.linalg.solve(-H, g)
    values = np.r_[base[0], base[1], base[2][0, 0], base[2][1, 1], base[2][0, 1]]
    assert np.all(np.abs(move) <= 1e-6 * np.maximum(np.abs(values), 0.01))


@pytest.mark.slow  # the default reaches 25 nodes per dimension (25^3 a group)
def test_two_slopes_equal_the_grid_integral():
    X, y = simulated(G=30, per=12, seed=6, slopes=2)
    est = MultilevelBinomial(group="g", random_slopes=["x0", "x1"]).fit(X, y)
    assert est.random_covariance_.shape == (3, 3)
    assert est.loglik_ == pytest.approx(exact_loglik(est, X, y, points=61), abs=1e-7)
    vc = est.variance_components_
    assert list(vc["var1"]) == [
        "(Intercept)",
        "x0",
        "x1",
        "(Intercept)",
        "(Intercept)",
        "x0",
    ]
    assert [v for v in vc["var2"] if v is not None] == ["x0", "x1", "x1"]


def test_predictions_integrate_the_right_distributions():
    """Seen groups: the posterior mean of expit given the group's data; new
    groups: the mean over N(0, Sigma). Both against the grid."""
    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=25).fit(X, y)
    new_rows = pd.DataFrame({"g": [3, 3, 999], "x0": [-1.0, 2.0, 0.5]})
    p = est.predict_proba(new_rows)[:, 1]
    rows = X["g"].to_numpy() == 3
    Z = X[["x0"]].to_numpy()
    R = np.column_stack([np.ones(len(Z)), Z])
    expected = exact_slopes.posterior_mean_p(
        np.array([[-1.0], [2.0]]),
        np.array([[1.0, -1.0], [1.0, 2.0]]),
        (Z[rows], R[rows], y[rows].astype(float), np.ones(rows.sum())),
        est.coef_,
        est.intercept_,
        est.random_covariance_,
    )
    np.testing.assert_allclose(p[:2], expected, rtol=1e-8)
    # a new group: E[expit(eta + b0 + 0.5 b1)], a normal of variance r'Sigma r
    r = np.array([1.0, 0.5])
    s = np.sqrt(r @ est.random_covariance_ @ r)
    eta = est.intercept_ + 0.5 * est.coef_[0]
    z = np.linspace(-12, 12, 20001)
    dens = np.exp(-0.5 * z * z)
    assert p[2] == pytest.approx(
        np.sum(expit(eta + s * z) * dens) / dens.sum(), rel=1e-10
    )


def test_score_is_the_grid_predictive_likelihood():
    """score: seen groups log p(test | train), new groups log p(test)."""
    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=25).fit(X, y)
    rng = np.random.default_rng(9)
    test = pd.DataFrame({"g": [1, 1, 2, 500, 500], "x0": rng.normal(size=5)})
    y_test = np.array([1, 0, 1, 1, 0])
    total = est.score(test, y_test) * len(y_test)
    both = pd.concat([X, test], ignore_index=True)
    y_both = np.r_[y, y_test]
    train_part = X["g"].isin([1, 2]).to_numpy()
    joint = exact_loglik(
        est,
        both[both["g"].isin([1, 2, 500])],
        y_both[both["g"].isin([1, 2, 500]).to_numpy()],
    )
    before = exact_loglik(est, X[train_part], y[train_part])
    assert total == pytest.approx(joint - before, abs=1e-7)


def test_attributes_arrays_pickle_and_refit():
    X, y = simulated()
    est = MultilevelBinomial(group=0, random_slopes=[1]).fit(X.to_numpy(), y)
    named = MultilevelBinomial(group="g", random_slopes=["x0"]).fit(X, y)
    assert est.loglik_ == pytest.approx(named.loglik_, rel=1e-12)
    assert est.random_effects_.shape == est.random_effects_sd_.shape == (40, 2)
    assert list(est.random_slopes_) == ["1"]
    again = pickle.loads(pickle.dumps(named))
    np.testing.assert_array_equal(again.predict_proba(X), named.predict_proba(X))
    named.set_params(random_slopes=None).fit(X, y)  # refit: nothing survives
    assert (
        not hasattr(named, "random_slopes_")
        and named.variance_components_.shape[0] == 1
    )


@pytest.mark.parametrize(
    "slopes, error, match",
    [
        (["g"], ValueError, "not a covariate column"),
        (["nope"], ValueError, "not a covariate column"),
        ([5], ValueError, "position 5 is not a column"),
        (["x0", "x0"], ValueError, "twice"),
        ([1.5], TypeError, "names or positions"),
    ],
)
def test_bad_random_slopes(slopes, error, match):
    X, y = simulated()
    with pytest.raises(error, match=match):
        MultilevelBinomial(group="g", random_slopes=slopes).fit(X, y)


def test_methods_without_slopes_support_say_so():
    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=3).fit(X, y)
    for name in ("ranks", "test_tau"):
        with pytest.raises(NotImplementedError, match=f"{name}.*random_slopes"):
            getattr(est, name)()
    with pytest.raises(
        NotImplementedError,
        match="covariance_prior .an LKJ prior. but not method=.bayes.",
    ):
        MultilevelBinomial(
            group="g", random_slopes=["x0"], method="bayes", tau_prior=HalfNormal(1.0)
        ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = MultilevelBinomial(group="g").fit(X, y)
    assert plain.summary() is not None  # the wrappers leave other fits alone


def test_dask_predictions_are_refused():
    """Dask collections fit (tests/test_dask_slopes.py) but do not predict."""
    dd = pytest.importorskip("dask.dataframe")
    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=3)
    Xd = dd.from_pandas(X, npartitions=2)
    est.fit(X, y)
    with pytest.raises(NotImplementedError, match="Dask"):
        est.predict_proba(Xd)


def test_toenail_laplace_is_lme4s(lme4):
    """HSAUR3's toenail, y ~ treat * time + (1 + time | patient): lme4's
    Laplace fit (SD of the intercept 23.4, correlation -0.87, a degenerate
    Hessian in lme4) is the Laplace optimum skre finds too."""
    d = pd.read_csv(REF / "data" / "toenail.csv")
    ref = lme4["toenail"]
    X = d[["patient", "treat", "time"]].assign(tt=d["treat"] * d["time"])
    est = MultilevelBinomial(group="patient", random_slopes=["time"], n_quad=1)
    est.fit(X, d["y"].to_numpy())
    assert est.loglik_ == pytest.approx(ref["loglik"], rel=1e-9)
    np.testing.assert_allclose(
        est.variance_components_["sdcor"], ref["varcorr"]["sdcor"], rtol=1e-5
    )
    # lme4 reports this fit's Hessian degenerate (not converged in its own
    # terms): the fixed effects agree to 1e-5 of their SEs, not of the
    # near-zero treat effect itself (0.02476 against 0.02475)
    names = ["(Intercept)", "treat", "time", "treat:time"]
    np.testing.assert_allclose(
        np.r_[est.intercept_, est.coef_], [ref["fixef"][n] for n in names], atol=2e-5
    )


@pytest.mark.slow  # 5 s: a 321 x 321 grid for each of 294 patients
def test_toenail_laplace_value_is_far_from_the_exact_likelihood(lme4):
    """At lme4's Laplace estimate the exact log-likelihood (the independent
    grid; 641 points per axis give -616.62593) is 125 units below the
    Laplace value -491.315: why the default integrates exactly."""
    d = pd.read_csv(REF / "data" / "toenail.csv")
    ref = lme4["toenail"]
    fixef, theta = ref["fixef"], ref["theta"]
    L = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
    Z = np.column_stack([d["treat"], d["time"], d["treat"] * d["time"]]).astype(float)
    exact = exact_slopes.loglik(
        d["patient"].to_numpy(),
        Z,
        np.column_stack([np.ones(len(d)), d["time"]]),
        d["y"].to_numpy(float),
        np.ones(len(d)),
        np.array([fixef["treat"], fixef["time"], fixef["treat:time"]]),
        fixef["(Intercept)"],
        L @ L.T,
        points=321,
    )
    assert exact == pytest.approx(-616.6259, abs=1e-3)
    assert ref["loglik"] - exact > 125


def test_vcov_summary_and_wald_intervals(contraception, lme4):
    """vcov is lme4's (the inverse of the Laplace deviance's Hessian, both by
    finite differences: 1e-3), summary prints lme4's Corr column, confint
    has a row per SD and correlation."""
    X, y = contraception
    ref = lme4["contraception"]["fits"]["unstructured"]
    est = MultilevelBinomial(group="district", random_slopes=["urban"], n_quad=1)
    est.fit(X, y)
    se = np.sqrt(np.diag(est.vcov().to_numpy()))
    np.testing.assert_allclose(se, [ref["fixef_se"][n] for n in NAMES], rtol=1e-3)
    text = str(est.summary())
    assert "Groups   Name        Variance Std.Dev. Corr" in text
    assert "          urban       0.5412   0.7357   -0.79" in text
    assert "(1 + urban | district)" in text
    ci = est.confint()
    assert list(ci.index[-3:]) == ["tau", "sd_urban", "cor_(Intercept).urban"]
    lo, hi = ci.loc["cor_(Intercept).urban"]
    assert -1 < lo < -0.7929 < hi < 0  # around the estimate, inside (-1, 0)
    z = 1.959963984540054
    se_int = se[0]
    assert ci.loc["intercept"].tolist() == pytest.approx(
        [est.intercept_ - z * se_int, est.intercept_ + z * se_int], rel=1e-12
    )


def test_profile_intervals_are_lme4s_deviance_ends(contraception):
    """confint(method="profile") at n_quad=1: the ends of the SDs and fixed
    effects located on lme4's own Laplace deviance by bobyqa and uniroot
    (tests/reference/slopes_profile.R; the slope's SD in polar coordinates
    there, another parametrization than skre's). The correlation's row stays
    Wald."""
    ref = json.loads((REF / "slopes_profile.json").read_text())["profile"]
    X, y = contraception
    est = MultilevelBinomial(group="district", random_slopes=["urban"], n_quad=1)
    ci = est.fit(X, y).confint(method="profile")
    for row, key in [
        ("tau", "sd_intercept"),
        ("sd_urban", "sd_urban"),
        ("urban", "urban"),
        ("age", "age"),
    ]:
        np.testing.assert_allclose(ci.loc[row], ref[key], rtol=2e-6, err_msg=row)
    wald = est.confint()
    assert ci.loc["cor_(Intercept).urban"].tolist() == pytest.approx(
        wald.loc["cor_(Intercept).urban"].tolist(), rel=1e-12
    )


def test_profile_ends_are_where_the_rule_likelihood_drops():
    """On a 7-node rule, the profile's ends of both SDs are where the
    log-likelihood maximised over everything else (Nelder-Mead on SDs and a
    tanh correlation: another optimizer, another parametrization) is
    chi2_1(0.95) / 2 below the maximum; the slope SD's profile stays within
    the drop down to 0, so its interval starts there."""
    from scipy import optimize, stats

    from skre._core.slopes import SlopeLikelihood
    from skre._slopes_fit import slope_data

    X, y = simulated(G=60, per=8, seed=3)
    est = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=7).fit(X, y)
    ci = est.confint(method="profile")
    fit = est._fit_result
    lik = SlopeLikelihood(slope_data(fit.design.data, fit.slopes, fit.design), 7)
    p = len(fit.design.covariates)

    def loglik(z, sds):
        rho = np.tanh(z[p + 1])
        L = [[sds[0], 0.0], [sds[1] * rho, sds[1] * np.sqrt(1 - rho**2)]]
        x = np.r_[z[: p + 1], np.asarray(L)[np.tril_indices(2)]]
        return lik.evaluate(x, grad=False)[0]

    S = fit.covariance
    sd = np.sqrt(np.diag(S))
    z_hat = np.r_[fit.beta, fit.b, np.arctanh(S[0, 1] / sd[0] / sd[1])]
    top = loglik(z_hat, sd)
    drop = stats.chi2.ppf(0.95, 1) / 2
    # (the stopping rule of the reference optimizer: the log-likelihood is a
    # sum of hundreds of terms of size 1, whose rounding is about 1e-13)
    options = dict(xatol=1e-8, fatol=1e-10, maxiter=40000, maxfev=80000)
    for j, row in ((0, "tau"), (1, "sd_x0")):
        for v in ci.loc[row]:

            def nf(z, j=j, v=v):
                sds = [v, v]
                sds[1 - j] = np.exp(z[-1])
                return -loglik(z[:-1], sds)

            z0 = np.r_[z_hat, np.log(sd[1 - j])]
            if v == 0.0:  # the correlation is not identified there: held at 0
                keep = np.arange(len(z0)) != p + 1

                def nf0(z, nf=nf, keep=keep):
                    full = np.zeros(len(keep))
                    full[keep] = z
                    return nf(full)

                best = optimize.minimize(
                    nf0, z0[keep], method="Nelder-Mead", options=options
                )
                assert top + best.fun < drop  # within the drop at 0
                continue
            best = optimize.minimize(nf, z0, method="Nelder-Mead", options=options)
            assert top + best.fun == pytest.approx(drop, abs=1e-7), (row, v)
    assert ci.loc["sd_x0"].iloc[0] == 0.0


def test_profile_leaves_a_singular_fits_branch():
    """At a fit with correlation +1 (L's second diagonal entry 0, where the
    likelihood is even in it) the constrained maxima of the slope SD's
    profile are not on that branch: the end is where the maximum over
    everything else (Nelder-Mead, a tanh correlation) drops by
    chi2_1(0.95) / 2, above the branch's own end (0.4618; lme4's profile
    stops there too)."""
    from scipy import optimize, stats

    from skre._core.slopes import SlopeLikelihood
    from skre._slopes_fit import slope_data

    rng = np.random.default_rng(3)
    rows = []
    for g in range(30):
        u = rng.normal(0, 0.8)
        for _ in range(10):
            x, off = rng.normal(), rng.normal(0, 0.5)
            rows.append((g, x, off, rng.binomial(1, expit(-0.2 + 0.6 * x + off + u))))
    d = pd.DataFrame(rows, columns=["g", "x", "off", "y"])
    est = MultilevelBinomial(group="g", offset="off", random_slopes=["x"], n_quad=1)
    with pytest.warns(BoundaryWarning):
        est.fit(d[["g", "x", "off"]], d["y"])
    assert est.variance_components_["sdcor"].iloc[2] == pytest.approx(1.0)
    upper = est.confint(method="profile").loc["sd_x"].iloc[1]
    fit = est._fit_result
    lik = SlopeLikelihood(slope_data(fit.design.data, fit.slopes, fit.design), 1)
    top = lik.evaluate(fit.x, grad=False)[0]

    def nf(z):  # z = (beta, b, log sd0, atanh rho), sd_x held at upper
        rho = np.tanh(z[3])
        L = [[np.exp(z[2]), 0.0], [upper * rho, upper * np.sqrt(1 - rho**2)]]
        x = np.r_[z[:2], np.asarray(L)[np.tril_indices(2)]]
        return -lik.evaluate(x, grad=False)[0]

    # (the stopping rule of the reference optimizer: the log-likelihood is a
    # sum of hundreds of terms of size 1, whose rounding is about 1e-13)
    options = dict(xatol=1e-8, fatol=1e-10, maxiter=40000, maxfev=80000)
    best = min(
        (
            optimize.minimize(
                nf,
                np.r_[fit.x[:2], np.log(0.65), r0],
                method="Nelder-Mead",
                options=options,
            )
            for r0 in (0.5, 1.0, 2.0)
        ),
        key=lambda r: r.fun,
    )
    assert top + best.fun == pytest.approx(stats.chi2.ppf(0.95, 1) / 2, abs=1e-6)
    assert upper > 0.47  # (the correlation +1 branch ends at 0.4618)


def test_lr_test_of_a_slope_uses_the_boundary_mixture():
    """Adding a correlated slope to a random intercept: 0.5 chi2(1) + 0.5
    chi2(2) (Stram & Lee 1994); a diagonal one: 0.5 chi2(0) + 0.5 chi2(1);
    two slopes at once are refused."""
    from scipy import stats

    from skre import lr_test

    X, y = simulated(G=60, per=10, seed=2, slopes=2)
    intercept = MultilevelBinomial(group="g", n_quad=1).fit(X, y)
    for covariance, df in (("unstructured", 2), ("diagonal", 1)):
        slope = MultilevelBinomial(
            group="g", random_slopes=["x0"], covariance=covariance, n_quad=1
        ).fit(X, y)
        result = lr_test(intercept, slope)
        stat = 2 * (slope.loglik_ - intercept.loglik_)
        assert result.statistic == pytest.approx(stat, rel=1e-12)
        assert result.df == df
        lower = stats.chi2.sf(stat, df - 1) if df > 1 else float(stat <= 0)
        expected = 0.5 * lower + 0.5 * stats.chi2.sf(stat, df)
        assert result.pvalue == pytest.approx(expected, rel=1e-12)
        assert "Stram & Lee" in result.null
    both = MultilevelBinomial(group="g", random_slopes=["x0", "x1"], n_quad=1)
    with pytest.raises(NotImplementedError, match="one slope at a time"):
        lr_test(intercept, both.fit(X, y))
    with pytest.raises(ValueError, match="not nested"):
        lr_test(both, slope)


def test_group_estimates_with_slopes():
    """Each group's fitted mean probability at its modes (recomputed from the
    attributes), each coefficient's mode, SD and normal interval, and the
    interval of the mean probability near the exact posterior's quantiles
    (the grid; the fit's interval is the normal approximation's)."""
    from scipy import stats

    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"]).fit(X, y)
    ge = est.group_estimates()
    x = X["x0"].to_numpy()
    g = X["g"].to_numpy()
    b = est.random_effects_
    p = expit(est.intercept_ + est.coef_[0] * x + b[g, 0] + b[g, 1] * x)
    np.testing.assert_allclose(
        ge["estimate"], pd.Series(p).groupby(g).mean(), rtol=1e-10
    )
    np.testing.assert_array_equal(ge["x0"], b[:, 1])
    np.testing.assert_array_equal(ge["(Intercept)_sd"], est.random_effects_sd_[:, 0])
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(
        ge["x0_upper"], b[:, 1] + z * est.random_effects_sd_[:, 1]
    )
    assert np.all((ge["lower"] < ge["estimate"]) & (ge["estimate"] < ge["upper"]))
    # group 0 against its exact posterior on the grid
    rows = g == 0
    R = np.column_stack([np.ones(rows.sum()), x[rows]])
    grid, log_w, kern = exact_slopes.group_integrands(
        x[rows, None],
        R,
        y[rows].astype(float),
        np.ones(rows.sum()),
        est.coef_,
        est.intercept_,
        est.random_covariance_,
        points=161,
    )
    a = log_w + kern.sum(axis=0)
    w = np.exp(a - a.max())
    w /= w.sum()
    eta = (est.intercept_ + est.coef_[0] * x[rows])[:, None] + R @ grid.T
    mean = expit(eta).mean(axis=0)
    order = np.argsort(mean)
    cdf = np.cumsum(w[order])
    exact = np.interp([0.025, 0.975], cdf, mean[order])
    np.testing.assert_allclose(ge.loc[0, ["lower", "upper"]], exact, atol=0.03)


def test_laplace_optimum_does_not_depend_on_the_covariates_scale(lme4):
    """The attack's toenail finding: with time in tenths the Laplace fit
    stopped at correlation -1, 121 units below lme4's; it starts from a
    slope SD scaled to the covariate now."""
    d = pd.read_csv(REF / "data" / "toenail.csv")
    for factor in (10.0, 0.1):
        time = d["time"] * factor
        X = pd.DataFrame(
            {
                "patient": d["patient"],
                "treat": d["treat"],
                "time": time,
                "tt": d["treat"] * time,
            }
        )
        est = MultilevelBinomial(group="patient", random_slopes=["time"], n_quad=1)
        est.fit(X, d["y"].to_numpy())
        assert est.loglik_ == pytest.approx(lme4["toenail"]["loglik"], rel=1e-9)
        sd = est.variance_components_["sdcor"].to_numpy()
        np.testing.assert_allclose(
            sd * [1, factor, 1], lme4["toenail"]["varcorr"]["sdcor"], rtol=1e-5
        )


def test_new_group_predictions_with_a_large_random_part():
    """E[expit(eta + r'b)] for a new group when r'b has an SD of 10 to 1e6
    (the attack found a fixed 64-node rule 0.02 off at SD 20, and 0.5 at
    covariates of 1e155): against scipy's quad, and Phi(eta / s) beyond."""
    from scipy import integrate, stats

    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=1).fit(X, y)
    S = est.random_covariance_
    for x in (40.0, -120.0, 3e3, 1e8, -1e200):
        p = est.predict_proba(pd.DataFrame({"g": [-1], "x0": [x]}))[0, 1]
        r = np.array([1.0, x])
        eta = est.intercept_ + est.coef_[0] * x
        if abs(x) < 1e4:
            s = np.sqrt(r @ S @ r)
            expected = integrate.quad(
                lambda z: expit(eta + s * z) * stats.norm.pdf(z),
                -12,
                12,
                points=[-eta / s],
                limit=400,
                epsabs=1e-13,
            )[0]
        else:  # both grow like |x|: the limit
            expected = stats.norm.cdf(np.sign(x) * est.coef_[0] / np.sqrt(S[1, 1]))
        assert p == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_singular_covariance_is_a_boundary_fit():
    X, y = simulated(G=20, per=6, seed=4, slopes=2)
    est = MultilevelBinomial(group="g", random_slopes=["x0", "x1"], n_quad=1)
    with pytest.warns(BoundaryWarning, match="singular"):
        est.fit(X, y)
    assert est.boundary_
    assert np.min(np.linalg.eigvalsh(est.random_covariance_)) < 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning at +-1
        ci = est.confint()
    at_one = np.isclose(np.abs(est.variance_components_["sdcor"].to_numpy()[3:]), 1)
    assert ci.iloc[-3:][at_one].isna().all().all()


def test_residuals_with_slopes():
    """Quantile residuals: the population CDF of each row is that of a
    logit-normal binomial with the row's SD sqrt(r' Sigma r) (computed here by
    scipy's quad); conditional ones mix over the group's nodes; Pearson's from
    predict_proba."""
    from scipy import integrate, stats

    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"]).fit(X, y)
    u = est.residuals(X, y, kind="quantile", random_state=0)
    cond = est.residuals(X, y, kind="quantile", random_state=0, conditional=True)
    assert np.all(np.isfinite(u)) and np.all(np.isfinite(cond))
    # row 0 by hand: P(Y = 0) under the population, then the randomised value
    x, S = X["x0"].to_numpy()[0], est.random_covariance_
    r = np.array([1.0, x])
    eta, s = est.intercept_ + est.coef_[0] * x, np.sqrt(r @ S @ r)
    p1 = integrate.quad(lambda z: expit(eta + s * z) * stats.norm.pdf(z), -12, 12)[0]
    v = np.random.default_rng(0).random(len(y))[0]
    expected = (
        stats.norm.ppf(v * (1 - p1)) if y[0] == 0 else stats.norm.ppf((1 - p1) + v * p1)
    )
    assert u[0] == pytest.approx(expected, rel=1e-7)
    p = est.predict_proba(X)[:, 1]
    pearson = est.residuals(X, y, kind="pearson")
    np.testing.assert_allclose(pearson, (y - p) / np.sqrt(p * (1 - p)), rtol=1e-12)


def test_simulate_new_groups_and_bootstrap_intervals():
    """simulate(new_groups=True): each group's effects from N(0, Sigma), so a
    row's mean over many simulations is E[expit(eta + r'b)] (scipy's quad);
    conditional draws refuse; the bootstrap refits give a row per SD and
    correlation."""
    from scipy import integrate, stats

    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=1).fit(X, y)
    sims = est.simulate(n_sims=40000, random_state=1, new_groups=True)
    x, S = X["x0"].to_numpy()[5], est.random_covariance_
    r = np.array([1.0, x])
    eta, s = est.intercept_ + est.coef_[0] * x, np.sqrt(r @ S @ r)
    p = integrate.quad(lambda z: expit(eta + s * z) * stats.norm.pdf(z), -12, 12)[0]
    se = np.sqrt(p * (1 - p) / len(sims))
    assert abs(sims[:, 5].mean() - p) < 4 * se
    # two rows of one group share its draw: their correlation is positive
    assert np.corrcoef(sims[:, 0], sims[:, 1])[0, 1] > 0.05
    with pytest.raises(NotImplementedError, match="new_groups=True"):
        est.simulate(random_state=0)
    ci = est.confint(method="bootstrap", n_boot=20, random_state=0)
    assert list(ci.index[-3:]) == ["tau", "sd_x0", "cor_(Intercept).x0"]
    assert np.all(ci.iloc[:, 0] <= ci.iloc[:, 1])


def test_prediction_interval_with_slopes():
    """The population at the mean covariates: logit-normal with the SD of
    r' b, r = (1, mean x), its quantiles by scipy."""
    from scipy import stats

    X, y = simulated()
    est = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=1).fit(X, y)
    xbar = X["x0"].mean()
    r = np.array([1.0, xbar])
    s = np.sqrt(r @ est.random_covariance_ @ r)
    loc = est.intercept_ + est.coef_[0] * xbar
    expected = expit(loc + s * stats.norm.ppf([0.025, 0.975]))
    np.testing.assert_allclose(est.prediction_interval(), expected, rtol=1e-10)
    with pytest.raises(NotImplementedError, match="plug-in"):
        est.prediction_interval(include_parameter_uncertainty=True)


def _lkj_logpdf(S, eta, sd_logpdf):
    """The LKJ prior's log density, written out here independently."""
    sd = np.sqrt(np.diag(S))
    R = S / np.outer(sd, sd)
    return float(np.sum(sd_logpdf(sd)) + (eta - 1.0) * np.log(np.linalg.det(R)))


def test_lkj_prior_mode_is_the_posterior_maximum():
    """A flat LKJ(1, Gamma(1, 0)) gives the ML fit; LKJ(2) keeps a singular
    fit (correlations at +-1) off the boundary, and its estimate maximizes
    the grid likelihood plus the prior written out here."""
    X, y = simulated()
    ml = MultilevelBinomial(group="g", random_slopes=["x0"]).fit(X, y)
    flat = MultilevelBinomial(
        group="g", random_slopes=["x0"], covariance_prior=LKJ(1.0, Gamma(1.0, 0.0))
    ).fit(X, y)
    np.testing.assert_allclose(
        flat.random_covariance_, ml.random_covariance_, rtol=1e-6
    )
    assert flat.loglik_ == pytest.approx(ml.loglik_, rel=1e-10)

    prior = LKJ(2.0)
    est = MultilevelBinomial(
        group="g", random_slopes=["x0"], covariance_prior=prior
    ).fit(X, y)
    S0 = est.random_covariance_

    def objective(delta):
        clone = MultilevelBinomial()
        clone.intercept_ = est.intercept_ + delta[0]
        clone.coef_ = est.coef_ + delta[1:2]
        S = S0 + np.array([[delta[2], delta[4]], [delta[4], delta[3]]])
        clone.random_covariance_ = S
        logp = _lkj_logpdf(S, 2.0, lambda s: 1.5 * np.log(s))  # Gamma(2.5, 0)
        return exact_loglik(clone, X, y, points=81) + logp

    h = 1e-4
    f0 = objective(np.zeros(5))
    for j in range(5):
        e = np.eye(5)[j] * h
        fp, fm = objective(e), objective(-e)
        curvature = (fp - 2 * f0 + fm) / h**2
        move = -((fp - fm) / (2 * h)) / curvature  # Newton step along j
        assert curvature < 0 and abs(move) < 1e-5
    assert est.loglik_ == pytest.approx(exact_loglik(est, X, y), abs=1e-7)
    # the singular q = 3 fit of test_singular_covariance_is_a_boundary_fit
    X3, y3 = simulated(G=20, per=6, seed=4, slopes=2)
    map3 = MultilevelBinomial(
        group="g", random_slopes=["x0", "x1"], n_quad=1, covariance_prior=prior
    ).fit(X3, y3)
    assert not map3.boundary_
    assert np.min(np.linalg.eigvalsh(map3.random_covariance_)) > 1e-3
    from skre import lr_test

    with pytest.raises(ValueError, match="covariance_prior"):
        lr_test(MultilevelBinomial(group="g").fit(X, y), est)
    with pytest.raises(ValueError, match="covariance_prior is a prior"):
        MultilevelBinomial(group="g", covariance_prior=prior).fit(X, y)


def test_prior_types_are_checked():
    from skre.priors import Normal

    X, y = simulated()
    with pytest.raises(TypeError, match="mass on negative values"):
        MultilevelBinomial(group="g", tau_prior=Normal(0.0, 1.0)).fit(X, y)
    with pytest.raises(TypeError, match="covariance matrix"):
        MultilevelBinomial(group="g", tau_prior=LKJ(2.0)).fit(X, y)
    with pytest.raises(TypeError, match="must be a skre.priors.LKJ"):
        MultilevelBinomial(
            group="g", random_slopes=["x0"], covariance_prior=HalfNormal(1.0)
        ).fit(X, y)


@pytest.mark.slow  # 6-12 s: a 321 x 321 grid per patient, and 51^2 nodes
def test_sinh_trapezoid_rule_integrates_toenail():
    """The fallback rules of n_quad='auto' (trapezoid in t = sinh(v)) on
    toenail's skewed conditional distributions: equal to the independent
    grid to 1e-6 where 51 Gauss-Hermite nodes per dimension are 0.085 off."""
    from skre._core.slopes import SINH_RULES, SlopeData, SlopeLikelihood

    d = pd.read_csv(REF / "data" / "toenail.csv").sort_values("patient", kind="stable")
    codes = pd.factorize(d["patient"], sort=True)[0]
    starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    Z = np.column_stack([d["treat"], d["time"], d["treat"] * d["time"]]).astype(float)
    R = np.column_stack([np.ones(len(d)), d["time"]])
    y = d["y"].to_numpy(float)
    data = SlopeData(codes, starts, Z, R, y, np.ones(len(d)))
    beta, b = np.array([-0.0809, -0.8274, -0.3386]), -2.6569
    L = np.array([[8.5919, 0.0], [-0.6066, 0.8140]])
    x = np.r_[beta, b, L[np.tril_indices(2)]]
    exact = exact_slopes.loglik(
        codes, Z, R, y, np.ones(len(d)), beta, b, L @ L.T, points=321
    )
    # the rules a fit ends on (the last, step 0.035, only checks): to 1e-6;
    # the coarse first one (step 0.1) approaches the maximum, to 1e-4
    for rule, tol in zip(SINH_RULES[:-1], (1e-4, 1e-6, 1e-6)):
        value = SlopeLikelihood(data, rule).evaluate(x, grad=False)[0]
        assert value == pytest.approx(exact, abs=tol), rule
    gh = SlopeLikelihood(data, 51).evaluate(x, grad=False)[0]
    assert abs(gh - exact) > 0.05  # why the fallback exists


@pytest.mark.slow  # 20-30 s: trapezoid rules of 8,000 to 120,000 nodes a patient
def test_toenail_default_settles_on_the_trapezoid_rules():
    """Toenail's (1 + time | patient) by the default: no Gauss-Hermite rule
    is near at Laplace's estimate, so the fit moves to the trapezoid rules
    in sinh(v) and refines them until one settles (no QuadratureWarning: the
    suite makes it an error); its log-likelihood is the independent grid's
    at its estimate (the step-0.07 rule it once ended on was 8e-6 of an
    estimate from its check)."""
    d = pd.read_csv(REF / "data" / "toenail.csv")
    X = d[["patient", "treat", "time"]].assign(tt=d["treat"] * d["time"])
    est = MultilevelBinomial(group="patient", random_slopes=["time"])
    est.fit(X, d["y"].to_numpy())
    fit = est._fit_result
    assert str(fit.n_quad).startswith("sinh:") and fit.check[3] <= 1.0
    Sigma = fit.covariance
    exact = exact_slopes.loglik(
        d["patient"].to_numpy(),
        X[["treat", "time", "tt"]].to_numpy(float),
        np.column_stack([np.ones(len(d)), d["time"]]),
        d["y"].to_numpy(float),
        np.ones(len(d)),
        est.coef_,
        est.intercept_,
        Sigma,
        points=321,
    )
    assert est.loglik_ == pytest.approx(exact, abs=1e-6)


@pytest.mark.slow  # 8-15 s: the fit on 20,000-node trapezoid rules
def test_auto_falls_back_on_the_sinh_rule(monkeypatch):
    """Where Gauss-Hermite's largest rule does not settle (forced here by a
    ceiling of 9 nodes), 'auto' goes on with the trapezoid rule in sinh(v),
    checked against a finer one, and the fit is still the exact one."""
    import skre._slopes_fit as slopes_fit

    monkeypatch.setitem(slopes_fit.AUTO_TOP, 2, 9)
    X, y = simulated()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the sinh rules may not settle either)
        est = MultilevelBinomial(group="g", random_slopes=["x0"]).fit(X, y)
    assert str(est._fit_result.n_quad).startswith("sinh:")
    assert est.loglik_ == pytest.approx(exact_loglik(est, X, y), abs=1e-7)
    assert "rule in sinh(v)" in str(est.summary())  # (wrapped after "trapezoid")


def test_two_slopes_never_reach_the_trapezoid_rules(monkeypatch):
    """With two slopes a trapezoid rule in sinh(v) would be 143^3 nodes a
    group (a 30-group fit ran for minutes): 'auto' stops at its largest
    Gauss-Hermite rule, checked against the next level, and warns if they
    differ (forced here by a ceiling of 5 nodes against 7)."""
    import skre._slopes_fit as slopes_fit
    from skre.exceptions import QuadratureWarning

    assert not any(isinstance(r, str) for r in slopes_fit.auto_rules(3))
    assert slopes_fit.auto_rules(2)[-3:] == list(slopes_fit.SINH_RULES[1:])
    monkeypatch.setitem(slopes_fit.AUTO_TOP, 3, 5)
    assert slopes_fit.auto_rules(3) == [5, 7]
    X, y = simulated(G=30, per=4, seed=3, slopes=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = MultilevelBinomial(group="g", random_slopes=["x0", "x1"]).fit(X, y)
    fit = est._fit_result
    assert fit.n_quad == 5 and fit.check[1] == 7
    warned = any(issubclass(w.category, QuadratureWarning) for w in caught)
    assert warned == (fit.check[3] > 1.0)


def test_stacked_cholesky_and_inverse_match_numpy():
    """The node pass's entry-by-entry Cholesky factors and inverses of the
    groups' (q x q) curvatures are numpy's, for every q a fit can have."""
    from skre._core.slopes import cholesky, spd_inverse

    rng = np.random.default_rng(3)
    for q in (1, 2, 3):
        A = rng.normal(size=(200, q, q))
        H = A @ np.transpose(A, (0, 2, 1)) + np.eye(q)
        np.testing.assert_allclose(cholesky(H), np.linalg.cholesky(H), atol=1e-13)
        np.testing.assert_allclose(spd_inverse(H), np.linalg.inv(H), atol=1e-13)


def test_the_rule_check_holds_a_boundary_parameter_at_its_bound():
    """A fit at correlation +1 (L's second diagonal entry 0): the check of
    the rule at the estimate holds that entry at its bound whatever the sign
    of its rounding-level gradient. Counted free, its variance was 1e30 and
    every check failed up to the trapezoid rule, with a false
    QuadratureWarning (replicate 229 of bench_slopes.py's bias simulation,
    whose data these are: 500 groups x 5 binary rows)."""
    rng = np.random.default_rng([25, 1, 229])
    cov = np.array([[1.5**2, 0.3 * 1.5 * 0.5], [0.3 * 1.5 * 0.5, 0.5**2]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=500)
    g = np.repeat(np.arange(500), 5)
    x = rng.standard_normal(2500)
    y = rng.binomial(1, expit(-0.5 + 0.5 * x + u[g, 0] + u[g, 1] * x))
    X = pd.DataFrame({"g": g, "x1": x})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = MultilevelBinomial(group="g", random_slopes=["x1"]).fit(X, y)
    assert [w.category for w in caught] == [BoundaryWarning]
    assert est.variance_components_["sdcor"].iloc[2] == pytest.approx(1.0)
    assert not isinstance(est._fit_result.n_quad, str)  # a Gauss-Hermite rule
    nodes, larger, d_loglik, move = est._fit_result.check
    assert abs(d_loglik) < 1e-6 and move <= 1.0


def test_unidentified_slopes_and_a_meaningless_covariance_are_refused():
    """A slope column constant within every group only moves each group's
    intercept (the diagonal and unstructured fits reach the same maximum with
    different SDs: the attack's finding); covariance='diagonal' without
    random slopes sets nothing."""
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(30), 6)
    X = pd.DataFrame({"g": g, "x": rng.normal(size=180), "z": (g % 2).astype(float)})
    y = rng.integers(0, 2, 180)
    m = MultilevelBinomial(group="g", random_slopes=["z"], n_quad=1)
    with pytest.raises(ValueError, match="'z' is not identified.*constant within"):
        m.fit(X, y)
    assert not hasattr(m, "coef_")
    X.loc[0, "z"] = 0.5  # varies within one group: fitted (here at a boundary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        MultilevelBinomial(group="g", random_slopes=["z"], n_quad=1).fit(X, y)
    with pytest.raises(ValueError, match="covariance='diagonal' is the covariance"):
        MultilevelBinomial(group="g", covariance="diagonal").fit(X, y)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"group": "g", "random_slopes": ["x1"]},
        {"group": ["o", "g"]},  # nested groups
    ],
)
def test_separated_data_warn_as_the_random_intercept_does(kwargs):
    """y = (x1 > 0) in every group: the fixed slope has no finite maximum (a
    linear program says so, as for the random intercept). The slopes and
    nested fits stopped at a slope of about 1e4 without a word (a black-box
    attack found it); they warn now, and data that do not separate do not."""
    from skre.exceptions import SeparationWarning

    rng = np.random.default_rng(113)
    g = np.repeat(np.arange(10), 8)
    x = rng.normal(size=80)
    X = pd.DataFrame({"x1": x, "g": g, "o": g // 3})
    if "random_slopes" in kwargs:
        X = X.drop(columns="o")
    with warnings.catch_warnings(record=True) as caught:
        # (with others: the fit is where the optimizer stopped)
        warnings.simplefilter("always")
        MultilevelBinomial(**kwargs).fit(X, (x > 0).astype(int))
    assert any(
        w.category is SeparationWarning
        and "separate successes from failures" in str(w.message)
        for w in caught
    )
    y = (x + rng.normal(size=80) > 0).astype(int)  # overlapping classes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MultilevelBinomial(**kwargs).fit(X, y)
    assert not [w for w in caught if w.category is SeparationWarning]


def test_a_fixed_rule_that_stalls_at_a_boundary_start_reaches_its_maximum():
    """Laplace's estimate is at a correlation of -1 here (a Cholesky diagonal
    entry at 0, where the likelihood is even in it); from it, 9 nodes
    stopped after 220 iterations, 0.006 log-likelihood units below the
    rule's maximum, with a ConvergenceWarning (black-box attack). The fixed
    rule now steps again from n_quad="auto"'s estimate and converges: its
    estimate is a maximum of the 9-node rule (no Newton step on it moves the
    estimates) and at least as high as the auto estimate on that rule."""
    from skre._core.slopes import fit_slopes
    from skre._slopes_fit import slope_data

    rng = np.random.default_rng(10)
    G, n = 40, 10
    g = np.repeat(np.arange(G), n)
    cov = np.array([[1.0, 0.15], [0.15, 0.25]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=G)
    x = rng.normal(size=G * n)
    y = rng.binomial(1, expit(-0.5 + 0.5 * x + u[g, 1] * x + u[g, 0]))
    X = pd.DataFrame({"x1": x, "g": g})
    laplace = MultilevelBinomial(group="g", random_slopes=["x1"], n_quad=1)
    with pytest.warns(BoundaryWarning):
        laplace.fit(X, y)
    assert laplace.variance_components_["sdcor"].iloc[-1] == pytest.approx(-1.0)
    fit = MultilevelBinomial(group="g", random_slopes=["x1"], n_quad=9).fit(X, y)
    assert fit.converged_
    res = fit._fit_result
    data = slope_data(res.design.data, res.slopes, res.design)
    again = fit_slopes(data, 9, res.x)  # Newton steps from the estimate
    np.testing.assert_allclose(again.x, res.x, rtol=1e-6, atol=1e-8)
    auto = MultilevelBinomial(group="g", random_slopes=["x1"]).fit(X, y)
    on_nine = data.likelihood(9).evaluate(auto._fit_result.x, grad=False)[0]
    assert fit.loglik_ >= on_nine - 1e-9 * abs(on_nine)
    assert fit.loglik_ > -257.85  # the stalled fit's was -257.8515
