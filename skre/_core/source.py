"""The rows of a multilevel fit in memory, as the fit asks for them.

:class:`InMemory` is everything :func:`~skre._core.multilevel.fit_multilevel`
asks of its data; a source of another kind (``skre._dask.fit.DaskSource``,
partitions on a cluster) offers the same methods, each one map-reduce over
its rows.
"""

import numpy as np

from .accuracy import compare_rules, level_index, select_nodes, start_levels
from .binomial import fast_expit
from .glm import fit_grouped_logistic
from .grouping import Collapsed, pooled_rows, row_offset
from .quadrature import quadrature_likelihood


class InMemory:
    """The rows of a multilevel fit in memory: everything :func:`fit_multilevel`
    asks of its data. A source of another kind (skre._dask.fit's, partitions on a
    cluster) offers the same methods, each one map-reduce over its rows.

    Parameters
    ----------
    data : Collapsed rows sorted by group (the likelihood units).
    group_weight : (G,) multiplicity of each group's term.
    """

    def __init__(self, data, group_weight):
        self.data = data
        self.group_weight = np.asarray(group_weight, dtype=float)

    @property
    def n_covariates(self):
        return self.data.Z.shape[1]

    @property
    def n_groups(self):
        """Groups counted with their multiplicity (the objective's scale)."""
        return float(self.group_weight.sum())

    @property
    def n_trials(self):
        """All trials, counted with their groups' multiplicity."""
        return float(self.group_weight @ self.data.group_sum(self.data.trials))

    def max_group_trials(self):
        """The most trials any group has."""
        return float(self.data.group_sum(self.data.trials).max())

    @property
    def n_rows(self):
        """Rows a likelihood pass evaluates (for the choice to stage the fit)."""
        return len(self.data.codes)

    def pooled(self, covariance=False, **options):
        """Complete-pooling GLM on the same rows (one shared intercept)."""
        return fit_grouped_logistic(
            pooled_rows(self.data, self.group_weight), covariance=covariance, **options
        )

    def start_pooled(self, coef_prior=None, max_rows=100_000):
        """A rough complete-pooling fit for the starting point: three Newton
        steps, on every k-th row when there are more than ``max_rows`` (with
        counts times k, so that a prior weighs the same). Only a start: the
        estimate and the boundary decision use the full fit."""
        data = pooled_rows(self.data, self.group_weight)
        step = -(-len(data.codes) // max_rows)
        if step > 1:
            data = Collapsed(
                data.codes[::step],
                data.Z[::step],
                data.successes[::step] * step,
                data.trials[::step] * step,
                1,
                data.starts,
                None if data.offset is None else data.offset[::step],
            )
        return fit_grouped_logistic(
            data, max_iter=3, tol=1e-3, covariance=False, coef_prior=coef_prior
        )

    def likelihood(self, n_quad):
        """The marginal likelihood with ``n_quad`` adaptive nodes per group
        (one count, or one per group)."""
        return quadrature_likelihood(self.data, self.group_weight, n_quad)

    def select_nodes(
        self,
        params,
        target,
        counts=None,
        top=None,
        warm=None,
        store=None,
        fitted=False,
        criterion=None,
    ):
        """Each group's node count at ``params`` (see
        :func:`~skre._core.accuracy.select_nodes`), walked up from ``counts``
        (each group's current rule) or, without, from
        :func:`~skre._core.accuracy.start_levels`."""
        data = self.data
        start = start_levels(data) if counts is None else level_index(counts)
        return select_nodes(
            data,
            self.group_weight,
            params,
            start,
            target,
            top,
            warm,
            store,
            fitted,
            criterion,
        )

    def compare_rules(self, params, n_quad, reference, warm=None):
        """``(d_loglik, d_score)``: the reference rule's log-likelihood and
        score in ``(beta, b, log tau)`` minus those of ``n_quad``."""
        return compare_rules(
            self.data, self.group_weight, params, n_quad, reference, warm
        )

    def tau2_score(self, beta, b):
        """Score and expected information for tau^2 at tau = 0."""
        data = self.data
        eta = b + data.Z @ beta if data.Z.shape[1] else np.full(len(data.codes), b)
        p = fast_expit(eta + row_offset(data))
        R = data.group_sum(data.successes - data.trials * p)
        W = data.group_sum(data.trials * p * (1.0 - p))
        self._pooled_sums = R, W  # for start_modes
        gw = self.group_weight
        return 0.5 * float(gw @ (R**2 - W)), 0.5 * float(gw @ W**2)

    def start_modes(self, tau):
        """First guesses of the conditional modes of u at ``tau``: one Newton
        step from 0 with the residual and weight sums of the latest
        :meth:`tau2_score` (at the complete-pooling start)."""
        R, W = self._pooled_sums
        return tau * R / (1.0 + tau * tau * W)

    def information(self, beta, b, tau, max_rows=100_000):
        """Approximate information of ``(beta, b, log tau)`` at a start.

        From the model linearised there (working weights ``w``, as in
        penalised quasi-likelihood): for the fixed effects
        ``X'WX - sum_g tau^2 / (1 + tau^2 W_g) (X_g'w)(w'X_g)``, for ``log tau``
        ``2 sum_g (tau^2 W_g / (1 + tau^2 W_g))^2``. A good first Hessian for
        BFGS; it saves measuring one by finite differences. Beyond
        ``max_rows`` rows ``X'WX`` comes from every k-th row (times k): only a
        start, and on 10^6 rows the product cost a third of a quadrature pass.
        """
        data, gw = self.data, self.group_weight
        p = fast_expit(b + data.Z @ beta + row_offset(data))
        w = data.trials * p * (1.0 - p)
        if np.any(gw != 1.0):
            w *= gw[data.codes]
        # per-group sums of w * (z, 1), without building the design with its 1 column
        WX = np.column_stack([data.weighted_group_sum(w, data.Z), data.group_sum(w)])
        W = WX[:, -1]
        shrink = tau**2 / (1.0 + tau**2 * W / gw)
        XWX = np.empty((len(beta) + 1,) * 2)
        # a start: the cross-product from every k-th row (times k) beyond
        # max_rows rows, relative error about sqrt(k / rows)
        every = -(-len(w) // max_rows)
        Zk, wk = data.Z[::every], w[::every] * every
        XWX[:-1, :-1] = Zk.T @ (wk[:, None] * Zk)
        XWX[:-1, -1] = XWX[-1, :-1] = w @ data.Z  # numpy's sums down rows are slow
        XWX[-1, -1] = w.sum()
        info = XWX - (WX * (shrink / gw)[:, None]).T @ WX
        k = len(beta) + 2
        H = np.zeros((k, k))
        H[:-1, :-1] = info
        H[-1, -1] = 2.0 * float(gw @ (tau**2 * (W / gw) / (1.0 + tau**2 * W / gw)) ** 2)
        return H
