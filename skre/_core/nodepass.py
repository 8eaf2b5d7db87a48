"""The rows x quadrature-nodes pass of adaptive quadrature, in cache-sized chunks.

Every evaluation of the marginal likelihood with K > 1 nodes computes the
binomial kernel of every row at every node of its group. On 10^6 binary rows
and 15 nodes that is 1.5e7 values; computed whole, each of the dozen numpy
steps streams a 120 MB temporary through memory. Here the rows are taken in
chunks of whole groups small enough to stay in cache (about 2^16 row-node
values), the transcendental functions are numpy's vectorised ``exp`` and
``log1p`` (three times faster than ``scipy.special.log_expit``), and the
per-group sums go through a sparse row-summing matrix per chunk. Memory stays
bounded by the chunk, whatever the data size.
"""

import numpy as np
from scipy import sparse

from .binomial import fast_expit

#: row-node values per chunk (2^16 doubles = 512 KiB per temporary)
CHUNK_ELEMENTS = 2**16


def log_expit_and_expit(eta):
    """``(log p, p)`` with ``p = expit(eta)``, from one ``exp`` and one ``log1p``.

    ``log p = min(eta, 0) - log1p(exp(-|eta|))``, exact to rounding everywhere
    (no overflow), and ``p = exp(log p)``. ``eta`` is left as it is.
    """
    e = np.abs(eta)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.log1p(e, out=e)
    log_p = np.minimum(eta, 0.0)
    log_p -= e
    p = np.exp(log_p, out=e)
    return log_p, p


def row_logsumexp(a):
    """``log(sum(exp(a), axis=1))`` for (groups x nodes) log-weights of adaptive
    quadrature.

    The shift is the middle node's value (the conditional mode, where the
    integrand peaks; the other nodes exceed it by at most their log-weights'
    excess, a few units), and the sum a matrix-vector product: numpy's
    reductions along short rows are 10-20 times slower.
    """
    K = a.shape[1]
    mid = a[:, K // 2] if K % 2 else np.maximum(a[:, K // 2 - 1], a[:, K // 2])
    shift = np.array(mid, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.exp(a - shift[:, None]) @ np.ones(K)
    # far from the optimum (a line search probing a huge tau) the middle node
    # need not be near the peak: those rows take the true maximum
    bad = ~(np.isfinite(total) & np.isfinite(shift))
    if bad.any():
        top = a[bad].max(axis=1)
        shift[bad] = top
        with np.errstate(invalid="ignore"):
            total[bad] = np.exp(a[bad] - top[:, None]) @ np.ones(K)
    return shift + np.log(total)


def is_binary(data):
    """Whether every row is one trial with 0 or 1 success."""
    return bool(
        np.all(data.trials == 1.0)
        and np.all((data.successes == 0.0) | (data.successes == 1.0))
    )


def whole_group_chunks(data, max_rows):
    """Chunks of whole groups of about ``max_rows`` rows (a larger group is a
    chunk of its own): ``(g0, g1, r0, r1, local_starts, summer)`` with the
    (groups x rows) 0/1 matrix that sums the chunk's groups (None for all the
    data in one chunk with one row per group: the identity)."""
    starts = np.asarray(data.starts)
    rows, G = len(data.codes), data.n_groups
    if rows <= max_rows:  # one chunk; the identity sums one row per group
        summer = None if data.one_row_per_group else data._summer()
        yield 0, G, 0, rows, starts, summer
        return
    chunk_of_group = starts // max(1, int(max_rows))
    bounds = np.r_[0, np.flatnonzero(np.diff(chunk_of_group)) + 1, G]
    for g0, g1 in zip(bounds[:-1], bounds[1:]):
        r0 = int(starts[g0])
        r1 = int(starts[g1]) if g1 < G else rows
        local = starts[g0:g1] - r0
        if g0 == 0 and g1 == G:
            summer = data._summer()
        else:
            summer = sparse.csr_array(
                (np.ones(r1 - r0), np.arange(r1 - r0), np.r_[local, r1 - r0]),
                shape=(g1 - g0, r1 - r0),
            )
        yield int(g0), int(g1), r0, r1, local, summer


class NodePass:
    """Row-node sums of one data set at K adaptive nodes per group.

    Parameters
    ----------
    data : Collapsed rows sorted by group.
    n_nodes : K, the nodes per group.
    max_elements : row-node values per chunk.
    """

    def __init__(self, data, n_nodes, max_elements=CHUNK_ELEMENTS):
        self.n_groups = data.n_groups
        self.binary = is_binary(data)
        per = max(1, max_elements // max(1, n_nodes))
        self.chunks = []
        for g0, g1, r0, r1, _, summer in whole_group_chunks(data, per):
            m = data.successes[r0:r1, None]
            n = data.trials[r0:r1, None]
            self.chunks.append(
                (g0, g1, r0, r1, data.codes[r0:r1] - g0, summer, m - n, n)
            )
        # one row per group in one chunk (small intercept-only data, the rats):
        # every gather and group sum is the identity, and skipping them halves
        # the numpy calls of a pass
        self.one_row = data.one_row_per_group and len(self.chunks) == 1

    def __call__(
        self, offset, xi, log_prior, grad=False, row_means=False, weights=False
    ):
        """Sums over each group's rows at its nodes.

        Parameters
        ----------
        offset : (rows,) fixed part of each row's logit.
        xi : (G, K) the group effect at each node (``tau * u``).
        log_prior : (G, K) ``log omega_k - u_k^2 / 2`` at each node; with the
            kernel sums it gives each node's posterior weight.
        grad : also return ``sum_i n_i p_ik`` per group and node.
        row_means : also return each row's posterior mean of p over its
            group's nodes, ``sum_k pi_gk p_ik``.
        weights : also return ``sum_i n_i p_ik (1 - p_ik)`` per group and node
            (the curvature of the kernel, for the Hessian).

        Returns
        -------
        h : (G, K) the kernel ``sum_i m_i eta_ik - n_i log(1 + exp(eta_ik))``.
        np_sum : (G, K) or None.
        p_mean : (rows,) or None.
        w_sum : (G, K) or None.
        """
        G, K = xi.shape
        ones = np.ones(K)
        if self.one_row:
            return self._one_row(offset, xi, log_prior, grad, row_means, weights, ones)
        h = np.empty((G, K))
        np_sum = np.empty((G, K)) if grad else None
        w_sum = np.empty((G, K)) if weights else None
        p_mean = np.empty(len(offset)) if row_means else None
        for g0, g1, r0, r1, codes, summer, m_minus_n, n in self.chunks:
            eta = np.take(xi[g0:g1], codes, axis=0)  # 4x faster than xi[codes]
            eta += offset[r0:r1, None]
            log_p, p = log_expit_and_expit(eta)
            # kernel m eta - n softplus(eta) = (m - n) eta + n log p
            eta *= m_minus_n
            if not self.binary:
                log_p *= n
            eta += log_p
            h[g0:g1] = summer @ eta
            if row_means:
                a = log_prior[g0:g1] + h[g0:g1]
                a -= row_logsumexp(a)[:, None]
                pi = np.exp(a, out=a)
                pi = np.take(pi, codes, axis=0)
                pi *= p
                p_mean[r0:r1] = pi @ ones  # 3x faster than einsum on pi[codes]
            if weights:
                w = p * (1.0 - p)
                if not self.binary:
                    w *= n
                w_sum[g0:g1] = summer @ w
            if grad:
                if not self.binary:
                    p *= n
                np_sum[g0:g1] = summer @ p
        return h, np_sum, p_mean, w_sum

    def _one_row(self, offset, xi, log_prior, grad, row_means, weights, ones):
        """:meth:`__call__` when each group is one row (the same numbers: its
        gathers and sums are the identity)."""
        m_minus_n, n = self.chunks[0][6:]
        h = xi + offset[:, None]
        log_p, p = log_expit_and_expit(h)
        h *= m_minus_n
        if not self.binary:
            log_p *= n
        h += log_p
        p_mean = None
        if row_means:
            a = log_prior + h
            a -= row_logsumexp(a)[:, None]
            pi = np.exp(a, out=a)
            pi *= p
            p_mean = pi @ ones
        w = None
        if weights:
            w = p * (1.0 - p)
            if not self.binary:
                w *= n
        if grad and not self.binary:
            p *= n
        return h, (p if grad else None), p_mean, w


def _sums(values, by, identity):
    """Each group's sum of ``values``: ``values`` itself when every group is
    one row, else ``np.add.reduceat`` at the group starts ``by`` (vectors) or
    the product with the sparse row-summing matrix ``by`` (matrices: reduceat
    along the rows of a matrix is slow)."""
    if identity:
        return values
    if sparse.issparse(by):
        return by @ values
    return np.add.reduceat(values, by)


class AtMode:
    """Per-group sums at the conditional modes (what the gradient needs).

    ``W``, ``R0``, ``V``: sums of the working weight ``n p (1 - p)``, the
    residual ``m - n p`` and ``w (1 - 2 p)``; ``h0`` the kernel (the Laplace
    value); ``WZ``, ``VZ`` the covariates weighted by ``w`` and ``v``; ``r0``
    each row's residual (Laplace only). Unrequested ones are None.
    """

    __slots__ = ("W", "R0", "V", "h0", "WZ", "VZ", "r0")

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))


class ModePass:
    """The rows' passes of the conditional-mode solve, in chunks of whole groups.

    Each Newton step for the modes needs only two sums per group; here they
    are accumulated chunk by chunk (about :data:`MODE_CHUNK_ROWS` rows, in
    cache) without keeping any row array. At the solution :meth:`at_mode`
    makes one more pass for everything the value and gradient need.
    """

    def __init__(self, data, max_rows=None):
        self.n_groups = data.n_groups
        self.binary = is_binary(data)
        self.M = data.group_sum(data.successes)
        self.Z = data.Z
        self.chunks = [
            (g0, g1, r0, r1, data.codes[r0:r1] - g0, local)
            + (data.successes[r0:r1], data.trials[r0:r1], summer)
            for g0, g1, r0, r1, local, summer in whole_group_chunks(
                data, max_rows or MODE_CHUNK_ROWS
            )
        ]
        self.one_row = data.one_row_per_group and len(self.chunks) == 1

    def sums(self, offset, xi):
        """``(R, W)``: each group's residual and weight sums at
        ``eta = offset + xi[group]``."""
        if self.one_row:  # each group one row: no gathers, no sums
            _, _, _, _, _, _, _m, n, _ = self.chunks[0]
            p = fast_expit(xi + offset, out=None)
            if not self.binary:
                p *= n
            W = p * (1.0 - (p if self.binary else p / n))
            return self.M - p, W
        R, W = np.empty(self.n_groups), np.empty(self.n_groups)
        for g0, g1, r0, r1, codes, local, _m, n, _ in self.chunks:
            eta = np.take(xi[g0:g1], codes)
            eta += offset[r0:r1]
            p = fast_expit(eta, out=eta)
            if not self.binary:
                p *= n
            R[g0:g1] = np.add.reduceat(p, local)
            p *= 1.0 - (p if self.binary else p / n)  # n p (1 - p)
            W[g0:g1] = np.add.reduceat(p, local)
        return self.M - R, W

    def at_mode(self, offset, xi, grad=True, rows=False, kernel=True):
        """:class:`AtMode` at ``eta = offset + xi[group]``: ``W`` always,
        ``h0`` with ``kernel`` (Laplace's value), the gradient's sums with
        ``grad``, ``r0`` with ``rows``."""
        G, Z = self.n_groups, self.Z
        p_cols = Z.shape[1] if grad else 0
        W, h0 = np.empty(G), np.empty(G) if kernel else None
        R0, V = (np.empty(G), np.empty(G)) if grad else (None, None)
        WZ, VZ = (
            (np.empty((G, p_cols)), np.empty((G, p_cols))) if p_cols else (None,) * 2
        )
        r_rows = np.empty(len(offset)) if rows else None
        one = self.one_row  # the gathers and group sums are the identity
        for g0, g1, r0, r1, codes, local, m, n, summer in self.chunks:
            if one:
                eta = xi + offset
            else:
                eta = np.take(xi[g0:g1], codes)
                eta += offset[r0:r1]
            log_p, p = log_expit_and_expit(eta)
            if kernel:  # (m - n) eta + n log p
                if not self.binary:
                    log_p *= n
                log_p += (m - n) * eta
                h0[g0:g1] = _sums(log_p, local, one)
            np_ = p if self.binary else n * p  # binary rows: n = 1
            w = np_ * (1.0 - p)
            W[g0:g1] = _sums(w, local, one)
            if not grad:
                continue
            r = m - np_
            R0[g0:g1] = _sums(r, local, one)
            v = w * (1.0 - 2.0 * p)
            V[g0:g1] = _sums(v, local, one)
            if p_cols:
                Zc = Z[r0:r1]
                WZ[g0:g1] = _sums(w[:, None] * Zc, summer, one)
                VZ[g0:g1] = _sums(v[:, None] * Zc, summer, one)
            if rows:
                r_rows[r0:r1] = r
        return AtMode(W=W, h0=h0, R0=R0, V=V, WZ=WZ, VZ=VZ, r0=r_rows)


#: rows per chunk of the mode passes (2^16 doubles = 512 KiB per temporary;
#: measured on 10^6 rows: 2^12 rows 12 ms a Newton pass, 2^14 9 ms, 2^16 6 ms,
#: whole 8 ms)
MODE_CHUNK_ROWS = 2**16
