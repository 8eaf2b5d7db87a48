"""ShrinkageDisplay: no-pooling estimates pulled toward the population."""

import numpy as np

from ._base import (
    check_level,
    check_matplotlib,
    check_multilevel,
    default_figsize,
    final_estimator,
    get_axes,
    group_label,
    marker_sizes,
    prediction_interval,
    trials_of_size,
)


class ShrinkageDisplay:
    """Shrinkage of each group's estimate from no pooling to partial pooling.

    Two columns of points: at x = 0 each group's no-pooling estimate (its own
    proportion, without covariates), at x = 1 its multilevel (partial-pooling)
    estimate, joined by an arrow from the first to the second. The arrows point
    toward the population: a horizontal line marks the population mean
    ``E[theta]`` of the multilevel model. Marker area grows with the group's
    number of trials, so the small groups, pulled the most, stand out. With a
    ``level``, a band shades the interval holding that share of new groups'
    theta.

    Use :meth:`from_estimators` to build it from two fitted estimators; the
    constructor takes the numbers directly.

    Read more in the :ref:`User Guide <shrinkage_guide>`.

    Parameters
    ----------
    groups : array-like of shape (n_groups,)
        Group labels.
    no_pooling : array-like of shape (n_groups,)
        Estimates of the no-pooling model (the arrows' tails).
    multilevel : array-like of shape (n_groups,)
        Estimates of the multilevel model (the arrows' heads).
    trials : array-like of shape (n_groups,)
        Trials per group (marker area).
    population_mean : float
        ``E[theta]`` of a new group under the multilevel model.
    interval : tuple of float, default=None
        Interval of a new group's theta to shade, or None.
    level : float, default=None
        Coverage of ``interval`` (for the legend).
    group_name : str, default="group"
        What a group is called in labels (the group column's name).

    Attributes
    ----------
    arrows_ : list of Annotation
        One arrow per group, in the order of ``groups``; ``arrow.xyann`` is its
        tail ``(0, no_pooling)`` and ``arrow.xy`` its head ``(1, multilevel)``.
    points_ : list of PathCollection
        The no-pooling points (x = 0) and the multilevel points (x = 1).
    population_line_ : Line2D
        The horizontal line at ``population_mean``.
    interval_ : Patch or None
        The shaded band of ``interval`` (None without one, or at tau = 0).
    ax_ : Axes
        The axes drawn on.
    figure_ : Figure
        The figure holding ``ax_``.

    See Also
    --------
    CaterpillarDisplay
        Every group's estimate with its interval.
    PopulationDisplay
        The distribution the arrows point toward.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skre import MultilevelBinomial, NoPoolingBinomial
    >>> from skre.datasets import load_rats
    >>> from skre.plotting import ShrinkageDisplay
    >>> X, y = load_rats(return_X_y=True)
    >>> m3 = NoPoolingBinomial(group="batch").fit(X, y)
    >>> m4 = MultilevelBinomial(group="batch").fit(X, y)
    >>> disp = ShrinkageDisplay.from_estimators(m3, m4)
    >>> len(disp.arrows_), round(disp.population_mean, 4)
    (71, 0.1436)
    """

    def __init__(
        self,
        *,
        groups,
        no_pooling,
        multilevel,
        trials,
        population_mean,
        interval=None,
        level=None,
        group_name="group",
    ):
        self.groups = np.asarray(groups)
        self.no_pooling = np.asarray(no_pooling, dtype=float)
        self.multilevel = np.asarray(multilevel, dtype=float)
        self.trials = np.asarray(trials, dtype=float)
        self.population_mean = float(population_mean)
        self.interval = None if interval is None else tuple(map(float, interval))
        self.level = level
        self.group_name = group_name

    @classmethod
    def from_estimators(cls, no_pooling, multilevel, *, level=None, ax=None, **kwargs):
        """Plot the shrinkage from a no-pooling fit to a multilevel fit.

        Parameters
        ----------
        no_pooling : NoPoolingBinomial
            A fitted no-pooling estimator (or a Pipeline ending in one).
            Any fitted skre estimator works; its ``group_estimates`` are the tails.
        multilevel : MultilevelBinomial
            A fitted multilevel estimator (or a Pipeline ending in one).
            Fitted to the same groups; groups are matched by label.
        level : float, default=None
            If given, shade the interval holding this share of new groups' theta
            (``multilevel.prediction_interval(level)``).
        ax : Axes, default=None
            Axes to draw on; a new figure if None.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        ShrinkageDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).
        """
        caller = f"{cls.__name__}.from_estimators"
        check_matplotlib(caller)
        no_pooling = final_estimator(no_pooling)
        multilevel = check_multilevel(multilevel, caller)
        ml = multilevel.group_estimates()
        npool = no_pooling.group_estimates()
        missing = ml.index.difference(npool.index, sort=False)
        extra = npool.index.difference(ml.index, sort=False)
        if len(missing) or len(extra):
            odd = list(missing[:3]) + list(extra[:3])
            raise ValueError(
                f"{caller}: the two estimators were fit to different groups "
                f"({len(missing)} only in multilevel, {len(extra)} only in "
                f"no_pooling, e.g. {odd}); fit both to the same data."
            )
        npool = npool.loc[ml.index]
        interval = None
        if level is not None:
            level = check_level(level)
            interval = prediction_interval(multilevel, level)
        disp = cls(
            groups=ml.index.to_numpy(),
            no_pooling=npool["estimate"].to_numpy(),
            multilevel=ml["estimate"].to_numpy(),
            trials=ml["trials"].to_numpy(),
            population_mean=multilevel.population_.mean(),
            interval=interval,
            level=level,
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
            Passed to ``ax.scatter`` for both columns of points.

        Returns
        -------
        ShrinkageDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).
        """
        ax, fig = get_axes(
            f"{type(self).__name__}.plot", ax, figsize=default_figsize("shrinkage")
        )
        sizes = marker_sizes(self.trials)
        self.interval_ = None
        if self.interval is not None and self.interval[1] > self.interval[0]:
            share = "" if self.level is None else f"{100 * self.level:g}% "
            label = f"{share}interval of a new {self.group_name}'s θ"
            self.interval_ = ax.axhspan(
                *self.interval, color="C2", alpha=0.12, lw=0, label=label, zorder=0
            )
        radius = np.sqrt(sizes) / 2.0  # marker radius in points: arrows end at the rim
        self.arrows_ = [
            ax.annotate(
                "",
                xy=(1.0, ml),
                xytext=(0.0, npool),
                zorder=1,
                arrowprops=dict(
                    arrowstyle="-|>",
                    color="0.45",
                    alpha=0.55,
                    lw=0.8,
                    shrinkA=r,
                    shrinkB=r + 0.5,
                    mutation_scale=9,
                ),
            )
            for npool, ml, r in zip(self.no_pooling, self.multilevel, radius)
        ]
        style = {
            "alpha": 0.7,
            "edgecolor": "white",
            "linewidth": 0.5,
            "zorder": 2,
            **kwargs,
        }
        self.points_ = [
            ax.scatter(
                np.full(len(values), x), values, s=sizes, **{"color": color, **style}
            )
            for x, values, color in (
                (0.0, self.no_pooling, "C0"),
                (1.0, self.multilevel, "C1"),
            )
        ]
        self.population_line_ = ax.axhline(
            self.population_mean,
            color="C3",
            ls="--",
            lw=1.2,
            zorder=1.5,
            label=f"population mean E[θ] = {self.population_mean:.3f}",
        )
        ax.set_xlim(-0.35, 1.35)
        ax.set_xticks(
            [0.0, 1.0],
            ["no pooling\n(own proportion)", "partial pooling\n(multilevel)"],
        )
        ax.set_ylabel("θ (success probability)")
        ax.set_title(f"Shrinkage of {len(self.groups)} {self.group_name} estimates")
        handles, labels = ax.get_legend_handles_labels()
        if len(self.trials) and self.trials.max() > self.trials.min():
            top = self.trials.max()
            size_handles, size_labels = self.points_[0].legend_elements(
                prop="sizes",
                num=3,
                color="0.5",
                alpha=0.6,
                func=lambda s: trials_of_size(s, top),
            )
            handles += size_handles
            labels += [f"{lab} trials" for lab in size_labels]
        ax.legend(handles, labels, loc="upper right", fontsize="small", framealpha=0.8)
        self.ax_, self.figure_ = ax, fig
        return self
