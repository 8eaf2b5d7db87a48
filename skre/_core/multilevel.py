"""Maximum likelihood for the logistic random-intercept model.

``logit p_i = b + z_i' beta + xi_g``, ``xi_g ~ N(0, tau^2)``, with the group
effects integrated out by adaptive Gauss-Hermite quadrature. The optimizer works
on ``(beta, b, log tau)``; the boundary ``tau = 0`` is decided separately and
exactly: it is the maximum when the score for ``tau^2`` at the complete-pooling
fit is not positive and no interior point beats complete pooling.
"""

from dataclasses import dataclass

import numpy as np

from .binomial import fast_expit
from .glm import fit_grouped_logistic
from .grouping import Collapsed, pooled_rows
from .optimize import _positive_definite, minimize_smooth
from .quadrature import (
    NODE_LEVELS,
    MarginalLikelihood,
    Posterior,
    node_counts,
    quadrature_likelihood,
)

# rows x nodes beyond which the fit runs Laplace first and then refines with
# the full quadrature from the Laplace optimum and its curvature
STAGED_WORK = 200_000
# how close the Laplace stage of a staged fit gets (its Newton step) before the
# node counts are chosen and the quadrature's own Newton steps take over: it is
# only their start (measured: 3 fewer Laplace evaluations on 10^5 groups x 10
# rows, no more quadrature steps on five test sets; the estimates move < 1e-8)
STAGE_XTOL = 1e-4
# the Newton step (estimated distance to the optimum, in standardized
# parameters) at which a staged fit's quadrature steps stop. Staged fits have at
# least 8,000 rows, so it is under 1e-3 of a standard error; the last step or
# two to 1e-8 cost a full quadrature pass each (measured: 10^3 groups x 1000
# rows 4 -> 2 passes, 10^5 x 10 5 -> 4; the estimates move < 1e-7)
REFINE_XTOL = 1e-6
# groups from which the outer product of their scores (sampling error about
# sqrt(k / groups)) beats BFGS's curvature from the Laplace fit as the first
# Hessian of the Newton steps that refine it (measured: 10^5 groups of 10 rows
# converge in 4 steps instead of 5; 10^3 groups of 1000 rows need 3 instead of 2)
BHHH_GROUPS = 5_000
# the Newton steps of a small fit without covariates take a step below this
# (in the quadratic phase: see optimize._newton) without evaluating at its end:
# its error is about its square, 1e-12 here, and the fit's final posterior
# evaluates there anyway (rats: 5 gradient evaluations instead of 6)
NEWTON_LAST_STEP = 1e-6
# log tau below which a fit checks whether tau = 0 is the maximum (tau < 0.01)
LOG_TAU_ZERO = np.log(1e-2)
# log tau beyond which the likelihood is flat to double precision (tau ~ 2e4)
MAX_LOG_TAU = 10.0


@dataclass
class MultilevelResult:
    beta: np.ndarray
    b: float
    tau: float
    loglik: float  # kernel (constants excluded)
    converged: bool
    n_iter: int
    message: str
    boundary: bool
    score_tau2: float  # d loglik / d tau^2 at the complete-pooling fit
    posterior: Posterior
    model: MarginalLikelihood  # the fitted likelihood, for Hessians and profiles
    pooled: object  # the complete-pooling GLMResult (at full precision when refined)
    log_prior: object  # x -> (log prior, gradient) in (beta, b, log tau)
    n_nodes: object = 25  # the node count, or each group's (n_quad="auto")
    unresolved: int = 0  # groups whose 15- and 25-node values disagreed


class InMemory:
    """The rows of a multilevel fit in memory: everything :func:`fit_multilevel`
    asks of its data. A source of another kind (skre._dask's, partitions on a
    cluster) offers the same methods, each one map-reduce over its rows.

    Parameters
    ----------
    data : Collapsed rows sorted by group (the likelihood units).
    group_weight : (G,) multiplicity of each group's term.
    """

    def __init__(self, data, group_weight):
        self.data = data
        self.group_weight = np.asarray(group_weight, dtype=float)

    @property
    def n_covariates(self):
        return self.data.Z.shape[1]

    @property
    def n_groups(self):
        """Groups counted with their multiplicity (the objective's scale)."""
        return float(self.group_weight.sum())

    @property
    def n_trials(self):
        """All trials, counted with their groups' multiplicity."""
        return float(self.group_weight @ self.data.group_sum(self.data.trials))

    @property
    def n_rows(self):
        """Rows a likelihood pass evaluates (for the choice to stage the fit)."""
        return len(self.data.codes)

    def pooled(self, covariance=False, **options):
        """Complete-pooling GLM on the same rows (one shared intercept)."""
        return fit_grouped_logistic(
            pooled_rows(self.data, self.group_weight), covariance=covariance, **options
        )

    def start_pooled(self, coef_prior=None, max_rows=100_000):
        """A rough complete-pooling fit for the starting point: three Newton
        steps, on every k-th row when there are more than ``max_rows`` (with
        counts times k, so that a prior weighs the same). Only a start: the
        estimate and the boundary decision use the full fit."""
        data = pooled_rows(self.data, self.group_weight)
        step = -(-len(data.codes) // max_rows)
        if step > 1:
            data = Collapsed(
                data.codes[::step],
                data.Z[::step],
                data.successes[::step] * step,
                data.trials[::step] * step,
                1,
                data.starts,
            )
        return fit_grouped_logistic(
            data, max_iter=3, tol=1e-3, covariance=False, coef_prior=coef_prior
        )

    def likelihood(self, n_quad):
        """The marginal likelihood with ``n_quad`` adaptive nodes per group
        (one count, or one per group)."""
        return quadrature_likelihood(self.data, self.group_weight, n_quad)

    def node_counts(self, params, warm=None, store=None):
        """Each group's node count for ``n_quad="auto"``, and the groups for
        which even 25 nodes did not settle (see :func:`node_counts`: ``warm`` a
        likelihood whose modes start the mode solve, ``store`` a dict for the
        evaluations that :meth:`MarginalLikelihood.prime` reuses)."""
        return node_counts(self.data, self.group_weight, params, warm=warm, store=store)

    def tau2_score(self, beta, b):
        """Score and expected information for tau^2 at tau = 0."""
        data = self.data
        eta = b + data.Z @ beta if data.Z.shape[1] else np.full(len(data.codes), b)
        p = fast_expit(eta)
        R = data.group_sum(data.successes - data.trials * p)
        W = data.group_sum(data.trials * p * (1.0 - p))
        self._pooled_sums = R, W  # for start_modes
        gw = self.group_weight
        return 0.5 * float(gw @ (R**2 - W)), 0.5 * float(gw @ W**2)

    def start_modes(self, tau):
        """First guesses of the conditional modes of u at ``tau``: one Newton
        step from 0 with the residual and weight sums of the latest
        :meth:`tau2_score` (at the complete-pooling start)."""
        R, W = self._pooled_sums
        return tau * R / (1.0 + tau * tau * W)

    def information(self, beta, b, tau, max_rows=100_000):
        """Approximate information of ``(beta, b, log tau)`` at a start.

        From the model linearised there (working weights ``w``, as in
        penalised quasi-likelihood): for the fixed effects
        ``X'WX - sum_g tau^2 / (1 + tau^2 W_g) (X_g'w)(w'X_g)``, for ``log tau``
        ``2 sum_g (tau^2 W_g / (1 + tau^2 W_g))^2``. A good first Hessian for
        BFGS; it saves measuring one by finite differences. Beyond
        ``max_rows`` rows ``X'WX`` comes from every k-th row (times k): only a
        start, and on 10^6 rows the product cost a third of a quadrature pass.
        """
        data, gw = self.data, self.group_weight
        p = fast_expit(b + data.Z @ beta)
        w = data.trials * p * (1.0 - p)
        if np.any(gw != 1.0):
            w *= gw[data.codes]
        # per-group sums of w * (z, 1), without building the design with its 1 column
        WX = np.column_stack([data.weighted_group_sum(w, data.Z), data.group_sum(w)])
        W = WX[:, -1]
        shrink = tau**2 / (1.0 + tau**2 * W / gw)
        XWX = np.empty((len(beta) + 1,) * 2)
        # a start: the cross-product from every k-th row (times k) beyond
        # max_rows rows, relative error about sqrt(k / rows)
        every = -(-len(w) // max_rows)
        Zk, wk = data.Z[::every], w[::every] * every
        XWX[:-1, :-1] = Zk.T @ (wk[:, None] * Zk)
        XWX[:-1, -1] = XWX[-1, :-1] = w @ data.Z  # numpy's sums down rows are slow
        XWX[-1, -1] = w.sum()
        info = XWX - (WX * (shrink / gw)[:, None]).T @ WX
        k = len(beta) + 2
        H = np.zeros((k, k))
        H[:-1, :-1] = info
        H[-1, -1] = 2.0 * float(gw @ (tau**2 * (W / gw) / (1.0 + tau**2 * W / gw)) ** 2)
        return H


def fit_multilevel(
    source,
    n_quad,
    *,
    max_iter=200,
    gtol=1e-9,
    tau_prior=None,
    coef_prior=None,
):
    """Fit ``(beta, b, tau)`` by maximising the AGQ marginal likelihood.

    With priors (``tau_prior`` an object of :mod:`skre.priors` on tau,
    ``coef_prior = (means, precisions)`` a normal prior on the standardized
    slopes) the result is the posterior mode of ``(beta, b, tau)`` with the group
    effects integrated out, and ``loglik`` the likelihood there.
    """
    scale = source.n_groups
    log_prior = make_log_prior(source.n_covariates, tau_prior, coef_prior)
    # a start; refined if tau may be 0
    start = getattr(source, "start_pooled", None)
    if start is not None:
        cp = start(coef_prior=coef_prior)
    else:
        cp = source.pooled(max_iter=3, tol=1e-3, coef_prior=coef_prior)
    beta0, b0 = cp.coef, float(cp.intercepts[0])
    S, info = source.tau2_score(beta0, b0)
    tau0 = float(np.clip(np.sqrt(S / info), 0.05, 3.0)) if S > 0 else 0.1
    # pooled logistic coefficients are attenuated by about sqrt(1 + c^2 tau^2),
    # c = 16 sqrt(3) / (15 pi) (Zeger, Liang & Albert 1988): undo that in the start
    k = np.sqrt(1.0 + 0.346 * tau0**2)
    x0 = np.concatenate([beta0 * k, [b0 * k, np.log(tau0)]])

    # the size of the gradient's terms per group, for its rounding floor
    grad_scale = getattr(source, "n_trials", 0.0) / max(scale, 1.0)

    def objective(model):  # per group, so that tolerances do not depend on size
        nll = negative_loglik(model, log_prior)

        def fun_grad(x):
            f, g = nll(x)
            return f / scale, g / scale

        def hessian(x):
            H = nll.hessian(x)
            return None if H is None else H / scale

        fun_grad.hessian = hessian
        return fun_grad

    stage = {}  # the Laplace stage's likelihood: its modes start the next

    def laplace_stage(x0, hess_inv0):
        """The Laplace fit that seeds a staged fit (only to STAGE_XTOL)."""
        stage["model"] = source.likelihood(1)
        if hasattr(source, "start_modes"):  # saves Newton passes of its first modes
            stage["model"]._u = source.start_modes(tau0)
        return minimize_smooth(
            objective(stage["model"]),
            x0,
            gtol=gtol,
            grad_scale=grad_scale,
            max_iter=max_iter,
            hess_inv0=hess_inv0,
            polish=0,
            xtol=STAGE_XTOL,
        )

    def hess_inv0():  # the start's curvature, when the optimizer needs it
        H0 = source.information(beta0, b0, tau0)
        if coef_prior is not None:  # a narrow prior dominates its slope's curvature
            H0[: len(beta0), : len(beta0)] += np.diag(coef_prior[1])
        return _positive_definite(H0) * scale

    unresolved = 0
    if n_quad == "auto":
        n_quad, unresolved, x0, hess_inv0, n_iter = _auto_nodes(
            source, laplace_stage, x0, hess_inv0, stage
        )
        agq = source.likelihood(n_quad)
        staged = np.ndim(n_quad) > 0 or source.n_rows * n_quad > STAGED_WORK
        cheap = not staged
    else:
        agq = source.likelihood(n_quad)
        cheap = source.n_rows * n_quad <= STAGED_WORK
        n_iter = 0
    if not cheap and np.ndim(n_quad) == 0 and n_quad > 1 and n_iter == 0:
        laplace = laplace_stage(x0, hess_inv0)
        x0, hess_inv0, n_iter = laplace.x, laplace.hess_inv, laplace.n_iter
    if "model" in stage and hasattr(agq, "warm_start"):
        agq.warm_start(stage["model"])
    elif hasattr(source, "start_modes") and np.ndim(n_quad) == 0:
        agq._u = source.start_modes(tau0)  # one Newton step from 0
    if stage.get("store"):  # the node choice's evaluations at the start
        agq.prime(stage.pop("store"))  # (the rest of them freed)
    quasi_newton = cheap or (np.ndim(n_quad) == 0 and n_quad == 1)
    bhhh = not quasi_newton and source.n_groups >= BHHH_GROUPS
    at_zero = 0.0 if tau_prior is None else float(tau_prior.logpdf(0.0))

    pooled = []

    def decide_boundary(f_opt):
        """tau = 0 is the maximum when the tau^2 score at the complete-pooling
        fit (with the prior's curvature there) is not positive and no interior
        point (``f_opt``, the best found) beats complete pooling."""
        if not pooled:  # the complete-pooling fit, once
            cp = source.pooled(coef_prior=coef_prior)
            beta0, b0 = cp.coef, float(cp.intercepts[0])
            S = source.tau2_score(beta0, b0)[0] + _prior_tau2_slope(tau_prior)
            f0 = cp.loglik + log_prior(np.r_[beta0, b0, -np.inf])[0]
            pooled.extend([cp, S, f0])
        cp, S, f0 = pooled
        return S <= 0 and f_opt <= f0 + 1e-9 * max(1.0, abs(f0)), cp, S

    boundary = False
    if n_iter and not quasi_newton and np.isfinite(at_zero) and x0[-1] < LOG_TAU_ZERO:
        # the Laplace stage went towards tau = 0: decide the boundary first. On
        # that plateau the quadrature's Newton steps only crawl (measured: 200
        # passes, 7 s on 3e5 rows, for the same complete-pooling answer)
        boundary, cp, S = decide_boundary(-objective(agq)(x0)[0] * scale)
    if not boundary:
        agq.want_outer = bhhh  # Newton steps from Laplace's optimum: see _bhhh
        # small data: Newton steps on the Louis Hessian where the likelihood
        # has one (no covariates, see MarginalLikelihood._louis), then BFGS
        newton = (
            cheap
            and quasi_newton
            and source.n_covariates == 0
            and hasattr(agq, "want_hessian")
        )
        agq.want_hessian = newton
        goal = objective(agq)
        options = dict(
            gtol=gtol,
            xtol=1e-8 if cheap else REFINE_XTOL,
            grad_scale=grad_scale,
            max_iter=max_iter,
            measure_hessian=cheap,
            quasi_newton=quasi_newton,
            curvature=_bhhh(agq, x0, scale, coef_prior) if bhhh else None,
            hessian=goal.hessian if newton else None,
            last_step=NEWTON_LAST_STEP,
        )
        # steps heading to tau = 0 stop there and the boundary is decided: on
        # that plateau they would only crawl (a small fit: about 40 evaluations)
        early = quasi_newton and np.isfinite(at_zero)
        res = minimize_smooth(
            goal,
            x0,
            hess_inv0=hess_inv0,
            stop=(lambda x: x[-1] < LOG_TAU_ZERO) if early else None,
            **options,
        )
        if res.stopped:
            boundary, cp, S = decide_boundary(-res.fun * scale)
            if not boundary:  # an optimum below tau = 0.01: on to it
                n_iter += res.n_iter
                res = minimize_smooth(goal, res.x, hess_inv0=res.hess_inv, **options)
        agq.want_outer = False
        if newton:
            agq.want_hessian, agq.hessian = False, None
        if (
            not boundary
            and np.isfinite(at_zero)
            and (S <= 0 or res.x[-1] < LOG_TAU_ZERO)
        ):
            boundary, cp, S = decide_boundary(-res.fun * scale)
    if boundary:
        beta0, b0 = cp.coef, float(cp.intercepts[0])
        params = np.concatenate([beta0, [b0, 0.0]])
        converged, message = cp.converged, "boundary: tau = 0 (complete pooling)"
        n_iter += cp.n_iter
    else:
        params = np.concatenate([res.x[:-1], [np.exp(res.x[-1])]])
        converged, message = res.converged, res.message
        n_iter += res.n_iter
    posterior = agq.posterior(params)
    loglik = float(source.group_weight @ posterior.log_marginal)
    return MultilevelResult(
        params[:-2],
        float(params[-2]),
        float(params[-1]),
        float(loglik),
        converged,
        max(n_iter, 1),
        message,
        bool(boundary),
        float(S),
        posterior,
        agq,
        cp,
        log_prior,
        n_quad,
        unresolved,
    )


def _auto_nodes(source, laplace_stage, x0, hess_inv0, stage):
    """``n_quad="auto"``: the Laplace fit, then each group's node count.

    Small data (rows x 25 nodes within :data:`STAGED_WORK`) get 25 nodes
    everywhere, which costs little. Otherwise the Laplace fit converges
    first, and at its estimate each group gets the fewest nodes of
    :data:`~skre._core.quadrature.NODE_LEVELS` at which its log-likelihood is
    stable (:func:`~skre._core.quadrature.node_counts`); the caller then
    refines with Newton steps on that rule, starting from Laplace's optimum
    and curvature. Returns ``(n_nodes, unresolved, x0, hess_inv0, n_iter)``.
    """
    if source.n_rows * NODE_LEVELS[-1] <= STAGED_WORK:
        return NODE_LEVELS[-1], 0, x0, hess_inv0, 0
    laplace = laplace_stage(x0, hess_inv0)
    params = np.r_[laplace.x[:-1], np.exp(laplace.x[-1])]
    chooser = getattr(source, "node_counts", None)
    if chooser is None or params[-1] == 0.0:
        counts, unresolved = NODE_LEVELS[-1], 0
    else:
        model = stage.get("model")
        if hasattr(model, "warm_start"):  # in memory: share the modes and passes
            stage["store"] = {}
            counts, left = chooser(params, warm=model, store=stage["store"])
        else:
            counts, left = chooser(params)
        unresolved = len(left)
    return counts, unresolved, laplace.x, laplace.hess_inv, laplace.n_iter


def _bhhh(model, x, scale, coef_prior):
    """The first Hessian of the Newton steps that refine Laplace's optimum.

    The sum of the outer products of the groups' scores (BHHH), measured with
    the first gradient at ``x``: at the optimum of a likelihood whose groups are
    independent it estimates the information to within sampling error, far
    closer than the BFGS estimate left by the Laplace fit. A prior on the
    slopes adds its precision. Falls back to the given inverse Hessian when
    the scores were not measured.
    """

    def curvature(fallback):
        J = model.outer
        if J is None or not np.all(np.isfinite(J)):
            return fallback
        d = np.ones(len(x))
        d[-1] = np.exp(x[-1])  # from tau to log tau
        H = J * np.outer(d, d)
        if coef_prior is not None:
            p = len(coef_prior[1])
            H[:p, :p] += np.diag(coef_prior[1])
        return _positive_definite(H) * scale

    return curvature


def make_log_prior(p, tau_prior=None, coef_prior=None):
    """``x -> (log prior, gradient)`` in ``x = (beta, b, log tau)``.

    ``tau_prior`` is on tau itself (so a mode in tau, as blme's); ``coef_prior``
    is ``(means, precisions)`` of independent normals on the slopes.
    """

    def log_prior(x):
        grad = np.zeros(len(x))
        value = 0.0
        if coef_prior is not None:
            mean, prec = coef_prior
            dev = x[:p] - mean
            value -= 0.5 * float(np.sum(prec * dev * dev))
            grad[:p] = -prec * dev
        if tau_prior is not None:
            tau = np.exp(x[-1])
            value += float(tau_prior.logpdf(tau))
            grad[-1] = tau * float(tau_prior.dlogpdf(tau)) if tau > 0 else 0.0
        return value, grad

    def hessian(x, step=1e-5):
        """The log prior's Hessian in ``x``: the slopes' precisions, and a
        central difference of the log tau gradient (priors have no second
        derivative; this one feeds only Newton steps' curvature)."""
        H = np.zeros((len(x), len(x)))
        if coef_prior is not None:
            H[:p, :p] = -np.diag(coef_prior[1])
        if tau_prior is not None:
            up, down = np.exp(x[-1] + step), np.exp(x[-1] - step)
            slope_up = up * float(tau_prior.dlogpdf(up))
            slope_down = down * float(tau_prior.dlogpdf(down))
            H[-1, -1] = (slope_up - slope_down) / (2.0 * step)
        return H

    log_prior.hessian = hessian
    return log_prior


def _prior_tau2_slope(tau_prior, eps=1e-8):
    """d log p(tau) / d tau^2 as tau -> 0 (0 without a prior)."""
    return 0.0 if tau_prior is None else float(tau_prior.dlogpdf(eps)) / (2 * eps)


def negative_loglik(model, log_prior=None):
    """``x -> (-(loglik + log prior), -grad)`` in ``x = (beta, b, log tau)``,
    unscaled."""

    last = {}

    def fun_grad(x):
        if x[-1] > MAX_LOG_TAU:  # a line search probing absurd tau: reject the step
            last.clear()
            return np.inf, np.full(len(x), np.nan)
        params = np.concatenate([x[:-1], [np.exp(x[-1])]])
        val, grad = model.value_and_grad(params)
        last.update(x=x, grad_tau=grad[-1])
        grad[-1] *= params[-1]
        if log_prior is not None:
            lp, lg = log_prior(x)
            val, grad = val + lp, grad + lg
        return -val, -grad

    def hessian(x):
        """The objective's Hessian at ``x``, just evaluated: the model's (in
        ``(beta, b, tau)``, when it has one) taken to log tau, plus the
        prior's; None without."""
        H = getattr(model, "hessian", None)
        if H is None or "x" not in last or not np.array_equal(last["x"], x):
            return None
        if H.shape != (len(x), len(x)):
            return None
        tau = np.exp(x[-1])
        d = np.ones(len(x))
        d[-1] = tau
        H = H * np.outer(d, d)
        H[-1, -1] += tau * last["grad_tau"]  # d/dlog tau of tau * dL/dtau
        if log_prior is not None:
            H = H + log_prior.hessian(x)
        return -H

    fun_grad.hessian = hessian
    return fun_grad
