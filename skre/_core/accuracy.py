"""How many adaptive nodes each group needs, measured at an estimate.

The error of an adaptive Gauss-Hermite rule is measured the usual way: by its
difference to the next larger rule of :data:`LEVELS`, which converges far
closer to the exact integral (the rules converge geometrically). A group
keeps a rule where that difference is within the group's share of a target
that speaks of what the user sees:

- the log-likelihood, to ``RTOL_LOGLIK`` of its total;
- the estimates: each group's score difference, taken through the inverse
  Hessian at the estimate, moves no parameter by more than its share of
  ``RTOL_PARAMS`` (relative to ``max(1, |value|)`` for the intercept and the
  standardized slopes, absolute for ``log tau``, i.e. relative in ``tau``).

The second matters on its own: with one binary row per group the
log-likelihood is so flat in ``tau`` that 25 nodes are within 5e-10 of the
exact log-likelihood while ``tau`` is 3e-3 off (issue 22).

A group whose difference is too large moves up one level and is compared
again, up to the top of :data:`LEVELS`; a group still unsettled there is
*unresolved* and keeps the top rule, and the caller measures what the
unresolved groups cost in total before it warns. The shares add up to the
target whatever the signs of the groups' errors, so the total is usually well
inside it.
"""

from dataclasses import dataclass

import numpy as np

from .grouping import group_rows, subset_groups
from .nodepass import AtMode, ModePass
from .quadrature import MarginalLikelihood

#: the node counts a group may get, in order (1, Laplace, only for the
#: measurement of a Laplace fit). Beyond 25 (lme4's limit) the steps are
#: about a factor 1.4: binary groups with a large tau converge slowly
#: (toenail, tau = 4: 51 nodes leave tau 1.6e-5 off, 101 nodes 1e-8)
LEVELS = (1, 3, 5, 7, 9, 15, 25, 35, 51, 75, 101, 151, 201)
#: trials from which a group is first tried at 3 nodes (others at 5): its
#: posterior is close to normal
LARGE_GROUP = 100
#: the log-likelihood's share of the target, relative to its total
RTOL_LOGLIK = 1e-8
#: the estimates' share of the target (see the module docstring)
RTOL_PARAMS = 1e-7


def level_index(counts):
    """Each count's position in :data:`LEVELS` (counts must be levels)."""
    return np.searchsorted(LEVELS, np.asarray(counts))


def start_levels(data):
    """The first rule each group is tried with: 3 nodes for groups of
    :data:`LARGE_GROUP` trials or more, 5 for others."""
    large = data.group_sum(data.trials) >= LARGE_GROUP
    return np.where(large, level_index(3), level_index(5))


@dataclass
class Target:
    """What each group's rule must achieve, per unit of group weight.

    ``loglik``: the allowed log-likelihood difference; ``P``: a group passes
    when ``max |P @ d|`` is at most 1 for its score difference ``d`` in
    ``(beta, b, log tau)``.
    """

    loglik: float
    P: np.ndarray

    @classmethod
    def at(cls, x, cov, loglik, n_groups, rtol_loglik=RTOL_LOGLIK, rtol=RTOL_PARAMS):
        """The target at the estimate ``x = (beta, b, log tau)`` with ``cov``
        the inverse Hessian of the negative log-likelihood there, the total
        ``loglik`` and the groups' total weight ``n_groups``."""
        x = np.asarray(x, dtype=float)
        tol = rtol * np.r_[np.maximum(1.0, np.abs(x[:-1])), 1.0]
        share = max(float(n_groups), 1.0)
        allowed = rtol_loglik * max(1.0, abs(float(loglik))) / share
        return cls(allowed, np.asarray(cov, dtype=float) / tol[:, None] * share)

    def displacement(self, d_score, n_groups):
        """The estimates' move in units of their tolerance for a total score
        difference ``d_score`` (at most 1 is within the target)."""
        return self.P @ np.asarray(d_score, dtype=float) / max(float(n_groups), 1.0)

    def passes(self, d_loglik, d_score, n_groups):
        """Whether a total difference over groups of weight ``n_groups`` is
        within the target."""
        move = self.displacement(d_score, n_groups)
        share = max(float(n_groups), 1.0)
        return bool(
            np.max(np.abs(move)) <= 1.0 and abs(d_loglik) <= self.loglik * share
        )


@dataclass
class Selection:
    """Each group's rule and what the comparisons measured.

    ``counts``: the kept node counts; ``unresolved``: the groups still
    unsettled at the top level (they keep it); ``d_loglik``, ``d_score``: the
    weighted sums over the groups of the differences between each kept rule
    and the next larger one (the log-likelihood and the score in ``(beta, b,
    log tau)``), the measured error of a fit on the kept rules; ``e_loglik``,
    ``e_score``: the same for the rules the groups started at (for a group
    that moved up: the best value it reached minus its first), the error of
    a fit on those; ``raised``: whether any group moved up.
    """

    counts: np.ndarray
    unresolved: np.ndarray
    d_loglik: float
    d_score: np.ndarray
    e_loglik: float
    e_score: np.ndarray
    raised: bool


def _take(at, groups, rows):
    """The sums of ``at`` (an :class:`AtMode`) for ``groups`` and their ``rows``."""
    values = {}
    for name in AtMode.__slots__:
        v = getattr(at, name)
        if v is not None:
            values[name] = v[rows] if name == "r0" else v[groups]
    return AtMode(**values)


def at_the_modes(data, weight, params, warm=None, laplace=False):
    """Each group's conditional mode of ``u`` at ``params`` and the sums
    there that the rules' values and scores need (with ``laplace``, also
    those of the one-node rule): one mode solve, from ``warm``'s modes when
    given, and one pass."""
    beta, b, tau = params[:-2], params[-2], params[-1]
    lik = MarginalLikelihood(data, weight, 1)
    if warm is not None:
        lik.warm_start(warm)
    offset = lik._offset(beta, b)
    u, _ = lik.modes(offset, tau, params, grad=False)
    rows = laplace and data.Z.shape[1] > 0
    at = ModePass(data).at_mode(offset, tau * u, grad=True, rows=rows, kernel=laplace)
    return offset, u, at


def _known(warm, params, laplace):
    """``warm``'s evaluation at ``params`` (:meth:`MarginalLikelihood.
    evaluated_at`) when it has every sum the selection needs, else None."""
    seen = getattr(warm, "evaluated_at", None)
    seen = seen(params) if seen is not None else None
    if seen is None or (laplace and (seen[2].h0 is None or seen[2].r0 is None)):
        return None
    return seen


def select_nodes(data, weight, params, start, target, top=None, warm=None, store=None):
    """Each group's node count at ``params``, walked up from ``start``.

    Parameters
    ----------
    data, weight : the likelihood units and their multiplicities.
    params : ``(beta, b, tau)``, tau > 0.
    start : (G,) or scalar, the level index (into :data:`LEVELS`) each group
        is first tried at, compared with the level above.
    target : :class:`Target`.
    top : the highest level index a group may reach (default the last).
    warm : a likelihood on the same rows whose latest modes start the solve.
    store : a dict that receives the evaluations (with the gradient's sums)
        for :meth:`~skre._core.quadrature.MarginalLikelihood.prime`.

    Returns
    -------
    Selection
    """
    G = data.n_groups
    weight = np.asarray(weight, dtype=float)
    params = np.asarray(params, dtype=float)
    top = len(LEVELS) - 1 if top is None else int(top)
    start = np.minimum(np.broadcast_to(np.asarray(start, dtype=np.intp), (G,)), top)
    laplace = bool(start.min() == 0)
    known = _known(warm, params, laplace)
    if known is None:
        offset, u, at = at_the_modes(data, weight, params, warm, laplace)
    else:  # the fit's own last evaluation: its modes, sums and values
        known_counts, u, at, known_L, known_s = known
        offset = MarginalLikelihood(data, weight, 1)._offset(params[:-2], params[-2])
    if store is not None:
        store.update(params=params, u=u, at=at, levels={})
    k = len(params)
    last_L, last_s = np.zeros(G), np.zeros((G, k))
    first_L, first_s = np.zeros(G), np.zeros((G, k))
    d_L, d_s = np.zeros(G), np.zeros((G, k))  # the kept rule's error
    e_L, e_s = np.zeros(G), np.zeros((G, k))  # the first rule's
    counts = np.asarray(LEVELS)[start].copy()
    # a group at the top is compared with the level below it
    base = np.where(start < top, start, top - 1)
    pending = base.copy()  # each group's next level to evaluate
    active = np.ones(G, dtype=bool)
    for i in range(int(pending.min()), top + 1):
        need = np.flatnonzero(active & (pending == i))
        if not len(need):
            continue
        reuse = np.zeros(len(need), dtype=bool)
        if known is not None:
            reuse = known_counts[need] == LEVELS[i]
        L, s = np.empty(len(need)), np.empty((len(need), k))
        if reuse.any():
            L[reuse], s[reuse] = known_L[need[reuse]], known_s[need[reuse]]
        if not reuse.all():
            rest = need[~reuse]
            L[~reuse], s[~reuse], kept = _evaluate(
                data, weight, params, offset, u, at, LEVELS[i], rest
            )
            if store is not None:
                store["levels"][LEVELS[i]] = (rest,) + kept
        first = start[need] == i
        first_L[need[first]], first_s[need[first]] = L[first], s[first]
        compared = base[need] < i  # a value one level down exists
        dL, ds = last_L[need] - L, last_s[need] - s
        second = base[need] == i - 1
        e_L[need[second]], e_s[need[second]] = dL[second], ds[second]
        agree = compared & _within(dL, ds, target)
        at_top = compared & ~agree & (i == top)
        # agreeing pairs keep the smaller rule; at the top, the top one
        done = agree | at_top
        d_L[need[done]], d_s[need[done]] = dL[done], ds[done]
        counts[need[agree]] = LEVELS[i - 1]
        counts[need[at_top]] = LEVELS[top]
        active[need[done]] = False
        last_L[need], last_s[need] = L, s
        pending[need] = i + 1
    counts = np.maximum(counts, np.asarray(LEVELS)[start])  # never fewer nodes
    unresolved = np.flatnonzero(counts == LEVELS[top])
    unresolved = unresolved[~_within(d_L[unresolved], d_s[unresolved], target)]
    moved = counts != np.asarray(LEVELS)[start]
    e_L[moved] = first_L[moved] - last_L[moved]
    e_s[moved] = first_s[moved] - last_s[moved]
    return Selection(
        counts,
        unresolved,
        float(weight @ d_L),
        weight @ d_s,
        float(weight @ e_L),
        weight @ e_s,
        bool(moved.any()),
    )


def _evaluate(data, weight, params, offset, u, at, n_nodes, need):
    """The log marginal likelihood and score (in ``(beta, b, log tau)``) of
    the groups ``need`` with ``n_nodes`` nodes, at the modes ``u`` and sums
    ``at`` of every group; also ``(likelihood, rule)`` of that evaluation."""
    if len(need) == data.n_groups:
        part, rows, at_need = data, slice(None), at
    else:
        rows = group_rows(data, need)
        part = subset_groups(data, need, rows)
        at_need = _take(at, need, rows)
    tau = params[-1]
    level = MarginalLikelihood(part, weight[need], int(n_nodes))
    rule = level._rule(offset[rows], tau, u[need], at_need, grad=True)
    L, s = level.group_scores(params, (u[need],) + rule + (at_need,))
    s[:, -1] *= tau  # to log tau
    return L, s, (level, rule)


def compare_rules(data, weight, params, n_quad, reference, warm=None):
    """How a fixed rule of ``n_quad`` nodes differs from ``reference`` nodes
    at ``params``: ``(d_loglik, d_score)``, the reference's log-likelihood
    and score in ``(beta, b, log tau)`` minus the rule's, weighted sums over
    the groups."""
    params = np.asarray(params, dtype=float)
    weight = np.asarray(weight, dtype=float)
    laplace = min(n_quad, reference) == 1
    offset, u, at = at_the_modes(data, weight, params, warm, laplace)
    every = np.arange(data.n_groups)
    L0, s0, _ = _evaluate(data, weight, params, offset, u, at, n_quad, every)
    L1, s1, _ = _evaluate(data, weight, params, offset, u, at, reference, every)
    return float(weight @ (L1 - L0)), weight @ (s1 - s0)


def _within(d_L, d_s, target):
    return (np.abs(d_L) <= target.loglik) & (
        np.max(np.abs(d_s @ target.P.T), axis=1) <= 1.0
    )
