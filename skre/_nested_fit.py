"""Nested random intercepts: the fit of ``MultilevelBinomial(group=[outer,
inner])``, lme4's ``(1 | outer/inner)``.

The groups of the :class:`~skre._design.Design` are the ``(outer, inner)``
label pairs (an inner label means a group only within its outer group, as
lme4's ``outer/inner`` = ``outer + outer:inner``); the core
(:mod:`skre._core.nested`) sees the rows ordered by outer group.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, log_expit, logsumexp

from ._core.grouping import collapse_offset
from ._core.multilevel import InMemory, fit_multilevel
from ._core.nested import NestedData, NestedLikelihood, fit_nested, lower_bounds
from ._core.population import LogitNormal
from ._core.rules import normal_rule
from ._fit_result import FitResult
from ._intervals import table, vcov_frame, wald_rows
from ._labels import factorize
from ._multilevel_fit import likelihood_units
from ._nested_profile import profile_intervals
from ._slopes_fit import new_group_log_proba

#: the methods a nested fit does not have yet
UNSUPPORTED_NESTED = (
    "exceedance",
    "flag_groups",
    "historical_control_test",
    "predictive_counts",
    "ranks",
    "test_tau",
)


def outer_codes_of(pairs):
    """Each ``(outer, inner)`` pair's outer code and the outer labels."""
    outer = np.empty(len(pairs), dtype=object)
    outer[:] = [p[0] for p in pairs]
    return factorize(outer)


def _rows_of(starts, groups):
    """The rows of ``groups`` (in that order), ``starts`` each group's first
    row and the total at the end."""
    lengths = np.diff(starts)[groups]
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    return np.arange(total) - np.repeat(ends - lengths - starts[groups], lengths)


def nested_data(data, outer_codes):
    """The core's rows: ``data``'s (collapsed, coded by pair) reordered so
    that each outer group's inner groups are adjacent (outer code order)."""
    order = np.argsort(outer_codes, kind="stable")
    starts = np.r_[data.starts, len(data.codes)]
    rows = _rows_of(starts, order)
    ends = np.cumsum(np.diff(starts)[order])
    oc = outer_codes[order]
    outer_starts = np.flatnonzero(np.r_[True, oc[1:] != oc[:-1]])
    offset = data.offset[rows] if data.offset is not None else None
    nd = NestedData(
        data.Z[rows],
        data.successes[rows],
        data.trials[rows],
        np.r_[0, ends[:-1]],
        outer_starts,
        offset,
    )
    return nd, order


def fit_nested_groups(design, n_quad, max_iter):
    """``(NestedFit fields)``: the fit on ``n_quad`` nodes per dimension from
    the random intercept's Laplace fit on the inner groups."""
    outer_codes, outer_groups = outer_codes_of(design.groups)
    nd, order = nested_data(design.data, outer_codes)
    units, weight, _ = likelihood_units(design.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a start: its accuracy is not the question)
        start = fit_multilevel(InMemory(units, weight), 1)
    tau = max(float(start.tau), 0.1)
    x0 = np.r_[np.asarray(start.beta, dtype=float), float(start.b), tau / 2, tau]
    res, check = fit_nested(nd, n_quad, x0, max_iter)
    return res, check, outer_codes, outer_groups, order


@dataclass(frozen=True, eq=False)
class NestedFit(FitResult):
    """A fit with nested random intercepts (outer and inner groups)."""

    x: np.ndarray  # (beta_std, b, s_outer, s_inner)
    n_quad: int
    modes: np.ndarray  # core order: z of each outer group, w of each inner group
    curvature: np.ndarray  # core order: S (outer), H_jj, H_zj (inner)
    outer_codes: np.ndarray  # each group's (pair's) outer code
    outer_groups: np.ndarray  # the outer labels
    order: np.ndarray  # the core's order of the groups (pairs)
    names: tuple  # (outer column, inner column) names
    group_loglik: np.ndarray  # each outer group's log-likelihood
    check: object = None

    @property
    def p(self):
        return len(self.design.covariates)

    @property
    def n_params(self):
        return self.p - int(self.design.aliased.sum()) + 3

    @property
    def beta(self):
        return self.x[: self.p]

    @property
    def b(self):
        return float(self.x[self.p])

    @property
    def sds(self):
        """(outer SD, inner SD)."""
        return float(self.x[self.p + 1]), float(self.x[self.p + 2])

    def data(self):
        return nested_data(self.design.data, self.outer_codes)[0]

    def likelihood(self):
        """The fit's rule on its own data, its modes warm-started."""
        lik = NestedLikelihood(self.data(), self.n_quad)
        lik.u = self.modes.copy()
        return lik

    # -- attributes ---------------------------------------------------------------
    def _effects(self):
        """Each group's (pair's) conditional modes and SDs of its outer and
        inner effects (G, 2), in the design's order of groups."""
        A = len(self.outer_groups)
        G = len(self.order)
        sa, sb = self.sds
        z, w = self.modes[:A], self.modes[A:]
        S, Hjj, Hzj = (
            self.curvature[:A],
            self.curvature[A : A + G],
            self.curvature[A + G :],
        )
        oc = self.outer_codes[self.order]
        modes, sd = np.empty((G, 2)), np.empty((G, 2))
        modes[self.order, 0], modes[self.order, 1] = sa * z[oc], sb * w
        sd[self.order, 0] = sa / np.sqrt(S[oc])
        sd[self.order, 1] = sb * np.sqrt(1 / Hjj + (Hzj / Hjj) ** 2 / S[oc])
        return modes, sd

    def attributes(self):
        intercept, coef = self.design.unscale(self.b, self.beta)
        sa, sb = self.sds
        modes, sd = self._effects()
        return {
            **self.common_attributes(intercept, coef),
            "tau_": sb,
            "tau_outer_": sa,
            "outer_groups_": self.outer_groups,
            "random_effects_": modes,
            "random_effects_sd_": sd,
            "population_": self.population(),
            "boundary_": bool(sa == 0.0 or sb == 0.0),
        }

    def boundary_text(self):
        """What a boundary fit (an SD at 0) means, or "" for none."""
        sa, sb = self.sds
        outer, inner = map(str, self.names)
        if sa == 0.0 and sb == 0.0:
            return (
                "both SDs are 0 (a boundary fit, lme4's isSingular): neither "
                f"the {outer} nor the {inner} groups vary beyond binomial noise; "
                "the fit equals complete pooling."
            )
        if sa == 0.0:
            return (
                f"the outer groups' SD (tau_outer_, {outer}) is 0 (a boundary fit, "
                "lme4's isSingular): they do not vary beyond what the inner groups "
                f"explain; the fit equals the one-level model of the ({outer}, "
                f"{inner}) pairs, lme4's (1 | {outer}:{inner})."
            )
        if sb == 0.0:
            return (
                f"the inner groups' SD (tau_, {inner}) is 0 (a boundary fit, "
                "lme4's isSingular): they do not vary beyond what the outer groups "
                f"explain; the fit equals the one-level model of group={outer!r}."
            )
        return ""

    def population(self):
        """A new outer group's theta at the mean covariates (and offset)."""
        sa, sb = self.sds
        return LogitNormal(self.b + self.design.offset_mean, float(np.hypot(sa, sb)))

    def prediction_interval(self, level, include_parameter_uncertainty=False):
        if include_parameter_uncertainty:
            raise NotImplementedError(
                "prediction_interval(include_parameter_uncertainty=True) is not "
                "available for nested groups yet; the plug-in interval (False) is."
            )
        return tuple(float(v) for v in self.population().interval(level))

    def variance_components(self):
        """lme4's ``as.data.frame(VarCorr(fit))`` of ``(1 | outer/inner)``:
        the inner groups (``inner:outer``) first, then the outer groups."""
        outer, inner = map(str, self.names)
        sa, sb = self.sds
        return pd.DataFrame(
            {
                "grp": [f"{inner}:{outer}", outer],
                "var1": ["(Intercept)"] * 2,
                "var2": pd.Series([None, None], dtype=object),
                "vcov": [sb**2, sa**2],
                "sdcor": [sb, sa],
            }
        )

    # -- inference --------------------------------------------------------------------
    def information(self):
        """The observed information of ``x`` (measured on the fit's rule);
        cached, not pickled."""
        info = self.__dict__.get("_information")
        if info is None:
            info = -self.likelihood().measure_hessian(self.x)
            self.__dict__["_information"] = info
        return info

    _transient = ("_information",)

    def covariance_of_x(self):
        free = self.x > lower_bounds(self.p)
        free[: self.p] &= ~self.design.aliased
        cov = np.zeros((len(self.x), len(self.x)))
        cov[np.ix_(free, free)] = np.linalg.inv(self.information()[np.ix_(free, free)])
        return cov

    def fixed_map(self):
        C = np.zeros((self.p + 1, len(self.x)))
        C[:, : self.p + 1] = self.design.user_map(intercept_first=False)
        return C

    def vcov(self):
        C = self.fixed_map()
        return vcov_frame(self.design, C @ self.covariance_of_x() @ C.T)

    def random_rows(self):
        return ["tau", "tau_outer"]

    def confint(self, level, method, verbose=0):
        """Wald rows: the fixed effects, and the SDs on the log scale (NaN
        at an SD of 0); ``method="profile"``: profile-likelihood rows for
        all of them (:mod:`skre._nested_profile`)."""
        if method == "profile":
            fixed, sds = profile_intervals(self, level)
            return self._with_sds(table(self.design, fixed, level), sds, level)
        cov = self.covariance_of_x()
        intercept, coef = self.design.unscale(self.b, self.beta)
        rows, _ = wald_rows(self.fixed_map(), cov, np.r_[intercept, coef], level)
        frame = table(self.design, rows, level)
        z = stats.norm.ppf(0.5 + level / 2)
        out = []
        for k in (self.p + 2, self.p + 1):  # inner (tau), outer
            s = self.x[k]
            if s <= 0:
                out.append((np.nan, np.nan))
                continue
            se = np.sqrt(cov[k, k]) / s  # of log s
            out.append((s * np.exp(-z * se), s * np.exp(z * se)))
        return self._with_sds(frame, out, level)

    def _with_sds(self, frame, sds, level):
        """``frame`` with the SDs' rows (``(lower, upper)`` of tau, tau_outer)."""
        a = 100 * (1 - level) / 2
        extra = pd.DataFrame(
            np.array(sds),
            index=self.random_rows(),
            columns=[f"{a:g}%", f"{100 - a:g}%"],
        )
        return pd.concat([frame, extra])

    def random_values(self):
        """The values of :meth:`random_rows` (the bootstrap reads them)."""
        sa, sb = self.sds
        return [sb, sa]

    # -- simulation and residuals ---------------------------------------------------
    def point_logit(self, codes, Z, **options):
        raise NotImplementedError(
            "a nested fit has no point logit: every row's logit is a "
            "distribution (population_normals, logit_rule)."
        )

    def _outer_of(self, codes):
        """Each row's outer code from its :meth:`codes_for` code (a seen
        pair's outer group, ``o`` for ``-2 - o``, -1 for a new outer group)."""
        return np.where(codes >= 0, self.outer_codes[np.maximum(codes, 0)], -2 - codes)

    def population_normals(self, Z):
        """Each row's logit over the population, a new outer group's:
        ``N(b + x'beta, tau_outer^2 + tau^2)`` (for quantile residuals)."""
        eta0 = self.design.linear_predictor(Z, self.b, self.beta)
        return [(1.0, eta0, np.full(len(Z), float(np.hypot(*self.sds))))]

    def logit_rule(self, codes, Z, **options):
        """Rows of seen outer groups (for conditional quantile residuals):
        the logit at each node and the node's posterior log-weight; a seen
        pair's (outer, inner) nodes, or for a new inner group of a seen
        outer group (code ``-2 - o``) the outer effect's posterior nodes
        times 25 Gauss-Hermite nodes of N(0, tau^2); padded to one width
        with weights of 0."""
        outer = self._outer_of(codes)
        outers = np.unique(outer)
        rules = self._node_rules(outers)
        eta0 = self.design.linear_predictor(Z, self.b, self.beta)
        seen = codes >= 0
        z, lz = rules[0], rules[1]
        t, w = normal_rule(25)
        sa, sb = self.sds
        parts = []
        if seen.any():
            pair = self._pair_nodes(eta0[seen], codes[seen], outers, rules)
            parts.append((seen, *pair))
        if not seen.all():
            a = np.searchsorted(outers, outer[~seen])
            n = int((~seen).sum())
            eta_f = eta0[~seen, None, None] + sa * z[a][:, :, None] + sb * t
            lw_f = lz[a][:, :, None] + np.log(w)
            parts.append((~seen, eta_f.reshape(n, -1), lw_f.reshape(n, -1)))
        width = max(part[1].shape[1] for part in parts)
        eta = np.zeros((len(codes), width))
        log_w = np.full((len(codes), width), -np.inf)
        for rows, e, lw in parts:
            eta[rows, : e.shape[1]], log_w[rows, : e.shape[1]] = e, lw
        return eta, log_w

    def _pair_nodes(self, eta0, codes, outers, rules):
        """``(eta, log_w)``, (n, nodes): rows of seen pairs ``codes`` on
        their pairs' rules (``rules`` from :meth:`_node_rules` of ``outers``)."""
        z, _, w, lzw, where = rules
        sa, sb = self.sds
        a = np.searchsorted(outers, self.outer_codes[codes])
        j = where[codes]
        n = len(codes)
        eta = eta0[:, None, None] + sa * z[a, :, None] + sb * w[j]
        return eta.reshape(n, -1), lzw[j].reshape(n, -1)

    def draw_logits(
        self, keys, codes, Z, rng, n_sims, new_groups=False, labels=None, **options
    ):
        """Draws of every row's logit, (n_sims, n_rows): each outer group's
        effect once per simulation from N(0, tau_outer^2), each (outer,
        inner) pair's from N(0, tau^2). ``codes`` as :meth:`codes_for`
        gives them; ``labels`` the rows' pairs (needed for rows of new outer
        groups, code -1). Drawing from a seen group's conditional
        distribution (``new_groups=False``) is not available yet."""
        sa, sb = self.sds
        if not new_groups and np.any(codes != -1) and (sa > 0 or sb > 0):
            raise NotImplementedError(
                "simulate(new_groups=False) draws seen groups' effects from their "
                "conditional distributions, which nested fits cannot do yet; "
                "simulate(new_groups=True) draws every group from the population "
                "(and confint(method='bootstrap') does so)."
            )
        A = len(self.outer_groups)
        outer = self._outer_of(codes)
        fresh = np.flatnonzero(codes == -1)
        if len(fresh):
            first = np.empty(len(fresh), dtype=object)
            first[:] = [labels[i][0] for i in fresh]
            outer[fresh] = A + factorize(first)[0]
        n_outer = int(outer.max()) + 1 if len(outer) else 0
        n_keys = int(keys.max()) + 1 if len(keys) else 0
        effects = sa * rng.standard_normal((n_sims, n_outer))
        inner = sb * rng.standard_normal((n_sims, n_keys))
        eta0 = self.design.linear_predictor(Z, self.b, self.beta)
        return eta0[None, :] + effects[:, outer] + inner[:, keys]

    # -- predictions --------------------------------------------------------------
    def codes_for(self, labels, name, column=None):
        """Codes of ``(outer, inner)`` labels: a seen pair's code; ``-2 -
        o`` for a new inner group of the seen outer group ``o``; -1 for a
        new outer group."""
        codes = self.design.codes_for(labels, name, column)
        new = np.flatnonzero(codes < 0)
        if len(new):
            outer = pd.Index(self.outer_groups).get_indexer([labels[i][0] for i in new])
            codes[new] = np.where(outer >= 0, -2 - outer, -1)
        return codes

    def _node_rules(self, outers):
        """The rule's posterior nodes of ``outers`` (outer codes): the
        core's :meth:`~skre._core.nested.NestedLikelihood.posterior` on
        those outer groups alone, and each pair's position in it."""
        pairs = np.flatnonzero(np.isin(self.outer_codes, outers))
        design = self.design
        data = design.data
        starts = np.r_[data.starts, len(data.codes)]
        rows = _rows_of(starts, pairs)
        sub_codes = np.repeat(np.arange(len(pairs)), np.diff(starts)[pairs])
        sub = collapse_offset(
            sub_codes,
            data.Z[rows],
            data.successes[rows],
            data.trials[rows],
            len(pairs),
            data.offset[rows] if data.offset is not None else None,
        )
        oc = np.searchsorted(outers, self.outer_codes[pairs])
        nd, order = nested_data(sub, oc)
        lik = NestedLikelihood(nd, self.n_quad)
        z, lz, w, lzw = lik.posterior(self.x)
        where = np.full(len(self.order), -1)
        where[pairs[order]] = np.arange(len(pairs))
        return z, lz, w, lzw, where

    def log_proba(self, codes, Z):
        eta0 = self.design.linear_predictor(Z, self.b, self.beta)
        sa, sb = self.sds
        lp0, lp1 = np.empty(len(Z)), np.empty(len(Z))
        outer = self._outer_of(codes)
        known = outer >= 0
        if known.any():
            outers = np.unique(outer[known])
            z, lz, w, lzw, where = self._node_rules(outers)
            a = np.searchsorted(outers, outer)
            seen = codes >= 0
            if seen.any():
                eta, lpi = self._pair_nodes(
                    eta0[seen], codes[seen], outers, (z, lz, w, lzw, where)
                )
                lp1[seen] = logsumexp(lpi + log_expit(eta), axis=1)
                lp0[seen] = logsumexp(lpi + log_expit(-eta), axis=1)
            fresh = known & ~seen
            if fresh.any():  # z from its outer group's posterior, w ~ N(0, 1)
                n, K = int(fresh.sum()), z.shape[1]
                eta = (eta0[fresh, None] + sa * z[a[fresh]]).ravel()
                q0, q1 = new_group_log_proba(
                    eta, np.ones((n * K, 1)), np.array([[sb * sb]])
                )
                lpi = lz[a[fresh]]
                lp0[fresh] = logsumexp(lpi + q0.reshape(n, K), axis=1)
                lp1[fresh] = logsumexp(lpi + q1.reshape(n, K), axis=1)
        new = ~known
        if new.any():
            lp0[new], lp1[new] = new_group_log_proba(
                eta0[new], np.ones((int(new.sum()), 1)), np.array([[sa * sa + sb * sb]])
            )
        return lp0, lp1

    def heldout_loglik(self, rows, codes):
        """Group-joint at the outer level: for each outer group of the test
        rows, log L(its training and test rows) - log L(its training rows)
        (0 training rows for a new outer group)."""
        design = self.design
        train = design.data
        keep = rows.trials > 0
        labels = rows.labels[keep]
        test_outer = pd.Index(self.outer_groups).get_indexer([p[0] for p in labels])
        seen = np.unique(test_outer[test_outer >= 0])
        in_train = np.isin(self.outer_codes[train.codes], seen)
        pairs = np.concatenate([design.groups[train.codes[in_train]], labels])
        codes, uniques = factorize(pairs)
        offset = None
        if design.offset is not None:
            offset = np.r_[train.offset[in_train], design.offset_of(rows.Z[keep])]
        union = collapse_offset(
            codes.ravel(),
            np.vstack([train.Z[in_train], design.scaled(rows.Z[keep])]),
            np.concatenate([train.successes[in_train], rows.successes[keep]]),
            np.concatenate([train.trials[in_train], rows.trials[keep]]),
            len(uniques),
            offset,
        )
        nd, _ = nested_data(union, outer_codes_of(uniques)[0])
        after = NestedLikelihood(nd, self.n_quad).group_loglik(self.x).sum()
        return float(after - self.group_loglik[seen].sum())

    # -- each group ---------------------------------------------------------------
    def group_intervals(self, level, draws=4000):
        """Each pair's trials-weighted mean fitted probability at its
        conditional modes, and the ``level`` interval of that mean under the
        joint normal of its (outer, inner) effects from the modes and the
        Laplace curvature (``draws`` draws of a fixed seed; parameters as
        known), as for random slopes."""
        data = self.design.data
        modes, sd = self._effects()
        A, G = len(self.outer_groups), len(self.order)
        S = self.curvature[:A][self.outer_codes]
        Hjj = np.empty(G)
        Hzj = np.empty(G)
        Hjj[self.order] = self.curvature[A : A + G]
        Hzj[self.order] = self.curvature[A + G :]
        sa, sb = self.sds
        # corr(outer, inner effect) of each pair: cov(z, w) = -H_zj / (H_jj S)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num(
                -sa * sb * Hzj / (Hjj * S) / (sd[:, 0] * sd[:, 1]), nan=0.0
            )
        corr = np.clip(corr, -1.0, 1.0)
        eta0 = self.b + data.Z @ self.beta
        if data.offset is not None:
            eta0 = eta0 + data.offset
        n = data.trials
        N = data.group_sum(n)
        est = data.group_sum(n * expit(eta0 + modes[data.codes].sum(axis=1))) / N
        rng = np.random.default_rng(0)
        e1 = rng.standard_normal(draws)
        lower, upper = np.empty(G), np.empty(G)
        a = (1 - level) / 2
        step = max(1, 2_000_000 // max(1, draws * len(data.codes) // G))
        for g0 in range(0, G, step):
            g1 = min(G, g0 + step)
            r0 = data.starts[g0]
            r1 = data.starts[g1] if g1 < G else len(data.codes)
            g = data.codes[r0:r1]
            # the sum of the two effects: a normal of its own mean and SD
            s = np.sqrt(
                sd[g, 0] ** 2 + sd[g, 1] ** 2 + 2 * corr[g] * sd[g, 0] * sd[g, 1]
            )
            total = modes[g].sum(axis=1)[:, None] + s[:, None] * e1[None, :]
            mean = np.add.reduceat(
                n[r0:r1, None] * expit(eta0[r0:r1, None] + total),
                data.starts[g0:g1] - r0,
                axis=0,
            )
            mean /= N[g0:g1, None]
            lower[g0:g1], upper[g0:g1] = np.quantile(mean, [a, 1 - a], axis=1)
        return est, lower, upper

    def group_effects(self, level):
        """Each pair's outer and inner effects: conditional mode, SD and
        normal interval (lme4's ``ranef(condVar = TRUE)`` of both terms)."""
        modes, sd = self._effects()
        z = stats.norm.ppf(0.5 + level / 2)
        outer, inner = map(str, self.names)
        columns = {}
        for k, name in enumerate((outer, f"{inner}:{outer}")):
            columns[name] = modes[:, k]
            columns[f"{name}_sd"] = sd[:, k]
            columns[f"{name}_lower"] = modes[:, k] - z * sd[:, k]
            columns[f"{name}_upper"] = modes[:, k] + z * sd[:, k]
        return pd.DataFrame(columns)
