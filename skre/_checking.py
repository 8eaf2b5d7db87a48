"""Model checking: simulation from a fit, residuals, the parametric bootstrap.

Everything here reads a fitted estimator's result (``_fit_result``) and its
public parameters; the numerics per kind of fit (the distribution of each
row's logit, draws of group effects) live on the result classes.
"""

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logsumexp, xlogy

from ._core.mixture_cdf import logit_normal_binom_logcdf
from ._intervals import check_level
from ._labels import group_column_name
from ._simulation_args import check_count, check_random_state_seed, whole_trials
from ._validation import _show, dense_array, factorize, prepare, split_X
from .exceptions import warn


def group_keys(est, labels):
    """``(codes, keys)``: the fit's codes of the rows' groups (negative for
    groups not seen in fit: -1, or for nested groups ``-2 - o``, a new inner
    group of the seen outer group ``o``) and keys that number every distinct
    group of the rows, unseen ones after the seen ones."""
    if labels is None:
        codes = np.zeros(0, dtype=np.intp)
        return codes, codes
    fit = est._fit_result
    codes = fit.codes_for(labels, type(est).__name__)
    keys = codes.copy()
    new = codes < 0
    if new.any():
        keys[new] = len(fit.design.groups) + factorize(labels[new])[0]
    return codes, keys


def training_rows(design):
    """The collapsed training rows as the user's covariates: ``(codes, Z)``
    (with the offsets as Z's last column where the fit had an offset, as new
    rows carry them)."""
    data = design.data
    Z = data.Z * design.z_scale + design.z_mean if data.Z.shape[1] else data.Z
    if getattr(data, "offset", None) is not None:
        Z = np.column_stack([Z, data.offset])
    return data.codes, Z


# -- simulate --------------------------------------------------------------------------
def simulate(est, n_sims, random_state, new_groups, X=None, trials=None):
    """Successes per row, (n_sims, n_rows); see the estimators' ``simulate``."""
    n_sims = check_count("n_sims", n_sims)
    rng = np.random.default_rng(check_random_state_seed(random_state))
    fit = est._fit_result
    design = fit.design
    options = _options(est)
    if X is None:
        if trials is not None:
            raise ValueError("trials is for new rows X; the training rows keep theirs.")
        codes, Z = training_rows(design)
        keys = codes
        row = design.row_index
        n = np.ones(len(row)) if design.row_trials is None else design.row_trials
        if not np.all(np.asarray(n) == np.round(n)):
            raise ValueError(
                "simulate needs whole numbers of trials per row; this fit has "
                "fractional sample_weight. Pass rows X with trials to simulate."
            )
    else:
        labels, Z, _ = split_X(est, X, reset=False)
        codes, keys = group_keys(est, labels)
        if labels is None:
            codes = keys = np.zeros(len(Z), dtype=np.intp)
        row = np.arange(len(Z))
        n = _trials(trials, len(Z))
        if getattr(fit, "outer_groups", None) is not None:  # nested groups
            options["labels"] = labels
    eta = fit.draw_logits(keys, codes, Z, rng, n_sims, bool(new_groups), **options)
    p = expit(eta)
    out = np.zeros((n_sims, len(row)), dtype=np.int64)
    has = row >= 0
    n_has = np.broadcast_to(np.asarray(n, dtype=np.int64), row.shape)[has]
    out[:, has] = rng.binomial(n_has, p[:, row[has]])
    return out


def _trials(trials, n_rows):
    if trials is None:
        return np.ones(n_rows, dtype=np.int64)
    t = dense_array(trials, "trials")
    t = np.broadcast_to(t, (n_rows,)) if t.ndim == 0 else t
    if t.shape != (n_rows,):
        raise ValueError(f"trials has {len(t)} values but X has {n_rows} rows.")
    if t.dtype.kind not in "iuf" or np.any(t < 0) or np.any(t != np.round(t)):
        raise ValueError("trials must be non-negative whole numbers, one per row of X.")
    return t.astype(np.int64)


def _options(est):
    unknown = getattr(est, "unknown_group", None)
    return {} if unknown is None else {"unknown_group": unknown}


# -- residuals -------------------------------------------------------------------------
def residuals(est, X, y, kind, random_state, conditional=False):
    """See the estimators' ``residuals``."""
    kinds = ("quantile", "pearson", "deviance")
    if kind not in kinds:
        raise ValueError(f"kind must be one of {list(kinds)}; got {_show(kind)}.")
    rows = prepare(est, X, y, None, reset=False)
    fit = est._fit_result
    codes, _ = group_keys(est, rows.labels)
    if rows.labels is None:
        codes = np.zeros(len(rows.Z), dtype=np.intp)
    m, n = rows.successes, rows.trials
    if kind == "quantile":
        rng = np.random.default_rng(check_random_state_seed(random_state))
        lower, upper = _quantile_bounds(est, fit, codes, rows.Z, m, n, conditional)
        u = lower + rng.random(len(m)) * (upper - lower)
        tiny = np.finfo(float).tiny
        return stats.norm.ppf(np.clip(u, tiny, 1.0 - np.finfo(float).epsneg))
    lp0, lp1 = est._result_log_proba(codes, rows.Z)
    p, q = np.exp(lp1), np.exp(lp0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "pearson":
            r = (m - n * p) / np.sqrt(n * p * q)
            return np.where(m == n * p, 0.0, r)
        # m log(m / (n p)) + (n - m) log((n - m) / (n q)), each term 0 when its
        # count is 0 (0 log 0 = 0), also where the fit puts p (or q) at exactly
        # 0: a 0/n group under no pooling is its own saturated model
        dev = 2.0 * (
            np.where(m > 0, xlogy(m, m / n) - m * lp1, 0.0)
            + np.where(n - m > 0, xlogy(n - m, (n - m) / n) - (n - m) * lp0, 0.0)
        )
        return np.sign(m - n * p) * np.sqrt(np.maximum(dev, 0.0))


def _quantile_bounds(est, fit, codes, Z, m, n, conditional):
    """``(P(Y < m), P(Y <= m))`` for each row, its group effect integrated out.

    Rows whose logit is normal (a group drawn from the population, N(0, tau^2)
    or no pooling's group prior) or a point (the pooled models, seen groups
    under no pooling) get the exact population CDF of
    :func:`~skre._core.mixture_cdf.logit_normal_binom_logcdf`, accurate
    however many trials the row has; with ``conditional`` the seen groups of
    the multilevel model integrate over their conditional distribution (the
    fit's adaptive rule, centred on it).
    """
    lower, upper = np.empty(len(m)), np.empty(len(m))
    # rows whose group effect the training data inform: a seen group (code
    # >= 0) or, for nested groups, a new inner group of a seen outer group
    # (code -2 - o); -1 is a group drawn from the population
    seen = (
        codes != -1 if conditional and hasattr(est, "tau_") else np.zeros_like(m, bool)
    )
    if seen.any():
        eta, log_w = fit.logit_rule(codes[seen], Z[seen], **_options(est))
        upper[seen] = _mixture_cdf(m[seen], n[seen], eta, log_w)
        lower[seen] = _mixture_cdf(m[seen] - 1, n[seen], eta, log_w)
    rest = ~seen
    if rest.any():
        parts = _population_normals(est, fit, codes[rest], Z[rest])
        for k, out in ((m[rest], upper), (m[rest] - 1, lower)):
            terms = [
                np.log(weight) + logit_normal_binom_logcdf(k, n[rest], loc, scale)
                for weight, loc, scale in parts
            ]
            out[rest] = np.exp(np.minimum(logsumexp(terms, axis=0), 0.0))
    return lower, upper


def _population_normals(est, fit, codes, Z):
    """Each row's logit over the population as a mixture of normals:
    ``[(weight, loc, scale)]``, a scale of 0 for a point.

    Multilevel: ``N(b + x'beta, tau^2)`` (one component for maximum
    likelihood, one per node of the hyperparameter grid for
    ``method="bayes"``). No pooling: each seen group at its own logit, an
    unseen one at the pooled logit or, with a group prior, over the prior.
    """
    design = fit.design
    own = getattr(fit, "population_normals", None)
    if own is not None:  # random slopes: the normal of x'beta + r'b
        return own(Z)
    params = getattr(fit, "params", None)
    if hasattr(est, "tau_") and params is not None:
        grid = getattr(fit, "node_posteriors", None)
        nodes = [(1.0, params)] if grid is None else [(w, p) for w, p, _ in grid]
        total = sum(w for w, _ in nodes)
        return [
            (
                w / total,
                design.linear_predictor(Z, p[-2], p[:-2]),
                np.full(len(Z), p[-1]),
            )
            for w, p in nodes
        ]
    loc = fit.point_logit(codes, Z, **_options(est))
    scale = np.zeros(len(Z))
    prior = getattr(fit, "alpha_prior", None)
    new = codes < 0
    if prior is not None and new.any():
        mean, precision = prior
        loc[new] = mean + design.linear_predictor(Z[new], 0.0, fit.beta)
        scale[new] = 1.0 / np.sqrt(precision)
    return [(1.0, loc, scale)]


def _mixture_cdf(k, n, eta, log_w):
    """``P(Y <= k)`` for ``Y ~ Binomial(n, expit(eta))`` mixed over the rule."""
    with np.errstate(divide="ignore"):
        log_cdf = stats.binom.logcdf(k[:, None], n[:, None], expit(eta))
    return np.exp(np.minimum(logsumexp(log_w + log_cdf, axis=1), 0.0))


# -- the parametric bootstrap ----------------------------------------------------------
def refit_data(est, successes):
    """The training rows as ``(X, y)`` with ``successes`` in place of the
    observed ones, and an unfitted copy of ``est`` that reads them."""
    from sklearn.base import clone

    design = est._fit_result.design
    codes, Z = training_rows(design)
    columns = {}
    copy = clone(est)
    if isinstance(est.group, list):  # nested: the outer and inner columns
        names = [str(n) for n in est._fit_result.names]
        pairs = design.groups[codes]
        for k, column in enumerate(names):
            columns[column] = [pair[k] for pair in pairs]
        copy.set_params(group=names)
    elif est.group is not None:
        name = str(group_column_name(est))
        columns[name] = design.groups[codes]
        copy.set_params(group=name)
    for j, c in enumerate(design.covariates):
        columns[f"{c}"] = Z[:, j]
    if design.offset is not None:
        columns[design.offset] = Z[:, -1]
    X = pd.DataFrame(columns)
    if design.offset is not None:
        copy.set_params(offset=design.offset)
    y = np.column_stack([successes, design.data.trials])
    return copy, X, y


def replicate_fits(est, trials, n_boot, random_state, n_jobs, verbose):
    """Refit ``est`` to ``n_boot`` data sets simulated from it (successes out
    of ``trials`` for each training row) and read the parameters of
    :func:`parameter_names` off each; returns ``(results, n_failed,
    n_unconverged)`` in replicate order, None for a failed refit. Each
    replicate has its own seed from ``random_state``, so the answer does not
    depend on ``n_jobs``.

    The worker is a module-level function of plain arguments (the estimator,
    a seed, an array): joblib's processes receive it by reference. A closure
    would be pickled by value with the globals it reads, which can break in
    the workers (issue 22: BrokenProcessPool).
    """
    from joblib import Parallel, delayed

    seeds = check_random_state_seed(random_state).spawn(n_boot)
    results = Parallel(n_jobs=n_jobs, verbose=10 if verbose else 0)(
        delayed(_one_replicate)(est, seed, trials) for seed in seeds
    )
    failed = sum(r is None for r in results)
    unconverged = sum(r is not None and not r[1] for r in results)
    return [None if r is None else r[0] for r in results], failed, unconverged


def _one_replicate(est, seed, trials):
    """One bootstrap refit: ``(parameter values, converged)``, None if it failed."""
    rng = np.random.default_rng(seed)
    copy, X, y = refit_data(est, _simulated_successes(est, trials, rng))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            copy.fit(X, y)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            return None
    return parameter_values(copy), bool(copy.converged_)


def _simulated_successes(est, trials, rng):
    """Successes of the training rows drawn from the fit: for the multilevel
    model with new group effects from N(0, tau^2)."""
    fit = est._fit_result
    codes, Z = training_rows(fit.design)
    new_groups = hasattr(est, "tau_")
    eta = fit.draw_logits(
        codes, codes, Z, rng, 1, new_groups=new_groups, **_options(est)
    )
    return rng.binomial(trials, expit(eta[0]))


def bootstrap_confint(est, level, n_boot, random_state, n_jobs):
    """Parametric-bootstrap percentile intervals; see ``confint``."""
    check_level(level)
    n_boot = check_count("n_boot", n_boot, low=2)
    design = est._fit_result.design
    trials = whole_trials(design, "confint(method='bootstrap')")
    names = parameter_names(est)
    results, failed, unconverged = replicate_fits(
        est, trials, n_boot, random_state, n_jobs, getattr(est, "verbose", 0)
    )
    values = np.array([r for r in results if r is not None], dtype=float)
    a = (1 - level) / 2
    if len(values) == 0:
        bounds = np.full((len(names), 2), np.nan)
    else:
        bounds = np.quantile(values, [a, 1 - a], axis=0).T
    frame = pd.DataFrame(
        bounds, index=names, columns=[f"{100 * a:g}%", f"{100 * (1 - a):g}%"]
    )
    aliased = np.isin(names, [str(c) for c in design.covariates[design.aliased]])
    frame.loc[aliased] = np.nan
    frame.attrs.update(n_boot=n_boot, n_failed=failed, n_unconverged=unconverged)
    if failed or unconverged:
        warn(
            f"{type(est).__name__}: {failed} of {n_boot} bootstrap refits failed "
            f"and {unconverged} did not converge; the intervals use the "
            f"{n_boot - failed} that did not fail (frame.attrs has the counts).",
            UserWarning,
        )
    return frame


def parameter_names(est):
    """Row names of confint: the parameters the bootstrap reads off each refit."""
    covariates = [str(c) for c in est.covariates_]
    if hasattr(est, "group_intercepts_"):  # no pooling: the shared slopes
        return covariates
    random_rows = getattr(est._fit_result, "random_rows", None)
    if random_rows is not None:  # random slopes: each SD and correlation
        return ["intercept", *covariates, *random_rows()]
    return ["intercept", *covariates, *(["tau"] if hasattr(est, "tau_") else [])]


def parameter_values(est):
    """The values of :func:`parameter_names` on a fitted estimator."""
    if hasattr(est, "group_intercepts_"):
        return list(est.coef_)
    random_values = getattr(est._fit_result, "random_values", None)
    if random_values is not None:
        return [est.intercept_, *est.coef_, *random_values()]
    tau = [est.tau_] if hasattr(est, "tau_") else []
    return [est.intercept_, *est.coef_, *tau]
