"""A column of X that looks like group labels while ``group=`` is not set.

Without ``group=`` every column of X is a covariate, so a column of batch ids
is fitted as a number (``~ 1 + batch``): the fit runs and is wrong. Only
integer columns are judged (a float column is a measurement, and a string one
is refused as a covariate anyway); one looks like group labels when

- a word of its name says so (``batch``, ``group``, ``id``, ``patient_id``,
  ``schoolID``; the words are in :data:`LABEL_WORDS`) and it takes at least 3
  values, or
- its values number rows or groups: every whole number from 0 or 1 up to at
  least 10 occurs, each in one run of consecutive rows (one row per group, or
  the rows of a group together).

A covariate that happens to match (a time index 1, 2, ..., n) is silenced by
passing it as float.
"""

import re

import numpy as np
import pandas as pd

from .exceptions import GroupLabelWarning, warn

#: words of a column name that mean group labels
LABEL_WORDS = frozenset(
    {
        "animal",
        "batch",
        "block",
        "centre",
        "center",
        "clinic",
        "cluster",
        "family",
        "farm",
        "group",
        "groups",
        "grp",
        "herd",
        "hospital",
        "household",
        "id",
        "ids",
        "litter",
        "patient",
        "plot",
        "school",
        "site",
        "subject",
        "team",
    }
)
#: the fewest values numbering rows or groups that are taken for labels
MIN_NUMBERED = 10


def name_words(name):
    """Lower-case words of a column name, split at non-letters and camelCase."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)
    return {w.lower() for w in re.split(r"[^A-Za-z]+", text) if w}


def _numbered(values):
    """``"whole numbers 1 to 71, each in one run of rows"`` when the values
    number rows or groups, else None (O(n): no sort)."""
    lo, hi = int(values.min()), int(values.max())
    span = hi - lo + 1
    if lo not in (0, 1) or span < MIN_NUMBERED:
        return None
    runs = 1 + int(np.count_nonzero(values[1:] != values[:-1]))
    # every value in one run: as many runs as values, and every value present
    if runs != span or not np.all(np.bincount(values - lo, minlength=span)):
        return None
    each = "one row each" if span == len(values) else "each in one run of rows"
    return f"whole numbers {lo} to {hi}, {each}"


def _reason(name, values):
    if len(values) == 0:
        return None
    if name_words(name) & LABEL_WORDS and len(np.unique(values[:100_000])) >= 3:
        return f"an integer column named {str(name)!r}"
    return _numbered(values)


def _integer_columns(X):
    """``(name, position, int64 values)`` of X's integer columns."""
    if hasattr(X, "columns"):
        for j, (name, dtype) in enumerate(X.dtypes.items()):
            if pd.api.types.is_integer_dtype(dtype) and not X.iloc[:, j].isna().any():
                yield name, j, X.iloc[:, j].to_numpy(dtype=np.int64)
    elif X.dtype.kind in "iu":
        for j in range(X.shape[1]):
            yield j, j, X[:, j].astype(np.int64)


def warn_group_like_columns(est, X):
    """Warn, naming the fix, when ``group`` is None and a column of X looks
    like group labels (see the module's docstring)."""
    found = [
        (name, j, reason)
        for name, j, values in _integer_columns(X)
        if (reason := _reason(name, values)) is not None
    ]
    if not found:
        return
    name, j, reason = found[0]
    frame = hasattr(X, "columns")
    label, group = (repr(str(name)), repr(name)) if frame else (str(j), str(j))
    others = [repr(str(n)) if frame else str(k) for n, k, _ in found[1:]]
    also = f" (as {'do' if len(others) > 1 else 'does'} {', '.join(others)})"
    as_float = f"X.astype({{{group}: float}})" if frame else "X.astype(float)"
    warn(
        f"{type(est).__name__}: column {label} of X looks like group labels "
        f"({reason}){also if others else ''}, but group= is not set, so it is "
        "fitted as a numeric covariate, a slope in the label's value. If it "
        f"holds group labels, pass group={group}: complete pooling then leaves "
        "it out of the model, and group_estimates() reports per group. If it is "
        f"a covariate, pass it as float ({as_float}) to silence this warning.",
        GroupLabelWarning,
    )
