"""Fit results: one private, immutable object per fit.

An estimator's ``fit`` builds one of these from a :class:`~skre._design.Design`
and then sets its scikit-learn attributes from :meth:`FitResult.attributes`,
all at once, and keeps a reference to the result. Everything after fit
(predictions, scores, intervals, summaries) reads the result; nothing writes
to it or to the estimator. Expensive derived quantities are cached on the
result (and left out of its pickle where they are large or rebuildable).

This module holds the base class and the results of the two pooled models;
:mod:`skre._multilevel_fit` and :mod:`skre._bayes` hold the multilevel ones.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import log_expit, logit

from ._core.binomial import loglik_terms
from ._core.glm import pooled_objective, profile_interval
from ._core.grouping import collapse_offset, pooled_rows, row_offset
from ._core.quadrature import MarginalLikelihood, marginal_mean
from ._core.rules import normal_rule
from ._intervals import (
    exact_one_sided,
    information,
    pooled_group_intervals,
    profile_rows,
    table,
    vcov_frame,
    wald_rows,
)
from ._validation import factorize


@dataclass(frozen=True, eq=False)
class FitResult:
    """What every fit knows: its design, log-likelihood and convergence."""

    design: object  # skre._design.Design
    loglik: float  # kernel log-likelihood (constants excluded)
    n_iter: int
    converged: bool

    #: cached properties left out of the pickle (large, and cheap to rebuild)
    _transient = ()

    def __getstate__(self):
        state = dict(self.__dict__)
        for name in self._transient:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def n_params(self):
        """Estimated parameters, aliased covariates not counted (as R's rank)."""
        raise NotImplementedError

    def codes_for(self, labels, name, column=None):
        """Training codes of new rows' group labels (-1: not seen in fit)."""
        return self.design.codes_for(labels, name, column)

    # -- what simulation and residuals need --------------------------------------------
    def point_logit(self, codes, Z, **options):
        """Each row's logit where the model has no group effect to integrate."""
        raise NotImplementedError

    def logit_rule(self, codes, Z, **options):
        """Each row's distribution of the logit as a quadrature rule:
        ``(eta, log_w)`` of shape (n_rows, K), weights summing to 1 per row.
        A point (K = 1) for the pooled models."""
        eta = self.point_logit(codes, Z, **options)
        return eta[:, None], np.zeros((len(eta), 1))

    def draw_logits(self, keys, codes, Z, rng, n_sims, new_groups=False, **options):
        """``n_sims`` draws of every row's logit, shape (n_sims, n_rows): rows
        with the same ``keys`` (group) share one draw of the group effect."""
        eta = self.point_logit(codes, Z, **options)
        return np.broadcast_to(eta, (n_sims, len(eta)))

    def common_attributes(self, intercept, coef):
        design = self.design
        loglik = self.loglik + design.constant
        k = self.n_params
        return {
            "intercept_": float(intercept),
            "coef_": np.asarray(coef, dtype=float),
            "groups_": design.groups,
            "covariates_": design.covariates,
            "loglik_": float(loglik),
            "aic_": float(-2.0 * loglik + 2.0 * k),
            "bic_": float(-2.0 * loglik + np.log(design.n_obs) * k),
            "nobs_": float(design.n_obs),
            "n_params_": int(k),
            "n_iter_": int(self.n_iter),
            "converged_": bool(self.converged),
        }


def log_proba_from_logit(eta):
    """``(log P(failure), log P(success))`` from the log-odds, in log space."""
    return log_expit(-eta), log_expit(eta)


def pooled_loglik(eta, rows):
    return float(np.sum(loglik_terms(eta, rows.successes, rows.trials)))


@dataclass(frozen=True, eq=False)
class PooledFit(FitResult):
    """Complete pooling: one logistic regression on standardized covariates."""

    a: float  # intercept at the covariate means
    beta: np.ndarray  # standardized slopes
    cov: np.ndarray  # (1 + p, 1 + p) covariance of (a, beta)

    @property
    def n_params(self):
        return 1 + len(self.beta) - int(self.design.aliased.sum())

    def attributes(self):
        intercept, coef = self.design.unscale(self.a, self.beta)
        J = self.design.user_map(intercept_first=True)
        with np.errstate(over="ignore", invalid="ignore"):  # inf past 1e308
            covariance = J @ self.cov @ J.T
        dropped = np.r_[False, self.design.aliased]
        covariance[dropped, :] = covariance[:, dropped] = np.nan  # R's NA
        return {**self.common_attributes(intercept, coef), "covariance_": covariance}

    def point_logit(self, codes, Z, **options):
        return self.design.linear_predictor(Z, self.a, self.beta)

    def log_proba(self, codes, Z):
        return log_proba_from_logit(self.point_logit(codes, Z))

    def heldout_loglik(self, rows, codes):
        return pooled_loglik(
            self.design.linear_predictor(rows.Z, self.a, self.beta), rows
        )

    def vcov(self):
        return vcov_frame(self.design, self.attributes()["covariance_"])

    def confint(self, level, method):
        design = self.design
        C = design.user_map(intercept_first=True)
        free = np.r_[True, ~design.aliased]
        intercept, coef = design.unscale(self.a, self.beta)
        rows, se = wald_rows(C, self.cov, [intercept, *coef], level)
        if method == "profile":
            H = information(self.cov, free)
            rows = profile_rows(
                pooled_objective(pooled_rows(design.data)),
                np.r_[self.a, self.beta],
                C,
                H,
                free,
                se,
                level,
            )
        return table(design, rows, level)

    def group_intervals(self, level, method=None):
        return pooled_group_intervals(self.design, self.a, self.beta, self.cov, level)


@dataclass(frozen=True, eq=False)
class NoPoolingFit(FitResult):
    """No pooling: one free intercept per group, shared standardized slopes."""

    alpha: np.ndarray  # (G,) group intercepts at the covariate means, may be +-inf
    beta: np.ndarray
    alpha_var: np.ndarray  # (G,) variances, nan where infinite
    coef_cov: np.ndarray  # (p, p) of the user-scale slopes
    alpha_prior: tuple | None  # (mean, precision) of a Normal group prior
    pooled_a: float  # the complete-pooling fallback for unseen groups
    pooled_beta: np.ndarray
    pooled_aliased: np.ndarray  # covariates complete pooling cannot identify

    @property
    def n_params(self):
        return len(self.alpha) + len(self.beta) - int(self.design.aliased.sum())

    def attributes(self):
        design = self.design
        coef = self.beta / design.z_scale
        intercept, pooled_coef = self._pooled_user()
        attrs = self.common_attributes(intercept, coef)
        attrs["group_intercepts_"] = self.alpha - coef @ design.z_mean
        attrs["pooled_coef_"] = pooled_coef
        return attrs

    def _pooled_user(self):
        return self.design.unscale(self.pooled_a, self.pooled_beta)

    def _logit(self, codes, Z, unknown_group):
        design = self.design
        seen = codes >= 0
        if not seen.all() and unknown_group == "error":
            raise ValueError(
                f"{int((~seen).sum())} rows belong to groups not seen in fit "
                f"(first at row {int(np.flatnonzero(~seen)[0])}); "
                "set unknown_group='pooled' to predict them from the "
                "complete-pooling fit."
            )
        eta = np.empty(len(Z))
        if seen.any():
            offset = design.linear_predictor(Z[seen], 0.0, self.beta)
            eta[seen] = self.alpha[codes[seen]] + offset
        new = ~seen
        if new.any():
            if self.alpha_prior is not None:  # the prior predictive
                mean, prec = self.alpha_prior
                loc = mean + design.linear_predictor(Z[new], 0.0, self.beta)
                eta[new] = logit(marginal_mean(loc, 1.0 / np.sqrt(prec)))
            else:
                scaled = design.scaled(Z[new], self.pooled_aliased)
                with np.errstate(over="ignore", invalid="ignore"):
                    eta[new] = self.pooled_a + scaled @ self.pooled_beta
                    eta[new] += design.offset_of(Z[new])
                eta[new] = np.where(np.isnan(eta[new]), 0.0, eta[new])
        return eta

    def log_proba(self, codes, Z, unknown_group="pooled"):
        return log_proba_from_logit(self._logit(codes, Z, unknown_group))

    def point_logit(self, codes, Z, unknown_group="pooled", **options):
        return self._logit(codes, Z, unknown_group)

    def logit_rule(self, codes, Z, unknown_group="pooled", **options):
        """Seen groups at their own logit; with a group prior, an unseen
        group's logit spread over the prior (25-node Gauss-Hermite)."""
        eta = self._logit(codes, Z, unknown_group)
        new = codes < 0
        if self.alpha_prior is None or not new.any():
            return eta[:, None], np.zeros((len(eta), 1))
        z, w = normal_rule(25)
        mean, prec = self.alpha_prior
        loc = mean + self.design.linear_predictor(Z, 0.0, self.beta)
        rule = np.repeat(eta[:, None], len(z), axis=1)
        rule[new] = loc[new, None] + z / np.sqrt(prec)
        log_w = np.where(new[:, None], np.log(w), np.log(1.0 / len(z)))
        return rule, log_w

    def draw_logits(
        self, keys, codes, Z, rng, n_sims, new_groups=False, unknown_group="pooled"
    ):
        """Seen groups keep their intercepts (``new_groups=False``); a group
        drawn anew gets an intercept from the group prior, or the pooled logit
        without one."""
        fresh = (codes < 0) | bool(new_groups)
        if self.alpha_prior is None or not fresh.any():
            codes = np.where(fresh, -1, codes)
            eta = self._logit(codes, Z, unknown_group if not new_groups else "pooled")
            return np.broadcast_to(eta, (n_sims, len(eta)))
        mean, prec = self.alpha_prior
        eta = np.broadcast_to(self._logit(codes, Z, unknown_group), (n_sims, len(Z)))
        eta = eta.copy()
        used, inverse = np.unique(keys[fresh], return_inverse=True)
        alpha = mean + rng.standard_normal((n_sims, len(used))) / np.sqrt(prec)
        offset = self.design.linear_predictor(Z[fresh], 0.0, self.beta)
        eta[:, fresh] = alpha[:, inverse.ravel()] + offset
        return eta

    def heldout_loglik(self, rows, codes, unknown_group="pooled"):
        """Seen groups at their estimates; with a group prior, each unseen group's
        logit integrated over the prior (as the multilevel model integrates over
        N(0, tau^2)), otherwise the pooled point prediction."""
        eta = self._logit(codes, rows.Z, unknown_group)
        new = (codes < 0) & (rows.trials > 0)
        if self.alpha_prior is None or not new.any():
            return pooled_loglik(eta, rows)
        seen = float(
            np.sum(loglik_terms(eta[~new], rows.successes[~new], rows.trials[~new]))
        )
        new_codes, uniques = factorize(rows.labels[new])
        offset = self.design.offset_of(rows.Z[new]) if self.design.offset else None
        data = collapse_offset(
            new_codes,
            self.design.scaled(rows.Z[new]),
            rows.successes[new],
            rows.trials[new],
            len(uniques),
            offset,
        )
        mean, prec = self.alpha_prior
        params = np.r_[self.beta, mean, 1.0 / np.sqrt(prec)]
        post = MarginalLikelihood(data, np.ones(len(uniques)), 25).posterior(params)
        return seen + float(post.log_marginal.sum())

    def vcov(self):
        return vcov_frame(self.design, self.coef_cov, intercept=False)

    def group_intervals(self, level, method="profile"):
        design = self.design
        data = design.data
        offset = data.Z @ self.beta + row_offset(data)
        alpha = self.alpha
        if method == "exact":
            if self.alpha_prior is not None:
                raise ValueError(
                    "method='exact' ignores group_prior; use 'profile' or "
                    "'wald' for a fit with a group prior."
                )
            if data.Z.shape[1] or getattr(data, "offset", None) is not None:
                raise ValueError(
                    "method='exact' (Clopper-Pearson) is for intercept-only "
                    "data; use 'profile' with covariates or an offset."
                )
            M, N = data.successes, data.trials
            a = (1 - level) / 2
            with np.errstate(invalid="ignore"):
                lower = np.where(M > 0, stats.beta.ppf(a, M, N - M + 1), 0.0)
                upper = np.where(M < N, stats.beta.ppf(1 - a, M + 1, N - M), 1.0)
            return M / N, lower, upper
        if method == "wald":
            # at an infinite logit (a 0/n or n/n group) the SE is infinite too:
            # the Wald interval is the whole line, (0, 1), as R's huge glm SEs give
            half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(self.alpha_var)
            finite = np.isfinite(alpha)
            lower = np.where(finite, alpha - half, -np.inf)
            upper = np.where(finite, alpha + half, np.inf)
        else:
            lower, upper = profile_interval(
                data,
                offset,
                alpha,
                stats.chi2.ppf(level, 1),
                alpha_prior=self.alpha_prior,
            )
        return tuple(
            design.group_mean_probability(offset, v) for v in (alpha, lower, upper)
        )


@dataclass(frozen=True, eq=False)
class DegenerateFit(FitResult):
    """Every trial a failure (or every one a success), for complete pooling and
    the multilevel model.

    The likelihood grows without bound as the intercept goes to -inf (+inf):
    the estimate is probability 0 (1) everywhere, slopes and tau are not
    identified (reported as 0) and every interval is one-sided and exact.
    """

    limit: float  # 0.0 or 1.0
    multilevel: bool

    @property
    def n_params(self):
        p = len(self.design.covariates) - int(self.design.aliased.sum())
        return p + (2 if self.multilevel else 1)

    def attributes(self):
        from ._core.population import LogitNormal

        sign = -1.0 if self.limit == 0 else 1.0
        p, G = len(self.design.covariates), len(self.design.groups)
        attrs = self.common_attributes(sign * np.inf, np.zeros(p))
        if self.multilevel:
            attrs.update(
                tau_=0.0,
                random_effects_=np.zeros(G),
                random_effects_sd_=np.zeros(G),
                population_=LogitNormal(sign * np.inf, 0.0),
                boundary_=True,
            )
        else:
            attrs["covariance_"] = self._infinite_cov()
        return attrs

    def _infinite_cov(self):
        k = 1 + len(self.design.covariates)
        cov = np.full((k, k), np.nan)
        np.fill_diagonal(cov, np.inf)
        return cov

    def point_logit(self, codes, Z, **options):
        return np.full(len(Z), -np.inf if self.limit == 0 else np.inf)

    def log_proba(self, codes, Z):
        return log_proba_from_logit(self.point_logit(codes, Z))

    def heldout_loglik(self, rows, codes):
        return pooled_loglik(
            np.full(len(rows.Z), -np.inf if self.limit == 0 else np.inf), rows
        )

    def vcov(self):
        return vcov_frame(self.design, self._infinite_cov())

    def _pooled_counts(self):
        data = self.design.data
        return float(data.successes.sum()), float(data.trials.sum())

    def confint(self, level, method, verbose=0):
        """Wald: the whole line (the SE is infinite at an infinite estimate).

        Profile, intercept-only: the likelihood-ratio interval of the
        intercept, one-sided and in closed form, ``-N softplus(a) = -q / 2``;
        tau is not identified (the likelihood is flat in it), so (0, inf).
        """
        p = len(self.design.covariates)
        tau = [(0.0, np.nan if method == "wald" else np.inf)] * self.multilevel
        if method == "wald":
            rows = [(-np.inf, np.inf)] * (1 + p)
            return table(self.design, rows + tau, level, tau=self.multilevel)
        if p:
            raise ValueError(
                "confint(method='profile') is not available when every trial is a "
                f"{'failure' if self.limit == 0 else 'success'} and there are "
                "covariates: no coefficient has a finite estimate, and their "
                "likelihood-ratio intervals depend on directions in which the "
                "likelihood is flat. Use method='wald' (the whole line), a "
                "coef_prior, or drop the covariates."
            )
        _, N = self._pooled_counts()
        end = float(np.log(np.expm1(stats.chi2.ppf(level, 1) / (2 * N))))
        row = (-np.inf, end) if self.limit == 0 else (-end, np.inf)
        return table(self.design, [row, *tau], level, tau=self.multilevel)

    def group_intervals(self, level, method=None):
        """The exact one-sided (Clopper-Pearson) interval of the pooled counts."""
        M, N = self._pooled_counts()
        est, lower, upper = exact_one_sided(M, N, level)
        G = len(self.design.groups)
        return np.full(G, est), np.full(G, lower), np.full(G, upper)

    def prediction_interval(self, level, include_parameter_uncertainty=False):
        M, N = self._pooled_counts()
        return exact_one_sided(M, N, level)[1:]


def degenerate_fit(design, multilevel):
    return DegenerateFit(design, 0.0, 0, True, design.degenerate, multilevel)


def no_pooling_fit_result(design, res, alpha_prior, pooled, pooled_aliased):
    """A :class:`NoPoolingFit` from the grouped GLMResult ``res`` and the
    complete-pooling fallback ``pooled`` (in memory and on Dask alike)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        # the user-scale slopes' covariance (inf where it exceeds a double)
        scale = design.z_scale
        coef_cov = res.coef_cov / scale[:, None] / scale[None, :]
    return NoPoolingFit(
        design,
        float(res.loglik),
        max(res.n_iter, 1),
        bool(res.converged),
        res.intercepts,
        res.coef,
        res.intercept_var,
        coef_cov,
        alpha_prior,
        float(pooled.intercepts[0]),
        pooled.coef,
        pooled_aliased,
    )


def pooled_fit_result(design, res):
    """A :class:`PooledFit` from a one-group GLMResult."""
    from ._intervals import glm_cov

    return PooledFit(
        design,
        float(res.loglik),
        max(res.n_iter, 1),
        bool(res.converged),
        float(res.intercepts[0]),
        res.coef,
        glm_cov(res, design.aliased),
    )
