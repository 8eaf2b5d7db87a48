"""offset="column": a column of X with coefficient 1 in the linear predictor
(issue 25), for the three estimators.

References: R's glm and glmer with offset(lt) on simulated counts
(tests/reference/offset_lme4.R), an independent integral of the
logistic-normal predictive probability, and exact identities (a constant
offset is an intercept shift; an offset k x is a slope shift of -k; binary
rows and their counts give one fit)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.special import expit, logit

from skre import (
    CompletePoolingBinomial,
    MultilevelBinomial,
    NoPoolingBinomial,
    binary_rows,
    from_formula,
    lr_test,
)
from skre.priors import HalfNormal

REF = Path(__file__).parent / "reference"
ESTIMATORS = [CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial]


@pytest.fixture(scope="module")
def ref():
    return json.loads((REF / "offset_lme4.json").read_text())


@pytest.fixture(scope="module")
def counts():
    d = pd.read_csv(REF / "data" / "offset_counts.csv")
    return d[["group", "x", "lt"]], d[["m", "n"]].to_numpy()


def test_complete_and_no_pooling_equal_glm(ref, counts):
    X, y = counts
    cp = CompletePoolingBinomial(group="group", offset="lt").fit(X, y)
    want = ref["complete_pooling"]
    np.testing.assert_allclose(
        [cp.intercept_, *cp.coef_],
        [want["coef"]["(Intercept)"], want["coef"]["x"]],
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        np.sqrt(np.diag(cp.covariance_)),
        [want["se"]["(Intercept)"], want["se"]["x"]],
        rtol=1e-6,  # R's glm: the IRLS weights of its previous iteration
    )
    assert cp.loglik_ == pytest.approx(want["loglik"], abs=1e-9)
    assert list(cp.covariates_) == ["x"]
    npool = NoPoolingBinomial(group="group", offset="lt").fit(X, y)
    want = ref["no_pooling"]
    assert npool.coef_[0] == pytest.approx(want["x"], rel=1e-9)
    assert npool.loglik_ == pytest.approx(want["loglik"], abs=1e-9)
    np.testing.assert_allclose(npool.group_intercepts_, want["intercepts"], atol=1e-8)


@pytest.mark.parametrize(
    "n_quad, key", [(25, "nagq25"), (1, "nagq1"), ("auto", "nagq25")]
)
def test_multilevel_equals_glmer(ref, counts, n_quad, key):
    """glmer(cbind(m, n - m) ~ x + offset(lt) + (1 | group)), tight; its
    log-likelihood recomputed in R with the offset as a column of
    coefficient 1."""
    X, y = counts
    m = MultilevelBinomial(group="group", offset="lt", n_quad=n_quad).fit(X, y)
    want = ref["glmer"][key]
    np.testing.assert_allclose(
        [m.intercept_, m.coef_[0], m.tau_],
        [want["fixef"]["(Intercept)"], want["fixef"]["x"], want["tau"]],
        atol=1e-6,
    )
    assert m.loglik_ == pytest.approx(
        want["loglik_with_constants_independent"], abs=1e-7
    )


def _data(seed=0, G=30, per=6):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), per)
    x = rng.normal(size=G * per)
    lt = 0.5 * rng.normal(size=G * per)
    n = rng.integers(1, 20, size=G * per)
    m = rng.binomial(n, expit(-0.5 + 0.4 * x + lt + rng.normal(0, 0.8, G)[g]))
    return pd.DataFrame({"g": g, "x": x, "lt": lt}), np.column_stack([m, n])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_constant_offset_is_an_intercept_shift(cls):
    """Adding c to every offset moves the intercept (and each group's) by -c
    and nothing else: the same slopes, log-likelihood, predictions, score."""
    X, y = _data()
    a = cls(group="g", offset="lt").fit(X, y)
    shifted = X.assign(lt=X["lt"] + 1.7)
    b = cls(group="g", offset="lt").fit(shifted, y)
    assert b.intercept_ == pytest.approx(a.intercept_ - 1.7, abs=1e-7)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-7)
    assert b.loglik_ == pytest.approx(a.loglik_, abs=1e-8)
    np.testing.assert_allclose(b.predict_proba(shifted), a.predict_proba(X), atol=1e-7)
    assert b.score(shifted, y) == pytest.approx(a.score(X, y), abs=1e-8)
    if cls is MultilevelBinomial:
        assert b.tau_ == pytest.approx(a.tau_, abs=1e-7)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_an_offset_k_x_moves_the_slope_of_x_by_minus_k(cls):
    X, y = _data(seed=1)
    plain = cls(group="g").fit(X[["g", "x"]], y)
    k = 0.3
    with_offset = cls(group="g", offset="kx").fit(
        X[["g", "x"]].assign(kx=k * X["x"]), y
    )
    assert with_offset.coef_[0] == pytest.approx(plain.coef_[0] - k, abs=1e-7)
    assert with_offset.intercept_ == pytest.approx(plain.intercept_, abs=1e-7)
    assert with_offset.loglik_ == pytest.approx(plain.loglik_, abs=1e-8)


def test_binary_rows_equal_their_counts_with_an_offset():
    X, y = _data(seed=2)
    Xb, yb, wb = binary_rows(X, y)
    a = MultilevelBinomial(group="g", offset="lt").fit(X, y)
    b = MultilevelBinomial(group="g", offset="lt").fit(Xb, yb, sample_weight=wb)
    np.testing.assert_allclose(
        [b.intercept_, *b.coef_, b.tau_], [a.intercept_, *a.coef_, a.tau_], atol=1e-8
    )


def test_new_rows_bring_their_own_offsets():
    """A new group's probability at offset o is the logistic-normal integral
    of b + x beta + o with SD tau (scipy's quad); a pooled fit's logit moves
    by the change of offset."""
    X, y = _data(seed=3)
    m = MultilevelBinomial(group="g", offset="lt").fit(X, y)
    new = pd.DataFrame({"g": [-1, -1], "x": [0.3, -1.0], "lt": [1.5, -0.25]})
    got = m.predict_proba(new)[:, 1]
    for row, p in zip(new.itertuples(), got):
        loc = m.intercept_ + m.coef_[0] * row.x + row.lt
        want = integrate.quad(
            lambda z: expit(loc + m.tau_ * z) * stats.norm.pdf(z),
            -40,
            40,
            epsabs=1e-13,
            epsrel=1e-12,
        )[0]
        assert p == pytest.approx(want, abs=1e-9)
    cp = CompletePoolingBinomial(group="g", offset="lt").fit(X, y)
    seen = X.iloc[:3]
    moved = seen.assign(lt=seen["lt"] + 0.8)
    np.testing.assert_allclose(
        logit(cp.predict_proba(moved)[:, 1]),
        logit(cp.predict_proba(seen)[:, 1]) + 0.8,
        atol=1e-10,
    )


def test_methods_on_a_fit_with_an_offset():
    """Every public method runs on an offset fit; refits (the bootstrap)
    keep the offset; intervals contain their estimates."""
    X, y = _data(seed=4)
    m = MultilevelBinomial(group="g", offset="lt").fit(X, y)
    ge = m.group_estimates()
    assert np.all((ge["lower"] <= ge["estimate"]) & (ge["estimate"] <= ge["upper"]))
    assert "~ 1 + x + offset(lt) + (1 | g)" in str(m.summary())
    for method in ("wald", "profile"):
        lo, hi = m.confint(method=method).loc["tau"]
        assert lo < m.tau_ < hi
    boot = m.confint(method="bootstrap", n_boot=20, random_state=0)
    assert np.isfinite(boot.to_numpy()).all()
    sims = m.simulate(n_sims=3, random_state=0)
    assert sims.shape == (3, len(X))
    assert np.isfinite(m.residuals(X, y)).all()
    assert 0.0 <= m.test_tau().pvalue <= 1.0
    cp = CompletePoolingBinomial(group="g", offset="lt").fit(X, y)
    res = lr_test(cp, m)
    assert res.statistic > 0
    np_ = NoPoolingBinomial(group="g", offset="lt").fit(X, y)
    ge = np_.group_estimates()
    assert np.all((ge["lower"] <= ge["estimate"]) & (ge["estimate"] <= ge["upper"]))
    with pytest.raises(ValueError, match="exact"):
        np_.group_estimates(method="exact")


def test_lr_test_refuses_models_with_other_offsets():
    X, y = _data(seed=5)
    cp = CompletePoolingBinomial(group="g").fit(X[["g", "x"]], y)
    m = MultilevelBinomial(group="g", offset="lt").fit(X, y)
    with pytest.raises(ValueError, match="same offset"):
        lr_test(cp, m)


def test_bayes_with_an_offset_is_the_shifted_posterior():
    X, y = _data(seed=6, G=12, per=4)
    prior = HalfNormal(1.0)
    a = MultilevelBinomial(group="g", offset="lt", method="bayes", tau_prior=prior)
    b = MultilevelBinomial(group="g", offset="lt", method="bayes", tau_prior=prior)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.fit(X, y)
        b.fit(X.assign(lt=X["lt"] - 0.9), y)
    assert b.intercept_ == pytest.approx(a.intercept_ + 0.9, abs=1e-6)
    assert b.tau_ == pytest.approx(a.tau_, abs=1e-6)


@pytest.mark.parametrize(
    "offset, X_kind, error, match",
    [
        ("nope", "frame", ValueError, "offset column 'nope' is not in X"),
        ("g", "frame", ValueError, "name the same column"),
        (0, "array", ValueError, "name the same column"),
        ("lt", "array", ValueError, "array without column names"),
        (7, "array", ValueError, "out of range"),
        (True, "frame", TypeError, "names a column of X"),
    ],
)
def test_bad_offsets(offset, X_kind, error, match):
    X, y = _data(seed=7)
    data = X if X_kind == "frame" else X.to_numpy()
    with pytest.raises(error, match=match):
        MultilevelBinomial(group="g" if X_kind == "frame" else 0, offset=offset).fit(
            data, y
        )


def test_bad_offset_values_name_the_column():
    X, y = _data(seed=8)
    with pytest.raises(ValueError, match="'lt' contains NaN"):
        CompletePoolingBinomial(group="g", offset="lt").fit(
            X.assign(lt=np.where(np.arange(len(X)) == 3, np.nan, X["lt"])), y
        )
    with pytest.raises(TypeError, match="'lt'"):
        CompletePoolingBinomial(group="g", offset="lt").fit(X.assign(lt="a"), y)


def test_offset_by_position_in_an_array():
    X, y = _data(seed=9)
    a = MultilevelBinomial(group="g", offset="lt").fit(X, y)
    b = MultilevelBinomial(group=0, offset=2).fit(X.to_numpy(), y)
    assert b.intercept_ == pytest.approx(a.intercept_, abs=1e-10)
    assert b.predict_proba(X.to_numpy()) == pytest.approx(a.predict_proba(X))


def test_dask_collections_are_refused_with_an_offset():
    dd = pytest.importorskip("dask.dataframe")
    X, y = _data(seed=10)
    Xd = dd.from_pandas(X, npartitions=2)
    yd = dd.from_pandas(pd.DataFrame(y, columns=["m", "n"]), npartitions=2)
    with pytest.raises(NotImplementedError, match="offset"):
        MultilevelBinomial(group="g", offset="lt").fit(Xd, yd)


def test_random_slopes_take_the_offset():
    """With random slopes too, a constant offset moves only the intercept and
    an offset k x only the fixed slope of x (by -k); predictions of new rows
    use their offsets."""
    X, y = _data(seed=11, G=40, per=8)
    kw = dict(group="g", random_slopes=["x"], n_quad=3)
    a = MultilevelBinomial(offset="lt", **kw).fit(X, y)
    b = MultilevelBinomial(offset="lt", **kw).fit(X.assign(lt=X["lt"] + 0.6), y)
    assert b.intercept_ == pytest.approx(a.intercept_ - 0.6, abs=1e-6)
    np.testing.assert_allclose(b.random_covariance_, a.random_covariance_, atol=1e-6)
    assert b.loglik_ == pytest.approx(a.loglik_, abs=1e-8)
    np.testing.assert_allclose(
        b.predict_proba(X.assign(lt=X["lt"] + 0.6)), a.predict_proba(X), atol=1e-6
    )
    plain = MultilevelBinomial(**kw).fit(X[["g", "x"]], y)
    kx = MultilevelBinomial(offset="kx", **kw).fit(
        X[["g", "x"]].assign(kx=-0.4 * X["x"]), y
    )
    assert kx.coef_[0] == pytest.approx(plain.coef_[0] + 0.4, abs=1e-6)
    assert kx.loglik_ == pytest.approx(plain.loglik_, abs=1e-8)
    ge = a.group_estimates()
    assert np.all((ge["lower"] <= ge["estimate"]) & (ge["estimate"] <= ge["upper"]))


def test_large_offsets_reach_glms_maximum(ref):
    """Offsets near 8 (and a constant 40): the group intercepts start at
    each group's logit less its mean offset, and a Newton step cut to
    nothing is not taken for convergence where the score is not flat (0.2's
    solver stopped at a start that ignored the offset: every weight 0,
    loglik -500, 'converged'). R's glm (offset_lme4.R)."""
    want = ref["large_offsets"]
    d = pd.DataFrame(want["data"])
    X, y = d[["g", "x", "lt"]], d[["m", "n"]].to_numpy()
    npool = NoPoolingBinomial(group="g", offset="lt").fit(X, y)
    np.testing.assert_allclose(
        [*npool.group_intercepts_, *npool.coef_], want["no_pooling"]["coef"], atol=1e-7
    )
    assert npool.loglik_ == pytest.approx(want["no_pooling"]["loglik"], abs=1e-8)
    cp = CompletePoolingBinomial(group="g", offset="lt").fit(X, y)
    np.testing.assert_allclose(
        [cp.intercept_, *cp.coef_], want["complete_pooling"]["coef"], atol=1e-7
    )
    const = pd.DataFrame(want["constant_40"]["data"])
    Xc, yc = const[["g", "off"]], const[["m", "n"]].to_numpy()
    # (the multilevel fit's tau is not 0 there: its intercept is near the
    # pooled one, not equal; 0.2 raised ZeroDivisionError on these data)
    for cls in ESTIMATORS:
        fit = cls(group="g", offset="off").fit(Xc, yc)
        assert fit.intercept_ == pytest.approx(
            want["constant_40"]["intercept"],
            abs=1e-3 if cls is MultilevelBinomial else 1e-9,
        ), cls.__name__


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"random_slopes": ["x"], "n_quad": 5},
        pytest.param(
            {"method": "bayes", "tau_prior": HalfNormal(1.0)},
            marks=pytest.mark.slow,  # a 17 s Bayes grid fit; CI runs it
        ),
    ],
    ids=["intercept", "slopes", "bayes"],
)
def test_the_population_is_at_the_mean_offset(params):
    """population_, prediction_interval, exceedance(quantile=) and
    predictive_counts without X take a new group at the trials-weighted mean
    covariates and offset: a constant offset shift (the same model) leaves
    them as they were (0.2 of the attack: taken at offset 0, they moved)."""
    X, y = _data(seed=4)
    shifted = X.assign(lt=X["lt"] + 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (bayes on small data)
        a = MultilevelBinomial(group="g", offset="lt", **params).fit(X, y)
        b = MultilevelBinomial(group="g", offset="lt", **params).fit(shifted, y)
    np.testing.assert_allclose(
        b.prediction_interval(), a.prediction_interval(), atol=1e-6
    )
    if "random_slopes" in params:
        return
    np.testing.assert_allclose(
        b.exceedance(quantile=0.9).to_numpy(dtype=float),
        a.exceedance(quantile=0.9).to_numpy(dtype=float),
        atol=1e-6,
    )
    assert b.predictive_counts(20).mean() == pytest.approx(
        a.predictive_counts(20).mean(), abs=1e-5
    )
    if not params:  # at the trials-weighted means of x and of the offset
        n = y[:, 1]
        x_mean, lt_mean = (float(n @ X[c] / n.sum()) for c in ("x", "lt"))
        assert a.population_.loc == pytest.approx(
            a.intercept_ + a.coef_[0] * x_mean + lt_mean, abs=1e-12
        )


def test_exact_test_tau_refuses_an_offset():
    X, y = _data(seed=12)
    m = MultilevelBinomial(group="g", offset="lt").fit(X[["g", "lt"]], y)
    with pytest.raises(ValueError, match="without covariates or an offset"):
        m.test_tau("exact")


def test_from_formula_takes_the_offset_from_the_formula_only():
    d = pd.read_csv(REF / "data" / "offset_counts.csv")
    with pytest.raises(ValueError, match=r"offset\(column\)"):
        from_formula("cbind(m, n - m) ~ x + offset(lt) + (1 | group)", d, offset="x")
    twice = from_formula(
        "cbind(m, n - m) ~ x + offset(lt) + offset(lt) + (1 | group)", d
    )
    assert twice.offsets == ("lt",)
    np.testing.assert_allclose(twice.X["offset(lt)"], d["lt"])
