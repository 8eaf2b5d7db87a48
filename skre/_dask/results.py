"""Fit results of Dask fits that did not keep their training rows.

A Dask fit gathers its collapsed training rows to the client when there are at
most ``skre.gather-rows`` of them (dask config, default 5 000 000); its fit
result is then the ordinary in-memory one. Above that limit the result keeps
group-level summaries only: the parameters, each group's counts and
conditional distribution on its quadrature nodes, and the standardization.
That is all that predictions and scores of new groups need; what needs the
rows raises the error below. This module imports no dask, so such estimators
unpickle without it.
"""

from dataclasses import dataclass, fields, replace

import numpy as np

from .._bayes import BayesFit
from .._core.grouping import Collapsed
from .._fit_result import NoPoolingFit, PooledFit
from .._multilevel_fit import MultilevelFit


def rows_needed(what, n_rows):
    return ValueError(
        f"{what} needs the training rows, and this estimator was fit on Dask data "
        f"with {n_rows:,} rows after collapsing, more than the "
        "'skre.gather-rows' limit, so it kept group-level summaries only "
        "(predictions, scores of new groups, the fitted attributes). Refit with "
        "dask.config.set({'skre.gather-rows': N}) for a larger N to keep them "
        "(about 8 * (covariates + 3) bytes per row on the client)."
    )


class GroupCounts:
    """``design.data`` of a fit that kept no rows: one row per group with its
    counts (what ``group_successes`` and a degenerate fit read). Anything that
    reaches for the covariates of the rows gets :func:`rows_needed`."""

    def __init__(self, successes, trials, n_rows):
        G = len(trials)
        self.codes = self.starts = np.arange(G)
        self.successes, self.trials, self.n_groups = successes, trials, G
        self.n_rows = n_rows

    one_row_per_group = True

    def group_sum(self, values):
        return values

    @property
    def Z(self):
        raise rows_needed("This", self.n_rows)


def empty_rows(p):
    """Training rows of no group (held-out scores of new groups only)."""
    return Collapsed(
        np.zeros(0, dtype=np.intp), np.empty((0, p)), np.zeros(0), np.zeros(0), 0, []
    )


@dataclass(frozen=True, eq=False)
class RowlessPooledFit(PooledFit):
    n_train_rows: int = 0

    def confint(self, level, method):
        if method == "profile":
            raise rows_needed("confint(method='profile')", self.n_train_rows)
        return super().confint(level, method)

    def group_intervals(self, level, method=None):
        raise rows_needed("group_estimates()", self.n_train_rows)


@dataclass(frozen=True, eq=False)
class RowlessNoPoolingFit(NoPoolingFit):
    n_train_rows: int = 0

    def group_intervals(self, level, method="profile"):
        raise rows_needed("group_estimates()", self.n_train_rows)


@dataclass(frozen=True, eq=False)
class RowlessMultilevelFit(MultilevelFit):
    n_train_rows: int = 0

    @property
    def model(self):
        raise rows_needed("This", self.n_train_rows)

    @property
    def pooled(self):
        raise rows_needed("This", self.n_train_rows)

    @property
    def interior(self):
        raise rows_needed("vcov(), confint() and summary()", self.n_train_rows)

    def heldout_loglik(self, rows, codes):
        if np.any((codes >= 0) & (rows.trials > 0)):
            raise rows_needed("score() on groups seen in fit", self.n_train_rows)
        p = len(self.design.covariates)
        fit = replace(self, design=replace(self.design, data=empty_rows(p)))
        return MultilevelFit.heldout_loglik(fit, rows, codes)

    def group_intervals(self, level, method=None):
        raise rows_needed("group_estimates()", self.n_train_rows)

    def prediction_interval(self, level, include_parameter_uncertainty=False):
        if include_parameter_uncertainty or self.boundary:
            raise rows_needed(
                "prediction_interval() with parameter uncertainty (or at tau = 0)",
                self.n_train_rows,
            )
        return self.population().interval(level)


ROWLESS = {
    PooledFit: RowlessPooledFit,
    NoPoolingFit: RowlessNoPoolingFit,
    MultilevelFit: RowlessMultilevelFit,
}


def rowless(fit, n_rows):
    """The same result, of the class that refuses what needs rows."""
    cls = ROWLESS.get(type(fit))
    if cls is None:  # a degenerate fit reads only the group counts
        return fit
    values = {f.name: getattr(fit, f.name) for f in fields(fit)}
    values["n_train_rows"] = int(n_rows)
    return cls(**values)


@dataclass(frozen=True, eq=False)
class LeanBayesFit(BayesFit):
    """A Bayes fit for the workers: the per-node posteriors travel with it."""

    _transient = ("model", "log_prior")


def lean(fit):
    """The fit result without its training rows, to ship to every partition."""
    design = fit.design
    design.group_index  # noqa: B018  (computed once here, shipped with it)
    slim = replace(design, data=None)
    slim.__dict__["group_index"] = design.group_index
    if isinstance(fit, BayesFit):
        nodes = fit.node_posteriors
        values = {f.name: getattr(fit, f.name) for f in fields(fit)}
        out = LeanBayesFit(**{**values, "design": slim, "units": None})
        out.__dict__["node_posteriors"] = nodes
        return out
    if isinstance(fit, MultilevelFit):
        return replace(fit, design=slim, units=None)
    return replace(fit, design=slim)
