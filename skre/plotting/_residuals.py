"""Residual checks: a normal QQ plot and residuals against fitted values."""

import numpy as np
from scipy import stats

from ._base import check_matplotlib, final_estimator


def _fitted(est, X, population):
    """Fitted probabilities on the scale the residuals use: the population
    average (every group new) for the multilevel model's quantile residuals,
    which integrate over the population; ``predict_proba`` otherwise."""
    if not (population and hasattr(est, "tau_")):
        return est.predict_proba(X)[:, 1]
    from .._validation import split_X

    _, Z, _ = split_X(est, X, reset=False)
    codes = np.full(len(Z), -1)
    return np.exp(est._fit_result.log_proba(codes, Z)[1])


class ResidualDisplay:
    """Quantile residuals: a normal QQ plot beside residuals against fitted values.

    Randomised quantile residuals (``estimator.residuals(X, y)``) are N(0, 1)
    when the model is right and its parameters are the true ones, whatever the
    number of trials per row; at fitted parameters, which have adapted to the
    same data, only approximately. A model that fits shows points near the QQ
    line and a structureless band around 0 in the second panel.
    Curvature in the QQ plot means the spread is wrong (over- or
    under-dispersion); a trend against the fitted probability means the mean
    is wrong (a missing covariate, the wrong link).

    Use :meth:`from_estimator` to build it from a fitted estimator.

    Parameters
    ----------
    residuals : array-like of shape (n_rows,)
        Quantile (or Pearson, deviance) residuals.
    fitted : array-like of shape (n_rows,)
        Fitted success probabilities of the same rows (for the multilevel
        model's quantile residuals, which integrate over the population, the
        population-averaged probability).
    kind : str, default="quantile"
        Which residuals (for the labels).
    trials : array-like of shape (n_rows,), default=None
        Trials of each row: the second panel's x axis when every row has the
        same fitted probability (an intercept-only model).
    estimator_name : str, default=None
        Name for the title.

    Attributes
    ----------
    qq_points_ : Line2D
        The residuals' order statistics against normal quantiles.
    qq_line_ : Line2D
        The identity line.
    scatter_ : PathCollection
        Residuals against fitted probabilities.
    ks_pvalue_ : float
        Kolmogorov-Smirnov test of the residuals against N(0, 1) (meaningful
        for quantile residuals; shown in the title). It takes the fitted
        parameters as the true ones, so it rejects less often than its level.
    axes_ : ndarray of Axes
        The two panels: the QQ plot and the residuals against fitted values.
    figure_ : Figure
        The figure holding them.

    See Also
    --------
    skre.MultilevelBinomial.residuals
        The residuals drawn here.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> from skre.plotting import ResidualDisplay
    >>> X, y = load_rats(return_X_y=True)
    >>> m4 = MultilevelBinomial(group="batch").fit(X, y)
    >>> disp = ResidualDisplay.from_estimator(m4, X, y, random_state=0)
    >>> len(disp.residuals), bool(disp.ks_pvalue_ > 0.05)
    (71, True)
    """

    def __init__(
        self, *, residuals, fitted, kind="quantile", trials=None, estimator_name=None
    ):
        self.residuals = np.asarray(residuals, dtype=float)
        self.fitted = np.asarray(fitted, dtype=float)
        self.kind = kind
        self.trials = None if trials is None else np.asarray(trials, dtype=float)
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(
        cls, estimator, X, y, *, kind="quantile", random_state=None, ax=None, **kwargs
    ):
        """Compute the residuals of ``(X, y)`` and plot them.

        Parameters
        ----------
        estimator : fitted estimator
            A skre estimator, or a Pipeline ending in one.
        X : array-like or DataFrame of shape (n_samples, n_features)
            As in ``fit``.
        y : array-like of shape (n_samples,) or (n_samples, 2)
            Binary labels or ``[successes, trials]`` counts.
        kind : {"quantile", "pearson", "deviance"}, default="quantile"
            Which residuals.
        random_state : int, numpy Generator or None, default=None
            Seed of the quantile residuals' uniform draws.
        ax : array-like of Axes, default=None
            Two axes to draw on; a new figure with two panels if None.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        ResidualDisplay
            The display, with its artists (``axes_``, ``figure_`` and the rest).
        """
        check_matplotlib(f"{cls.__name__}.from_estimator")
        est = final_estimator(estimator)
        Xt = X
        steps = getattr(estimator, "steps", None)
        if steps:  # transform X as the Pipeline would before its last step
            for _, step in steps[:-1]:
                Xt = step.transform(Xt)
        resid = est.residuals(Xt, y, kind=kind, random_state=random_state)
        fitted = _fitted(est, Xt, population=kind == "quantile")
        arr = np.asarray(y)
        trials = arr[:, 1] if arr.ndim == 2 and arr.shape[1] == 2 else None
        disp = cls(
            residuals=resid,
            fitted=fitted,
            kind=kind,
            trials=trials,
            estimator_name=type(est).__name__,
        )
        return disp.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the display.

        Parameters
        ----------
        ax : array-like of Axes, default=None
            Two axes to draw on; a new figure with two panels if None.
        **kwargs : dict
            Passed to ``ax.scatter`` for the residuals against fitted values.

        Returns
        -------
        ResidualDisplay
            The display, with its artists (``axes_``, ``figure_`` and the rest).
        """
        check_matplotlib(f"{type(self).__name__}.plot")
        own = ax is None
        if own:
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(1, 2, figsize=(9.6, 4.2))
        else:
            ax = np.asarray(ax).ravel()
            if len(ax) != 2:
                raise ValueError("ax must be two Axes: the QQ plot and the scatter.")
            fig = ax[0].figure
        qq, scatter = ax
        r = np.sort(self.residuals[np.isfinite(self.residuals)])
        theory = stats.norm.ppf((np.arange(1, len(r) + 1) - 0.5) / len(r))
        (self.qq_points_,) = qq.plot(theory, r, "o", ms=3.5, alpha=0.7)
        lim = max(np.abs(theory).max(initial=1.0), np.abs(r).max(initial=1.0))
        (self.qq_line_,) = qq.plot([-lim, lim], [-lim, lim], "k--", lw=1)
        qq.set_xlabel("normal quantile")
        qq.set_ylabel(f"{self.kind} residual")
        self.ks_pvalue_ = float(stats.kstest(r, "norm").pvalue) if len(r) else np.nan
        qq.set_title(f"Normal QQ (KS p = {self.ks_pvalue_:.2f})")
        style = {"s": 14, "alpha": 0.6, **kwargs}
        x, xlabel, title = self.fitted, "fitted probability", "Residuals against fitted"
        if np.ptp(self.fitted) < 1e-9:  # intercept-only: one fitted value for all
            if self.trials is not None and np.ptp(self.trials) > 0:
                x, xlabel = self.trials, "trials in the row"
                title = "Residuals against trials (one fitted value)"
            else:
                xlabel = "fitted probability (the same for every row)"
        self.scatter_ = scatter.scatter(x, self.residuals, **style)
        scatter.axhline(0.0, color="k", lw=1)
        for level in (-2.0, 2.0):
            scatter.axhline(level, color="grey", lw=0.8, ls=":")
        scatter.set_xlabel(xlabel)
        scatter.set_ylabel(f"{self.kind} residual")
        scatter.set_title(title)
        if own:  # a figure of its own: name the model, lay it out
            if self.estimator_name:
                fig.suptitle(self.estimator_name)
            fig.tight_layout()
        self.axes_, self.figure_ = np.array([qq, scatter]), fig
        return self
