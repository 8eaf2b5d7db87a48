"""Bad input raises ValueError/TypeError naming the column, rows or value."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from skre.exceptions import CollinearityWarning

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import make_grouped_binomial

ESTIMATORS = [CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial]


@pytest.fixture
def data():
    X = pd.DataFrame({"g": list("aabbccdd"), "x": np.arange(8.0)})
    y = pd.DataFrame({"m": [1, 2, 0, 3, 1, 1, 2, 0], "n": [3, 4, 2, 5, 3, 2, 4, 3]})
    return X, y


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_count_errors_name_column_and_rows(cls, data):
    X, y = data
    bad = y.copy()
    bad.loc[[3, 5], "m"] = [9, 7]
    with pytest.raises(ValueError, match=r"successes exceed trials \('m' > 'n'\) in rows 3, 5"):
        cls(group="g").fit(X, bad)
    bad = y.astype(float)
    bad.loc[2, "n"] = 2.5
    with pytest.raises(ValueError, match=r"'n' has non-integer counts in row 2"):
        cls(group="g").fit(X, bad)
    bad = y.copy()
    bad.loc[6, "m"] = -1
    with pytest.raises(ValueError, match=r"'m' has negative counts in row 6"):
        cls(group="g").fit(X, bad)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_x_errors_name_column_and_rows(cls, data):
    X, y = data
    bad = X.copy()
    bad.loc[4, "x"] = np.nan
    with pytest.raises(ValueError, match=r"covariate column x contains NaN or infinity in row 4"):
        cls(group="g").fit(bad, y)
    bad = X.copy()
    bad.loc[1, "g"] = None
    with pytest.raises(ValueError, match=r"missing \(NaN/None\) or infinite label in row 1"):
        cls(group="g").fit(bad, y)
    with pytest.raises(ValueError, match=r"group column 'batch' is not in X"):
        cls(group="batch").fit(X, y)
    with pytest.raises(TypeError, match=r"covariate column 'colour' has dtype"):
        cls(group="g").fit(X.assign(colour=list("rgbrgbrg")), y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_label_errors(cls, data):
    X, _ = data
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        cls(group="g").fit(X, [0, 1, 2, 0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match="only one class"):
        cls(group="g").fit(X, np.zeros(8))
    with pytest.raises(ValueError, match="y has 3 columns"):
        cls(group="g").fit(X, np.ones((8, 3)))
    with pytest.raises(ValueError, match="X has 8 rows but y has 7"):
        cls(group="g").fit(X, [0, 1] * 3 + [0])


def test_group_is_required_for_grouped_models(data):
    X, y = data
    for cls in (NoPoolingBinomial, MultilevelBinomial):
        with pytest.raises(ValueError, match="needs group="):
            cls().fit(X, y)


def test_capped_iterations_warn_and_report_non_convergence():
    X, y, _ = make_grouped_binomial(40, trials=10, n_features=2, random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        est = MultilevelBinomial(group="group", max_iter=1).fit(X, y)
    assert est.converged_ is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MultilevelBinomial(group="group").fit(X, y).converged_


def test_aliased_covariates_are_named_and_dropped():
    X = pd.DataFrame({"g": np.repeat(np.arange(6), 4), "x": np.tile([0.0, 1, 2, 3], 6)})
    X["level"] = X["g"] * 0.5  # constant within each group
    X["x2"] = 2 * X["x"] + 1
    yc = np.column_stack([np.arange(24) % 3, np.full(24, 3)])
    with pytest.warns(CollinearityWarning, match=r"covariate 'x2' is constant or a linear"):
        cp = CompletePoolingBinomial(group="g").fit(X, yc)
    ref = CompletePoolingBinomial(group="g").fit(X.drop(columns="x2"), yc)
    np.testing.assert_allclose(cp.coef_, [*ref.coef_, 0.0], atol=1e-10)
    with pytest.warns(CollinearityWarning, match=r"covariate 'const' is constant"):
        MultilevelBinomial(group="g").fit(X[["g", "x"]].assign(const=1.0), yc)
    with pytest.warns(CollinearityWarning, match=r"'level' is constant within every group"):
        npool = NoPoolingBinomial(group="g").fit(X[["g", "x", "level"]], yc)
    assert npool.coef_[1] == 0.0
    # a group-level covariate is identified in the multilevel model
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollinearityWarning)
        MultilevelBinomial(group="g").fit(X[["g", "x", "level"]], yc)
