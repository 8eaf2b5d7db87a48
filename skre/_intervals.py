"""Wald and profile-likelihood intervals for the fixed parameters and tau.

Shared by :class:`~skre.CompletePoolingBinomial` and
:class:`~skre.MultilevelBinomial`. Parameters are profiled in the space the
optimizer uses (standardized covariates, ``log tau``); the user-scale intercept
and slopes are linear functions there, so each interval is the likelihood-ratio
interval of a linear function (:func:`skre._core.profile.profile_bounds`).
"""

import numpy as np
import pandas as pd
from scipy import stats

from ._core.glm import pooled_objective
from ._core.grouping import pooled_rows
from ._core.multilevel import negative_loglik, pooled_fit
from ._core.optimize import _positive_definite, fd_hessian
from ._core.profile import profile_bounds


def check_interval_args(level, method, methods=("wald", "profile")):
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}.")
    if method not in methods:
        raise ValueError(f"method must be one of {list(methods)}; got {method!r}.")


def _pooled(est):
    """Complete pooling on the multilevel model's rows, at full precision with its
    covariance; computed once per fit (tau = 0 fits and profile limits use it)."""
    if est._pooled_full is None:
        model = est._model
        est._pooled_full = pooled_fit(model.data, model.group_weight, covariance=True)
    return est._pooled_full


def _interior(est):
    """``x_hat = (beta, b, log tau)``, the free coordinates, the measured Hessian
    of the negative log-likelihood (plus log prior) there, computed once per fit,
    and its inverse."""
    x_hat = np.r_[est._theta_std[:-1], np.log(est.tau_)]
    free = np.r_[~est._aliased, True, True]
    if est._hess is None:
        est._hess = measured_hessian(
            negative_loglik(est._model, est._log_prior), x_hat, free
        )
    return x_hat, free, est._hess, free_inverse(est._hess, free)


def fixed_map(est):
    """User-scale (intercept, slopes) as rows over (beta, b, log tau)."""
    p = len(est.coef_)
    C = np.zeros((p + 1, p + 2))
    C[:, :-1] = user_map(est, intercept_first=False)
    return C


def multilevel_vcov(est):
    """User-scale covariance of (intercept, slopes)."""
    if est.boundary_:
        C = user_map(est, intercept_first=True)
        return C @ _glm_cov(_pooled(est)) @ C.T
    C = fixed_map(est)
    return C @ _interior(est)[3] @ C.T


def vcov_frame(est, cov, intercept=True):
    """Label a covariance matrix; rows and columns of dropped covariates are NaN."""
    names = ["intercept"] * intercept + list(map(str, est.covariates_))
    cov = np.array(cov, dtype=float)
    dropped = np.r_[[False] * intercept, est._aliased].astype(bool)
    cov[dropped, :] = np.nan
    cov[:, dropped] = np.nan
    return pd.DataFrame(cov, index=names, columns=names)


def multilevel_confint(est, level, method):
    """Rows (intercept, slopes, tau) of :meth:`MultilevelBinomial.confint`."""
    model = est._model
    p = len(est.coef_)
    estimates = [est.intercept_, *est.coef_]
    nll = negative_loglik(model, est._log_prior)
    last = np.eye(p + 2)[-1:]  # log tau as a row over (beta, b, log tau)
    if est.boundary_:
        # tau held at 0: the complete-pooling fit's intervals
        cp = _pooled(est)
        C = user_map(est, intercept_first=True)
        free = np.r_[True, ~est._aliased]
        cov = _glm_cov(cp)
        rows, se = wald_rows(C, cov, estimates, level)
        tau_row = (0.0, np.nan)
        if method == "profile":
            x_cp = np.r_[cp.intercepts[0], cp.coef]
            fg = pooled_objective(pooled_rows(model.data, model.group_weight))
            H = np.zeros_like(cov)
            H[np.ix_(free, free)] = np.linalg.inv(cov[np.ix_(free, free)])
            rows = profile_rows(fg, x_cp, C, H, free, se, level)
            x_small = np.r_[cp.coef, cp.intercepts[0], np.log(1e-6)]
            fx = np.r_[~est._aliased, True, True]
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
            tau_row = (0.0, float(np.exp(upper[0][1])))
        return table(est, [*rows, tau_row], level)
    x_hat, free, H, cov = _interior(est)
    C = fixed_map(est)
    rows, se = wald_rows(C, cov, estimates, level)
    se_log_tau = float(np.sqrt(cov[-1, -1]))
    z = stats.norm.ppf(0.5 + level / 2)
    tau_row = (est.tau_ * np.exp(-z * se_log_tau), est.tau_ * np.exp(z * se_log_tau))
    if method == "profile":
        rows = profile_rows(nll, x_hat, C, H, free, se, level)
        ends = profile_rows(
            nll,
            x_hat,
            last,
            H,
            free,
            [se_log_tau],
            level,
            lower_limit=-np.inf,
            f_at_lower_limit=-_pooled(est).loglik,
        )[0]
        tau_row = tuple(float(np.exp(e)) for e in ends)
    return table(est, [*rows, tau_row], level)


def _glm_cov(res):
    """(intercept, coef) covariance of a one-group GLMResult."""
    p = len(res.coef)
    cov = np.empty((1 + p, 1 + p))
    cov[0, 0] = res.intercept_var[0]
    cov[0, 1:] = cov[1:, 0] = res.cross_cov[0]
    cov[1:, 1:] = res.coef_cov
    return cov


def user_map(est, intercept_first):
    """Rows: user-scale (intercept, slopes) as linear functions of the optimizer's x.

    ``x`` is ``(intercept, beta_std)`` when ``intercept_first`` (complete pooling)
    or ``(beta_std, b, ...)`` (the multilevel core).
    """
    mean, scale = est._z_mean, est._z_scale
    p = len(mean)
    C = np.zeros((1 + p, 1 + p))
    a, B = (0, slice(1, None)) if intercept_first else (p, slice(0, p))
    C[0, a] = 1.0
    C[0, B] = -mean / scale
    C[1:, B] = np.diag(1.0 / scale)
    return C


def table(est, rows, level):
    names = [
        "intercept",
        *map(str, est.covariates_),
        *(["tau"] if len(rows) > 1 + len(est.covariates_) else []),
    ]
    lo, hi = np.array(rows, dtype=float).T
    a = 100 * (1 - level) / 2
    frame = pd.DataFrame({f"{a:g}%": lo, f"{100 - a:g}%": hi}, index=names)
    aliased = np.zeros(len(rows), dtype=bool)
    aliased[1 : 1 + len(est._aliased)] = est._aliased
    frame.loc[aliased] = np.nan
    return frame


def wald_rows(C, cov, estimates, level):
    z = stats.norm.ppf(0.5 + level / 2)
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", C, cov, C), 0.0))
    return [(e - z * s, e + z * s) for e, s in zip(estimates, se)], se


def free_inverse(H, free):
    """Inverse of the Hessian over the free coordinates (aliased ones fixed at 0)."""
    cov = np.zeros_like(H)
    cov[np.ix_(free, free)] = np.linalg.inv(H[np.ix_(free, free)])
    return cov


def profile_rows(fun_grad, x_hat, C, H, free, se, level, **tau_limit):
    """Profile intervals of ``C @ x`` with aliased coordinates held at 0."""
    drop = stats.chi2.ppf(level, 1) / 2

    def reduced(xf):
        x = np.zeros(len(x_hat))
        x[free] = xf
        f, g = fun_grad(x)
        return f, g[free]

    Hf = H[np.ix_(free, free)]
    return [
        profile_bounds(reduced, x_hat[free], c[free], drop, se=s, hess=Hf, **tau_limit)
        for c, s in zip(C, se)
    ]


def measured_hessian(fun_grad, x_hat, free):
    """Finite-difference Hessian over the free coordinates (zeros elsewhere)."""
    H = np.zeros((len(x_hat),) * 2)

    def reduced(xf):
        x = x_hat.copy()
        x[free] = xf
        f, g = fun_grad(x)
        return f, g[free]

    H[np.ix_(free, free)] = fd_hessian(reduced, x_hat[free])
    # keep it positive definite for the constrained optimizers' starts
    Hf = H[np.ix_(free, free)]
    if np.any(np.linalg.eigvalsh(Hf) <= 0):
        H[np.ix_(free, free)] = np.linalg.inv(_positive_definite(Hf))
    return H


def pooled_confint(est, level, method):
    """Rows (intercept, slopes) of :meth:`CompletePoolingBinomial.confint`."""
    C = user_map(est, intercept_first=True)
    free = np.r_[True, ~est._aliased]
    rows, se = wald_rows(C, est._cov_std, [est.intercept_, *est.coef_], level)
    if method == "profile":
        H = np.zeros_like(est._cov_std)
        H[np.ix_(free, free)] = np.linalg.inv(est._cov_std[np.ix_(free, free)])
        rows = profile_rows(
            pooled_objective(pooled_rows(est._train)),
            np.r_[est._a_std, est._beta_std],
            C,
            H,
            free,
            se,
            level,
        )
    return table(est, rows, level)


def predictive_interval(est, level):
    """New-group interval integrating over the uncertainty of (b, log tau).

    ``P(theta <= x) = E[Phi((logit x - b) / tau)]`` over a normal approximation
    to ``(b, log tau)`` (b at the covariate means), by a 20 x 20 Gauss-Hermite
    product rule; the quantiles by Brent's method. At a boundary fit tau is 0
    and only ``b`` is uncertain.
    """
    from scipy.optimize import brentq
    from scipy.special import expit, logit

    b = est._theta_std[-2]
    x, w = np.polynomial.hermite.hermgauss(20)
    nodes, weights = np.sqrt(2.0) * x, w / np.sqrt(np.pi)
    if est.boundary_:
        se = float(np.sqrt(_pooled(est).intercept_var[0]))
        z = stats.norm.ppf(0.5 + level / 2)
        return float(expit(b - z * se)), float(expit(b + z * se))
    cov = _interior(est)[3][-2:, -2:]
    L = np.linalg.cholesky(cov + 1e-300 * np.eye(2))
    grid = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), axis=-1).reshape(-1, 2)
    wt = np.outer(weights, weights).ravel()
    draws = np.array([b, np.log(est.tau_)]) + grid @ L.T
    locs, scales = draws[:, 0], np.exp(draws[:, 1])

    def cdf(v):
        return float(wt @ stats.norm.cdf((logit(v) - locs) / scales))

    a = (1 - level) / 2
    return tuple(
        float(brentq(lambda v: cdf(v) - q, 1e-300, 1 - 1e-16, xtol=1e-14))
        for q in (a, 1 - a)
    )


def pooled_group_intervals(est, a, beta, cov, level):
    """Each group's mean probability under one shared model, delta-method interval.

    ``a, beta`` on standardized covariates with covariance ``cov``; the interval
    is symmetric on the logit of the group's trials-weighted mean probability.
    """
    from scipy.special import expit, logit

    data = est._train
    eta = a + data.Z @ beta
    est_p = est._group_mean_probability(eta, np.zeros(data.n_groups))
    p = expit(eta)
    w = data.trials * p * (1.0 - p)
    J = data.group_sum(np.column_stack([w, w[:, None] * data.Z]))
    spread = est_p * (1.0 - est_p)
    inside = spread > 0  # a fitted probability of exactly 0 or 1 has no spread
    J[inside] /= (data.group_sum(data.trials)[inside] * spread[inside])[:, None]
    se = np.sqrt(np.einsum("gi,ij,gj->g", J, cov, J))
    z = stats.norm.ppf(0.5 + level / 2.0)
    with np.errstate(divide="ignore"):
        centre = logit(est_p)
    lower = np.where(inside, expit(centre - z * se), est_p)
    upper = np.where(inside, expit(centre + z * se), est_p)
    return est_p, lower, upper


def boundary_group_intervals(est, level):
    """At tau = 0 every group has the pooled probability: its interval is the
    complete-pooling one (the uncertainty of b and the slopes)."""
    cp = _pooled(est)
    return pooled_group_intervals(
        est, float(cp.intercepts[0]), cp.coef, _glm_cov(cp), level
    )
