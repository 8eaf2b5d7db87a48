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

#: row-node values per chunk (2^16 doubles = 512 KiB per temporary)
CHUNK_ELEMENTS = 2**16


def log_expit_and_expit(eta):
    """``(log p, p)`` with ``p = expit(eta)``, from one ``exp`` and one ``log1p``.

    ``log p = min(eta, 0) - log1p(exp(-|eta|))``, exact to rounding everywhere
    (no overflow), and ``p = exp(log p)``. Works in place on a fresh array.
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
    bad = ~np.isfinite(shift)
    if bad.any():
        shift[bad] = a[bad].max(axis=1)
    with np.errstate(invalid="ignore"):
        total = np.exp(a - shift[:, None]) @ np.ones(K)
    return shift + np.log(total)


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
        rows = len(data.codes)
        per = max(1, max_elements // max(1, n_nodes))
        starts = np.asarray(data.starts)
        chunk_of_group = starts // per
        bounds = np.r_[0, np.flatnonzero(np.diff(chunk_of_group)) + 1, data.n_groups]
        self.binary = bool(
            np.all(data.trials == 1.0)
            and np.all((data.successes == 0.0) | (data.successes == 1.0))
        )
        self.chunks = []
        for g0, g1 in zip(bounds[:-1], bounds[1:]):
            r0 = int(starts[g0])
            r1 = int(starts[g1]) if g1 < data.n_groups else rows
            if g0 == 0 and g1 == data.n_groups:
                summer = data._summer()
            else:
                local = starts[g0:g1] - r0
                summer = sparse.csr_array(
                    (np.ones(r1 - r0), np.arange(r1 - r0), np.r_[local, r1 - r0]),
                    shape=(g1 - g0, r1 - r0),
                )
            m = data.successes[r0:r1, None]
            n = data.trials[r0:r1, None]
            self.chunks.append(
                (g0, g1, r0, r1, data.codes[r0:r1] - g0, summer, m - n, n)
            )

    def __call__(self, offset, xi, log_prior, grad=False, row_means=False):
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

        Returns
        -------
        h : (G, K) the kernel ``sum_i m_i eta_ik - n_i log(1 + exp(eta_ik))``.
        np_sum : (G, K) or None.
        p_mean : (rows,) or None.
        """
        G, K = xi.shape
        h = np.empty((G, K))
        np_sum = np.empty((G, K)) if grad else None
        p_mean = np.empty(len(offset)) if row_means else None
        for g0, g1, r0, r1, codes, summer, m_minus_n, n in self.chunks:
            eta = xi[g0:g1][codes]
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
                p_mean[r0:r1] = np.einsum("ij,ij->i", pi[codes], p)
            if grad:
                if not self.binary:
                    p *= n
                np_sum[g0:g1] = summer @ p
        return h, np_sum, p_mean
