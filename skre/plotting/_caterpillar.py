"""CaterpillarDisplay: every group's estimate with its interval."""

import numpy as np

from ._base import (
    check_level,
    check_matplotlib,
    default_figsize,
    final_estimator,
    get_axes,
    group_label,
)

MAX_TICK_LABELS = 100  # more groups than this: no group labels on the axis


class CaterpillarDisplay:
    """Per-group estimates with intervals, one row per group ("caterpillar plot").

    Each group is a row (y), its estimate a point on the theta axis (x) with a
    horizontal bar for its interval; by default the rows are sorted by
    estimate, bottom to top. The observed proportions can be marked too, which
    for a multilevel fit shows how far each group was pulled. Works for all
    three estimators; for a :class:`~skre.MultilevelBinomial` a dashed line
    marks the population mean ``E[theta]``.

    Use :meth:`from_estimator` to build it from a fitted estimator.

    Read more in the :ref:`User Guide <rats_guide>` and the gallery example
    :ref:`sphx_glr_auto_examples_plot_rats.py`.

    Parameters
    ----------
    groups : array-like of shape (n_groups,)
        Group labels, in plotting order (bottom to top).
    estimate, lower, upper : array-like of shape (n_groups,)
        Estimates and interval bounds, in the same order.
    observed : array-like of shape (n_groups,), default=None
        Observed proportions to mark, or None.
    level : float, default=0.95
        Coverage of the intervals (for the legend).
    reference : float, default=None
        Position of a vertical reference line (the population mean), or None.
    estimator_name : str, default=None
        Name for the title.
    group_name : str, default="group"
        What a group is called in labels (the group column's name).
    sorted_by_estimate : bool, default=False
        Whether ``groups`` are sorted by estimate (for the axis label).

    Attributes
    ----------
    errorbar_ : ErrorbarContainer
        Points and interval bars; ``errorbar_.lines[2][0].get_segments()`` are the
        bars, ``[[lower, y], [upper, y]]`` with ``y = 0, 1, ...`` in ``groups`` order.
    observed_ : Line2D or None
        Markers at the observed proportions.
    reference_line_ : Line2D or None
        The dashed line at the population mean (multilevel fits only).
    ax_ : Axes
        The axes drawn on.
    figure_ : Figure
        The figure holding ``ax_``.

    See Also
    --------
    ShrinkageDisplay
        No pooling against partial pooling, group by group.
    PopulationDisplay
        The distribution of a new group's theta.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> from skre.plotting import CaterpillarDisplay
    >>> X, y = load_rats(return_X_y=True)
    >>> m4 = MultilevelBinomial(group="batch").fit(X, y)
    >>> disp = CaterpillarDisplay.from_estimator(m4, level=0.95)
    >>> disp.groups[-3:]  # the highest estimates
    array([68, 69, 70])
    """

    def __init__(
        self,
        *,
        groups,
        estimate,
        lower,
        upper,
        observed=None,
        level=0.95,
        reference=None,
        estimator_name=None,
        group_name="group",
        sorted_by_estimate=False,
    ):
        self.groups = np.asarray(groups)
        self.estimate = np.asarray(estimate, dtype=float)
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        self.observed = None if observed is None else np.asarray(observed, dtype=float)
        self.level = level
        self.reference = reference
        self.estimator_name = estimator_name
        self.group_name = group_name
        self.sorted_by_estimate = sorted_by_estimate

    @classmethod
    def from_estimator(
        cls, est, *, level=0.95, ax=None, sort=True, observed=True, **kwargs
    ):
        """Plot every group's estimate and interval from a fitted estimator.

        Parameters
        ----------
        est : CompletePoolingBinomial, NoPoolingBinomial or MultilevelBinomial
            A fitted estimator, or a Pipeline ending in one.
        level : float, default=0.95
            Coverage of the intervals (``est.group_estimates(level)``).
        ax : Axes, default=None
            Axes to draw on; a new figure, its height growing with the number of
            groups, if None.
        sort : bool, default=True
            Sort the groups by estimate (ties keep the order of ``groups_``);
            otherwise keep the order of ``groups_``.
        observed : bool, default=True
            Mark each group's observed proportion.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        CaterpillarDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).
        """
        check_matplotlib(f"{cls.__name__}.from_estimator")
        est = final_estimator(est)
        level = check_level(level)
        table = est.group_estimates(level)
        if sort:
            table = table.iloc[np.argsort(table["estimate"].to_numpy(), kind="stable")]
        population = getattr(est, "population_", None)
        disp = cls(
            groups=table.index.to_numpy(),
            estimate=table["estimate"].to_numpy(),
            lower=table["lower"].to_numpy(),
            upper=table["upper"].to_numpy(),
            observed=table["observed"].to_numpy() if observed else None,
            level=level,
            estimator_name=type(est).__name__,
            reference=None if population is None else population.mean(),
            group_name=group_label(est),
            sorted_by_estimate=bool(sort),
        )
        return disp.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the display.

        Parameters
        ----------
        ax : Axes, default=None
            Axes to draw on; a new figure if None.
        **kwargs : dict
            Passed to ``ax.errorbar``.

        Returns
        -------
        CaterpillarDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).
        """
        n = len(self.groups)
        ax, fig = get_axes(
            f"{type(self).__name__}.plot", ax, figsize=default_figsize("caterpillar", n)
        )
        y = np.arange(n)
        bars = [
            np.clip(self.estimate - self.lower, 0, None),
            np.clip(self.upper - self.estimate, 0, None),
        ]
        style = {
            "fmt": "o",
            "color": "C0",
            "markersize": 3.5,
            "elinewidth": 1.2,
            "capsize": 0,
            "label": f"estimate, {100 * self.level:g}% interval",
            **kwargs,
        }
        self.errorbar_ = ax.errorbar(self.estimate, y, xerr=bars, **style)
        self.observed_ = None
        if self.observed is not None:
            (self.observed_,) = ax.plot(
                self.observed,
                y,
                "x",
                color="C3",
                markersize=4,
                alpha=0.8,
                label="observed proportion",
            )
        self.reference_line_ = None
        if self.reference is not None:
            self.reference_line_ = ax.axvline(
                self.reference,
                color="0.4",
                ls="--",
                lw=1,
                label=f"population mean {self.reference:.3f}",
            )
        ax.set_ylim(-1, n)
        if n <= MAX_TICK_LABELS:
            ax.set_yticks(
                y,
                [str(g) for g in self.groups],
                fontsize=8 if n <= 80 else 7,  # rows are 0.13 in (9.4 pt) apart
            )
        else:
            ax.set_yticks([])
        order = " (sorted by estimate)" if self.sorted_by_estimate else ""
        ax.set_ylabel(f"{self.group_name}{order}")
        ax.set_xlabel("θ (success probability)")
        name = f"{self.estimator_name}: " if self.estimator_name else ""
        ax.set_title(f"{name}θ by {self.group_name}")
        handles = [
            a
            for a in (self.errorbar_, self.observed_, self.reference_line_)
            if a is not None
        ]
        ax.legend(handles=handles, loc="lower right", fontsize="small")
        self.ax_, self.figure_ = ax, fig
        return self
