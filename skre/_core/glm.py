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
from .grouping import row_offset
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


class GroupedLogistic:
    """The (penalised) log-likelihood of ``logit p = alpha[group] + Z @ coef + offset``.

    The objective only: its value, the Newton direction from its score and
    information (block-eliminated: the group-intercept block is diagonal, so
    a direction costs one pass over the rows and a (p, p) solve) and the
    inverse information. :func:`fit_grouped_logistic` is the solver.

    ``alpha_prior = (mean, precision)`` is a normal prior on every group
    intercept and ``coef_prior = (means, precisions)`` one on each slope.
    """

    def __init__(self, data, offset=0.0, alpha_prior=None, coef_prior=None):
        p = data.Z.shape[1]
        self.data, self.offset = data, offset + row_offset(data)
        self.a_mean, self.a_prec = alpha_prior if alpha_prior is not None else (0, 0)
        self.b_mean, self.b_prec = (
            coef_prior if coef_prior is not None else (np.zeros(p), np.zeros(p))
        )

    def start(self):
        """Group intercepts at their closed form (each group's logit, less
        its rows' trials-weighted mean offset) and slopes 0."""
        data = self.data
        M = data.group_sum(data.successes)
        N = data.group_sum(data.trials)
        with np.errstate(divide="ignore"):
            alpha = np.where(M <= 0, -np.inf, np.where(M >= N, np.inf, logit(M / N)))
        if self.a_prec > 0:
            alpha = logit((M + 0.5) / (N + 1.0))
        if np.ndim(self.offset) or self.offset != 0.0:
            offset = np.broadcast_to(self.offset, data.trials.shape)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = data.group_sum(data.trials * offset) / N
            alpha = alpha - np.where(N > 0, mean, 0.0)
        return alpha, np.zeros(data.Z.shape[1])

    @property
    def closed_form(self):
        """True when :meth:`start` is already the maximum."""
        return not (self.data.Z.shape[1] or np.any(self.offset != 0) or self.a_prec > 0)

    def value(self, alpha, coef):
        """``(log-likelihood, penalised objective)``."""
        ll = _loglik(self.data, alpha, coef, self.offset)
        penalty = (
            0.5 * self.a_prec * np.sum((alpha - self.a_mean) ** 2)
            if self.a_prec
            else 0.0
        )
        return ll, ll - penalty - 0.5 * np.sum(self.b_prec * (coef - self.b_mean) ** 2)

    def newton_direction(self, alpha, coef, finite):
        """Newton direction ``(d_alpha, d_coef)``; intercepts not ``finite`` stay."""
        a_prec, b_prec = self.a_prec, self.b_prec
        R, W, WZ, grad, ZWZ = _score_and_information(
            self.data, alpha, coef, self.offset
        )
        R = R - a_prec * (alpha - self.a_mean) if a_prec else R
        W_safe = np.where(finite & (W + a_prec > 0), W + a_prec, np.inf)
        schur = ZWZ + np.diag(b_prec) - (WZ / W_safe[:, None]).T @ WZ
        rhs = grad - b_prec * (coef - self.b_mean) - WZ.T @ (R / W_safe)
        d_coef = np.linalg.lstsq(schur, rhs, rcond=None)[0]
        d_alpha = np.where(np.isfinite(W_safe), (R - WZ @ d_coef) / W_safe, 0.0)
        return d_alpha, d_coef

    def covariance(self, alpha, coef):
        """``(intercept variances, slope covariance, cross covariances)``."""
        return _covariance(
            self.data, alpha, coef, self.offset, self.a_prec, self.b_prec
        )


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
    """Maximum likelihood (or posterior mode) of a :class:`GroupedLogistic`.

    Newton's method on all parameters at once, with step halving until the
    objective does not decrease; ``loglik`` is the likelihood at the result.
    """
    objective = GroupedLogistic(data, offset, alpha_prior, coef_prior)
    p = data.Z.shape[1]
    alpha, coef = objective.start()
    finite = np.isfinite(alpha)
    ll, obj = objective.value(alpha, coef)
    iterate = not objective.closed_form
    n_iter, converged, message = 0, not iterate, "closed form"
    for n_iter in range(1, max_iter + 1 if iterate else 1):  # noqa: B007
        d_alpha, d_coef = objective.newton_direction(alpha, coef, finite)
        t = 1.0
        for _ in range(60):
            new_alpha, new_coef = alpha + t * d_alpha, coef + t * d_coef
            new_ll, new_obj = objective.value(new_alpha, new_coef)
            if new_obj >= obj - 1e-12 * abs(obj):
                break
            t *= 0.5
        else:
            message = "line search failed to increase the likelihood"
            break
        alpha, coef, ll, obj = new_alpha, new_coef, new_ll, new_obj
        # a step the line search cut to nothing is convergence only where
        # the score is flat too (separation: the likelihood's supremum at
        # infinity); where it is not (far from the optimum, the weights
        # vanishing under a large offset), the fit has stalled
        step = max(np.max(np.abs(d_coef), initial=0.0), np.max(np.abs(d_alpha)))
        if t * step <= tol:
            if t == 1.0 or step <= tol or _flat(objective, alpha, coef, finite):
                converged, message = True, "converged"
            else:
                message = "the line search stalled away from the maximum"
            break
    else:
        if p:
            message = f"reached max_iter={max_iter}"
    if converged and iterate and _underflowed(objective, alpha, coef, finite):
        converged = False
        message = (
            "the binomial weights underflowed to 0 where the data disagree with "
            "the fit (offsets or covariates put rows at probability 0 or 1)"
        )
    var, coef_cov, cross = (
        objective.covariance(alpha, coef) if covariance else (None,) * 3
    )
    return GLMResult(alpha, coef, ll, var, coef_cov, cross, n_iter, converged, message)


def _underflowed(objective, alpha, coef, finite):
    """Whether a group with a finite intercept has no information left (its
    weights 0 in double precision) while its residuals are not 0: Newton's
    method cannot move it, so its stop is not a maximum."""
    R, W, _, _, _ = _score_and_information(
        objective.data, alpha, coef, objective.offset
    )
    return bool(np.any(finite & (W == 0.0) & (np.abs(R) > 1e-8)))


def _flat(objective, alpha, coef, finite):
    """Whether the score at ``(alpha, coef)`` vanishes to 1e-8 of the
    trials (the finite intercepts' and the slopes')."""
    data = objective.data
    R, _, _, grad, _ = _score_and_information(data, alpha, coef, objective.offset)
    score = max(
        np.max(np.abs(R[finite]), initial=0.0), np.max(np.abs(grad), initial=0.0)
    )
    return score <= 1e-8 * max(1.0, float(np.sum(data.trials)))


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
        eta = x[0] + data.Z @ x[1:] + row_offset(data)
        r, _, _ = residual_and_weight(eta, data.successes, data.trials)
        f = -float(np.sum(loglik_terms(eta, data.successes, data.trials)))
        return f, -np.concatenate([[r.sum()], data.Z.T @ r])

    return fun_grad
