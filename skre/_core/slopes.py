"""A vector random effect per group: a random intercept and random slopes.

The model: row ``i`` of group ``g`` has ``m_i`` successes in ``n_i`` trials
with logit ``b + x_i' beta + r_i' L u_g``, ``u_g ~ N(0, I_q)``, where ``r_i``
is the row's random-effect design (1 and the slope columns) and ``L`` the
lower-triangular Cholesky factor of the random effects' covariance
``Sigma = L L'`` (diagonal ``L``: independent effects).

Each group's likelihood ``(2 pi)^(-q/2) int exp(h_g(u)) du``, with
``h_g(u) = sum_i [m_i eta_i - n_i log(1 + exp(eta_i))] - |u|^2 / 2``, is
integrated by adaptive Gauss-Hermite quadrature in q dimensions: the product
rule of K nodes per dimension (weights below 1e-15 of the largest pruned),
centred at the group's conditional mode ``u_hat`` and scaled by the Cholesky
factor ``C_g`` of the inverse of ``H_g = I + L' A_g L`` (``A_g`` the group's
sum of ``w_i r_i r_i'``, ``w = n p (1 - p)`` at the mode):

    log L_g = log |C_g| + log sum_k w_k exp(h_g(u_hat + C_g t_k) + |t_k|^2 / 2).

K = 1 is the Laplace approximation ``h_g(u_hat) - log |H_g| / 2``.

The gradient for K > 1 is the score of the exact likelihood by Fisher's
identity, ``E[d log p(y | u) / d params | y]``, its posterior expectation
taken with the same nodes: it differs from the gradient of the rule's value
by the rule's error, and the rule's error at the estimate is what the node
check measures. For K = 1 (no posterior spread to average over) the gradient
is that of the Laplace value, by central differences.

Parameters are packed as ``x = (beta, b, theta)``, ``theta`` the lower
triangle of ``L`` row by row (or its diagonal).
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from .binomial import fast_expit, softplus
from .rules import product_rule

#: node weights below this fraction of the largest are dropped (pruning)
PRUNE = 1e-15
#: row-node values per chunk of the node pass
CHUNK = 2**21


@dataclass
class SlopeData:
    """Rows sorted by group.

    ``X`` (rows, p) fixed covariates (no intercept column), ``R`` (rows, q)
    the random-effect design (first column 1), ``m``, ``n`` the counts,
    ``codes`` each row's group, ``starts`` each group's first row.
    """

    codes: np.ndarray
    starts: np.ndarray
    X: np.ndarray
    R: np.ndarray
    m: np.ndarray
    n: np.ndarray

    @property
    def n_groups(self):
        return len(self.starts)

    @property
    def q(self):
        return self.R.shape[1]

    def group_sum(self, values):
        return np.add.reduceat(values, self.starts, axis=0)


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


def pruned_rule(q, K):
    """Nodes (k, q) and log-weights of the K^q product rule for N(0, I_q),
    without the nodes whose weight is below :data:`PRUNE` of the largest."""
    nodes, log_w = product_rule(q, K)
    keep = log_w >= log_w.max() + np.log(PRUNE)
    return nodes[keep], log_w[keep]


class SlopeLikelihood:
    """The rule's log-likelihood of :class:`SlopeData` and its gradient."""

    def __init__(self, data, n_quad, diagonal=False):
        self.data, self.K, self.diagonal = data, int(n_quad), diagonal
        self.t, self.log_w = pruned_rule(data.q, self.K)
        self.u = np.zeros((data.n_groups, data.q))  # latest modes (warm starts)
        self.n_eval = 0

    def unpack(self, x):
        p = self.data.X.shape[1]
        return x[:p], x[p], cholesky_of(x[p + 1 :], self.data.q, self.diagonal)

    def modes(self, offset, RL, tol=1e-10, max_iter=100):
        """Each group's conditional mode of ``u`` (Newton with step halving
        where ``h_g`` does not increase) and ``A_g``-based ``H_g`` there."""
        d = self.data
        u = self.u.copy()
        q, G = d.q, d.n_groups
        eye = np.eye(q)

        def h_of(u):
            eta = offset + np.einsum("ij,ij->i", RL, u[d.codes])
            return d.group_sum(d.m * eta - d.n * softplus(eta)) - 0.5 * np.sum(
                u * u, axis=1
            ), eta

        h, eta = h_of(u)
        for _ in range(max_iter):
            p = fast_expit(eta.copy())
            r, w = d.m - d.n * p, d.n * p * (1.0 - p)
            grad = d.group_sum(RL * r[:, None]) - u
            A = d.group_sum(w[:, None, None] * RL[:, :, None] * RL[:, None, :])
            H = A + eye
            step = np.linalg.solve(H, grad[:, :, None])[:, :, 0]
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
        A = d.group_sum(w[:, None, None] * RL[:, :, None] * RL[:, None, :])
        self.u = u
        return u, A + eye, eta, h

    def evaluate(self, x, grad=True):
        """``(log-likelihood, gradient, per-group log-likelihoods)``."""
        self.n_eval += 1
        d = self.data
        beta, b, L = self.unpack(np.asarray(x, dtype=float))
        offset = b + d.X @ beta
        RL = d.R @ L
        u, H, eta_hat, h_hat = self.modes(offset, RL)
        C = np.linalg.cholesky(np.linalg.inv(H))  # (G, q, q), C C' = H^-1
        log_det_C = np.sum(np.log(np.diagonal(C, axis1=1, axis2=2)), axis=1)
        if self.K == 1:
            logm = log_det_C + h_hat
            g = self._laplace_gradient(u, H, eta_hat, RL, L) if grad else None
            return float(logm.sum()), g, logm
        t, log_w = self.t, self.log_w
        # each row's RL C_g: the node offsets of eta are D_i . t_k
        D = np.einsum("ij,ijk->ik", RL, C[d.codes])
        k = len(log_w)
        # |u_gk|^2 = |u|^2 + 2 u' C t + t' C'C t
        uC = np.einsum("gj,gjk->gk", u, C)
        CtC = np.einsum("gjk,gjl->gkl", C, C)
        sq = (
            np.sum(u * u, axis=1)[:, None]
            + 2.0 * uC @ t.T
            + np.einsum("kj,gjl,kl->gk", t, CtC, t)
        )
        kern = np.empty((d.n_groups, k))
        chunks = self._chunks(k)
        for g0, g1, r0, r1 in chunks:
            eta = eta_hat[r0:r1, None] + D[r0:r1] @ t.T
            val = d.m[r0:r1, None] * eta - d.n[r0:r1, None] * softplus(eta)
            kern[g0:g1] = np.add.reduceat(val, d.starts[g0:g1] - r0, axis=0)
        a = log_w + kern - 0.5 * sq + 0.5 * np.sum(t * t, axis=1)
        top = a.max(axis=1)
        pi = np.exp(a - top[:, None])
        total = pi.sum(axis=1)
        logm = log_det_C + top + np.log(total)
        if not grad:
            return float(logm.sum()), None, logm
        pi /= total[:, None]
        # Fisher's identity: E[r_ik] and E[r_ik t_k] over each group's nodes
        r_bar = np.empty(len(d.codes))
        r_t = np.empty((len(d.codes), d.q))
        for _, _, r0, r1 in chunks:
            eta = eta_hat[r0:r1, None] + D[r0:r1] @ t.T
            res = d.m[r0:r1, None] - d.n[r0:r1, None] * fast_expit(eta)
            res *= pi[d.codes[r0:r1]]
            r_bar[r0:r1] = res.sum(axis=1)
            r_t[r0:r1] = res @ t
        g_beta = d.X.T @ r_bar
        g_b = r_bar.sum()
        # d eta / d L_ab = R_ia u_b, u = u_hat + C t
        V = r_bar[:, None] * u[d.codes] + np.einsum("ijk,ik->ij", C[d.codes], r_t)
        G_L = d.R.T @ V
        g_theta = np.diag(G_L) if self.diagonal else G_L[np.tril_indices(d.q)]
        return float(logm.sum()), np.concatenate([g_beta, [g_b], g_theta]), logm

    def _chunks(self, k):
        d = self.data
        rows = len(d.codes)
        per = max(1, CHUNK // max(k, 1))
        starts = d.starts
        bounds = [0]
        for g in range(1, d.n_groups):
            if starts[g] - starts[bounds[-1]] >= per:
                bounds.append(g)
        bounds.append(d.n_groups)
        out = []
        for g0, g1 in zip(bounds[:-1], bounds[1:]):
            r1 = starts[g1] if g1 < d.n_groups else rows
            out.append((g0, g1, int(starts[g0]), int(r1)))
        return out

    def _laplace_gradient(self, u, H, eta, RL, L):
        """The exact gradient of the Laplace value ``h(u_hat) - log|H| / 2``
        in ``x``: ``h``'s partial derivatives at the mode (where its
        derivative in u vanishes), and the log-determinant's through the
        weights, ``L`` and the mode's own movement ``du/dx = H^-1 d2h/du dx``.
        """
        d = self.data
        p, q = d.X.shape[1], d.q
        prob = fast_expit(eta.copy())
        res = d.m - d.n * prob
        w = d.n * prob * (1.0 - prob)
        w1 = w * (1.0 - 2.0 * prob)  # dw / d eta
        Hinv = np.linalg.inv(H)
        c = np.einsum("ij,ijk,ik->i", RL, Hinv[d.codes], RL)  # r' L H^-1 L' r
        if self.diagonal:
            entries = [(a, a) for a in range(q)]
        else:
            entries = list(zip(*np.tril_indices(q)))
        u_rows = u[d.codes]
        # each parameter's direct effect on every row's eta (u held fixed)
        direct = [d.X[:, j] for j in range(p)] + [np.ones(len(eta))]
        direct += [d.R[:, a] * u_rows[:, b] for a, b in entries]
        Sr = d.group_sum(d.R * res[:, None])  # sum_i res_i r_i, (G, q)
        A = d.group_sum(w[:, None, None] * d.R[:, :, None] * d.R[:, None, :])
        ALH = np.einsum("gij,jk,gkl->gil", A, L, Hinv)  # A L H^-1
        grad = np.empty(len(direct))
        for j, D in enumerate(direct):
            # d (dh/du) / dx_j and the mode's movement
            M = -d.group_sum(RL * (w * D)[:, None])
            if j > p:
                a, b = entries[j - p - 1]
                M[:, b] += Sr[:, a]
            du = np.einsum("gij,gj->gi", Hinv, M)
            d_eta = D + np.einsum("ij,ij->i", RL, du[d.codes])
            trace = np.sum(w1 * d_eta * c)
            if j > p:
                trace += 2.0 * np.sum(ALH[:, a, b])
            grad[j] = np.sum(res * D) - 0.5 * trace
        return grad


@dataclass
class SlopeFitResult:
    x: np.ndarray  # (beta, b, theta)
    loglik: float  # the kernel's (no binomial constants)
    converged: bool
    n_iter: int
    message: str
    n_quad: int
    modes: np.ndarray  # (G, q) u_hat at x
    group_loglik: np.ndarray
    cov: np.ndarray  # inverse observed information of x (finite differences)


def fit_slopes(data, n_quad, x0, diagonal=False, max_iter=500, gtol=1e-7):
    """Maximise the rule's log-likelihood over ``x = (beta, b, theta)``
    from ``x0``: L-BFGS-B (the Cholesky factor's diagonal kept >= 0), then
    Newton steps on the Hessian measured by central differences of the
    gradient (the free parameters: an SD at its bound 0 stays there), which
    also give the result's covariance."""
    lik = SlopeLikelihood(data, n_quad, diagonal)
    q, p = data.q, data.X.shape[1]
    scale = float(max(1, data.n_groups))

    def fun(x):
        f, g, _ = lik.evaluate(x)
        return -f / scale, -g / scale

    bounds = [(None, None)] * (p + 1)
    if diagonal:
        bounds += [(0.0, None)] * q
        on_diagonal = np.ones(q, dtype=bool)
    else:
        rows, cols = np.tril_indices(q)
        on_diagonal = rows == cols
        bounds += [(0.0, None) if d else (None, None) for d in on_diagonal]
    res = optimize.minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iter, "gtol": gtol, "ftol": 1e-15, "maxcor": 20},
    )
    x = res.x
    lower = np.r_[np.full(p + 1, -np.inf), np.where(on_diagonal, 0.0, -np.inf)]
    f, g, logm = lik.evaluate(x)
    steps, cov = 0, None
    while steps < 5:
        steps += 1
        free = x > lower
        H = hessian(lik, x)[np.ix_(free, free)]
        try:
            cov_free = np.linalg.inv(-H)
        except np.linalg.LinAlgError:
            break
        step = np.zeros(len(x))
        step[free] = cov_free @ g[free]
        if not np.all(np.linalg.eigvalsh(-H) > 0):
            break  # not a neighbourhood of a maximum: leave L-BFGS-B's point
        trial = np.maximum(x + step, lower)
        f_t, g_t, logm_t = lik.evaluate(trial)
        cov = np.zeros((len(x), len(x)))
        cov[np.ix_(free, free)] = cov_free
        if f_t < f - 1e-12 * abs(f):
            break
        moved = np.max(np.abs(trial - x) / np.maximum(np.abs(x), 1e-2))
        x, f, g, logm = trial, f_t, g_t, logm_t
        if moved <= 1e-10:
            break
    small = np.max(np.abs(g[x > lower])) / scale <= 1e-6
    converged = bool(res.success or small)
    return SlopeFitResult(
        x,
        f,
        converged,
        int(res.nit) + steps,
        str(res.message),
        int(n_quad),
        lik.u.copy(),
        logm,
        cov,
    )


def hessian(lik, x, h=1e-5):
    """Central differences of the gradient (symmetrized), the modes of each
    evaluation started from those at ``x``."""
    x = np.asarray(x, dtype=float)
    u0 = lik.u.copy()
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
    lik.u = u0
    return 0.5 * (H + H.T)
