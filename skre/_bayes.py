"""``MultilevelBinomial(method="bayes")``: the hyperparameters integrated over.

The posterior of ``x = (beta, b, log tau)`` comes from
:mod:`skre._core.hyperpost` (deterministic quadrature); everything a fitted
estimator reports is then averaged over its grid: point estimates are posterior
means, ``population_`` the posterior predictive of a new group's theta,
predictions and held-out scores mixtures over the grid.
"""

import numpy as np
import pandas as pd
from scipy.integrate import cumulative_simpson
from scipy.special import expit

from ._core.binomial import kernel
from ._core.hyperpost import fit_hyperposterior, marginal_quantiles
from ._core.multilevel import negative_loglik
from ._core.population import LogitNormalMixture
from ._intervals import fixed_map


def _neg_logpost(est):
    """-(log L + log prior + log tau): the density of log tau includes its Jacobian."""
    nll = negative_loglik(est._model, est._log_prior)

    def fun_grad(x):
        f, g = nll(x)
        g = g.copy()
        g[-1] -= 1.0
        return f - x[-1], g

    return fun_grad


def fit(est, res):
    """Integrate the hyperparameters; set the fitted attributes from the posterior."""
    est._neg_logpost = _neg_logpost(est)
    x0 = np.r_[res.beta, res.b, np.log(max(res.tau, 0.1))]
    post = fit_hyperposterior(est._neg_logpost, x0)
    est._hyper = post
    est._node_posts = None
    x = post.nodes
    thetas = np.column_stack([x[:, :-1], np.exp(x[:, -1])])
    mean_theta = post.mean(thetas)
    est._theta_std = mean_theta
    est._posterior = est._model.posterior(mean_theta)
    est.intercept_, est.coef_ = est._unscale(mean_theta[-2], mean_theta[:-2])
    est.tau_ = float(mean_theta[-1])
    est.random_effects_ = est.tau_ * est._posterior.mode[est._unit]
    est.random_effects_sd_ = est.tau_ * est._posterior.sd[est._unit]
    est.population_ = LogitNormalMixture(x[:, -2], np.exp(x[:, -1]), post.weights)
    est.boundary_ = False


def nodes(est):
    """(weight, theta, per-group posterior) at every node with weight > 1e-12."""
    if est._node_posts is None:
        post = est._hyper
        use = post.weights > 1e-12 * post.weights.max()
        w = post.weights[use] / post.weights[use].sum()
        thetas = np.column_stack([post.nodes[use, :-1], np.exp(post.nodes[use, -1])])
        est._node_posts = [(wi, t, est._model.posterior(t)) for wi, t in zip(w, thetas)]
    return est._node_posts


def posterior_summary(est):
    post = est._hyper
    x = post.nodes
    p = x.shape[1] - 2
    C = fixed_map(est)
    rows, names = [], ["intercept", *map(str, est.covariates_), "tau"]
    for c in C:
        vals = x @ c
        q = marginal_quantiles(est._neg_logpost, post, c, [0.025, 0.975])
        rows.append((post.mean(vals), post.sd(vals), *q))
    tau = np.exp(x[:, -1])
    q = np.exp(
        marginal_quantiles(est._neg_logpost, post, np.eye(p + 2)[-1], [0.025, 0.975])
    )
    rows.append((post.mean(tau), post.sd(tau), *q))
    return pd.DataFrame(rows, index=names, columns=["mean", "sd", "2.5%", "97.5%"])


def group_intervals(est, level, n_grid=801, span=10.0):
    """Posterior mean of each group's theta and quantiles of its posterior.

    The posterior of the group's logit ``eta_g = o_g + xi_g`` (``o_g`` its
    trials-weighted mean linear predictor; ``b`` without covariates) is a
    mixture over the hyperparameter grid of exact conditional densities,
    evaluated on a common grid and integrated by Simpson's rule. With
    covariates, theta_g is summarised through ``expit(eta_g)``.
    """
    d = est._model.data  # the likelihood units
    parts = nodes(est)
    a = (1 - level) / 2
    centre, lo, hi = [], np.inf, -np.inf
    for _, theta, post in parts:
        o = _group_offset(d, theta[-2] + d.Z @ theta[:-2])
        c = o + theta[-1] * post.mode
        half = span * theta[-1] * post.sd
        lo, hi = np.minimum(lo, c - half), np.maximum(hi, c + half)
        centre.append(o)
    grid = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, n_grid)[None, :]
    mix = np.zeros_like(grid)
    estimate = np.zeros(d.n_groups)
    for (w, theta, post), o in zip(parts, centre):
        tau = theta[-1]
        offset = theta[-2] + d.Z @ theta[:-2]
        xi = grid - o[:, None]
        eta = offset[:, None] + xi[d.codes]
        h = d.group_sum(kernel(eta, d.successes[:, None], d.trials[:, None]))
        h -= 0.5 * (xi / tau) ** 2
        dens = np.exp(h - h.max(axis=1, keepdims=True))
        dens /= np.trapezoid(dens, grid, axis=1)[:, None]
        mix += w * dens
        pi = np.exp(post.log_weights)
        rows = expit(offset[:, None] + tau * post.nodes[d.codes])
        estimate += w * np.sum(
            pi * d.group_sum(d.trials[:, None] * rows) / d.group_sum(d.trials)[:, None],
            axis=1,
        )
    cdf = np.concatenate(
        [np.zeros((d.n_groups, 1)), cumulative_simpson(mix, x=grid, axis=1)], axis=1
    )
    cdf = np.maximum.accumulate(cdf / cdf[:, -1:], axis=1)
    q = np.array(
        [[np.interp(p, cdf[g], grid[g]) for p in (a, 1 - a)] for g in range(d.n_groups)]
    )
    unit = est._unit
    return estimate[unit], expit(q[unit, 0]), expit(q[unit, 1])


def _group_offset(data, offset_rows):
    """Trials-weighted mean linear predictor of each group's rows."""
    return data.group_sum(data.trials * offset_rows) / data.group_sum(data.trials)
