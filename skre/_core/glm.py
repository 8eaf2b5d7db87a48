"""Logistic regression with one free intercept per group (profiled out).

One group is complete pooling (an ordinary logistic GLM); one group per batch is
no pooling (``glm(cbind(m, n - m) ~ 0 + factor(batch) + x)`` in R). The group
intercepts are solved exactly for given slopes (vectorised 1-D Newton), and the
slopes by Newton's method on the profile likelihood, whose Hessian is the Schur
complement of the full one. A group with 0 successes has intercept -inf, one
with only successes +inf: the limits of the likelihood, as in R with
``glm``'s huge finite coefficients.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import logit

from .binomial import loglik_terms, residual_and_weight
from .roots import solve_decreasing


@dataclass
class GLMResult:
    intercepts: np.ndarray  # (n_groups,) may hold +-inf
    coef: np.ndarray  # (p,) on the scale of the Z given
    loglik: float  # kernel log-likelihood, constants excluded
    intercept_var: np.ndarray  # (n_groups,) nan where the intercept is infinite
    coef_cov: np.ndarray  # (p, p)
    cross_cov: np.ndarray  # (n_groups, p) covariance of intercepts with slopes
    n_iter: int
    converged: bool
    message: str


def _group_extreme(data, values, ufunc):
    if data.one_row_per_group:
        return values if np.ndim(values) else np.full(data.n_groups, float(values))
    values = np.broadcast_to(values, data.codes.shape)
    return ufunc.reduceat(values, data.starts)


def fit_grouped_logistic(
    data,
    *,
    max_iter=100,
    tol=1e-9,
    covariance=True,
    offset=0.0,
    alpha_prior=None,
    coef_prior=None,
):
    """Maximum likelihood for ``logit p = alpha[group] + Z @ coef + offset``.

    Newton's method on all parameters at once; the group-intercept block of the
    Hessian is diagonal, so each step solves only a (p, p) Schur complement and
    costs one pass over the rows (plus one for the line search).

    ``alpha_prior = (mean, precision)`` puts a normal prior on every group
    intercept and ``coef_prior = (means, precisions)`` one on each slope; the
    fit is then the posterior mode (all intercepts finite), and ``loglik`` is
    the likelihood there.
    """
    p = data.Z.shape[1]
    M = data.group_sum(data.successes)
    N = data.group_sum(data.trials)
    a_mean, a_prec = alpha_prior if alpha_prior is not None else (0.0, 0.0)
    b_mean, b_prec = (
        coef_prior if coef_prior is not None else (np.zeros(p), np.zeros(p))
    )
    with np.errstate(divide="ignore"):
        alpha = np.where(M <= 0, -np.inf, np.where(M >= N, np.inf, logit(M / N)))
    if a_prec > 0:
        alpha = logit((M + 0.5) / (N + 1.0))
    finite = np.isfinite(alpha)
    coef = np.zeros(p)

    def objective(alpha, coef):
        ll = _loglik(data, alpha, coef, offset)
        penalty = 0.5 * a_prec * np.sum((alpha - a_mean) ** 2) if a_prec else 0.0
        return ll, ll - penalty - 0.5 * np.sum(b_prec * (coef - b_mean) ** 2)

    ll, obj = objective(alpha, coef)
    iterate = p or np.any(offset != 0) or a_prec > 0  # else closed form
    n_iter, converged, message = 0, not iterate, "closed form"
    for n_iter in range(1, max_iter + 1 if iterate else 1):  # noqa: B007
        R, W, WZ, grad, ZWZ = _score_and_information(data, alpha, coef, offset)
        R = R - a_prec * (alpha - a_mean) if a_prec else R
        W_safe = np.where(finite & (W + a_prec > 0), W + a_prec, np.inf)
        schur = ZWZ + np.diag(b_prec) - (WZ / W_safe[:, None]).T @ WZ
        rhs = grad - b_prec * (coef - b_mean) - WZ.T @ (R / W_safe)
        d_coef = np.linalg.lstsq(schur, rhs, rcond=None)[0]
        d_alpha = np.where(np.isfinite(W_safe), (R - WZ @ d_coef) / W_safe, 0.0)
        t = 1.0
        for _ in range(60):
            new_alpha, new_coef = alpha + t * d_alpha, coef + t * d_coef
            new_ll, new_obj = objective(new_alpha, new_coef)
            if new_obj >= obj - 1e-12 * abs(obj):
                break
            t *= 0.5
        else:
            message = "line search failed to increase the likelihood"
            break
        alpha, coef, ll, obj = new_alpha, new_coef, new_ll, new_obj
        if t * max(np.max(np.abs(d_coef), initial=0.0), np.max(np.abs(d_alpha))) <= tol:
            converged, message = True, "converged"
            break
    else:
        if p:
            message = f"reached max_iter={max_iter}"
    var, coef_cov, cross = (
        _covariance(data, alpha, coef, offset, a_prec, b_prec)
        if covariance
        else (None,) * 3
    )
    return GLMResult(alpha, coef, ll, var, coef_cov, cross, n_iter, converged, message)


def _loglik(data, alpha, coef, offset=0.0):
    eta = alpha[data.codes] + data.Z @ coef + offset
    return float(np.sum(loglik_terms(eta, data.successes, data.trials)))


def _score_and_information(data, alpha, coef, offset=0.0):
    eta = alpha[data.codes] + data.Z @ coef + offset
    r, w, _ = residual_and_weight(eta, data.successes, data.trials)
    inf = ~np.isfinite(eta)
    if inf.any():  # rows of 0/n and n/n groups carry no information
        r[inf] = 0.0
        w[inf] = 0.0
    wZ = w[:, None] * data.Z
    return (
        data.group_sum(r),
        data.group_sum(w),
        data.group_sum(wZ),
        data.Z.T @ r,
        data.Z.T @ wZ,
    )


def _covariance(data, alpha, coef, offset=0.0, a_prec=0.0, b_prec=0.0):
    """Inverse observed information, block-wise (never a (G+p)^2 matrix).

    Returns the variance of each finite intercept (nan where infinite), the
    (p, p) covariance of the slopes and the (G, p) intercept-slope covariances.
    """
    eta = alpha[data.codes] + data.Z @ coef + offset
    _, w, _ = residual_and_weight(eta, data.successes, data.trials)
    w = np.where(np.isfinite(eta), w, 0.0)
    W = data.group_sum(w) + a_prec
    WZ = data.group_sum(w[:, None] * data.Z)
    keep = W > 0
    ratio = np.zeros_like(WZ)
    ratio[keep] = WZ[keep] / W[keep, None]
    schur = (
        data.Z.T @ (w[:, None] * data.Z)
        + np.diag(np.broadcast_to(b_prec, len(coef)))
        - ratio[keep].T @ WZ[keep]
    )
    coef_cov = _inverse_information(schur) if len(coef) else np.zeros((0, 0))
    cross = -ratio @ coef_cov
    with np.errstate(divide="ignore"):
        var = np.where(
            keep, 1.0 / W + np.einsum("gi,ij,gj->g", ratio, coef_cov, ratio), np.nan
        )
    return var, coef_cov, cross


def _inverse_information(info):
    """Inverse of an information matrix that may be numerically singular.

    Under perfect separation the information about a slope vanishes (all its
    rows have fitted probability 0 or 1); a pseudo-inverse would report that
    direction as known exactly (variance 0). Eigenvalues below 1e-12 of the
    largest (or 1e-300) count as that floor instead, so the variance there is
    huge, as it should be. Aliased covariates, zeroed before the fit, land
    there too; the estimators report them as NaN.
    """
    vals, vecs = np.linalg.eigh(0.5 * (info + info.T))
    floor = max(1e-12 * vals.max(initial=0.0), 1e-300)
    return (vecs / np.maximum(vals, floor)) @ vecs.T


def profile_interval(data, offset, alpha, q, alpha_prior=None):
    """Likelihood-ratio interval for each group intercept, slopes held fixed.

    Solves ``l_g(a) = l_g(alpha_g) - q / 2`` on each side of ``alpha_g``
    (``q`` is the chi-square(1) quantile). A group with 0 successes has lower
    end ``-inf`` (probability 0) and a finite upper end; one with only
    successes the mirror image. Returns ``(lower, upper)``.
    """
    M = data.group_sum(data.successes)
    N = data.group_sum(data.trials)
    offset = np.broadcast_to(np.asarray(offset, dtype=float), data.codes.shape)

    mean, prec = alpha_prior if alpha_prior is not None else (0.0, 0.0)

    def loglik(a):  # penalised by the group prior, if any
        ll = data.group_sum(
            loglik_terms(offset + a[data.codes], data.successes, data.trials)
        )
        return ll - 0.5 * prec * (a - mean) ** 2 if prec else ll

    at_max = np.where(
        np.isfinite(alpha), loglik(np.where(np.isfinite(alpha), alpha, 0.0)), 0.0
    )
    target = at_max - 0.5 * q
    lower = np.full(data.n_groups, -np.inf)
    upper = np.full(data.n_groups, np.inf)
    for side, out, skip in (
        (1.0, upper, (M >= N) & (prec == 0)),
        (-1.0, lower, (M <= 0) & (prec == 0)),
    ):
        todo = ~skip
        if not todo.any():
            continue
        # x = side * a is a coordinate in which l - target decreases from the mode
        extreme = _group_extreme(data, side * offset, np.maximum)
        start = np.where(np.isfinite(alpha), side * alpha, -40.0 - extreme)
        start = np.where(todo, start, 0.0)

        def fun(x):
            a = side * x
            r, _, _ = residual_and_weight(
                offset + a[data.codes], data.successes, data.trials
            )
            slope = data.group_sum(r) - prec * (a - mean)
            return loglik(a) - target, np.minimum(side * slope, -1e-300)

        hi, step = start + 1.0, 1.0
        for _ in range(80):
            f_hi = fun(hi)[0]
            need = todo & (f_hi >= 0)
            if not need.any():
                break
            step *= 2.0
            hi = np.where(need, start + step, hi)
        sol, _, _ = solve_decreasing(fun, 0.5 * (start + hi), start, hi)
        out[todo] = side * sol[todo]
    return lower, upper


def pooled_objective(data):
    """``x -> (negative log-likelihood, gradient)`` of one shared logistic model.

    ``x = (intercept, coef)`` on the covariates of ``data`` (all rows one group).
    """

    def fun_grad(x):
        eta = x[0] + data.Z @ x[1:]
        r, _, _ = residual_and_weight(eta, data.successes, data.trials)
        f = -float(np.sum(loglik_terms(eta, data.successes, data.trials)))
        return f, -np.concatenate([[r.sum()], data.Z.T @ r])

    return fun_grad
