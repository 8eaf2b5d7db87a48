"""What ``MultilevelBinomial(group=[outer, inner])`` does in fit: the checks
of its parameters, the fit and its warnings."""

from numbers import Integral

import numpy as np

from ._fit_warnings import warn_optimizer, warn_separated_without_prior
from ._nested_fit import NestedFit, fit_nested_groups, outer_codes_of
from .exceptions import BoundaryWarning, QuadratureWarning, warn


def check_nested_groups(est, bayes):
    """Refuse the parameters nested groups do not take (before anything is
    fitted)."""
    name = type(est).__name__
    group = est.group  # (its shape was checked with X, by split_X)
    refused = [
        what
        for what, on in (
            ("random_slopes", bool(est.random_slopes)),
            ("method='bayes'", bayes),
            ("tau_prior", est.tau_prior is not None),
            ("coef_prior", est.coef_prior is not None),
            ("covariance_prior", est.covariance_prior is not None),
        )
        if on
    ]
    if refused:
        raise NotImplementedError(
            f"{name}: nested groups (group={group!r}) do not take "
            f"{', '.join(refused)} yet: maximum likelihood only."
        )


def fit_with_nested(est, design):
    """The :class:`NestedFit` of ``est`` on ``design``, with its warnings."""
    name = type(est).__name__
    names = tuple(_column_name(est, g) for g in est.group)
    if len(outer_codes_of(design.groups)[1]) == len(design.groups):
        raise ValueError(
            f"{name}: every outer group ({names[0]!r}) has a single inner group "
            f"({names[1]!r}), so the two SDs are not separately identifiable "
            "(only tau_outer^2 + tau^2 is: any split fits equally well). Fit "
            f"the one-level model, group={names[0]!r}."
        )
    res, check, outer_codes, outer_groups, order = fit_nested_groups(
        design, est.n_quad, est.max_iter
    )
    # "auto": the larger of the two rules compared (the result's loglik and
    # modes are on it)
    K = check[1] if check is not None else int(est.n_quad)
    fit = NestedFit(
        design,
        res.loglik,
        res.n_iter,
        res.converged,
        res.x,
        K,
        res.modes,
        res.scales,
        outer_codes,
        outer_groups,
        order,
        names,
        res.group_loglik,
        check,
    )
    warn_separated_without_prior(est, design, fit)
    if check is not None and check[3] > 1.0:
        warn(
            f"{name}: n_quad='auto' did not settle at the estimate, even on its "
            f"finest rule ({check[0]} against {check[1]} nodes per dimension): "
            f"the log-likelihood differs by {check[2]:.2g}, and the finer rule's "
            f"gradient would move the estimates by up to {check[3] * 3e-7:.2g} of "
            "themselves. The estimates and loglik_ are uncertain by about that "
            "much.",
            QuadratureWarning,
        )
    text = fit.boundary_text()
    if text:
        warn(f"{name}: {text}", BoundaryWarning)
    warn_optimizer(name, res)
    return fit


def _column_name(est, g):
    """A group column's name (a position as its string, as for arrays)."""
    return str(g) if isinstance(g, (Integral, np.integer)) else g
