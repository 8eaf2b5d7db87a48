"""Likelihood-ratio intervals of each group's probability under complete pooling.

A complete-pooling group estimate is the trials-weighted mean fitted
probability of the group's rows. Where the covariates separate the outcomes
the maximum-likelihood slopes are infinite, and the delta-method (Wald)
interval depends on where the optimizer stopped: it was ``[0, 1]`` for some
groups and of zero width for others. Profile-likelihood intervals stay well
defined, because the log-likelihood converges along the separating
direction (R's ``confint`` on a glm profiles the same way).

Each distinct covariate pattern (row of the design) gets the profile
interval of its linear predictor ``a + z'beta``: the values ``v`` whose
profile ``min {f : a + z'beta = v}`` of the negative log-likelihood ``f``
exceeds its infimum by at most ``chi2_1(level) / 2``. That profile is convex
in ``v`` (``f`` is convex and the constraint linear), and each of its values
is found by Newton's method on the constraint's affine subspace, which also
follows ``f`` to its infimum at infinity under separation. A pattern on one
side of the separation has estimate 0 (or 1), and its profile never rises on
that side: its interval is ``(0, upper)`` (or ``(lower, 1)``), one-sided as
the exact interval of a 0/n group is.

A group whose rows share one covariate pattern gets exactly that interval,
on the probability scale. A group with several patterns gets the
trials-weighted mean of its patterns' lower ends to the mean of their upper
ends: each pattern's end is reached at other coefficients, so this contains
the profile interval of the group's mean probability and is conservative
(wider); the exact one is a non-convex problem whose optimum lies at
infinity under separation, beyond what a local optimizer finds reliably.
"""

import numpy as np
from scipy import stats
from scipy.optimize import brentq
from scipy.special import expit

#: a pattern whose fitted logit is beyond this has estimate 0 (or 1), the end
#: of its interval on that side (``|eta| > 30`` marks separated rows)
BOUNDARY = 30.0
#: logits beyond this are probabilities 0 or 1 in double precision
#: (``expit(37) == 1.0``): the search for an end stops there
EDGE = 37.0


def profile_group_intervals(design, a, beta, level):
    """``(lower, upper)`` probabilities of each group of ``design`` under the
    complete-pooling fit ``(a, beta)`` (the intercept at the covariate means
    and the standardized slopes)."""
    data = design.data
    free = ~design.aliased
    X = np.column_stack([np.ones(len(data.Z)), data.Z[:, free]])
    objective = _Objective(X, data.successes, data.trials)
    theta_hat = np.r_[a, beta[free]]
    f_hat = objective.value(theta_hat)
    drop = stats.chi2.ppf(level, 1) / 2
    patterns, which = np.unique(X, axis=0, return_inverse=True)
    logits = np.array(
        [_linear_profile(objective, c, theta_hat, f_hat, drop) for c in patterns]
    )
    lower, upper = expit(logits[:, 0]), expit(logits[:, 1])
    which = which.ravel()
    weight = data.trials / design.group_trials[data.codes]
    return (
        data.group_sum(weight * lower[which]),
        data.group_sum(weight * upper[which]),
    )


class _Objective:
    """The negative binomial log-likelihood of a logistic model ``X theta``
    (binomial coefficients dropped), and its minimum on affine subspaces."""

    def __init__(self, X, successes, trials):
        self.X, self.m, self.n = X, successes, trials

    def value(self, theta):
        return self._f(self.X @ theta)

    def _f(self, eta):
        m, n = self.m, self.n
        return float(
            np.sum(m * np.logaddexp(0.0, -eta) + (n - m) * np.logaddexp(0.0, eta))
        )

    def minimize_on(self, base, N, phi):
        """``min_phi f(base + N phi)`` by damped Newton from ``phi``; returns
        ``(phi, f)``.

        The logits are ``X base + (X N) phi`` with the entries of ``X N``
        that vanish up to rounding set to 0, so rows on the constraint keep
        their logit exactly however far ``phi`` goes. Where ``f`` keeps
        decreasing towards infinity (separation within the subspace) the
        steps grow geometrically, and it stops once the Newton decrement,
        the predicted decrease, is below 1e-10.
        """
        eta0 = self.X @ base
        XN = self.X @ N
        scale = np.abs(self.X).sum(axis=1, keepdims=True)
        XN[np.abs(XN) <= 1e-12 * scale] = 0.0
        f = self._f(eta0 + XN @ phi)
        if N.shape[1] == 0:
            return phi, f
        for _ in range(500):
            eta = eta0 + XN @ phi
            p = expit(eta)
            g = XN.T @ (self.n * p - self.m)
            H = (XN.T * (self.n * p * expit(-eta))) @ XN
            ridge = 1e-12 * max(np.trace(H), 1e-300)
            step = -np.linalg.lstsq(H + ridge * np.eye(len(g)), g, rcond=None)[0]
            size = np.linalg.norm(step)
            cap = max(10.0, np.linalg.norm(phi))  # at most doubling phi
            if size > cap:
                step *= cap / size
            decrement = -(g @ step)
            if not decrement > 1e-10:
                break
            t = 1.0
            while True:
                trial = phi + t * step
                f_trial = self._f(eta0 + XN @ trial)
                if f_trial <= f - 1e-4 * t * decrement:
                    break
                t *= 0.5
                if t < 1e-12:
                    return phi, f
            phi, f = trial, f_trial
        return phi, f


def _linear_profile(objective, c, theta_hat, f_hat, drop):
    """Ends of the likelihood-ratio interval of ``v = c'theta`` (logits;
    ``-inf``/``inf`` where the profile does not rise by ``drop`` before the
    probability is 0 or 1 in double precision)."""
    v_hat = float(c @ theta_hat)
    N = np.linalg.svd(c[None, :])[2][1:].T  # orthonormal basis of c's null space
    ends = []
    for side in (-1.0, 1.0):
        if side * v_hat > BOUNDARY:  # the estimate is 0 (or 1): that end too
            ends.append(side * np.inf)
            continue
        state = {"phi": np.zeros(N.shape[1])}

        def excess(v, state=state):
            base = theta_hat + c * (v - v_hat) / (c @ c)
            state["phi"], f = objective.minimize_on(base, N, state["phi"])
            return f - f_hat - drop

        far = side * EDGE
        if excess(far) <= 0:  # no rise within what a double resolves
            ends.append(side * np.inf)
            continue
        inner = float(np.clip(v_hat, -EDGE, EDGE))
        if inner != v_hat and excess(inner) > 0:
            ends.append(inner)  # beyond EDGE: 0 or 1 in double precision
            continue
        ends.append(brentq(excess, far, inner, xtol=1e-8, rtol=1e-12, maxiter=200))
    return ends
