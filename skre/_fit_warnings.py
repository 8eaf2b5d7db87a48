"""The warnings a fit ends with, the same for data in memory and on Dask.

The estimators (:mod:`skre._multilevel`, :mod:`skre._pooling`) and the Dask
fits (:mod:`skre._dask.fit`) call them with the estimator (for its name and
priors) and the core's result; :func:`skre.exceptions.warn` points each at the
user's line.
"""

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._core.accuracy import LEVELS
from ._core.grouping import row_offset
from ._core.multilevel import UNIDENTIFIED
from .exceptions import BoundaryWarning, QuadratureWarning, warn


def warn_unconverged(est, res, what):
    """The ConvergenceWarning of a logistic fit that stopped unconverged."""
    if not res.converged:
        warn(
            f"{type(est).__name__}: the {what} did not converge ({res.message}). "
            "If covariates separate the outcomes perfectly the maximum-likelihood "
            "slopes are infinite; otherwise raise max_iter.",
            ConvergenceWarning,
        )


def warn_separated_without_prior(est, design, fit):
    """The SeparationWarning of a random-slope or nested fit (``fit``: its
    ``b`` and ``beta`` on the design's rows, which the Dask fit gathers too),
    whose advice is not a coef_prior: these fits take none yet."""
    rows = design.data
    est._warn_if_separated(
        design,
        fit.b + rows.Z @ fit.beta + row_offset(rows),
        remedy="Random slopes and nested groups take no coef_prior yet: fit the "
        "random intercept alone with one, or leave out the separating covariate.",
    )


def warn_optimizer(name, res):
    """The ConvergenceWarning of a random-slope or nested fit that stopped
    short of a maximum (``name``: the estimator's class name)."""
    if not res.converged:
        warn(
            f"{name}: the optimizer did not converge ({res.message}); raise "
            "max_iter or check the covariates.",
            ConvergenceWarning,
        )


#: a fixed rule warns when one Newton step towards the next larger rule moves
#: an estimate by more than this many standard errors
RULE_SHIFT_SE = 0.1


def warn_rule(est, fit, check):
    """Warn when the quadrature's own measurement at the estimate says the
    fitted rule is not accurate (see :class:`~skre._core.multilevel.RuleCheck`).

    ``n_quad="auto"`` warns only when its groups reached the top level without
    meeting the target; a fixed ``n_quad`` when the next larger rule moves an
    estimate by more than :data:`RULE_SHIFT_SE` standard errors. The message
    quotes log-likelihoods on the ``loglik_`` scale and the measured moves.
    """
    if check is None:
        return
    name = type(est).__name__
    loglik = fit.loglik + fit.design.constant
    se = np.where(check.se > 0, check.se, np.inf)
    z = np.abs(check.shift) / se
    tau = fit.tau
    moved_tau = tau * np.exp(check.shift[-1])
    rules = "the larger rules" if check.reference == "next larger" else "that rule"
    what = (
        f"one Newton step on {rules} moves tau by {z[-1]:.2g} standard errors "
        f"(from {tau:.6g} to {moved_tau:.6g})"
    )
    if len(z) > 2:
        what += f", the coefficients by up to {np.max(z[:-1]):.2g} standard errors"
    else:
        what += f", the intercept by {z[0]:.2g} standard errors"
    if check.reference == "next larger":
        if check.tau_bound is not None:
            warn(
                f"{name}: tau is not pinned down: the fit stopped at tau = "
                f"{check.tau_bound:.6g}, the largest value at which "
                f"adaptive rules of up to {LEVELS[-1]} nodes compute every "
                "group's likelihood accurately; beyond it they cannot tell the "
                "likelihood from their own error, so tau may be larger. Report "
                "tau as at least this large, or set a tau_prior.",
                QuadratureWarning,
            )
            return
        if check.ok:
            return
        warn(
            f"{name}: n_quad='auto' did not reach its accuracy target at the "
            f"estimate: {check.unresolved} groups still change between "
            f"{LEVELS[-2]} and {LEVELS[-1]} adaptive nodes (their integrands "
            "are too far from normal for Gauss-Hermite rules). Measured "
            f"there, the log-likelihood ({loglik:.8g}) may be off by "
            f"{abs(check.d_loglik):.2g} or more (what the two rules differ by; "
            "where they converge slowly the error can be several times "
            f"that), and {what}: the estimates and loglik_ are the best these "
            "rules give, uncertain by about that much.",
            QuadratureWarning,
        )
        return
    if np.max(z) <= RULE_SHIFT_SE:
        return
    rule = (
        "Laplace approximation (n_quad=1)"
        if fit.n_quad == 1
        else (f"{int(fit.n_quad)}-node adaptive quadrature")
    )
    warn(
        f"{name}: the {rule} is not accurate at this estimate: with "
        f"{check.reference} nodes the log-likelihood here is "
        f"{loglik + check.d_loglik:.8g} instead of {loglik:.8g}, and {what}. "
        "The default n_quad='auto' raises the nodes until the fit is exact.",
        QuadratureWarning,
    )


def warn_boundary(est, res):
    """The BoundaryWarning of a fit at tau = 0, with its reason."""
    name = type(est).__name__
    if not res.boundary:
        return
    if res.message == UNIDENTIFIED:
        warn(
            f"{name}: tau is not identified by these data: every group has one "
            "trial and there are no covariates, so the likelihood depends on b "
            "and tau only through the mean probability, and tau = 0 (complete "
            "pooling, returned) fits as well as any. Groups of two or more "
            "trials identify tau; a tau_prior makes the fit a posterior mode.",
            BoundaryWarning,
        )
        return
    if getattr(est, "tau_prior", None) is not None:
        warn(
            f"{name}: the posterior mode of tau is 0 (a boundary fit): with "
            f"tau_prior={est.tau_prior!r}, whose density does not vanish at 0, "
            "the groups vary too little to move it, so every group gets the "
            "pooled estimate. A prior with density 0 at tau = 0 (Gamma(2.5, 0), "
            "blme's default) keeps tau positive.",
            BoundaryWarning,
        )
        return
    warn(
        f"{name}: the maximum-likelihood tau is 0 (a boundary fit): the groups "
        "vary no more than binomial noise explains, so complete pooling is "
        "appropriate and every group gets the pooled estimate. A prior on tau "
        "keeps it positive if you need partial pooling.",
        BoundaryWarning,
    )
