"""What runs on each partition of a Dask fit, predict or score: numpy and pandas only.

Nothing here imports dask, so the functions pickle by reference and run on any
worker that has skre installed. :mod:`skre._dask.backend` builds the task graphs
and :mod:`skre._dask.fit` drives the optimizers; this module holds the
per-partition work: validation with the in-memory messages, the summary the fit
needs before it can code groups and standardize, the rows sent through the
shuffle, the partitions kept on the workers (:class:`Part`) and the sums
computed on them.
"""

import copy
import warnings
from dataclasses import dataclass, field, replace
from numbers import Number

import numpy as np
import pandas as pd

from .._core.binomial import log_binom_constant, loglik_terms, residual_and_weight
from .._core.grouping import Collapsed, collapse
from .._core.multilevel import InMemory
from .._validation import (
    Prepared,
    _show,
    check_labels,
    check_sample_weight,
    split_X,
    split_y,
)

# -- errors that name the partition ------------------------------------------------


def in_partition(i, n, func, *args, **kwargs):
    """``func(*args, **kwargs)``; a ValueError or TypeError says which partition
    raised it.

    The message is the in-memory one, followed by the partition; row numbers in
    it count from the start of that partition.
    """
    try:
        return func(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        where = (
            f" (in partition {i} of {n} of the Dask input; row numbers count "
            "from the start of that partition)"
        )
        raise type(exc)(f"{exc}{where}") from exc


# -- validation --------------------------------------------------------------------


def weights(sample_weight, n_rows):
    """``check_sample_weight`` without its whole-data rule: a partition whose
    weights are all zero is fine as long as another one has positive weight."""
    try:
        return check_sample_weight(sample_weight, n_rows)
    except ValueError:
        try:
            arr = np.asarray(sample_weight, dtype=float)
        except (TypeError, ValueError):
            raise
        if arr.ndim == 1 and len(arr) == n_rows and np.all(arr == 0):
            return np.zeros(n_rows)
        raise


def _local_classes(y):
    """The one or two labels of a partition's binary y, sorted, or None when the
    partition's y is not that simple (validation then says why)."""
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        return None
    try:
        values = pd.unique(arr)
        if not 1 <= len(values) <= 2 or pd.isna(values).any():
            return None
        return np.sort(values)
    except (TypeError, ValueError):
        return None


def is_counts(y):
    shape = getattr(y, "shape", ())
    return len(shape) == 2 and shape[1] == 2


def split_y_part(est, y, classes):
    """Successes and trials of a partition's y: counts, or binary labels relative
    to ``classes`` (the fit's, or, when None, the partition's own one or two
    labels). Returns ``(successes, trials, local_classes, binary)``."""
    if is_counts(y):
        m, n, _, _ = split_y(est, y, reset=True)
        return m, n, np.array([0, 1]), False
    if classes is None:
        classes = _local_classes(y)
        if classes is None:  # more than two labels, NaN, ...: the in-memory error
            m, n, classes, binary = split_y(est, y, reset=True)
            return m, n, classes, binary
    proxy = copy.copy(est)
    proxy.classes_ = np.asarray(classes)[[0, -1]]
    m, n, _, binary = split_y(proxy, y, reset=False)
    return m, n, np.asarray(classes), binary


def prepare_part(est, X, y, sample_weight, classes, *, reset):
    """:func:`skre._validation.prepare` for one partition: the same checks and
    messages, but nothing that needs the whole data (both classes present,
    some positive weight), which the caller checks on the totals."""
    labels, Z, names = split_X(est, X, reset=reset)
    m, n, local, binary = split_y_part(est, y, classes)
    if len(m) != len(Z):
        raise ValueError(f"X has {len(Z)} rows but y has {len(m)}; they must match.")
    w = np.ones(len(Z)) if sample_weight is None else weights(sample_weight, len(Z))
    if labels is not None:
        check_labels(labels)
    const = log_binom_constant(m, n, w)
    rows = Prepared(
        labels,
        Z,
        w * m,
        w * n,
        const,
        float(w.sum()),
        np.asarray(names, dtype=object),
        local,
        binary,
    )
    return rows, w


def n_rows_of(X):
    return int(X.shape[0])


# -- pass 1: what the fit must know before it codes and standardizes ---------------


@dataclass
class Summary:
    """Totals of the input partitions, merged pairwise in partition order."""

    n_input: int = 0  # rows
    n_kept: int = 0  # rows with trials > 0
    n_obs: float = 0.0  # sum of weights
    constant: float = 0.0
    trials: float = 0.0
    successes: float = 0.0  # counts only (binary y: see class_weight)
    w_max: float = -np.inf
    class_weight: dict = field(default_factory=dict)  # binary label -> weight
    binary: bool | None = None
    names: list | None = None
    labels: np.ndarray | None = None  # unique labels, order of first appearance
    used: np.ndarray | None = None  # label has trials > 0
    moments: list | None = None  # per covariate (top, N, mean, M2, unit)


def _unit(top):
    """The power of 2 that :func:`skre._core.grouping.standardize` divides an
    extreme column by (1 for ordinary columns)."""
    extreme = (top > 1e150) | ((top < 1e-150) & (top > 0))
    return np.where(extreme, 2.0 ** np.round(np.log2(np.where(extreme, top, 1.0))), 1.0)


def _moments(Z, trials):
    """Trials-weighted count, mean and centred sum of squares of each column,
    in units of the column's power-of-2 ``unit``, and its largest magnitude."""
    if len(Z) == 0:
        return [(0.0, 0.0, 0.0, 0.0, 1.0)] * Z.shape[1]
    top = np.max(np.abs(Z), axis=0)
    unit = _unit(top)
    Zu = Z / unit
    N = float(trials.sum())
    mean = (trials @ Zu) / N
    M2 = np.einsum("i,ij,ij->j", trials, Zu - mean, Zu - mean)
    return [(top[j], N, mean[j], M2[j], unit[j]) for j in range(Z.shape[1])]


def summarize(i, n, est, X, y, sample_weight):
    """Pass 1 on one input partition: validate it, then the totals."""
    if n_rows_of(X) == 0:
        return Summary()
    rows, w = in_partition(
        i, n, prepare_part, est, X, y, sample_weight, None, reset=True
    )
    keep = rows.trials > 0
    out = Summary(
        n_input=len(rows.trials),
        n_kept=int(keep.sum()),
        n_obs=rows.n_obs,
        constant=rows.constant,
        trials=float(rows.trials.sum()),
        w_max=float(w.max()) if len(w) else -np.inf,
        binary=rows.binary_y,
        names=list(rows.covariates),
        moments=_moments(rows.Z[keep], rows.trials[keep]),
    )
    if rows.binary_y and len(rows.classes) == 1:
        out.class_weight[rows.classes[0]] = float(rows.trials.sum())
    elif rows.binary_y:  # successes count the second label
        out.class_weight[rows.classes[1]] = float(rows.successes.sum())
        out.class_weight[rows.classes[0]] = float((rows.trials - rows.successes).sum())
    else:
        out.successes = float(rows.successes.sum())
    if rows.labels is not None:
        codes, uniques = pd.factorize(rows.labels, sort=False)
        used = np.zeros(len(uniques), dtype=bool)
        used[codes[keep]] = True
        out.labels, out.used = np.asarray(uniques, dtype=rows.labels.dtype), used
    return out


def _merge_moments(a, b):
    """Chan et al.'s pairwise update of (count, mean, M2), in a common unit."""
    out = []
    for (ta, na, ma, sa, ua), (tb, nb, mb, sb, ub) in zip(a, b):
        top = max(ta, tb)
        unit = float(_unit(np.array(top)))
        fa, fb = ua / unit, ub / unit
        ma, sa, mb, sb = ma * fa, sa * fa * fa, mb * fb, sb * fb * fb
        n = na + nb
        if n == 0:
            out.append((top, 0.0, 0.0, 0.0, unit))
            continue
        delta = mb - ma
        mean = ma + delta * nb / n
        M2 = sa + sb + delta * delta * na * nb / n
        out.append((top, n, mean, M2, unit))
    return out


def _refuse_merged_labels(a, b):
    """Refuse a boolean group label in one set of partitions next to the
    number equal to it (``True`` and ``1``, ``False`` and ``0``) in another:
    concatenating them would merge the two groups in silence, as in memory
    (see :func:`skre._labels.check_label_types`)."""

    def kinds(labels):
        found = {}
        for v in labels:
            if isinstance(v, (bool, np.bool_)):
                found.setdefault((int(v), True), v)
            elif isinstance(v, Number) and v in (0, 1):
                found.setdefault((int(v), False), v)
        return found

    ka, kb = kinds(a), kinds(b)
    for v in (0, 1):
        for boolean in (True, False):
            if (v, boolean) in ka and (v, not boolean) in kb:
                x, y = ka[(v, boolean)], kb[(v, not boolean)]
                raise ValueError(
                    f"the group column holds {_show(x)} in one partition and "
                    f"{_show(y)} in another; Python counts True == 1 and False "
                    "== 0, so they would be merged into one group. Give the "
                    "group labels one type (e.g. .astype(str)) to keep them "
                    "apart."
                )


def merge(a, b):
    """Two summaries as one; ``a``'s partitions come first."""
    if a.n_input == 0:
        return b
    if b.n_input == 0:
        return a
    weights_ = dict(a.class_weight)
    for label, count in b.class_weight.items():
        weights_[label] = weights_.get(label, 0.0) + count
    labels = used = None
    if a.labels is not None:
        _refuse_merged_labels(a.labels, b.labels)
        both = np.concatenate([a.labels, b.labels])
        codes, uniques = pd.factorize(both, sort=False)
        used = np.zeros(len(uniques), dtype=bool)
        np.logical_or.at(used, codes, np.concatenate([a.used, b.used]))
        labels = np.asarray(uniques, dtype=both.dtype)
    return Summary(
        n_input=a.n_input + b.n_input,
        n_kept=a.n_kept + b.n_kept,
        n_obs=a.n_obs + b.n_obs,
        constant=a.constant + b.constant,
        trials=a.trials + b.trials,
        successes=a.successes + b.successes,
        w_max=max(a.w_max, b.w_max),
        class_weight=weights_,
        binary=a.binary,
        names=a.names,
        labels=labels,
        used=used,
        moments=_merge_moments(a.moments, b.moments),
    )


# -- pass 2: coded, standardized rows for the shuffle ------------------------------


@dataclass(frozen=True)
class Coding:
    """What pass 2 applies to every partition: the fit's classes, the group
    index and the standardization."""

    classes: np.ndarray
    groups: pd.Index | None  # None: no group column (one group, code 0)
    unit: np.ndarray
    mean: np.ndarray  # in units of ``unit``
    scale: np.ndarray


def zcols(p):
    return [f"z{j}" for j in range(p)]


def coded_rows(i, n, est, coding, X, y, sample_weight):
    """Pass 2 on one input partition: the rows with trials, collapsed by (group
    code, standardized covariates), as a frame ``code, z0.., m, n``."""
    p = len(coding.unit)
    if n_rows_of(X) == 0:
        return _rows_frame(np.zeros(0, dtype=np.int64), np.empty((0, p)), *[[]] * 2)
    rows, _ = in_partition(
        i, n, prepare_part, est, X, y, sample_weight, coding.classes, reset=True
    )
    keep = rows.trials > 0
    if rows.labels is None:
        codes = np.zeros(int(keep.sum()), dtype=np.int64)
    else:
        codes = coding.groups.get_indexer(rows.labels[keep])
    Z = rows.Z[keep]
    if p:
        Z = (Z / coding.unit - coding.mean) / coding.scale
    used, local = np.unique(codes, return_inverse=True)
    data = collapse(
        local.ravel(), Z, rows.successes[keep], rows.trials[keep], len(used)
    )
    return _rows_frame(used[data.codes], data.Z, data.successes, data.trials)


def _rows_frame(codes, Z, m, n):
    frame = pd.DataFrame({"code": np.asarray(codes, dtype=np.int64)})
    for j, name in enumerate(zcols(Z.shape[1])):
        frame[name] = Z[:, j]
    frame["m"] = np.asarray(m, dtype=float)
    frame["n"] = np.asarray(n, dtype=float)
    return frame


# -- the partitions kept on the workers --------------------------------------------


def _compact(values):
    """The counts in the smallest dtype that holds them exactly (binary rows:
    uint8), float64 otherwise."""
    for dtype in (np.uint8, np.uint16, np.float32):
        small = values.astype(dtype)
        if np.array_equal(small, values):
            return small
    return values


@dataclass(eq=False)
class Part:
    """Whole groups: rows collapsed and sorted by group, covariates standardized
    (aliased columns not yet zeroed), and the global code of each local group.

    Stored compactly: the rows' group codes are implied by ``starts``, counts
    take the smallest exact dtype, and there are no trials when every row
    has one (25 bytes a row for binary rows with three covariates, instead of
    48); :meth:`view` gives the float64 rows, one call at a time.
    """

    Z: np.ndarray  # (rows, p) float64
    successes: np.ndarray
    trials: np.ndarray | None  # None: one trial per row
    starts: np.ndarray  # (g,) first row of each local group
    ids: np.ndarray  # (g,) global group codes, increasing

    @classmethod
    def of(cls, data, ids):
        one = bool(np.all(data.trials == 1.0))
        return cls(
            data.Z,
            _compact(data.successes),
            None if one else _compact(data.trials),
            np.asarray(data.starts, dtype=np.intp),
            ids,
        )

    @property
    def n_rows(self):
        return len(self.successes)

    @property
    def data(self):
        return self.view(None)

    def view(self, zero):
        """The rows as :class:`Collapsed`, covariates in ``zero`` (the aliased
        ones) set to 0."""
        n = self.n_rows
        sizes = np.diff(np.r_[self.starts, n])
        codes = np.repeat(np.arange(len(self.starts)), sizes)
        trials = np.ones(n) if self.trials is None else self.trials.astype(float)
        Z = self.Z if zero is None or not np.any(zero) else np.where(zero, 0.0, self.Z)
        return Collapsed(
            codes,
            Z,
            self.successes.astype(float),
            trials,
            len(self.ids),
            self.starts,
        )


def make_part(frame, p):
    """A shuffled partition (every row of its groups) as a :class:`Part`."""
    codes = frame["code"].to_numpy(dtype=np.int64)
    ids, local = np.unique(codes, return_inverse=True)
    Z = frame[zcols(p)].to_numpy(dtype=float) if p else np.empty((len(codes), 0))
    data = collapse(
        local.ravel(),
        Z,
        frame["m"].to_numpy(dtype=float),
        frame["n"].to_numpy(dtype=float),
        len(ids),
    )
    return Part.of(data, ids)


def part_size(part):
    return part.n_rows, len(part.ids)


def release_arrow_memory():
    """Return the memory Arrow's pool keeps after reading and shuffling (run
    on each worker once the partitions are persisted)."""
    import sys

    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()


def part_rows(part):
    """Everything in a partition, to gather it on the client."""
    data = part.data
    return part.ids[data.codes], data.Z, data.successes, data.trials


def part_group_sums(part):
    data = part.data
    return part.ids, data.group_sum(data.successes), data.group_sum(data.trials)


def part_grams(part):
    """Pieces of the trials-weighted covariate cross-products, centred overall
    and within groups (:func:`skre._design.aliased_columns`)."""
    data = part.data
    w = data.trials
    wZ = w[:, None] * data.Z
    gram = data.Z.T @ wZ
    W = data.group_sum(w)
    S = data.group_sum(wZ)
    within = gram - (S / np.where(W > 0, W, np.inf)[:, None]).T @ S
    return gram, wZ.sum(axis=0), float(w.sum()), within


# -- the multilevel likelihood, one partition at a time ----------------------------


def call_source(part, zero, name, args):
    """``InMemory(part).<name>(*args)``; every such method is a sum over groups."""
    data = part.view(zero)
    return getattr(InMemory(data, np.ones(data.n_groups)), name)(*args)


def call_likelihood(part, zero, n_quad, name, args):
    """``InMemory(part).likelihood(n_quad).<name>(*args)``, built afresh: the
    conditional modes start from 0 at every call (stateless). ``n_quad`` is
    one node count or this partition's groups' counts."""
    data = part.view(zero)
    model = InMemory(data, np.ones(data.n_groups)).likelihood(n_quad)
    if name == "value_grad_outer":
        return value_grad_outer(model, *args)
    out = getattr(model, name)(*args)
    return (part.ids, out) if name == "posterior" else out


def value_grad_outer(model, params):
    """``(value, gradient, outer products of the groups' scores)``."""
    model.want_outer = True
    value, grad = model.value_and_grad(params)
    return value, grad, model.outer


def part_select(part, zero, params, counts, target, top, criterion):
    """:func:`~skre._core.accuracy.select_nodes` on the partition's groups
    (from ``counts``, their current rules, or from the start levels), with
    their global codes."""
    data = part.view(zero)
    source = InMemory(data, np.ones(data.n_groups))
    return part.ids, source.select_nodes(
        params, target, counts=counts, top=top, criterion=criterion
    )


def part_compare(part, zero, params, n_quad, reference):
    """:func:`~skre._core.accuracy.compare_rules` on the partition's groups."""
    data = part.view(zero)
    return InMemory(data, np.ones(data.n_groups)).compare_rules(
        params, n_quad, reference
    )


def extreme_logits(part, zero, intercept, beta, alpha=None):
    """Any fitted logit beyond +-30 (R's "fitted probabilities 0 or 1")?"""
    data = part.view(zero)
    with np.errstate(invalid="ignore"):
        offset = alpha[data.codes] if alpha is not None else intercept
        eta = offset + data.Z @ beta
    return bool(np.any(np.abs(eta[np.isfinite(eta)]) > 30.0))


# -- logistic GLMs: complete pooling (one global intercept) ------------------------


def pooled_pieces(part, zero, a, coef):
    """Log-likelihood and Newton pieces at ``(a, coef)`` of one shared model:
    ``(ll, R, W, WZ, Z'r, Z'WZ)``, each a sum over the partition's rows."""
    data = part.view(zero)
    eta = a + data.Z @ coef
    ll = float(np.sum(loglik_terms(eta, data.successes, data.trials)))
    r, w, _ = residual_and_weight(eta, data.successes, data.trials)
    inf = ~np.isfinite(eta)
    if inf.any():
        r[inf] = 0.0
        w[inf] = 0.0
    wZ = w[:, None] * data.Z
    return ll, r.sum(), w.sum(), wZ.sum(axis=0), data.Z.T @ r, data.Z.T @ wZ


# -- logistic GLMs: no pooling (intercepts local to a partition) -------------------


@dataclass
class GroupState:
    """One partition's group intercepts and the Newton pieces at them."""

    alpha: np.ndarray
    finite: np.ndarray  # intercepts that move (others stay at +-inf)
    R: np.ndarray = None
    W_safe: np.ndarray = None
    WZ: np.ndarray = None
    summary: tuple = None  # what the client needs, see _grouped_summary


def _grouped_eval(part, zero, state, coef, prior, d_alpha_max=0.0):
    """Fill ``state`` with the value and Newton pieces at ``(state.alpha, coef)``."""
    data = part.view(zero)
    a_mean, a_prec = prior
    alpha = state.alpha
    eta = alpha[data.codes] + data.Z @ coef
    ll = float(np.sum(loglik_terms(eta, data.successes, data.trials)))
    penalty = 0.5 * a_prec * float(np.sum((alpha - a_mean) ** 2)) if a_prec else 0.0
    r, w, _ = residual_and_weight(eta, data.successes, data.trials)
    inf = ~np.isfinite(eta)
    if inf.any():
        r[inf] = 0.0
        w[inf] = 0.0
    wZ = w[:, None] * data.Z
    R, W, WZ = data.group_sum(r), data.group_sum(w), data.group_sum(wZ)
    R = R - a_prec * (alpha - a_mean) if a_prec else R
    W_safe = np.where(state.finite & (W + a_prec > 0), W + a_prec, np.inf)
    schur = data.Z.T @ wZ - (WZ / W_safe[:, None]).T @ WZ
    rhs = data.Z.T @ r - WZ.T @ (R / W_safe)
    state.R, state.W_safe, state.WZ = R, W_safe, WZ
    state.summary = (ll, penalty, schur, rhs, d_alpha_max)
    return state


def grouped_start(part, zero, coef, prior):
    """Intercepts at each group's logit (as ``GroupedLogistic.start``)."""
    from scipy.special import logit

    data = part.data
    M, N = data.group_sum(data.successes), data.group_sum(data.trials)
    with np.errstate(divide="ignore"):
        alpha = np.where(M <= 0, -np.inf, np.where(M >= N, np.inf, logit(M / N)))
    if prior[1] > 0:
        alpha = logit((M + 0.5) / (N + 1.0))
    state = GroupState(alpha, np.isfinite(alpha))
    return _grouped_eval(part, zero, state, coef, prior)


def grouped_trial(part, zero, state, d_coef, t, coef, prior):
    """The intercepts ``alpha + t d_alpha`` for the slopes' direction ``d_coef``,
    and the value and pieces there."""
    W_safe = state.W_safe
    with np.errstate(invalid="ignore"):
        d_alpha = np.where(
            np.isfinite(W_safe), (state.R - state.WZ @ d_coef) / W_safe, 0.0
        )
    new = GroupState(state.alpha + t * d_alpha, state.finite)
    top = float(np.max(np.abs(d_alpha))) if len(d_alpha) else 0.0
    return _grouped_eval(part, zero, new, coef, prior, top)


def summary_of(state):
    return state.summary


def grouped_cov_pieces(part, zero, state, coef, a_prec):
    """The partition's share of the slopes' Schur complement (``_covariance``)."""
    data = part.view(zero)
    ratio, W, WZ, keep, w, _ = _cov_parts(data, state.alpha, coef, a_prec)
    return data.Z.T @ (w[:, None] * data.Z) - ratio[keep].T @ WZ[keep]


def _cov_parts(data, alpha, coef, a_prec):
    eta = alpha[data.codes] + data.Z @ coef
    _, w, _ = residual_and_weight(eta, data.successes, data.trials)
    w = np.where(np.isfinite(eta), w, 0.0)
    W = data.group_sum(w) + a_prec
    WZ = data.group_sum(w[:, None] * data.Z)
    keep = W > 0
    ratio = np.zeros_like(WZ)
    ratio[keep] = WZ[keep] / W[keep, None]
    return ratio, W, WZ, keep, w, eta


def grouped_result(part, zero, state, coef, a_prec, coef_cov):
    """Each group's intercept and its variance, with the global group codes."""
    data = part.view(zero)
    ratio, W, _, keep, _, _ = _cov_parts(data, state.alpha, coef, a_prec)
    with np.errstate(divide="ignore"):
        var = np.where(
            keep, 1.0 / W + np.einsum("gi,ij,gj->g", ratio, coef_cov, ratio), np.nan
        )
    return part.ids, state.alpha, var


def grouped_extreme(part, zero, state, coef):
    return extreme_logits(part, zero, 0.0, coef, state.alpha)


# -- prediction and scoring --------------------------------------------------------


def predict_part(i, n, est, method, X, y=None, sample_weight=None):
    """``est.<method>(X)`` on one partition of X, naming it in errors.

    Warnings raised here (an unseen group label type) stay on the worker.
    """
    if n_rows_of(X) == 0:
        width = 2 if method in ("predict_proba", "predict_log_proba") else None
        dtype = est.classes_.dtype if method == "predict" else float
        return np.empty((0, width) if width else (0,), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return in_partition(i, n, getattr(est, method), X)


def _score_rows(est, X, y, sample_weight):
    rows, _ = prepare_part(est, X, y, sample_weight, est.classes_, reset=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codes = est._fit_result.design.codes_for(rows.labels, type(est).__name__)
    return rows, codes


def score_part(i, n, est, X, y, sample_weight):
    """A pointwise held-out log-likelihood (the pooled fits): its sum and the
    partition's trials."""
    if n_rows_of(X) == 0:
        return 0.0, 0.0
    rows, codes = in_partition(i, n, _score_rows, est, X, y, sample_weight)
    return float(est._heldout_loglik(rows, codes)), float(rows.trials.sum())


def score_rows(i, n, est, X, y, sample_weight):
    """The rows of a grouped held-out score (multilevel, or no pooling with a
    group prior), to be shuffled so that each group's rows meet: a frame
    ``bucket, code, key, z.., m, n`` of the rows with trials (``code`` -1 and
    ``key`` a hash of the label for groups not seen in fit; covariates raw)."""
    p = len(est._fit_result.design.covariates)
    if n_rows_of(X) == 0:
        return _score_frame(*(np.zeros(0, dtype=np.int64),) * 2, np.empty((0, p)))
    rows, codes = in_partition(i, n, _score_rows, est, X, y, sample_weight)
    keep = rows.trials > 0
    codes, labels = codes[keep], rows.labels[keep]
    key = np.zeros(len(codes), dtype=np.int64)
    new = codes < 0
    if new.any():
        key[new] = pd.util.hash_array(np.asarray(labels[new])).view(np.int64)
    return _score_frame(
        codes, key, rows.Z[keep], rows.successes[keep], rows.trials[keep]
    )


def _score_frame(codes, key, Z, m=(), n=()):
    frame = pd.DataFrame(
        {"bucket": np.where(codes >= 0, codes, key), "code": codes, "key": key}
    )
    for j, name in enumerate(zcols(Z.shape[1])):
        frame[name] = Z[:, j]
    frame["m"] = np.asarray(m, dtype=float)
    frame["n"] = np.asarray(n, dtype=float)
    return frame


def frame_trials(frame):
    return float(frame["n"].sum())


def seen_codes(frame):
    codes = frame["code"].to_numpy()
    return np.unique(codes[codes >= 0])


def score_bucket(frame, est, train):
    """Held-out log-likelihood of whole groups: one value per node of the fit
    (one for maximum likelihood; the grid of a Bayes fit).

    ``train`` holds the training rows of the groups seen in fit that occur
    here (None for no pooling, whose seen groups score row by row).
    """
    from .._bayes import BayesFit

    fit = est._fit_result
    p = len(fit.design.covariates)
    codes = frame["code"].to_numpy(dtype=np.int64)
    rows = Prepared(
        np.where(codes >= 0, codes, frame["key"].to_numpy()),
        frame[zcols(p)].to_numpy(dtype=float) if p else np.empty((len(frame), 0)),
        frame["m"].to_numpy(dtype=float),
        frame["n"].to_numpy(dtype=float),
        0.0,
        0.0,
        fit.design.covariates,
        est.classes_,
        False,
    )
    if train is None:  # no pooling with a group prior
        return np.array([est._heldout_loglik(rows, codes) if len(frame) else 0.0])
    nodes = (
        fit.node_posteriors
        if isinstance(fit, BayesFit)
        else [(1.0, fit.params, fit.posterior)]
    )
    if len(frame) == 0:
        return np.zeros(len(nodes))
    fit = replace(fit, design=replace(fit.design, data=train))
    return np.array(
        [fit._heldout_at(params, post, rows, codes) for _, params, post in nodes]
    )
