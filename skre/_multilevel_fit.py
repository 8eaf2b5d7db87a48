"""The fit result of the logistic random-intercept model (maximum likelihood or MAP).

Owns the likelihood units, the parameters ``params = (beta, b, tau)`` on
standardized covariates and each group's conditional distribution at them.
The marginal likelihood object is rebuilt on demand (it carries node-level
scratch and is left out of pickles); the measured Hessian and the
full-precision complete-pooling fit are cached once computed.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import stats
from scipy.special import log_expit, logsumexp

from ._core.conditional import conditional_quantiles
from ._core.glm import pooled_objective
from ._core.grouping import (
    Collapsed,
    collapse_offset,
    count_patterns,
    pooled_rows,
    row_offset,
)
from ._core.multilevel import InMemory, make_log_prior, negative_loglik
from ._core.population import LogitNormal
from ._core.quadrature import (
    MarginalLikelihood,
    Posterior,
    log_mean_expit,
    quadrature_likelihood,
)
from ._core.rules import normal_rule
from ._fit_result import FitResult
from ._intervals import (
    free_inverse,
    glm_cov,
    information,
    measured_hessian,
    pooled_group_intervals,
    pooled_predictive_interval,
    predictive_interval,
    profile_rows,
    table,
    vcov_frame,
    wald_rows,
)
from ._validation import factorize


def likelihood_units(data):
    """Groups of an intercept-only model with equal (m, n) share one term.

    Returns ``(units, weight, unit)``: the rows the likelihood is evaluated on,
    each unit's multiplicity, and each group's unit.
    """
    if data.Z.shape[1] or getattr(data, "offset", None) is not None:
        return data, np.ones(data.n_groups), np.arange(data.n_groups)
    m, n, count, index = count_patterns(data.successes, data.trials)
    k = len(m)
    return (
        Collapsed(np.arange(k), np.empty((k, 0)), m, n, k, np.arange(k)),
        count,
        index,
    )


def heldout_union(design, rows, codes):
    """The rows of a held-out score: each test group's test rows with, for a
    group seen in fit, its training rows (collapsed, covariates standardized,
    groups coded in order), and the training codes of the seen groups."""
    train = design.data
    G = len(design.groups)
    keep = rows.trials > 0
    codes = codes[keep].copy()
    new = codes < 0
    if new.any():
        codes[new] = G + factorize(rows.labels[keep][new])[0]
    seen = np.unique(codes[~new])
    in_train = np.isin(train.codes, seen)
    all_codes = np.concatenate([train.codes[in_train], codes])
    used, all_codes = np.unique(all_codes, return_inverse=True)
    offset = None
    if design.offset is not None:
        offset = np.r_[train.offset[in_train], design.offset_of(rows.Z[keep])]
    data = collapse_offset(
        all_codes.ravel(),
        np.vstack([train.Z[in_train], design.scaled(rows.Z[keep])]),
        np.concatenate([train.successes[in_train], rows.successes[keep]]),
        np.concatenate([train.trials[in_train], rows.trials[keep]]),
        len(used),
        offset,
    )
    return data, seen


def variance_components(group, tau):
    """The variance components of a random-intercept fit as lme4's
    ``as.data.frame(VarCorr(fit))`` lays them out: one row per variance and
    covariance, columns ``grp``, ``var1``, ``var2`` (missing for a variance),
    ``vcov`` (the variance or covariance) and ``sdcor`` (the SD or
    correlation)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "grp": [str(group)],
            "var1": ["(Intercept)"],
            "var2": pd.Series([None], dtype=object),
            "vcov": [float(tau) ** 2],
            "sdcor": [float(tau)],
        }
    )


@dataclass(frozen=True, eq=False)
class MultilevelFit(FitResult):
    units: Collapsed  # likelihood units (rows for data with covariates)
    unit_weight: np.ndarray  # multiplicity of each unit
    unit: np.ndarray  # (G,) each group's unit
    params: np.ndarray  # (beta, b, tau) on standardized covariates
    posterior: Posterior  # each unit's conditional distribution at params
    n_quad: object  # node count, or each unit's (n_quad="auto" on large data)
    boundary: bool
    tau_prior: object
    coef_prior: tuple | None  # (means, precisions) on standardized slopes
    message: str

    _transient = ("model", "log_prior", "rule_posterior", "_reference")

    @classmethod
    def of(cls, design, res, units, weight, unit, tau_prior, coef_prior):
        """The fit result of :func:`skre._core.multilevel.fit_multilevel`'s
        ``res`` on the likelihood units ``(units, weight, unit)``; the same for
        the in-memory and the Dask fits."""
        return cls(
            design,
            float(res.loglik),
            res.n_iter,
            bool(res.converged),
            units,
            weight,
            unit,
            np.r_[res.beta, res.b, res.tau],
            res.posterior,
            res.n_nodes,
            bool(res.boundary),
            tau_prior,
            coef_prior,
            res.message,
        )

    # -- what fit reports --------------------------------------------------------------
    @property
    def n_params(self):
        return len(self.params) - int(self.design.aliased.sum())

    @property
    def b(self):
        return float(self.params[-2])

    @property
    def tau(self):
        return float(self.params[-1])

    def attributes(self):
        beta, b, tau = self.params[:-2], self.b, self.tau
        intercept, coef = self.design.unscale(b, beta)
        return {
            **self.common_attributes(intercept, coef),
            "tau_": tau,
            "random_effects_": tau * self.posterior.mode[self.unit],
            "random_effects_sd_": tau * self.posterior.sd[self.unit],
            "population_": self.population(),
            "boundary_": bool(self.boundary),
        }

    def population(self):
        return LogitNormal(self.b + self.design.offset_mean, self.tau)

    # -- rebuilt on demand -------------------------------------------------------------
    @cached_property
    def model(self):
        return quadrature_likelihood(self.units, self.unit_weight, self.n_quad)

    @property
    def max_nodes(self):
        """The largest node count of the fit's rule (for new groups' terms)."""
        return int(np.max(self.n_quad))

    @cached_property
    def log_prior(self):
        if self.tau_prior is None and self.coef_prior is None:
            return None
        return make_log_prior(len(self.params) - 2, self.tau_prior, self.coef_prior)

    @cached_property
    def pooled(self):
        """Complete pooling on the same rows, at full precision, with covariance."""
        return InMemory(self.units, self.unit_weight).pooled(covariance=True)

    def pooled_estimates(self):
        """Complete pooling's ``(a, beta, cov)`` on standardized covariates: what
        a boundary fit (tau = 0) reports its groups and intervals with."""
        cp = self.pooled
        return float(cp.intercepts[0]), cp.coef, glm_cov(cp, self.design.aliased)

    @cached_property
    def interior(self):
        """``(x_hat, free, H, cov)``: x = (beta, b, log tau), the free coordinates,
        the measured Hessian of -(loglik + log prior) there and its inverse."""
        x_hat = np.r_[self.params[:-1], np.log(self.tau)]
        free = np.r_[~self.design.aliased, True, True]
        H = measured_hessian(negative_loglik(self.model, self.log_prior), x_hat, free)
        return x_hat, free, H, free_inverse(H, free)

    # -- predictions -------------------------------------------------------------------
    def offsets(self, Z):
        return self.design.linear_predictor(Z, self.b, self.params[:-2])

    def log_proba(self, codes, Z):
        """Seen groups: the conditional mean of theta_g; new groups: the
        population mean E[expit(b + x'beta + xi)]. Both in log space."""
        return self._log_proba_at(self.params, self.posterior, codes, Z)

    def _log_proba_at(self, params, posterior, codes, Z):
        eta0 = self.design.linear_predictor(Z, params[-2], params[:-2])
        tau = params[-1]
        lp0, lp1 = np.empty(len(Z)), np.empty(len(Z))
        seen = codes >= 0 if codes is not None else np.zeros(len(Z), dtype=bool)
        new = ~seen
        if new.any():
            lp1[new] = log_mean_expit(eta0[new], tau)
            lp0[new] = log_mean_expit(eta0[new], tau, sign=-1.0)
        if seen.any():
            unit = self.unit[codes[seen]]
            log_pi = posterior.log_weights[unit]
            eta = eta0[seen, None] + tau * posterior.nodes[unit]
            lp1[seen] = logsumexp(log_pi + log_expit(eta), axis=1)
            lp0[seen] = logsumexp(log_pi + log_expit(-eta), axis=1)
        return lp0, lp1

    # -- the distribution of each row's logit: residuals and simulation ----------------
    @cached_property
    def rule_posterior(self):
        """Each unit's conditional distribution on a 25-node adaptive rule (the
        fit's own when it has 25 nodes): enough to integrate a smooth function
        of the group effect, whatever n_quad the fit used."""
        if np.ndim(self.n_quad) == 0 and self.n_quad == 25:
            return self.posterior
        return MarginalLikelihood(self.units, self.unit_weight, 25).posterior(
            self.params
        )

    def logit_rule(self, codes, Z, **options):
        return self._logit_rule_at(self.params, self.rule_posterior, codes, Z)

    def _logit_rule_at(self, params, posterior, codes, Z):
        """Seen groups: their conditional distribution (adaptive nodes); new
        groups: the population N(0, tau^2) (25-node Gauss-Hermite)."""
        eta0 = self.design.linear_predictor(Z, params[-2], params[:-2])
        tau = params[-1]
        z, w = normal_rule(25)
        k = posterior.nodes.shape[1]
        if k < len(z):
            pad = len(z) - k  # a Laplace posterior: one node, padded with zeros
            nodes = np.pad(posterior.nodes, ((0, 0), (0, pad)))
            log_pi = np.pad(
                posterior.log_weights, ((0, 0), (0, pad)), constant_values=-np.inf
            )
        else:
            nodes, log_pi = posterior.nodes, posterior.log_weights
        seen = codes >= 0
        eta = eta0[:, None] + tau * np.where(
            seen[:, None], nodes[self.unit[np.where(seen, codes, 0)]], z
        )
        log_w = np.where(
            seen[:, None], log_pi[self.unit[np.where(seen, codes, 0)]], np.log(w)
        )
        return eta, log_w

    def draw_effects(self, keys, codes, rng, n_sims, new_groups=False, params=None):
        """Draws of each group's effect ``xi`` (n_sims, n_keys): seen groups
        from their conditional distribution given the data (exactly, by
        inverting its CDF), new groups (or all, with ``new_groups``) from
        N(0, tau^2). ``keys`` number the groups of the rows 0..n_keys-1."""
        params = self.params if params is None else params
        tau = params[-1]
        n_keys = int(keys.max()) + 1 if len(keys) else 0
        xi = tau * rng.standard_normal((n_sims, n_keys))
        if new_groups or tau == 0:
            return xi
        first = np.full(n_keys, -1)
        first[keys[::-1]] = codes[::-1]  # the group code of each key
        seen_keys = np.flatnonzero(first >= 0)
        if len(seen_keys):
            data = self.design.data  # one likelihood term per group, not per unit
            model = MarginalLikelihood(data, np.ones(data.n_groups), self.max_nodes)
            groups = first[seen_keys]
            U = rng.random((data.n_groups, n_sims))
            u = conditional_quantiles(
                model, params, U, posterior=model.posterior(params)
            )
            xi[:, seen_keys] = tau * u[groups].T
        return xi

    def draw_logits(self, keys, codes, Z, rng, n_sims, new_groups=False, **options):
        eta0 = self.offsets(Z)
        xi = self.draw_effects(keys, codes, rng, n_sims, new_groups)
        return eta0[None, :] + xi[:, keys]

    def heldout_loglik(self, rows, codes):
        """Sum over test groups of log p(test rows of g | training data)."""
        return self._heldout_at(self.params, self.posterior, rows, codes)

    def _heldout_at(self, params, posterior, rows, codes):
        """Seen groups: log L(train + test rows) - log L(train rows), the train
        term from the fitted posterior; new groups: log L(test rows)."""
        data, seen = heldout_union(self.design, rows, codes)
        units, weight, _ = likelihood_units(data)
        union = MarginalLikelihood(units, weight, self.max_nodes).posterior(params)
        before = posterior.log_marginal[self.unit[seen]].sum()
        return float(weight @ union.log_marginal - before)

    # -- inference ---------------------------------------------------------------------
    def vcov(self):
        design = self.design
        if self.boundary:
            C = design.user_map(intercept_first=True)
            with np.errstate(over="ignore", invalid="ignore"):
                cov = C @ glm_cov(self.pooled, design.aliased) @ C.T
        else:
            C = self.fixed_map()
            with np.errstate(over="ignore", invalid="ignore"):
                cov = C @ self.interior[3] @ C.T
        return vcov_frame(design, cov)

    def fixed_map(self):
        """User-scale (intercept, slopes) as rows over (beta, b, log tau)."""
        p = len(self.params) - 2
        C = np.zeros((p + 1, p + 2))
        C[:, :-1] = self.design.user_map(intercept_first=False)
        return C

    def confint(self, level, method, verbose=0):
        """Rows (intercept, slopes, tau); see MultilevelBinomial.confint."""
        design = self.design
        p = len(self.params) - 2
        intercept, coef = design.unscale(self.b, self.params[:-2])
        estimates = [intercept, *coef]
        nll = negative_loglik(self.model, self.log_prior)
        last = np.eye(p + 2)[-1:]  # log tau as a row over (beta, b, log tau)
        say = _progress(verbose, len(estimates) + 1)
        if self.boundary:  # tau held at 0: the complete-pooling fit's intervals
            cp = self.pooled
            C = design.user_map(intercept_first=True)
            free = np.r_[True, ~design.aliased]
            cov = glm_cov(cp, design.aliased)
            rows, se = wald_rows(C, cov, estimates, level)
            tau_row = (0.0, np.nan)
            if method == "profile":
                x_cp = np.r_[cp.intercepts[0], cp.coef]
                fg = pooled_objective(pooled_rows(self.units, self.unit_weight))
                H = information(cov, free)
                rows = say(profile_rows(fg, x_cp, C, H, free, se, level), "fixed")
                x_small = np.r_[cp.coef, cp.intercepts[0], np.log(1e-6)]
                fx = np.r_[~design.aliased, True, True]
                upper = profile_rows(
                    nll,
                    x_small,
                    last,
                    np.eye(p + 2),
                    fx,
                    [1.0],
                    level,
                    lower_limit=-np.inf,
                    f_at_lower_limit=-cp.loglik,
                )
                tau_row = say((0.0, float(np.exp(upper[0][1]))), "tau")
            return table(design, [*rows, tau_row], level, tau=True)
        x_hat, free, H, cov = self.interior
        C = self.fixed_map()
        rows, se = wald_rows(C, cov, estimates, level)
        se_log_tau = float(np.sqrt(cov[-1, -1]))
        z = stats.norm.ppf(0.5 + level / 2)
        tau_row = (
            self.tau * np.exp(-z * se_log_tau),
            self.tau * np.exp(z * se_log_tau),
        )
        if method == "profile":
            rows = say(profile_rows(nll, x_hat, C, H, free, se, level), "fixed")
            ends = profile_rows(
                nll,
                x_hat,
                last,
                H,
                free,
                [se_log_tau],
                level,
                lower_limit=-np.inf,
                f_at_lower_limit=-self.pooled.loglik,
            )[0]
            tau_row = say(tuple(float(np.exp(e)) for e in ends), "tau")
        return table(design, [*rows, tau_row], level, tau=True)

    def group_intervals(self, level, method=None):
        """Quantiles of each group's conditional distribution, by quadrature.

        The estimate is ``expit(b + x'beta + mode)`` (lme4's ``coef``); the
        interval holds ``level`` of the group's conditional distribution of
        ``xi_g`` given its data and the fitted parameters (exact integration,
        not the normal approximation), mapped to the probability scale. At a
        boundary fit (tau = 0) that distribution is a point, so the interval is
        complete pooling's, which carries the uncertainty of b and the slopes.
        """
        design = self.design
        if self.boundary:
            return pooled_group_intervals(design, *self.pooled_estimates(), level)
        data = design.data
        offset = self.b + data.Z @ self.params[:-2] + row_offset(data)
        a = (1 - level) / 2
        q = conditional_quantiles(
            self.model, self.params, [a, 1 - a], posterior=self.posterior
        )[self.unit]
        u = self.posterior.mode[self.unit]
        return tuple(
            design.group_mean_probability(offset, self.tau * v)
            for v in (u, q[:, 0], q[:, 1])
        )

    def prediction_interval(self, level, include_parameter_uncertainty=False):
        """A new group's interval; at tau = 0 (a point mass) always with the
        uncertainty of b, so that it never has zero width."""
        if self.boundary:
            return pooled_predictive_interval(
                self.b, self.pooled.intercept_var[0], level
            )
        if not include_parameter_uncertainty:
            return self.population().interval(level)
        return predictive_interval(self.b, self.tau, self.interior[3][-2:, -2:], level)


def _progress(verbose, total):
    """A callback that prints one line per finished interval when ``verbose``."""
    done = [0]

    def say(result, what):
        done[0] += len(result) if what == "fixed" else 1
        if verbose:
            print(
                f"[skre] profile intervals: {done[0]}/{total} done ({what})", flush=True
            )
        return result

    return say
