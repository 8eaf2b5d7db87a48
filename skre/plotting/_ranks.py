"""RankDisplay: each group's rank with its uncertainty."""

import numpy as np

from .._inputs import _show
from ._base import (
    check_matplotlib,
    default_figsize,
    final_estimator,
    get_axes,
    group_label,
)
from ._caterpillar import MAX_TICK_LABELS


class RankDisplay:
    """Each group's rank by success probability, with its rank intervals.

    One row per group, sorted by expected rank (rank 1 at the top): a point at
    the group's expected rank and a bar over its marginal rank interval (the
    ranks it takes with probability ``level``), and, lighter and wider behind
    it, its simultaneous interval: intervals that hold *all* the groups' ranks
    at once with probability ``level``, the honest ones to read when comparing
    many groups. Ranks come from joint Monte Carlo draws of every group's
    success probability (:meth:`~skre.MultilevelBinomial.ranks`). Works for
    all three estimators; complete pooling gives every group the same success
    probability, so every rank is a random tie-break, spread over all ranks.

    Use :meth:`from_estimator` to build it from a fitted estimator.

    Parameters
    ----------
    ranks : DataFrame
        The table of ``ranks()``, indexed by group, with columns
        ``expected_rank``, ``rank_lower``, ``rank_upper``,
        ``simultaneous_lower`` and ``simultaneous_upper``, in plotting order
        (top to bottom); its ``attrs`` may hold ``level`` and ``direction``.
    simultaneous : bool, default=True
        Draw the simultaneous intervals.
    estimator_name : str, default=None
        Name for the title.
    group_name : str, default="group"
        What a group is called in labels (the group column's name).

    Attributes
    ----------
    points_ : Line2D
        The expected ranks (x) at rows ``0, 1, ...`` (y), top to bottom.
    intervals_ : LineCollection
        The marginal rank intervals, one segment per row.
    simultaneous_ : LineCollection or None
        The simultaneous rank intervals (None if not drawn).
    ranks_ : DataFrame
        The ranks table, in plotting order (sorted by expected rank).
    ax_ : Axes
        The axes drawn on.
    figure_ : Figure
        The figure holding ``ax_``.

    See Also
    --------
    CaterpillarDisplay
        Every group's estimate with its interval.
    FunnelDisplay
        Observed proportions against a new group's prediction limits.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> from skre.plotting import RankDisplay
    >>> X, y = load_rats(return_X_y=True)
    >>> m4 = MultilevelBinomial(group="batch").fit(X, y)
    >>> disp = RankDisplay.from_estimator(m4, random_state=0)
    >>> top = disp.ranks_.iloc[0]  # the best expected rank: 7th, 1st to 22nd
    >>> int(disp.ranks_.index[0]), round(top.expected_rank), int(top.rank_upper)
    (69, 7, 22)
    """

    def __init__(
        self, *, ranks, simultaneous=True, estimator_name=None, group_name="group"
    ):
        self.ranks = ranks
        self.simultaneous = simultaneous
        self.estimator_name = estimator_name
        self.group_name = group_name

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        direction="higher",
        level=0.95,
        simultaneous=True,
        n_draws=4000,
        random_state=None,
        include_parameter_uncertainty=False,
        ax=None,
        **kwargs,
    ):
        """Draw every group's rank and its intervals from a fitted estimator.

        Parameters
        ----------
        estimator : CompletePoolingBinomial, NoPoolingBinomial or MultilevelBinomial
            A fitted estimator, or a Pipeline ending in one.
        direction : {"higher", "lower"}, default="higher"
            Rank 1 is the group with the highest success probability, or the
            lowest.
        level : float, default=0.95
            Coverage of the marginal and of the simultaneous rank intervals.
        simultaneous : bool, default=True
            Also draw the simultaneous intervals.
        n_draws : int, default=4000
            Monte Carlo draws of the ranks (at least 100).
        random_state : int, numpy Generator or None, default=None
            Seed of the draws.
        include_parameter_uncertainty : bool, default=False
            Draw over the uncertainty of the fitted parameters too (multilevel
            fits), as in ``ranks``.
        ax : Axes, default=None
            Axes to draw on; a new figure, its height growing with the number
            of groups, if None.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        RankDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).

        Raises
        ------
        ValueError
            As ``estimator.ranks``.
        """
        check_matplotlib(f"{cls.__name__}.from_estimator")
        est = final_estimator(estimator)
        if not isinstance(simultaneous, (bool, np.bool_)):
            raise TypeError(
                f"simultaneous must be True or False; got {_show(simultaneous)}."
            )
        table = est.ranks(
            direction=direction,
            level=level,
            include_parameter_uncertainty=include_parameter_uncertainty,
            n_draws=n_draws,
            random_state=random_state,
        )
        order = np.argsort(table["expected_rank"].to_numpy(), kind="stable")
        disp = cls(
            ranks=table.iloc[order],
            simultaneous=bool(simultaneous),
            estimator_name=type(est).__name__,
            group_name=group_label(est),
        )
        return disp.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the display.

        Parameters
        ----------
        ax : Axes, default=None
            Axes to draw on; a new figure if None. The legend is drawn right
            of the axes: give their figure room for it
            (``layout="constrained"``, or ``bbox_inches="tight"`` when saving).
        **kwargs : dict
            Passed to ``ax.plot`` for the expected ranks.

        Returns
        -------
        RankDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).
        """
        table = self.ranks
        n = len(table)
        created = ax is None
        width, height = default_figsize("caterpillar", n)
        ax, fig = get_axes(
            f"{type(self).__name__}.plot", ax, figsize=(width + 2.6, height)
        )
        if created:  # room for the legend, right of the axes
            fig.set_layout_engine("constrained")
        level = table.attrs.get("level", 0.95)
        direction = table.attrs.get("direction", "higher")
        y = np.arange(n)
        color = kwargs.get("color", "C0")
        self.simultaneous_ = None
        if self.simultaneous:
            self.simultaneous_ = ax.hlines(
                y,
                table["simultaneous_lower"],
                table["simultaneous_upper"],
                color=color,
                alpha=0.25,
                lw=5.0,
                label=f"{100 * level:g}% simultaneous intervals\n"
                "(all the ranks at once)",
            )
        self.intervals_ = ax.hlines(
            y,
            table["rank_lower"],
            table["rank_upper"],
            color=color,
            lw=1.6,
            label=f"{100 * level:g}% rank interval",
        )
        style = {
            "marker": "o",
            "ls": "none",
            "color": color,
            "markersize": 3.5,
            "label": "expected rank",
            **kwargs,
        }
        (self.points_,) = ax.plot(table["expected_rank"].to_numpy(), y, **style)
        ax.set_ylim(n, -1)  # rank 1 at the top
        if n <= MAX_TICK_LABELS:
            ax.set_yticks(
                y, [str(g) for g in table.index], fontsize=8 if n <= 80 else 7
            )
        else:
            ax.set_yticks([])
        ax.set_xlim(0.5, n + 0.5)
        ax.set_ylabel(f"{self.group_name} (sorted by expected rank)")
        which = "highest" if direction == "higher" else "lowest"
        ax.set_xlabel(f"rank (1 = {which} θ)")
        name = f"{self.estimator_name}: " if self.estimator_name else ""
        ax.set_title(f"{name}rank of each {self.group_name}")
        handles = [
            a
            for a in (self.points_, self.intervals_, self.simultaneous_)
            if a is not None
        ]
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
            fontsize="small",
        )
        self.ranks_ = table
        self.ax_, self.figure_ = ax, fig
        return self
