"""Random slopes: the fit of ``MultilevelBinomial(random_slopes=[...])``.

The core (:mod:`skre._core.slopes`) takes the fixed effects on the
standardized covariates of the :class:`~skre._design.Design` (as the random
intercept's fit does) and the random slopes on the user's own columns: the
covariance of the random effects is then lme4's (the intercept's variance at
covariates 0), and ``covariance="diagonal"`` means independent effects on the
user's scale, as lme4's ``(1 + x || g)`` (on standardized columns it would be
another model: shifting a column correlates the intercept with its slope).
"""

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, log_expit, logsumexp

from ._core.accuracy import LEVELS, first_settled
from ._core.population import LogitNormal
from ._core.rules import logistic_normal_rule
from ._core.slopes import (
    SINH_RULES,
    SlopeData,
    SlopeLikelihood,
    cholesky_of,
    fit_slopes,
    hessian,
    information,
    lower_bounds,
    n_theta,
    newton,
    node_rule,
    result_of,
)
from ._fit_result import FitResult
from ._intervals import table, vcov_frame, wald_rows
from ._multilevel_fit import heldout_union
from ._slopes_profile import profile_rows

#: n_quad="auto": the first rule (nodes per dimension) for q = 2 and q = 3
#: (with one slope 7 nodes never passed the check against 9 in the cases
#: measured: 9 saves that level)
AUTO_START = {2: 9, 3: 5}
#: and the largest it may reach
AUTO_TOP = {2: 51, 3: 25}
#: the node check's targets: log-likelihood (relative) and estimates (relative,
#: floor 0.01 as for the random intercept)
RTOL_LOGLIK, RTOL_PARAMS, FLOOR = 1e-8, 3e-7, 0.01
#: n_quad="auto" takes up to this many Newton steps on its first rule; if they
#: do not converge it moves to the first rule whose value there is within
#: START of the next rule's (relative: a rule to approach the maximum on, not
#: yet the check)
FIRST_STEPS, START = 10, 1e-5
#: n_quad="auto" stops its Newton steps on the Laplace approximation, and on its
#: first rule until that rule's check, at these relative steps: starts for a
#: finer rule (a first rule that passes is then fitted to 1e-8 and checked
#: again)
APPROACH = (1e-3, 1e-5)
#: a check that fails on the log-likelihood by more than this many times its
#: target moves on to the first rule whose value settles, not the next
GROSS = 100
#: the methods a random-slope fit does not have yet
UNSUPPORTED = (
    "exceedance",
    "flag_groups",
    "historical_control_test",
    "predictive_counts",
    "ranks",
    "test_tau",
)


def slope_indices(est, design, feature_names):
    """Positions in ``design.covariates`` of the columns named by
    ``est.random_slopes`` (names, or positions in X as ``group`` takes)."""
    names = list(design.covariates)
    out = []
    for item in est.random_slopes:
        if isinstance(item, (Integral, np.integer)) and not isinstance(item, bool):
            if feature_names is not None:
                if not -len(feature_names) <= item < len(feature_names):
                    raise ValueError(
                        f"random_slopes: position {item} is not a column of X "
                        f"({len(feature_names)} columns)."
                    )
                name = str(feature_names[item])
            else:
                name = str(int(item))
        elif isinstance(item, str):
            name = item
        else:
            raise TypeError(
                "random_slopes takes column names or positions of X; got "
                f"{item!r} ({type(item).__name__})."
            )
        if name not in names:
            raise ValueError(
                f"random_slopes: {item!r} is not a covariate column of X (the "
                f"covariates are {names}; the group column cannot have a slope)."
            )
        j = names.index(name)
        if design.aliased[j]:
            raise ValueError(
                f"random_slopes: the covariate {name!r} is collinear with the "
                "others (dropped from the fixed effects), so it cannot have a "
                "random slope."
            )
        if j in out:
            raise ValueError(f"random_slopes names {name!r} twice.")
        out.append(j)
    if len(out) > 2:
        raise ValueError(
            f"random_slopes: at most 2 random slopes (3 random effects with the "
            f"intercept); got {len(out)}."
        )
    return np.array(out, dtype=int)


def slope_data(data, slopes, design):
    """The core's rows: fixed covariates (standardized) and the random design
    (1 and the slope columns on the user's scale)."""
    raw = data.Z[:, slopes] * design.z_scale[slopes] + design.z_mean[slopes]
    R = np.column_stack([np.ones(len(data.codes)), raw])
    return SlopeData(
        data.codes,
        np.asarray(data.starts),
        data.Z,
        R,
        data.successes,
        data.trials,
        data.offset,
    )


def _start(design, slopes, diagonal, pooled):
    """From the random intercept's fit ``(b, beta, tau)``: its SD for the
    intercept (at least 0.1), for each slope 0.5 over the covariate's SD (a
    start that scaling the covariate does not change), independent."""
    q = 1 + len(slopes)
    L = np.diag(np.r_[max(pooled[2], 0.1), 0.5 / design.z_scale[slopes]])
    theta = np.diag(L) if diagonal else L[np.tril_indices(q)]
    return np.concatenate([pooled[1], [pooled[0]], theta])


def covariance_penalty(prior, q, diagonal):
    """``theta -> log prior(L L')`` of a covariance prior (``None``: none)."""
    if prior is None:
        return None

    def penalty(theta):
        L = cholesky_of(theta, q, diagonal)
        return prior.logpdf(L @ L.T)

    return penalty


def auto_rules(q):
    """The rules ``n_quad="auto"`` may fit on, in order (nodes per
    dimension, then for one slope the trapezoid rules in sinh(v)); the last
    only checks the one before it. With two slopes the trapezoid rules are
    out of reach (143^3 nodes a group): the largest Gauss-Hermite rule is
    checked against the next level, and a fit that does not settle there
    warns."""
    rules = [k for k in LEVELS if AUTO_START[q] <= k <= AUTO_TOP[q]]
    if q == 2:
        return rules + list(SINH_RULES)
    return rules + [next(k for k in LEVELS if k > AUTO_TOP[q])]


def fit_random_slopes(
    design, slopes, n_quad, diagonal, pooled, max_iter, prior=None, data=None
):
    """The fit on ``n_quad`` nodes per dimension: the Laplace fit (L-BFGS-B,
    then Newton steps), then Newton steps on the rule from there.
    ``"auto"``: the rule is compared at its estimate with the next of
    :func:`auto_rules` in the log-likelihood and in the estimates that rule's
    score implies, and raised (Newton steps from the estimate, the larger
    rule's evaluation there the first) until they agree. Where the two differ
    in the log-likelihood itself by more than the target, or where Newton
    steps do not converge on a rule, the fit skips to the first later rule
    whose value settles at the current estimate (values only: on toenail
    every Gauss-Hermite rule up to 51 nodes is 0.2 or more off, and fitting
    on each in turn took 1,700 evaluations). Returns ``(result, check)``,
    check = (nodes, nodes compared, d loglik, largest move over its target).
    ``data``: the core's rows (default: the design's, in memory), or a
    stand-in whose ``likelihood`` evaluates elsewhere (the Dask fit's
    partitions); the result's modes and scales are then its handles."""
    if data is None:
        data = slope_data(design.data, slopes, design)
    q = data.q
    x0 = _start(design, slopes, diagonal, pooled)
    penalty = covariance_penalty(prior, q, diagonal)
    res = fit_slopes(
        data,
        1,
        x0,
        diagonal,
        max_iter=max_iter,
        penalty=penalty,
        xtol=1e-8 if n_quad == 1 else APPROACH[0],
    )
    if n_quad == 1:
        return res, None
    auto = n_quad == "auto"
    rules = auto_rules(q) if auto else [int(n_quad)]
    lower = lower_bounds(data.X.shape[1], q, diagonal)
    lik = _rule_at(data, rules[0], res.modes, diagonal, penalty)
    state, n_iter, i, curvature = None, res.n_iter, 0, None
    start, first, loose = res.x, auto, auto
    while True:
        K = rules[i]
        xtol = APPROACH[1] if loose else 1e-8
        x, state, info, steps, converged = newton(
            lik,
            start,
            lower,
            state,
            max_steps=FIRST_STEPS if first else 100,
            xtol=xtol,
            curvature=curvature,
        )
        n_iter += steps
        if first and not converged:
            # slow on the first rule: is it settled here at all? (on toenail
            # no Gauss-Hermite rule is, and Newton steps on 9 nodes alone took
            # 461 evaluations) If not, on to the first that roughly is
            j = _settled(data, rules, i, x, state[0], lik.u, diagonal, penalty, START)
            if j > i:
                first, start, state = False, x, None
                i, lik = j, _rule_at(data, rules[j], lik.u, diagonal, penalty)
                continue
            x, state, info, steps, converged = newton(lik, x, lower, state, xtol=xtol)
            n_iter += steps
        first = False
        if not converged:  # far from Laplace's estimate: L-BFGS-B first
            out = fit_slopes(
                data, K, res.x, diagonal, max_iter=max_iter, penalty=penalty
            )
            x, converged, n_iter = out.x, out.converged, n_iter + out.n_iter
            lik.u = out.modes.copy()
            state = lik.evaluate(x)
            info = information(lik, x, state[3])
        f0, g0, logm, _ = state
        message = (
            f"Newton steps on {describe_rule(K)}"
            if converged
            else f"Newton steps and L-BFGS-B on {describe_rule(K)} stopped short of "
            "a maximum"
        )
        res = result_of(lik, x, f0, g0, logm, info, lower, converged, n_iter, message)
        if not auto:
            if not converged:
                res = _from_auto_estimate(
                    K,
                    res,
                    lower,
                    penalty,
                    design,
                    slopes,
                    diagonal,
                    pooled,
                    max_iter,
                    prior,
                    data,
                )
            return res, None
        larger = rules[i + 1]
        finer = _rule_at(data, larger, lik.u, diagonal, penalty)
        own, state = state, finer.evaluate(x)
        move = _held_at_bounds(res.cov, info, x, lower) @ (state[1] - g0)
        allowed = RTOL_PARAMS * np.maximum(np.abs(x), FLOOR)
        d_loglik = state[0] - f0
        tol = RTOL_LOGLIK * max(1.0, abs(f0))
        ok = abs(d_loglik) <= tol and np.all(np.abs(move) <= allowed)
        check = (K, larger, d_loglik, float(np.max(np.abs(move) / allowed)))
        if loose and (ok or i + 2 == len(rules)):
            # the first rule, stopped short of its maximum, is the answer:
            # on to its maximum, and the check again there
            loose, start, state, curvature = False, x, own, info
            continue
        loose = False
        if ok or i + 2 == len(rules):
            return res, check
        # the next rule, or the first later one whose value settles here;
        # this rule's curvature at its maximum steps on it
        j, curvature, start = i + 1, info, x
        if abs(d_loglik) > GROSS * tol:
            j = _settled(data, rules, j, x, state[0], finer.u, diagonal, penalty)
        if j == i + 1:
            i, lik = j, finer
        else:
            i, lik = j, _rule_at(data, rules[j], finer.u, diagonal, penalty)
            state = None


def _from_auto_estimate(
    K, stalled, lower, penalty, design, slopes, diagonal, pooled, max_iter, prior, data
):
    """A fixed rule's fit that stopped short (``stalled``) again, by Newton
    steps on the rule from ``n_quad="auto"``'s estimate; the stalled result
    where they do not converge to a higher value. From Laplace's estimate at
    a correlation of -1 (a Cholesky diagonal entry at 0, where the
    likelihood is even in it), 9 nodes stopped after 220 iterations 0.006
    log-likelihood units below the rule's maximum, which 2 Newton steps from
    the auto estimate reach (``tests/test_random_slopes.py``)."""
    auto, _ = fit_random_slopes(
        design, slopes, "auto", diagonal, pooled, max_iter, prior, data
    )
    lik = _rule_at(data, K, auto.modes, diagonal, penalty)
    x, (f, g, logm, _), info, steps, converged = newton(lik, auto.x, lower)
    before = _rule_at(data, K, stalled.modes, diagonal, penalty)
    if not converged or f <= before.evaluate(stalled.x, grad=False)[0]:
        return stalled
    n_iter = stalled.n_iter + auto.n_iter + steps
    message = f"Newton steps on {describe_rule(K)} from n_quad='auto''s estimate"
    return result_of(lik, x, f, g, logm, info, lower, True, n_iter, message)


def _settled(data, rules, i, x, value, u, diagonal, penalty, rtol=None):
    """The first ``j >= i`` among the rules that may be fitted on (all but
    the last of ``rules``) whose value at ``x`` agrees with the next rule's
    to ``rtol`` of it (default: the log-likelihood target; the last such
    rule if none does); ``value`` is rule ``i``'s there, ``u`` the modes
    there."""

    def value_of(j):
        return _rule_at(data, rules[j], u, diagonal, penalty).evaluate(x, grad=False)[0]

    rtol = RTOL_LOGLIK if rtol is None else rtol
    return first_settled(len(rules), value_of, i, value, rtol)


def _rule_at(data, rule, u, diagonal, penalty):
    """The likelihood on ``rule``, its modes started from ``u``."""
    lik = data.likelihood(rule, diagonal, penalty)
    lik.u = u.copy()
    return lik


def describe_rule(rule):
    """A rule (nodes per dimension, or a ``"sinh:h:vmax"`` rule) in words."""
    if isinstance(rule, str):
        _, h, vmax = rule.split(":")
        return f"the trapezoid rule in sinh(v), step {h}, |v| <= {vmax}"
    if rule == 1:
        return "the Laplace approximation"
    return f"{rule} Gauss-Hermite nodes per dimension"


def _held_at_bounds(cov, info, x, lower):
    """``cov`` for the rule check: a parameter at its bound (a Cholesky
    diagonal entry at 0, where the likelihood is even in it and the Newton
    steps held it) stays there, whatever the sign of its rounding-level
    gradient (a positive 1e-20 counted it free: its information is 0 there,
    its variance 1e30, and every check failed up to the trapezoid rule, with
    a QuadratureWarning; 2 of 500 data sets of the Laplace-bias simulation)."""
    at = x <= lower
    if not at.any():
        return cov
    free = ~at
    out = np.zeros_like(cov)
    try:
        out[np.ix_(free, free)] = np.linalg.inv(info[np.ix_(free, free)])
    except np.linalg.LinAlgError:
        return cov
    return out


#: beyond this SD of the random part, E[expit(eta + s Z)] is Phi(eta / s) to
#: O(s^-3) (expit minus the step function is odd)
HUGE_SCALE = 1e4


def new_group_log_proba(eta, r, Sigma):
    """``(log P(failure), log P(success))`` of rows of a new group:
    ``E[expit(eta + r' b)]``, ``b ~ N(0, Sigma)``, a normal of SD ``s =
    sqrt(r' Sigma r)``, by the trapezoid rule of
    :func:`~skre._core.rules.logistic_normal_rule` for each row's ``s`` (a
    fixed Gauss-Hermite rule is off by 0.02 at ``s = 20``); ``s`` computed
    without overflow for huge covariates."""
    size = np.maximum(np.max(np.abs(r), axis=1), 1.0)
    scaled = r / size[:, None]
    s = size * np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", scaled, Sigma, scaled), 0))
    lp0, lp1 = np.empty(len(eta)), np.empty(len(eta))
    huge = s > HUGE_SCALE
    if huge.any():
        ratio = eta[huge] / s[huge]
        lp1[huge], lp0[huge] = stats.norm.logcdf(ratio), stats.norm.logcdf(-ratio)
    level = np.ceil(np.log2(np.maximum(s, 1.0)))
    for h in np.unique(level[~huge]):
        rows = np.flatnonzero((level == h) & ~huge)
        z, log_w = logistic_normal_rule(2.0**h)
        for start in range(0, len(rows), max(1, 2**20 // len(z))):
            part = rows[start : start + max(1, 2**20 // len(z))]
            a = eta[part, None] + s[part, None] * z
            lp1[part] = logsumexp(log_w + log_expit(a), axis=1)
            lp0[part] = logsumexp(log_w + log_expit(-a), axis=1)
    return lp0, lp1


@dataclass(frozen=True, eq=False)
class SlopesFit(FitResult):
    """A fit with a random intercept and random slopes."""

    x: np.ndarray  # (beta_std, b, theta)
    slopes: np.ndarray  # positions of the slope columns in design.covariates
    diagonal: bool
    n_quad: int
    modes: np.ndarray  # (G, q) conditional modes of u
    scales: np.ndarray  # (G, q, q) C with C C' their conditional covariance
    group: str  # the group column's name (for variance_components_)
    check: object = None
    prior: object = None  # a covariance prior (the fit is then its mode)

    @property
    def q(self):
        return 1 + len(self.slopes)

    @property
    def n_params(self):
        p = len(self.design.covariates) - int(self.design.aliased.sum())
        return p + 1 + n_theta(self.q, self.diagonal)

    @property
    def beta(self):
        return self.x[: len(self.design.covariates)]

    @property
    def b(self):
        return float(self.x[len(self.design.covariates)])

    @property
    def L(self):
        return cholesky_of(
            self.x[len(self.design.covariates) + 1 :], self.q, self.diagonal
        )

    @property
    def covariance(self):
        """The random effects' covariance (the user's scale)."""
        L = self.L
        return L @ L.T

    def posterior(self, groups):
        """The nodes (n, k, q) in u and log-weights (n, k) of ``groups`` at
        the estimate, on the fit's rule (its modes and scales)."""
        data = slope_data(self.design.data, self.slopes, self.design)
        t, log_w = node_rule(self.q, self.n_quad)
        starts = np.r_[data.starts, len(data.codes)]
        rows = np.concatenate([np.arange(starts[g], starts[g + 1]) for g in groups])
        local = np.repeat(np.arange(len(groups)), np.diff(starts)[groups])
        u, C = self.modes[groups], self.scales[groups]
        nodes = u[:, None, :] + np.einsum("gjk,nk->gnj", C, t)
        RL = data.R[rows] @ self.L
        fixed = self.b + data.X[rows] @ self.beta
        if data.offset is not None:
            fixed = fixed + data.offset[rows]
        eta = fixed[:, None] + np.einsum("ij,ikj->ik", RL, nodes[local])
        val = data.m[rows, None] * eta - data.n[rows, None] * np.logaddexp(0, eta)
        first = np.r_[0, np.cumsum(np.diff(starts)[groups])[:-1]]
        kern = np.add.reduceat(val, first, axis=0)
        a = log_w + kern - 0.5 * np.sum(nodes * nodes, axis=2)
        a += 0.5 * np.sum(t * t, axis=1)
        return nodes, a - logsumexp(a, axis=1, keepdims=True)

    def attributes(self):
        design = self.design
        intercept, coef = design.unscale(self.b, self.beta)
        Sigma = self.covariance
        C = self.scales
        L = self.L
        effects = self.modes @ L.T
        cond = np.einsum("ij,gjk,lk->gil", L, np.einsum("gij,gkj->gik", C, C), L)
        sd = np.sqrt(np.maximum(np.diagonal(cond, axis1=1, axis2=2), 0.0))
        return {
            **self.common_attributes(intercept, coef),
            "tau_": float(np.sqrt(Sigma[0, 0])),
            "random_effects_": effects,
            "random_effects_sd_": sd,
            "population_": self.population(),
            "boundary_": bool(np.any(np.diag(self.L) == 0.0)),  # singular
            "random_slopes_": design.covariates[self.slopes],
            "random_covariance_": Sigma,
        }

    # -- inference -------------------------------------------------------------------
    @property
    def free(self):
        """The parameters off their bounds (an SD at 0 is held there)."""
        p = len(self.design.covariates)
        lower = lower_bounds(p, self.q, self.diagonal)
        free = self.x > lower
        free[:p] &= ~self.design.aliased
        return free

    def information(self):
        """The observed information of ``x`` (central differences of the
        exact gradient of the fit's rule), over the free parameters; cached,
        not pickled."""
        info = self.__dict__.get("_information")
        if info is None:
            data = slope_data(self.design.data, self.slopes, self.design)
            penalty = covariance_penalty(self.prior, self.q, self.diagonal)
            lik = SlopeLikelihood(data, self.n_quad, self.diagonal, penalty)
            lik.u = self.modes.copy()
            lik.evaluate(self.x, grad=False)
            info = -hessian(lik, self.x)
            self.__dict__["_information"] = info
        return info

    _transient = ("_information",)

    def covariance_of_x(self):
        free = self.free
        cov = np.full((len(self.x), len(self.x)), np.nan)
        block = self.information()[np.ix_(free, free)]
        cov[np.ix_(free, free)] = np.linalg.inv(block)
        cov[~free] = cov[:, ~free] = 0.0
        return cov

    def fixed_map(self):
        """User-scale (intercept, slopes) as rows over ``x``."""
        p = len(self.design.covariates)
        C = np.zeros((p + 1, len(self.x)))
        C[:, : p + 1] = self.design.user_map(intercept_first=False)
        return C

    def vcov(self):
        C = self.fixed_map()
        with np.errstate(over="ignore", invalid="ignore"):
            cov = C @ self.covariance_of_x() @ C.T
        return vcov_frame(self.design, cov)

    def effect_names(self):
        return ["(Intercept)", *map(str, self.design.covariates[self.slopes])]

    def _sd_corr(self, theta):
        """(log SDs, atanh correlations) of packed Cholesky entries (infinite
        at an SD of 0 or a correlation of +-1: the interval is then NaN)."""
        L = cholesky_of(theta, self.q, self.diagonal)
        S = L @ L.T
        sd = np.sqrt(np.diag(S))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = list(np.log(sd))
            if not self.diagonal:
                for i in range(self.q):
                    for j in range(i + 1, self.q):
                        r = np.clip(S[i, j] / (sd[i] * sd[j]), -1, 1)
                        out.append(np.arctanh(r))
        return np.array(out)

    def random_rows(self):
        names = self.effect_names()
        rows = ["tau", *[f"sd_{n}" for n in names[1:]]]
        if not self.diagonal:
            for i in range(self.q):
                for j in range(i + 1, self.q):
                    rows.append(f"cor_{names[i]}.{names[j]}")
        return rows

    def prediction_interval(self, level, include_parameter_uncertainty=False):
        """The central interval of ``population_`` (a new group's theta at the
        mean covariates), the estimates taken as known."""
        if include_parameter_uncertainty:
            raise NotImplementedError(
                "prediction_interval(include_parameter_uncertainty=True) is not "
                "available for fits with random_slopes yet; the plug-in interval "
                "(False) is."
            )
        return tuple(float(v) for v in self.population().interval(level))

    def random_values(self):
        """The values of :meth:`random_rows`: SDs, then correlations."""
        S = self.covariance
        sd = np.sqrt(np.diag(S))
        out = list(sd)
        if not self.diagonal:
            for i in range(self.q):
                for j in range(i + 1, self.q):
                    with np.errstate(invalid="ignore", divide="ignore"):
                        out.append(S[i, j] / (sd[i] * sd[j]))
        return out

    def draw_logits(self, keys, codes, Z, rng, n_sims, new_groups=False, **options):
        """Draws of every row's logit, (n_sims, n_rows), each group's effects
        drawn once per simulation from N(0, Sigma). Only new groups: drawing
        a seen group's effects from its conditional distribution is not
        available yet."""
        if not new_groups and np.any(codes >= 0):
            raise NotImplementedError(
                "simulate(new_groups=False) draws seen groups' effects from their "
                "conditional distributions, which random-slope fits cannot do "
                "yet; simulate(new_groups=True) draws every group from N(0, "
                "Sigma)."
            )
        eta0 = self.design.linear_predictor(Z, self.b, self.beta)
        n_keys = int(keys.max()) + 1 if len(keys) else 0
        b = rng.standard_normal((n_sims, n_keys, self.q)) @ self.L.T
        r = self._random_design(Z)
        return eta0[None, :] + np.einsum("ij,sij->si", r, b[:, keys])

    def confint(self, level, method, verbose=0):
        """Wald rows (intercept, slopes) and, on the log scale for the SDs
        and Fisher's z for the correlations, those of the random effects;
        ``method="profile"``: the fixed effects' and the SDs' rows are
        profile-likelihood intervals (:mod:`skre._slopes_profile`)."""
        cov = self.covariance_of_x()
        C = self.fixed_map()
        intercept, coef = self.design.unscale(self.b, self.beta)
        rows, _ = wald_rows(C, cov, np.r_[intercept, coef], level)
        profiled = None
        if method == "profile":
            profiled = self._profile(level, verbose)
            rows = profiled[0]
        frame = table(self.design, rows, level)
        p = len(self.design.covariates)
        theta = self.x[p + 1 :]
        phi = self._sd_corr(theta)
        J = np.empty((len(phi), len(theta)))
        for k in range(len(theta)):
            h = 1e-7 * max(1.0, abs(theta[k]))
            up, down = theta.copy(), theta.copy()
            up[k] += h
            down[k] -= h
            with np.errstate(invalid="ignore"):  # (inf - inf at a bound)
                J[:, k] = (self._sd_corr(up) - self._sd_corr(down)) / (2 * h)
        z = stats.norm.ppf(0.5 + level / 2)
        with np.errstate(invalid="ignore", over="ignore"):
            se = np.sqrt(np.einsum("ij,jk,ik->i", J, cov[p + 1 :, p + 1 :], J))
        with np.errstate(invalid="ignore"):
            lo, hi = phi - z * se, phi + z * se
        n_sd = self.q
        lo = np.r_[np.exp(lo[:n_sd]), np.tanh(lo[n_sd:])]
        hi = np.r_[np.exp(hi[:n_sd]), np.tanh(hi[n_sd:])]
        at_bound = ~np.isfinite(phi) | ~np.isfinite(se)
        lo[at_bound] = hi[at_bound] = np.nan
        if profiled is not None:
            lo[:n_sd], hi[:n_sd] = np.array(profiled[1]).T
        a = 100 * (1 - level) / 2
        extra = pd.DataFrame(
            {f"{a:g}%": lo, f"{100 - a:g}%": hi}, index=self.random_rows()
        )
        return pd.concat([frame, extra])

    def _profile(self, level, verbose=0):
        """:func:`skre._slopes_profile.profile_rows` on the fit's rule."""
        data = slope_data(self.design.data, self.slopes, self.design)
        penalty = covariance_penalty(self.prior, self.q, self.diagonal)
        total = len(self.design.covariates) + 1 + self.q
        done = [0]

        def say(what):
            done[0] += 1
            if verbose:
                print(
                    f"[skre] profile intervals: {done[0]}/{total} done ({what})",
                    flush=True,
                )

        def lik_of(rows):
            return SlopeLikelihood(rows, self.n_quad, self.diagonal, penalty)

        return profile_rows(self, data, lik_of, level, say)

    # -- each group ------------------------------------------------------------------
    def group_intervals(self, level, draws=4000):
        """Each group's trials-weighted mean fitted probability at its
        conditional modes, and the ``level`` interval of that mean under its
        conditional distribution (the normal of the modes and curvature,
        ``draws`` draws of a fixed seed; b, beta and Sigma as known)."""
        data = self.design.data
        raw = slope_data(data, self.slopes, self.design)
        offset = self.b + raw.X @ self.beta
        if raw.offset is not None:
            offset = offset + raw.offset
        RL = raw.R @ self.L
        n = data.trials
        N = data.group_sum(n)
        est = data.group_sum(n * expit(offset + np.sum(RL * self.modes[data.codes], 1)))
        rng = np.random.default_rng(0)
        Z = rng.standard_normal((draws, self.q))
        lower, upper = np.empty(len(N)), np.empty(len(N))
        a = (1 - level) / 2
        step = max(1, 2_000_000 // max(1, draws * len(data.codes) // len(N)))
        for g0 in range(0, len(N), step):
            g1 = min(len(N), g0 + step)
            r0 = data.starts[g0]
            r1 = data.starts[g1] if g1 < len(N) else len(data.codes)
            codes = data.codes[r0:r1]
            u = self.modes[g0:g1, None, :] + np.einsum(
                "gab,db->gda", self.scales[g0:g1], Z
            )
            eta = offset[r0:r1, None] + np.einsum(
                "ia,ida->id", RL[r0:r1], u[codes - g0]
            )
            mean = np.add.reduceat(
                n[r0:r1, None] * expit(eta), data.starts[g0:g1] - r0, 0
            )
            mean /= N[g0:g1, None]
            lower[g0:g1], upper[g0:g1] = np.quantile(mean, [a, 1 - a], axis=1)
        return est / N, lower, upper

    def group_effects(self, level):
        """Each random coefficient's conditional mode, SD and normal interval
        (lme4's ``ranef(condVar = TRUE)``), columns ``<name>``, ``<name>_sd``,
        ``<name>_lower``, ``<name>_upper`` for (Intercept) and each slope."""
        attrs = self.attributes()
        modes, sds = attrs["random_effects_"], attrs["random_effects_sd_"]
        z = stats.norm.ppf(0.5 + level / 2)
        columns = {}
        for j, name in enumerate(self.effect_names()):
            columns[name] = modes[:, j]
            columns[f"{name}_sd"] = sds[:, j]
            columns[f"{name}_lower"] = modes[:, j] - z * sds[:, j]
            columns[f"{name}_upper"] = modes[:, j] + z * sds[:, j]
        return pd.DataFrame(columns)

    def variance_components(self):
        """lme4's ``as.data.frame(VarCorr(fit))``: variances, then
        covariances (with correlations) in lme4's order."""
        names = ["(Intercept)", *map(str, self.design.covariates[self.slopes])]
        S = self.covariance
        sd = np.sqrt(np.diag(S))
        rows = [(n, None, S[i, i], sd[i]) for i, n in enumerate(names)]
        for i in range(self.q):
            for j in range(i + 1, self.q):
                if self.diagonal:
                    continue
                with np.errstate(invalid="ignore", divide="ignore"):
                    corr = S[i, j] / (sd[i] * sd[j])
                rows.append((names[i], names[j], S[i, j], corr))
        if self.diagonal:  # lme4 splits (1 + x || g) into terms g, g.1, ...
            grp = [str(self.group) + (f".{i}" if i else "") for i in range(len(rows))]
        else:
            grp = [str(self.group)] * len(rows)
        return pd.DataFrame(
            {
                "grp": grp,
                "var1": [r[0] for r in rows],
                "var2": pd.Series([r[1] for r in rows], dtype=object),
                "vcov": [float(r[2]) for r in rows],
                "sdcor": [float(r[3]) for r in rows],
            }
        )

    def population(self):
        """A new group's theta at the trials-weighted mean covariates (and
        offset): logit-normal with the SD of ``r' b`` there, ``r = (1,
        means)``."""
        r = np.r_[1.0, self.design.z_mean[self.slopes]]
        loc = self.b + self.design.offset_mean
        return LogitNormal(loc, float(np.sqrt(r @ self.covariance @ r)))

    def _random_design(self, Z):
        Z = np.asarray(Z, dtype=float)
        return np.column_stack([np.ones(len(Z)), Z[:, self.slopes]])

    def log_proba(self, codes, Z):
        """Seen groups: the mean of expit over the group's nodes; new groups:
        E[expit(eta + r' b)], b ~ N(0, Sigma), a normal of SD sqrt(r' Sigma r)."""
        eta0 = self.design.linear_predictor(Z, self.b, self.beta)
        RL = self._random_design(Z) @ self.L
        lp0, lp1 = np.empty(len(Z)), np.empty(len(Z))
        seen = codes >= 0 if codes is not None else np.zeros(len(Z), dtype=bool)
        if seen.any():
            groups, g = np.unique(codes[seen], return_inverse=True)
            nodes, log_pi = self.posterior(groups)
            eta = eta0[seen, None] + np.einsum("ij,ikj->ik", RL[seen], nodes[g])
            lp1[seen] = logsumexp(log_pi[g] + log_expit(eta), axis=1)
            lp0[seen] = logsumexp(log_pi[g] + log_expit(-eta), axis=1)
        new = ~seen
        if new.any():
            r = self._random_design(Z[new])
            lp0[new], lp1[new] = new_group_log_proba(eta0[new], r, self.covariance)
        return lp0, lp1

    def population_normals(self, Z):
        """Each row's logit over the population: ``N(b + x'beta, r' Sigma r)``
        (for quantile residuals)."""
        eta0 = self.design.linear_predictor(Z, self.b, self.beta)
        r = self._random_design(Z)
        s = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", r, self.covariance, r), 0))
        return [(1.0, eta0, s)]

    def logit_rule(self, codes, Z, **options):
        """Seen groups' rows: the logit at each node of the group's rule and
        the node's posterior log-weight (for conditional quantile residuals)."""
        groups, g = np.unique(codes, return_inverse=True)
        nodes, log_pi = self.posterior(groups)
        eta0 = self.design.linear_predictor(Z, self.b, self.beta)
        RL = self._random_design(Z) @ self.L
        return eta0[:, None] + np.einsum("ij,ikj->ik", RL, nodes[g]), log_pi[g]

    def heldout_loglik(self, rows, codes):
        """Sum over test groups of log p(test rows | training data): seen
        groups log L(train + test) - log L(train), new groups log L(test)."""
        train = self.design.data
        union, seen = heldout_union(self.design, rows, codes)
        union_data = slope_data(union, self.slopes, self.design)
        lik = SlopeLikelihood(union_data, self.n_quad, self.diagonal)
        after = lik.evaluate(self.x, grad=False)[0]
        data = slope_data(train, self.slopes, self.design)
        before_lik = SlopeLikelihood(data, self.n_quad, self.diagonal)
        before_lik.u = self.modes.copy()
        per_group = before_lik.evaluate(self.x, grad=False)[2]
        return float(after - per_group[seen].sum())
