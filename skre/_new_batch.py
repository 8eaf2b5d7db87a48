"""A new batch against the fitted history: its predictive count distribution
and the historical-control test (:class:`NewBatchMixin`, on
:class:`~skre.MultilevelBinomial`).

A new group's effect is drawn from the population ``N(0, tau^2)``, so the
successes ``M`` of its rows follow a logit-normal-binomial distribution,
computed by the trapezoid rule over the effect (spectrally accurate for this
smooth integrand, with a step fitted to the trials; the rows' binomials
convolved). A 25-node adaptive rule per count was tried and dropped: with a
large tau and few trials the integrand is a cut-off normal, which it
integrates to only 3e-4 (tau 12.5, 5 trials).
With parameter uncertainty the distribution is mixed over the posterior of the
hyperparameters on the nested grid of :mod:`skre._core.hyperpost` (an ML
fit: its reference posterior, flat priors on the intercept and slopes and a
``HalfNormal(1)`` prior on tau; see
:meth:`~skre.MultilevelBinomial.exceedance`).
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._bayes import BayesFit
from ._core.decisions import (
    bh_adjust,
    holm_adjust,
    mixture_tails,
    new_batch_pmf,
)
from ._decisions import check_flag
from ._fit_result import DegenerateFit
from ._group_dists import degenerate_error, posterior_method, reference_posterior
from ._inputs import _show
from ._intervals import check_level
from ._validation import prepare, split_X

PLUG_IN_NEW = "plug-in: the fitted intercept, slopes and tau taken as known"
ALTERNATIVES = ("greater", "less", "two-sided")
CORRECTIONS = ("holm", "bonferroni", "bh", None)


@dataclass(frozen=True)
class PredictiveCounts:
    """The distribution of a new group's successes out of its trials.

    Returned by :meth:`MultilevelBinomial.predictive_counts`: the successes
    ``M`` of a new group of the fitted population with ``trials`` trials
    (logit-normal-binomial), as a frozen discrete distribution on
    ``0..trials``.

    Parameters
    ----------
    trials : int
        The new group's trials.
    probabilities : ndarray of shape (trials + 1,)
        ``P(M = k)`` for ``k = 0..trials``.
    method : str
        How the parameters were treated (plug-in or integrated over).

    Examples
    --------
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> m = MultilevelBinomial(group="batch").fit(X, y)
    >>> d = m.predictive_counts(14)
    >>> round(d.mean(), 3), d.interval(0.95)
    (2.011, (0, 6))
    >>> round(float(d.sf(3)), 4)  # P(M >= 4)
    0.176
    """

    trials: int
    probabilities: np.ndarray = field(repr=False)
    method: str

    def pmf(self, k):
        """``P(M = k)``.

        Parameters
        ----------
        k : int or array-like
            Counts (0 outside ``0..trials`` and at non-integers).

        Returns
        -------
        float or ndarray
            The probabilities.
        """
        k = np.asarray(k)
        inside = (k >= 0) & (k <= self.trials) & (k == np.floor(k))
        idx = np.clip(np.where(inside, k, 0), 0, self.trials).astype(int)
        return np.where(inside, self.probabilities[idx], 0.0)[()]

    def cdf(self, k):
        """``P(M <= k)``.

        Parameters
        ----------
        k : float or array-like
            Counts.

        Returns
        -------
        float or ndarray
            The probabilities.
        """
        c = np.cumsum(self.probabilities)
        k = np.floor(np.asarray(k, dtype=float))
        idx = np.clip(k, 0, self.trials).astype(int)
        return np.where(k < 0, 0.0, np.minimum(c[idx], 1.0))[()]

    def sf(self, k):
        """``P(M > k)``, summed from the upper tail (no cancellation).

        Parameters
        ----------
        k : float or array-like
            Counts; ``sf(m - 1)`` is ``P(M >= m)``.

        Returns
        -------
        float or ndarray
            The probabilities.
        """
        tail = np.r_[np.cumsum(self.probabilities[::-1])[::-1], 0.0]
        k = np.floor(np.asarray(k, dtype=float))
        idx = np.clip(k + 1, 0, self.trials + 1).astype(int)
        return np.where(k < 0, 1.0, np.minimum(tail[idx], 1.0))[()]

    def ppf(self, q):
        """The smallest ``k`` with ``P(M <= k) >= q``.

        Parameters
        ----------
        q : float or array-like
            Probabilities in [0, 1].

        Returns
        -------
        int or ndarray
            The quantiles.
        """
        c = np.cumsum(self.probabilities)
        q = np.asarray(q, dtype=float)
        k = np.searchsorted(c, q * (1 - 1e-12), side="left")
        return np.minimum(k, self.trials)[()]

    def mean(self):
        """``E[M]``.

        Returns
        -------
        float
            The mean.
        """
        return float(np.arange(self.trials + 1) @ self.probabilities)

    def var(self):
        """``Var[M]``.

        Returns
        -------
        float
            The variance.
        """
        k = np.arange(self.trials + 1)
        return float(((k - self.mean()) ** 2) @ self.probabilities)

    def std(self):
        """Standard deviation of ``M``.

        Returns
        -------
        float
            The standard deviation.
        """
        return float(np.sqrt(self.var()))

    def interval(self, level=0.95, alternative="two-sided"):
        """A prediction interval ``(lo, hi)`` of the new group's successes.

        Parameters
        ----------
        level : float, default=0.95
            The least coverage.
        alternative : {"two-sided", "less", "greater"}, default="two-sided"
            ``"two-sided"``: ``(ppf(a), ppf(1 - a))``, ``a = (1 - level) / 2``;
            ``"less"``: ``(0, ppf(level))``, an upper prediction limit;
            ``"greater"``: ``(k, trials)``, the largest ``k`` with
            ``P(M >= k) >= level``, a lower one.

        Returns
        -------
        tuple of int
            ``(lo, hi)``, covering at least ``level``.
        """
        check_level(level)
        if alternative == "two-sided":
            a = (1 - level) / 2
            return int(self.ppf(a)), int(self.ppf(1 - a))
        if alternative == "less":
            return 0, int(self.ppf(level))
        if alternative == "greater":
            at_least = self.sf(np.arange(-1, self.trials))  # P(M >= k), k = 0..n
            k = int(np.flatnonzero(at_least >= level * (1 - 1e-12))[-1])
            return k, int(self.trials)
        raise ValueError(
            f"alternative must be one of {ALTERNATIVES}; got {_show(alternative)}."
        )


@dataclass(frozen=True)
class HistoricalControlTest:
    """The outcome of :meth:`MultilevelBinomial.historical_control_test`.

    Parameters
    ----------
    pvalue : float or ndarray
        The predictive p-value of the one new group, or the adjusted p-values
        of several (in the order of ``table``).
    table : DataFrame
        One row per new group: ``trials``, ``successes``, ``expected`` (the
        predictive mean of the successes), ``pvalue`` (unadjusted) and
        ``adjusted``.
    alternative : str
        ``"greater"``, ``"less"`` or ``"two-sided"``.
    correction : str or None
        The multiplicity correction over new groups.
    method : str
        How the fitted parameters were treated.

    Examples
    --------
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> history = X["batch"] <= 70
    >>> m = MultilevelBinomial(group="batch").fit(X[history], y[history])
    >>> test = m.historical_control_test(
    ...     X[~history], y[~history], include_parameter_uncertainty=False
    ... )
    >>> round(test.pvalue, 5)
    0.17256
    """

    pvalue: object
    table: pd.DataFrame
    alternative: str
    correction: object
    method: str

    def __str__(self):
        head = (
            f"Historical-control test ({self.alternative}), "
            f"correction: {self.correction}\nmethod: {self.method}\n"
        )
        return head + self.table.to_string()


def _nodes(fit, include_parameter_uncertainty):
    """(weight, params) pairs the answer mixes over, and the method's name."""
    if isinstance(fit, BayesFit) or include_parameter_uncertainty:
        weights, params = reference_posterior(fit).node_params
        return list(zip(weights, params)), posterior_method(fit)
    return [(1.0, fit.params)], PLUG_IN_NEW


def _check_trials(trials, name="trials"):
    t = np.asarray(trials, dtype=float)
    if (
        t.size == 0
        or np.any(~np.isfinite(t))
        or np.any(t < 0)
        or np.any(t != np.floor(t))
    ):
        raise ValueError(
            f"{name} must be non-negative whole numbers (a count distribution); "
            f"got {_show(trials) if t.size == 1 else 'non-integer values'}."
        )
    return t


class NewBatchMixin:
    """predictive_counts and historical_control_test (MultilevelBinomial)."""

    def predictive_counts(self, trials, *, X=None, include_parameter_uncertainty=False):
        """The distribution of a new group's successes out of ``trials``.

        A new group of the fitted population: its effect is drawn from
        ``N(0, tau^2)``, so its successes are logit-normal-binomial. The
        distribution is computed by quadrature to about 1e-12 (the trapezoid
        rule over the effect);
        with ``include_parameter_uncertainty=True`` it is mixed over the
        posterior of the fitted parameters, as :meth:`exceedance` explains
        (``method="bayes"`` fits always are).

        Parameters
        ----------
        trials : int or array-like of int
            The new group's trials: one number (at the population's
            covariates, the trials-weighted means of the training data), or
            one per row of ``X``.
        X : array-like or DataFrame, optional
            The new group's rows, with the columns of fit (the group column
            too, with any label: it is not read), when their covariates
            differ from the means.
        include_parameter_uncertainty : bool, default=False
            Mix over the posterior of the parameters.

        Returns
        -------
        PredictiveCounts
            Frozen distribution with ``pmf``, ``cdf``, ``sf``, ``ppf``,
            ``mean``, ``var`` and ``interval``.

        Raises
        ------
        ValueError
            On trials that are not whole numbers; a fit on data that are all
            failures (or all successes); parameter uncertainty with more than
            2 covariates.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> m.predictive_counts(20).interval(0.9, alternative="less")
        (0, 6)
        """
        check_is_fitted(self)
        check_flag("include_parameter_uncertainty", include_parameter_uncertainty)
        fit = self._fit_result
        if isinstance(fit, DegenerateFit):
            raise degenerate_error(fit)
        design = fit.design
        if X is None:
            t = _check_trials(trials)
            if t.size != 1:
                raise ValueError(
                    "trials must be one number without X (one per row of X with it)."
                )
            Z = design.mean_row()
        else:
            _, Z, _ = split_X(self, X, reset=False)
            t = _check_trials(trials)
            if t.size == 1:
                t = np.full(len(Z), float(t.ravel()[0]))
            if t.shape != (len(Z),):
                raise ValueError(
                    f"trials must be one number or one per row of X ({len(Z)} rows)."
                )
        t = np.atleast_1d(t)
        nodes, method = _nodes(fit, include_parameter_uncertainty)
        total = int(t.sum())
        pmf = np.zeros(total + 1)
        for w, params in nodes:
            offsets = design.linear_predictor(Z, params[-2], params[:-2])
            pmf += w * new_batch_pmf(offsets, t, params[-1])
        return PredictiveCounts(total, pmf / pmf.sum(), method)

    def historical_control_test(
        self,
        X_new,
        y_new,
        *,
        alternative="greater",
        include_parameter_uncertainty=True,
        correction="holm",
    ):
        """Test new batches against the fitted history (historical controls).

        The fitted model is the history: groups (batches) whose success
        probabilities vary as ``N(0, tau^2)`` on the logit scale. Each new
        group's p-value is the predictive probability, for a new batch of the
        history with the same trials (and covariates), of successes at least
        as extreme as observed: ``"greater"`` ``P(M >= m)``, ``"less"``
        ``P(M <= m)``, ``"two-sided"`` ``min(1, 2 min(P(M >= m), P(M <= m)))``.
        This is the prediction-based test of Tarone (1982) with the
        logit-normal model in place of the beta-binomial; unlike "within the
        historical range" it has its nominal size (see the user guide).

        By default the uncertainty of the fitted parameters is included: the
        predictive probability is averaged over their posterior
        (``method="bayes"`` fits: theirs; ML fits: the reference posterior,
        flat priors on the intercept and slopes and a ``HalfNormal(1)`` prior on tau;
        MAP fits: their own priors). ``include_parameter_uncertainty=False``
        gives the plug-in p-value, which ignores it and is too small with few
        historical groups.

        Parameters
        ----------
        X_new : array-like or DataFrame
            Rows of the new groups, as in fit; their group labels must not be
            among the fitted groups.
        y_new : array-like
            Their outcomes, as in fit (binary rows or [successes, trials]).
        alternative : {"greater", "less", "two-sided"}, default="greater"
            The direction of the departure tested.
        include_parameter_uncertainty : bool, default=True
            Average over the posterior of the fitted parameters.
        correction : {"holm", "bonferroni", "bh"} or None, default="holm"
            Multiplicity correction over several new groups (Holm's and
            Bonferroni's control the family-wise error rate, "bh" the false
            discovery rate); one new group is not adjusted.

        Returns
        -------
        HistoricalControlTest
            ``pvalue`` (one new group: its p-value; several: the adjusted
            p-values), ``table`` per new group, ``method``.

        Raises
        ------
        ValueError
            On a new group that was in the fitted history; trials that are
            not whole numbers; a bad ``alternative`` or ``correction``; a fit
            on data that are all failures (or all successes); parameter
            uncertainty with more than 2 covariates.

        Examples
        --------
        The rats: batches 1-70 are the historical controls, batch 71 (4
        tumours in 14 rats) the current experiment.

        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> history = X["batch"] <= 70
        >>> m = MultilevelBinomial(group="batch").fit(X[history], y[history])
        >>> test = m.historical_control_test(X[~history], y[~history])
        >>> round(test.pvalue, 4)
        0.1768
        """
        check_is_fitted(self)
        check_flag("include_parameter_uncertainty", include_parameter_uncertainty)
        if alternative not in ALTERNATIVES:
            raise ValueError(
                f"alternative must be one of {ALTERNATIVES}; got {_show(alternative)}."
            )
        if correction not in CORRECTIONS:
            raise ValueError(
                f"correction must be one of {CORRECTIONS}; got {_show(correction)}."
            )
        fit = self._fit_result
        if isinstance(fit, DegenerateFit):
            raise degenerate_error(
                fit, "the history gives no distribution for a new batch's count"
            )
        rows = prepare(self, X_new, y_new, reset=False)
        design = fit.design
        if rows.labels is None:
            raise ValueError(
                "X_new needs the group column, to tell the new groups apart."
            )
        codes = design.codes_for(rows.labels, type(self).__name__)
        if np.any(codes >= 0):
            seen = pd.unique(rows.labels[codes >= 0])
            raise ValueError(
                f"group(s) {[*map(_show, seen[:5])]} of X_new are in the fitted "
                "history; a historical-control test compares new groups with it. "
                "Refit without them, or give them new labels."
            )
        _check_trials(rows.trials, "the trials of y_new")
        keys, labels = pd.factorize(pd.Series(rows.labels), sort=False)
        nodes, method = _nodes(fit, include_parameter_uncertainty)
        out = []
        for k in range(len(labels)):
            sel = keys == k
            Z, n = rows.Z[sel], rows.trials[sel]
            m = float(rows.successes[sel].sum())
            weights = np.array([w for w, _ in nodes])
            offsets = np.array(
                [design.linear_predictor(Z, q[-2], q[:-2]) for _, q in nodes]
            )
            taus = np.array([q[-1] for _, q in nodes])
            ge, le, mean = mixture_tails(offsets, n, m, taus, weights / weights.sum())
            p = {"greater": ge, "less": le}.get(alternative, min(1.0, 2 * min(ge, le)))
            out.append((n.sum(), m, mean, p))
        table = pd.DataFrame(
            out,
            columns=["trials", "successes", "expected", "pvalue"],
            index=pd.Index(labels, name=self._group_index().name),
        )
        p = table["pvalue"].to_numpy()
        if len(p) == 1 or correction is None:
            adjusted = p.copy()
        elif correction == "holm":
            adjusted = holm_adjust(p)
        elif correction == "bonferroni":
            adjusted = np.minimum(1.0, p * len(p))
        else:
            adjusted = bh_adjust(p)
        table["adjusted"] = adjusted
        pvalue = float(adjusted[0]) if len(p) == 1 else adjusted
        return HistoricalControlTest(
            pvalue, table, alternative, correction if len(p) > 1 else None, method
        )
