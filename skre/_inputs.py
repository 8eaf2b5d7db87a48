"""Any array or dataframe in, NumPy or pandas out; how messages show rows and
values.

:mod:`skre._validation` checks what these conversions return; they only
change the container, never drop or alter a value.
"""

import numpy as np
import pandas as pd


def dense_array(values, name):
    """``np.asarray`` in native byte order, with our words for ragged input."""
    try:
        arr = np.asarray(values)
    except ValueError as exc:
        if "inhomogeneous" not in str(exc) and "sequence" not in str(exc):
            raise
        raise ValueError(
            f"{name} has rows of different lengths (a ragged nested list); every "
            "row needs the same number of values."
        ) from None
    if (
        arr.dtype == object
        and arr.ndim == 1
        and len(arr)
        and all(isinstance(v, (list, tuple, np.ndarray)) for v in arr[:1])
    ):
        raise ValueError(
            f"{name} has rows of different lengths (a ragged nested list); every "
            "row needs the same number of values."
        )
    return native(arr)


def native(arr):
    """The array in native byte order (pandas refuses big-endian data)."""
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _rows(mask, limit=5):
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = ", ..." if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _show(value):
    """``repr`` of a label or value, numpy scalars shown as Python ones (``2``, not
    ``np.int64(2)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def as_pandas(X, name="X"):
    """A DataFrame for any dataframe with column names (polars, pyarrow, ...),
    through the Arrow stream or the dataframe interchange protocol, a Series
    for a one-dimensional Arrow-backed column (a polars Series, a pyarrow
    Array or ChunkedArray); other input unchanged. skre depends on neither
    library. A lazy frame (polars ``LazyFrame``) is refused: it holds a query,
    not data, and ``.collect()`` runs it."""
    if isinstance(X, (pd.DataFrame, pd.Series, np.ndarray)) or X is None:
        return X
    if callable(getattr(type(X), "collect", None)) and not (
        hasattr(X, "__arrow_c_stream__") or hasattr(X, "__array__")
    ):
        kind = f"{type(X).__module__.split('.')[0]} {type(X).__name__}"
        raise TypeError(
            f"{name} is a {kind}, a lazy query rather than data: call "
            ".collect() on it and pass the result."
        )
    if not hasattr(X, "columns") and (
        hasattr(X, "__arrow_c_stream__") or hasattr(X, "__arrow_c_array__")
    ):
        return _arrow_column(X)
    if hasattr(X, "__arrow_c_stream__") and hasattr(pd.DataFrame, "from_arrow"):
        frame = pd.DataFrame.from_arrow(X)
    elif hasattr(X, "to_pandas"):
        frame = X.to_pandas()
    elif hasattr(X, "__dataframe__"):
        frame = pd.api.interchange.from_dataframe(X)
    else:
        return X
    if (
        isinstance(frame, pd.DataFrame)
        and frame.shape[1] == 1
        and not hasattr(X, "columns")
    ):
        frame = frame.iloc[:, 0]  # a Series-like (a polars Series, an Arrow array)
    return frame


def _arrow_column(X):
    """A one-dimensional Arrow-backed column as a pandas Series (its Arrow
    stream holds values, not a table, so ``DataFrame.from_arrow`` refuses it);
    nulls become NaN or None, which validation then reports by row."""
    if hasattr(pd.Series, "from_arrow"):  # pandas >= 3
        return pd.Series.from_arrow(X)
    if hasattr(X, "to_pandas"):
        return X.to_pandas()
    return X  # np.asarray reads it through __array__
