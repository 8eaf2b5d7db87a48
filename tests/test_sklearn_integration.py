"""skre inside scikit-learn: pipelines, grouped CV, grid search, clone, pickle,
pandas in and out, unseen groups, and what ``score`` measures."""

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skre import (
    CompletePoolingBinomial,
    MultilevelBinomial,
    NoPoolingBinomial,
    binomial_model,
)
from skre.datasets import load_rats, make_grouped_binomial


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


def test_held_out_batches_favour_partial_pooling(rats):
    X, y = rats
    cv = GroupKFold(n_splits=5)
    scores = {
        cls.__name__: cross_val_score(
            cls(group="batch"), X, y, cv=cv, groups=X["batch"]
        ).mean()
        for cls in (CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial)
    }
    assert np.isfinite(list(scores.values())).all()
    assert scores["MultilevelBinomial"] > scores["CompletePoolingBinomial"]
    assert scores["MultilevelBinomial"] > scores["NoPoolingBinomial"]


def test_pipeline_with_column_transformer_and_grid_search():
    X, y, _ = make_grouped_binomial(30, trials=8, n_features=2, random_state=0)
    X["x1"] = X["x1"] * 1000.0  # a covariate on another scale
    pre = ColumnTransformer(
        [("scale", StandardScaler(), ["x0", "x1"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    pre.set_output(transform="pandas")
    pipe = Pipeline([("pre", pre), ("model", MultilevelBinomial(group="group"))])
    grid = GridSearchCV(pipe, {"model__n_quad": [1, 9]}, cv=GroupKFold(n_splits=3))
    grid.fit(X, y, groups=X["group"])
    scores = grid.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    # the search ran both candidates, fold by fold as cross_val_score would
    for n_quad, score in zip([1, 9], scores):
        manual = cross_val_score(
            clone(pipe).set_params(model__n_quad=n_quad),
            X,
            y,
            cv=GroupKFold(n_splits=3),
            groups=X["group"],
        )
        assert score == pytest.approx(manual.mean(), rel=1e-12)
    assert grid.best_params_["model__n_quad"] == [1, 9][int(np.argmax(scores))]
    refit = clone(pipe).set_params(**grid.best_params_).fit(X, y)
    np.testing.assert_array_equal(grid.predict_proba(X), refit.predict_proba(X))
    proba = grid.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)


@pytest.mark.parametrize(
    "cls", [CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial]
)
def test_clone_and_pickle_round_trip(rats, cls):
    X, y = rats
    est = cls(group="batch").fit(X, y)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    assert not hasattr(fresh, "classes_")
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    pd.testing.assert_frame_equal(again.group_estimates(), est.group_estimates())


def test_string_labels_and_dataframe_output():
    X = pd.DataFrame(
        {"hospital": ["b", "a", "c", "a", "b", "c"], "age": [1.0, 2, 3, 4, 5, 6]}
    )
    y = pd.DataFrame({"deaths": [1, 2, 0, 4, 3, 1], "cases": [9, 8, 7, 9, 8, 7]})
    est = MultilevelBinomial(group="hospital").fit(X, y)
    table = est.group_estimates()
    assert list(table.index) == ["a", "b", "c"] and table.index.name == "hospital"
    assert list(table.columns) == [
        "trials",
        "successes",
        "observed",
        "estimate",
        "lower",
        "upper",
    ]
    assert list(est.feature_names_in_) == ["hospital", "age"]
    assert list(est.covariates_) == ["age"]


def test_pooled_score_is_minus_log_loss():
    X, y, _ = make_grouped_binomial(
        20, trials=6, n_features=1, binary=True, random_state=3
    )
    for est in (
        CompletePoolingBinomial(group="group"),
        NoPoolingBinomial(group="group"),
    ):
        est.fit(X, y)
        assert est.score(X, y) == pytest.approx(
            -log_loss(y, est.predict_proba(X)), abs=1e-12
        )


def test_multilevel_score_on_a_new_group_is_its_marginal_likelihood(rats):
    X, y = rats
    est = MultilevelBinomial(group="batch").fit(X, y)
    m, n = 3, 17
    b, tau = est.intercept_, est.tau_
    lik = integrate.quad(
        lambda u: np.exp(
            stats.binom.logpmf(m, n, 1 / (1 + np.exp(-b - tau * u)))
            + stats.norm.logpdf(u)
        ),
        -12,
        12,
        epsabs=0,
        epsrel=1e-12,
    )[0]
    log_kernel = np.log(lik) - np.log(float(stats.binom.pmf(m, n, 0.5) / 0.5**n))
    got = est.score(pd.DataFrame({"batch": [1000]}), np.array([[m, n]]))  # new
    assert got == pytest.approx(log_kernel / n, abs=1e-10)


def test_new_groups_are_integrated_over_the_population(rats):
    X, y = rats
    est = MultilevelBinomial(group="batch").fit(X, y)
    p_new = est.predict_proba(pd.DataFrame({"batch": [1000, 1001]}))[:, 1]
    assert p_new == pytest.approx(est.population_.mean(), abs=1e-12)
    assert p_new[0] > est.population_.median()  # E[theta] is not expit(b)
    npool = NoPoolingBinomial(group="batch").fit(X, y)
    cp = CompletePoolingBinomial(group="batch").fit(X, y)
    new = pd.DataFrame({"batch": [1000]})
    assert npool.predict_proba(new)[0, 1] == pytest.approx(cp.predict_proba(new)[0, 1])
    with pytest.raises(ValueError, match="not seen in fit"):
        NoPoolingBinomial(group="batch", unknown_group="error").fit(X, y).predict(new)


def test_seen_group_probability_is_the_posterior_mean(rats):
    X, y = rats
    est = MultilevelBinomial(group="batch").fit(X, y)
    b, tau = est.intercept_, est.tau_
    m, n = 4, 14  # batch 71

    def post(u):
        p = 1 / (1 + np.exp(-b - tau * u))
        return np.exp(stats.binom.logpmf(m, n, p) + stats.norm.logpdf(u))

    norm = integrate.quad(post, -12, 12, epsabs=0, epsrel=1e-12)[0]
    mean = (
        integrate.quad(
            lambda u: post(u) / (1 + np.exp(-b - tau * u)),
            -12,
            12,
            epsabs=0,
            epsrel=1e-12,
        )[0]
        / norm
    )
    got = est.predict_proba(pd.DataFrame({"batch": [71]}))[0, 1]
    assert got == pytest.approx(mean, abs=1e-10)


def test_binomial_model_mirrors_the_lecture(rats):
    frame = load_rats().frame
    m1 = binomial_model("m", "n", data=frame)
    m3 = binomial_model("m", "n", group="batch", data=frame)
    m4 = binomial_model("m", "n", group="batch", data=frame, multilevel=True, n_quad=1)
    assert isinstance(m1, CompletePoolingBinomial) and m1.loglik_ == pytest.approx(
        -171.9046, abs=1e-4
    )
    assert isinstance(m3, NoPoolingBinomial)
    assert isinstance(m4, MultilevelBinomial) and m4.tau_ == pytest.approx(
        0.664577, abs=1e-5
    )
    with pytest.raises(ValueError, match="'tumours' is not in data"):
        binomial_model("tumours", "n", data=frame)


def test_group_intervals_are_finite_and_ordered(rats):
    X, y = rats
    for cls in (CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial):
        t = cls(group="batch").fit(X, y).group_estimates(level=0.9)
        vals = t[["lower", "estimate", "upper"]].to_numpy()
        assert np.isfinite(vals).all()
        assert np.all(vals[:, 0] <= vals[:, 1]) and np.all(vals[:, 1] <= vals[:, 2])
        assert np.all((vals >= 0) & (vals <= 1))
    # batch 1 (0 of 20): no pooling's profile interval starts at 0, multilevel's inside
    t = NoPoolingBinomial(group="batch").fit(X, y).group_estimates().loc[1]
    assert t["lower"] == 0.0 and 0.05 < t["upper"] < 0.2
    t = MultilevelBinomial(group="batch").fit(X, y).group_estimates().loc[1]
    assert 0 < t["lower"] < t["estimate"] < t["upper"] < 1
