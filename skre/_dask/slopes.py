"""Random slopes on partitions that each hold whole groups.

The random-slope optimizer (:func:`~skre._core.slopes.fit_slopes`,
:func:`~skre._core.slopes.newton` and the node check of
:func:`~skre._slopes_fit.fit_random_slopes`) asks its data for a likelihood
(``data.likelihood(n_quad, diagonal, penalty)``) and asks that for
``evaluate``, the conditional modes ``u`` (read, and set to warm-start another
rule or to restore them between the differences of a Hessian) and the scales
``C``. :class:`DaskSlopeData` and :class:`DaskSlopeLikelihood` offer exactly
that over the partitions: every evaluation is one map-reduce in which each
partition evaluates its own groups with the in-memory
:class:`~skre._core.slopes.SlopeLikelihood`; only the parameters go out and
the value, the gradient and the sums the Newton steps' curvature needs
(:class:`~skre._core.slopes.ScoreSums`) come back. Each partition's modes stay
with it, in a :class:`SlopeState` kept on its worker: ``u`` and ``C`` on the
client are handles (:class:`Kept`) to those states, and ``np.asarray`` gathers
them into the global (groups, ...) arrays once the fit is done.

Like :mod:`.parts` and :mod:`.fit`, this module imports no dask: the runner
(:class:`~skre._dask.backend.Runner`) does the mapping.
"""

import copy
from dataclasses import dataclass

import numpy as np

from .._core.slopes import ScoreSums, SlopeLikelihood
from .._slopes_estimator import degenerate_slopes_error, slopes_fit
from .._slopes_fit import slope_data, slope_indices

# -- on each partition -------------------------------------------------------------


@dataclass(frozen=True)
class SlopeSpec:
    """What a partition needs to build its rows for the core: the slope
    columns and the standardization (as :func:`~skre._slopes_fit.slope_data`
    reads them from the design)."""

    slopes: np.ndarray
    z_mean: np.ndarray
    z_scale: np.ndarray

    def data_of(self, part, zero):
        return slope_data(part.view(zero), self.slopes, self)


@dataclass(frozen=True, eq=False)
class SlopeState:
    """A partition's likelihood after an evaluation: ``lik`` (its rows and
    their caches, shared by later states), the modes ``u`` and scales ``C``
    at the evaluated parameters, the groups' log-likelihoods ``logm`` and the
    ``summary`` the client sums. Never changed: the next evaluation makes a
    new state, so that a client may start again from an earlier one."""

    lik: SlopeLikelihood
    u: np.ndarray
    C: np.ndarray | None
    logm: np.ndarray
    summary: tuple


def slope_evaluate(part, zero, spec, n_quad, diagonal, seed, x, grad):
    """One partition's :meth:`SlopeLikelihood.evaluate` at ``x``, its modes
    started from ``seed``: a :class:`SlopeState` (of this rule, or of another
    whose rows it reuses), an array of this partition's modes, or None (0).
    Returns the new :class:`SlopeState`; its summary is ``(value, gradient,
    sum of the groups' score outer products, number of groups)``, the last
    two None without ``grad``."""
    if isinstance(seed, SlopeState):
        old = seed.lik
        if old.K == n_quad and old.diagonal == diagonal:
            lik = copy.copy(old)  # the rule and the node pass's chunks, shared
        else:
            lik = SlopeLikelihood(old.data, n_quad, diagonal)
        lik.u = seed.u
    else:
        lik = SlopeLikelihood(spec.data_of(part, zero), n_quad, diagonal)
        if seed is not None:
            lik.u = np.asarray(seed, dtype=float)
    f, g, logm, S = lik.evaluate(x, grad)
    outer = S.T @ S if grad else None
    summary = (f, g, outer, lik.data.n_groups)
    return SlopeState(lik, lik.u, getattr(lik, "C", None), logm, summary)


def state_summary(state):
    return state.summary


def state_field(state, name):
    return getattr(state, name)


# -- on the client -----------------------------------------------------------------


class Kept:
    """A per-group array (``"u"``, ``"C"`` or ``"logm"``) that stays in the
    partitions' :class:`SlopeState`\\ s. Immutable, so ``copy`` is itself;
    ``np.asarray`` gathers it in global group order."""

    def __init__(self, data, states, name):
        self.data, self.states, self.name = data, states, name

    def copy(self):
        return self

    def __array__(self, dtype=None, copy=None):
        data = self.data
        n = len(self.states)
        pieces = data.runner.map(state_field, self.states, [self.name] * n)
        out = np.empty((data.n_groups,) + pieces[0].shape[1:])
        for ids, piece in zip(data.ids, pieces):
            out[ids] = piece
        return out if dtype is None else out.astype(dtype)


class DaskSlopeData:
    """The rows of a random-slope fit, in partitions of whole groups: what
    :func:`~skre._core.slopes.fit_slopes` and
    :func:`~skre._slopes_fit.fit_random_slopes` read of
    :class:`~skre._core.slopes.SlopeData` (``n_groups``, ``q``, the number
    of covariates as ``X.shape[1]``, and :meth:`likelihood`)."""

    def __init__(self, runner, parts, ids, zero, spec, n_groups):
        self.runner, self.parts, self.ids = runner, parts, ids
        self.zero, self.spec, self.n_groups = zero, spec, n_groups
        self.q = 1 + len(spec.slopes)
        self.X = np.empty((0, len(zero)))  # (its shape: the covariates)

    def likelihood(self, n_quad, diagonal=False, penalty=None):
        return DaskSlopeLikelihood(self, n_quad, diagonal, penalty)


class DaskSlopeLikelihood(SlopeLikelihood):
    """:class:`~skre._core.slopes.SlopeLikelihood` over the partitions.

    The prior (``penalty``) is added on the client, by the inherited
    :meth:`evaluate`; :meth:`_evaluate` is one map-reduce. ``u`` and ``C``
    are :class:`Kept` handles to the partitions' states after the latest
    evaluation (``u`` may also be set to a handle of another rule's
    likelihood, or to None: modes from 0). The groups' scores come back as
    :class:`~skre._core.slopes.ScoreSums`, their log-likelihoods as a handle.
    """

    def __init__(self, data, n_quad, diagonal=False, penalty=None):
        self.data, self.diagonal, self.penalty = data, diagonal, penalty
        self.K = n_quad if isinstance(n_quad, str) else int(n_quad)
        self.u = self.C = None
        self.n_eval = 0

    def _seeds(self):
        u, data = self.u, self.data
        if u is None:
            return [None] * len(data.parts)
        if isinstance(u, Kept):
            return list(u.states)
        return [np.asarray(u)[ids] for ids in data.ids]

    def _evaluate(self, x, grad=True):
        self.n_eval += 1
        data = self.data
        n = len(data.parts)
        x = np.asarray(x, dtype=float)
        states, summaries = data.runner.map_keep(
            slope_evaluate,
            state_summary,
            data.parts,
            [data.zero] * n,
            [data.spec] * n,
            [self.K] * n,
            [self.diagonal] * n,
            self._seeds(),
            [x] * n,
            [grad] * n,
        )
        self.u = Kept(data, states, "u")
        self.C = Kept(data, states, "C")
        logm = Kept(data, states, "logm")
        f = float(sum(s[0] for s in summaries))
        if not grad:
            return f, None, logm, None
        g = sum(s[1] for s in summaries)
        outer = sum(s[2] for s in summaries)
        return f, g, logm, ScoreSums(outer, g, int(sum(s[3] for s in summaries)))


def fit_slopes_dask(est, engine, feature_names):
    """``MultilevelBinomial._fit`` with ``random_slopes`` after
    ``build_design``: the same :class:`~skre._slopes_fit.SlopesFit` as in
    memory, fit on the partitions (or in memory, for data that the engine
    gathered to fit locally). The design keeps the gathered rows for the
    methods after the fit; data above ``skre.gather-rows`` are refused."""
    design = engine.design
    if design.degenerate is not None:
        raise degenerate_slopes_error(est, design.degenerate)
    if engine.rowless:
        raise ValueError(
            f"{type(est).__name__} with random_slopes on Dask data keeps the "
            "training rows on the client for the methods after the fit "
            "(summary, confint, group_estimates, predictions of seen groups); "
            f"these data have {engine.plan.n_rows:,} rows after collapsing, "
            "more than the 'skre.gather-rows' limit. Raise it with "
            "dask.config.set({'skre.gather-rows': N})."
        )
    slopes = slope_indices(est, design, feature_names)
    _, _, _, source = engine.multilevel_source()
    data = None
    if hasattr(engine, "plan"):  # (a LocalEngine fits the gathered rows)
        plan = engine.plan
        spec = SlopeSpec(slopes, design.z_mean, design.z_scale)
        data = DaskSlopeData(
            engine.runner, plan.parts, plan.ids, design.aliased, spec, plan.n_groups
        )
    return slopes_fit(est, design, slopes, source, data)
