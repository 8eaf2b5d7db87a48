"""FunnelDisplay: observed proportions against a new group's prediction limits."""

from collections.abc import Iterable
from numbers import Real

import numpy as np
import pandas as pd

from .._inputs import _show
from ._base import check_level, check_matplotlib, final_estimator, get_axes, group_label

MAX_INTEGER_GRID = 200  # more numbers of trials than this: a log-spaced grid
LOG_GRID_POINTS = 100
MAX_LABELS = 25  # more positions of flagged points than this: no labels


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {_show(value)}.")
    return bool(value)


def _check_levels(levels):
    """``levels`` as a sorted tuple of distinct floats in (0, 1)."""
    if isinstance(levels, Real) and not isinstance(levels, bool):
        levels = (levels,)
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Iterable):
        raise ValueError(
            f"levels must be one number or a sequence of numbers in (0, 1); "
            f"got {_show(levels)}."
        )
    levels = list(levels)
    if not levels:
        raise ValueError("levels must hold at least one number in (0, 1); got none.")
    return tuple(sorted({check_level(v, "every level") for v in levels}))


def _column(side, level):
    return f"{side}_{level:g}"


def _trials_grid(low, high):
    """The numbers of trials to draw the limits at: every integer from ``low``
    to ``high`` when there are at most MAX_INTEGER_GRID, else about
    LOG_GRID_POINTS log-spaced integers."""
    if high - low + 1 <= MAX_INTEGER_GRID:
        return np.arange(low, high + 1), False
    grid = np.geomspace(low, high, LOG_GRID_POINTS)
    return np.unique(np.rint(grid).astype(int)), True


class FunnelDisplay:
    """Funnel plot: observed proportions inside a new group's prediction limits.

    A point per group at (trials, observed proportion), with control limits
    that narrow as the number of trials grows: at ``n`` trials, the central
    ``level`` prediction interval of the successes ``M`` of a *new* group of
    the fitted population, divided by ``n`` (``ppf((1 - level) / 2) / n`` and
    ``ppf((1 + level) / 2) / n`` of
    :meth:`~skre.MultilevelBinomial.predictive_counts`). A new group's success
    probability is drawn from the population (logit-normal), so ``M`` is
    logit-normal-binomial: the limits are **overdispersed**, wider than
    binomial limits around the population mean by the spread ``tau`` between
    groups, and they hold only the binomial noise when ``tau = 0``. A group
    outside them is unusual *for a group of this population*, not merely
    different from the mean. The limits are counts divided by ``n``, so they
    are steps, drawn at every integer ``n`` from the fewest to the most
    trials (at about 100 log-spaced integers, on a log axis, when that range
    holds more than 200 numbers). A horizontal line marks the population mean
    ``E[theta]``.

    Flagged groups are highlighted and labelled: by default those outside the
    outermost limits; with a threshold, those that
    :meth:`~skre.MultilevelBinomial.flag_groups` flags.

    With covariates, the limits are those of a new group at the population's
    covariates (the trials-weighted means of the training data), so a group
    whose covariates differ from the means may lie outside them for its
    covariates alone.

    Use :meth:`from_estimator` to build it from a fitted estimator.

    Parameters
    ----------
    groups : array-like of shape (n_groups,)
        Group labels.
    trials : array-like of shape (n_groups,)
        Trials per group (x).
    observed : array-like of shape (n_groups,)
        Observed proportions (y).
    limits : DataFrame
        Indexed by the number of trials ``n``, with columns ``lower_<level>``
        and ``upper_<level>`` (e.g. ``lower_0.95``) for each of ``levels``:
        the limits as proportions.
    population_mean : float
        ``E[theta]`` of a new group (the horizontal line).
    levels : tuple of float, default=(0.95, 0.998)
        Coverage of the limits, in increasing order.
    flagged : array-like, default=()
        Labels of the groups to highlight.
    flag_rule : str, default=None
        How the flagged groups were chosen (for the legend).
    label_flagged : bool, default=True
        Label the flagged points with their group label (not when they lie
        at more than 25 positions: the labels would be unreadable).
    log_x : bool, default=False
        Draw the trials on a log scale.
    estimator_name : str, default=None
        Name for the title.
    group_name : str, default="group"
        What a group is called in labels (the group column's name).

    Attributes
    ----------
    points_ : PathCollection
        The groups' points, ``get_offsets()`` their (trials, observed proportion).
    flagged_points_ : PathCollection or None
        The flagged groups' points, drawn over ``points_``.
    labels_ : list of Annotation
        One label per position of flagged points (groups with the same
        trials and proportion share one).
    limit_lines_ : dict
        ``{level: (lower, upper)}``, the step lines (Line2D) of each level.
    mean_line_ : Line2D
        The horizontal line at the population mean.
    limits_ : DataFrame
        The limits drawn (``limits``).
    flagged_ : Index
        Labels of the flagged groups.
    ax_ : Axes
        The axes drawn on.
    figure_ : Figure
        The figure holding ``ax_``.

    See Also
    --------
    CaterpillarDisplay
        Every group's estimate with its interval.
    PopulationDisplay
        The distribution of a new group's theta.
    skre.MultilevelBinomial.predictive_counts
        The distribution the limits come from.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> from skre.plotting import FunnelDisplay
    >>> X, y = load_rats(return_X_y=True)
    >>> m4 = MultilevelBinomial(group="batch").fit(X, y)
    >>> disp = FunnelDisplay.from_estimator(m4)
    >>> disp.limits_.loc[14].round(3).to_dict()  # 14 rats: 0 to 6 tumours (95%)
    {'lower_0.95': 0.0, 'upper_0.95': 0.429, 'lower_0.998': 0.0, 'upper_0.998': 0.643}
    >>> list(disp.flagged_)  # no batch outside the 99.8% limits
    []
    >>> disp = FunnelDisplay.from_estimator(m4, threshold=0.2, fdr=0.1)
    >>> list(disp.flagged_)  # probably above 0.2 (Bayesian FDR 10%)
    [67, 68, 69]
    """

    def __init__(
        self,
        *,
        groups,
        trials,
        observed,
        limits,
        population_mean,
        levels=(0.95, 0.998),
        flagged=(),
        flag_rule=None,
        label_flagged=True,
        log_x=False,
        estimator_name=None,
        group_name="group",
    ):
        self.groups = np.asarray(groups)
        self.trials = np.asarray(trials, dtype=float)
        self.observed = np.asarray(observed, dtype=float)
        self.limits = limits
        self.population_mean = float(population_mean)
        self.levels = tuple(levels)
        self.flagged = pd.Index(flagged)
        self.flag_rule = flag_rule
        self.label_flagged = label_flagged
        self.log_x = log_x
        self.estimator_name = estimator_name
        self.group_name = group_name

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        levels=(0.95, 0.998),
        threshold=None,
        fdr=0.05,
        include_parameter_uncertainty=False,
        label_flagged=True,
        ax=None,
        **kwargs,
    ):
        """Draw the funnel plot of a fitted multilevel estimator.

        Parameters
        ----------
        estimator : MultilevelBinomial
            A fitted multilevel estimator (any ``method``, ``"bayes"`` too), or
            a Pipeline ending in one. Complete and no pooling have no
            population of groups, so no limits for a new group: ValueError.
        levels : float or sequence of float, default=(0.95, 0.998)
            Coverage of the prediction limits drawn, each in (0, 1).
        threshold : float, array-like or Series, default=None
            None: flag the groups outside the outermost limits (their count
            below the lower or above the upper limit at their own trials).
            Otherwise flag the groups that ``estimator.flag_groups(threshold,
            fdr=fdr)`` flags: probably above ``threshold``, with the Bayesian
            false discovery rate ``fdr``.
        fdr : float, default=0.05
            The false discovery rate of ``flag_groups``, in (0, 1) (used with a
            ``threshold``).
        include_parameter_uncertainty : bool, default=False
            Mix the limits (and the flags) over the posterior of the fitted
            parameters instead of taking them as known; see
            :meth:`~skre.MultilevelBinomial.predictive_counts`. Slower: each
            number of trials then mixes over the posterior's nodes (about
            0.1 s each on the rats data).
        label_flagged : bool, default=True
            Label the flagged points with their group label (not when they lie
            at more than 25 positions: the labels would be unreadable).
        ax : Axes, default=None
            Axes to draw on; a new figure if None.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        FunnelDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).

        Raises
        ------
        ValueError
            For an estimator without a population of groups, bad ``levels``
            or ``fdr``, groups with a number of trials that is not whole (a
            fit with ``sample_weight``), and as ``flag_groups`` and
            ``predictive_counts``.
        """
        check_matplotlib(f"{cls.__name__}.from_estimator")
        est = final_estimator(estimator)
        if not (hasattr(est, "population_") and hasattr(est, "predictive_counts")):
            raise ValueError(
                f"FunnelDisplay needs a fitted MultilevelBinomial; got "
                f"{type(est).__name__}, which models no population of groups, so "
                "there is no distribution of a new group's count to draw the "
                "funnel's limits from. Fit MultilevelBinomial on the same data."
            )
        levels = _check_levels(levels)
        fdr = check_level(fdr, "fdr")
        label_flagged = _check_bool("label_flagged", label_flagged)
        _check_bool("include_parameter_uncertainty", include_parameter_uncertainty)
        table = est.group_estimates()
        trials = table["trials"].to_numpy()
        successes = table["successes"].to_numpy()
        whole = trials == np.floor(trials)
        if not whole.all():
            at = int(np.flatnonzero(~whole)[0])
            raise ValueError(
                f"FunnelDisplay compares counts, so it needs a whole number of "
                f"trials per group; group {_show(table.index[at])} has "
                f"{trials[at]:g} (a fit with sample_weight?)."
            )
        n_groups = trials.astype(int)
        grid, log_x = _trials_grid(max(int(n_groups.min()), 1), int(n_groups.max()))
        ns = np.union1d(grid, n_groups[n_groups > 0])
        tails = [q for v in levels for q in ((1 - v) / 2, (1 + v) / 2)]
        counts = np.array(
            [
                est.predictive_counts(
                    int(n), include_parameter_uncertainty=include_parameter_uncertainty
                ).ppf(tails)
                for n in ns
            ],
            dtype=float,
        ).reshape(len(ns), len(tails))
        columns = [_column(side, v) for v in levels for side in ("lower", "upper")]
        limits = pd.DataFrame(
            counts / ns[:, None], index=pd.Index(ns, name="trials"), columns=columns
        )
        if threshold is None:
            at = {n: i for i, n in enumerate(ns)}
            rows = np.array([at.get(n, -1) for n in n_groups])
            lo, hi = counts[rows, -2], counts[rows, -1]
            outside = (n_groups > 0) & ((successes < lo) | (successes > hi))
            flagged = table.index[outside]
            rule = f"outside the {100 * levels[-1]:g}% limits"
        else:
            flags = est.flag_groups(
                threshold,
                fdr=fdr,
                include_parameter_uncertainty=include_parameter_uncertainty,
            )
            flagged = flags.index[flags["flagged"].to_numpy()]
            shown = (
                f"{threshold:g}" if isinstance(threshold, Real) else "the thresholds"
            )
            rule = f"flagged: θ > {shown}, FDR {fdr:g}"
        disp = cls(
            groups=table.index.to_numpy(),
            trials=trials,
            observed=table["observed"].to_numpy(),
            limits=limits,
            population_mean=est.population_.mean(),
            levels=levels,
            flagged=flagged,
            flag_rule=rule,
            label_flagged=label_flagged,
            log_x=log_x,
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
            Passed to ``ax.scatter`` for the groups' points.

        Returns
        -------
        FunnelDisplay
            The display, with its artists (``ax_``, ``figure_`` and the rest).
        """
        created = ax is None
        ax, fig = get_axes(f"{type(self).__name__}.plot", ax, figsize=(8.4, 4.8))
        if created:  # room for the legend, right of the axes
            fig.set_layout_engine("constrained")
        noun = self.group_name
        n = self.limits.index.to_numpy(dtype=float)
        self.limit_lines_ = {}
        styles = ["--", "-", ":", "-."]
        for i, level in enumerate(reversed(self.levels)):  # outermost first
            style = {
                "where": "mid",
                "color": "0.35",
                "lw": 1.2,
                "ls": styles[i % len(styles)],
            }
            (lower,) = ax.step(
                n,
                self.limits[_column("lower", level)],
                label=f"{100 * level:g}% limits for a new {noun}",
                **style,
            )
            (upper,) = ax.step(n, self.limits[_column("upper", level)], **style)
            self.limit_lines_[level] = (lower, upper)
        self.mean_line_ = ax.axhline(
            self.population_mean,
            color="C2",
            lw=1.2,
            label=f"population mean {self.population_mean:.3f}",
        )
        style = {
            "s": 22,
            "color": "C0",
            "alpha": 0.75,
            "zorder": 3,
            "label": f"observed proportion, one per {noun} ({len(self.groups)})",
            **kwargs,
        }
        self.points_ = ax.scatter(self.trials, self.observed, **style)
        mask = np.isin(self.groups, self.flagged.to_numpy())
        self.flagged_points_ = None
        if mask.any():
            self.flagged_points_ = ax.scatter(
                self.trials[mask],
                self.observed[mask],
                s=60,
                facecolors="none",
                edgecolors="C3",
                linewidths=1.6,
                zorder=4,
                label=f"{self.flag_rule} ({int(mask.sum())})"
                if self.flag_rule
                else f"flagged ({int(mask.sum())})",
            )
        if self.log_x:
            ax.set_xscale("log")
        values = np.concatenate(
            [self.observed, self.limits.to_numpy().ravel(), [self.population_mean]]
        )
        lo, hi = np.nanmin(values), np.nanmax(values)
        pad = 0.08 * max(hi - lo, 1e-3)  # room for the labels of flagged points
        ax.set_ylim(max(lo - pad, -0.03), min(hi + pad, 1.03))
        ax.set_xlabel("trials")
        ax.set_ylabel("observed proportion")
        name = f"{self.estimator_name}: " if self.estimator_name else ""
        ax.set_title(f"{name}funnel plot by {noun}")
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
            fontsize="small",
        )
        spots = len(set(zip(self.trials[mask], self.observed[mask])))
        self.labels_ = []
        if self.label_flagged and 0 < spots <= MAX_LABELS:  # last: the layout is set
            self.labels_ = self._label(ax, mask)
        self.limits_ = self.limits
        self.flagged_ = self.flagged
        self.ax_, self.figure_ = ax, fig
        return self

    def _label(self, ax, mask):
        """One label per position of flagged points (groups with the same
        counts share it), above high points and below low ones, moved to the
        first nearby place where it overlaps no label placed before it nor a
        point (else to the place it overlaps least)."""
        from matplotlib.transforms import Bbox

        spots = {}
        for g, x, y in zip(self.groups[mask], self.trials[mask], self.observed[mask]):
            spots.setdefault((x, y), []).append(str(g))
        fig = ax.figure
        ax.autoscale_view()
        engine = fig.get_layout_engine()
        if engine is not None:  # the axes' final place, before measuring
            engine.execute(fig)
        renderer = fig.canvas.get_renderer()
        r = 0.5 * np.sqrt(60) * fig.dpi / 72  # a flagged marker's radius, pixels
        centres = ax.transData.transform(np.column_stack([self.trials, self.observed]))
        points = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in centres]
        placed, labels = [], []
        for (x, y), names in sorted(spots.items()):
            sign = 1 if y >= self.population_mean else -1
            label = ax.annotate(
                ", ".join(names),
                (x, y),
                xytext=(0, 0),
                textcoords="offset points",
                fontsize=7,
                color="C3",
                zorder=5,
            )
            best = None
            for dx, dy in _places(sign):
                label.set_position((dx, dy))
                label.set_ha("center" if dx == 0 else ("left" if dx > 0 else "right"))
                label.set_va("center" if dy == 0 else ("bottom" if dy > 0 else "top"))
                box = label.get_window_extent(renderer).padded(1)
                cost = 100 * sum(_area(box, b) for b in placed) + sum(
                    _area(box, b) for b in points
                )
                if best is None or cost < best[0]:
                    best = (cost, dx, dy, box)
                if cost == 0:
                    break
            _, dx, dy, box = best
            label.set_position((dx, dy))
            label.set_ha("center" if dx == 0 else ("left" if dx > 0 else "right"))
            label.set_va("center" if dy == 0 else ("bottom" if dy > 0 else "top"))
            placed.append(box)
            labels.append(label)
        return labels


def _places(sign):
    """Offsets (points) to try for a label: beside the point on its side of
    the mean (``sign``), farther out, then on the other side."""
    for d in (5, 13, 21):
        yield from ((0, sign * d), (6, sign * d), (-6, sign * d))
    yield from ((7, 0), (-7, 0))
    for d in (5, 13):
        yield from ((0, -sign * d), (6, -sign * d), (-6, -sign * d))


def _area(a, b):
    """Area of the overlap of two Bboxes (0 when apart)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)
