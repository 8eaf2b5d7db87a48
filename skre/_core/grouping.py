"""Rows coded by group: sorting, collapsing identical rows, per-group sums."""

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass
class Collapsed:
    """Rows sorted by group with identical (group, covariates) rows merged.

    Attributes
    ----------
    codes : (n_rows,) int array, non-decreasing group code of each row.
    Z : (n_rows, p) float array of covariates (p may be 0).
    successes, trials : (n_rows,) weighted counts.
    n_groups : number of groups (codes run over ``range(n_groups)``).
    starts : (n_groups,) index of each group's first row.
    offset : (n_rows,) float array, each row's fixed offset of its logit
        (coefficient 1), or None (no offset).
    """

    codes: np.ndarray
    Z: np.ndarray
    successes: np.ndarray
    trials: np.ndarray
    n_groups: int
    starts: np.ndarray
    offset: np.ndarray | None = None

    def group_sum(self, values):
        """Sum ``values`` (rows first, any trailing shape) within each group.

        A vector goes through ``np.add.reduceat``; a matrix (rows x nodes, rows
        x covariates) through a sparse row-summing matrix, which is 5-20 times
        faster than ``reduceat`` along the first axis of a 2-D array. Both add
        each group's rows in order.
        """
        if len(values) == self.n_groups and self.one_row_per_group:
            return values
        values = np.asarray(values)
        if values.ndim == 1 or values.dtype.kind not in "fc":
            return np.add.reduceat(values, self.starts, axis=0)
        flat = np.ascontiguousarray(values).reshape(len(values), -1)
        return (self._summer() @ flat).reshape((self.n_groups,) + values.shape[1:])

    def weighted_group_sum(self, weights, values):
        """Per group ``sum_i weights_i * values_i`` for (rows x k) ``values``,
        without the (rows x k) product: the row-summing matrix with
        ``weights`` in place of its ones (one row per group: the product)."""
        if self.one_row_per_group:
            return np.asarray(weights, dtype=float)[:, None] * values
        summer = self._summer()
        weighted = sparse.csr_array(
            (np.asarray(weights, dtype=float), summer.indices, summer.indptr),
            shape=summer.shape,
        )
        return weighted @ values

    def _summer(self):
        """The (groups x rows) 0/1 matrix that sums each group's rows (cached)."""
        summer = self.__dict__.get("_summer_matrix")
        if summer is None or summer.shape[1] != len(self.codes):
            rows = len(self.codes)
            summer = sparse.csr_array(
                (np.ones(rows), np.arange(rows), np.r_[self.starts, rows]),
                shape=(self.n_groups, rows),
            )
            self.__dict__["_summer_matrix"] = summer
        return summer

    def __getstate__(self):  # the caches are rebuilt on demand, not pickled
        state = dict(self.__dict__)
        state.pop("_summer_matrix", None)
        state.pop("_interpass", None)  # (the compiled pass: see quadrature)
        return state

    @property
    def one_row_per_group(self):
        return len(self.codes) == self.n_groups


def row_offset(data):
    """The rows' offsets of ``data`` (0.0 when it has none): what every
    linear predictor of its rows adds."""
    offset = getattr(data, "offset", None)
    return 0.0 if offset is None else offset


def split_offset(data):
    """``data`` whose last covariate column is the offset, with that column
    moved to ``offset`` (rows collapsed with the offset among the
    covariates merge only rows of equal offsets)."""
    data.offset = np.ascontiguousarray(data.Z[:, -1])
    data.Z = np.ascontiguousarray(data.Z[:, :-1])
    return data


def collapse_offset(codes, Z, successes, trials, n_groups, offset):
    """:func:`collapse` of rows with ``offset`` (None: none): rows merge only
    where their offsets are equal too."""
    if offset is None:
        return collapse(codes, Z, successes, trials, n_groups)
    Z = np.column_stack([np.reshape(Z, (len(codes), -1)), offset])
    return split_offset(collapse(codes, Z, successes, trials, n_groups))


def pooled_rows(data, group_weight=None):
    """The same rows as one group (complete pooling); group multiplicities, if
    given, folded into the counts."""
    m, n = data.successes, data.trials
    if group_weight is not None:
        gw = group_weight[data.codes]
        m, n = m * gw, n * gw
    return Collapsed(
        np.zeros(len(data.codes), dtype=np.intp),
        data.Z,
        m,
        n,
        1,
        np.array([0]),
        getattr(data, "offset", None),
    )


def _row_hash(codes, Z):
    """64-bit hash of (group code, covariate bits) for each row."""
    with np.errstate(over="ignore"):
        h = codes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        bits = np.empty(len(codes))
        for j in range(Z.shape[1]):
            np.add(Z[:, j], 0.0, out=bits)  # + 0.0 folds -0.0 into 0.0
            h ^= bits.view(np.uint64)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
    return h


def collapse(codes, Z, successes, trials, n_groups, return_inverse=False):
    """Sort rows by group and merge rows with equal group and covariates.

    Every group in ``range(n_groups)`` must have at least one row. Merging is
    exact for every model in skre: the likelihood of a group depends on its rows
    only through the sums of successes and trials at each covariate pattern.
    Rows are put in a canonical order (group, then a hash of the covariates), so
    the result depends on the data, not on the order of the rows or on how they
    were split into rows or weights. With ``return_inverse`` also the index of
    each input row's merged row.
    """
    data, inverse = _collapse(codes, Z, successes, trials, n_groups)
    return (data, inverse) if return_inverse else data


def _collapse(codes, Z, successes, trials, n_groups):
    codes = np.asarray(codes, dtype=np.intp)
    Z = np.asarray(Z, dtype=float)
    # (no rows: -1 cannot be inferred from size 0; a shuffled Dask partition
    # may hold no group)
    width = Z.shape[1] if Z.ndim == 2 else (0 if Z.size == 0 else -1)
    Z = Z.reshape(len(codes), width)
    if Z.shape[1] == 0:
        m = np.bincount(codes, successes, minlength=n_groups)
        n = np.bincount(codes, trials, minlength=n_groups)
        whole = Collapsed(
            np.arange(n_groups),
            np.empty((n_groups, 0)),
            m,
            n,
            n_groups,
            np.arange(n_groups),
        )
        return whole, codes
    h = _row_hash(codes, Z)
    if n_groups < 2**24:  # one sort key: group code in the high bits, hash below
        key = (codes.astype(np.uint64) << np.uint64(40)) | (h >> np.uint64(24))
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((h, codes))
    hs, cs = h[order], codes[order]
    starts_run = np.ones(len(order), dtype=bool)
    starts_run[1:] = (hs[1:] != hs[:-1]) | (cs[1:] != cs[:-1])
    Zo = np.take(Z, order, axis=0)  # a third of the time of Z[order]
    inverse = np.empty(len(order), dtype=np.intp)
    if starts_run.all():  # nothing to merge (continuous covariates)
        inverse[order] = np.arange(len(order))
        return _sorted(cs, Zo, successes[order], trials[order], n_groups), inverse
    run = np.cumsum(starts_run) - 1
    if not np.array_equal(Zo, Zo[starts_run][run]):
        # a hash collision (never seen in practice): merge by exact comparison
        keys = np.column_stack([codes.astype(float), Z])
        _, first, inverse = np.unique(
            keys, axis=0, return_index=True, return_inverse=True
        )
        inverse = inverse.ravel()
        merged = _sorted(
            codes[first],
            Z[first],
            np.bincount(inverse, successes),
            np.bincount(inverse, trials),
            n_groups,
        )
        return merged, inverse
    inverse[order] = run
    merged = _sorted(
        cs[starts_run],
        Zo[starts_run],
        np.bincount(run, successes[order]),
        np.bincount(run, trials[order]),
        n_groups,
    )
    return merged, inverse


def _sorted(codes, Z, m, n, n_groups):
    starts = np.searchsorted(codes, np.arange(n_groups))
    return Collapsed(codes, Z, m, n, n_groups, starts)


def group_rows(data, groups):
    """Indices of the rows of ``groups`` (sorted group codes), in order."""
    groups = np.asarray(groups, dtype=np.intp)
    ends = np.r_[data.starts[1:], len(data.codes)]
    lengths = ends[groups] - data.starts[groups]
    rows = np.repeat(data.starts[groups] - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    rows += np.arange(lengths.sum())
    return rows


def subset_groups(data, groups, rows=None):
    """The rows of ``groups`` (sorted group codes), renumbered 0..len-1;
    ``rows`` is :func:`group_rows` when the caller has it."""
    groups = np.asarray(groups, dtype=np.intp)
    if rows is None:
        rows = group_rows(data, groups)
    ends = np.r_[data.starts[1:], len(data.codes)]
    lengths = ends[groups] - data.starts[groups]
    codes = np.repeat(np.arange(len(groups)), lengths)
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.intp)
    return Collapsed(
        codes,
        np.take(data.Z, rows, axis=0),
        data.successes[rows],
        data.trials[rows],
        len(groups),
        starts,
        None if data.offset is None else data.offset[rows],
    )


def count_patterns(successes, trials):
    """Distinct (m, n) pairs of one-row groups and how often each occurs.

    For an intercept-only model a group's likelihood depends only on its total
    (m, n), so groups sharing it share one likelihood term.
    Returns ``(m_unique, n_unique, multiplicity, index)`` with
    ``m_unique[index] == successes``.
    """
    # one complex key per pair: a 1-D unique is far faster than unique(axis=0)
    keys, index, counts = np.unique(
        successes + 1j * trials, return_inverse=True, return_counts=True
    )
    return keys.real.copy(), keys.imag.copy(), counts.astype(float), index.ravel()


def standardize(Z, weights):
    """Weighted column means and standard deviations; ``(Z - mean) / scale``.

    The optimizers work on standardized covariates so that an age in years and
    an income in dollars converge alike; estimates are mapped back afterwards.
    Columns with zero spread get scale 1 (the caller decides whether that is an
    error).
    """
    if Z.shape[1] == 0:
        return Z, np.zeros(0), np.ones(0)
    w = weights / weights.sum()
    mean, Zc, scale = _moments(Z, w)
    if not _moments_safe(mean, scale):
        return _careful_moments(Z, w)
    scale = np.where(scale > 0, scale, 1.0)
    Zc /= scale
    return Zc, mean, scale


def _moments(Z, w):
    """Weighted mean, centred columns and standard deviation."""
    mean = w @ Z
    Zc = Z - mean
    return mean, Zc, np.sqrt(np.einsum("i,ij,ij->j", w, Zc, Zc))


def _power_of_2(top):
    """A power of 2 near ``top`` where it is positive and finite, else 1."""
    ok = np.isfinite(top) & (top > 0)
    return np.where(ok, 2.0 ** np.round(np.log2(np.where(ok, top, 1.0))), 1.0)


def _careful_moments(Z, w):
    """:func:`_moments` for columns whose values or spread would overflow or
    underflow when squared: each is scaled into [-1, 1] by a power of 2 (exact)
    before its mean, and its centred values again before their squares. Only
    when :func:`_moments_safe` fails: the largest ``|z|`` per column costs more
    than the moments. Returns :func:`standardize`'s three values."""
    unit = _power_of_2(np.max(np.abs(Z), axis=0))
    mean, Zc, _ = _moments(Z / unit, w)
    spread = _power_of_2(np.max(np.abs(Zc), axis=0))
    Zc /= spread
    scale = np.sqrt(np.einsum("i,ij,ij->j", w, Zc, Zc))
    scale = np.where(scale > 0, scale, 1.0)
    Zc /= scale
    return Zc, mean * unit, scale * spread * unit


def _moments_safe(mean, scale):
    """Whether moments taken directly are exact to rounding: finite, and no
    spread so small that its squares may have underflowed (a constant column
    takes the careful path too: its spread of 0 may be an underflow)."""
    return bool(
        np.all(np.isfinite(mean))
        and np.all(np.isfinite(scale))
        and np.all(scale > 1e-140)
    )
