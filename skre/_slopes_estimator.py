"""What ``MultilevelBinomial(random_slopes=[...])`` does in fit, and the
methods it does not have yet (they raise ``NotImplementedError``)."""

import functools
import warnings

import numpy as np

from ._core.multilevel import InMemory, fit_multilevel
from ._fit_warnings import warn_optimizer, warn_separated_without_prior
from ._labels import group_column_name
from ._multilevel_fit import likelihood_units
from ._nested_fit import UNSUPPORTED_NESTED, NestedFit
from ._slopes_fit import (
    UNSUPPORTED,
    SlopesFit,
    describe_rule,
    fit_random_slopes,
    slope_indices,
)
from .exceptions import BoundaryWarning, QuadratureWarning, warn


def fit_with_slopes(est, design, rows):
    """The :class:`SlopesFit` of ``est`` on ``design`` (validated rows;
    priors and bayes were refused by ``_fit``)."""
    slopes = slope_indices(est, design, rows.feature_names_in)
    # the start: the random intercept's Laplace fit (without it, from complete
    # pooling, the Laplace fit of toenail's (1 + time | patient) stopped at a
    # local maximum at correlation -1, 121 log-likelihood units below lme4's)
    units, weight, _ = likelihood_units(design.data)
    return slopes_fit(est, design, slopes, InMemory(units, weight))


def _check_slopes_vary(est, design, slopes):
    """A slope column constant within every group adds to each group's
    intercept only: its SD and correlation are not identified (any split of
    the groups' effects between intercept and slope fits as well)."""
    data = design.data
    for j in slopes:
        column = data.Z[:, j]
        lo = np.minimum.reduceat(column, data.starts)
        hi = np.maximum.reduceat(column, data.starts)
        if np.all(lo == hi):
            raise ValueError(
                f"{type(est).__name__}: the random slope of "
                f"{design.covariates[j]!r} is not identified: the column is "
                "constant within every group, so its slope only moves each "
                "group's intercept. Keep it as a fixed effect without a random "
                "slope (the random intercept already varies by group)."
            )


def slopes_fit(est, design, slopes, source, data=None):
    """The :class:`SlopesFit` of ``est`` with the random slopes ``slopes``
    (positions in ``design.covariates``), started from the random
    intercept's Laplace fit on ``source`` (a
    :func:`~skre._core.multilevel.fit_multilevel` source). ``data``: the
    core's rows (default: the design's) or a stand-in that evaluates them
    elsewhere (the Dask fit), whose modes and scales ``np.asarray``
    gathers."""
    name = type(est).__name__
    _check_slopes_vary(est, design, slopes)
    diagonal = est.covariance == "diagonal"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (its accuracy is not the question)
        start = fit_multilevel(source, 1)
    pooled = (float(start.b), np.asarray(start.beta, dtype=float), float(start.tau))
    res, check = fit_random_slopes(
        design,
        slopes,
        est.n_quad,
        diagonal,
        pooled,
        est.max_iter,
        est.covariance_prior,
        data,
    )
    K = check[0] if check is not None else int(est.n_quad)  # (or a sinh rule)
    fit = SlopesFit(
        design,
        res.loglik,
        res.n_iter,
        res.converged,
        res.x,
        slopes,
        diagonal,
        K,
        np.asarray(res.modes),
        np.asarray(res.scales),
        str(group_column_name(est)),
        check,
        est.covariance_prior,
    )
    warn_separated_without_prior(est, design, fit)
    if check is not None and check[3] > 1.0:
        move = check[3] * 3e-7
        warn(
            f"{name}: n_quad='auto' did not settle at the estimate, even on its "
            f"finest rule ({describe_rule(check[0])} against "
            f"{describe_rule(check[1])}): the log-likelihood differs by "
            f"{check[2]:.2g}, and the finer rule's gradient would move the "
            f"estimates by up to {move:.2g} of themselves. The estimates and "
            "loglik_ are uncertain by about that much.",
            QuadratureWarning,
        )
    L = fit.L
    if np.any(np.diag(L) == 0.0):
        warn(
            f"{name}: the random effects' covariance is singular (a boundary "
            "fit: an SD at 0 or a correlation at +-1, lme4's isSingular): the "
            "groups do not vary in every direction the model allows. Consider "
            "dropping a random slope or covariance='diagonal'.",
            BoundaryWarning,
        )
    warn_optimizer(name, res)
    return fit


def degenerate_slopes_error(est, degenerate):
    """The error for data whose trials are all failures (``degenerate``
    0) or all successes."""
    return ValueError(
        f"{type(est).__name__}: every trial is a "
        f"{'failure' if degenerate == 0 else 'success'}; random slopes have "
        "nothing to vary around. Fit without random_slopes."
    )


def refuse_unsupported(cls):
    """Wrap the methods a random-slope fit does not have: they raise
    NotImplementedError on such a fit and work as before on the others."""
    for name in sorted(set(UNSUPPORTED) | set(UNSUPPORTED_NESTED)):
        method = getattr(cls, name)

        def wrapper(self, *args, _method=method, _name=name, **kwargs):
            result = getattr(self, "_fit_result", None)
            if isinstance(result, SlopesFit) and _name in UNSUPPORTED:
                raise NotImplementedError(
                    f"{type(self).__name__}.{_name}() is not available for fits "
                    "with random_slopes yet (see the estimator's random_slopes "
                    "parameter for the methods that are: the predictions, "
                    "score, summary, confint, group_estimates, residuals, "
                    "lr_test among them)."
                )
            if isinstance(result, NestedFit) and _name in UNSUPPORTED_NESTED:
                raise NotImplementedError(
                    f"{type(self).__name__}.{_name}() is not available for "
                    "nested groups yet (see the estimator's group parameter for "
                    "the methods that are: the predictions, score, summary, "
                    "confint, group_estimates, residuals, simulate(new_groups="
                    "True) and lr_test among them)."
                )
            return _method(self, *args, **kwargs)

        functools.update_wrapper(wrapper, method)
        setattr(cls, name, wrapper)
