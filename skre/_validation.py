"""Input validation: X with a group column, binary or count y, frequency weights.

Everything a user can get wrong is caught here with a message that names the
column, the rows or the value; nothing is dropped silently. The numerical core
only ever sees finite float arrays.
"""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _get_feature_names, validate_data

from ._core.binomial import log_binom_constant
from ._group_hint import warn_group_like_columns
from ._inputs import _rows, _show, as_pandas, dense_array, native
from ._labels import (  # noqa: F401 (check_labels, factorize: imported from here)
    check_label_types,
    check_labels,
    factorize,
)
from ._tool_checks import check_counts_caller
from .exceptions import SampleWeightWarning, warn


@dataclass
class Prepared:
    """Validated rows: group labels, numeric covariates, weighted counts.

    Validation never writes onto the estimator: what a fit learns about the
    input (classes, names, the form of y) is returned here, and the estimator
    sets it only once the whole fit has succeeded.
    """

    labels: np.ndarray | None  # (n,) group label of each row, or None
    Z: np.ndarray  # (n, p) float covariates
    successes: np.ndarray  # (n,) weighted successes
    trials: np.ndarray  # (n,) weighted trials
    constant: float  # sum of w * log C(n, m)
    n_obs: float  # sum of weights: rows of the expanded data
    covariates: np.ndarray  # (p,) covariate names
    classes: np.ndarray  # (2,) labels of failure and success
    binary_y: bool  # y was given as binary labels (else as counts)
    n_features_in: int | None = None  # fit only
    feature_names_in: np.ndarray | None = None  # fit only, when X has names
    #: the offset column's name (``offset=``): its values are then Z's last
    #: column, not among ``covariates``
    offset: str | None = None


def split_X(est, X, *, reset, hint_group=False):
    """Return ``(labels or None, float covariates, covariate names)``.

    With ``reset=False`` (predict, score) X is checked against the features
    seen in fit; with ``reset=True`` nothing is checked against, or written to,
    the estimator. ``hint_group``: without a group column, warn about a column
    that looks like group labels (a fit on the whole data; a Dask partition
    sees only part of a column).
    """
    if X is None:
        raise ValueError(f"{type(est).__name__} needs X; got None.")
    X = as_pandas(X, "X")
    if sp.issparse(X):
        raise TypeError(
            "sparse input is not supported: X holds a group column and "
            "numeric covariates; pass a dense array or a DataFrame."
        )
    group = est.group
    if isinstance(group, list) and len(group) > 2:
        raise NotImplementedError(
            f"{type(est).__name__}: group={group!r} nests {len(group)} levels; "
            "skre fits two (group=[outer, inner]) for now."
        )
    if isinstance(group, list) and (
        len(group) != 2
        or not all(
            isinstance(g, (str, Integral)) and not isinstance(g, bool) for g in group
        )
    ):
        raise ValueError(
            f"{type(est).__name__}: nested groups take group=[outer, inner], two "
            f"column names or positions, outer first; got group={group!r}."
        )
    frame = hasattr(X, "columns") and hasattr(X, "iloc")
    arr = X if frame else dense_array(X, "X")
    if arr.ndim != 2:
        raise ValueError(
            f"Expected 2D array for X, got {arr.ndim}D array instead. "
            "Reshape your data (e.g. X.reshape(-1, 1) for a single column)."
        )
    if arr.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={arr.shape!r}); at least one row is "
            "required."
        )
    if arr.shape[1] == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape!r}) while a minimum of 1 "
            "is required: X needs the group column or a covariate."
        )
    if frame:
        _check_unique_columns(X)
    if not reset:  # (at fit, prepare reads the names once, raising as sklearn does)
        validate_data(est, X, reset=False, skip_check_array=True)
    if frame:
        offset = offset_column(est, X)
        split = _split_frame(X, group, offset)
        if hint_group and group is None:
            warn_group_like_columns(est, X)
        return _move_offset(offset, *split)
    if arr.dtype.kind == "c":
        raise ValueError(
            "Complex data not supported in X: covariates must be real numbers."
        )
    if group is None:
        labels, rest, names = None, arr, [str(j) for j in range(arr.shape[1])]
    elif isinstance(group, list):  # nested groups: (outer, inner) pairs
        pos = []
        for g in group:
            if not isinstance(g, Integral):
                raise ValueError(
                    f"group={group!r} names columns, but X is an array without "
                    "column names: pass a DataFrame, or give the group columns "
                    "as integer positions."
                )
            if not -arr.shape[1] <= g < arr.shape[1]:
                raise ValueError(
                    f"group={group!r}: {g} is out of range for X with "
                    f"{arr.shape[1]} columns."
                )
            pos.append(g % arr.shape[1])
        if pos[0] == pos[1]:
            raise ValueError(
                f"group={group!r} names the column at position {pos[0]} twice; "
                "nested groups need two columns, outer first."
            )
        labels = _nested_labels(
            [arr[:, g] for g in pos], [f"at position {g}" for g in pos]
        )
        rest = np.delete(arr, pos, axis=1)
        names = [str(j) for j in range(arr.shape[1]) if j not in pos]
    else:
        if not isinstance(group, Integral):
            raise ValueError(
                f"group={_show(group)} names a column, but X is an array without "
                "column names: pass a DataFrame, or give group as an integer "
                "column position. If X comes from a transformer (a "
                "ColumnTransformer, a Pipeline), call .set_output(transform="
                "'pandas') on it so that the column names reach this estimator."
            )
        if not -arr.shape[1] <= group < arr.shape[1]:
            raise ValueError(
                f"group={group} is out of range for X with {arr.shape[1]} columns."
            )
        g = group % arr.shape[1]
        labels = arr[:, g]
        check_label_types(labels, f"at position {g}")
        rest = np.delete(arr, g, axis=1)
        names = [str(j) for j in range(arr.shape[1]) if j != g]
    offset = offset_column(est, arr)
    Z = _to_float(rest, names, group_hint=group is None, offset=offset)
    split = labels, Z, names
    if hint_group and group is None:
        warn_group_like_columns(est, arr)
    return _move_offset(offset, *split)


def offset_column(est, X):
    """The name (str) of the column ``est.offset`` names in ``X`` (a frame:
    a name or, for default labels, a position; an array: a position), or
    None without an offset. Raises ValueError where it names no column, or
    the group column."""
    offset = getattr(est, "offset", None)
    if offset is None:
        return None
    frame = hasattr(X, "columns") and hasattr(X, "iloc")
    if isinstance(offset, bool) or not isinstance(offset, (str, Integral)):
        raise TypeError(
            f"offset names a column of X (a name or a position); got "
            f"{offset!r} ({type(offset).__name__})."
        )
    if frame:
        cols = list(X.columns)
        name = _frame_column(cols, offset)
        if name not in cols:
            raise ValueError(
                f"offset column {_show(offset)} is not in X; its columns are "
                f"{[str(c) for c in cols]}."
            )
        group = est.group
        if isinstance(group, list) and any(
            name == _frame_column(cols, g) for g in group
        ):
            raise ValueError(
                f"offset={_show(offset)} is one of the group columns "
                f"{group!r}; the offset is a numeric column of its own."
            )
        if group is not None and name == _frame_column(cols, group):
            raise ValueError(
                f"offset={_show(offset)} and group={_show(est.group)} name the "
                "same column; the offset is a numeric column of its own."
            )
        return str(name)
    width = np.shape(X)[1]
    if not isinstance(offset, Integral):
        raise ValueError(
            f"offset={_show(offset)} names a column, but X is an array without "
            "column names: pass a DataFrame, or give offset as an integer "
            "column position."
        )
    if not -width <= offset < width:
        raise ValueError(f"offset={offset} is out of range for X with {width} columns.")
    group = est.group
    if isinstance(group, list) and offset % width in [
        g % width for g in group if isinstance(g, Integral)
    ]:
        raise ValueError(
            f"offset={offset} is one of the group columns {group!r}; the "
            "offset is a numeric column of its own."
        )
    if (
        group is not None
        and isinstance(group, Integral)
        and group % width == offset % width
    ):
        raise ValueError(
            f"offset={offset} and group={group} name the same column; the "
            "offset is a numeric column of its own."
        )
    return str(offset % width)


def _move_offset(name, labels, Z, names):
    """``(labels, Z, names)`` with the offset column ``name`` (if any) moved
    from the covariates to Z's last column."""
    if name is None:
        return labels, Z, names
    j = list(names).index(name)
    order = [k for k in range(Z.shape[1]) if k != j] + [j]
    return labels, Z[:, order], [n for k, n in enumerate(names) if k != j]


def _check_unique_columns(X):
    cols = list(X.columns)
    if len(set(map(repr, cols))) != len(cols):
        dup = sorted({_show(c) for c in cols if cols.count(c) > 1})
        raise ValueError(
            f"X has duplicated column names: {', '.join(dup)}; every column "
            "needs its own name."
        )


def _frame_column(cols, name):
    """The frame column ``name`` names: itself, or the label at a position
    (for frames with default column labels)."""
    if (
        name not in cols
        and isinstance(name, Integral)
        and -len(cols) <= name < len(cols)
    ):
        return cols[name]
    return name


def _nested_labels(columns, where):
    """Each row's ``(outer, inner)`` label pair (an object array of tuples),
    from the two group columns' labels (each checked as a group column's)."""
    for labels, name in zip(columns, where):
        check_labels_in(labels, name)
        check_label_types(labels, name)
    out = np.empty(len(columns[0]), dtype=object)
    out[:] = list(zip(*columns))
    return out


def check_labels_in(labels, name):
    """Missing labels refused, naming the group column."""
    try:
        check_labels(labels)
    except ValueError as exc:
        raise ValueError(
            str(exc).replace("the group column", f"group column {name}")
        ) from None


def _split_frame(X, group, offset=None):
    cols = list(X.columns)
    labels = None
    if isinstance(group, list):  # nested groups: (outer, inner) pairs
        names = []
        for g in group:
            g = _frame_column(cols, g)
            if g not in cols:
                raise ValueError(
                    f"group column {_show(g)} is not in X; its columns are "
                    f"{[str(c) for c in cols]}."
                )
            names.append(g)
        if names[0] == names[1]:
            raise ValueError(
                f"group={group!r} names the column {_show(names[0])} twice; "
                "nested groups need two columns, outer first."
            )
        labels = _nested_labels(
            [native(X[g].to_numpy()) for g in names], [_show(g) for g in names]
        )
        rest = X.iloc[:, [j for j, c in enumerate(cols) if c not in names]]
        _, Z, covariates = _split_frame(rest, None, offset)
        return labels, Z, covariates
    if group is not None:
        group = _frame_column(cols, group)
        if group not in cols:
            raise ValueError(
                f"group column {_show(group)} is not in X; its columns are "
                f"{[str(c) for c in cols]}."
                + (
                    " For nested groups pass a list, group=[outer, inner] (a "
                    "tuple names one column of a MultiIndex)."
                    if isinstance(group, tuple)
                    and all(g in cols for g in group)
                    and len(group) == 2
                    else _transformer_hint(group, cols)
                )
            )
        labels = native(X[group].to_numpy())
        check_label_types(labels, _show(group))
        if len(cols) == 1:  # the group alone: no covariates (skip pandas' copy)
            return labels, np.empty((len(X), 0)), []
        X = X.iloc[:, [j for j, c in enumerate(cols) if c != group]]
    X = _numeric_objects(X)
    for name, dtype in X.dtypes.items():
        if pd.api.types.is_complex_dtype(dtype):
            raise TypeError(
                f"{_kind(name, offset)} {_show(name)} has complex dtype {dtype}; "
                "covariates and offsets must be real numbers."
            )
        if not (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        ):
            raise TypeError(
                f"{_kind(name, offset)} {_show(name)} has dtype {dtype}; every "
                "column of X other than the group column must be numeric (encode "
                "categories first, e.g. with OneHotEncoder)."
                + _group_hint(name, group is None)
            )
    names = [str(c) for c in X.columns]
    Z = (
        X.to_numpy(dtype=float, na_value=np.nan)
        if X.shape[1]
        else np.empty((len(X), 0))
    )
    return labels, _to_float(Z, names, offset=offset), names


def _transformer_hint(group, cols):
    """How to keep the group column through a ColumnTransformer."""
    prefixed = [c for c in cols if isinstance(c, str) and c.endswith(f"__{group}")]
    if prefixed:
        return (
            f" A ColumnTransformer renamed it to {prefixed[0]!r}: pass "
            f"group={prefixed[0]!r}, or build the transformer with "
            "verbose_feature_names_out=False to keep the name."
        )
    return (
        " If X comes from a ColumnTransformer, pass the group column through "
        "(remainder='passthrough' or a 'passthrough' transformer) and set "
        "verbose_feature_names_out=False, or use the prefixed name (e.g. "
        f"'remainder__{group}')."
    )


def _numeric_objects(X):
    """Object columns holding only numbers become float, as sklearn converts
    them; strings stay, for the error that names the column."""
    converted = {}
    for name in [c for c, t in X.dtypes.items() if pd.api.types.is_object_dtype(t)]:
        col = X[name]
        values = col.to_numpy()
        numbers = [
            v is None
            or (
                isinstance(v, (Real, np.number, bool, np.bool_))
                and not isinstance(v, (str, bytes))
            )
            for v in values
        ]
        if all(numbers):
            converted[name] = pd.to_numeric(col, errors="coerce").astype(float)
    return X.assign(**converted) if converted else X


def _group_hint(name, no_group):
    """Where no group column is set, a column refused as a covariate may be it."""
    if not no_group:
        return ""
    return f" If column {_show(name)} holds group labels, pass group={_show(name)}."


def _is_number(v):
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _kind(name, offset):
    """How an error names a column of X: the offset's, or a covariate's."""
    if offset is not None and str(name) == offset:
        return "offset column"
    return "covariate column"


def _to_float(values, names, group_hint=False, offset=None):
    try:
        Z = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        for j, name in enumerate(names):
            try:
                np.asarray(values[:, j], dtype=float)
            except (TypeError, ValueError):
                col = values[:, j]
                bad = np.array([not _is_number(v) for v in col], dtype=bool)
                example = col[bad][0] if bad.any() else None
                raise TypeError(
                    f"{_kind(name, offset)} {name!r} has a non-numeric value "
                    f"({_show(example)}) in {_rows(bad)}; every column of X "
                    "other than the group column must be numeric (encode "
                    "categories first, e.g. with OneHotEncoder)."
                    + _group_hint(int(name) if group_hint else name, group_hint)
                ) from exc
        raise
    bad = ~np.isfinite(Z)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        raise ValueError(
            f"{_kind(names[j], offset)} {names[j]!r} contains NaN or infinity in "
            f"{_rows(bad[:, j])}."
        )
    return Z


def feature_names(X):
    """scikit-learn's ``feature_names_in_`` of ``X``: a pandas frame whose
    column names are all strings directly (sklearn's own check goes through
    narwhals and costs a tenth of a small fit), anything else through sklearn."""
    if isinstance(X, pd.DataFrame) and all(type(c) is str for c in X.columns):
        return np.asarray(X.columns, dtype=object) if len(X.columns) else None
    return _get_feature_names(X)


def split_y(est, y, *, reset):
    """Return ``(successes, trials, classes, binary)``.

    ``classes`` is learnt from y when ``reset`` and ``est.classes_`` otherwise;
    ``binary`` says whether y holds labels (else counts).
    """
    if y is None:
        raise ValueError(
            f"{type(est).__name__} requires y to be passed, but the target y is None."
        )
    y = as_pandas(y, "y")
    if sp.issparse(y):
        raise TypeError(
            "y is a sparse matrix; pass a dense 1-D array of labels or an (n, 2) "
            "array of [successes, trials]."
        )
    names = list(y.columns) if hasattr(y, "columns") else None
    arr = dense_array(y, "y")
    if arr.ndim == 2 and arr.shape[1] == 2:
        if reset:  # before the counts' checks: encoded ranks break them
            check_counts_caller(est)
        m, n = _counts(arr, names or ["successes", "trials"])
        classes = np.array([0, 1]) if reset else est.classes_
        return m, n, classes, False
    if arr.ndim == 2 and arr.shape[1] != 1:
        raise ValueError(
            f"y has {arr.shape[1]} columns; expected 1-D binary labels or "
            "2 columns [successes, trials]."
        )
    if arr.ndim > 2:
        raise ValueError(
            f"y has {arr.ndim} dimensions (shape {arr.shape}); expected 1-D binary "
            "labels or 2 columns [successes, trials]."
        )
    arr = _labels_1d(arr)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"y contains NaN or infinity in {_rows(~np.isfinite(arr))}.")
    if arr.dtype == object and pd.isna(arr).any():
        raise ValueError(
            f"y contains missing labels (NaN/None) in {_rows(pd.isna(arr))}."
        )
    frac = arr != np.round(arr) if arr.dtype.kind == "f" else None
    if frac is not None and frac.any():  # what type_of_target calls continuous
        raise ValueError(
            f"Unknown label type: continuous. y holds non-integer values "
            f"(e.g. {_show(arr[frac][0])} in {_rows(frac)}); a classifier "
            "needs binary labels. For proportions, pass y as "
            "[successes, trials] counts."
        )
    if arr.dtype.kind not in "iubf":  # numbers with whole values are class labels
        check_classification_targets(arr)
    if reset:
        classes = _two_classes(arr)
        if len(classes) > 2:
            shown = ", ".join(_show(c) for c in classes[:5])
            raise ValueError(
                f"Only binary classification is supported. y has "
                f"{len(classes)} distinct labels [{shown}"
                f"{', ...' if len(classes) > 5 else ''}]; pass binary labels "
                "or [successes, trials] counts."
            )
        if len(classes) < 2:
            raise ValueError(
                f"y contains only one class ({_show(classes[0])}); binary "
                "labels need both classes to say which is success. Pass y as "
                "[successes, trials] counts for data with no successes or "
                "no failures."
            )
    else:
        classes = est.classes_
    unknown = (arr != classes[0]) & (arr != classes[1])
    if unknown.any():
        known = ", ".join(_show(c) for c in classes)
        raise ValueError(
            f"y has labels not seen in fit ({_show(arr[unknown][0])} in "
            f"{_rows(unknown)}); classes_ is [{known}]."
        )
    successes = (arr == classes[1]).astype(float)
    return successes, np.ones_like(successes), classes, True


def _labels_1d(arr):
    """scikit-learn's ``column_or_1d(arr, warn=True)`` on an array already
    dense: a column vector is ravelled with its DataConversionWarning (at the
    user's line), anything but 1-D is refused. sklearn's own goes through
    ``check_array``, a seventh of a small fit's validation."""
    if arr.ndim == 1:
        return arr
    if arr.ndim == 2 and arr.shape[1] == 1:
        warn(
            "A column-vector y was passed when a 1d array was expected. Please "
            "change the shape of y to (n_samples, ), for example using ravel().",
            DataConversionWarning,
        )
        return arr.ravel()
    raise ValueError(
        f"y should be a 1d array, got an array of shape {arr.shape} instead."
    )


def _two_classes(arr):
    """``np.unique(arr)``, without its sort when numbers take at most two
    values (their minimum and maximum): a tenth of the time on 10^6 labels."""
    if arr.dtype.kind in "iubf" and len(arr):
        lo, hi = arr.min(), arr.max()
        if np.all((arr == lo) | (arr == hi)):
            return np.array([lo] if lo == hi else [lo, hi], dtype=arr.dtype)
    return np.unique(arr)


def _counts(arr, names):
    if arr.dtype.kind not in "iufb":
        for j in range(2):
            missing = pd.isna(arr[:, j])
            if missing.any():
                raise ValueError(
                    f"y column {_show(names[j])} contains NaN or a missing value "
                    f"in {_rows(missing)}."
                )
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError) as exc:
            for j in range(2):
                bad = np.array([not _is_number(v) for v in arr[:, j]], dtype=bool)
                if bad.any():
                    raise TypeError(
                        f"y column {_show(names[j])} has a non-numeric count "
                        f"({_show(arr[:, j][bad][0])}) in {_rows(bad)}; counts "
                        "must be numbers."
                    ) from exc
            raise TypeError(f"y counts must be numeric: {exc}") from exc
    arr = arr.astype(float)
    m, n = arr[:, 0], arr[:, 1]
    for col, name in ((m, names[0]), (n, names[1])):
        if not np.all(np.isfinite(col)):
            raise ValueError(
                f"y column {_show(name)} contains NaN or infinity in "
                f"{_rows(~np.isfinite(col))}."
            )
        if np.any(col < 0):
            raise ValueError(
                f"y column {_show(name)} has negative counts in {_rows(col < 0)}."
            )
        frac = col != np.round(col)
        if frac.any():
            raise ValueError(
                f"y column {_show(name)} has non-integer counts in {_rows(frac)} "
                f"(e.g. {_show(col[frac][0])}); use sample_weight for weights."
            )
    over = m > n
    if over.any():
        raise ValueError(
            f"successes exceed trials ({_show(names[0])} > {_show(names[1])}) in "
            f"{_rows(over)}. The second column of y counts trials (successes "
            "+ failures), not failures: R's cbind(successes, failures) is "
            "[successes, successes + failures] here."
        )
    return m, n


def check_sample_weight(sample_weight, n_rows):
    """Frequency weights as a float array: finite, non-negative, not all zero."""
    if sample_weight is None:
        return np.ones(n_rows)
    w = as_pandas(sample_weight, "sample_weight")
    if isinstance(w, (pd.Series, pd.Index)):
        if not (
            pd.api.types.is_numeric_dtype(w.dtype)
            or pd.api.types.is_bool_dtype(w.dtype)
        ):
            raise TypeError(f"sample_weight must be numeric; got dtype {w.dtype}.")
        w = w.to_numpy(dtype=float, na_value=np.nan)
    elif sp.issparse(w):
        raise TypeError("sample_weight must be a dense 1-D array, not a sparse matrix.")
    else:
        w = dense_array(w, "sample_weight")
        if w.dtype == object:
            missing = pd.isna(w) if w.ndim == 1 else np.zeros(0, dtype=bool)
            if missing.any():
                raise ValueError(
                    f"sample_weight contains NaN or a missing value in "
                    f"{_rows(missing)}."
                )
        if w.dtype.kind not in "biufO":  # complex, strings, dates
            raise TypeError(f"sample_weight must be real numbers; got dtype {w.dtype}.")
        try:
            w = w.astype(float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"sample_weight must be numeric: {exc}") from exc
    if w.ndim == 0:
        w = np.full(n_rows, float(w))
    if w.ndim != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar: sample_weight has "
            f"shape {w.shape}; expected ({n_rows},), one weight per row of X."
        )
    if len(w) != n_rows:
        raise ValueError(
            f"sample_weight has {len(w)} values but X has {n_rows} rows; "
            "they must match."
        )
    bad = ~np.isfinite(w)
    if bad.any():
        raise ValueError(
            f"sample_weight contains NaN or infinity in {_rows(bad)} "
            f"(e.g. {_show(w[bad][0])})."
        )
    neg = w < 0
    if neg.any():
        raise ValueError(
            f"sample_weight has negative values in {_rows(neg)} (e.g. "
            f"{_show(w[neg][0])}); frequency weights must be >= 0."
        )
    if n_rows and not np.any(w > 0):
        raise ValueError(
            "sample_weight is zero for every row: there is nothing to fit "
            "or score. Weights are frequencies: a row with weight k counts "
            "as k copies."
        )
    return w


def check_scored_trials(total):
    """A score is a mean per trial: refuse data with no trial of positive weight."""
    if not total > 0:
        raise ValueError("score needs at least one trial with positive weight.")


def _warn_small_weights(est, w):
    if len(w) and np.all(w < 1):
        warn(
            f"{type(est).__name__}: every sample_weight is below 1 (sum "
            f"{w.sum():.4g} over {len(w)} rows). skre's weights are frequency "
            "weights (weight k = the row k times), so these shrink the data and "
            "the evidence about the groups (tau may drop to 0). For importance "
            "or probability weights, rescale them to sum to the number of rows.",
            SampleWeightWarning,
        )


def prepare(est, X, y, sample_weight=None, *, reset):
    """Validate ``(X, y, sample_weight)`` into a :class:`Prepared`.

    Reads the estimator's parameters (and, when not ``reset``, what fit
    learnt) and never writes to it.
    """
    labels, Z, names = split_X(est, X, reset=reset, hint_group=reset)
    m, n, classes, binary = split_y(est, y, reset=reset)
    if len(m) != len(Z):
        raise ValueError(f"X has {len(Z)} rows but y has {len(m)}; they must match.")
    w = check_sample_weight(sample_weight, len(Z))
    info = (None, None)
    if reset and sample_weight is not None:
        _warn_small_weights(est, w)
    if reset:
        if not np.any(w * n > 0):
            raise ValueError(
                "every row has zero trials (or zero weight); nothing to fit."
            )
        # n_features_in_ and feature_names_in_, as sklearn's fit sets them
        n_group = 2 if isinstance(est.group, list) else int(labels is not None)
        info = (Z.shape[1] + n_group, feature_names(X))
    if reset and binary:
        for label, count in ((classes[1], w @ m), (classes[0], w @ (n - m))):
            if count == 0:
                raise ValueError(
                    f"no row of class {_show(label)} has positive "
                    "sample_weight; binary labels need both classes. Pass y as "
                    "[successes, trials] counts for data with no successes or "
                    "failures."
                )
    const = log_binom_constant(m, n, w)
    return Prepared(
        labels,
        Z,
        w * m,
        w * n,
        const,
        float(w.sum()),
        np.asarray(names, dtype=object),
        classes,
        binary,
        *info,
        offset=offset_column(est, X),
    )
