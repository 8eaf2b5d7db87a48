"""Adaptive Gauss-Hermite marginal likelihood of a logistic random intercept.

For group g with rows i, covariate offsets ``o_i = b + z_i' beta`` and random
intercept ``xi_g = tau * u_g``, ``u_g ~ N(0, 1)``, the marginal likelihood is::

    L_g = integral exp(h_g(u)) du / sqrt(2 pi),
    h_g(u) = sum_i [m_i (o_i + tau u) - n_i log(1 + exp(o_i + tau u))] - u^2 / 2.

Adaptive quadrature centres the Gauss-Hermite rule at the conditional mode
``u_hat`` and scales it by ``s = (-h''(u_hat))^(-1/2)``; with one node it is the
Laplace approximation. This is the approximation lme4 uses for ``nAGQ``.
The gradient below is the exact derivative of that approximation (including
the movement of ``u_hat`` and ``s`` with the parameters), so an optimizer on it
converges to the same point as lme4 for every number of nodes.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import log_expit

from .binomial import kernel, residual_and_weight
from .grouping import group_rows, row_offset, subset_groups
from .kernel import InterceptPass, intercept_available
from .nodepass import AtMode, ModePass, NodePass, is_binary, row_logsumexp
from .roots import solve_decreasing
from .rules import adaptive_rule, logistic_normal_rule

LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


@dataclass
class Posterior:
    """Each group's conditional distribution of ``u`` on its quadrature nodes."""

    mode: np.ndarray  # (G,) conditional mode of u
    sd: np.ndarray  # (G,) Laplace scale s
    nodes: np.ndarray  # (G, K) u values
    log_weights: np.ndarray  # (G, K) normalised log posterior weights
    log_marginal: np.ndarray  # (G,) log L_g, kernel only


class MarginalLikelihood:
    """Kernel log marginal likelihood of grouped rows and its gradient.

    Parameters
    ----------
    data : Collapsed rows sorted by group.
    group_weight : (G,) multiplicity of each group's term (identical groups of
        an intercept-only model are merged into one with a count).
    n_quad : number of adaptive Gauss-Hermite nodes (1 = Laplace).

    The parameter vector is ``(beta, b, tau)``.
    """

    def __init__(self, data, group_weight, n_quad):
        self.data = data
        self.group_weight = np.asarray(group_weight, dtype=float)
        self.t, self.log_omega = adaptive_rule(n_quad)
        self.M = data.group_sum(data.successes)
        self.N = data.group_sum(data.trials)
        self._u = np.zeros(data.n_groups)
        self._pass = None  # the chunked row-node pass, built on first use
        self._modepass = None  # and the mode solve's
        self._cpass = None  # or the compiled ones (no covariates): _compiled
        # with want_outer, value_and_grad also leaves the sum of the outer
        # products of the groups' scores in ``outer`` (the BHHH information)
        self.want_outer, self.outer = False, None
        # with want_hessian (and no covariates), also the Hessian in (b, tau)
        # by Louis' identity in ``hessian``: see _louis
        self.want_hessian, self.hessian = False, None
        self._powers = None  # (K, 3): 1, t, t^2 at the rule's nodes
        self._last = None  # (params, _nodes output) of the latest gradient evaluation
        self._primed = None  # (params, _nodes output) computed ahead: see prime
        self._unit_weights = bool(np.all(self.group_weight == 1.0))
        self._du = self._du_at = None  # d(mode)/d(params) there, for warm starts
        self.n_eval = 0

    def _offset(self, beta, b):
        Z = self.data.Z
        eta = b + Z @ beta if Z.shape[1] else np.full(len(self.data.codes), b)
        return eta + row_offset(self.data)

    def _compiled(self):
        """The compiled mode solve and rule (:class:`~skre._core.kernel.
        InterceptPass`) for data without covariates, where the library was
        built; else None (numpy's passes, the same numbers)."""
        if self._cpass is None:
            self._cpass, data = False, self.data
            if data.Z.shape[1] == 0 and intercept_available():
                # one per data set: every rule's likelihood on it shares it
                cached = data.__dict__.get("_interpass")
                if cached is None:
                    cached = InterceptPass(data, is_binary(data))
                    data.__dict__["_interpass"] = cached
                self._cpass = cached
        return self._cpass or None

    def __getstate__(self):  # the compiled pass holds the library: not pickled
        state = dict(self.__dict__)
        state["_cpass"] = None
        return state

    def modes(self, offset, tau, params=None, grad=True):
        """Conditional modes of u, and the sums there (:class:`AtMode`).

        Warm-started from the previous modes, moved to first order by their
        derivatives in the parameters when the last evaluation had a gradient;
        the Newton steps run over the rows in chunks
        (:class:`~skre._core.nodepass.ModePass`), or in the compiled library
        (no covariates).
        """
        data = self.data
        compiled = self._compiled()
        if self._modepass is None and (compiled is None or tau == 0.0):
            self._modepass = ModePass(data)
        mp = self._modepass
        laplace = len(self.t) == 1  # only Laplace uses the kernel at the modes
        if tau == 0.0:
            u = np.zeros(data.n_groups)
            return u, mp.at_mode(offset, u, grad, grad and laplace, laplace)

        start = self._u
        if self._du is not None and params is not None:
            start = self._u + self._du @ (params - self._du_at)
        start = np.where(np.isfinite(start), start, 0.0)  # never carry a NaN over
        # the pass at the modes recomputes every sum there: the last Newton step
        # is taken without evaluating at its end (see solve_decreasing)
        if compiled is not None:
            u, W, R0, V, h0, _ = compiled.modes(
                offset, self.M, self.N, tau, start, 1e-12, 1e-7, 100
            )
        else:

            def fun(u):
                R, W = mp.sums(offset, tau * u)
                return tau * R - u, -(tau * tau) * W - 1.0

            u, _, _ = solve_decreasing(
                fun, start, tau * (self.M - self.N), tau * self.M, last_step=1e-7
            )
        if np.all(np.isfinite(u)):
            self._u = u
        if compiled is not None:
            return u, AtMode(W=W, R0=R0, V=V, h0=h0)
        return u, mp.at_mode(offset, tau * u, grad, grad and laplace, laplace)

    def _nodes(self, offset, tau, params=None, grad=False):
        """Modes, scales, nodes and each group's log marginal likelihood.

        With ``grad`` also the sums the gradient needs: at the modes
        (:class:`~skre._core.nodepass.AtMode`) and, with K > 1, each group's
        ``sum_i n_i p_ik`` at every node and, with covariates, each row's
        posterior mean of p (:class:`~skre._core.nodepass.NodePass`).
        """
        u, at = self.modes(offset, tau, params, grad)
        return (u,) + self._rule(offset, tau, u, at, grad) + (at,)

    def _rule(self, offset, tau, u, at, grad=False):
        """The rule at given modes ``u`` (with ``at.W``, and ``at.h0`` for
        Laplace): ``(s, nodes, sums, log_weights, log_marginal)``."""
        data = self.data
        compiled = self._compiled() if len(self.t) > 1 else None
        if compiled is not None:
            hess = grad and self.want_hessian
            s, nodes, logpi, logm, np_sum, w_sum, parts = compiled.rule(
                offset,
                tau,
                u,
                at,
                self.t,
                self.log_omega,
                LOG_SQRT_2PI,
                (2 if hess else 1) if grad else 0,
                self.M,
            )
            # (the gradient's parts are the fourth of the sums: _score_parts)
            return s, nodes, (np_sum, None, w_sum, parts), logpi, logm
        s = 1.0 / np.sqrt(tau * tau * at.W + 1.0)
        nodes = u[:, None] + s[:, None] * self.t[None, :]
        log_prior = self.log_omega - 0.5 * nodes**2
        sums = None
        if len(self.t) == 1:  # Laplace: the only node is the mode
            h = at.h0[:, None]
        else:
            if self._pass is None:
                self._pass = NodePass(data, len(self.t))
            covariates = data.Z.shape[1] > 0
            hess = grad and self.want_hessian and not covariates
            h, np_sum, p_mean, w_sum = self._pass(
                offset, tau * nodes, log_prior, grad, grad and covariates, hess
            )
            sums = (np_sum, p_mean, w_sum)
        a = log_prior + h
        A = row_logsumexp(a)
        log_marginal = np.log(s) + A - LOG_SQRT_2PI
        return s, nodes, sums, a - A[:, None], log_marginal

    def prime(self, store, groups=None):
        """Take the next :meth:`value_and_grad` at ``store["params"]`` from
        what :func:`node_counts` computed there (``store``), for ``groups``
        (all by default): the node choice already evaluated each group at its
        chosen rule with the gradient's sums, so the first quadrature step
        costs no pass over the rows."""
        K = len(self.t)
        if K not in store.get("levels", {}):
            return
        need, level, (s, nodes, sums, logpi, logm) = store["levels"][K]
        groups = np.arange(len(store["u"])) if groups is None else groups
        pos = np.searchsorted(need, groups)
        if len(groups) != self.data.n_groups or not np.array_equal(need[pos], groups):
            return
        if len(pos) == len(need):  # the same rows: the same node pass serves
            rows, self._pass = slice(None), level._pass
        else:
            rows = group_rows(level.data, pos)
        at = store["at"]
        pick = {
            name: getattr(at, name)[groups]
            for name in ("W", "R0", "V", "WZ", "VZ")
            if getattr(at, name) is not None
        }
        p_mean = None if sums[1] is None else sums[1][rows]
        out = (
            store["u"][groups],
            s[pos],
            nodes[pos],
            (sums[0][pos], p_mean, None),
            logpi[pos],
            logm[pos],
            AtMode(**pick),
        )
        self._u = out[0].copy()
        self._primed = (np.array(store["params"], dtype=float), out)

    def warm_start(self, other, groups=None):
        """Start the mode solves from ``other``'s latest modes (of ``groups``)
        and their derivatives: the modes do not depend on the rule, so a
        quadrature fit that follows a Laplace fit starts where it ended."""
        pick = slice(None) if groups is None else groups
        self._u = np.array(other._u[pick], dtype=float)
        if other._du is not None:
            self._du, self._du_at = other._du[pick], other._du_at

    def posterior(self, params):
        """Conditional distributions of every group at ``params``."""
        params = np.asarray(params, dtype=float)
        seen = self.__dict__.get("_posterior")
        if seen is not None and np.array_equal(seen[0], params):
            return seen[1]  # (the node check takes the fit's posterior first)
        if self._last is not None and np.array_equal(self._last[0], params):
            u, s, nodes, _, logpi, logm, _ = self._last[1]
        else:
            beta, b, tau = params[:-2], params[-2], params[-1]
            u, s, nodes, _, logpi, logm, _ = self._nodes(self._offset(beta, b), tau)
        post = Posterior(u, s, nodes, logpi, logm)
        self._posterior = (params.copy(), post)
        return post

    def values(self, param_rows, max_elements=4_000_000):
        """Log marginal likelihood (kernel) at many parameter vectors at once.

        ``param_rows`` is (k, p + 2); the modes of every group at every
        parameter vector are solved together and the nodes evaluated in
        chunks of about ``max_elements`` row-node-parameter values, so memory
        stays bounded. The same numbers as :meth:`value` one vector at a time,
        in a fraction of the time (the hyperparameter grids of
        ``method="bayes"``).
        """
        data = self.data
        param_rows = np.atleast_2d(np.asarray(param_rows, dtype=float))
        out = np.empty(len(param_rows))
        rows, q = len(data.codes), len(self.t)
        per = max(1, max_elements // max(1, rows * q))
        m, n = data.successes[:, None], data.trials[:, None]
        for s in range(0, len(param_rows), per):
            T = param_rows[s : s + per]
            beta, b, tau = T[:, :-2], T[:, -2], T[:, -1]
            offset = b[None, :] + (data.Z @ beta.T if data.Z.shape[1] else 0.0)
            if data.offset is not None:
                offset = offset + data.offset[:, None]
            offset = np.broadcast_to(offset, (rows, len(T)))

            def fun(u, offset=offset, tau=tau):
                eta = offset + tau * np.take(u, data.codes, axis=0)
                r, w, _ = residual_and_weight(eta, m, n)
                W = data.group_sum(w)
                return tau * data.group_sum(r) - u, -(tau * tau) * W - 1.0, eta, W

            start = np.broadcast_to(self._u[:, None], (data.n_groups, len(T)))
            u, (_, W), _ = solve_decreasing(
                fun, start, tau * (self.M - self.N)[:, None], tau * self.M[:, None]
            )
            sd = 1.0 / np.sqrt(tau * tau * W + 1.0)
            nodes = u[..., None] + sd[..., None] * self.t
            eta = offset[..., None] + tau[:, None] * np.take(nodes, data.codes, axis=0)
            h = data.group_sum(kernel(eta, m[..., None], n[..., None]))
            a = self.log_omega + h - 0.5 * nodes**2
            top = a.max(axis=-1)
            A = top + np.log(np.exp(a - top[..., None]).sum(axis=-1))
            out[s : s + per] = self.group_weight @ (np.log(sd) + A - LOG_SQRT_2PI)
        return out

    def value_at(self, params, posterior):
        """Log marginal likelihood (kernel) at ``params`` with the modes and
        scales of ``posterior`` (another rule's, at the same ``params``: they
        do not depend on the rule), without solving for the modes."""
        return float(self.group_weight @ self.group_values_at(params, posterior))

    def group_values_at(self, params, posterior):
        """Each group's log marginal likelihood as :meth:`value_at` takes it."""
        beta, b, tau = params[:-2], params[-2], params[-1]
        if tau == 0.0:  # every rule is exact: the integrand is normal
            return posterior.log_marginal
        W = (1.0 / posterior.sd**2 - 1.0) / (tau * tau)
        offset = self._offset(beta, b)
        return self._rule(offset, tau, posterior.mode, AtMode(W=W))[-1]

    def value(self, params):
        beta, b, tau = params[:-2], params[-2], params[-1]
        self.n_eval += 1
        logm = self._nodes(self._offset(beta, b), tau)[5]
        return float(self.group_weight @ logm)

    def value_and_grad(self, params):
        """Log marginal likelihood (kernel) and its exact gradient in params."""
        self.n_eval += 1
        out, self._primed = self._primed, None
        if out is not None and np.array_equal(out[0], params):
            out = out[1]
        else:
            beta, b = params[:-2], params[-2]
            out = self._nodes(self._offset(beta, b), params[-1], params, grad=True)
        self._last = (np.array(params, dtype=float), out)
        parts = self._score_parts(params, out)
        g_b, g_t, per_group, r_tilde = parts
        gw = self.group_weight
        grad = np.empty(len(params))
        grad[-2] = gw @ g_b
        grad[-1] = gw @ g_t
        if per_group is not None:
            Z = self.data.Z
            if self._unit_weights:
                grad[:-2] = gw @ per_group + Z.T @ r_tilde
            else:
                grad[:-2] = gw @ per_group + Z.T @ (gw[self.data.codes] * r_tilde)
        self.hessian = None
        u, s, _, sums, _, logm, _ = out
        if self.want_hessian and sums is not None and sums[2] is not None:
            if len(sums) > 3:  # compiled: each group's terms of _louis
                H = np.empty((2, 2))
                H[0, 0], H[0, 1], H[1, 1] = sums[3][4:] @ self.group_weight
                H[1, 0] = H[0, 1]
                self.hessian = H
            else:
                self.hessian = self._louis(u, s, *self._louis_terms)
        if self.want_outer:
            scores = self._stack_scores(parts)
            self.outer = scores.T @ (gw[:, None] * scores)
        return float(gw @ logm), grad

    def evaluated_at(self, params):
        """What the latest gradient evaluation left, when it was at
        ``params``: ``(counts, u, at, L, scores)``, each group's node count,
        mode, sums there, log marginal likelihood and score in ``(beta, b,
        log tau)``; else None."""
        if self._last is None or not np.array_equal(self._last[0], params):
            return None
        out = self._last[1]
        L, scores = self.group_scores(params, out)
        scores[:, -1] *= params[-1]
        return np.full(len(L), len(self.t)), out[0], out[-1], L, scores

    def group_scores(self, params, out):
        """Each group's log marginal likelihood and its gradient in
        ``(beta, b, tau)``, unweighted, from an evaluation ``out`` of
        :meth:`_nodes` with the gradient's sums (``(G,)``, ``(G, p + 2)``)."""
        return out[5], self._stack_scores(self._score_parts(params, out))

    def _stack_scores(self, parts):
        g_b, g_t, per_group, r_tilde = parts
        scores = np.empty(
            (len(g_b), 2 if per_group is None else per_group.shape[1] + 2)
        )
        scores[:, -2], scores[:, -1] = g_b, g_t
        if per_group is not None:
            scores[:, :-2] = per_group + self.data.weighted_group_sum(
                r_tilde, self.data.Z
            )
        return scores

    def _score_parts(self, params, out):
        """The gradient's per-group pieces at an evaluation ``out``: the
        scores for ``b`` and ``tau``, and with covariates the movement of the
        modes and scales with ``beta`` per group and each row's residual
        averaged over its group's nodes (whose sums with the covariates give
        the rest of the ``beta`` scores). Keeps the modes' derivatives for
        the next mode solve's warm start."""
        data = self.data
        beta, tau = params[:-2], params[-1]
        u, s, nodes, sums, logpi, logm, at = out
        if sums is not None and len(sums) > 3:  # computed with the rule
            parts = sums[3]
            self._keep_mode_derivatives(params, parts[2], parts[3])
            return parts[0], parts[1], None, None
        W, R0, V = at.W, at.R0, at.V
        pi = np.exp(logpi)
        # at the nodes: each group's residual sum and h'(u)
        if len(self.t) == 1:
            Rk = R0[:, None]
        else:
            Rk = self.M[:, None] - sums[0]
        # posterior means over the nodes (u_k = u + s t_k, h'(u_k) = tau R_k - u_k)
        # as matrix-vector products: sums along short rows are slow in numpy
        t = self.t
        piR = pi * Rk
        E_R, E_Rt = piR @ np.ones(len(t)), piR @ t
        E_t, E_t2 = pi @ t, pi @ (t * t)
        E_uR = u * E_R + s * E_Rt
        E_hp = tau * E_R - (u + s * E_t)
        E_hpt = tau * E_Rt - (u * E_t + s * E_t2)
        if sums is not None and sums[2] is not None:
            self._louis_terms = (pi, Rk, sums[2], E_R, E_uR)
        # at the mode: movement of u_hat and of s with the parameters
        s2 = s * s
        h3 = -(tau**3) * V
        du_b = -tau * W * s2
        du_t = (R0 - tau * u * W) * s2
        dlogs_b = 0.5 * s2 * (-(tau**2) * V + h3 * du_b)
        dlogs_t = 0.5 * s2 * (-2.0 * tau * W - tau**2 * u * V + h3 * du_t)
        g_b = dlogs_b + E_R + E_hp * du_b + E_hpt * s * dlogs_b
        g_t = dlogs_t + E_uR + E_hp * du_t + E_hpt * s * dlogs_t
        self._keep_mode_derivatives(params, du_b, du_t)
        if not len(beta):
            return g_b, g_t, None, None
        WZ, VZ = at.WZ, at.VZ
        du_z = -tau * WZ * s2[:, None]
        self._du[:, :-2] = du_z
        dlogs_z = 0.5 * s2[:, None] * (-(tau**2) * VZ + h3[:, None] * du_z)
        per_group = dlogs_z + E_hp[:, None] * du_z + (E_hpt * s)[:, None] * dlogs_z
        # each row's residual averaged over its group's nodes
        r_tilde = at.r0 if len(self.t) == 1 else data.successes - data.trials * sums[1]
        return g_b, g_t, per_group, r_tilde

    def _keep_mode_derivatives(self, params, du_b, du_t):
        """The modes' derivatives in ``(b, tau)`` at ``params`` (those in
        ``beta`` left 0 for the caller), for the next mode solve's start."""
        self._du = np.zeros((len(du_b), len(params)))
        self._du[:, -2], self._du[:, -1] = du_b, du_t
        self._du_at = np.array(params, dtype=float)

    def _louis(self, u, s, pi, R, W, E_R, E_uR):
        """Hessian of the log marginal likelihood in ``(b, tau)`` (no
        covariates), by Louis' identity on the nodes.

        For each group, the posterior mean of the kernel's second derivatives
        plus the posterior covariance of its first: with ``R_k``, ``W_k`` the
        residual and weight sums at node ``u_k``, ``dh/db = R``, ``dh/dtau =
        u R``, ``d2h/db2 = -W``, ``d2h/db dtau = -u W``, ``d2h/dtau2 = -u^2 W``.
        It is the Hessian of the exact marginal likelihood computed with the
        rule's nodes, which differs from the Hessian of the rule's
        approximation (whose gradient :meth:`value_and_grad` returns) by the
        rule's error (1e-10 relative on the rats at 25 nodes): Newton steps on
        it still converge to the rule's optimum, as fast as on the exact
        Hessian while that error is small.
        """
        if self._powers is None:
            t = self.t
            self._powers = np.column_stack([np.ones(len(t)), t, t * t])
        # each group's E[t^j (R^2 - W)], j = 0, 1, 2, then E[u^j (R^2 - W)]
        D = (pi * (R * R - W)) @ self._powers
        D0 = D[:, 0]
        D1 = u * D0 + s * D[:, 1]
        D2 = u * u * D0 + s * (2.0 * u * D[:, 1] + s * D[:, 2])
        gw = self.group_weight
        H = np.empty((2, 2))
        H[0, 0] = gw @ (D0 - E_R * E_R)
        H[0, 1] = H[1, 0] = gw @ (D1 - E_R * E_uR)
        H[1, 1] = gw @ (D2 - E_uR * E_uR)
        return H


class MixedLikelihood:
    """Adaptive quadrature with each group's own number of nodes.

    Groups are split by their node count; each part is a
    :class:`MarginalLikelihood` on its rows, and values, gradients and
    posteriors are their sums and concatenations (posteriors padded to the
    largest count with zero-weight nodes). The same interface as
    :class:`MarginalLikelihood`.
    """

    def __init__(self, data, group_weight, counts):
        self.data = data
        self.group_weight = np.asarray(group_weight, dtype=float)
        self.counts = np.asarray(counts, dtype=np.intp)
        self.M = data.group_sum(data.successes)
        self.N = data.group_sum(data.trials)
        self.parts = []
        for k in np.unique(self.counts):
            groups = np.flatnonzero(self.counts == k)
            rows = data if len(groups) == data.n_groups else subset_groups(data, groups)
            self.parts.append(
                (groups, MarginalLikelihood(rows, self.group_weight[groups], int(k)))
            )
        self.width = int(self.counts.max())
        self.t = adaptive_rule(self.width)[0]  # for callers asking the node count

    @property
    def n_eval(self):
        return max(model.n_eval for _, model in self.parts)

    @property
    def _u(self):
        """Every group's latest conditional mode (for warm starts)."""
        u = np.empty(self.data.n_groups)
        for groups, model in self.parts:
            u[groups] = model._u
        return u

    @property
    def _du(self):
        """Their derivatives in the parameters, where every part has them."""
        if any(model._du is None for _, model in self.parts):
            return None
        du = np.empty((self.data.n_groups, self.parts[0][1]._du.shape[1]))
        for groups, model in self.parts:
            du[groups] = model._du
        return du

    @property
    def _du_at(self):
        return self.parts[0][1]._du_at

    @property
    def _last(self):
        return None  # (no single evaluation to take the modes from)

    def evaluated_at(self, params):
        """:meth:`MarginalLikelihood.evaluated_at` of every part, in group
        order (None unless every part was last evaluated at ``params``)."""
        pieces = [model.evaluated_at(params) for _, model in self.parts]
        if any(piece is None for piece in pieces):
            return None
        G, k = self.data.n_groups, len(params)
        u, L, scores = np.empty(G), np.empty(G), np.empty((G, k))
        sums = {}
        for (groups, _), (_, u_p, at_p, L_p, s_p) in zip(self.parts, pieces):
            u[groups], L[groups], scores[groups] = u_p, L_p, s_p
            for name in ("W", "R0", "V", "WZ", "VZ"):
                value = getattr(at_p, name)
                if value is not None:
                    if name not in sums:
                        sums[name] = np.empty((G,) + value.shape[1:])
                    sums[name][groups] = value
        return self.counts, u, AtMode(**sums), L, scores

    def warm_start(self, other):
        """Each part starts its mode solves from ``other``'s modes of its groups
        (see :meth:`MarginalLikelihood.warm_start`)."""
        for groups, model in self.parts:
            model.warm_start(other, groups)

    def prime(self, store):
        """:meth:`MarginalLikelihood.prime` for every part."""
        for groups, model in self.parts:
            model.prime(store, groups)

    def _offset(self, beta, b):
        Z = self.data.Z
        eta = b + Z @ beta if Z.shape[1] else np.full(len(self.data.codes), b)
        return eta + row_offset(self.data)

    def value(self, params):
        return float(sum(model.value(params) for _, model in self.parts))

    def values(self, param_rows, max_elements=4_000_000):
        return sum(model.values(param_rows, max_elements) for _, model in self.parts)

    @property
    def want_outer(self):
        return self.parts[0][1].want_outer

    @want_outer.setter
    def want_outer(self, value):
        for _, model in self.parts:
            model.want_outer = value

    @property
    def outer(self):
        if any(model.outer is None for _, model in self.parts):
            return None
        return sum(model.outer for _, model in self.parts)

    def value_and_grad(self, params):
        total, grad = 0.0, np.zeros(len(params))
        for _, model in self.parts:
            f, g = model.value_and_grad(params)
            total += f
            grad += g
        return total, grad

    def posterior(self, params):
        G, K = self.data.n_groups, self.width
        mode, sd, log_marginal = np.empty(G), np.empty(G), np.empty(G)
        nodes = np.zeros((G, K))
        log_weights = np.full((G, K), -np.inf)
        for groups, model in self.parts:
            post = model.posterior(params)
            k = post.nodes.shape[1]
            mode[groups], sd[groups] = post.mode, post.sd
            log_marginal[groups] = post.log_marginal
            nodes[groups, :k] = post.nodes
            log_weights[groups, :k] = post.log_weights
        return Posterior(mode, sd, nodes, log_weights, log_marginal)


def quadrature_likelihood(data, group_weight, n_nodes):
    """:class:`MarginalLikelihood` for a fixed node count, :class:`MixedLikelihood`
    for one count per group."""
    if np.ndim(n_nodes) == 0:
        return MarginalLikelihood(data, group_weight, int(n_nodes))
    counts = np.asarray(n_nodes)
    if np.all(counts == counts[0]):
        return MarginalLikelihood(data, group_weight, int(counts[0]))
    return MixedLikelihood(data, group_weight, counts)


def marginal_mean(loc, scale):
    """``E[expit(loc + scale * Z)]``, Z standard normal (see
    :func:`~skre._core.rules.logistic_normal_rule`), in chunks of ``loc``."""
    return np.exp(log_mean_expit(loc, scale))


def log_mean_expit(eta, scale, sign=1.0, max_elements=2**21):
    """``log E[expit(sign * (eta + scale Z))]``, Z ~ N(0, 1), in log space,
    by :func:`~skre._core.rules.logistic_normal_rule`, in chunks of
    ``max_elements`` values."""
    z, log_w = logistic_normal_rule(scale)
    eta = np.asarray(eta, dtype=float)
    flat = eta.reshape(-1)
    out = np.empty(len(flat))
    per = max(1, max_elements // len(z))
    for i in range(0, len(flat), per):
        a = log_w + log_expit(sign * (flat[i : i + per, None] + scale * z))
        top = a.max(axis=1)
        with np.errstate(invalid="ignore"):  # a row of -inf: log 0
            total = np.exp(a - top[:, None]).sum(axis=1)
        out[i : i + per] = np.where(np.isfinite(top), top + np.log(total), top)
    return out.reshape(eta.shape)
