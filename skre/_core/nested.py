"""Two nested random intercepts, lme4's ``(1 | a/b)``, by nested adaptive
quadrature.

The model: row ``i`` of inner group ``j`` (a school) within outer group ``a``
(its district) has ``m_i`` successes in ``n_i`` trials with logit
``b + x_i' beta + s_a z_a + s_b w_j``, ``z_a, w_j ~ N(0, 1)`` independent:
the outer and inner groups' effects have SDs ``s_a`` and ``s_b``.

Each outer group's likelihood ``(2 pi)^(-(1 + J)/2) int exp(h(z, w)) dz dw``,
``h = sum_i [m_i eta_i - n_i log(1 + exp(eta_i))] - z^2/2 - |w|^2/2`` over
its ``J`` inner groups, is integrated as Pinheiro and Chao (2006) do: at the
joint mode ``(z_hat, w_hat)`` the curvature ``H = -h''`` is an arrowhead
(``H_zz``, ``H_zj``, ``H_jj``), so with ``S = H_zz - sum_j H_zj^2 / H_jj``
(z's marginal precision) the change of variables

    z = z_hat + t / sqrt(S),
    w_j = w_hat_j - (H_zj / H_jj) (z - z_hat) + t_j / sqrt(H_jj)

turns it into a nested sum: K Gauss-Hermite nodes ``t`` for the outer
effect and, for each of them, K nodes ``t_j`` for each inner group
separately (K^2 evaluations per row, not K^(1 + J)):

    log L_a = -log S / 2 - sum_j log H_jj / 2
              + log sum_k w_k e^(t_k^2/2 - z_k^2/2)
                    prod_j sum_l w_l e^(t_l^2/2 - w_jkl^2/2 + l_j(z_k, w_jkl)).

K = 1 is the Laplace approximation ``h(z_hat, w_hat) - log |H| / 2``, lme4's
objective (``log |H| = log S + sum_j log H_jj``). Like every adaptive rule it
is exact as K grows, whatever the data.

The gradient is the exact gradient of the rule's value
(:meth:`NestedLikelihood.value_and_scores`): the kernel's derivatives at the
nodes plus the movement of the nodes with the parameters, through the joint
mode and ``S`` and through each inner group's conditional mode and curvature
at each outer node (implicit differentiation). For ``K = 1`` it is the
gradient of the Laplace approximation, lme4's objective. Parameters are
packed ``x = (beta, b, s_a, s_b)``; the likelihood is even in each SD, which
the optimizer keeps >= 0.
"""

from types import SimpleNamespace

import numpy as np
from scipy import sparse

from .accuracy import LEVELS, first_settled
from .binomial import fast_expit
from .rules import normal_rule
from .slopes import fit_slopes_with, hessian, newton, result_of

#: row-node values per chunk of the value pass
CHUNK = 2**16
#: steps of the central differences (relative, floor 1)
FD_STEP = 1e-3
#: a measured Hessian serves the Newton steps while no parameter moves more
#: than this from where it was measured (relative, floor 0.1)
REUSE = 0.05


class NestedData:
    """Rows sorted by inner group, inner groups by outer group.

    ``X`` (rows, p) fixed covariates, ``m``, ``n`` the counts, ``offset``
    each row's fixed offset (or None), ``inner_starts`` each inner group's
    first row, ``outer_starts`` each outer group's first inner group.
    """

    def __init__(self, X, m, n, inner_starts, outer_starts, offset=None):
        self.X, self.m, self.n, self.offset = X, m, n, offset
        self.inner_starts = np.asarray(inner_starts, dtype=np.intp)
        self.outer_starts = np.asarray(outer_starts, dtype=np.intp)
        rows, J = len(m), len(self.inner_starts)
        self.row_inner = np.repeat(
            np.arange(J), np.diff(np.r_[self.inner_starts, rows])
        )
        self.inner_outer = np.repeat(
            np.arange(len(self.outer_starts)),
            np.diff(np.r_[self.outer_starts, J]),
        )
        self.row_outer = self.inner_outer[self.row_inner]
        self.outer_row_starts = self.inner_starts[self.outer_starts]

    @property
    def n_groups(self):
        """Outer groups: the independent units of the likelihood."""
        return len(self.outer_starts)

    @property
    def n_inner(self):
        return len(self.inner_starts)


def nested_rule(K):
    """Nodes and log-weights of K Gauss-Hermite nodes for N(0, 1), every
    node kept: an inner group's conditional distribution can be much wider
    in a tail than its Laplace normal (one or two rows, all successes), and
    dropping the nodes of weight below 1e-15 of the largest left an error of
    1e-7 in the log-likelihood at every rule from 35 nodes up (see
    :func:`skre._core.slopes.node_rule`)."""
    z, w = normal_rule(int(K))
    return np.asarray(z), np.log(np.asarray(w))


class NestedLikelihood:
    """The rule's log-likelihood of :class:`NestedData` and its gradient,
    offering what :func:`skre._core.slopes.newton` asks of a likelihood."""

    penalty = None
    #: ``(x, Hessian at x)`` for the Newton steps (see :meth:`hessian`)
    curvature = None

    def __init__(self, data, n_quad):
        self.data = data
        self.K = int(n_quad)
        self.t, self.log_w = nested_rule(self.K)
        #: latest modes, (z of each outer group, w of each inner group)
        self.u = np.zeros(data.n_groups + data.n_inner)
        self.C = None  # (S, H_jj, H_zj) at the latest modes, packed
        self.n_eval = 0

    def unpack(self, x):
        p = self.data.X.shape[1]
        return x[:p], x[p], x[p + 1], x[p + 2]

    def fixed(self, beta, b):
        d = self.data
        out = b + d.X @ beta
        return out + d.offset if d.offset is not None else out

    # -- the joint modes -----------------------------------------------------------
    def modes(self, fixed, sa, sb, tol=1e-12, max_iter=100):
        """Each outer group's joint mode of ``(z, w)`` (Newton on the
        arrowhead system, step halving per outer group where ``h`` does not
        increase) and the curvature there: ``(z, w, S, H_jj, H_zj)``."""
        d = self.data
        A = d.n_groups
        z, w = self.u[:A].copy(), self.u[A:].copy()
        ins, outs, ors = d.inner_starts, d.outer_starts, d.outer_row_starts

        def h_of(z, w):
            eta = fixed + sa * z[d.row_outer] + sb * w[d.row_inner]
            ll = d.m * eta - d.n * np.logaddexp(0.0, eta)
            return (
                np.add.reduceat(ll, ors)
                - 0.5 * z * z
                - 0.5 * np.add.reduceat(w * w, outs)
            ), eta

        def curvature(eta):
            p = fast_expit(eta.copy())
            Wj = np.add.reduceat(d.n * p * (1.0 - p), ins)
            Hjj = 1.0 + sb * sb * Wj
            Hzj = sa * sb * Wj
            Hzz = 1.0 + sa * sa * np.add.reduceat(Wj, outs)
            S = Hzz - np.add.reduceat(Hzj * Hzj / Hjj, outs)
            return p, Hjj, Hzj, S

        h, eta = h_of(z, w)
        for _ in range(max_iter):
            p, Hjj, Hzj, S = curvature(eta)
            rj = np.add.reduceat(d.m - d.n * p, ins)
            gw = sb * rj - w
            gz = sa * np.add.reduceat(rj, outs) - z
            dz = (gz - np.add.reduceat(Hzj * gw / Hjj, outs)) / S
            dw = (gw - Hzj * dz[d.inner_outer]) / Hjj
            size = np.maximum(
                np.abs(dz), np.maximum.reduceat(np.abs(dw), outs)
            )  # per outer group
            done = np.all(size <= tol * (1.0 + np.abs(z)))
            step = np.ones(A)
            for _ in range(30):
                zt = z + step * dz
                wt = w + step[d.inner_outer] * dw
                h_new, eta_new = h_of(zt, wt)
                worse = h_new < h - 1e-13 * (1.0 + np.abs(h))
                if not worse.any():
                    break
                step = np.where(worse, 0.5 * step, step)
            z, w, h, eta = zt, wt, h_new, eta_new
            if done:
                break
        _, Hjj, Hzj, S = curvature(eta)
        self.u = np.r_[z, w]
        self.C = np.r_[S, Hjj, Hzj]
        return z, w, S, Hjj, Hzj

    # -- the value --------------------------------------------------------------------
    def group_loglik(self, x):
        """Each outer group's log-likelihood on the rule at ``x``."""
        out = np.empty(self.data.n_groups)
        for c in self._passes(x):
            out[c.a0 : c.a1] = _logsumexp(c.outer) - 0.5 * np.log(c.S)
        return out

    def posterior(self, x):
        """The rule's nodes and posterior weights at ``x``: each outer
        group's outer-effect nodes ``z`` (A, K) and log-weights (A, K), and
        each inner group's inner-effect nodes ``w`` (J, K, K) and log-weights
        (J, K, K) of the pair ``(z_k, w_kl)``, each set of weights summing to
        1 (z's marginal over all the outer group's data; the pair's joint)."""
        d, K = self.data, len(self.t)
        z, lz = np.empty((d.n_groups, K)), np.empty((d.n_groups, K))
        w, lzw = np.empty((d.n_inner, K, K)), np.empty((d.n_inner, K, K))
        for c in self._passes(x):
            a0, a1, j0, j1 = c.a0, c.a1, c.j0, c.j1
            lo = c.outer - _logsumexp(c.outer)[:, None]
            z[a0:a1], lz[a0:a1], w[j0:j1] = c.zk, lo, c.wj
            cond = c.terms - _logsumexp(c.terms)[:, :, None]
            lzw[j0:j1] = lo[c.ch.oj][:, :, None] + cond
        return z, lz, w, lzw

    def _passes(self, x):
        """The value pass over chunks of outer groups: yields for each chunk
        a namespace of its outer groups ``a0..a1``, inner groups ``j0..j1``,
        rows ``r0..r1`` and index arrays (``ch``), the outer nodes ``zk``
        (Ac, K), the rows' logits without the inner effect ``base`` (rows,
        K), the inner conditional modes ``wc`` and curvatures ``c`` (Jc, K),
        the inner nodes ``wj`` (Jc, K, K), the row-node logits ``eta``, the
        inner terms ``terms`` (Jc, K, K) and the outer log-terms ``outer``
        (Ac, K)."""
        self.n_eval += 1
        beta, b, sa, sb = self.unpack(np.asarray(x, dtype=float))
        fixed = self.fixed(beta, b)
        z, w, S, Hjj, Hzj = self.modes(fixed, sa, sb)
        t, lw = self.t, self.log_w
        ratio = Hzj / Hjj
        for a0, a1, j0, j1, r0, r1, ch in self._chunks():
            dz = t[None, :] / np.sqrt(S[a0:a1])[:, None]  # (Ac, K)
            zk = z[a0:a1, None] + dz
            base = fixed[r0:r1, None] + sa * zk[ch.row_outer]  # (rows, K)
            # each inner group's conditional mode given each outer node,
            # from the joint mode's linear prediction
            wc, c = self._inner_modes(
                base, w[j0:j1, None] - ratio[j0:j1, None] * dz[ch.oj], sb, ch
            )
            wj = wc[:, :, None] + t / np.sqrt(c)[:, :, None]  # (Jc, K, K)
            eta = base[:, :, None] + sb * wj[ch.ri]
            lj = ch.to_inner(_kernel(eta, ch.m[:, :, None], ch.n[:, :, None]))
            terms = lj + lw + 0.5 * t * t - 0.5 * wj * wj
            inner = _logsumexp(terms) - 0.5 * np.log(c)
            outer = ch.to_outer(inner) + lw + 0.5 * t * t - 0.5 * zk * zk
            yield SimpleNamespace(
                a0=a0, a1=a1, j0=j0, j1=j1, r0=r0, r1=r1, ch=ch, zk=zk,
                base=base, wc=wc, c=c, wj=wj, eta=eta, terms=terms, outer=outer,
                S=S[a0:a1], fixed=fixed[r0:r1], z=z[a0:a1], w=w[j0:j1],
                Hjj=Hjj[j0:j1], Hzj=Hzj[j0:j1], sa=sa, sb=sb,
            )  # fmt: skip

    def _chunks(self):
        """The chunks of outer groups (rows x K^2 within :data:`CHUNK`) and
        each chunk's index arrays and row-summing matrices; cached."""
        if self.__dict__.get("_chunk_list") is not None:
            return self._chunk_list
        d = self.data
        K = len(self.t)
        ors = np.r_[d.outer_row_starts, len(d.m)]
        step = max(1, CHUNK // (K * K))
        out, a0 = [], 0
        while a0 < d.n_groups:
            # outer groups a0..a1 whose rows fit in a chunk (at least one)
            a1 = int(np.searchsorted(ors, ors[a0] + step, side="right")) - 1
            a1 = min(max(a1, a0 + 1), d.n_groups)
            j0 = int(d.outer_starts[a0])
            j1 = int(d.outer_starts[a1]) if a1 < d.n_groups else d.n_inner
            r0, r1 = int(ors[a0]), int(ors[a1])
            out.append((a0, a1, j0, j1, r0, r1, _Chunk(d, a0, j0, j1, r0, r1)))
            a0 = a1
        self._chunk_list = out
        return out

    def _inner_modes(self, base, w, sb, ch, tol=1e-12, max_iter=50):
        """A chunk's inner groups' conditional modes of ``w`` (Jc, K) at each
        outer node, their rows having logits ``base + sb w``, and the
        curvature there: 1-D Newton steps, halved where they do not raise
        ``l_j(w) - w^2 / 2``."""
        m, n = ch.m, ch.n

        def g_of(w):
            eta = base + sb * w[ch.ri]
            return ch.to_inner(_kernel(eta, m, n)) - 0.5 * w * w, eta

        g, eta = g_of(w)
        for _ in range(max_iter):
            p = fast_expit(eta.copy())
            r = ch.to_inner(m - n * p)
            c = 1.0 + sb * sb * ch.to_inner(n * p * (1.0 - p))
            dw = (sb * r - w) / c
            done = np.all(np.abs(dw) <= tol * (1.0 + np.abs(w)))
            h = np.ones_like(w)
            for _ in range(30):
                wt = w + h * dw
                g_new, eta_new = g_of(wt)
                worse = g_new < g - 1e-13 * (1.0 + np.abs(g))
                if not worse.any():
                    break
                h = np.where(worse, 0.5 * h, h)
            w, g, eta = wt, g_new, eta_new
            if done:
                break
        p = fast_expit(eta.copy())
        c = 1.0 + sb * sb * ch.to_inner(n * p * (1.0 - p))
        return w, c

    def evaluate(self, x, grad=True):
        """``(log-likelihood, gradient, per-group log-likelihoods, per-group
        scores (A, len(x)))`` (the last two gradients None without
        ``grad``); the scores are the exact derivatives of the rule's value
        (:meth:`value_and_scores`)."""
        x = np.asarray(x, dtype=float)
        if not grad:
            logm = self.group_loglik(x)
            return float(logm.sum()), None, logm, None
        logm, scores = self.value_and_scores(x)
        return float(logm.sum()), scores.sum(axis=0), logm, scores

    def value_and_scores(self, x):
        """Each outer group's log-likelihood on the rule and its exact
        gradient (A, len(x)): the derivative of the rule's value with its
        nodes moving with the parameters, through the joint modes and
        curvature (implicit differentiation of the arrowhead system) and the
        inner groups' conditional modes and curvatures at each outer node
        (implicit differentiation of their 1-D equations); forward mode,
        every parameter at once."""
        d = self.data
        p = d.X.shape[1]
        P = p + 3
        e_sa, e_sb = np.zeros(P), np.zeros(P)
        e_sa[p + 1] = e_sb[p + 2] = 1.0
        t = self.t
        logm = np.empty(d.n_groups)
        scores = np.empty((d.n_groups, P))
        for c in self._passes(x):
            ch, sa, sb = c.ch, c.sa, c.sb
            inner, outer_sum = ch.to_inner, ch.to_outer
            m, n = ch.m[:, 0], ch.n[:, 0]
            ro, ri = ch.row_outer, ch.ri
            logm[c.a0 : c.a1] = _logsumexp(c.outer) - 0.5 * np.log(c.S)
            dF = np.zeros((c.r1 - c.r0, P))
            dF[:, :p] = d.X[c.r0 : c.r1]
            dF[:, p] = 1.0
            # the joint mode and S
            pj = fast_expit(c.fixed + sa * c.z[ro] + sb * c.w[ri])
            Wr = n * pj * (1.0 - pj)
            v = dF + c.z[ro, None] * e_sa + c.w[ri, None] * e_sb
            Rj, Wj = inner(m - n * pj), inner(Wr)
            rhs_j = Rj[:, None] * e_sb - sb * inner(Wr[:, None] * v)
            rhs_z = outer_sum(Rj)[:, None] * e_sa - sa * outer_sum(
                inner(Wr[:, None] * v)
            )
            Hjj, Hzj, S = c.Hjj[:, None], c.Hzj[:, None], c.S[:, None]
            dz_hat = (rhs_z - outer_sum(Hzj / Hjj * rhs_j)) / S
            dw_hat = (rhs_j - Hzj * dz_hat[ch.oj]) / Hjj
            deta = v + sa * dz_hat[ro] + sb * dw_hat[ri]
            dWj = inner((Wr * (1.0 - 2.0 * pj))[:, None] * deta)
            dHzz = 2 * sa * outer_sum(Wj)[:, None] * e_sa + sa * sa * outer_sum(dWj)
            dHzj = Wj[:, None] * (sb * e_sa + sa * e_sb) + sa * sb * dWj
            dHjj = 2 * sb * Wj[:, None] * e_sb + sb * sb * dWj
            dS = dHzz - outer_sum(2 * Hzj * dHzj / Hjj - (Hzj / Hjj) ** 2 * dHjj)
            # the outer nodes z_k = z_hat + t_k / sqrt(S)
            dzk = dz_hat[:, None, :] - 0.5 * t[None, :, None] * (
                S[:, :, None] ** -1.5 * dS[:, None, :]
            )
            # the inner conditional modes and curvatures at each outer node
            ps = fast_expit(c.base + sb * c.wc[ri])
            Ws = n[:, None] * ps * (1.0 - ps)
            Rs = inner(m[:, None] - n[:, None] * ps)
            dbase = dF[:, None, :] + c.zk[ro][:, :, None] * e_sa + sa * dzk[ro]
            wcr = c.wc[ri][:, :, None]
            dws = (
                Rs[:, :, None] * e_sb
                - sb * inner(Ws[:, :, None] * (dbase + wcr * e_sb))
            ) / c.c[:, :, None]
            deta_s = dbase + wcr * e_sb + sb * dws[ri]
            dc = 2 * sb * inner(Ws)[:, :, None] * e_sb + sb * sb * inner(
                (Ws * (1.0 - 2.0 * ps))[:, :, None] * deta_s
            )
            # the value's weights: pi over outer nodes, rho over inner ones
            pi = np.exp(c.outer - _logsumexp(c.outer)[:, None])
            rho = np.exp(c.terms - _logsumexp(c.terms)[:, :, None])
            r3 = ch.m[:, :, None] - ch.n[:, :, None] * fast_expit(c.eta.copy())
            R3 = inner(r3)
            q = pi[ch.oj][:, :, None] * rho
            a_i = np.einsum("ikl,ikl->i", q[ri], r3)
            S1 = np.sum(rho * R3, axis=2)
            S1a = outer_sum(S1)
            out = outer_sum(inner(dF * a_i[:, None]))
            out += np.sum(pi * c.zk * S1a, axis=1)[:, None] * e_sa
            out += outer_sum(np.sum(q * R3 * c.wj, axis=(1, 2)))[:, None] * e_sb
            D = pi * (sa * S1a - c.zk)
            out += np.einsum("ak,akp->ap", D, dzk)
            B = q * (sb * R3 - c.wj)
            b1 = B.sum(axis=2)
            gam = -0.5 * c.c**-1.5 * np.sum(B * t, axis=2) - 0.5 * pi[ch.oj] / c.c
            out += outer_sum(
                np.einsum("jk,jkp->jp", b1, dws) + np.einsum("jk,jkp->jp", gam, dc)
            )
            out -= 0.5 * dS / S
            scores[c.a0 : c.a1] = out
        return logm, scores

    def fd_scores(self, x):
        """Each outer group's gradient by Richardson's extrapolation of
        central differences of :meth:`group_loglik` (each evaluation's modes
        started from those at ``x``): a check of :meth:`value_and_scores`."""
        x = np.asarray(x, dtype=float)
        logm = self.group_loglik(x)
        base_u, base_C = self.u.copy(), self.C
        scores = np.empty((len(logm), len(x)))
        for k in range(len(x)):
            h = FD_STEP * max(1.0, abs(x[k]))
            vals = []
            for step in (h, -h, 2 * h, -2 * h):
                xc = x.copy()
                xc[k] += step
                self.u = base_u.copy()
                vals.append(self.group_loglik(xc))
            scores[:, k] = (8.0 * (vals[0] - vals[1]) - (vals[2] - vals[3])) / (12 * h)
        self.u, self.C = base_u, base_C
        return scores

    def hessian(self, x):
        """The Hessian the Newton steps use: the last one measured
        (:attr:`curvature`) while ``x`` stays within :data:`REUSE` of where
        it was measured (each measurement is 2 k evaluations; the steps'
        curvature need not be exact), else measured at ``x`` and kept."""
        x = np.asarray(x, dtype=float)
        if self.curvature is not None:
            at, H = self.curvature
            if np.all(np.abs(x - at) <= REUSE * np.maximum(np.abs(at), 0.1)):
                return H
        H = self.measure_hessian(x)
        self.curvature = (x.copy(), H)
        return H

    def measure_hessian(self, x):
        """Central differences of the exact gradient (symmetrized), the
        modes of each evaluation started from those at ``x``: 2 k
        evaluations."""
        base_C = self.C
        H = hessian(self, x)
        self.C = base_C
        return H


def _kernel(eta, m, n):
    """``m eta - n log(1 + exp(eta))``."""
    return m * eta - n * np.logaddexp(0.0, eta)


def _logsumexp(a):
    """``log sum exp`` over the last axis (finite entries)."""
    top = a.max(axis=-1)
    return np.log(np.exp(a - top[..., None]).sum(axis=-1)) + top


class _Chunk:
    """A chunk's rows (a0.. outer groups, j0..j1 inner, r0..r1 rows): their
    counts, local codes and the sparse matrices that sum rows into inner
    groups and inner groups into outer ones (``reduceat`` along the first
    axis of a 3-D array is several times slower)."""

    def __init__(self, d, a0, j0, j1, r0, r1):
        self.m, self.n = d.m[r0:r1, None], d.n[r0:r1, None]
        self.ri = d.row_inner[r0:r1] - j0
        self.row_outer = d.row_outer[r0:r1] - a0
        self.oj = d.inner_outer[j0:j1] - a0
        self.rows = sparse.csr_array(
            (np.ones(r1 - r0), (self.ri, np.arange(r1 - r0))), shape=(j1 - j0, r1 - r0)
        )
        A = int(self.oj[-1]) + 1
        self.inner = sparse.csr_array(
            (np.ones(j1 - j0), (self.oj, np.arange(j1 - j0))), shape=(A, j1 - j0)
        )

    def to_inner(self, values):
        """Each inner group's sum of rows' ``values`` (rows, ...)."""
        flat = values.reshape(len(values), -1)
        return (self.rows @ flat).reshape((self.rows.shape[0],) + values.shape[1:])

    def to_outer(self, values):
        """Each outer group's sum of its inner groups' ``values``."""
        flat = values.reshape(len(values), -1)
        return (self.inner @ flat).reshape((self.inner.shape[0],) + values.shape[1:])


# -- the fit ------------------------------------------------------------------------
#: n_quad="auto": the first rule (nodes per dimension) and the largest
AUTO_START, AUTO_TOP = 7, 101
#: the node check's targets, as for random slopes: log-likelihood (relative)
#: and estimates (relative, floor 0.01)
RTOL_LOGLIK, RTOL_PARAMS, FLOOR = 1e-8, 3e-7, 0.01


def lower_bounds(p):
    """``x``'s lower bounds: the two SDs >= 0."""
    return np.r_[np.full(p + 1, -np.inf), 0.0, 0.0]


def fit_nested(data, n_quad, x0, max_iter=500):
    """Maximise the rule's log-likelihood from ``x0 = (beta, b, s_a, s_b)``:
    the Laplace fit (L-BFGS-B, then Newton steps), then Newton steps on
    ``n_quad`` nodes from there. ``"auto"``: at the estimate the rule is
    compared with the next level of :data:`~skre._core.accuracy.LEVELS`, in
    the log-likelihood and in the estimates that level's gradient implies,
    and raised until they agree; the result then carries the larger rule's
    log-likelihood and modes at the estimate. Returns ``(result, check)``,
    check = (nodes, nodes compared, d loglik, largest move over its target)
    or None.
    """
    p = data.X.shape[1]
    lower = lower_bounds(p)
    lik = NestedLikelihood(data, 1)
    res = fit_slopes_with(lik, x0, lower, max_iter=max_iter)
    if n_quad == 1:
        return res, None
    auto = n_quad == "auto"
    K = settled_level(data, res.x, lik.u) if auto else int(n_quad)
    prev = lik
    lik = NestedLikelihood(data, K)
    lik.u = prev.u.copy()
    state, n_iter = None, res.n_iter
    while True:
        x, state, info, steps, converged = newton(lik, res.x, lower, state)
        n_iter += steps
        if not converged:  # far from the last estimate: L-BFGS-B first
            out = fit_slopes_with(lik, res.x, lower, max_iter=max_iter)
            x, converged, n_iter = out.x, out.converged, n_iter + out.n_iter
            state = lik.evaluate(x)
            info = -lik.hessian(x)
        f0, g0, logm, _ = state
        message = (
            f"Newton steps on {K} Gauss-Hermite nodes per dimension"
            if converged
            else f"Newton steps and L-BFGS-B on {K} nodes stopped short of a maximum"
        )
        res = result_of(lik, x, f0, g0, logm, info, lower, converged, n_iter, message)
        if not auto:
            return res, None
        larger = next(k for k in LEVELS if k > K)
        finer = NestedLikelihood(data, larger)
        finer.u, finer.curvature = lik.u.copy(), lik.curvature
        state = finer.evaluate(x)
        free = x > lower
        cov = np.zeros_like(info)
        cov[np.ix_(free, free)] = np.linalg.inv(info[np.ix_(free, free)])
        move = cov @ (state[1] - g0)
        allowed = RTOL_PARAMS * np.maximum(np.abs(x), FLOOR)
        d_loglik = state[0] - f0
        ok = abs(d_loglik) <= RTOL_LOGLIK * max(1.0, abs(f0)) and np.all(
            np.abs(move) <= allowed
        )
        check = (K, larger, d_loglik, float(np.max(np.abs(move) / allowed)))
        if ok or larger >= AUTO_TOP:
            # the estimate is the K-rule maximum, within the check of the
            # larger rule's; the log-likelihood (and the modes, everything
            # after the fit) on the larger rule, the more accurate of the two
            f1, g1, logm1, _ = state
            return result_of(
                finer, x, f1, g1, logm1, info, lower, converged, n_iter, message
            ), check
        # the next rule: the first whose value settles at this estimate
        K = settled_level(data, x, lik.u, start=larger)
        if K == larger:
            lik = finer
        else:
            lik, state = NestedLikelihood(data, K), None
            lik.u, lik.curvature = finer.u.copy(), finer.curvature


def settled_level(data, x, u, start=AUTO_START):
    """The first level from ``start`` whose value at ``x`` the next level's
    equals to :data:`RTOL_LOGLIK` (one evaluation per level, no gradients;
    :func:`~skre._core.accuracy.first_settled`): where the Newton steps of
    ``"auto"`` go on, the check at their estimate deciding the rest."""
    levels = [k for k in LEVELS if start <= k <= AUTO_TOP]

    def value_of(j):
        lik = NestedLikelihood(data, levels[j])
        lik.u = u.copy()
        return float(lik.group_loglik(x).sum())

    return levels[first_settled(len(levels), value_of)]
