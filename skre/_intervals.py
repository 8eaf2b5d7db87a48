"""Wald and profile-likelihood intervals: the pieces the fit results share.

Parameters are profiled in the space the core optimizes (standardized
covariates, and ``log tau`` for the multilevel model); the user-scale intercept
and slopes are linear functions there, so each interval is the
likelihood-ratio interval of a linear function
(:func:`skre._core.profile.profile_bounds`). Everything here reads a
:class:`~skre._design.Design` and arrays; nothing reads or writes an estimator.
"""

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import log_expit

from ._core.grouping import row_offset
from ._core.optimize import _positive_definite, fd_hessian
from ._core.profile import profile_bounds
from ._core.rules import normal_rule
from ._validation import _show


def check_level(level):
    """``level`` must be a real number in (0, 1)."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
        raise TypeError(
            f"level must be a number in (0, 1), e.g. 0.95; got {_show(level)} "
            f"({type(level).__name__})."
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {_show(level)}.")


def check_interval_args(level, method, methods=("wald", "profile")):
    check_level(level)
    if method not in methods:
        raise ValueError(f"method must be one of {list(methods)}; got {_show(method)}.")


def vcov_frame(design, cov, intercept=True):
    """Label a covariance matrix; rows and columns of dropped covariates are NaN."""
    names = ["intercept"] * intercept + list(map(str, design.covariates))
    cov = np.array(cov, dtype=float)
    dropped = np.r_[[False] * intercept, design.aliased].astype(bool)
    cov[dropped, :] = np.nan
    cov[:, dropped] = np.nan
    return pd.DataFrame(cov, index=names, columns=names)


def table(design, rows, level, tau=False):
    """Rows (intercept, slopes[, tau]) as :meth:`confint`'s DataFrame."""
    names = ["intercept", *map(str, design.covariates), *(["tau"] if tau else [])]
    lo, hi = np.array(rows, dtype=float).reshape(len(names), 2).T
    a = 100 * (1 - level) / 2
    frame = pd.DataFrame({f"{a:g}%": lo, f"{100 - a:g}%": hi}, index=names)
    aliased = np.zeros(len(names), dtype=bool)
    aliased[1 : 1 + len(design.aliased)] = design.aliased
    frame.loc[aliased] = np.nan
    return frame


def wald_rows(C, cov, estimates, level):
    z = stats.norm.ppf(0.5 + level / 2)
    se = standard_errors(C, cov)
    return [(e - z * s, e + z * s) for e, s in zip(estimates, se)], se


def standard_errors(C, cov):
    """``sqrt(diag(C cov C'))`` without overflow: a covariate on a scale of
    1e-170 has a slope SE near 1e170, whose square is not a double."""
    with np.errstate(over="ignore", invalid="ignore"):
        var = np.einsum("ij,jk,ik->i", C, cov, C)
    if np.all(np.isfinite(var)):
        return np.sqrt(np.maximum(var, 0.0))
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    half = vecs * np.sqrt(np.maximum(vals, 0.0))  # cov = half @ half.T
    V = C @ half
    top = np.max(np.abs(V), axis=1, keepdims=True)
    top = np.where(top > 0, top, 1.0)
    return top[:, 0] * np.sqrt(np.sum((V / top) ** 2, axis=1))


def information(cov, free):
    """The information over the free coordinates from a covariance: its
    inverse, or (when separation has made the covariance numerically
    singular) the inverse with its eigenvalues floored, zeros elsewhere. It
    only starts the profile's constrained optimizer."""
    H = np.zeros_like(cov)
    sub = cov[np.ix_(free, free)]
    try:
        H[np.ix_(free, free)] = np.linalg.inv(sub)
    except np.linalg.LinAlgError:
        H[np.ix_(free, free)] = _positive_definite(sub)
    if not np.all(np.isfinite(H)):
        H[np.ix_(free, free)] = _positive_definite(np.nan_to_num(sub, posinf=1e300))
    return H


def free_inverse(H, free):
    """Inverse of the Hessian over the free coordinates (aliased ones fixed at 0)."""
    cov = np.zeros_like(H)
    cov[np.ix_(free, free)] = np.linalg.inv(H[np.ix_(free, free)])
    return cov


def profile_rows(fun_grad, x_hat, C, H, free, se, level, **tau_limit):
    """Profile intervals of ``C @ x`` with aliased coordinates held at 0.

    Aliased coordinates are fixed wherever the optimizer starts: profiles
    never move them, so a dropped covariate cannot leak NaN or an infinite
    bound into the other rows.
    """
    drop = stats.chi2.ppf(level, 1) / 2
    fixed = np.where(free, 0.0, x_hat)

    def reduced(xf):
        x = fixed.copy()
        x[free] = xf
        f, g = fun_grad(x)
        return f, g[free]

    Hf = H[np.ix_(free, free)]
    return [
        profile_bounds(reduced, x_hat[free], c[free], drop, se=s, hess=Hf, **tau_limit)
        if np.any(c[free])
        else (np.nan, np.nan)  # an aliased covariate's slope: not estimated
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


def glm_cov(res, aliased):
    """(intercept, coef) covariance of a one-group GLMResult.

    Aliased slopes are fixed at 0: they have no variance and no covariance,
    whatever the pseudo-inverse of the information put there (a huge
    number, which would leak into the intercept through the user-scale map).
    """
    p = len(res.coef)
    cov = np.empty((1 + p, 1 + p))
    cov[0, 0] = res.intercept_var[0]
    cov[0, 1:] = cov[1:, 0] = res.cross_cov[0]
    cov[1:, 1:] = res.coef_cov
    fixed = np.r_[False, aliased]
    cov[fixed, :] = 0.0
    cov[:, fixed] = 0.0
    return cov


def pooled_group_intervals(design, a, beta, cov, level):
    """Each group's mean probability under one shared model, delta-method interval.

    ``a, beta`` on standardized covariates with covariance ``cov``; the interval
    is symmetric on the logit of the group's trials-weighted mean probability.
    The logit and its gradient are computed in log space, so a group whose
    fitted probability is numerically 0 or 1 still gets an interval of
    positive width.
    """
    from scipy.special import expit

    centre, se = pooled_group_logit(design, a, beta, cov)
    z = stats.norm.ppf(0.5 + level / 2.0)
    return expit(centre), expit(centre - z * se), expit(centre + z * se)


def pooled_group_logit(design, a, beta, cov):
    """The logit of each group's trials-weighted mean probability under one
    shared model, and its delta-method standard error."""
    data = design.data
    eta = a + data.Z @ beta + row_offset(data)
    logn = np.log(data.trials)
    lp1, lp0 = log_expit(eta), log_expit(-eta)
    log_p = _group_logsumexp(data, logn + lp1) - np.log(design.group_trials)
    log_q = _group_logsumexp(data, logn + lp0) - np.log(design.group_trials)
    centre = log_p - log_q  # logit of the group's mean probability
    # d centre / d (a, beta) = sum_i n_i p_i q_i x_i / (N p_bar q_bar)
    share = np.exp(logn + lp1 + lp0 - (log_p + log_q)[data.codes])
    J = data.group_sum(np.column_stack([share, share[:, None] * data.Z]))
    J /= design.group_trials[:, None]
    return centre, np.sqrt(np.einsum("gi,ij,gj->g", J, cov, J))


def _group_logsumexp(data, values):
    top = _group_max(data, values)
    return top + np.log(data.group_sum(np.exp(values - top[data.codes])))


def _group_max(data, values):
    if data.one_row_per_group:
        return values
    return np.maximum.reduceat(values, data.starts)


def exact_one_sided(successes, trials, level):
    """Clopper-Pearson interval for data with no successes (or no failures).

    All-zero data: ``(0, 1 - (alpha/2)^(1/N))``; all-one data its mirror image.
    Returns ``(estimate, lower, upper)``.
    """
    alpha = 1 - level
    bound = (alpha / 2) ** (1 / trials)
    if successes == 0:
        return 0.0, 0.0, 1.0 - bound
    return 1.0, bound, 1.0


def predictive_interval(b, tau, cov_b_logtau, level):
    """New-group interval integrating over the uncertainty of (b, log tau).

    ``P(theta <= x) = E[Phi((logit x - b) / tau)]`` over a normal approximation
    to ``(b, log tau)`` (b at the covariate means), by a 20 x 20 Gauss-Hermite
    product rule; the quantiles by Brent's method.
    """
    from scipy.optimize import brentq
    from scipy.special import logit

    nodes, weights = normal_rule(20)
    L = np.linalg.cholesky(cov_b_logtau + 1e-300 * np.eye(2))
    grid = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), axis=-1).reshape(-1, 2)
    wt = np.outer(weights, weights).ravel()
    draws = np.array([b, np.log(tau)]) + grid @ L.T
    locs, scales = draws[:, 0], np.exp(draws[:, 1])

    def cdf(v):
        return float(wt @ stats.norm.cdf((logit(v) - locs) / scales))

    a = (1 - level) / 2
    return tuple(
        float(brentq(lambda v: cdf(v) - q, 1e-300, 1 - 1e-16, xtol=1e-14))
        for q in (a, 1 - a)
    )


def pooled_predictive_interval(b, var_b, level):
    """At tau = 0 a new group's probability is ``expit(b)``: b's Wald interval."""
    from scipy.special import expit

    z = stats.norm.ppf(0.5 + level / 2)
    se = float(np.sqrt(var_b))
    return float(expit(b - z * se)), float(expit(b + z * se))
