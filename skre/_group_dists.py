"""Each group's distribution of its success probability, by kind of fit.

What :mod:`skre._decisions` turns into exceedance probabilities, flags and
ranks. A group's success probability ``theta_g`` is what
``group_estimates()`` reports: the trials-weighted mean of its rows' fitted
probabilities (``expit(b + xi_g)`` without covariates).

* Multilevel (ML or MAP), plug-in: the exact conditional distribution of
  ``xi_g`` given the group's data at the fitted ``(b, coef, tau)``.
* With parameter uncertainty, and every ``method="bayes"`` fit: the mixture of
  those over the posterior of the hyperparameters on the nested grid of
  :mod:`skre._core.hyperpost`; an ML fit takes the *reference posterior*, its
  likelihood times a flat prior on the intercept and slopes and a
  ``HalfNormal(1)`` prior on tau (a MAP fit: its own priors).
* A boundary fit (``tau = 0``) and complete pooling: ``theta_g`` through the
  shared model, normal on the logit of ``theta_g`` (the delta method), as
  their ``group_estimates`` intervals.
* No pooling: the Jeffreys posterior ``Beta(m + 1/2, n - m + 1/2)`` of an
  intercept-only group; with a ``group_prior``, the posterior of the group's
  intercept under that prior (exact, as the multilevel conditional).
"""

from dataclasses import replace

import numpy as np
from scipy import stats
from scipy.special import expit

from ._bayes import BayesFit, check_bayes_data, fit_bayes
from ._core.decisions import (
    normal_exceedance,
    quantile_grid,
    quantile_table,
    table_draws,
    tail_fractions,
    theta_root,
)
from ._core.grouping import row_offset
from ._core.quadrature import MarginalLikelihood
from ._fit_result import DegenerateFit, NoPoolingFit, PooledFit
from ._intervals import pooled_group_logit
from ._multilevel_fit import MultilevelFit
from .priors import HalfNormal

#: the reference posterior's means and SDs are refined to this many SDs (its
#: answers are probabilities, needed to about 1e-4, not a posterior summary)
REFERENCE_TOL = 1e-3
#: the prior on tau of an ML fit's reference posterior: weakly informative on
#: the logit scale (P(tau > 2) = 4.6%); a uniform prior on tau made the
#: historical-control test's size 0 with 10 batches of 5 (too conservative to
#: detect anything) and its grid reach tau = exp(10)
REFERENCE_TAU_PRIOR = HalfNormal(1.0)
#: draws made at once (memory: block x groups doubles)
DRAW_BLOCK = 500
#: hyperparameter grid nodes a Monte Carlo draw set is spread over
DRAW_NODES = 32

PLUG_IN = "plug-in: exact conditional distributions at the estimates"
BAYES = "mixture over the posterior of the hyperparameters (nested quadrature grid)"
REFERENCE = (
    "mixture over the reference posterior of the hyperparameters (the "
    "likelihood with flat priors on the intercept and slopes and a "
    "HalfNormal(1) prior on tau; nested quadrature grid)"
)
POOLED = "normal approximation on the logit of theta (delta method, Wald covariance)"
JEFFREYS = "Jeffreys posterior Beta(m + 1/2, n - m + 1/2) of each group"
NP_PRIOR = "posterior of each group's intercept under group_prior (exact)"


def degenerate_error(fit, task="there is nothing to compare with a threshold"):
    what = "failure" if fit.limit == 0 else "success"
    return ValueError(
        f"every trial in the training data is a {what}: the fit's estimates "
        f"sit at the limit {fit.limit:g} with no distribution around them, so "
        f"{task} (priors on tau or the slopes do not change that: the "
        "intercept stays unbounded). NoPoolingBinomial's Jeffreys posteriors "
        "and exact binomial p-values give proper answers."
    )


def group_offsets(fit, params):
    """Rows' linear predictor without the effect, on the per-group data."""
    data = fit.design.data
    beta, b = params[:-2], params[-2]
    if len(beta) == 0:
        return np.full(len(data.codes), b)
    return b + data.Z @ beta + row_offset(data)


def reference_posterior(fit):
    """The fit's posterior over the hyperparameters (a BayesFit), cached."""
    if isinstance(fit, BayesFit):
        return fit
    cached = fit.__dict__.get("_reference")
    if cached is not None:
        return cached
    try:
        check_bayes_data(fit.design)
    except ValueError as exc:
        raise ValueError(
            "include_parameter_uncertainty=True integrates over the "
            f"hyperparameters on a grid, which this fit cannot take: {exc} "
            "Pass include_parameter_uncertainty=False for plug-in answers."
        ) from None
    prior = fit.tau_prior if fit.tau_prior is not None else REFERENCE_TAU_PRIOR
    post = fit_bayes(
        replace(fit, tau_prior=prior), type(fit).__name__, tol=REFERENCE_TOL
    )
    fit.__dict__["_reference"] = post
    return post


def _mixture_parts(fit, include_parameter_uncertainty):
    """``(weights, params, per-group (mode, sd))`` the answer mixes over."""
    if isinstance(fit, BayesFit) or include_parameter_uncertainty:
        post = reference_posterior(fit)
        parts = post.node_posteriors
        return (
            np.array([w for w, _, _ in parts]),
            [p for _, p, _ in parts],
            [(q.mode[fit.unit], q.sd[fit.unit]) for _, _, q in parts],
        )
    return (
        np.ones(1),
        [fit.params],
        [(fit.posterior.mode[fit.unit], fit.posterior.sd[fit.unit])],
    )


def method_name(fit, include_parameter_uncertainty):
    if isinstance(fit, DegenerateFit):
        raise degenerate_error(fit)
    if isinstance(fit, PooledFit):
        return POOLED
    if isinstance(fit, NoPoolingFit):
        return NP_PRIOR if fit.alpha_prior is not None else JEFFREYS
    if isinstance(fit, BayesFit) or include_parameter_uncertainty:
        return posterior_method(fit)
    return POOLED + " (tau = 0)" if fit.boundary else PLUG_IN


def posterior_method(fit):
    """The name of the posterior a multilevel fit's answers mix over."""
    if (
        isinstance(fit, BayesFit)
        or fit.tau_prior is not None
        or fit.coef_prior is not None
    ):
        return BAYES
    return REFERENCE


# -- exceedance ---------------------------------------------------------------------
def exceedance(fit, c, include_parameter_uncertainty):
    """P(theta_g > c_g | data) for every group (c: (G,) thresholds)."""
    if isinstance(fit, DegenerateFit):
        raise degenerate_error(fit)
    if isinstance(fit, PooledFit):
        centre, se = pooled_group_logit(fit.design, fit.a, fit.beta, fit.cov)
        return normal_exceedance(centre, se, c)
    if isinstance(fit, NoPoolingFit):
        return _no_pooling_exceedance(fit, c)
    if fit.boundary and not (
        isinstance(fit, BayesFit) or include_parameter_uncertainty
    ):
        return _boundary_exceedance(fit, c)
    weights, params, posts = _mixture_parts(fit, include_parameter_uncertainty)
    out = np.zeros(fit.design.data.n_groups)
    for w, p, (mode, sd) in zip(weights, params, posts):
        out += w * _conditional_exceedance(fit.design.data, fit, p, mode, sd, c)
    return np.clip(out / weights.sum(), 0.0, 1.0)


def _conditional_exceedance(data, fit, params, mode, sd, c):
    offset = group_offsets(fit, params)
    tau = params[-1]
    if tau == 0.0:
        theta = fit.design.group_mean_probability(offset, np.zeros(data.n_groups))
        return (theta > c) * 1.0
    u_star = theta_root(data, offset, c) / tau
    return tail_fractions(data, offset, tau, mode, sd, u_star)[1]


def _boundary_exceedance(fit, c):
    centre, se = pooled_group_logit(fit.design, *fit.pooled_estimates())
    return normal_exceedance(centre, se, c)


def _np_prior_model(fit):
    """No pooling with a Normal group prior is the multilevel conditional
    with b = the prior's mean and tau = its SD."""
    mean, prec = fit.alpha_prior
    data = fit.design.data
    params = np.r_[fit.beta, mean, 1.0 / np.sqrt(prec)]
    model = MarginalLikelihood(data, np.ones(data.n_groups), 25)
    return params, model.posterior(params)


def _no_pooling_exceedance(fit, c):
    data = fit.design.data
    if fit.alpha_prior is not None:
        params, post = _np_prior_model(fit)
        offset = group_offsets(fit, params)
        u_star = theta_root(data, offset, c) / params[-1]
        return tail_fractions(data, offset, params[-1], post.mode, post.sd, u_star)[1]
    check_np_intercept_only(fit)
    M, N = fit.design.group_successes, fit.design.group_trials
    return stats.beta.sf(c, M + 0.5, N - M + 0.5)


def check_np_intercept_only(fit):
    if fit.design.data.Z.shape[1]:
        raise ValueError(
            "NoPoolingBinomial with covariates: a group's success probability "
            "then depends on the shared slopes, and without a group_prior there "
            "is no posterior of its intercept to integrate. Fit with "
            "group_prior=Normal(...) (the group's intercept is then integrated "
            "exactly under it), or use MultilevelBinomial."
        )


def binomial_pvalues(fit, c):
    """Exact one-sided binomial p-values P(M >= m | n, c) (intercept-only)."""
    M, N = fit.design.group_successes, fit.design.group_trials
    return stats.binom.sf(M - 1, N, c)


# -- draws for ranks ---------------------------------------------------------------
def theta_draws(fit, include_parameter_uncertainty, rng, n_draws):
    """``n_draws`` joint draws of every group's theta, (n_draws, G) float32
    (groups independent given the parameters), and whether groups can share
    a value (ties: a shared model, or tau = 0)."""
    if isinstance(fit, DegenerateFit):
        raise degenerate_error(fit)
    design = fit.design
    G = design.data.n_groups
    out = np.empty((n_draws, G), dtype=np.float32)
    blocks = [(s, min(n_draws, s + DRAW_BLOCK)) for s in range(0, n_draws, DRAW_BLOCK)]
    if isinstance(fit, PooledFit) or (
        isinstance(fit, MultilevelFit)
        and fit.boundary
        and not (isinstance(fit, BayesFit) or include_parameter_uncertainty)
    ):
        if isinstance(fit, PooledFit):
            a, beta, cov = fit.a, fit.beta, fit.cov
        else:
            a, beta, cov = fit.pooled_estimates()
        mean, data = np.r_[a, beta], design.data
        for s, e in blocks:
            x = rng.multivariate_normal(mean, np.nan_to_num(cov), size=e - s)
            p = expit(x[:, :1] + x[:, 1:] @ data.Z.T)  # (k, rows)
            num = data.group_sum((data.trials * p).T)
            out[s:e] = (num / design.group_trials[:, None]).T
        return out, True
    if isinstance(fit, NoPoolingFit):
        if fit.alpha_prior is None:
            check_np_intercept_only(fit)
            M, N = design.group_successes, design.group_trials
            for s, e in blocks:
                out[s:e] = rng.beta(M + 0.5, N - M + 0.5, size=(e - s, G))
            return out, False
        params, post = _np_prior_model(fit)
        nodes = [(params, post.mode, post.sd)]
    else:
        weights, params, posts = _mixture_parts(fit, include_parameter_uncertainty)
        if len(weights) > 1:  # the draws spread over DRAW_NODES nodes (systematic)
            cum = np.cumsum(weights / weights.sum())
            u = (rng.random() + np.arange(DRAW_NODES)) / DRAW_NODES
            picks = np.minimum(np.searchsorted(cum, u), len(weights) - 1)
            nodes = [(params[k], *posts[k]) for k in picks]
        else:
            nodes = [(params[0], *posts[0])]
    share = np.array_split(rng.permutation(n_draws), len(nodes))
    for (params, mode, sd), rows in zip(nodes, share):
        table = _theta_table(fit, params, mode, sd)
        for s in range(0, len(rows), DRAW_BLOCK):
            part = rows[s : s + DRAW_BLOCK]
            out[part] = table_draws(table, rng.random((len(part), G)))
    return out, any(p[-1] == 0.0 for p, _, _ in nodes)


def _theta_table(fit, params, mode, sd):
    """Each group's quantile function of theta at the parameters ``params``."""
    data = fit.design.data
    offset = group_offsets(fit, params)
    tau = params[-1]
    if tau == 0.0:
        theta = fit.design.group_mean_probability(offset, np.zeros(data.n_groups))
        return np.repeat(theta[:, None], 2, axis=1)
    return quantile_table(*quantile_grid(data, offset, tau, mode, sd))


__all__ = [
    "exceedance",
    "binomial_pvalues",
    "theta_draws",
    "method_name",
    "reference_posterior",
    "posterior_method",
    "group_offsets",
]
