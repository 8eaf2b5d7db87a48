"""Issue 10: counts through sklearn tools, one scorer, tunable priors, any
dataframe, object columns, label types, warnings at the caller's line and the
small gaps (predict_log_proba, n_params_, summary's outcome, index names,
Displays of Pipelines, ColumnTransformer hints, fractional weights)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    RandomizedSearchCV,
    cross_val_predict,
    cross_validate,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skre import (
    CompletePoolingBinomial,
    MultilevelBinomial,
    NoPoolingBinomial,
    binary_rows,
)
from skre.datasets import load_rats
from skre.exceptions import (
    BoundaryWarning,
    GroupLabelWarning,
    SampleWeightWarning,
)
from skre.metrics import joint_log_score
from skre.priors import HalfCauchy, HalfNormal, Normal

ESTIMATORS = [CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial]


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


@pytest.fixture
def routing():
    sklearn.set_config(enable_metadata_routing=True)
    yield
    sklearn.set_config(enable_metadata_routing=False)


def grouped_binary(G=60, per=30, tau=1.2, seed=0):
    """Binary rows with one covariate and strong group effects."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), per)
    x = rng.standard_normal(G * per)
    eta = -0.5 + 0.7 * x + rng.normal(0, tau, G)[g]
    y = (rng.random(G * per) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"g": g, "x": x}), y


# -- binary_rows -----------------------------------------------------------------------
def test_binary_rows_form(rats):
    X, y = rats
    Xb, yb, wb = binary_rows(X, y)
    m, n = y.to_numpy().T
    assert len(Xb) == np.count_nonzero(m) + np.count_nonzero(n - m)
    assert wb[yb == 1].sum() == m.sum() and wb[yb == 0].sum() == (n - m).sum()
    assert (wb > 0).all() and list(Xb.index) == list(range(len(Xb)))
    # each count row gives its success row, then its failure row; batch 1 is
    # 0/20 (failures only), batch 2 too, batch 15 is 1/20
    np.testing.assert_array_equal(Xb["batch"].to_numpy()[:2], [1, 2])
    assert list(wb[:2]) == [20, 20] and list(yb[:2]) == [0, 0]
    first_success = np.flatnonzero(yb == 1)[0]
    b = Xb["batch"].to_numpy()[first_success]
    assert wb[first_success] == m[b - 1] and yb[first_success + 1] == 0
    assert wb[first_success + 1] == n[b - 1] - m[b - 1]
    np.testing.assert_array_equal(np.sort(Xb["batch"].unique()), np.arange(1, 72))


@pytest.mark.filterwarnings(
    "ignore::skre.exceptions.CollinearityWarning"
)  # one row per batch: no pooling drops x, constant within groups
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_binary_rows_fit_equals_counts_fit(rats, cls):
    X, y = rats
    Xb, yb, wb = binary_rows(X.assign(x=np.arange(71) % 5), y)
    a = cls(group="batch").fit(X.assign(x=np.arange(71) % 5), y)
    b = cls(group="batch").fit(Xb, yb, sample_weight=wb)
    assert b.intercept_ == a.intercept_
    np.testing.assert_array_equal(b.coef_, a.coef_)
    if cls is MultilevelBinomial:
        assert b.tau_ == a.tau_
    # identical up to the binomial constants, which binary rows do not have
    const = a._fit_result.design.constant
    assert b.loglik_ == pytest.approx(a.loglik_ - const, abs=1e-9)


def test_binary_rows_weights_and_arrays():
    X = np.array([[0, 1.0], [1, 2.0]])
    y = np.array([[1, 3], [0, 2]])
    Xb, yb, wb = binary_rows(X, y, sample_weight=[2.0, 1.0])
    np.testing.assert_array_equal(yb, [1, 0, 0])
    np.testing.assert_array_equal(wb, [2.0, 4.0, 2.0])
    np.testing.assert_array_equal(Xb, X[[0, 0, 1]])
    # 1-D labels pass through with unit weights
    Xp, yp, wp = binary_rows(X, np.array([0, 1]))
    np.testing.assert_array_equal(yp, [0, 1])
    np.testing.assert_array_equal(wp, 1)
    with pytest.raises(ValueError, match="successes exceed trials"):
        binary_rows(X, np.array([[3, 2], [0, 1]]))
    with pytest.raises(ValueError, match="X has 2 rows but y has 3"):
        binary_rows(X, np.array([[1, 2], [0, 1], [0, 1]]))


def test_cross_val_predict_on_binary_rows_equals_a_manual_loop(rats, routing):
    X, y = rats
    Xb, yb, wb = binary_rows(X, y)
    est = MultilevelBinomial(group="batch").set_fit_request(sample_weight=True)
    cv = GroupKFold(5)
    got = cross_val_predict(
        est,
        Xb,
        yb,
        cv=cv,
        method="predict_proba",
        params={"sample_weight": wb, "groups": Xb["batch"]},
    )
    manual = np.empty_like(got)
    for train, test in cv.split(Xb, yb, Xb["batch"]):
        m = MultilevelBinomial(group="batch").fit(
            Xb.iloc[train], yb[train], sample_weight=wb[train]
        )
        manual[test] = m.predict_proba(Xb.iloc[test])
    np.testing.assert_allclose(got, manual, rtol=0, atol=1e-8)
    # the counts' mean probability, not the ranks' (the bug this guards against)
    assert np.average(got[:, 1], weights=wb) == pytest.approx(267 / 1739, abs=0.02)


def test_weighted_scorer_through_routing(rats, routing):
    X, y = rats
    Xb, yb, wb = binary_rows(X, y)
    est = (
        MultilevelBinomial(group="batch")
        .set_fit_request(sample_weight=True)
        .set_score_request(sample_weight=True)
    )
    cv = GroupKFold(4)
    res = cross_validate(
        est,
        Xb,
        yb,
        cv=cv,
        scoring=joint_log_score.set_score_request(sample_weight=True),
        params={"sample_weight": wb, "groups": Xb["batch"]},
    )
    manual = []
    for train, test in cv.split(Xb, yb, Xb["batch"]):
        m = MultilevelBinomial(group="batch").fit(
            Xb.iloc[train], yb[train], sample_weight=wb[train]
        )
        manual.append(m.score(Xb.iloc[test], yb[test], sample_weight=wb[test]))
    np.testing.assert_allclose(res["test_score"], manual, rtol=1e-12)
    assert repr(joint_log_score) == "joint_log_score"  # the shared one unchanged


# -- one scorer ------------------------------------------------------------------------
def test_joint_log_score_of_skre_is_its_score(rats):
    X, y = rats
    for cls in ESTIMATORS:
        m = cls(group="batch").fit(X, y)
        assert joint_log_score(m, X, y) == m.score(X, y)
    pipe = make_pipeline(MultilevelBinomial(group="batch")).fit(X, y)
    assert joint_log_score(pipe, X, y) == pipe[-1].score(X, y)


def test_joint_log_score_of_other_classifiers_is_row_log_likelihood():
    X, y = grouped_binary()
    w = np.linspace(0.5, 2.0, len(y))
    lr = LogisticRegression().fit(X[["x"]], y)
    expected = -log_loss(y, lr.predict_proba(X[["x"]]), sample_weight=w)
    assert joint_log_score(lr, X[["x"]], y, sample_weight=w) == pytest.approx(
        expected, rel=1e-12
    )
    # counts of the same rows score the same per trial
    counts = np.column_stack([y, np.ones_like(y)])
    assert joint_log_score(lr, X[["x"]], counts) == pytest.approx(
        joint_log_score(lr, X[["x"]], y), rel=1e-12
    )


def test_mixed_grid_search_picks_the_multilevel_model():
    X, y = grouped_binary()
    lr = make_pipeline(
        ColumnTransformer([("x", StandardScaler(), ["x"])]), LogisticRegression()
    )
    ml = make_pipeline(
        ColumnTransformer(
            [("x", StandardScaler(), ["x"])],
            remainder="passthrough",
            verbose_feature_names_out=False,
        ),
        MultilevelBinomial(group="g"),
    ).set_output(transform="pandas")
    search = GridSearchCV(
        Pipeline([("model", lr)]),
        {"model": [lr, ml]},
        scoring=joint_log_score,
        cv=GroupKFold(5),
        error_score="raise",
    ).fit(X, y, groups=X["g"])
    scores = search.cv_results_["mean_test_score"]
    assert isinstance(search.best_params_["model"][-1], MultilevelBinomial)
    assert scores[1] > scores[0] + 0.05  # a clear margin with tau = 1.2


# -- priors as parameters --------------------------------------------------------------
def test_randomized_search_over_a_prior_scale(rats):
    X, y = rats
    est = MultilevelBinomial(group="batch", tau_prior=HalfNormal(1.0))
    search = RandomizedSearchCV(
        est,
        {"tau_prior__scale": loguniform(0.1, 3)},
        n_iter=3,
        cv=GroupKFold(3),
        random_state=0,
    ).fit(X, y, groups=X["batch"])
    sampled = search.cv_results_["param_tau_prior__scale"]
    assert len(set(map(float, sampled))) == 3
    best = search.best_estimator_.tau_prior
    assert best == HalfNormal(float(search.best_params_["tau_prior__scale"]))
    assert est.tau_prior == HalfNormal(1.0)  # the search never changed the original
    assert repr(best).startswith("HalfNormal(scale=0.") or repr(best).startswith(
        "HalfNormal(scale=1."
    )
    assert "np.float64" not in repr(best)


def test_set_params_replaces_an_immutable_prior():
    prior = HalfCauchy(1.0)
    a = MultilevelBinomial(group="g", tau_prior=prior)
    b = clone(a).set_params(tau_prior__scale=0.25)
    assert b.tau_prior == HalfCauchy(0.25) and a.tau_prior is prior
    assert prior == HalfCauchy(1.0)
    assert a.get_params()["tau_prior__scale"] == 1.0
    c = CompletePoolingBinomial().set_params(coef_prior=Normal(), coef_prior__scale=3)
    assert c.coef_prior == Normal(0.0, 3.0)
    with pytest.raises(ValueError, match="HalfCauchy has no parameter 'loc'"):
        a.set_params(tau_prior__loc=1.0)


@pytest.mark.filterwarnings(
    "ignore::skre.exceptions.CollinearityWarning"
)  # one row per batch: no pooling drops x, constant within groups
# -- any dataframe, object columns -----------------------------------------------------
@pytest.mark.parametrize("kind", ["polars", "pyarrow"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_dataframes_by_name_equal_pandas(rats, kind, cls):
    X, y = rats
    X = X.assign(x=np.arange(71) % 7 / 3.0)
    if kind == "polars":
        pl = pytest.importorskip("polars")
        Xo, yo = pl.from_pandas(X), pl.from_pandas(y)
    else:
        pa = pytest.importorskip("pyarrow")
        Xo, yo = pa.Table.from_pandas(X), pa.Table.from_pandas(y)
    a = cls(group="batch").fit(X, y)
    b = cls(group="batch").fit(Xo, yo)
    assert b.intercept_ == a.intercept_ and np.array_equal(b.coef_, a.coef_)
    np.testing.assert_array_equal(b.feature_names_in_, ["batch", "x"])
    np.testing.assert_array_equal(b.predict_proba(Xo), a.predict_proba(X))
    assert b.score(Xo, yo) == a.score(X, y)


def test_column_transformer_with_polars_output(rats):
    pytest.importorskip("polars")
    X, y = rats
    X = X.assign(x=np.arange(71) % 7 / 3.0)
    ct = ColumnTransformer(
        [("x", StandardScaler(), ["x"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    pipe = make_pipeline(ct, MultilevelBinomial(group="batch"))
    pipe.set_output(transform="polars").fit(X, y)
    ref = make_pipeline(clone(ct), MultilevelBinomial(group="batch"))
    ref.set_output(transform="pandas").fit(X, y)
    np.testing.assert_allclose(pipe.predict_proba(X), ref.predict_proba(X), rtol=1e-12)


@pytest.mark.filterwarnings(
    "ignore::skre.exceptions.CollinearityWarning"
)  # one row per batch: no pooling drops x, constant within groups
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_object_dtype_numeric_columns_equal_float(rats, cls):
    X, y = rats
    x = np.arange(71) % 7 / 3.0
    a = cls(group="batch").fit(X.assign(x=x), y)
    b = cls(group="batch").fit(X.assign(x=pd.Series(x, dtype=object)), y)
    assert b.intercept_ == a.intercept_ and np.array_equal(b.coef_, a.coef_)
    with pytest.raises(TypeError, match="covariate column 'x'"):
        cls(group="batch").fit(X.assign(x=["a"] * 71), y)


@pytest.mark.filterwarnings(
    "ignore::skre.exceptions.QuadratureWarning"
)  # checks finite scores of every candidate, not the 5-node accuracy
def test_object_columns_from_a_fresh_scaler_in_a_search(rats):
    """A StandardScaler candidate can hand object columns on; none may score NaN."""
    X, y = rats
    X = X.assign(x=pd.Series(np.arange(71) % 7 / 3.0, dtype=object))
    search = GridSearchCV(
        MultilevelBinomial(group="batch"),
        {"n_quad": [1, 5]},
        cv=GroupKFold(3),
        error_score="raise",
    ).fit(X, y, groups=X["batch"])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


# -- label types, warnings -------------------------------------------------------------
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_labels_of_another_type_warn(rats, cls):
    X, y = rats
    est = cls(group="batch").fit(X, y)
    as_str = X.assign(batch=X["batch"].astype(str))
    with pytest.warns(GroupLabelWarning, match="integer.*string|string.*integer"):
        est.predict_proba(as_str)
    with pytest.warns(GroupLabelWarning):
        est.score(as_str, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict_proba(X)  # the same type: no warning
        est.predict_proba(X.assign(batch=X["batch"] + 1000))  # new ids, same type


def test_warnings_point_at_the_callers_line():
    X = pd.DataFrame({"g": [1, 2, 3]})
    y = np.array([[5, 30], [4, 30], [6, 30]])
    with pytest.warns(BoundaryWarning) as record:
        MultilevelBinomial(group="g").fit(X, y)
    assert record[0].filename == __file__
    with pytest.warns(BoundaryWarning) as record:
        make_pipeline(MultilevelBinomial(group="g")).fit(X, y)
    assert record[0].filename == __file__


def test_fractional_frequency_weights_warn(rats):
    X, y = rats
    with pytest.warns(SampleWeightWarning, match="frequency weights"):
        # what the warning says may happen: 1/100 of the evidence, tau at 0
        with pytest.warns(BoundaryWarning):
            MultilevelBinomial(group="batch").fit(X, y, sample_weight=np.full(71, 0.01))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MultilevelBinomial(group="batch").fit(X, y, sample_weight=np.full(71, 2.0))


# -- the small gaps --------------------------------------------------------------------
def test_n_params_and_predict_log_proba(rats):
    X, y = rats
    for cls, k in zip(ESTIMATORS, (1, 71, 2)):
        est = cls(group="batch").fit(X, y)
        assert est.n_params_ == k
        assert est.aic_ == pytest.approx(-2 * est.loglik_ + 2 * k, abs=1e-12)
        lp, p = est.predict_log_proba(X), est.predict_proba(X)
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(lp, np.log(p), rtol=1e-12, atol=0)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_summary_outcome_follows_the_form_of_y(rats):
    X, y = rats
    counts = MultilevelBinomial(group="batch").fit(X, y).summary()
    assert counts.formula.startswith("cbind(successes, trials - successes) ~")
    Xb, yb, wb = binary_rows(X, y)
    rows = MultilevelBinomial(group="batch").fit(Xb, yb, sample_weight=wb).summary()
    assert rows.formula == "y ~ 1 + (1 | batch)"


def test_group_estimates_index_is_the_group_column(rats):
    X, y = rats
    for cls in ESTIMATORS:
        assert cls(group="batch").fit(X, y).group_estimates().index.name == "batch"
    by_position = MultilevelBinomial(group=0).fit(X, y).group_estimates()
    assert by_position.index.name == "batch"
    arrays = MultilevelBinomial(group=0).fit(X.to_numpy(), y.to_numpy())
    assert arrays.group_estimates().index.name == "group"


def test_displays_accept_a_pipeline(rats):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skre.plotting import CaterpillarDisplay, PopulationDisplay, ShrinkageDisplay

    X, y = rats
    ml = make_pipeline(MultilevelBinomial(group="batch")).fit(X, y)
    npool = make_pipeline(NoPoolingBinomial(group="batch")).fit(X, y)
    direct = ml[-1].group_estimates()
    cat = CaterpillarDisplay.from_estimator(ml, sort=False)
    np.testing.assert_array_equal(cat.estimate, direct["estimate"])
    assert PopulationDisplay.from_estimator(ml).population is ml[-1].population_
    assert len(ShrinkageDisplay.from_estimators(npool, ml).arrows_) == 71


def test_group_column_errors_suggest_the_fix(rats):
    X, y = rats
    with pytest.raises(ValueError, match="pass group='remainder__batch'"):
        MultilevelBinomial(group="batch").fit(
            X.rename(columns={"batch": "remainder__batch"}), y
        )
    with pytest.raises(ValueError, match="remainder='passthrough'"):
        MultilevelBinomial(group="batch").fit(X.rename(columns={"batch": "lab"}), y)
    with pytest.raises(ValueError, match=r"set_output\(transform='pandas'\)"):
        MultilevelBinomial(group="batch").fit(X.to_numpy(), y)
