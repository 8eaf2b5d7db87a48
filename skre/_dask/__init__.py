"""Fit, predict and score on Dask collections (the ``dask`` extra).

Importing this package imports no dask: the estimators ask :mod:`.detect`
whether an input is a Dask collection, and only then import :mod:`.backend`,
the one module that imports dask. It builds the task graphs; :mod:`.parts`
holds the work on each partition (numpy and pandas only), :mod:`.fit` drives
the optimizers over the partitions, and :mod:`.results` holds the fit results
of fits that did not keep their training rows.
"""
