"""Dask collections in, the same estimator out.

``fit``, ``predict*`` and ``score`` of the three estimators hand Dask input to
the functions here (through :mod:`skre._dask.detect`; nothing else in skre
imports dask). They run on whatever Dask scheduler is active: a
``distributed.Client`` (work on the workers, through futures) or a local one
(threads, processes, synchronous).

How a fit works:

1. **Pass 1** validates every partition with the in-memory checks and messages
   (plus the partition's number) and sums what the fit must know before it
   can code groups and standardize: totals, the classes of binary y, the
   group labels in order of appearance, trials-weighted covariate moments.
   The summaries are merged pairwise in partition order.
2. **Pass 2** validates again, codes groups as in memory (sorted labels),
   standardizes with the global moments and collapses rows by (group,
   covariates) within each partition; **one shuffle** on the group code then
   brings each group's rows into one partition, where they are collapsed
   again and persisted (:class:`~skre._dask.parts.Part`).
3. The fit: data that collapse to few rows (intercept-only, only categorical
   covariates; at most ``skre.local-rows``) are gathered and fit in memory.
   Otherwise every evaluation of the objective is one map-reduce over the
   partitions (:mod:`skre._dask.fit`). The estimator keeps the collapsed rows
   when there are at most ``skre.gather-rows`` of them, else group-level
   summaries (:mod:`skre._dask.results`).

Limits are dask config values (``dask.config.set({"skre.gather-rows": N})``):
``skre.local-rows``, ``skre.gather-rows`` and ``skre.partition-work`` (rows
times quadrature nodes per partition after the shuffle, which bounds the
memory of one likelihood evaluation).
"""

import copy
import logging
import math
import time
import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.base import get_scheduler
from sklearn.utils.validation import _get_feature_names, check_is_fitted

from .._core.grouping import Collapsed, collapse
from .._design import Design, _drop_aliased, _row_trials, warn_aliased
from .._fit_result import NoPoolingFit
from .._multilevel_fit import MultilevelFit
from .._validation import _show, _warn_small_weights, check_sample_weight, factorize
from . import parts as parts_mod
from .fit import (
    DaskEngine,
    LocalEngine,
    fit_complete,
    fit_multilevel_dask,
    fit_no_pooling,
    pooled_aliased_of,
)
from .results import GroupCounts, empty_rows, lean, rows_needed
from .slopes import fit_slopes_dask

DEFAULTS = {
    "local-rows": 200_000,
    "gather-rows": 5_000_000,
    "partition-work": 2_000_000,
}


def config(name):
    return int(dask.config.get(f"skre.{name}", DEFAULTS[name]))


#: each phase of a Dask fit logs its wall time here (INFO), with the record
#: attributes ``skre_phase`` and ``seconds`` (benchmarks/bench_dask.py reads them)
logger = logging.getLogger("skre.dask")


@contextmanager
def _phase(name):
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    logger.info(
        "%s: %.3f s", name, seconds, extra={"skre_phase": name, "seconds": seconds}
    )


# -- where the work runs --------------------------------------------------------------


def _active_client():
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is in the extra
        return None
    client = getattr(get_scheduler(), "__self__", None)
    return client if isinstance(client, Client) else None


class Runner:
    """Maps functions over persisted partitions on the active scheduler.

    With a ``distributed.Client`` the partitions are futures on the workers and
    only arguments and results travel; with a local scheduler they are objects
    in this process and the maps run through ``dask.compute``.
    """

    def __init__(self):
        self.client = _active_client()
        self.rounds = 0  # maps over the partitions so far
        # the shuffle runs where the rest runs (p2p needs the client as scheduler)
        self.shuffle = None if self.client is not None else "tasks"

    def put(self, obj):
        """``obj`` as an argument of :meth:`map` (scattered once to a cluster)."""
        return self.client.scatter(obj, hash=False) if self.client is not None else obj

    def lazy(self, handle):
        """A :meth:`put` handle as an argument of delayed tasks and collections."""
        if self.client is not None:
            return dask.delayed(handle)
        return dask.delayed(handle, traverse=False, name=_key())

    def compute(self, tasks):
        """Run delayed tasks; their results stay where they are (handles)."""
        if self.client is not None:
            return self.client.compute(list(tasks))
        return list(dask.compute(*tasks))

    def _submit(self, func, columns):
        if self.client is not None:
            return self.client.map(func, *columns, pure=False)
        return [
            dask.delayed(func, pure=False)(
                *[dask.delayed(a, traverse=False, name=_key()) for a in args]
            )
            for args in zip(*columns)
        ]

    def map(self, func, handles, *columns):
        """``[func(h, *args) for h, *args in zip(handles, *columns)]``, gathered."""
        self.rounds += 1
        tasks = self._submit(func, (handles, *columns))
        if self.client is not None:
            return self.client.gather(tasks)
        return list(dask.compute(*tasks))

    def map_keep(self, func, summary, handles, *columns):
        """Like :meth:`map`, but the results stay with the partitions; returns
        them and ``summary`` of each, gathered (one round trip)."""
        self.rounds += 1
        if self.client is not None:
            kept = self.client.map(func, handles, *columns, pure=False)
            return kept, self.client.gather(self.client.map(summary, kept))
        kept = list(dask.compute(*self._submit(func, (handles, *columns))))
        return kept, [summary(k) for k in kept]


def _key():
    return f"skre-arg-{uuid.uuid4().hex}"


# -- input --------------------------------------------------------------------------


def _call(X, y, w, func, n, *args, partition_info=None):
    """One partition of ``dd.map_partitions``: ``func(i, n, *args, X, y, w)``."""
    return func(partition_info["number"], n, *args, X, y, w)


def _is_frame(obj):
    return isinstance(obj, (dd.DataFrame, dd.Series))


class Inputs:
    """X, y and sample_weight cut into the same partitions.

    Dask DataFrames and Series go through one ``dd.map_partitions`` over all
    three, so that the optimizer reads them as one (``read_parquet`` fuses
    partitions differently for different column selections); Dask arrays go
    block by block, y and the weights rechunked to X's rows.
    """

    def __init__(self, X, y=None, sample_weight=None):
        self.X = X
        self.frame = _is_frame(X)
        if not self.frame and not isinstance(X, da.Array):
            raise TypeError(
                f"X is a {type(X).__name__}; skre takes Dask DataFrames, Series "
                "and arrays."
            )
        self.y = self._same_kind(y, "y")
        self.w = self._same_kind(sample_weight, "sample_weight")
        if self.frame:
            probe = dd.map_partitions(
                _call, X, self.y, self.w, None, None, **self._options(None)
            )
            self.n = probe.optimize().npartitions
        else:
            if X.ndim == 2:
                self.X = X.rechunk({1: -1})
            self.n = X.numblocks[0]
            self.lengths = list(X.chunks[0])

    def _same_kind(self, obj, name):
        if obj is None:
            return None
        kind = "Dask DataFrame or Series" if self.frame else "Dask array"
        ok = _is_frame(obj) if self.frame else isinstance(obj, da.Array)
        if not ok:
            raise TypeError(
                f"X is a {kind}, so {name} must be one too, cut into the same "
                f"partitions (e.g. both taken from one Dask DataFrame); got "
                f"{type(obj).__name__}."
            )
        if self.frame:
            if obj.npartitions != self.X.npartitions:
                raise ValueError(
                    f"X has {self.X.npartitions} partitions but {name} has "
                    f"{obj.npartitions}; take them from one Dask DataFrame."
                )
            return obj
        X = self.X
        if obj.chunks[0] != X.chunks[0]:
            if any(map(math.isnan, X.chunks[0])) or obj.shape[0] != X.shape[0]:
                raise ValueError(
                    f"X and {name} must have the same rows in the same chunks; "
                    f"X has chunks {X.chunks[0]}, {name} {obj.chunks[0]}."
                )
            obj = obj.rechunk({0: X.chunks[0]})
        return obj.rechunk({1: -1}) if obj.ndim == 2 else obj

    @staticmethod
    def _options(meta):
        return {
            "meta": pd.Series(dtype=object) if meta is None else meta,
            "enforce_metadata": False,
            "align_dataframes": False,
        }

    def _blocks(self, obj):
        if obj is None:
            return [None] * self.n
        blocks = obj.to_delayed()
        return list(blocks[:, 0] if blocks.ndim == 2 else blocks)

    def delayed(self, func, *args):
        """``func(i, n, *args, X_i, y_i, w_i)`` for every partition i, delayed."""
        if self.frame:
            out = dd.map_partitions(
                _call,
                self.X,
                self.y,
                self.w,
                func,
                self.n,
                *args,
                **self._options(None),
            )
            return list(out.to_delayed())
        return [
            dask.delayed(func, pure=False)(i, self.n, *args, x, y, w)
            for i, (x, y, w) in enumerate(
                zip(self._blocks(self.X), self._blocks(self.y), self._blocks(self.w))
            )
        ]

    def frames(self, func, *args, meta):
        """The same, as one Dask DataFrame of the frames ``func`` returns."""
        if self.frame:
            return dd.map_partitions(
                _call,
                self.X,
                self.y,
                self.w,
                func,
                self.n,
                *args,
                **self._options(meta),
            )
        return dd.from_delayed(self.delayed(func, *args), meta=meta, verify_meta=False)

    def array(self, func, *args, width, dtype):
        """The same, as one Dask array of the arrays ``func`` returns (lazy)."""
        shape = (0, width) if width else (0,)
        if self.frame:
            return dd.map_partitions(
                _call,
                self.X,
                None,
                None,
                func,
                self.n,
                *args,
                **self._options(np.empty(shape, dtype=dtype)),
            )
        pieces = [
            da.from_delayed(d, shape=(k, width) if width else (k,), dtype=dtype)
            for d, k in zip(self.delayed(func, *args), self.lengths)
        ]
        return da.concatenate(pieces, axis=0)

    def meta(self):
        if self.frame:
            return self.X._meta
        return np.empty((0,) + tuple(self.X.shape[1:]), dtype=self.X.dtype)


# -- fit ----------------------------------------------------------------------------


def fit(est, X, y, sample_weight=None):
    """``est.fit`` for Dask input; see the module docstring."""
    if est._requires_group and est.group is None:
        raise ValueError(
            f"{type(est).__name__} needs group=: the name (DataFrame) "
            "or position (array) of the column of group labels in X."
        )
    if y is None:
        raise ValueError(
            f"{type(est).__name__} requires y to be passed, but the target y is None."
        )
    check = getattr(est, "_check_fit_parameters", None)
    if check is not None:  # (the parameters together, before the data)
        check()
    runner = Runner()
    inputs = Inputs(X, y, sample_weight)
    with _phase("validate"):
        summary = _pass1(est, inputs)
    info = _check_totals(est, inputs, summary, sample_weight is not None)
    if getattr(est, "method", "ml") == "bayes" and not getattr(
        est.tau_prior, "proper", False
    ):
        raise ValueError(
            "method='bayes' needs a proper tau_prior (e.g. HalfCauchy(1.0) "
            f"or HalfNormal(1.0)); got {est.tau_prior!r}."
        )
    coding, groups = _coding(summary, info.classes)
    with _phase("shuffle"):
        plan = _pass2(est, runner, inputs, coding, summary)
    plan.n_groups = len(groups) if groups is not None else 1
    result = _fit_plan(est, runner, plan, summary, info, groups)
    logger.info(
        "map-reduce rounds: %d", runner.rounds, extra={"skre_rounds": runner.rounds}
    )
    est._set_fitted(info, result)
    return est


def _pass1(est, inputs):
    level = inputs.delayed(parts_mod.summarize, est)
    while len(level) > 1:
        level = [
            dask.delayed(parts_mod.merge)(level[k], level[k + 1])
            if k + 1 < len(level)
            else level[k]
            for k in range(0, len(level), 2)
        ]
    return dask.compute(level[0])[0]


def _check_totals(est, inputs, s, weighted):
    """The whole-data checks of :func:`skre._validation.prepare`, on the totals."""
    from .._validation import split_X

    if s.n_input == 0:  # every partition empty: the in-memory message
        split_X(est, inputs.meta(), reset=True)
    if s.n_obs == 0:
        check_sample_weight(np.zeros(1), 1)  # "sample_weight is zero for every row"
    if weighted and s.w_max < 1:  # the warning's numbers: sum and count of weights
        _warn_small_weights(est, np.broadcast_to(s.n_obs / s.n_input, (s.n_input,)))
    if not s.trials > 0:
        raise ValueError("every row has zero trials (or zero weight); nothing to fit.")
    if s.binary:
        classes = _binary_classes(est, s)
        for label in (classes[1], classes[0]):
            if s.class_weight.get(label, 0.0) == 0:
                raise ValueError(
                    f"no row of class {_show(label)} has positive "
                    "sample_weight; binary labels need both classes. Pass y as "
                    "[successes, trials] counts for data with no successes or "
                    "failures."
                )
    else:
        classes = np.array([0, 1])
    meta = inputs.meta()
    return SimpleNamespace(
        classes=classes,
        n_features_in=len(s.names) + (est.group is not None),
        feature_names_in=_get_feature_names(meta) if hasattr(meta, "columns") else None,
        covariates=np.asarray(s.names, dtype=object),
    )


def _binary_classes(est, s):
    """The two labels of binary y over all partitions, with the in-memory errors."""
    from .._validation import split_y

    labels = np.array(list(s.class_weight), dtype=object)
    try:
        labels = np.array(sorted(s.class_weight))
    except TypeError:
        pass
    if len(labels) != 2:  # reset=True says "only binary" or "only one class"
        split_y(est, labels, reset=True)
    return labels


def _coding(s, classes):
    """Group index (sorted labels of groups with trials, as ``factorize``) and
    the standardization, from the merged summary."""
    groups = None
    if s.labels is not None:
        codes, uniques = factorize(s.labels)
        used = np.zeros(len(uniques), dtype=bool)
        used[codes[s.used]] = True
        groups = uniques[used]
    p = len(s.names)
    if p:
        top, N, mean, M2, unit = (np.array(v, dtype=float) for v in zip(*s.moments))
        scale = np.sqrt(M2 / N)
        scale = np.where(scale > 0, scale, 1.0)
    else:
        mean = scale = unit = np.zeros(0)
    index = pd.Index(groups) if groups is not None else None
    return parts_mod.Coding(classes, index, unit, mean, scale), groups


def _pass2(est, runner, inputs, coding, s):
    """Coded, standardized rows; one shuffle on the group code; whole groups
    persisted as :class:`~skre._dask.parts.Part` objects."""
    n = inputs.n
    p = len(coding.unit)
    handle = runner.lazy(runner.put(coding))
    meta = parts_mod._rows_frame(np.zeros(0, dtype=np.int64), np.empty((0, p)), [], [])
    ddf = inputs.frames(parts_mod.coded_rows, est, handle, meta=meta)
    if coding.groups is not None:
        nodes = getattr(est, "n_quad", 1) if p else 1
        nodes = nodes if isinstance(nodes, int) else 25  # n_quad="auto": at most 25
        work = max(1, config("partition-work"))
        n_out = max(n, math.ceil(s.n_kept * nodes / work))
        ddf = ddf.shuffle(on="code", npartitions=n_out, shuffle_method=runner.shuffle)
    tasks = [dask.delayed(parts_mod.make_part)(f, p) for f in ddf.to_delayed()]
    parts = runner.compute(tasks)
    sizes = runner.map(parts_mod.part_size, parts)
    if runner.client is not None:
        runner.client.run(parts_mod.release_arrow_memory)
    keep = [k for k, (rows, _) in enumerate(sizes) if rows > 0]
    parts = [parts[k] for k in keep]
    ids = runner.map(_ids, parts)
    return SimpleNamespace(
        parts=parts,
        ids=ids,
        n_rows=int(sum(sizes[k][0] for k in keep)),
        p=p,
        coding=coding,
        totals=None,
        n_groups=None,
    )


def _ids(part):
    return part.ids


def _fit_plan(est, runner, plan, s, info, groups):
    """Build the design (gathered rows, or group-level summaries) and fit."""
    local = plan.p == 0 or plan.n_rows <= config("local-rows")
    keep_rows = local or plan.n_rows <= config("gather-rows")
    group_labels = groups if groups is not None else np.array(["(all)"], dtype=object)
    with _phase("design"):
        design, engine, pooled_aliased = _design(
            est, runner, plan, s, info, group_labels, local, keep_rows
        )
    with _phase("optimize"):
        kind = type(est).__name__
        if kind == "NoPoolingBinomial":
            return fit_no_pooling(est, engine, pooled_aliased)
        if kind == "MultilevelBinomial" and est.random_slopes:
            return fit_slopes_dask(est, engine, info.feature_names_in)
        if kind == "MultilevelBinomial":
            return fit_multilevel_dask(est, engine)
        return fit_complete(est, engine)


def _design(est, runner, plan, s, info, group_labels, local, keep_rows):
    """The Design (gathered rows, or counts per group) and the engine to fit it."""
    within = type(est).__name__ == "NoPoolingBinomial"
    G = plan.n_groups
    coding = plan.coding
    z_mean, z_scale = coding.mean * coding.unit, coding.scale * coding.unit
    if keep_rows:
        data = _gather_rows(runner, plan, G, plan.coding.groups is None)
        Z_unaliased = data.Z.copy() if within and data.Z.shape[1] else data.Z
        aliased = _drop_aliased(est, data, info.covariates, within)
        pooled_aliased = pooled_aliased_of(data, Z_unaliased) if within else None
    else:
        data = _group_level(runner, plan, G)
        aliased, pooled_aliased = _aliased_on_cluster(est, runner, plan, info, within)
        Z_unaliased = None
    plan.totals = (float(data.successes.sum()), float(data.trials.sum()))
    # the training rows are the collapsed rows (the input rows stay where they are)
    rows = len(data.codes) if keep_rows else 0
    row_index = np.arange(rows, dtype=np.int32 if rows < 2**31 else np.int64)
    design = Design(
        data,
        z_mean,
        z_scale,
        aliased,
        info.covariates,
        group_labels,
        s.constant,
        s.n_obs,
        bool(s.binary),
        row_index,
        _row_trials(data.trials) if keep_rows else None,
    )
    if local:
        engine = LocalEngine(design, Z_unaliased)
    else:
        engine = DaskEngine(runner, plan, design, Z_unaliased, not keep_rows)
    return design, engine, pooled_aliased


def _gather_rows(runner, plan, G, regroup):
    """Every partition's rows on the client, sorted by group as in memory."""
    pieces = runner.map(parts_mod.part_rows, plan.parts)
    codes = np.concatenate([c for c, _, _, _ in pieces])
    Z = np.concatenate([z for _, z, _, _ in pieces])
    m = np.concatenate([v for _, _, v, _ in pieces])
    n = np.concatenate([v for _, _, _, v in pieces])
    if regroup:  # no group column: partitions were not shuffled into whole groups
        return collapse(codes, Z, m, n, G)
    order = np.argsort(codes, kind="stable")
    codes = codes[order].astype(np.intp)
    starts = np.searchsorted(codes, np.arange(G))
    return Collapsed(codes, Z[order], m[order], n[order], G, starts)


def _group_level(runner, plan, G):
    """One row per group (counts only): the design of a fit that keeps no rows."""
    M, N = np.zeros(G), np.zeros(G)
    for ids, m, n in runner.map(parts_mod.part_group_sums, plan.parts):
        np.add.at(M, ids, m)
        np.add.at(N, ids, n)
    return GroupCounts(M, N, plan.n_rows)


def _aliased_on_cluster(est, runner, plan, info, within):
    """:func:`skre._design._drop_aliased` from cross-products summed over the
    partitions: the aliased mask (within groups for no pooling) and, for no
    pooling, complete pooling's."""
    p = plan.p
    if p == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    grams = runner.map(parts_mod.part_grams, plan.parts)
    gram = sum(g[0] for g in grams)
    total = sum(g[1] for g in grams)
    W = sum(g[2] for g in grams)
    overall = _aliased_from_gram(gram - np.outer(total, total) / W, W)
    if not within:
        warn_aliased(est, info.covariates, overall, overall)
        return overall, None
    inside = _aliased_from_gram(sum(g[3] for g in grams), W)
    warn_aliased(est, info.covariates, inside, overall)
    return inside, overall


def _aliased_from_gram(gram, total_weight):
    """The Cholesky sweep of :func:`skre._design.aliased_columns`."""
    aliased = np.zeros(len(gram), dtype=bool)
    threshold = 1e-14 * total_weight
    A = gram.copy()
    for j in range(len(A)):
        if A[j, j] <= threshold:
            aliased[j] = True
            continue
        A -= np.outer(A[:, j] / A[j, j], A[j, :])
    return aliased


# -- predict and score ---------------------------------------------------------------


def _lean_estimator(est):
    """A copy of the fitted estimator without its training rows, for the workers."""
    check_is_fitted(est)
    out = copy.copy(est)
    out._fit_result = lean(est._fit_result)
    return out


def _predict(est, X, method):
    check_is_fitted(est)
    inputs = Inputs(X)
    runner = Runner()
    handle = runner.lazy(runner.put(_lean_estimator(est)))
    two = method in ("predict_proba", "predict_log_proba")
    dtype = est.classes_.dtype if method == "predict" else np.dtype(float)
    return inputs.array(
        parts_mod.predict_part, handle, method, width=2 if two else 0, dtype=dtype
    )


def predict_proba(est, X):
    return _predict(est, X, "predict_proba")


def predict_log_proba(est, X):
    return _predict(est, X, "predict_log_proba")


def decision_function(est, X):
    return _predict(est, X, "decision_function")


def predict(est, X):
    return _predict(est, X, "predict")


def score(est, X, y, sample_weight=None):
    """Mean log predictive probability per trial, computed on the partitions."""
    check_is_fitted(est)
    if y is None:
        raise ValueError(
            f"{type(est).__name__} requires y to be passed, but the target y is None."
        )
    runner = Runner()
    inputs = Inputs(X, y, sample_weight)
    put = runner.put(_lean_estimator(est))
    fit = est._fit_result
    grouped = isinstance(fit, MultilevelFit) or (
        isinstance(fit, NoPoolingFit) and fit.alpha_prior is not None
    )
    if grouped:
        value, trials = _grouped_score(est, runner, put, inputs)
    else:
        results = dask.compute(*inputs.delayed(parts_mod.score_part, runner.lazy(put)))
        value = sum(r[0] for r in results)
        trials = sum(r[1] for r in results)
    if trials <= 0:
        raise ValueError("score needs at least one trial with positive weight.")
    return float(value / trials)


def _grouped_score(est, runner, put, inputs):
    """Rows shuffled so that each group's test rows meet its training rows."""
    from scipy.special import logsumexp

    from .._bayes import BayesFit

    fit = est._fit_result
    p = len(fit.design.covariates)
    meta = parts_mod._score_frame(*(np.zeros(0, dtype=np.int64),) * 2, np.empty((0, p)))
    ddf = inputs.frames(parts_mod.score_rows, runner.lazy(put), meta=meta)
    ddf = ddf.shuffle(on="bucket", npartitions=inputs.n, shuffle_method=runner.shuffle)
    buckets = runner.compute(ddf.to_delayed())
    trials = sum(runner.map(parts_mod.frame_trials, buckets))
    if isinstance(fit, MultilevelFit):
        seen = runner.map(parts_mod.seen_codes, buckets)
        trains = [runner.put(_train_rows(fit, codes)) for codes in seen]
    else:
        trains = [None] * len(buckets)
    terms = np.array(
        runner.map(parts_mod.score_bucket, buckets, [put] * len(buckets), trains)
    )
    total = terms.sum(axis=0)
    if isinstance(fit, BayesFit):
        w = np.array([wi for wi, _, _ in fit.node_posteriors])
        return float(logsumexp(np.log(w) + total)), trials
    return float(total[0]), trials


def _train_rows(fit, codes):
    """The training rows of groups ``codes`` (global codes, sorted)."""
    p = len(fit.design.covariates)
    if len(codes) == 0:
        return empty_rows(p)
    from .results import RowlessMultilevelFit

    if isinstance(fit, RowlessMultilevelFit):
        raise rows_needed("score() on groups seen in fit", fit.n_train_rows)
    data = fit.design.data
    first = data.starts[codes]
    size = np.r_[data.starts[1:], len(data.codes)][codes] - first
    index = np.arange(size.sum()) + np.repeat(first - np.cumsum(size) + size, size)
    return Collapsed(
        data.codes[index],
        data.Z[index],
        data.successes[index],
        data.trials[index],
        data.n_groups,
        data.starts,
    )
