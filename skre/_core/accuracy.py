"""How many adaptive nodes each group needs, measured at an estimate.

The error of an adaptive Gauss-Hermite rule is measured the usual way: by its
difference to the next larger rule of :data:`LEVELS`, which converges far
closer to the exact integral (the rules converge geometrically). A group
keeps a rule where that difference is within the group's share of a target
that speaks of what the user sees:

- the log-likelihood, to ``RTOL_LOGLIK`` of its total;
- the estimates: each group's score difference, taken through the inverse
  Hessian at the estimate, moves no parameter by more than its share of
  ``RTOL_PARAMS`` (relative to ``max(FLOOR, |value|)`` for the intercept and
  the standardized slopes, absolute for ``log tau``, i.e. relative in
  ``tau``).

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
#: trials from which a group's posterior is close enough to normal that a
#: start gives it LARGE_GROUP_NODES without comparing rules (the fit on them
#: is measured anyway: on 10^3 groups of 1000 rows, 990 keep 5 nodes and the
#: comparisons cost a quarter of the fit); other groups are first tried at 7
#: (as far as most small groups get)
LARGE_GROUP = 100
LARGE_GROUP_NODES = 5
#: the log-likelihood's share of the target, relative to its total
RTOL_LOGLIK = 1e-8
#: the estimates' share of the target (see the module docstring)
RTOL_PARAMS = 3e-7
#: the size below which an intercept or standardized slope is held to an
#: absolute error of ``RTOL_PARAMS * FLOOR`` instead of a relative one
FLOOR = 0.01


def first_settled(n_rules, value_of, i=0, value=None, rtol=RTOL_LOGLIK):
    """The first rule ``j >= i`` of a ladder of ``n_rules`` whose value at
    an estimate agrees with the next rule's to ``rtol`` of it, among all but
    the last rule (which only checks): the last but one if none does.
    ``value_of(j)`` is rule ``j``'s value (no gradients); ``value`` rule
    ``i``'s, if already known. The random-slope and nested fits move on to
    it where Newton steps or a check find a rule far off."""
    if i + 2 >= n_rules:
        return i
    value = value_of(i) if value is None else value
    while i + 2 < n_rules:
        following = value_of(i + 1)
        if abs(following - value) <= rtol * max(1.0, abs(value)):
            return i
        i, value = i + 1, following
    return i


def level_index(counts):
    """Each count's position in :data:`LEVELS` (counts must be levels)."""
    return np.searchsorted(LEVELS, np.asarray(counts))


def start_levels(data):
    """The first rule each group is tried with: :data:`LARGE_GROUP_NODES`
    for groups of :data:`LARGE_GROUP` trials or more, 7 for others."""
    large = data.group_sum(data.trials) >= LARGE_GROUP
    return np.where(large, level_index(LARGE_GROUP_NODES), level_index(7))


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
        ``loglik`` (on the scale the user sees: with the binomial constants)
        and the groups' total weight ``n_groups``."""
        x = np.asarray(x, dtype=float)
        tol = rtol * np.r_[np.maximum(FLOOR, np.abs(x[:-1])), 1.0]
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


def select_nodes(
    data,
    weight,
    params,
    start,
    target,
    top=None,
    warm=None,
    store=None,
    fitted=False,
    criterion=None,
):
    """Each group's node count at ``params``, walked up from ``start``.

    Parameters
    ----------
    data, weight : the likelihood units and their multiplicities.
    params : ``(beta, b, tau)``, tau > 0.
    start : (G,) or scalar, the level index (into :data:`LEVELS`) each group
        is first tried at, compared with the level above.
    target : :class:`Target`.
    top : the highest level index a group may reach (default the last).
    warm : a likelihood on the same rows whose latest modes (and, at
        ``params``, values) the selection takes.
    store : a dict that receives the evaluations (with the gradient's sums)
        for :meth:`~skre._core.quadrature.MarginalLikelihood.prime`.
    fitted : ``params`` is a fit on the ``start`` rules. Every group is then
        compared once, and :func:`criterion_after` decides from the total
        whether any group moves and by which shares.
    criterion : for a part of the data whose total is judged elsewhere (a
        partition): ``"first"`` compares every group once and moves none;
        ``"loglik"`` or ``"both"`` walk the groups of a fit on with that
        criterion (see :func:`criterion_after`).

    Without ``fitted`` or ``criterion`` (a start, such as the Laplace
    estimate), each group walks up to the larger rule of its first pair
    within its share of the log-likelihood's part of the target; the fit on
    those rules is checked next.

    Returns
    -------
    Selection
    """
    walk = _Walk(data, weight, params, start, target, top, warm, store)
    if fitted:
        walk.run(ONCE)
        criterion = criterion_after(
            target, walk.e_loglik, walk.e_score, float(np.sum(walk.weight))
        )
        if criterion is None:
            return walk.selection()
        walk.reopen(walk.accept(criterion))
        walk.run(walk.accept(criterion))
    elif criterion == "first":
        walk.run(ONCE)
    elif criterion is not None:
        walk.run(ONCE)
        walk.reopen(walk.accept(criterion))
        walk.run(walk.accept(criterion))
    else:  # a start: one comparison, the larger rule where it disagrees
        large = data.group_sum(data.trials) >= LARGE_GROUP
        walk.settle(large, level_index(LARGE_GROUP_NODES))
        walk.scores = False
        if store is not None and large.any():
            # their rule's evaluation at the start's modes: the fit's first
            # step then takes it (see MarginalLikelihood.prime) instead of
            # solving the modes again
            walk._values(level_index(LARGE_GROUP_NODES), np.flatnonzero(large))
        walk.run(ONCE)
        walk.raise_where(~walk.accept("loglik")(walk.e_L, walk.e_s) & ~large)
    return walk.selection()


def ONCE(dL, ds):
    """Every pair agrees: each group is compared once and stays."""
    return np.ones(len(dL), dtype=bool)


def criterion_after(target, e_loglik, e_score, n_groups):
    """What a fit whose rules measured a total error ``(e_loglik, e_score)``
    needs: None if that is within ``target``; else ``"both"`` when the
    estimates are outside their part of it (each group then moves up until it
    is within its share of both parts, which add up to the target whatever the
    signs of the groups' errors: more nodes than the total needs), else
    ``"loglik"`` (the log-likelihood's share alone)."""
    if target.passes(e_loglik, e_score, n_groups):
        return None
    move = target.displacement(e_score, n_groups)
    return "both" if np.max(np.abs(move)) > 1.0 else "loglik"


class _Walk:
    """:func:`select_nodes`' walk of each group up :data:`LEVELS`: each
    group's latest values, the differences of its pairs and its count."""

    def __init__(self, data, weight, params, start, target, top, warm, store):
        G = data.n_groups
        self.data, self.target = data, target
        self.weight = np.asarray(weight, dtype=float)
        self.params = params = np.asarray(params, dtype=float)
        self.top = top = len(LEVELS) - 1 if top is None else int(top)
        start = np.broadcast_to(np.asarray(start, dtype=np.intp), (G,))
        self.start = start = np.minimum(start, top)
        self.laplace = bool(start.min() == 0)
        self.known = _known(warm, params, self.laplace)
        self.warm, self.store, self._modes = warm, store, None
        k = len(params)
        self.last_L, self.last_s = np.zeros(G), np.zeros((G, k))
        self.first_L, self.first_s = np.zeros(G), np.zeros((G, k))
        self.d_L, self.d_s = np.zeros(G), np.zeros((G, k))  # the kept rule's
        self.e_L, self.e_s = np.zeros(G), np.zeros((G, k))  # the first rule's
        self.counts = np.asarray(LEVELS)[start].copy()
        # a group at the top is compared with the level below it
        self.base = np.where(start < top, start, top - 1)
        self.pending = self.base.copy()  # each group's next level to evaluate
        self.active = np.ones(G, dtype=bool)
        self.scores = True  # False: the log-likelihood alone decides

    @property
    def modes(self):
        """``(offset, u, at)``: the modes and their sums, solved on first use
        (a start whose groups all keep their first rule needs none)."""
        if self._modes is None:
            data, params = self.data, self.params
            if self.known is None:
                self._modes = at_the_modes(
                    data, self.weight, params, self.warm, self.laplace
                )
            else:  # the fit's own last evaluation: its modes and sums
                lik = MarginalLikelihood(data, self.weight, 1)
                offset = lik._offset(params[:-2], params[-2])
                self._modes = (offset, self.known[1], self.known[2])
            if self.store is not None:
                _, u, at = self._modes
                self.store.update(params=params, u=u, at=at, levels={})
        return self._modes

    def raise_where(self, groups):
        """``groups`` keep the larger rule of their first pair."""
        larger = np.minimum(self.start + 1, self.top)
        self.counts[groups] = np.asarray(LEVELS)[larger[groups]]

    def settle(self, groups, level):
        """``groups`` keep the rule of index ``level``, not walked."""
        self.counts[groups] = LEVELS[level]
        self.start = np.where(groups, level, self.start)
        self.active &= ~groups

    def accept(self, criterion):
        """The per-group test of ``criterion``: ``"loglik"``, the
        log-likelihood's share; ``"both"``, both shares."""
        target = self.target
        if criterion == "loglik":
            return lambda dL, ds: np.abs(dL) <= target.loglik
        return lambda dL, ds: _within(dL, ds, target)

    @property
    def e_loglik(self):
        return float(self.weight @ self.e_L)

    @property
    def e_score(self):
        return self.weight @ self.e_s

    def _values(self, i, need):
        """Log marginal likelihoods and scores of ``need`` with ``LEVELS[i]``
        nodes: from the fit's own evaluation where that was its rule."""
        k = len(self.params)
        reuse = np.zeros(len(need), dtype=bool)
        if self.known is not None:
            reuse = self.known[0][need] == LEVELS[i]
        L, s = np.empty(len(need)), np.empty((len(need), k))
        if reuse.any():
            L[reuse] = self.known[3][need[reuse]]
            s[reuse] = self.known[4][need[reuse]]
        if not reuse.all():
            rest = need[~reuse]
            offset, u, at = self.modes
            L[~reuse], s[~reuse], kept = _evaluate(
                self.data,
                self.weight,
                self.params,
                offset,
                u,
                at,
                LEVELS[i],
                rest,
                self.scores,
            )
            if self.store is not None:
                self.store["levels"][LEVELS[i]] = (rest,) + kept
        return L, s

    def run(self, accept, keep="smaller"):
        """Walk the active groups up until ``accept(dL, ds)`` holds for their
        latest pair (they keep its ``keep`` rule) or they reach the top."""
        top = self.top
        if not self.active.any():
            return
        for i in range(int(self.pending[self.active].min()), top + 1):
            need = np.flatnonzero(self.active & (self.pending == i))
            if not len(need):
                continue
            L, s = self._values(i, need)
            first = self.start[need] == i
            self.first_L[need[first]], self.first_s[need[first]] = L[first], s[first]
            compared = self.base[need] < i  # a value one level down exists
            dL, ds = self.last_L[need] - L, self.last_s[need] - s
            second = self.base[need] == i - 1
            self.e_L[need[second]], self.e_s[need[second]] = dL[second], ds[second]
            agree = compared & accept(dL, ds)
            at_top = compared & ~agree & (i == top)
            done = agree | at_top
            self.d_L[need[done]], self.d_s[need[done]] = dL[done], ds[done]
            self.counts[need[agree]] = LEVELS[i - (keep == "smaller")]
            self.counts[need[at_top]] = LEVELS[top]
            self.active[need[done]] = False
            self.last_L[need], self.last_s[need] = L, s
            self.pending[need] = i + 1

    def reopen(self, accept):
        """Groups whose first pair fails ``accept`` walk on from it."""
        fail = ~accept(self.e_L, self.e_s)
        self.counts[fail] = np.asarray(LEVELS)[self.start[fail]]
        beyond = fail & (self.pending > self.top)  # compared at the top already
        self.counts[beyond] = LEVELS[self.top]
        self.active = fail & ~beyond

    def selection(self):
        target = self.target
        counts = np.maximum(self.counts, np.asarray(LEVELS)[self.start])
        unresolved = np.flatnonzero(counts == LEVELS[self.top])
        unresolved = unresolved[
            ~_within(self.d_L[unresolved], self.d_s[unresolved], target)
        ]
        moved = counts != np.asarray(LEVELS)[self.start]
        e_L, e_s = self.e_L.copy(), self.e_s.copy()
        e_L[moved] = self.first_L[moved] - self.last_L[moved]
        e_s[moved] = self.first_s[moved] - self.last_s[moved]
        w = self.weight
        return Selection(
            counts,
            unresolved,
            float(w @ self.d_L),
            w @ self.d_s,
            float(w @ e_L),
            w @ e_s,
            bool(moved.any()),
        )


def _evaluate(data, weight, params, offset, u, at, n_nodes, need, scores=True):
    """The log marginal likelihood and score (in ``(beta, b, log tau)``) of
    the groups ``need`` with ``n_nodes`` nodes, at the modes ``u`` and sums
    ``at`` of every group; also ``(likelihood, rule)`` of that evaluation.
    Without ``scores`` the scores are zeros (the rule's sums are kept)."""
    if len(need) == data.n_groups:
        part, rows, at_need = data, slice(None), at
    else:
        rows = group_rows(data, need)
        part = subset_groups(data, need, rows)
        at_need = _take(at, need, rows)
    tau = params[-1]
    level = MarginalLikelihood(part, weight[need], int(n_nodes))
    rule = level._rule(offset[rows], tau, u[need], at_need, grad=True)
    if not scores:
        return rule[-1], np.zeros((len(need), len(params))), (level, rule)
    L, s = level.group_scores(params, (u[need],) + rule + (at_need,))
    s[:, -1] *= tau  # to log tau
    return L, s, (level, rule)


def compare_rules(data, weight, params, n_quad, reference, warm=None):
    """How a fixed rule of ``n_quad`` nodes differs from ``reference`` nodes
    at ``params``: ``(d_loglik, d_score)``, the reference's log-likelihood
    and score in ``(beta, b, log tau)`` minus the rule's, weighted sums over
    the groups. The rule's values, modes and sums come from ``warm``'s own
    evaluation when it was at ``params`` with that rule (a fit's last)."""
    params = np.asarray(params, dtype=float)
    weight = np.asarray(weight, dtype=float)
    every = np.arange(data.n_groups)
    laplace = min(n_quad, reference) == 1
    known = _known(warm, params, laplace)
    if known is not None and np.all(known[0] == n_quad):
        _, u, at, L0, s0 = known
        offset = MarginalLikelihood(data, weight, 1)._offset(params[:-2], params[-2])
    else:
        offset, u, at = at_the_modes(data, weight, params, warm, laplace)
        L0, s0, _ = _evaluate(data, weight, params, offset, u, at, n_quad, every)
    L1, s1, _ = _evaluate(data, weight, params, offset, u, at, reference, every)
    return float(weight @ (L1 - L0)), weight @ (s1 - s0)


def _within(d_L, d_s, target):
    return (np.abs(d_L) <= target.loglik) & (
        np.max(np.abs(d_s @ target.P.T), axis=1) <= 1.0
    )
