"""Is an input a Dask collection? Asked without importing dask.

The estimators call :func:`is_dask` on ``X`` first thing in ``fit``,
``predict*`` and ``score``, and hand Dask input to :mod:`skre._dask.backend`,
which is imported only then (and only it imports dask).
"""


def is_dask(obj):
    """True for Dask DataFrames, Series and arrays (anything with a task graph).

    Looks at the type, not the object: reading ``obj.dask`` would build the
    graph of a Dask DataFrame expression.
    """
    return hasattr(type(obj), "__dask_graph__") and hasattr(type(obj), "__dask_keys__")


def dask_impl():
    """:mod:`skre._dask.backend`, imported on first use."""
    from . import backend

    return backend
