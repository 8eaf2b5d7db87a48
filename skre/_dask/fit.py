"""Fitting on partitions that each hold whole groups.

:class:`DaskSource` offers what :func:`skre._core.multilevel.fit_multilevel` asks
of its data (the methods of :class:`~skre._core.multilevel.InMemory`), each as
one map-reduce over the partitions, so the multilevel optimizer is the very
code that runs in memory. :func:`pooled_newton` and :func:`grouped_newton` are
``fit_grouped_logistic``'s Newton iterations for one shared intercept and for
one intercept per group (kept on the workers, next to their rows). The
``fit_*`` functions mirror the estimators' ``_fit`` hooks from the design on,
with an engine that runs either in memory or on the partitions.
"""

from types import SimpleNamespace

import numpy as np
from scipy.special import logit
from sklearn.exceptions import ConvergenceWarning

from .._bayes import check_bayes_data, fit_bayes
from .._core.accuracy import Selection, criterion_after
from .._core.glm import GLMResult, _inverse_information, fit_grouped_logistic
from .._core.grouping import pooled_rows
from .._core.multilevel import InMemory, fit_multilevel
from .._core.quadrature import Posterior
from .._core.separation import MAX_ROWS
from .._design import aliased_columns
from .._fit_result import degenerate_fit, no_pooling_fit_result, pooled_fit_result
from .._fit_warnings import warn_boundary, warn_rule, warn_unconverged
from .._multilevel_fit import MultilevelFit, likelihood_units
from ..exceptions import warn
from ..priors import group_prior_params, std_normal_prior
from . import parts as parts_mod
from .results import rowless


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(_add(x, y) for x, y in zip(a, b))
    return a + b


def _total(values):
    out = values[0]
    for v in values[1:]:
        out = _add(out, v)
    return out


# -- the multilevel source -----------------------------------------------------------


class DaskSource:
    """Whole groups in partitions on a cluster, as :func:`fit_multilevel` sees them.

    Every method maps the same-named method of an in-memory object over the
    partitions and sums (the likelihood and its pieces are sums over groups);
    only parameters and per-partition sums travel.
    """

    def __init__(self, runner, parts, ids, zero, n_rows, n_groups, totals):
        self.runner, self.parts, self.ids, self.zero = runner, parts, ids, zero
        self._n_rows, self._n_groups, self.totals = n_rows, n_groups, totals

    @property
    def n_covariates(self):
        return len(self.zero)

    @property
    def n_groups(self):
        return float(self._n_groups)

    @property
    def n_rows(self):
        return self._n_rows

    def max_group_trials(self):
        """The most trials any group has (whole groups live in one partition)."""
        sums = self.runner.map(parts_mod.part_group_sums, self.parts)
        return float(max((n.max() for _, _, n in sums if len(n)), default=0.0))

    @property
    def group_weight(self):
        return np.ones(self._n_groups)

    def map_sum(self, func, *args):
        """``func(part, zero, *args)`` on every partition, summed."""
        n = len(self.parts)
        columns = [[a] * n for a in (self.zero, *args)]
        return _total(self.runner.map(func, self.parts, *columns))

    def pooled(self, covariance=False, **options):
        return pooled_newton(
            self.runner,
            self.parts,
            self.zero,
            self.totals,
            covariance=covariance,
            **options,
        )

    def likelihood(self, n_quad):
        return DaskLikelihood(self, n_quad)

    def select_nodes(
        self, params, target, counts=None, top=None, warm=None, store=None, fitted=False
    ):
        """Each group's node count, as in memory (see
        :func:`~skre._core.accuracy.select_nodes`): each partition walks its
        own groups against the global target. For a fit (``fitted``) every
        partition first compares its groups once; the total decides, as in
        memory, whether and how they move on (a second map: the partitions
        keep no state). ``warm`` and ``store`` are for the in-memory source."""
        criterion = None
        if fitted:
            first = self._select(params, target, counts, top, "first")
            criterion = criterion_after(
                target, first.e_loglik, first.e_score, self.n_groups
            )
            if criterion is None:
                return first
        return self._select(params, target, counts, top, criterion)

    def _select(self, params, target, counts, top, criterion):
        n = len(self.parts)
        starts = [None] * n if counts is None else [counts[ids] for ids in self.ids]
        pieces = self.runner.map(
            parts_mod.part_select,
            self.parts,
            [self.zero] * n,
            [params] * n,
            starts,
            [target] * n,
            [top] * n,
            [criterion] * n,
        )
        counts = np.empty(self._n_groups, dtype=np.intp)
        for ids, sel in pieces:
            counts[ids] = sel.counts
        sels = [sel for _, sel in pieces]
        return Selection(
            counts,
            np.sort(np.concatenate([ids[sel.unresolved] for ids, sel in pieces])),
            float(sum(sel.d_loglik for sel in sels)),
            _total([sel.d_score for sel in sels]),
            float(sum(sel.e_loglik for sel in sels)),
            _total([sel.e_score for sel in sels]),
            any(sel.raised for sel in sels),
        )

    def compare_rules(self, params, n_quad, reference, warm=None):
        """A fixed rule against ``reference`` nodes, summed over partitions."""
        return self.map_sum(parts_mod.part_compare, params, n_quad, reference)

    def tau2_score(self, beta, b):
        return self.map_sum(parts_mod.call_source, "tau2_score", (beta, b))

    def information(self, beta, b, tau):
        return self.map_sum(parts_mod.call_source, "information", (beta, b, tau))


class DaskLikelihood:
    """``MarginalLikelihood`` over the partitions: each method one map-reduce.

    ``n_quad`` is one node count, or one per group (``n_quad="auto"``), which
    each partition receives for its own groups.
    """

    def __init__(self, source, n_quad):
        self.source, self.n_quad = source, n_quad
        n = len(source.parts)
        if np.ndim(n_quad) == 0:
            self.per_part = [n_quad] * n
        else:
            self.per_part = [np.asarray(n_quad)[ids] for ids in source.ids]

    def _map(self, name, *args):
        src = self.source
        n = len(src.parts)
        return src.runner.map(
            parts_mod.call_likelihood,
            src.parts,
            [src.zero] * n,
            self.per_part,
            [name] * n,
            [args] * n,
        )

    def _call(self, name, *args):
        return _total(self._map(name, *args))

    def value(self, params):
        return self._call("value", params)

    want_outer = want_hessian = False
    outer = hessian = None

    def value_and_grad(self, params):
        """The value and gradient; with ``want_outer`` also the sum of the
        outer products of the groups' scores in ``outer`` (see
        :func:`skre._core.multilevel._bhhh`)."""
        if not self.want_outer:
            return self._call("value_and_grad", params)
        value, grad, self.outer = self._call("value_grad_outer", params)
        return value, grad

    def values(self, param_rows, max_elements=4_000_000):
        return self._call("values", param_rows, max_elements)

    def posterior(self, params):
        """Every group's conditional distribution, in global group order
        (with one count per group, padded to the largest as in memory)."""
        pieces = self._map("posterior", params)
        G = self.source._n_groups
        K = max(post.nodes.shape[1] for _, post in pieces)
        out = Posterior(
            np.empty(G),
            np.empty(G),
            np.zeros((G, K)),
            np.full((G, K), -np.inf),
            np.empty(G),
        )
        for ids, post in pieces:
            k = post.nodes.shape[1]
            out.mode[ids], out.sd[ids] = post.mode, post.sd
            out.log_marginal[ids] = post.log_marginal
            out.nodes[ids, :k], out.log_weights[ids, :k] = post.nodes, post.log_weights
        return out


# -- Newton's method for the logistic GLMs, as map-reduce ---------------------------


def _prior_terms(coef_prior, p):
    if coef_prior is None:
        return np.zeros(p), np.zeros(p)
    return coef_prior


def pooled_newton(
    runner,
    parts,
    zero,
    totals,
    *,
    max_iter=100,
    tol=1e-9,
    covariance=True,
    offset=0.0,
    alpha_prior=None,
    coef_prior=None,
):
    """:func:`fit_grouped_logistic` on all rows as one group, the same iterations.

    The intercept and slopes stay on the client; every evaluation sends them
    out and brings back the log-likelihood and the Newton pieces at them (a
    scalar, p-vectors and a (p, p) matrix per partition). The value at a trial
    point and the pieces for the next direction come in the same pass.
    """
    if np.any(offset != 0) or alpha_prior is not None:
        raise NotImplementedError("offsets and intercept priors are in-memory only")
    p = len(zero)
    b_mean, b_prec = _prior_terms(coef_prior, p)
    n = len(parts)

    def evaluate(a, coef):
        got = runner.map(
            parts_mod.pooled_pieces, parts, [zero] * n, [a] * n, [coef] * n
        )
        return _total(got)

    M, N = totals
    with np.errstate(divide="ignore"):
        a = -np.inf if M <= 0 else np.inf if M >= N else float(logit(M / N))
    coef = np.zeros(p)
    pieces = evaluate(a, coef)
    ll = pieces[0]
    obj = ll - 0.5 * np.sum(b_prec * (coef - b_mean) ** 2)
    iterate = p > 0
    n_iter, converged, message = 0, not iterate, "closed form"
    for n_iter in range(1, max_iter + 1 if iterate else 1):  # noqa: B007
        _, R, W, WZ, grad, ZWZ = pieces
        W_safe = W if np.isfinite(a) and W > 0 else np.inf
        schur = ZWZ + np.diag(b_prec) - np.outer(WZ / W_safe, WZ)
        rhs = grad - b_prec * (coef - b_mean) - WZ * (R / W_safe)
        d_coef = np.linalg.lstsq(schur, rhs, rcond=None)[0]
        d_a = (R - WZ @ d_coef) / W_safe if np.isfinite(W_safe) else 0.0
        t = 1.0
        for _ in range(60):
            new_a, new_coef = a + t * d_a, coef + t * d_coef
            new_pieces = evaluate(new_a, new_coef)
            new_obj = new_pieces[0] - 0.5 * np.sum(b_prec * (new_coef - b_mean) ** 2)
            if new_obj >= obj - 1e-12 * abs(obj):
                break
            t *= 0.5
        else:
            message = "line search failed to increase the likelihood"
            break
        a, coef, pieces, obj = new_a, new_coef, new_pieces, new_obj
        if t * max(np.max(np.abs(d_coef), initial=0.0), abs(d_a)) <= tol:
            converged, message = True, "converged"
            break
    else:
        if p:
            message = f"reached max_iter={max_iter}"
    ll = pieces[0]
    var = coef_cov = cross = None
    if covariance:  # _covariance of one group, from the pieces at the result
        _, _, W, WZ, _, ZWZ = pieces
        keep = W > 0
        ratio = WZ / W if keep else np.zeros_like(WZ)
        schur = ZWZ + np.diag(b_prec) - (np.outer(ratio, WZ) if keep else 0.0)
        coef_cov = _inverse_information(schur) if p else np.zeros((0, 0))
        cross = -(ratio @ coef_cov)[None, :]
        with np.errstate(divide="ignore"):
            var = np.array([1.0 / W + ratio @ coef_cov @ ratio if keep else np.nan])
    return GLMResult(
        np.array([a]), coef, ll, var, coef_cov, cross, n_iter, converged, message
    )


def grouped_newton(runner, parts, zero, n_groups, *, max_iter=100, alpha_prior=None):
    """:func:`fit_grouped_logistic` with one intercept per group (no pooling).

    Each partition keeps its groups' intercepts and Newton pieces (a
    :class:`~skre._dask.parts.GroupState` on the worker); a direction is the
    (p, p) Schur complement and right-hand side summed over partitions, solved
    on the client, and each partition then moves its own intercepts.
    """
    p = len(zero)
    prior = alpha_prior if alpha_prior is not None else (0.0, 0.0)
    tol = 1e-9
    n = len(parts)
    coef = np.zeros(p)
    states, summaries = runner.map_keep(
        parts_mod.grouped_start,
        parts_mod.summary_of,
        parts,
        [zero] * n,
        [coef] * n,
        [prior] * n,
    )

    def combine(summaries):
        ll, pen, schur, rhs, top = zip(*summaries)
        return sum(ll), sum(pen), _total(schur), _total(rhs), max(top)

    ll, pen, schur, rhs, _ = combine(summaries)
    obj = ll - pen
    iterate = p > 0 or prior[1] > 0
    n_iter, converged, message = 0, not iterate, "closed form"
    for n_iter in range(1, max_iter + 1 if iterate else 1):  # noqa: B007
        d_coef = np.linalg.lstsq(schur, rhs, rcond=None)[0]
        t = 1.0
        for _ in range(60):
            new_coef = coef + t * d_coef
            new_states, summaries = runner.map_keep(
                parts_mod.grouped_trial,
                parts_mod.summary_of,
                parts,
                [zero] * n,
                states,
                [d_coef] * n,
                [t] * n,
                [new_coef] * n,
                [prior] * n,
            )
            new_ll, new_pen, new_schur, new_rhs, d_alpha_max = combine(summaries)
            if new_ll - new_pen >= obj - 1e-12 * abs(obj):
                break
            t *= 0.5
        else:
            message = "line search failed to increase the likelihood"
            break
        states, coef, ll, obj = new_states, new_coef, new_ll, new_ll - new_pen
        schur, rhs = new_schur, new_rhs
        if t * max(np.max(np.abs(d_coef), initial=0.0), d_alpha_max) <= tol:
            converged, message = True, "converged"
            break
    else:
        if p:
            message = f"reached max_iter={max_iter}"
    a_prec = prior[1]
    schur_cov = _total(
        runner.map(
            parts_mod.grouped_cov_pieces,
            parts,
            [zero] * n,
            states,
            [coef] * n,
            [a_prec] * n,
        )
    )
    coef_cov = _inverse_information(schur_cov) if p else np.zeros((0, 0))
    alpha, var = np.empty(n_groups), np.empty(n_groups)
    for ids, a, v in runner.map(
        parts_mod.grouped_result,
        parts,
        [zero] * n,
        states,
        [coef] * n,
        [a_prec] * n,
        [coef_cov] * n,
    ):
        alpha[ids], var[ids] = a, v
    return GLMResult(alpha, coef, ll, var, coef_cov, None, n_iter, converged, message)


# -- engines: where the fit runs ----------------------------------------------------


class LocalEngine:
    """The gathered rows, fit in memory by the in-memory code."""

    rowless = False

    def __init__(self, design, Z_unaliased):
        self.design, self.Z_unaliased = design, Z_unaliased

    def pooled(self, zero, **options):
        rows = pooled_rows(self.design.data)
        rows.Z = np.where(zero, 0.0, self.Z_unaliased)
        return fit_grouped_logistic(rows, **options)

    def grouped(self, zero, **options):
        return fit_grouped_logistic(self.design.data, **options)

    def multilevel_source(self):
        units, weight, unit = likelihood_units(self.design.data)
        return units, weight, unit, InMemory(units, weight)

    def warn_if_separated(self, est, intercept, beta, alpha=None):
        design = self.design
        data = design.data
        if alpha is None:
            est._warn_if_separated(design, intercept + data.Z @ beta)
            return
        with np.errstate(invalid="ignore"):
            eta = alpha[data.codes] + data.Z @ beta
        est._warn_if_separated(design, eta, data.codes, data.n_groups)

    def finish(self, fit):
        return fit


class DaskEngine(LocalEngine):
    """Partitions on the cluster; the design holds the gathered rows, or only
    group-level summaries when ``rowless``."""

    def __init__(self, runner, plan, design, Z_unaliased, rowless_):
        super().__init__(design, Z_unaliased)
        self.runner, self.plan, self.rowless = runner, plan, rowless_

    def _n(self):
        return len(self.plan.parts)

    def pooled(self, zero, **options):
        plan = self.plan
        return pooled_newton(self.runner, plan.parts, zero, plan.totals, **options)

    def grouped(self, zero, **options):
        plan = self.plan
        return grouped_newton(self.runner, plan.parts, zero, plan.n_groups, **options)

    def multilevel_source(self):
        plan, design = self.plan, self.design
        G = plan.n_groups
        source = DaskSource(
            self.runner,
            plan.parts,
            plan.ids,
            design.aliased,
            plan.n_rows,
            G,
            plan.totals,
        )
        return design.data, np.ones(G), np.arange(G), source

    def warn_if_separated(self, est, intercept, beta, alpha=None):
        if not self.rowless:
            return super().warn_if_separated(est, intercept, beta, alpha)
        zero = self.design.aliased
        n = self._n()
        if alpha is None:
            flags = self.runner.map(
                parts_mod.extreme_logits,
                self.plan.parts,
                [zero] * n,
                [intercept] * n,
                [beta] * n,
            )
        else:
            flags = self.runner.map(
                parts_mod.extreme_logits,
                self.plan.parts,
                [zero] * n,
                [0.0] * n,
                [beta] * n,
                [alpha[ids] for ids in self.plan.ids],
            )
        if any(flags):
            # the rows stay on the cluster: the in-memory warning for data too
            # large to run the separation check on (separates() says None
            # beyond MAX_ROWS rows; a zero-copy stand-in of that many rows)
            p = len(beta)
            data = SimpleNamespace(
                Z=np.broadcast_to(0.0, (MAX_ROWS + 1, p)), successes=None, trials=None
            )
            est._warn_if_separated(SimpleNamespace(data=data), np.array([31.0]))

    def finish(self, fit):
        return rowless(fit, self.plan.n_rows) if self.rowless else fit


# -- the estimators' fits from the design on ----------------------------------------


def fit_complete(est, engine):
    """``CompletePoolingBinomial._fit`` after ``build_design``."""
    design = engine.design
    if design.degenerate is not None:
        est._warn_degenerate(design.degenerate)
        return degenerate_fit(design, multilevel=False)
    res = engine.pooled(
        design.aliased,
        max_iter=est.max_iter,
        coef_prior=std_normal_prior(design, est.coef_prior),
    )
    warn_unconverged(est, res, "logistic regression")
    engine.warn_if_separated(est, res.intercepts[0], res.coef)
    return engine.finish(pooled_fit_result(design, res))


def fit_no_pooling(est, engine, pooled_aliased):
    """``NoPoolingBinomial._fit`` after ``build_design``."""
    design = engine.design
    alpha_prior = group_prior_params(est.group_prior)
    res = engine.grouped(design.aliased, max_iter=est.max_iter, alpha_prior=alpha_prior)
    warn_unconverged(est, res, "no-pooling fit")
    if len(design.covariates) and design.degenerate is None:
        engine.warn_if_separated(est, 0.0, res.coef, res.intercepts)
    pooled = engine.pooled(pooled_aliased, max_iter=est.max_iter)
    fit = no_pooling_fit_result(design, res, alpha_prior, pooled, pooled_aliased)
    return engine.finish(fit)


def pooled_aliased_of(data, Z_unaliased):
    """The covariates complete pooling cannot identify (no pooling's fallback)."""
    rows = pooled_rows(data)
    rows.Z = Z_unaliased
    return aliased_columns(rows, within_groups=False)


def fit_multilevel_dask(est, engine):
    """``MultilevelBinomial._fit`` after ``build_design``."""
    design = engine.design
    name = type(est).__name__
    bayes = est.method == "bayes"
    if bayes:
        check_bayes_data(design)
    if design.degenerate is not None:
        est._warn_degenerate(design.degenerate)
        return degenerate_fit(design, multilevel=True)
    if bayes and engine.rowless:
        raise ValueError(
            "method='bayes' on Dask data needs the training rows on the client; "
            f"these data have {engine.plan.n_rows:,} rows after collapsing, more "
            "than the 'skre.gather-rows' limit. Raise it with dask.config.set, or "
            "use method='ml'."
        )
    units, weight, unit, source = engine.multilevel_source()
    coef_prior = std_normal_prior(design, est.coef_prior)
    res = fit_multilevel(
        source,
        est.n_quad,
        max_iter=est.max_iter,
        gtol=est.tol,
        tau_prior=est.tau_prior,
        coef_prior=coef_prior,
        constant=design.constant,
    )
    fit = MultilevelFit.of(design, res, units, weight, unit, est.tau_prior, coef_prior)
    if isinstance(source, InMemory):
        fit.__dict__["model"] = res.model  # already built: seed the cache
    if bayes:
        return fit_bayes(fit, name, est.verbose)
    engine.warn_if_separated(est, res.b, res.beta)
    warn_rule(est, fit, res.check)
    warn_boundary(est, res)
    if not res.converged:
        warn(
            f"{name}: the optimizer did not converge "
            f"({res.message}); raise max_iter or check the covariates.",
            ConvergenceWarning,
        )
    return engine.finish(fit)
