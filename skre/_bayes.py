"""``MultilevelBinomial(method="bayes")``: the hyperparameters integrated over.

The posterior of ``x = (beta, b, log tau)`` (aliased slopes held at 0) comes
from :mod:`skre._core.hyperpost` (nested deterministic quadrature: log tau on
a 1-D grid, the rest by Gauss-Hermite rules given tau, each refined until the
posterior means and SDs are stable to 1e-5 SD, or a QuadratureWarning says
how far they are); the likelihood at its nodes from
:mod:`skre._core.bayes_grid`. Everything the fit reports is then averaged over
the grid: point estimates are posterior means, ``population_`` the posterior
predictive of a new group's theta, predictions and held-out scores mixtures
over the grid. The 95% limits of :meth:`BayesFit.posterior_summary` and the
densities of :meth:`BayesFit.posterior_density` come from the same values
(:mod:`skre._core.hypermarg`), without new likelihood evaluations.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.integrate import cumulative_simpson
from scipy.special import expit, logsumexp

from ._core.bayes_grid import BatchLikelihood
from ._core.binomial import kernel
from ._core.grouping import row_offset
from ._core.hypermarg import (
    CoefficientMarginal,
    coefficient_quantiles,
    quantile_changes,
    theta_density,
    theta_quantiles,
)
from ._core.hyperpost import (
    MAX_EVALS,
    HyperPosterior,
    first_rules_cost,
    fit_hyperposterior,
)
from ._core.multilevel import MAX_LOG_TAU, negative_loglik
from ._core.population import LogitNormalMixture
from ._inputs import _show
from ._multilevel_fit import MultilevelFit
from .exceptions import QuadratureWarning, warn

#: covariates (after aliased ones are dropped) the nested grid takes
MAX_COVARIATES = 2
#: the 95% limits are checked to this many posterior SDs (the check measures
#: the coarser rules, whose limits are far cruder than the reported ones)
QUANTILE_TOL = 1e-3


def check_bayes_size(n_covariates):
    """Refuse, before any grid is built, a dimension the grid cannot integrate."""
    dim = n_covariates + 2
    if n_covariates > MAX_COVARIATES:
        raise ValueError(
            f"method='bayes' integrates over the {dim} hyperparameters (intercept, "
            f"tau and {n_covariates} slopes): at every value of tau a product "
            f"rule over the other {dim - 1}, about {first_rules_cost(dim):,} "
            f"likelihood evaluations at least (at most {MAX_COVARIATES} "
            "covariates). Use method='ml' (with tau_prior and coef_prior it "
            "gives the posterior mode), or fewer covariates."
        )


def check_bayes_data(design):
    """Refuse data a Bayes fit cannot take: too many covariates for the grid,
    or no success (no failure) at all, where the posterior is improper."""
    check_bayes_size(len(design.covariates) - int(design.aliased.sum()))
    if design.degenerate is not None:
        zero = design.degenerate == 0
        raise ValueError(
            "method='bayes' cannot fit data in which every trial is a "
            f"{'failure' if zero else 'success'}: with the flat prior on the "
            "intercept the posterior is improper (the likelihood does not "
            f"vanish as the intercept goes to {'-' if zero else '+'}inf). Use "
            "method='ml', which reports the limit."
        )


class NegLogPosterior:
    """-(log L + log prior + log tau) over the free coordinates of
    x = (beta, b, log tau); the log tau term is the Jacobian of the density of
    log tau. Called with one x it gives the value and gradient; :meth:`batch`
    gives the values at many x at once (the quadrature grids)."""

    def __init__(self, fit, free):
        self.fit, self.free = fit, free
        self.nll = negative_loglik(fit.model, fit.log_prior)
        if np.ndim(fit.n_quad) == 0:  # the same numbers, faster
            start = fit.posterior.mode if fit.posterior is not None else None
            self.values = BatchLikelihood(
                fit.units, fit.unit_weight, fit.n_quad, start
            ).values
        else:
            self.values = fit.model.values

    def __call__(self, x):
        x_full = np.zeros(len(self.free))
        x_full[self.free] = x
        f, g = self.nll(x_full)
        g = g[self.free].copy()
        g[-1] -= 1.0
        return f - x[-1], g

    def batch(self, X):
        X = np.atleast_2d(X)
        full = np.zeros((len(X), len(self.free)))
        full[:, self.free] = X
        log_tau = full[:, -1]
        ok = log_tau <= MAX_LOG_TAU
        out = np.full(len(X), np.inf)
        if ok.any():
            param_rows = np.column_stack([full[ok, :-1], np.exp(log_tau[ok])])
            value = self.values(param_rows)
            value += _log_prior_batch(self.fit, full[ok])
            out[ok] = -value - log_tau[ok]
        return out


def _log_prior_batch(fit, X):
    """The log prior of MultilevelFit ``fit`` at rows of x = (beta, b, log tau)."""
    total = np.zeros(len(X))
    if fit.coef_prior is not None:
        mean, prec = fit.coef_prior
        total -= 0.5 * np.sum(prec * (X[:, :-2] - mean) ** 2, axis=1)
    if fit.tau_prior is not None:
        with np.errstate(divide="ignore"):
            total += np.asarray(fit.tau_prior.logpdf(np.exp(X[:, -1])), dtype=float)
    return total


@dataclass(frozen=True, eq=False)
class BayesFit(MultilevelFit):
    """Posterior means at ``params``, the grid in ``hyper`` (free coordinates)."""

    hyper: HyperPosterior
    free: np.ndarray  # which coordinates of (beta, b, log tau) are integrated

    _transient = ("model", "log_prior", "node_posteriors", "rule_posterior")

    def attributes(self):
        attrs = super().attributes()
        attrs["boundary_"] = False
        return attrs

    def full_nodes(self):
        """Grid nodes as full x = (beta, b, log tau), aliased slopes 0."""
        x = np.zeros((len(self.hyper.nodes), len(self.free)))
        x[:, self.free] = self.hyper.nodes
        return x

    def population(self):
        x = self.full_nodes()
        return LogitNormalMixture(
            x[:, -2] + self.design.offset_mean, np.exp(x[:, -1]), self.hyper.weights
        )

    @cached_property
    def node_params(self):
        """(weights, params) of every node with weight > 1e-12 of the largest,
        the weights summing to 1, params as (beta, b, tau)."""
        post = self.hyper
        use = post.weights > 1e-12 * post.weights.max()
        w = post.weights[use] / post.weights[use].sum()
        x = self.full_nodes()[use]
        return w, np.column_stack([x[:, :-1], np.exp(x[:, -1])])

    @cached_property
    def node_posteriors(self):
        """(weight, params, per-unit posterior) at every node of node_params."""
        return [(wi, t, self.model.posterior(t)) for wi, t in zip(*self.node_params)]

    def log_proba(self, codes, Z):
        parts = [
            (np.log(w), self._log_proba_at(params, post, codes, Z))
            for w, params, post in self.node_posteriors
        ]
        lw = np.array([p[0] for p in parts])[:, None]
        lp0 = logsumexp(lw + np.array([p[1][0] for p in parts]), axis=0)
        lp1 = logsumexp(lw + np.array([p[1][1] for p in parts]), axis=0)
        return lp0, lp1

    def logit_rule(self, codes, Z, **options):
        """The mixture over the hyperparameter grid of each node's rule."""
        etas, log_ws = [], []
        for w, params, post in self.node_posteriors:
            eta, log_w = self._logit_rule_at(params, post, codes, Z)
            etas.append(eta)
            log_ws.append(log_w + np.log(w))
        return np.concatenate(etas, axis=1), np.concatenate(log_ws, axis=1)

    def draw_logits(self, keys, codes, Z, rng, n_sims, new_groups=False, **options):
        """A grid node per simulation (by its posterior weight), then group
        effects given that node's hyperparameters."""
        parts = self.node_posteriors
        weights = np.array([w for w, _, _ in parts])
        picks = rng.choice(len(parts), size=n_sims, p=weights / weights.sum())
        out = np.empty((n_sims, len(Z)))
        for k in np.unique(picks):
            sims = np.flatnonzero(picks == k)
            params = parts[k][1]
            eta0 = self.design.linear_predictor(Z, params[-2], params[:-2])
            xi = self.draw_effects(
                keys, codes, rng, len(sims), new_groups, params=params
            )
            out[sims] = eta0[None, :] + xi[:, keys]
        return out

    def heldout_loglik(self, rows, codes):
        terms = np.array(
            [
                np.log(w) + self._heldout_at(params, post, rows, codes)
                for w, params, post in self.node_posteriors
            ]
        )
        return float(logsumexp(terms))

    def prediction_interval(self, level, include_parameter_uncertainty=False):
        # population_ already integrates over (b, tau)
        return self.population().interval(level)

    @cached_property
    def posterior_summary(self):
        post = self.hyper
        x = post.nodes
        C = self.fixed_map()[:, self.free]
        probs = [0.025, 0.975]
        rows, quantiles, sds = [], [], []
        for c in C:
            if not np.any(c):  # an aliased slope: fixed at 0, not estimated
                rows.append((np.nan,) * 4)
                continue
            vals = x @ c
            q = coefficient_quantiles(post, c, probs)
            rows.append((post.mean(vals), post.sd(vals), *q))
            quantiles.append(q)
            sds.append(post.sd(vals))
        theta = x[:, -1]
        q = theta_quantiles(post, probs)
        tau = np.exp(theta)
        rows.append((post.mean(tau), post.sd(tau), *np.exp(q)))
        changes = quantile_changes(
            post,
            [c for c in C if np.any(c)],
            probs,
            np.r_[sds, post.sd(theta)],
            [*quantiles, q],
        )
        if max(changes.values()) > QUANTILE_TOL:
            warn(
                "method='bayes': the 95% limits of posterior_summary() may be "
                f"off by {max(changes.values()):.2g} posterior SDs (the change "
                "on the grid of twice the step or with fewer inner nodes).",
                QuadratureWarning,
            )
        names = ["intercept", *map(str, self.design.covariates), "tau"]
        frame = pd.DataFrame(rows, index=names, columns=["mean", "sd", "2.5%", "97.5%"])
        frame.loc[np.r_[False, self.design.aliased, False]] = np.nan
        frame.attrs["quantile_changes"] = changes
        return frame

    def posterior_density(self, name):
        """``(values, density)`` of one parameter's marginal posterior."""
        names = ["intercept", *map(str, self.design.covariates), "tau"]
        if name not in names:
            raise ValueError(f"parameter must be one of {names}; got {_show(name)}.")
        k = names.index(name)
        post = self.hyper
        cov = post.chol @ post.chol.T
        if name == "tau":  # the density of log tau, then change variables
            sd = np.sqrt(cov[-1, -1])
            log_tau = post.mode[-1] + sd * np.linspace(-7.0, 7.0, 161)
            dens = theta_density(post, log_tau)
            dens /= cumulative_simpson(dens, x=log_tau)[-1]
            return np.exp(log_tau), dens / np.exp(log_tau)
        c = self.fixed_map()[:, self.free][k]
        if not np.any(c):
            raise ValueError(
                f"covariate {_show(name)} is aliased: it has no posterior."
            )
        centre, sd = float(c @ post.mode), float(np.sqrt(c @ cov @ c))
        grid = centre + sd * np.linspace(-7.0, 7.0, 161)
        dens = CoefficientMarginal(post, c).density(grid)
        return grid, dens / cumulative_simpson(dens, x=grid)[-1]

    def group_intervals(self, level, method=None, n_grid=801, span=10.0):
        """Posterior mean of each group's theta and quantiles of its posterior.

        The posterior of the group's logit ``eta_g = o_g + xi_g`` (``o_g`` its
        trials-weighted mean linear predictor; ``b`` without covariates) is a
        mixture over the hyperparameter grid of exact conditional densities,
        evaluated on a common grid and integrated by Simpson's rule. With
        covariates, theta_g is summarised through ``expit(eta_g)``.
        """
        units = self.units
        parts = self.node_posteriors
        a = (1 - level) / 2
        centre, lo, hi = [], np.inf, -np.inf
        for _, params, post in parts:
            o = _group_offset(
                units, params[-2] + units.Z @ params[:-2] + row_offset(units)
            )
            c = o + params[-1] * post.mode
            half = span * params[-1] * post.sd
            lo, hi = np.minimum(lo, c - half), np.maximum(hi, c + half)
            centre.append(o)
        grid = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, n_grid)[None, :]
        mix = np.zeros_like(grid)
        estimate = np.zeros(units.n_groups)
        for (w, params, post), o in zip(parts, centre):
            tau = params[-1]
            offset = params[-2] + units.Z @ params[:-2] + row_offset(units)
            xi = grid - o[:, None]
            eta = offset[:, None] + xi[units.codes]
            h = units.group_sum(
                kernel(eta, units.successes[:, None], units.trials[:, None])
            )
            h -= 0.5 * (xi / tau) ** 2
            dens = np.exp(h - h.max(axis=1, keepdims=True))
            dens /= np.trapezoid(dens, grid, axis=1)[:, None]
            mix += w * dens
            pi = np.exp(post.log_weights)
            p_rows = expit(offset[:, None] + tau * post.nodes[units.codes])
            estimate += w * np.sum(
                pi
                * units.group_sum(units.trials[:, None] * p_rows)
                / units.group_sum(units.trials)[:, None],
                axis=1,
            )
        cdf = np.concatenate(
            [np.zeros((units.n_groups, 1)), cumulative_simpson(mix, x=grid, axis=1)],
            axis=1,
        )
        cdf = np.maximum.accumulate(cdf / cdf[:, -1:], axis=1)
        q = np.array(
            [
                [np.interp(p, cdf[g], grid[g]) for p in (a, 1 - a)]
                for g in range(units.n_groups)
            ]
        )
        unit = self.unit
        return estimate[unit], expit(q[unit, 0]), expit(q[unit, 1])


def _group_offset(data, offset_rows):
    """Trials-weighted mean linear predictor of each group's rows."""
    return data.group_sum(data.trials * offset_rows) / data.group_sum(data.trials)


def fit_bayes(ml, name, verbose=0, tol=1e-5):
    """Integrate the hyperparameters, starting from the MAP fit ``ml``; the
    posterior means and SDs are refined until stable to ``tol`` posterior SDs."""
    free = np.r_[~ml.design.aliased, True, True]
    nlp = NegLogPosterior(ml, free)
    x0 = np.r_[ml.params[:-1], np.log(max(ml.tau, 0.1))][free]

    def progress(n, slices, evals, change):
        if verbose:
            print(
                f"[skre] bayes: {n} nodes per dimension at {slices} values of "
                f"log tau ({evals:,} evaluations), largest change in posterior "
                f"means and SDs {change:.2g} SD",
                flush=True,
            )

    rows = ml.fixed_map()[:, free]
    post = fit_hyperposterior(nlp, x0, rows=rows, tol=tol, progress=progress)
    if not post.converged:
        warn(
            f"{name}: method='bayes' stopped at {post.n_per_dim} nodes per "
            f"dimension and {len(post.slices)} values of log tau (the limit of "
            f"{MAX_EVALS:,} likelihood evaluations) before the posterior means "
            f"and SDs were stable to {tol:g} SD; they may be off by "
            f"{max(post.changes.values()):.2g} SD. A more informative tau_prior "
            "(the posterior is then closer to normal) or method='ml' avoids this.",
            QuadratureWarning,
        )
    x = np.zeros((len(post.nodes), len(free)))
    x[:, free] = post.nodes
    param_rows = np.column_stack([x[:, :-1], np.exp(x[:, -1])])
    mean_params = post.mean(param_rows)
    return BayesFit(
        ml.design,
        ml.loglik,
        ml.n_iter,
        ml.converged,
        ml.units,
        ml.unit_weight,
        ml.unit,
        mean_params,
        ml.model.posterior(mean_params),
        ml.n_quad,
        False,
        ml.tau_prior,
        ml.coef_prior,
        ml.message,
        post,
        free,
    )
