"""The adaptive-quadrature log likelihood at many parameter vectors, for the grids
of ``method="bayes"``.

The same numbers as :meth:`skre._core.quadrature.MarginalLikelihood.values`
(the conditional modes solved by Newton's method, the same adaptive
Gauss-Hermite rule around them), arranged for speed. At node ``u`` of group g
the kernel is::

    h_g(u) = sum_i (m_i - n_i) eta_i - sum_i n_i log(1 + exp(-eta_i)),
    eta_i = o_i + tau u,

whose first sum is linear in ``u`` and the offsets (two numbers per group,
no work per row and node); for binary rows (``n_i = 1``) the second is the
log of one product per group and node, ``log prod_i (1 + exp(-eta_i))``: one
exponential per row and node instead of the exponential and logarithm of a
softplus. Where that product overflows (``h_g`` below about -700, a node of
no weight) the chunk is redone with the logarithms.
"""

import numpy as np
from scipy.special import expit

from .binomial import softplus
from .grouping import row_offset
from .roots import solve_decreasing
from .rules import adaptive_rule

LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


class BatchLikelihood:
    """Kernel log marginal likelihood of grouped rows at many ``(beta, b, tau)``.

    Parameters
    ----------
    data : Collapsed rows sorted by group.
    group_weight : (G,) multiplicity of each group's term.
    n_quad : adaptive Gauss-Hermite nodes per group.
    start : (G,) conditional modes of u to start Newton's method from (the
        fitted ones), or None for zeros.
    """

    def __init__(self, data, group_weight, n_quad, start=None):
        self.data = data
        self.group_weight = np.asarray(group_weight, dtype=float)
        self.t, self.log_omega = adaptive_rule(int(n_quad))
        m, n = data.successes, data.trials
        self.M = data.group_sum(m)
        self.N = data.group_sum(n)
        self.D = data.group_sum(m - n)  # sum of (m - n) over each group's rows
        self.DZ = data.group_sum((m - n)[:, None] * data.Z)
        # and of (m - n) times the rows' offsets
        self.D_offset = data.group_sum((m - n) * row_offset(data) + 0.0 * m)
        self.binary = bool(np.all(n == 1.0))
        self.start = np.zeros(data.n_groups) if start is None else np.asarray(start)

    def values(self, param_rows, max_elements=2_000_000):
        """Log marginal likelihood at each row of ``param_rows`` (k, p + 2)."""
        param_rows = np.atleast_2d(np.asarray(param_rows, dtype=float))
        out = np.empty(len(param_rows))
        rows = len(self.data.codes)
        per = max(1, max_elements // max(1, rows * len(self.t)))
        for s in range(0, len(param_rows), per):
            out[s : s + per] = self._chunk(param_rows[s : s + per])
        return out

    def _chunk(self, T):
        data = self.data
        m, n = data.successes[:, None], data.trials[:, None]
        beta, b, tau = T[:, :-2], T[:, -2], T[:, -1]
        offset = b[None, :] + (data.Z @ beta.T if data.Z.shape[1] else 0.0)
        if data.offset is not None:
            offset = offset + data.offset[:, None]
        offset = np.broadcast_to(offset, (len(data.codes), len(T)))

        def fun(u):
            p = expit(offset + tau * np.take(u, data.codes, axis=0))
            r = m - n * p
            W = data.group_sum(n * p * (1.0 - p))
            return tau * data.group_sum(r) - u, -(tau * tau) * W - 1.0, W

        k = len(T)
        start = np.broadcast_to(self.start[:, None], (data.n_groups, k))
        u, (W,), _ = solve_decreasing(
            fun, start, tau * (self.M - self.N)[:, None], tau * self.M[:, None]
        )
        sd = 1.0 / np.sqrt(tau * tau * W + 1.0)
        nodes = u[..., None] + sd[..., None] * self.t  # (G, k, K)
        # the linear part: sum_i (m_i - n_i) (o_i + tau u)
        lin_o = self.D[:, None] * b[None, :] + self.D_offset[:, None]
        if data.Z.shape[1]:
            lin_o = lin_o + self.DZ @ beta.T
        h = lin_o[..., None] + (self.D[:, None] * tau)[..., None] * nodes
        h -= self._log_terms(offset, tau[:, None] * nodes)
        a = self.log_omega + h - 0.5 * nodes**2
        top = a.max(axis=-1)
        A = top + np.log(np.exp(a - top[..., None]).sum(axis=-1))
        return self.group_weight @ (np.log(sd) + A - LOG_SQRT_2PI)

    def _log_terms(self, offset, tau_nodes):
        """``sum_i n_i log(1 + exp(-eta_i))`` per group and node."""
        data = self.data
        neg_eta = np.take(tau_nodes, data.codes, axis=0)  # 4x faster than [codes]
        np.add(neg_eta, offset[..., None], out=neg_eta)
        np.negative(neg_eta, out=neg_eta)
        if self.binary:
            with np.errstate(over="ignore"):
                e = np.exp(neg_eta, out=neg_eta)
                e += 1.0
                prod = np.multiply.reduceat(e, data.starts, axis=0)
            if np.all(np.isfinite(prod)):
                return np.log(prod)
        neg_eta = -(np.take(tau_nodes, data.codes, axis=0) + offset[..., None])
        terms = softplus(neg_eta)
        terms *= data.trials[:, None, None]
        return data.group_sum(terms)
