"""Bad input raises ValueError/TypeError naming the column, rows or value.

``FIT_CASES`` and ``PREDICT_CASES`` follow the table in docs/validation.rst row by
row; each is checked for all three estimators with the exact message.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.exceptions import CollinearityWarning

ESTIMATORS = [CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial]


def base_X():
    return pd.DataFrame({"g": list("aabbccdd"), "x": np.arange(8.0)})


def base_counts():
    return pd.DataFrame({"m": [1, 2, 0, 3, 1, 1, 2, 0], "n": [3, 4, 2, 5, 3, 2, 4, 3]})


def base_binary():
    return np.array([0, 1, 1, 0, 1, 0, 0, 1])


def setting(frame, row, col, value, dtype=None):
    """A copy of ``frame`` with ``frame.loc[row, col] = value`` (column cast first)."""
    frame = frame.copy()
    if dtype is not None:
        frame[col] = frame[col].astype(dtype)
    frame.loc[row, col] = value
    return frame


def X_with_group(labels):
    return base_X().assign(g=labels)


def weights(**changes):
    w = np.ones(8)
    for row, value in changes.items():
        w[int(row[1:])] = value
    return w


def array_X(row=None, col=None, value=None):
    """X as a float array, group labels in column 0 (``X[row, col] = value``)."""
    X = np.column_stack([np.repeat([1.0, 2, 3, 4], 2), np.arange(8.0)])
    if row is not None:
        X[row, col] = value
    return X


# (id, X, y, sample_weight, estimator kwargs, error type, message regex)
FIT_CASES = [
    # non-finite values in X
    (
        "NaN covariate",
        setting(base_X(), 4, "x", np.nan),
        base_counts(),
        None,
        {},
        ValueError,
        r"covariate column 'x' contains NaN or infinity in row 4\.",
    ),
    (
        "inf covariate",
        setting(base_X(), 2, "x", np.inf),
        base_counts(),
        None,
        {},
        ValueError,
        r"covariate column 'x' contains NaN or infinity in row 2\.",
    ),
    (
        "-inf covariate (array X)",
        array_X(5, 1, -np.inf),
        base_counts(),
        None,
        {"group": 0},
        ValueError,
        r"covariate column '1' contains NaN or infinity in row 5\.",
    ),
    (
        "missing value in a nullable covariate",
        base_X().assign(x=pd.array([1, 2, None, 4, 5, 6, 7, 8], dtype="Int64")),
        base_counts(),
        None,
        {},
        ValueError,
        r"covariate column 'x' contains NaN or infinity in row 2\.",
    ),
    (
        "NaN group label",
        X_with_group([1.0, 1, 2, 2, np.nan, 3, 4, 4]),
        base_counts(),
        None,
        {},
        ValueError,
        r"the group column has a missing \(NaN/None\) or infinite label in row 4;",
    ),
    (
        "inf group label",
        X_with_group([1.0, 1, 2, 2, 3, np.inf, 4, 4]),
        base_counts(),
        None,
        {},
        ValueError,
        r"missing \(NaN/None\) or infinite label in row 5;",
    ),
    (
        "None group label",
        setting(base_X(), 1, "g", None),
        base_counts(),
        None,
        {},
        ValueError,
        r"missing \(NaN/None\) or infinite label in row 1;",
    ),
    (
        "pd.NA group label (Int64)",
        X_with_group(pd.array([1, 1, 2, None, 3, 3, 4, None], dtype="Int64")),
        base_counts(),
        None,
        {},
        ValueError,
        r"missing \(NaN/None\) or infinite label in rows 3, 7;",
    ),
    (
        "pd.NA group label (string)",
        X_with_group(pd.array(list("aab") + [None] + list("ccdd"), dtype="string")),
        base_counts(),
        None,
        {},
        ValueError,
        r"missing \(NaN/None\) or infinite label in row 3;",
    ),
    (
        "NaN group label (categorical)",
        X_with_group(pd.Categorical(list("aab") + [None] + list("ccdd"))),
        base_counts(),
        None,
        {},
        ValueError,
        r"missing \(NaN/None\) or infinite label in row 3;",
    ),
    (
        "NaN group label (array X)",
        array_X(6, 0, np.nan),
        base_counts(),
        None,
        {"group": 0},
        ValueError,
        r"missing \(NaN/None\) or infinite label in row 6;",
    ),
    # non-finite values in y
    (
        "NaN in counts",
        base_X(),
        setting(base_counts(), 3, "m", np.nan, float),
        None,
        {},
        ValueError,
        r"y column 'm' contains NaN or infinity in row 3\.",
    ),
    (
        "inf in counts",
        base_X(),
        setting(base_counts(), 6, "n", np.inf, float),
        None,
        {},
        ValueError,
        r"y column 'n' contains NaN or infinity in row 6\.",
    ),
    (
        "pd.NA in nullable counts",
        base_X(),
        setting(base_counts(), 3, "m", pd.NA, "Int64"),
        None,
        {},
        ValueError,
        r"y column 'm' contains NaN or a missing value in row 3\.",
    ),
    (
        "NaN in binary y",
        base_X(),
        np.where(np.arange(8) == 2, np.nan, base_binary()),
        None,
        {},
        ValueError,
        r"y contains NaN or infinity in row 2\.",
    ),
    (
        "None in binary y",
        base_X(),
        np.array(["no", "yes", None, "no", "yes", "no", "no", "yes"], dtype=object),
        None,
        {},
        ValueError,
        r"y contains missing labels \(NaN/None\) in row 2\.",
    ),
    # counts
    (
        "successes > trials",
        base_X(),
        setting(setting(base_counts(), 3, "m", 9), 5, "m", 7),
        None,
        {},
        ValueError,
        r"successes exceed trials \('m' > 'n'\) in rows 3, 5\.",
    ),
    (
        "negative successes",
        base_X(),
        setting(base_counts(), 6, "m", -1),
        None,
        {},
        ValueError,
        r"y column 'm' has negative counts in row 6\.",
    ),
    (
        "negative trials",
        base_X(),
        setting(setting(base_counts(), 6, "n", -1), 6, "m", 0),
        None,
        {},
        ValueError,
        r"y column 'n' has negative counts in row 6\.",
    ),
    (
        "non-integer counts",
        base_X(),
        setting(base_counts(), 2, "n", 2.5, float),
        None,
        {},
        ValueError,
        r"y column 'n' has non-integer counts in row 2 \(e\.g\. 2\.5\); use "
        r"sample_weight for weights\.",
    ),
    (
        "non-numeric counts",
        base_X(),
        setting(base_counts(), 1, "m", "two", object),
        None,
        {},
        TypeError,
        r"y column 'm' has a non-numeric count \('two'\) in row 1;",
    ),
    (
        "every row with zero trials",
        base_X(),
        base_counts().assign(m=0, n=0),
        None,
        {},
        ValueError,
        r"every row has zero trials \(or zero weight\); nothing to fit\.",
    ),
    # binary labels
    (
        "1-D y with three labels",
        base_X(),
        [0, 1, 2, 0, 1, 2, 0, 1],
        None,
        {},
        ValueError,
        r"Only binary classification is supported\. y has 3 distinct labels "
        r"\[0, 1, 2\];",
    ),
    (
        "1-D y with one label",
        base_X(),
        np.zeros(8),
        None,
        {},
        ValueError,
        r"y contains only one class \(0\.0\)",
    ),
    (
        "continuous 1-D y",
        base_X(),
        [0.0, 0.25, 1, 0, 1, 0, 1, 0],
        None,
        {},
        ValueError,
        r"Unknown label type: continuous\. y holds non-integer values \(e\.g\. 0\.25 "
        r"in row 1\)",
    ),
    (
        "y with three columns",
        base_X(),
        np.ones((8, 3)),
        None,
        {},
        ValueError,
        r"y has 3 columns; expected 1-D binary labels or 2 columns "
        r"\[successes, trials\]\.",
    ),
    # X
    (
        "X without the group column",
        base_X(),
        base_counts(),
        None,
        {"group": "batch"},
        ValueError,
        r"group column 'batch' is not in X; its columns are \['g', 'x'\]\.",
    ),
    (
        "group position out of range (array X)",
        array_X(),
        base_counts(),
        None,
        {"group": 5},
        ValueError,
        r"group=5 is out of range for X with 2 columns\.",
    ),
    (
        "group name for an array X",
        array_X(),
        base_counts(),
        None,
        {"group": "g"},
        ValueError,
        r"group='g' names a column, but X is an array without column names",
    ),
    (
        "string covariate",
        base_X().assign(colour=list("rgbrgbrg")),
        base_counts(),
        None,
        {},
        TypeError,
        r"covariate column 'colour' has dtype (str|object|string)",
    ),
    (
        "string covariate (array X)",
        np.column_stack([array_X(), list("rgbrgbrg")]).astype(object),
        base_counts(),
        None,
        {"group": 0},
        TypeError,
        r"covariate column '2' has a non-numeric value \('r'\) in rows 0, 1, 2, 3, 4, "
        r"\.\.\.; every column of X other than the group column must be numeric",
    ),
    (
        "complex covariate",
        base_X().assign(z=np.ones(8) + 1j),
        base_counts(),
        None,
        {},
        TypeError,
        r"covariate column 'z' has complex dtype complex128",
    ),
    (
        "unhashable group labels",
        X_with_group([[1], [1], [2], [2], [3], [3], [4], [4]]),
        base_counts(),
        None,
        {},
        TypeError,
        r"group labels must be hashable",
    ),
    (
        "duplicated column names",
        pd.concat([base_X(), base_X()[["x"]]], axis=1),
        base_counts(),
        None,
        {},
        ValueError,
        r"X has duplicated column names: 'x';",
    ),
    (
        "1-D X",
        np.arange(8.0),
        base_counts(),
        None,
        {"group": 0},
        ValueError,
        r"Expected 2D array for X, got 1D array instead",
    ),
    (
        "sparse X",
        sp.csr_matrix(array_X()),
        base_counts(),
        None,
        {"group": 0},
        TypeError,
        r"sparse input is not supported",
    ),
    (
        "empty input",
        base_X().iloc[:0],
        base_counts().iloc[:0],
        None,
        {},
        ValueError,
        r"Found array with 0 sample\(s\) \(shape=\(0, 2\)\); at least one row is "
        r"required\.",
    ),
    ("X is None", None, base_counts(), None, {}, ValueError, r"needs X; got None\."),
    ("y is None", base_X(), None, None, {}, ValueError, r"requires y to be passed"),
    # lengths
    (
        "X and y lengths differ",
        base_X(),
        base_binary()[:7],
        None,
        {},
        ValueError,
        r"X has 8 rows but y has 7; they must match\.",
    ),
    (
        "sample_weight length differs",
        base_X(),
        base_counts(),
        np.ones(7),
        {},
        ValueError,
        r"sample_weight has 7 values but X has 8 rows; they must match\.",
    ),
    (
        "2-D sample_weight",
        base_X(),
        base_counts(),
        np.ones((8, 2)),
        {},
        ValueError,
        r"sample_weight has shape \(8, 2\); expected \(8,\)",
    ),
    # sample weights
    (
        "negative sample_weight",
        base_X(),
        base_counts(),
        weights(r2=-1, r5=-0.5),
        {},
        ValueError,
        r"sample_weight has negative values in rows 2, 5 \(e\.g\. -1\.0\); frequency "
        r"weights must be >= 0\.",
    ),
    (
        "NaN sample_weight",
        base_X(),
        base_counts(),
        weights(r5=np.nan),
        {},
        ValueError,
        r"sample_weight contains NaN or infinity in row 5 \(e\.g\. nan\)\.",
    ),
    (
        "inf sample_weight",
        base_X(),
        base_counts(),
        weights(r0=np.inf),
        {},
        ValueError,
        r"sample_weight contains NaN or infinity in row 0 \(e\.g\. inf\)\.",
    ),
    (
        "missing sample_weight (nullable)",
        base_X(),
        base_counts(),
        pd.Series(pd.array([1, 1, None, 1, 1, 1, 1, 1], dtype="Int64")),
        {},
        ValueError,
        r"sample_weight contains NaN or infinity in row 2",
    ),
    (
        "non-numeric sample_weight",
        base_X(),
        base_counts(),
        np.array(list("abcdefgh")),
        {},
        TypeError,
        r"sample_weight must be real numbers; got dtype <U1\.",
    ),
    (
        "all-zero sample_weight",
        base_X(),
        base_counts(),
        np.zeros(8),
        {},
        ValueError,
        r"sample_weight is zero for every row: there is nothing to fit or score\.",
    ),
    (
        "positive weight on one class only",
        base_X(),
        base_binary(),
        base_binary().astype(float),
        {},
        ValueError,
        r"no row of class 0 has positive sample_weight; binary labels need both "
        r"classes\.",
    ),
]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "X, y, w, kwargs, error, match",
    [pytest.param(*case[1:], id=case[0]) for case in FIT_CASES],
)
def test_fit_rejects_bad_input(cls, X, y, w, kwargs, error, match):
    est = cls(**{"group": "g", **kwargs})
    with pytest.raises(error, match=match):
        est.fit(X, y, sample_weight=w)


@pytest.mark.parametrize("cls", [NoPoolingBinomial, MultilevelBinomial])
def test_group_is_required_for_grouped_models(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__} needs group=: the name"):
        cls().fit(base_X()[["x"]], base_counts())


@pytest.fixture(scope="module", params=ESTIMATORS, ids=lambda c: c.__name__)
def fitted(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return request.param(group="g").fit(base_X(), base_counts())


@pytest.fixture(scope="module", params=ESTIMATORS, ids=lambda c: c.__name__)
def fitted_array(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return request.param(group=0).fit(array_X(), base_counts())


PREDICT_METHODS = ["predict", "predict_proba", "decision_function"]

# (id, X at predict time, error type, message regex); the estimator was fit on base_X()
PREDICT_CASES = [
    (
        "an extra column",
        base_X().assign(z=1.0),
        ValueError,
        r"The feature names should match those that were passed during fit\.\n"
        r"Feature names unseen at fit time:\n- z",
    ),
    (
        "a missing covariate",
        base_X()[["g"]],
        ValueError,
        r"Feature names seen at fit time, yet now missing:\n- x",
    ),
    (
        "the group column renamed",
        base_X().rename(columns={"g": "batch"}),
        ValueError,
        r"Feature names unseen at fit time:\n- batch\nFeature names seen at fit time, "
        r"yet now missing:\n- g",
    ),
    (
        "an array with too many columns",
        np.ones((3, 3)),
        ValueError,
        r"X has 3 features, but \w+ is expecting 2 features as input\.",
    ),
    (
        "NaN covariate",
        setting(base_X(), 1, "x", np.nan),
        ValueError,
        r"covariate column 'x' contains NaN or infinity in row 1\.",
    ),
    (
        "missing group label",
        setting(base_X(), 6, "g", None),
        ValueError,
        r"missing \(NaN/None\) or infinite label in row 6;",
    ),
    ("empty input", base_X().iloc[:0], ValueError, r"Found array with 0 sample\(s\)"),
    (
        "a string covariate",
        base_X().assign(x=list("abcdefgh")),
        TypeError,
        r"covariate column 'x' has dtype (str|object|string)",
    ),
]


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize(
    "X, error, match", [pytest.param(*case[1:], id=case[0]) for case in PREDICT_CASES]
)
def test_predict_rejects_bad_input(fitted, method, X, error, match):
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # "X does not have valid feature names"
        with pytest.raises(error, match=match):
            getattr(fitted, method)(X)


@pytest.mark.parametrize("method", PREDICT_METHODS)
def test_predict_on_arrays_checks_the_number_of_columns(fitted_array, method):
    name = type(fitted_array).__name__
    with pytest.raises(
        ValueError, match=rf"X has 1 features, but {name} is expecting 2"
    ):
        getattr(fitted_array, method)(np.ones((4, 1)))
    with pytest.raises(
        ValueError,
        match=r"covariate column '1' contains NaN or infinity in "
        r"row 3\.",
    ):
        getattr(fitted_array, method)(array_X(3, 1, np.nan))


SCORE_CASES = [
    (
        "an extra column",
        base_X().assign(z=1.0),
        base_counts(),
        None,
        ValueError,
        r"Feature names unseen at fit time:\n- z",
    ),
    (
        "NaN covariate",
        setting(base_X(), 1, "x", np.nan),
        base_counts(),
        None,
        ValueError,
        r"covariate column 'x' contains NaN or infinity in row 1\.",
    ),
    (
        "NaN in counts",
        base_X(),
        setting(base_counts(), 4, "n", np.nan, float),
        None,
        ValueError,
        r"y column 'n' contains NaN or infinity in row 4\.",
    ),
    (
        "successes > trials",
        base_X(),
        setting(base_counts(), 7, "m", 4),
        None,
        ValueError,
        r"successes exceed trials \('m' > 'n'\) in row 7\.",
    ),
    (
        "labels not seen in fit",
        base_X(),
        [0, 1, 2, 0, 1, 0, 1, 0],
        None,
        ValueError,
        r"y has labels not seen in fit \(2 in row 2\); classes_ is \[0, 1\]\.",
    ),
    (
        "lengths differ",
        base_X(),
        base_counts().iloc[:6],
        None,
        ValueError,
        r"X has 8 rows but y has 6; they must match\.",
    ),
    (
        "negative sample_weight",
        base_X(),
        base_counts(),
        weights(r3=-2),
        ValueError,
        r"sample_weight has negative values in row 3",
    ),
    (
        "NaN sample_weight",
        base_X(),
        base_counts(),
        weights(r1=np.nan),
        ValueError,
        r"sample_weight contains NaN or infinity in row 1",
    ),
    (
        "all-zero sample_weight",
        base_X(),
        base_counts(),
        np.zeros(8),
        ValueError,
        r"sample_weight is zero for every row: there is nothing to fit or score\.",
    ),
    (
        "zero trials",
        base_X(),
        base_counts().assign(m=0, n=0),
        None,
        ValueError,
        r"score needs at least one trial with positive weight\.",
    ),
]


@pytest.mark.parametrize(
    "X, y, w, error, match",
    [pytest.param(*case[1:], id=case[0]) for case in SCORE_CASES],
)
def test_score_rejects_bad_input(fitted, X, y, w, error, match):
    with pytest.raises(error, match=match):
        fitted.score(X, y, sample_weight=w)


def test_unknown_group_error_names_the_row():
    est = NoPoolingBinomial(group="g", unknown_group="error").fit(
        base_X(), base_counts()
    )
    with pytest.raises(
        ValueError,
        match=r"2 rows belong to groups not seen in fit \(first "
        r"at row 1\)",
    ):
        est.predict(base_X().assign(g=list("azbbccdz")))


@pytest.mark.filterwarnings("ignore::UserWarning")  # boundary fits, an aliased flag
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_valid_unusual_inputs_are_accepted(cls):
    """Things that look odd but are valid: no error, and the same fit as the plain
    form."""
    X, y = base_X(), base_counts()
    ref = cls(group="g").fit(X, y)
    for w in (None, 1, 1.0, np.ones(8, dtype=int), pd.Series(np.ones(8)), [True] * 8):
        est = cls(group="g").fit(X, y, sample_weight=w)
        assert est.intercept_ == ref.intercept_
    # nullable integer counts without missing values; a boolean covariate
    est = cls(group="g").fit(X, y.astype("Int64"))
    assert est.intercept_ == ref.intercept_
    cls(group="g").fit(X.assign(flag=[True, False] * 4), y)
    # zero-trial rows and zero-weight rows are allowed (and ignored) as long as
    # some remain
    est = cls(group="g").fit(
        X, y.assign(n=np.r_[y["n"][:7], 0], m=np.r_[y["m"][:7], 0])
    )
    ref = cls(group="g").fit(X.iloc[:7], y.iloc[:7])
    assert est.intercept_ == ref.intercept_
    est = cls(group="g").fit(X, y, sample_weight=np.r_[np.ones(7), 0.0])
    assert est.intercept_ == ref.intercept_


# -- older, more specific checks -----------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_count_errors_name_column_and_rows(cls):
    X, y = base_X(), base_counts()
    bad = y.copy()
    bad.loc[[3, 5], "m"] = [9, 7]
    with pytest.raises(
        ValueError, match=r"successes exceed trials \('m' > 'n'\) in rows 3, 5"
    ):
        cls(group="g").fit(X, bad)
    bad = y.astype(float)
    bad.loc[2, "n"] = 2.5
    with pytest.raises(ValueError, match=r"'n' has non-integer counts in row 2"):
        cls(group="g").fit(X, bad)
    bad = y.copy()
    bad.loc[6, "m"] = -1
    with pytest.raises(ValueError, match=r"'m' has negative counts in row 6"):
        cls(group="g").fit(X, bad)
    # many rows: the first five and an ellipsis
    bad = y.assign(m=y["n"] + 1)
    with pytest.raises(ValueError, match=r"in rows 0, 1, 2, 3, 4, \.\.\.\. The"):
        cls(group="g").fit(X, bad)


@pytest.mark.filterwarnings(
    "ignore::skre.exceptions.BoundaryWarning"
)  # every group has the same counts pattern: tau is 0
def test_aliased_covariates_are_named_and_dropped():
    X = pd.DataFrame({"g": np.repeat(np.arange(6), 4), "x": np.tile([0.0, 1, 2, 3], 6)})
    X["level"] = X["g"] * 0.5  # constant within each group
    X["x2"] = 2 * X["x"] + 1
    yc = np.column_stack([np.arange(24) % 3, np.full(24, 3)])
    with pytest.warns(
        CollinearityWarning, match=r"covariate 'x2' is constant or a linear"
    ):
        cp = CompletePoolingBinomial(group="g").fit(X, yc)
    ref = CompletePoolingBinomial(group="g").fit(X.drop(columns="x2"), yc)
    np.testing.assert_allclose(cp.coef_, [*ref.coef_, 0.0], atol=1e-10)
    with pytest.warns(CollinearityWarning, match=r"covariate 'const' is constant"):
        MultilevelBinomial(group="g").fit(X[["g", "x"]].assign(const=1.0), yc)
    with pytest.warns(
        CollinearityWarning, match=r"'level' is constant within every group"
    ):
        npool = NoPoolingBinomial(group="g").fit(X[["g", "x", "level"]], yc)
    assert npool.coef_[1] == 0.0
    # a group-level covariate is identified in the multilevel model
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollinearityWarning)
        MultilevelBinomial(group="g").fit(X[["g", "x", "level"]], yc)


@pytest.mark.filterwarnings(
    "ignore::skre.exceptions.BoundaryWarning"
)  # four identical groups: tau is 0 by design
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_column_vector_labels_warn_at_the_callers_line_and_fit_the_same(cls):
    """As scikit-learn's column_or_1d: a column of labels is ravelled with a
    DataConversionWarning (here attributed to the user's line), a scalar y is
    refused."""
    from sklearn.exceptions import DataConversionWarning

    X = pd.DataFrame({"g": np.repeat(np.arange(4), 6)})
    y = np.tile([0, 1, 1, 0, 0, 1], 4)
    ref = cls(group="g").fit(X, y)
    with pytest.warns(DataConversionWarning, match="column-vector y") as record:
        est = cls(group="g").fit(X, y[:, None])
    assert record[0].filename == __file__
    assert est.intercept_ == ref.intercept_
    with pytest.raises(ValueError, match=r"1d array, got an array of shape \(\)"):
        cls(group="g").fit(X.iloc[:1], np.array(1))
