"""Maximum likelihood for the logistic random-intercept model.

``logit p_i = b + z_i' beta + xi_g``, ``xi_g ~ N(0, tau^2)``, with the group
effects integrated out by adaptive Gauss-Hermite quadrature. The optimizer works
on ``(beta, b, log tau)``; the boundary ``tau = 0`` is decided separately and
exactly: it is the maximum when the score for ``tau^2`` at the complete-pooling
fit is not positive and no interior point beats complete pooling.
"""

from dataclasses import dataclass

import numpy as np

from .accuracy import LEVELS, Target, level_index
from .optimize import OptimResult, _positive_definite, minimize_smooth
from .quadrature import MarginalLikelihood, Posterior
from .source import InMemory  # noqa: F401 (the in-memory source, imported from here)

# rows x nodes beyond which the fit runs Laplace first and then refines with
# the full quadrature from the Laplace optimum and its curvature
STAGED_WORK = 200_000
# how close the Laplace stage of a staged fit gets (its Newton step) before the
# node counts are chosen and the quadrature's own Newton steps take over: it is
# only their start (measured: 3 fewer Laplace evaluations on 10^5 groups x 10
# rows, no more quadrature steps on five test sets; the estimates move < 1e-8)
STAGE_XTOL = 1e-4
# the Newton step (estimated distance to the optimum, in standardized
# parameters) at which a staged fit's quadrature steps stop, as a small fit's:
# their curvature is an estimate (the groups' outer products, BFGS's updates),
# so the step it implies can be several times short of the true distance; at
# 1e-6, with the last step taken, fits in the stress benchmark were up to
# 1.3e-5 off in a small slope, in silence (benchmarks/bench_accuracy.py)
REFINE_XTOL = 1e-8
# a final step below this is not worth its pass over the rows
FINAL_STEP = 1e-8
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
# the first Newton step (standardized parameters) beyond which a staged fit's
# quadrature steps start with BFGS instead: the Laplace estimate is then far
# from the quadrature's (twin pairs: tau 13 against 1.7)
FAR_STEP = 0.25
# small fits that end at tau = 0 or below this start again from tau = 2 and
# keep the better maximum: the likelihood in tau can have two (three groups,
# 45 of 176, 2 of 2 and 3 of 3: the score at tau = 0 is negative, yet tau =
# 2.75 is higher by 2.2 in the log-likelihood; lme4 starts at tau = 1)
SECOND_START_BELOW = 0.5
SECOND_START_TAU = 2.0
#: the fit's message when tau cannot be identified
UNIDENTIFIED = "boundary: tau is not identified (one trial per group and no covariates)"
# refits n_quad="auto" makes at most, each with more nodes for the groups that
# fell short of the target at the previous estimate
MAX_ROUNDS = 6
# the rule a Laplace fit (n_quad=1) is measured against at its estimate: a
# few nodes show when it is far off (twin pairs: tau 13 for 1.7)
LAPLACE_CHECK = 3


@dataclass
class RuleCheck:
    """How accurate the fitted rule is at the estimate, as measured there.

    ``reference``: the rule the fitted one was compared with (a node count, or
    ``"next larger"`` for ``n_quad="auto"``, whose groups are each compared
    with the next larger level); ``d_loglik``: the reference's
    log-likelihood minus the fitted rule's; ``shift``: the estimated move of
    ``(beta, b, log tau)`` to the reference's optimum (one Newton step);
    ``se``: standard errors of ``(beta, b, log tau)`` from the optimizer's
    curvature; ``ok``: within the target (``n_quad="auto"``); ``unresolved``:
    groups still unsettled at the top level; ``rounds``: the refits it took;
    ``tau_bound``: where the estimate stopped at the largest tau at which the
    rules resolve every group (``_Fitter._resolved_bound``), that tau.
    """

    reference: object
    d_loglik: float
    shift: np.ndarray
    se: np.ndarray
    ok: bool = True
    unresolved: int = 0
    top: int = LEVELS[-1]
    rounds: int = 0
    tau_bound: float | None = None


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
    check: RuleCheck | None = None  # the rule's accuracy at the estimate


def fit_multilevel(
    source,
    n_quad,
    *,
    max_iter=200,
    gtol=1e-9,
    tau_prior=None,
    coef_prior=None,
    constant=0.0,
):
    """Fit ``(beta, b, tau)`` by maximising the AGQ marginal likelihood.

    With priors (``tau_prior`` an object of :mod:`skre.priors` on tau,
    ``coef_prior = (means, precisions)`` a normal prior on the standardized
    slopes) the result is the posterior mode of ``(beta, b, tau)`` with the group
    effects integrated out, and ``loglik`` the likelihood there.

    ``n_quad="auto"`` fits with 25 nodes (small data) or with each group's
    node count chosen at the Laplace estimate (large data), then measures at
    the estimate whether every group's rule is accurate (:mod:`.accuracy`);
    where one is not, it raises that group's nodes and refits from there,
    until the measurement at the final estimate passes or the groups reach
    the top level. A fixed ``n_quad`` is measured against the next larger
    rule at its estimate. Either measurement is the result's ``check``.
    ``constant``: the binomial constants of the data, which the accuracy
    target's log-likelihood includes (the scale of ``loglik_``).
    """
    fitter = _Fitter(source, max_iter, gtol, tau_prior, coef_prior)
    fitter.constant = constant
    auto = isinstance(n_quad, str)
    rule = LEVELS[level_index(25)] if auto else int(n_quad)
    fitter.small = source.n_rows * rule <= STAGED_WORK
    if auto and not fitter.small:
        rule = fitter.stage_counts()
    elif not fitter.small and rule > 1:
        fitter.laplace_stage()
    if fitter.unidentified():
        # one trial a group, no covariates: the likelihood depends on (b, tau)
        # only through the mean probability, so tau = 0 is a maximum as good
        # as any; complete pooling, and the estimator says why
        fitter.decide_boundary(np.inf)
        fitter.message = UNIDENTIFIED
        return fitter.result(source.likelihood(rule), None, True, rule, None)
    agq, res, boundary = fitter.run(rule, first=True)
    if fitter.small and (boundary or res.x[-1] < np.log(SECOND_START_BELOW)):
        agq, res, boundary = fitter.second_start(rule, agq, res, boundary)
    check = None
    if not boundary:
        if auto:
            agq, res, boundary, rule, check = fitter.verify(agq, res, rule)
        else:
            check = fitter.measure(agq, res, rule)
    return fitter.result(agq, res, boundary, rule, check)


class _Fitter:
    """The steps of :func:`fit_multilevel`, sharing its start, its objective
    and the complete-pooling fit of the boundary decision."""

    def __init__(self, source, max_iter, gtol, tau_prior, coef_prior):
        self.source, self.max_iter, self.gtol = source, max_iter, gtol
        self.tau_prior, self.coef_prior = tau_prior, coef_prior
        self.scale = source.n_groups
        self.log_prior = make_log_prior(source.n_covariates, tau_prior, coef_prior)
        # a start; refined if tau may be 0
        start = getattr(source, "start_pooled", None)
        if start is not None:
            cp = start(coef_prior=coef_prior)
        else:
            cp = source.pooled(max_iter=3, tol=1e-3, coef_prior=coef_prior)
        self.cp_start = cp
        self.beta0, self.b0 = cp.coef, float(cp.intercepts[0])
        S, info = source.tau2_score(self.beta0, self.b0)
        self.S = S
        positive = S > 0 and info > 0  # (info 0: every weight underflowed)
        self.tau0 = float(np.clip(np.sqrt(S / info), 0.05, 3.0)) if positive else 0.1
        self.x0 = self._start_at(self.tau0)
        self.hess_inv0 = self._start_curvature
        self.first_start = (self.x0, self.hess_inv0)
        # the size of the gradient's terms per group, for its rounding floor
        self.grad_scale = getattr(source, "n_trials", 0.0) / max(self.scale, 1.0)
        self.at_zero = 0.0 if tau_prior is None else float(tau_prior.logpdf(0.0))
        self.n_iter = 0
        self.warm = None  # a likelihood whose modes start the next one's
        self.store = None  # the node choice's evaluations, for the first step
        self.pooled = None  # (cp, S, f0) of the boundary decision, once made
        self.small = True
        self.constant = 0.0
        # the largest log tau the objective evaluates (lowered by verify to
        # where the rules still resolve every group: _resolved_bound)
        self.max_log_tau = MAX_LOG_TAU

    def unidentified(self):
        """No covariates, no offsets that vary, no prior and every group one
        trial (or less). (With offsets that vary, the probability of a success
        varies with them in a way tau shapes: a black-box attack found tau = 0
        declared where the likelihood at tau = 1 was 1.9 higher.)"""
        if self.source.n_covariates or self.tau_prior is not None:
            return False
        offset = getattr(getattr(self.source, "data", None), "offset", None)
        if offset is not None and np.ptp(offset) > 0:
            return False
        most = getattr(self.source, "max_group_trials", None)
        return most is not None and most() <= 1.0

    def second_start(self, rule, agq, res, boundary):
        """Fit again from tau = :data:`SECOND_START_TAU`, keep the higher
        maximum (see :data:`SECOND_START_BELOW`)."""
        best = self.pooled[2] if boundary else -res.fun * self.scale
        tau = SECOND_START_TAU
        saved = (self.x0, self.hess_inv0, self.warm, self.n_iter, self.S)
        self.x0 = self._start_at(tau)
        H = self.source.information(self.beta0, self.b0, tau)
        self.hess_inv0, self.warm = _positive_definite(H) * self.scale, None
        other, other_res, other_boundary = self.run(rule)
        if not other_boundary and -other_res.fun * self.scale > best + 1e-9 * max(
            1.0, abs(best)
        ):
            # the start a refit begins from again (verify's restart): the
            # first one leads back to the lower maximum (two groups, one
            # with an offset of 25: tau = 0 at -53.7 against -35.1)
            self.first_start = (self.x0, self.hess_inv0)
            return other, other_res, False
        self.x0, self.hess_inv0, self.warm, self.n_iter, self.S = saved
        return agq, res, boundary

    def _start_at(self, tau):
        """``x = (beta, b, log tau)`` at ``tau`` from the complete-pooling
        start: pooled logistic coefficients are attenuated by about sqrt(1 +
        c^2 tau^2), c = 16 sqrt(3) / (15 pi) (Zeger, Liang & Albert 1988),
        which this undoes."""
        k = np.sqrt(1.0 + 0.346 * tau**2)
        return np.concatenate([self.beta0 * k, [self.b0 * k, np.log(tau)]])

    def _start_curvature(self):
        """The start's inverse Hessian, when the optimizer needs it."""
        H0 = self.source.information(self.beta0, self.b0, self.tau0)
        if self.coef_prior is not None:  # a narrow prior dominates its slope's
            H0[: len(self.beta0), : len(self.beta0)] += np.diag(self.coef_prior[1])
        return _positive_definite(H0) * self.scale

    def objective(self, model):
        """Per group, so that tolerances do not depend on size."""
        nll = negative_loglik(model, self.log_prior, self.max_log_tau)
        scale = self.scale

        def fun_grad(x):
            f, g = nll(x)
            return f / scale, g / scale

        def hessian(x):
            H = nll.hessian(x)
            return None if H is None else H / scale

        fun_grad.hessian = hessian
        return fun_grad

    def laplace_stage(self):
        """The Laplace fit that seeds a staged fit (only to STAGE_XTOL)."""
        model = self.source.likelihood(1)
        if hasattr(self.source, "start_modes"):  # saves passes of its first modes
            model._u = self.source.start_modes(self.tau0)
        res = minimize_smooth(
            self.objective(model),
            self.x0,
            gtol=self.gtol,
            grad_scale=self.grad_scale,
            max_iter=self.max_iter,
            hess_inv0=self.hess_inv0,
            polish=0,
            xtol=STAGE_XTOL,
        )
        self.x0, self.hess_inv0, self.n_iter = res.x, res.hess_inv, res.n_iter
        self.warm = model
        return res

    def stage_counts(self):
        """Large data: the Laplace fit, then each group's node count at its
        estimate (up to 25 nodes: the Laplace estimate may be far from the
        quadrature's), the evaluations kept for the first quadrature step."""
        res = self.laplace_stage()
        tau = np.exp(res.x[-1])
        if tau == 0.0 or not hasattr(self.source, "select_nodes"):
            return LEVELS[level_index(25)]
        params = np.r_[res.x[:-1], tau]
        target = self.target(res)
        memory = hasattr(self.warm, "warm_start")
        self.store = {} if memory else None
        sel = self.source.select_nodes(
            params,
            target,
            top=level_index(25),
            warm=self.warm if memory else None,
            store=self.store,
        )
        return sel.counts

    def target(self, res):
        """The accuracy target at an optimizer result ``res``."""
        cov = np.asarray(res.hess_inv) / self.scale
        loglik = -res.fun * self.scale + self.constant
        return Target.at(res.x, cov, loglik, self.scale)

    def decide_boundary(self, f_opt):
        """tau = 0 is the maximum when the tau^2 score at the complete-pooling
        fit (with the prior's curvature there) is not positive and no interior
        point (``f_opt``, the best found) beats complete pooling."""
        if self.pooled is None:  # the complete-pooling fit, once
            source, coef_prior = self.source, self.coef_prior
            cp = source.pooled(coef_prior=coef_prior)
            beta0, b0 = cp.coef, float(cp.intercepts[0])
            S = source.tau2_score(beta0, b0)[0] + _prior_tau2_slope(self.tau_prior)
            f0 = cp.loglik + self.log_prior(np.r_[beta0, b0, -np.inf])[0]
            self.pooled = (cp, S, f0)
        cp, S, f0 = self.pooled
        self.S = S
        return S <= 0 and f_opt <= f0 + 1e-9 * max(1.0, abs(f0))

    def run(self, rule, first=False):
        """Fit on ``rule`` (one node count, or one per group) from ``x0``:
        ``(likelihood, optimizer result, boundary)``."""
        source, scale = self.source, self.scale
        agq = source.likelihood(rule)
        if self.warm is not None and hasattr(agq, "warm_start"):
            agq.warm_start(self.warm)
        elif hasattr(source, "start_modes") and np.ndim(rule) == 0:
            agq._u = source.start_modes(self.tau0)  # one Newton step from 0
        if self.store:  # the node choice's evaluations at the start
            agq.prime(self.store)
        self.store = None  # (the rest of them freed)
        cheap = self.small
        quasi_newton = cheap or (np.ndim(rule) == 0 and rule == 1)
        bhhh = not quasi_newton and source.n_groups >= BHHH_GROUPS
        x0, finite_zero = self.x0, np.isfinite(self.at_zero)
        goal = self.objective(agq)
        if first and self.n_iter and not quasi_newton and finite_zero:
            if x0[-1] < LOG_TAU_ZERO:
                # the Laplace stage went towards tau = 0: decide the boundary
                # first. On that plateau the quadrature's Newton steps only
                # crawl (measured: 200 passes, 7 s on 3e5 rows, for the same
                # complete-pooling answer)
                if self.decide_boundary(-goal(x0)[0] * scale):
                    return agq, None, True
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
        options = dict(
            gtol=self.gtol,
            xtol=1e-8 if cheap else REFINE_XTOL,
            grad_scale=self.grad_scale,
            max_iter=self.max_iter,
            measure_hessian=cheap,
            quasi_newton=quasi_newton,
            curvature=_bhhh(agq, x0, scale, self.coef_prior) if bhhh else None,
            hessian=goal.hessian if newton else None,
            last_step=NEWTON_LAST_STEP,
            far_step=FAR_STEP,
        )
        # steps heading to tau = 0 stop there and the boundary is decided: on
        # that plateau they would only crawl (a small fit: about 40 evaluations)
        early = quasi_newton and finite_zero
        res = minimize_smooth(
            goal,
            x0,
            hess_inv0=self.hess_inv0,
            stop=(lambda x: x[-1] < LOG_TAU_ZERO) if early else None,
            **options,
        )
        boundary = False
        if res.stopped:
            boundary = self.decide_boundary(-res.fun * scale)
            if not boundary:  # an optimum below tau = 0.01: on to it
                self.n_iter += res.n_iter
                res = minimize_smooth(goal, res.x, hess_inv0=res.hess_inv, **options)
        agq.want_outer = False
        if newton:
            agq.want_hessian, agq.hessian = False, None
        if not cheap and not quasi_newton and res.converged:
            res = _final_step(goal, res)
        if not boundary and finite_zero and (self.S <= 0 or res.x[-1] < LOG_TAU_ZERO):
            boundary = self.decide_boundary(-res.fun * scale)
        if not boundary:
            self.n_iter += res.n_iter
        return agq, res, boundary

    def verify(self, agq, res, rule):
        """``n_quad="auto"`` at the estimate: each group's rule compared with
        the next smaller one; groups short of the target get more nodes and
        the fit goes on from there, until every group passes or sits at the
        top level. Returns ``(agq, res, boundary, rule, check)``."""
        source, rounds, restarted, bounded = self.source, 0, False, False
        if not hasattr(source, "select_nodes"):
            return agq, res, False, rule, None
        G = len(source.group_weight)
        while True:
            target = self.target(res)
            params = np.r_[res.x[:-1], np.exp(res.x[-1])]
            counts = np.broadcast_to(np.asarray(rule), (G,))
            memory = hasattr(agq, "warm_start")
            exact = _exact_to_rounding(agq, params, rule) if memory else None
            if exact is not None:  # every group's rule agrees to rounding
                cov = np.asarray(res.hess_inv) / self.scale
                check = RuleCheck(
                    "next larger",
                    exact,
                    np.zeros(len(params)),
                    np.sqrt(np.maximum(np.diag(cov), 0.0)),
                    rounds=rounds,
                )
                return agq, res, False, rule, check
            sel = source.select_nodes(
                params,
                target,
                counts=counts,
                warm=agq if memory else None,
                fitted=True,
            )
            fine = target.passes(sel.e_loglik, sel.e_score, self.scale)
            bound = None
            capped = res.x[-1] >= MAX_LOG_TAU - 1e-3  # (tau ~ 2e4: absurd)
            retry = restarted and capped and not (fine or bounded)
            if retry and len(sel.unresolved) and rounds < MAX_ROUNDS:
                bound = self._resolved_bound(res, target, sel.counts)
            if bound is not None:
                # the fit from the start again followed the rules' error, to
                # the cap on tau: once more, only up to where they resolve
                # every group (an estimate short of the cap, where the rules
                # are not accurate either, is kept and its error measured)
                bounded, self.max_log_tau = True, bound
                rounds += 1
                rule = sel.counts
                (self.x0, self.hess_inv0), self.warm = self.first_start, None
                agq, res, boundary = self.run(rule)
                if boundary:
                    return agq, res, True, rule, None
                continue
            if fine or not sel.raised or rounds >= MAX_ROUNDS:
                break
            rounds += 1
            rule = sel.counts
            if len(sel.unresolved) and not restarted:
                # no rule resolves some groups at this estimate: it is likely
                # an artefact of the rule's error (followed to a tau far above
                # what the groups pin down), so the fit starts over
                restarted = True
                (self.x0, self.hess_inv0), self.warm = self.first_start, None
            else:
                self.x0, self.hess_inv0, self.warm = res.x, res.hess_inv, agq
            agq, res, boundary = self.run(rule)
            if boundary:
                return agq, res, True, rule, None
        cov = np.asarray(res.hess_inv) / self.scale
        check = RuleCheck(
            "next larger",
            -sel.e_loglik,
            cov @ -sel.e_score,
            np.sqrt(np.maximum(np.diag(cov), 0.0)),
            fine,
            len(sel.unresolved),
            rounds=rounds,
        )
        if bounded and res.x[-1] >= self.max_log_tau - 1e-6:
            check.tau_bound = float(np.exp(self.max_log_tau))
        return agq, res, False, rule, check

    def _resolved_bound(self, res, target, counts, steps=12):
        """The largest log tau between the first start's and ``res.x``'s at
        which the rules ``counts`` resolve every group (no group left
        unresolved by :func:`select_nodes`), by bisection, with the pooled
        coefficients scaled as the start scales them (:meth:`_start_at`: the
        population-average coefficients held); None when that is not above
        the start's. Beyond it the rules' error, not the data,
        moves the likelihood (single binary rows at tau in the hundreds: the
        201-node rule puts the log-likelihood 9 above the exact integral)."""
        lo, hi = self.first_start[0][-1], res.x[-1]

        def resolved(log_tau):
            tau = np.exp(log_tau)
            params = np.r_[self._start_at(tau)[:-1], tau]
            sel = self.source.select_nodes(params, target, counts=counts, fitted=True)
            return not len(sel.unresolved)

        if not hi > lo or not resolved(lo) or resolved(hi):
            return None
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if resolved(mid) else (lo, mid)
        return lo if lo > self.first_start[0][-1] else None

    def measure(self, agq, res, rule):
        """A fixed rule at its estimate against the next larger level."""
        source = self.source
        if not hasattr(source, "compare_rules"):
            return None
        reference = (
            LAPLACE_CHECK
            if rule == 1
            else next((k for k in LEVELS if k > rule * 1.3), 2 * rule + 1)
        )
        params = np.r_[res.x[:-1], np.exp(res.x[-1])]
        memory = hasattr(agq, "warm_start")
        d_loglik, d_score = source.compare_rules(
            params, rule, reference, warm=agq if memory else None
        )
        cov = np.asarray(res.hess_inv) / self.scale
        return RuleCheck(
            reference,
            d_loglik,
            cov @ d_score,
            np.sqrt(np.maximum(np.diag(cov), 0.0)),
        )

    def result(self, agq, res, boundary, rule, check):
        if boundary:
            cp = self.pooled[0]
            beta0, b0 = cp.coef, float(cp.intercepts[0])
            params = np.concatenate([beta0, [b0, 0.0]])
            converged = cp.converged
            message = getattr(self, "message", "boundary: tau = 0 (complete pooling)")
            self.n_iter += cp.n_iter
        else:
            cp = self.pooled[0] if self.pooled is not None else self.cp_start
            params = np.concatenate([res.x[:-1], [np.exp(res.x[-1])]])
            converged, message = res.converged, res.message
        posterior = agq.posterior(params)
        loglik = float(self.source.group_weight @ posterior.log_marginal)
        return MultilevelResult(
            params[:-2],
            float(params[-2]),
            float(params[-1]),
            float(loglik),
            converged,
            max(self.n_iter, 1),
            message,
            bool(boundary),
            float(self.S),
            posterior,
            agq,
            cp,
            self.log_prior,
            rule,
            check,
        )


def _exact_to_rounding(agq, params, rule):
    """For one rule of every group (small data: 25 nodes), the next larger
    rule's total log-likelihood difference when every group's two values
    agree to rounding (1e-13 of each), else None. A rule that exact in each
    group's integral is as exact in its derivatives, so the estimates need no
    measure of their own; the posterior taken here is the fit's (the rats:
    the check costs one pass at 35 nodes without the scores)."""
    if np.ndim(rule) or not hasattr(agq, "group_values_at"):
        return None
    K = int(rule)
    larger = next((k for k in LEVELS if k > K), None)
    if larger is None:
        return None
    posterior = agq.posterior(params)
    finer = MarginalLikelihood(agq.data, agq.group_weight, larger)
    values = finer.group_values_at(params, posterior)
    diff = values - posterior.log_marginal
    if np.all(np.abs(diff) <= 1e-13 * np.maximum(1.0, np.abs(values))):
        return float(agq.group_weight @ diff)
    return None


def _final_step(goal, res):
    """A staged fit's last Newton step (below REFINE_XTOL: its error is
    about the curvature's relative error times the step, 1e-8 where the
    outer products are good to 1%), with an evaluation at its end: the fit
    reports, and the node check measures, the point it evaluated. On 10^6
    rows it saves the one or two passes that steps down to 1e-8 cost."""
    step = -res.hess_inv @ res.grad
    if np.max(np.abs(step)) <= FINAL_STEP:
        return res  # already within what the step would leave
    x = res.x + step
    f, g = goal(x)
    if not (np.isfinite(f) and f <= res.fun + 1e-13 * max(1.0, abs(res.fun))):
        return res  # (rounding: the step found no decrease)
    return OptimResult(
        x, f, g, res.n_iter + 1, res.n_eval + 1, True, res.message, res.hess_inv
    )


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


def negative_loglik(model, log_prior=None, max_log_tau=MAX_LOG_TAU):
    """``x -> (-(loglik + log prior), -grad)`` in ``x = (beta, b, log tau)``,
    unscaled; infinite beyond ``max_log_tau``."""

    last = {}

    def fun_grad(x):
        if x[-1] > max_log_tau:  # a line search probing absurd tau: reject the step
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
