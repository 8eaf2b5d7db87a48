"""PopulationDisplay: the distribution of theta for a new group."""

import numpy as np

from ._base import (
    check_level,
    check_matplotlib,
    check_multilevel,
    get_axes,
    group_label,
    prediction_interval,
)


def _grid(population, interval):
    """Points in (0, 1) fine where the density lives, holding the interval's ends."""
    q = np.linspace(5e-4, 1 - 5e-4, 601)
    x = np.concatenate([np.linspace(0.0, 1.0, 1001), population.ppf(q), interval])
    x = np.unique(x)
    return x[(x > 0) & (x < 1)]


class PopulationDisplay:
    """Distribution of the success probability theta of a new group.

    The density of theta for a group not in the data, under a fitted
    :class:`~skre.MultilevelBinomial` (its ``population_``, a logit-normal),
    with the interval holding ``level`` of new groups' theta shaded (the
    prediction interval for a new group) and the observed proportions of the
    training groups as a rug along the bottom. A boundary fit (``tau_ = 0``)
    has no density: a vertical line marks the point mass.

    Use :meth:`from_estimator` to build it from a fitted estimator.

    Read more in the :ref:`User Guide <population_guide>`.

    Parameters
    ----------
    population : LogitNormal
        The distribution of a new group's theta.
    interval : tuple of float
        ``(lower, upper)`` of the prediction interval to shade.
    level : float
        Coverage of ``interval``.
    observed : array-like of shape (n_groups,), default=None
        Observed proportions of the training groups for the rug, or None.
    group_name : str, default="group"
        What a group is called in labels (the group column's name).

    Attributes
    ----------
    line_ : Line2D
        The density curve (a vertical line at a point mass when ``tau_ = 0``).
    interval_ : PolyCollection or None
        The shaded area under the density over ``interval`` (None at a point mass).
    rug_ : Line2D or None
        The rug of observed proportions (x data: the proportions).
    ax_ : Axes
        The axes drawn on.
    figure_ : Figure
        The figure holding ``ax_``.

    See Also
    --------
    ShrinkageDisplay
        How the groups are pulled toward this population.
    skre.LogitNormal
        The distribution drawn here.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> from skre.plotting import PopulationDisplay
    >>> X, y = load_rats(return_X_y=True)
    >>> m4 = MultilevelBinomial(group="batch").fit(X, y)
    >>> disp = PopulationDisplay.from_estimator(m4, level=0.95)
    >>> [round(v, 3) for v in disp.interval]
    [0.037, 0.35]
    """

    def __init__(
        self, *, population, interval, level, observed=None, group_name="group"
    ):
        self.population = population
        self.interval = tuple(map(float, interval))
        self.level = level
        self.observed = None if observed is None else np.asarray(observed, dtype=float)
        self.group_name = group_name

    @classmethod
    def from_estimator(
        cls, multilevel, *, level=0.95, ax=None, observed=True, **kwargs
    ):
        """Plot the distribution of theta for a new group.

        Parameters
        ----------
        multilevel : MultilevelBinomial
            A fitted multilevel estimator, or a Pipeline ending in one.
        level : float, default=0.95
            Coverage of the shaded prediction interval
            (``multilevel.prediction_interval(level)``).
        ax : Axes, default=None
            Axes to draw on; a new figure if None.
        observed : bool, default=True
            Draw the training groups' observed proportions as a rug.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        PopulationDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).
        """
        caller = f"{cls.__name__}.from_estimator"
        check_matplotlib(caller)
        multilevel = check_multilevel(multilevel, caller)
        level = check_level(level)
        props = (
            multilevel.group_estimates()["observed"].to_numpy() if observed else None
        )
        disp = cls(
            population=multilevel.population_,
            interval=prediction_interval(multilevel, level),
            level=level,
            observed=props,
            group_name=group_label(multilevel),
        )
        return disp.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the display.

        Parameters
        ----------
        ax : Axes, default=None
            Axes to draw on; a new figure if None.
        **kwargs : dict
            Passed to ``ax.plot`` for the density curve.

        Returns
        -------
        PopulationDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).
        """
        ax, fig = get_axes(f"{type(self).__name__}.plot", ax)
        pop, (lower, upper) = self.population, self.interval
        noun = self.group_name
        style = {"color": "C0", "lw": 2.0, **kwargs}
        self.interval_ = None
        if (
            getattr(pop, "scale", 1.0) > 0
        ):  # a mixture (method="bayes") has no point mass
            x = _grid(pop, self.interval)
            (self.line_,) = ax.plot(x, pop.pdf(x), label=f"θ of a new {noun}", **style)
            inside = x[(x >= lower) & (x <= upper)]
            self.interval_ = ax.fill_between(
                inside,
                pop.pdf(inside),
                color=style["color"],
                alpha=0.25,
                lw=0,
                label=f"{100 * self.level:g}% prediction interval "
                f"[{lower:.3f}, {upper:.3f}]",
            )
            ax.set_ylim(bottom=0.0)
            ax.set_ylabel("density")
        else:
            self.line_ = ax.axvline(
                pop.median(),
                label=f"θ of a new {noun}: {pop.median():.3f} (τ = 0)",
                **style,
            )
            if upper > lower:  # at tau = 0 the interval is the uncertainty of b
                self.interval_ = ax.axvspan(
                    lower,
                    upper,
                    color=style["color"],
                    alpha=0.15,
                    lw=0,
                    label=f"{100 * self.level:g}% prediction interval "
                    f"[{lower:.3f}, {upper:.3f}] (uncertainty of b)",
                )
            ax.set_yticks([])
        self.rug_ = None
        values = [pop.ppf(0.001), pop.ppf(0.999), lower, upper]
        if self.observed is not None and len(self.observed):
            (self.rug_,) = ax.plot(
                self.observed,
                np.full(len(self.observed), 0.02),
                "|",
                color="k",
                alpha=0.4,
                markersize=14,
                mew=1.2,
                transform=ax.get_xaxis_transform(),
                label=f"observed proportions (n = {len(self.observed)})",
            )
            values += [self.observed.min(), self.observed.max()]
        lo, hi = min(values), max(values)
        pad = 0.03 * max(
            hi - lo, 1e-3
        )  # beyond [0, 1] too: a rug tick at 0 stays visible
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_xlabel("θ (success probability)")
        ax.set_title(f"Population: θ of a new {noun}")
        ax.legend(loc="upper right", fontsize="small")
        self.ax_, self.figure_ = ax, fig
        return self
