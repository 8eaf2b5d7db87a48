"""Helpers shared by the displays: lazy matplotlib, axes, checked inputs."""

from numbers import Real

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._inputs import _show

INSTALL_HINT = (
    "pip install matplotlib (or, in skre's source tree, pip install '.[plot]')"
)


def check_matplotlib(caller):
    """Import matplotlib, or raise an ImportError naming ``caller`` and the fix."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{caller} requires matplotlib: {INSTALL_HINT}") from exc


def get_axes(caller, ax, figsize=None):
    """Return ``(ax, figure)``: ``ax`` itself, or new axes on a new pyplot figure."""
    check_matplotlib(caller)
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(f"{caller} requires matplotlib: {INSTALL_HINT}") from exc
        _, ax = plt.subplots(figsize=figsize)
    return ax, ax.figure


def default_figsize(kind, n_groups=0):
    """Figure size (inches) of a display drawn on new axes."""
    if kind == "caterpillar":  # a row per group
        return 6.4, min(max(4.8, 0.13 * n_groups + 1.4), 14.0)
    return {"shrinkage": (5.5, 6.0)}.get(kind, (6.4, 4.8))


def check_level(level, name="level"):
    """``level`` as a float in (0, 1)."""
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level < 1:
        raise ValueError(f"{name} must be a number in (0, 1); got {_show(level)}.")
    return float(level)


def final_estimator(est):
    """The skre estimator itself, or the last step of a Pipeline ending in one."""
    while getattr(est, "steps", None):  # Pipelines, nested ones too
        est = est.steps[-1][1]
    check_is_fitted(est)
    return est


def check_multilevel(est, caller):
    """A fitted estimator with a population distribution (a MultilevelBinomial)."""
    est = final_estimator(est)
    if not hasattr(est, "population_"):
        raise TypeError(
            f"{caller} needs a fitted MultilevelBinomial (an estimator with "
            f"population_); got {type(est).__name__}."
        )
    return est


def prediction_interval(est, level):
    """``(lower, upper)`` of a new group's theta, with probability ``level``.

    Uses ``est.prediction_interval(level)`` (the population interval at the fitted
    parameters) when the estimator has it, else ``est.population_.interval(level)``,
    the same numbers.
    """
    if hasattr(est, "prediction_interval"):
        lower, upper = est.prediction_interval(level=level)
    else:
        lower, upper = est.population_.interval(level)
    return float(lower), float(upper)


def group_label(est):
    """What to call a group in labels: the group column's name if it is a word
    ("batch", "herd"), else "group" (for names like "g" or "lab_id")."""
    group = getattr(est, "group", None)
    return (
        group
        if isinstance(group, str) and group.isalpha() and len(group) > 2
        else "group"
    )


SMALLEST, LARGEST = 12.0, 160.0  # marker areas (points^2) of 0 and of the most trials


def marker_sizes(trials):
    """Marker areas (points^2) growing linearly with the number of trials."""
    trials = np.asarray(trials, dtype=float)
    top = trials.max() if trials.size and trials.max() > 0 else 1.0
    return SMALLEST + (LARGEST - SMALLEST) * trials / top


def trials_of_size(size, most_trials):
    """Inverse of :func:`marker_sizes`, for a legend of marker sizes."""
    return (np.asarray(size) - SMALLEST) / (LARGEST - SMALLEST) * most_trials
