"""A vector random effect per group: a random intercept and random slopes.

The model: row ``i`` of group ``g`` has ``m_i`` successes in ``n_i`` trials
with logit ``b + x_i' beta + r_i' L u_g``, ``u_g ~ N(0, I_q)``, where ``r_i``
is the row's random-effect design (1 and the slope columns) and ``L`` the
lower-triangular Cholesky factor of the random effects' covariance
``Sigma = L L'`` (diagonal ``L``: independent effects).

Each group's likelihood ``(2 pi)^(-q/2) int exp(h_g(u)) du``, with
``h_g(u) = sum_i [m_i eta_i - n_i log(1 + exp(eta_i))] - |u|^2 / 2``, is
integrated by adaptive Gauss-Hermite quadrature in q dimensions: the full
product rule of K nodes per dimension (no node dropped: see :func:`node_rule`),
centred at the group's conditional mode ``u_hat`` and scaled by the Cholesky
factor ``C_g`` of the inverse of ``H_g = I + L' A_g L`` (``A_g`` the group's
sum of ``w_i r_i r_i'``, ``w = n p (1 - p)`` at the mode):

    log L_g = log |C_g| + log sum_k w_k exp(h_g(u_hat + C_g t_k) + |t_k|^2 / 2).

K = 1 is the Laplace approximation ``h_g(u_hat) - log |H_g| / 2``.

The gradient is the exact gradient of that value (see
:meth:`SlopeLikelihood._scores`): the kernel's derivatives at the nodes
(Fisher's identity on the nodes) plus the movement of the mode and of the
scale with the parameters, which the rule's value depends on too. For K = 1
that is the gradient of the Laplace approximation, lme4's objective.

Parameters are packed as ``x = (beta, b, theta)``, ``theta`` the lower
triangle of ``L`` row by row (or its diagonal).
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse

from .binomial import fast_expit, softplus
from .kernel import slope_modes, slope_pass, slope_scores
from .nodepass import log_expit_and_expit
from .rules import product_rule

#: row-node values per chunk of the node pass (2^16 doubles, 512 KiB per
#: temporary: in cache, as the random intercept's NodePass)
CHUNK = 2**16


@dataclass
class SlopeData:
    """Rows sorted by group.

    ``X`` (rows, p) fixed covariates (no intercept column), ``R`` (rows, q)
    the random-effect design (first column 1), ``m``, ``n`` the counts,
    ``codes`` each row's group, ``starts`` each group's first row,
    ``offset`` each row's fixed offset of its logit (or None).
    """

    codes: np.ndarray
    starts: np.ndarray
    X: np.ndarray
    R: np.ndarray
    m: np.ndarray
    n: np.ndarray
    offset: np.ndarray | None = None

    @property
    def n_groups(self):
        return len(self.starts)

    @property
    def q(self):
        return self.R.shape[1]

    def group_sum(self, values):
        """Each group's sum of ``values`` (rows first, any trailing shape): a
        vector by ``np.add.reduceat``, anything wider by the sparse
        row-summing matrix (reduceat along the rows of a matrix is slow)."""
        values = np.asarray(values)
        if values.ndim == 1:
            return np.add.reduceat(values, self.starts)
        flat = np.ascontiguousarray(values).reshape(len(values), -1)
        out = self.summer(0, self.n_groups) @ flat
        return out.reshape((self.n_groups,) + values.shape[1:])

    def products(self):
        """Each row's ``R R'`` (its upper triangle, (rows, q(q+1)/2)) and
        ``(X, R)`` side by side; cached."""
        out = self.__dict__.get("_products")
        if out is None:
            iu, ju = np.triu_indices(self.q)
            RR = self.R[:, iu] * self.R[:, ju]
            out = RR, np.column_stack([self.X, self.R])
            self.__dict__["_products"] = out
        return out

    def likelihood(self, n_quad, diagonal=False, penalty=None):
        """The :class:`SlopeLikelihood` of these rows (what :func:`fit_slopes`
        and the node check build; a stand-in for rows kept elsewhere offers
        the same)."""
        return SlopeLikelihood(self, n_quad, diagonal, penalty)

    def weighted_group_sum(self, weights, values):
        """Per group ``sum_i weights_i * values_i`` for (rows x k) ``values``,
        without forming the product: the row-summing matrix with ``weights``
        in place of its ones."""
        summer = self.summer(0, self.n_groups)
        weighted = sparse.csr_array(
            (np.asarray(weights, dtype=float), summer.indices, summer.indptr),
            shape=summer.shape,
        )
        return weighted @ values

    def summer(self, g0, g1):
        """The 0/1 matrix (groups g0..g1 x their rows) that sums each group's
        rows; the whole data's is cached."""
        whole = g0 == 0 and g1 == self.n_groups
        if whole and "_summer" in self.__dict__:
            return self.__dict__["_summer"]
        ends = np.r_[self.starts, len(self.codes)]
        r0, r1 = int(ends[g0]), int(ends[g1])
        out = sparse.csr_array(
            (np.ones(r1 - r0), np.arange(r1 - r0), ends[g0 : g1 + 1] - r0),
            shape=(g1 - g0, r1 - r0),
        )
        if whole:
            self.__dict__["_summer"] = out
        return out


def cholesky_of(theta, q, diagonal):
    """``L`` from its packed entries."""
    L = np.zeros((q, q))
    if diagonal:
        L[np.diag_indices(q)] = theta
    else:
        L[np.tril_indices(q)] = theta
    return L


def n_theta(q, diagonal):
    return q if diagonal else q * (q + 1) // 2


#: the trapezoid rules in t = sinh(v) (steps in v, and the range |v| <= ...)
#: that n_quad="auto" falls back on (one slope) where Gauss-Hermite's largest
#: rule does not settle, each checked against the next (on toenail, at the
#: maximum, step 0.07 and 0.05 differ by 8e-6 of an estimate, 0.05 and 0.035
#: by 1e-8)
SINH_RULES = ("sinh:0.1:4.5", "sinh:0.07:5", "sinh:0.05:5.5", "sinh:0.035:6")


def node_rule(q, K):
    """Nodes (k, q) and log-weights of the K^q product rule for N(0, I_q).

    Every node is kept. A node's share of a group's integral is its weight
    times the integrand's ratio to the rule's normal there, and that ratio
    grows in the tails wherever the conditional distribution is wider than
    its Laplace normal (small groups, all-success groups): dropping the
    nodes whose weight is below 1e-15 of the largest (|t| > 8.3) left an
    error of up to 4.5e-7 in the log-likelihood that no larger rule reduced,
    and that a check between two such rules cannot see.

    ``K`` may also name a trapezoid rule ``"sinh:h:vmax"``: ``t = sinh(v)``
    on ``v = -vmax, ..., vmax`` in steps ``h`` in each dimension, for
    integrands far from normal (skewed, heavy-tailed conditional
    distributions, where Gauss-Hermite converges slowly); its weights
    ``h cosh(v)`` are for Lebesgue measure, written in the same convention
    (``log_w + |t|^2 / 2`` is each node's log weight over ``(2 pi)^(q/2)``).
    """
    if isinstance(K, str):
        _, h, vmax = K.split(":")
        h, vmax = float(h), float(vmax)
        v = np.arange(-vmax, vmax + h / 2, h)
        grids = np.meshgrid(*([np.sinh(v)] * q), indexing="ij")
        nodes = np.stack([g.ravel() for g in grids], axis=1)
        lw = np.meshgrid(*([np.log(h * np.cosh(v))] * q), indexing="ij")
        log_w = np.sum([g.ravel() for g in lw], axis=0)
        log_w -= 0.5 * q * np.log(2 * np.pi) + 0.5 * np.sum(nodes * nodes, axis=1)
        return nodes, log_w
    return product_rule(q, K)


class SlopeLikelihood:
    """The rule's log-likelihood of :class:`SlopeData` and its gradient."""

    def __init__(self, data, n_quad, diagonal=False, penalty=None):
        self.data, self.diagonal = data, diagonal
        self.K = n_quad if isinstance(n_quad, str) else int(n_quad)
        #: a log prior on the Cholesky entries theta (a function of them), or
        #: None: evaluate then returns the log posterior's value and gradient
        self.penalty = penalty
        self.t, self.log_w = node_rule(data.q, self.K)
        self.u = np.zeros((data.n_groups, data.q))  # latest modes (warm starts)
        self.n_eval = 0

    def unpack(self, x):
        p = self.data.X.shape[1]
        return x[:p], x[p], cholesky_of(x[p + 1 :], self.data.q, self.diagonal)

    def modes(self, offset, RL, tol=1e-10, max_iter=100):
        """Each group's conditional mode of ``u`` (Newton with step halving
        where ``h_g`` does not increase) and ``A_g``-based ``H_g`` there."""
        d = self.data
        unit = self._unit_rows
        out = slope_modes(
            offset, RL, d.m, None if unit else d.n, self._bounds, self.u, tol, max_iter
        )
        if out is not None:  # the compiled solver: the same steps, group by group
            self.u = out[0]
            return out
        u = self.u.copy()
        q, G = d.q, d.n_groups
        eye = np.eye(q)
        iu, ju = np.triu_indices(q)
        RLRL = RL[:, iu] * RL[:, ju]  # each row's RL RL', upper triangle

        def curvature(w):  # I + sum_i w_i RL_i RL_i'
            return _symmetric(d.weighted_group_sum(w, RLRL), q, iu, ju) + eye

        def h_of(u):
            eta = offset + np.einsum("ij,ij->i", RL, u[d.codes])
            return d.group_sum(d.m * eta - d.n * softplus(eta)) - 0.5 * np.sum(
                u * u, axis=1
            ), eta

        h, eta = h_of(u)
        for _ in range(max_iter):
            p = fast_expit(eta.copy())
            r, w = d.m - d.n * p, d.n * p * (1.0 - p)
            grad = d.weighted_group_sum(r, RL) - u
            step = np.einsum("gab,gb->ga", spd_inverse(curvature(w)), grad)
            size = np.max(np.abs(step), axis=1)
            if np.all(size <= tol * (1.0 + np.max(np.abs(u), axis=1))):
                break
            t = np.ones(G)
            for _ in range(30):
                trial = u + t[:, None] * step
                h_new, eta_new = h_of(trial)
                worse = h_new < h - 1e-12 * (1.0 + np.abs(h))
                if not worse.any():
                    break
                t = np.where(worse, 0.5 * t, t)
            u, h, eta = trial, h_new, eta_new
        p = fast_expit(eta.copy())
        w = d.n * p * (1.0 - p)
        self.u = u
        return u, curvature(w), eta, h

    def evaluate(self, x, grad=True):
        """``(log-likelihood, gradient, per-group log-likelihoods, per-group
        scores (G, len(x)))``; without ``grad`` the last two gradients are
        None. With a ``penalty``, the value and gradient (not the groups'
        parts) include it."""
        f, g, logm, S = self._evaluate(x, grad)
        if self.penalty is None:
            return f, g, logm, S
        p = self.data.X.shape[1] + 1
        theta = np.asarray(x, dtype=float)[p:]
        f = f + self.penalty(theta)
        if grad:
            g = g.copy()
            for j in range(len(theta)):
                h = 1e-6 * max(1.0, abs(theta[j]))
                up, down = theta.copy(), theta.copy()
                up[j] += h
                down[j] -= h
                g[p + j] += (self.penalty(up) - self.penalty(down)) / (2 * h)
        return f, g, logm, S

    def _evaluate(self, x, grad=True):
        self.n_eval += 1
        d = self.data
        beta, b, L = self.unpack(np.asarray(x, dtype=float))
        offset = b + d.X @ beta
        if d.offset is not None:
            offset = offset + d.offset
        RL = d.R @ L
        u, H, eta_hat, h_hat = self.modes(offset, RL)
        Hinv = spd_inverse(H)
        C = cholesky(Hinv)  # (G, q, q), C C' = H^-1
        self.C = C
        log_det_C = np.sum(np.log(np.diagonal(C, axis1=1, axis2=2)), axis=1)
        if self.K == 1:
            logm = log_det_C + h_hat
            if not grad:
                return float(logm.sum()), None, logm, None
            S = self._compiled_scores(u, Hinv, C, eta_hat, RL, L, None, None)
            if S is not None:
                return float(logm.sum()), S.sum(axis=0), logm, S
            prob = fast_expit(eta_hat.copy())
            r_bar = d.m - d.n * prob  # the one node: the mode
            zeros = np.zeros((d.n_groups, d.q))
            S = self._scores(
                u,
                Hinv,
                C,
                eta_hat,
                RL,
                L,
                r_bar,
                zeros[d.codes],
                zeros,
                np.zeros((d.n_groups, d.q, d.q)),
            )
            return float(logm.sum()), S.sum(axis=0), logm, S
        t, log_w = self.t, self.log_w
        # each row's RL C_g: the node offsets of eta are D_i . t_k
        D = np.einsum("ij,ijk->ik", RL, C[d.codes])
        # |u_gk|^2 = |u|^2 + 2 u' C t + t' C'C t (the last, a matrix product
        # with the nodes' t t')
        uC = np.einsum("gj,gjk->gk", u, C)
        CtC = np.einsum("gjk,gjl->gkl", C, C)
        q, G, N = d.q, d.n_groups, len(t)
        tt = (t[:, :, None] * t[:, None, :]).reshape(N, q * q)
        # each node's log weight but the kernel, -(|u|^2 + 2 u' C t + t' C'C
        # t) / 2 + log w + |t|^2 / 2, as one matrix product
        per_group = np.column_stack(
            [uC, CtC.reshape(G, q * q), np.sum(u * u, axis=1), np.ones(G)]
        )
        per_node = np.vstack(
            [-t.T, -0.5 * tt.T, np.full(N, -0.5), log_w + 0.5 * np.sum(t * t, axis=1)]
        )
        # binary rows on a Gauss-Hermite rule: the compiled pass, where built
        # (a trapezoid rule's nodes reach |t| = 120, where the compiled pass
        # takes its slower overflow-free loop for most groups: toenail's
        # profile took 1190 s instead of 821 s; numpy's pass there)
        if self._unit_rows and not isinstance(self.K, str):
            out = slope_pass(
                D, eta_hat, d.m, t, per_group, per_node, self._bounds, grad
            )
            if out is not None:
                logm, t_moments, r_moments = out
                logm += log_det_C
                if not grad:
                    return float(logm.sum()), None, logm, None
                return self._finish(
                    u, Hinv, C, eta_hat, RL, L, r_moments, t_moments, logm
                )
        # eta at the nodes, D_i . t_k + eta_hat_i, as one matrix product
        D = np.column_stack([D, eta_hat])
        t_eta = np.vstack([t.T, np.ones(N)])
        logm = np.empty(d.n_groups)
        if grad:
            r_moments = np.empty((len(d.codes), 1 + q))  # E[r], E[r t]
            t_moments = np.empty((d.n_groups, q + q * q))  # E[t], E[t t']
            t_one = np.column_stack([np.ones(len(t)), t])
            t_both = np.column_stack([t, tt])
        centre = int(np.argmax(log_w))  # the node nearest the mode
        # one pass over the rows in chunks of whole groups: each chunk's
        # kernel, its groups' node weights, then (Fisher's identity) each
        # row's residual averaged over its group's nodes, E[r] and E[r t]
        for g0, g1, r0, r1, codes, summer, m, n, m_minus_n in self._chunks:
            eta = D[r0:r1] @ t_eta
            p = kernel_and_expit(eta, m_minus_n, n)
            a = summer @ eta
            a += per_group[g0:g1] @ per_node
            # log sum_k exp(a_k), shifted by the node nearest the mode (the
            # integrand's peak); the true maximum where that overflows
            shift = a[:, centre].copy()
            pi = a - shift[:, None]
            with np.errstate(over="ignore"):
                np.exp(pi, out=pi)
            total = pi.sum(axis=1)
            bad = ~np.isfinite(total)
            if bad.any():
                shift[bad] = a[bad].max(axis=1)
                pi[bad] = np.exp(a[bad] - shift[bad, None])
                total[bad] = pi[bad].sum(axis=1)
            logm[g0:g1] = log_det_C[g0:g1] + shift + np.log(total)
            if not grad:
                continue
            pi /= total[:, None]
            t_moments[g0:g1] = pi @ t_both
            # the residual m - n p at each node, weighted by its group's pi
            if n is not None:
                p *= n
            np.subtract(m, p, out=p)
            p *= np.take(pi, codes, axis=0)
            r_moments[r0:r1] = p @ t_one
        if not grad:
            return float(logm.sum()), None, logm, None
        return self._finish(u, Hinv, C, eta_hat, RL, L, r_moments, t_moments, logm)

    def _finish(self, u, Hinv, C, eta_hat, RL, L, r_moments, t_moments, logm):
        """The value and the scores from the node pass's moments."""
        S = self._compiled_scores(u, Hinv, C, eta_hat, RL, L, r_moments, t_moments)
        if S is not None:
            return float(logm.sum()), S.sum(axis=0), logm, S
        q = self.data.q
        r_bar, r_t = r_moments[:, 0].copy(), r_moments[:, 1:]
        t_bar = t_moments[:, :q]
        T2 = t_moments[:, q:].reshape(len(t_moments), q, q)
        S = self._scores(u, Hinv, C, eta_hat, RL, L, r_bar, r_t, t_bar, T2)
        return float(logm.sum()), S.sum(axis=0), logm, S

    def _compiled_scores(self, u, Hinv, C, eta, RL, L, r_moments, t_moments):
        """:meth:`_scores` from the node pass's moments (None, None: the
        Laplace rule) by the compiled version; None where it is not built."""
        d = self.data
        return slope_scores(
            self._bounds,
            d.R,
            RL,
            d.X,
            d.m,
            None if self._unit_rows else d.n,
            eta,
            r_moments,
            u,
            Hinv,
            C,
            t_moments,
            L,
            self._entries(),
        )

    @property
    def _unit_rows(self):
        """Every row one trial (the compiled pass's case); cached."""
        unit = self.__dict__.get("_unit")
        if unit is None:
            unit = self.__dict__["_unit"] = bool(np.all(self.data.n == 1.0))
        return unit

    @property
    def _bounds(self):
        """Each group's first row, then the number of rows (int64); cached."""
        bounds = self.__dict__.get("_bounds_of_groups")
        if bounds is None:
            d = self.data
            bounds = np.r_[np.asarray(d.starts), len(d.codes)].astype(np.int64)
            self.__dict__["_bounds_of_groups"] = bounds
        return bounds

    def _entries(self):
        q = self.data.q
        if self.diagonal:
            return np.arange(q), np.arange(q)
        return np.tril_indices(q)

    @property
    def _chunks(self):
        """The node pass's chunks of whole groups, about :data:`CHUNK`
        row-node values each (a larger group is a chunk of its own): ``(g0,
        g1, r0, r1, each row's group in the chunk, the chunk's row-summing
        matrix, m, n (None when every n is 1), m - n)``, the counts as
        columns. Built on first use."""
        chunks = self.__dict__.get("_chunk_list")
        if chunks is not None:
            return chunks
        d = self.data
        rows, G = len(d.codes), d.n_groups
        per = max(1, CHUNK // max(len(self.log_w), 1))
        starts = np.asarray(d.starts)
        chunk_of_group = starts // per
        bounds = np.r_[0, np.flatnonzero(np.diff(chunk_of_group)) + 1, G]
        unit = bool(np.all(d.n == 1.0))
        chunks = []
        for g0, g1 in zip(bounds[:-1], bounds[1:]):
            r0 = int(starts[g0])
            r1 = int(starts[g1]) if g1 < G else rows
            m, n = d.m[r0:r1, None], d.n[r0:r1, None]
            chunks.append(
                (int(g0), int(g1), r0, r1, d.codes[r0:r1] - g0)
                + (d.summer(g0, g1), m, None if unit else n, m - n)
            )
        self.__dict__["_chunk_list"] = chunks
        return chunks

    def _scores(self, u, Hinv, C, eta, RL, L, r_bar, r_t, t_bar, T2):
        """Each group's exact gradient of its rule's value in ``x``, (G,
        len(x)).

        The value ``log|C| + log sum_k w_k exp(h(u_k) + |t_k|^2 / 2)``, with
        ``u_k = u_hat + C t_k``, moves with ``x`` directly (``h``'s partial
        derivatives at the nodes: Fisher's identity, ``E[r_i dEta_i/dx]``
        over the node weights ``pi``), through the mode (``du/dx = H^-1
        d2h/du dx``) and through the scale (``dC`` from ``dH``, ``C C' =
        H^-1``), the last two weighted by ``h``'s gradient at the nodes. With
        one node (Laplace) that gradient vanishes at the mode and what
        remains is ``h``'s partials and ``-tr(H^-1 dH) / 2``.

        ``r_bar``, ``r_t``: each row's residual averaged over its group's
        nodes, and times ``t_k``; ``t_bar``, ``T2``: each group's ``E[t]``
        and ``E[t t']``; ``eta``: the rows' logits at the mode; ``Hinv``:
        ``H^-1``.
        """
        d = self.data
        p, q = d.X.shape[1], d.q
        prob = fast_expit(eta.copy())
        res = d.m - d.n * prob  # at the mode
        w = d.n * prob * (1.0 - prob)
        w1 = w * (1.0 - 2.0 * prob)  # dw / d eta
        rows_a, rows_b = self._entries()
        # h's gradient at the nodes, averaged: E[grad] and E[grad t']
        LtSr = d.weighted_group_sum(r_bar, d.R) @ L  # (L' sum_i r_i R_i)'
        m1 = LtSr - u - np.einsum("gab,gb->ga", C, t_bar)
        RrT = np.stack(  # sum_i R_i (r t)_i'
            [d.weighted_group_sum(r_t[:, k], d.R) for k in range(q)], axis=2
        )
        M2 = L.T @ RrT - u[:, :, None] * t_bar[:, None, :] - C @ T2
        # the mode's and the scale's movement: with dx_j, the mode moves by
        # du_j = H^-1 M_j and H by dH_j, the value by m1' du_j (h's gradient
        # at the nodes) + sum(M2 * dC_j) (dC_j = C Phi(-C' dH_j C)) -
        # tr(H^-1 dH_j) / 2. That is linear in dH_j: sum(dH_j * Q) with Q =
        # -C W C' - H^-1 / 2 (W: C' M2's lower triangle, diagonal halved),
        # and dH_j's part L' B_j L (B_j = sum_i w'_i d_eta_ij R_i R_i',
        # d_eta_ij = D_ij + RL_i' du_j) gives sum_i w'_i d_eta_ij s_i with
        # s_i = R_i' L Q L' R_i. Collecting the du_j terms into z = H^-1 (m1
        # + sum_i w'_i s_i RL_i) leaves one row weight c_i for every
        # parameter, z' M_j = -sum_i w_i (RL_i' z) D_ij (plus, for an entry
        # (a, b) of L, z_b sum_i res_i R_ia and dL's part of dH_j)
        Ct = np.transpose(C, (0, 2, 1))
        Wt = np.tril(Ct @ M2)
        Wt[:, np.arange(q), np.arange(q)] *= 0.5
        Q = -(C @ Wt @ Ct) - 0.5 * Hinv
        iu, ju = np.triu_indices(q)
        P = L @ Q @ L.T
        P = P + np.transpose(P, (0, 2, 1))
        P[:, np.arange(q), np.arange(q)] *= 0.5
        RR, XR = d.products()
        s = np.einsum("ij,ij->i", RR, P[:, iu, ju][d.codes])  # R_i' P R_i
        w1s = w1 * s
        z = np.einsum("gab,gb->ga", Hinv, m1 + d.weighted_group_sum(w1s, RL))
        c = w1s - w * np.einsum("ij,ij->i", RL, z[d.codes])
        # Fisher's part, x_i E[r], E[r] and R_ia E[r u_b] (u = u_hat + C t),
        # and the movement's, each direct derivative of eta (x_i, 1, R_ia
        # u_b) times c_i: u is the group's, so per group sums of (X, R)
        sums = d.weighted_group_sum(r_bar + c, XR)  # (G, p + q)
        ua = u[:, rows_b]
        scores = np.column_stack(
            [sums[:, : p + 1], sums[:, p + rows_a] * ua + (RrT @ Ct)[:, rows_a, rows_b]]
        )
        Sr0 = d.weighted_group_sum(res, d.R)  # sum_i res_i R_i at the mode
        A = _symmetric(d.weighted_group_sum(w, RR), q, iu, ju)
        AL = A @ L
        Qs = Q + np.transpose(Q, (0, 2, 1))
        for k, (a, b) in enumerate(zip(rows_a, rows_b)):
            # dL = e_a e_b': M_j gains Sr0_a in row b, dH_j gains dL' A L
            # and its transpose
            scores[:, p + 1 + k] += z[:, b] * Sr0[:, a] + np.einsum(
                "gl,gl->g", AL[:, a, :], Qs[:, b, :]
            )
        return scores


def kernel_and_expit(eta, m_minus_n, n):
    """``eta`` (rows x nodes) becomes the binomial kernel ``m eta - n
    softplus(eta)`` in place; returns ``expit(eta)``. From one ``exp`` and one
    ``log``: with ``E = exp(-eta)``, ``softplus(eta) = eta + log(1 + E)`` and
    ``expit(eta) = 1 / (1 + E)``, the kernel ``(m - n) eta - n log(1 + E)``
    (``log(1 + E)`` in place of ``log1p(E)`` costs at most 1.2e-16 of each
    value, absolute). Where some ``eta`` is below -700 (``E`` would
    overflow) the exact two-``exp`` form of :func:`log_expit_and_expit`.
    ``n`` None: every n is 1."""
    if eta.size and eta.min() < -700.0:
        log_p, p = log_expit_and_expit(eta)
        eta *= m_minus_n
        if n is not None:
            log_p *= n
        eta += log_p
        return p
    p = np.negative(eta)
    np.exp(p, out=p)
    p += 1.0
    log_1pe = np.log(p)
    np.reciprocal(p, out=p)
    eta *= m_minus_n
    if n is not None:
        log_1pe *= n
    eta -= log_1pe
    return p


def cholesky(H):
    """Lower-triangular ``C`` with ``C C' = H`` for a stack (G, q, q) of
    positive definite matrices: the Cholesky recursion over the q^2 entries,
    each a vector over the stack (numpy's stacked linalg costs about as much
    per 2 x 2 matrix as this does per entry)."""
    q = H.shape[-1]
    C = np.zeros_like(H)
    for j in range(q):
        s = H[:, j, j].copy()
        for k in range(j):
            s -= C[:, j, k] ** 2
        C[:, j, j] = np.sqrt(s)
        for i in range(j + 1, q):
            s = H[:, i, j].copy()
            for k in range(j):
                s -= C[:, i, k] * C[:, j, k]
            C[:, i, j] = s / C[:, j, j]
    return C


def spd_inverse(H):
    """The inverses of a stack (G, q, q) of positive definite matrices, from
    their Cholesky factors (forward substitution entry by entry)."""
    q = H.shape[-1]
    C = cholesky(H)
    inv = np.zeros_like(H)  # C^-1, lower triangular
    for j in range(q):
        inv[:, j, j] = 1.0 / C[:, j, j]
        for i in range(j + 1, q):
            s = C[:, i, j] * inv[:, j, j]
            for k in range(j + 1, i):
                s += C[:, i, k] * inv[:, k, j]
            inv[:, i, j] = -s / C[:, i, i]
    out = np.empty_like(H)  # H^-1 = C^-T C^-1
    for a in range(q):
        for b in range(a, q):
            s = inv[:, b, a] * inv[:, b, b]
            for k in range(b + 1, q):
                s += inv[:, k, a] * inv[:, k, b]
            out[:, a, b] = out[:, b, a] = s
    return out


def _symmetric(upper, q, iu, ju):
    """(G, q, q) symmetric matrices from their upper triangles (G, q(q+1)/2)."""
    out = np.empty((len(upper), q, q))
    out[:, iu, ju] = upper
    out[:, ju, iu] = upper
    return out


@dataclass
class SlopeFitResult:
    x: np.ndarray  # (beta, b, theta)
    loglik: float  # the kernel's (no binomial constants)
    converged: bool
    n_iter: int
    message: str
    n_quad: object  # nodes per dimension, or a "sinh:h:vmax" rule
    modes: np.ndarray  # (G, q) u_hat at x
    scales: np.ndarray  # (G, q, q) C, C C' the inverse curvature there
    group_loglik: np.ndarray
    cov: np.ndarray  # inverse of the information at x (see information)


#: from this many groups the Newton steps' curvature is the outer product of
#: the groups' scores (BHHH: no extra pass); below, central differences of the
#: gradient (2 passes per parameter, cheap on small data, where BHHH is poor)
BHHH_GROUPS = 200


def lower_bounds(p, q, diagonal):
    """``x``'s lower bounds: the Cholesky factor's diagonal >= 0."""
    if diagonal:
        on_diagonal = np.ones(q, dtype=bool)
    else:
        rows, cols = np.tril_indices(q)
        on_diagonal = rows == cols
    return np.r_[np.full(p + 1, -np.inf), np.where(on_diagonal, 0.0, -np.inf)]


@dataclass
class ScoreSums:
    """The groups' scores summed where they were computed: ``outer`` the sum
    of their outer products, ``total`` their sum, ``count`` the number of
    groups. What :func:`information` needs of them; an evaluation whose
    groups live elsewhere (in partitions) returns this in place of the (G,
    len(x)) scores."""

    outer: np.ndarray
    total: np.ndarray
    count: int


def outer_products(lik, exact=False):
    """Whether :func:`information` estimates the curvature by the outer
    products of the groups' scores (else it measures the Hessian)."""
    return lik.data.n_groups >= BHHH_GROUPS and not exact


def information(lik, x, scores, exact=False):
    """Minus the Hessian of the log-likelihood at ``x`` (estimated; with
    ``exact``, central differences whatever the number of groups).
    ``scores``: the groups' scores, or their :class:`ScoreSums`."""
    if outer_products(lik, exact):
        # centred: away from the maximum the scores' mean would otherwise
        # add g g' / G, shortening every step along the gradient
        if isinstance(scores, ScoreSums):
            g, outer, count = scores.total, scores.outer, scores.count
        else:
            g, outer, count = scores.sum(axis=0), scores.T @ scores, len(scores)
        return outer - np.outer(g, g) / count
    own = getattr(lik, "hessian", None)  # a likelihood that measures its own
    return -(own(x) if own is not None else hessian(lik, x))


def newton(lik, x, lower, state=None, max_steps=100, xtol=1e-8, curvature=None):
    """Newton steps with a backtracking line search on ``information`` from
    ``x`` (``state``: ``lik.evaluate(x)`` if already made), an SD at its
    bound 0 held there while the gradient pushes it out; they stop when the
    next step would move no estimate by more than ``xtol`` of itself (floor
    0.01). ``curvature``: an information matrix to step on instead while the
    steps make fast progress (a nearby rule's at its maximum: switching to a
    finer rule then costs no measured Hessian). After each step a held or
    measured curvature is corrected by the step's change of the gradient (a
    BFGS update) and kept while progress is fast: a measured Hessian's cost
    (two evaluations per parameter) is paid once, and a held one's error
    shrinks step by step. Returns
    ``(x, (f, g, logm, S), information, steps, converged)``."""
    x = np.asarray(x, dtype=float)
    f, g, logm, S = state if state is not None else lik.evaluate(x)
    info, exact, last = None, False, np.inf
    held = curvature
    pinned = np.zeros(len(x), dtype=bool)
    for steps in range(1, max_steps + 1):
        # a Cholesky diagonal entry within SNAP of 0: the likelihood is even
        # in it there (its gradient vanishes at 0), so Newton steps on the
        # outer products only creep; pin it at 0 when the value at SNAP_TRY
        # is no higher (the maximum is on the bound), else step off the bound
        near = (lower == 0.0) & (x < SNAP) & ~pinned
        for j in np.flatnonzero(near):
            at_zero, off = x.copy(), x.copy()
            at_zero[j], off[j] = 0.0, SNAP_TRY
            f0, f1 = (
                lik.evaluate(at_zero, grad=False)[0],
                lik.evaluate(off, grad=False)[0],
            )
            if f1 <= f0:
                pinned[j], x = True, at_zero
            else:
                x = off
            f, g, logm, S = lik.evaluate(x)
        free = ((x > lower) | (g > 0)) & ~pinned
        # fresh outer products are remeasured for free at the next point; a
        # held or measured curvature is kept and corrected instead
        fresh = held is None and outer_products(lik, exact)
        info = held if held is not None else information(lik, x, S, exact)
        block = info[np.ix_(free, free)]
        d_free = _damped_solve(block, g[free])
        if d_free is None:  # not a curvature here
            if held is not None:
                held = None
                continue
            if not exact:
                exact = True
                continue
            return x, (f, g, logm, S), info, steps, False
        d = np.zeros(len(x))
        d[free] = d_free
        d = np.maximum(x + d, lower) - x
        size = np.max(np.abs(d) / np.maximum(np.abs(x), 1e-2))
        if size <= xtol:
            return x, (f, g, logm, S), info, steps, True
        if steps > 1 and size > 0.3 * last:
            # slow (linear) progress: the held curvature, then the outer
            # products, are poor
            if held is not None:
                held = None
            else:
                exact = True
        last = size
        halved = 0
        # a rejected step leaves the likelihood's modes and scales at x
        saved = (lik.u.copy(), getattr(lik, "C", None))
        while True:
            # a long step may reach covariances so large that the modes'
            # curvature is singular in floating point: a non-finite value,
            # rejected below (without numpy's warnings about it)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                out = lik.evaluate(x + d)
            if np.isfinite(out[0]) and out[0] >= f - 1e-12 * abs(f):
                break
            if halved == 12:
                break
            d *= 0.5
            halved += 1
        if halved == 12:  # no increase along the step
            lik.u, lik.C = saved
            if held is not None:  # the held curvature was poor here
                held = None
                continue
            if exact:  # even on the measured Hessian: L-BFGS-B's turn
                return x, (f, g, logm, S), info, steps, size <= 1e-6
            exact = True  # the outer products were a poor curvature here
            continue
        if not fresh and (held is not None or not outer_products(lik, exact)):
            # a held or measured curvature, kept and corrected (outer
            # products corrected along a long first step were poorer; a
            # held one found poor above is kept only where the next step
            # would measure the Hessian anyway)
            held = _secant(info, d, g - out[1])
        x, (f, g, logm, S) = x + d, out
    return x, (f, g, logm, S), info, steps, False


def _secant(info, step, change):
    """``info`` (minus a Hessian) after the BFGS update for a ``step`` along
    which minus the gradient changed by ``change``; None where the change is
    not a positive curvature (the update would lose definiteness)."""
    along = float(step @ change)
    Bs = info @ step
    sBs = float(step @ Bs)
    if not (along > 1e-12 * max(sBs, 1e-300) and sBs > 0.0):
        return None
    return info - np.outer(Bs, Bs) / sBs + np.outer(change, change) / along


#: Cholesky diagonal entries (SDs of the effects' independent parts) below
#: this are tested against their bound 0 (see :func:`newton`)
SNAP, SNAP_TRY = 1e-4, 1e-3


def _damped_solve(block, g):
    """``block^-1 g`` for a positive definite ``block``; where it is not
    (near a singular covariance the information has a null direction, and
    measured Hessians a slightly negative eigenvalue) the Levenberg-Marquardt
    step of the smallest damping ``lam * max(diag)`` that makes it so; None
    if no damping up to 1 does."""
    scale = max(float(np.max(np.abs(np.diag(block)))), 1e-300)
    eye = np.eye(len(block))
    for lam in (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1.0):
        try:
            C = np.linalg.cholesky(block + lam * scale * eye)
        except np.linalg.LinAlgError:
            continue
        return np.linalg.solve(C.T, np.linalg.solve(C, g))
    return None


def fit_slopes(
    data,
    n_quad,
    x0,
    diagonal=False,
    max_iter=500,
    gtol=1e-6,
    start=True,
    penalty=None,
    xtol=1e-8,
):
    """Maximise the rule's log-likelihood over ``x = (beta, b, theta)``
    from ``x0``: with ``start``, L-BFGS-B first (the Cholesky factor's
    diagonal kept >= 0) to near the maximum, then :func:`newton`.
    ``data``: :class:`SlopeData`, or a stand-in with its ``likelihood``,
    ``n_groups``, ``q`` and ``X.shape`` (rows kept in partitions). ``xtol``:
    the Newton steps' stop (a start for a finer rule needs less)."""
    lik = data.likelihood(n_quad, diagonal, penalty)
    lower = lower_bounds(data.X.shape[1], data.q, diagonal)
    return fit_slopes_with(lik, x0, lower, max_iter, gtol, start, xtol)


def fit_slopes_with(lik, x0, lower, max_iter=500, gtol=1e-6, start=True, xtol=1e-8):
    """:func:`fit_slopes` on a likelihood object ``lik`` (what :func:`newton`
    asks of one) with lower bounds ``lower``."""
    scale = float(max(1, lik.data.n_groups))
    n_iter, message = 0, "Newton steps"
    if start and lik.data.n_groups >= BHHH_GROUPS:
        # Newton steps first (one pass each on many groups), L-BFGS-B if
        # they do not converge from this start
        x, (f, g, logm, _), info, steps, converged = newton(lik, x0, lower, xtol=xtol)
        if converged:
            return result_of(lik, x, f, g, logm, info, lower, True, steps, message)
        n_iter = steps
    if start:

        def fun(x):
            f, g, _, _ = lik.evaluate(x)
            return -f / scale, -g / scale

        bounds = [(None if np.isinf(v) else v, None) for v in lower]
        res = optimize.minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "gtol": gtol, "ftol": 1e-12, "maxcor": 20},
        )
        x0, n_iter, message = res.x, int(res.nit), str(res.message)
    x, (f, g, logm, S), info, steps, converged = newton(lik, x0, lower, xtol=xtol)
    return result_of(
        lik, x, f, g, logm, info, lower, converged, n_iter + steps, message
    )


def result_of(lik, x, f, g, logm, info, lower, converged, n_iter, message):
    if lik.penalty is not None:  # the likelihood at the posterior mode
        f = f - lik.penalty(np.asarray(x)[lik.data.X.shape[1] + 1 :])
    free = (x > lower) | (g > 0)
    cov = np.zeros((len(x), len(x)))
    if info is not None:
        try:
            cov[np.ix_(free, free)] = np.linalg.inv(info[np.ix_(free, free)])
        except np.linalg.LinAlgError:
            cov[:] = np.nan
    return SlopeFitResult(
        x,
        f,
        bool(converged),
        int(n_iter),
        message,
        lik.K,
        lik.u.copy(),
        lik.C.copy(),
        logm,
        cov,
    )


def hessian(lik, x, h=1e-5):
    """Central differences of the gradient (symmetrized), the modes of each
    evaluation started from those at ``x``; the likelihood's modes and
    scales are left as they were (those of its latest evaluation, which
    ``result_of`` reports)."""
    x = np.asarray(x, dtype=float)
    u0, C0 = lik.u.copy(), getattr(lik, "C", None)
    k = len(x)
    H = np.empty((k, k))
    for j in range(k):
        step = h * max(1.0, abs(x[j]))
        xp, xm = x.copy(), x.copy()
        xp[j] += step
        xm[j] -= step
        lik.u = u0.copy()
        gp = lik.evaluate(xp)[1]
        lik.u = u0.copy()
        gm = lik.evaluate(xm)[1]
        H[:, j] = (gp - gm) / (2.0 * step)
    lik.u, lik.C = u0, C0
    return 0.5 * (H + H.T)
