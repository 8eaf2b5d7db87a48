"""Acting on group estimates: exceedance, flags with false-discovery control,
ranks. Public methods of every estimator (:class:`GroupDecisionsMixin`); the
distributions they read are in :mod:`skre._group_dists`."""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._bayes import BayesFit
from ._core.decisions import (
    bayes_qvalues,
    bh_adjust,
    joint_band,
    normal_exceedance,
    rank_draws,
)
from ._fit_result import DegenerateFit, NoPoolingFit, PooledFit
from ._group_dists import (
    binomial_pvalues,
    degenerate_error,
    exceedance,
    group_offsets,
    method_name,
    reference_posterior,
    theta_draws,
)
from ._inputs import _show
from ._intervals import check_level
from ._multilevel_fit import MultilevelFit
from ._simulation_args import check_random_state_seed

#: draws per block when ranking (memory: block x groups doubles)
RANK_BLOCK = 500

BAYES_FDR = (
    "Bayesian FDR: the expected share of false flags among the flagged groups, "
    "given the data and the model (q-values are running means of the sorted "
    "posterior error probabilities)"
)
BH_FDR = (
    "frequentist FDR (Benjamini-Hochberg on exact one-sided binomial p-values; "
    "valid for independent groups)"
)


def check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {_show(value)}.")


def _check_probability(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number in (0, 1); got {_show(value)}.")
    if not 0 < value < 1:  # NaN fails too
        raise ValueError(f"{name} must be in (0, 1); got {_show(value)}.")


def _thresholds(est, threshold, quantile):
    """Each group's threshold (G,) and the scalar one (or None when they differ)."""
    fit = est._fit_result
    if (threshold is None) == (quantile is None):
        raise ValueError(
            "Give exactly one of threshold (a success probability, e.g. 0.2) "
            "and quantile (a group above the population's q-quantile, e.g. 0.9)."
        )
    G = len(est.groups_)
    if quantile is not None:
        _check_probability("quantile", quantile)
        if not isinstance(fit, MultilevelFit):
            raise ValueError(
                f"quantile= needs a population of groups, which "
                f"{type(est).__name__} does not model; give a threshold, or fit "
                "MultilevelBinomial."
            )
        c = float(est.population_.ppf(quantile))
        return np.full(G, c), c
    if isinstance(threshold, (pd.Series, dict)):
        series = pd.Series(threshold, dtype=object)
        labels = pd.Index(est.groups_)
        missing = labels.difference(series.index)
        extra = series.index.difference(labels)
        if len(missing) or len(extra):
            bad = (
                f"no threshold for group(s) {list(missing[:5])}"
                if len(missing)
                else f"group(s) {list(extra[:5])} not seen in fit"
            )
            raise ValueError(
                f"threshold indexed by group label must cover exactly the fitted "
                f"groups: {bad}."
            )
        values = series.reindex(labels).to_numpy()
    else:
        values = np.asarray(threshold, dtype=object)
    if values.ndim == 0:
        _check_probability("threshold", values.item())
        c = float(values.item())
        return np.full(G, c), c
    if values.shape != (G,):
        raise ValueError(
            f"threshold must be one probability or one per group ({G} groups, "
            f"in the order of groups_); got shape {values.shape}."
        )
    for v in values:
        _check_probability("every threshold", v)
    c = values.astype(float)
    return c, (float(c[0]) if np.all(c == c[0]) else None)


def _estimates(fit):
    """What group_estimates reports as each group's estimate."""
    if (
        isinstance(fit, MultilevelFit)
        and not fit.boundary
        and not isinstance(fit, BayesFit)
    ):
        return fit.design.group_mean_probability(
            group_offsets(fit, fit.params), fit.tau * fit.posterior.mode[fit.unit]
        )
    return fit.group_intervals(0.95)[0]


def _new_group(fit, c, include_parameter_uncertainty):
    """P(theta > c) for a new group (multilevel fits), else NaN."""
    if c is None or not isinstance(fit, MultilevelFit):
        return float("nan")
    if (
        fit.boundary
        and not include_parameter_uncertainty
        and not isinstance(fit, BayesFit)
    ):
        a, _, cov = fit.pooled_estimates()
        return float(normal_exceedance(a, np.sqrt(cov[0, 0]), c))
    source = reference_posterior(fit) if include_parameter_uncertainty else fit
    return float(source.population().sf(c))


class GroupDecisionsMixin:
    """exceedance, flag_groups and ranks, on every estimator."""

    def exceedance(
        self, threshold=None, *, quantile=None, include_parameter_uncertainty=False
    ):
        """Probability that each group's success probability exceeds a threshold.

        ``P(theta_g > c | data)`` for every fitted group, where ``theta_g`` is
        the group's success probability as :meth:`group_estimates` reports it
        (with covariates, the trials-weighted mean over its rows).

        * :class:`MultilevelBinomial`: the exact conditional distribution of
          the group's effect given its data (no normal approximation;
          Gauss-Legendre quadrature on each side of the threshold), at the
          fitted parameters (*plug-in*). With
          ``include_parameter_uncertainty=True`` it is averaged over the
          posterior of ``(intercept, slopes, tau)`` on a nested quadrature
          grid: for an ML fit the *reference posterior*, its likelihood with
          flat priors on the intercept and slopes and a ``HalfNormal(1)``
          prior on ``tau`` (a MAP fit: its own priors). A ``method="bayes"`` fit always
          integrates over its posterior (the flag is then moot). At a boundary
          fit (``tau_ == 0``) the plug-in answer is complete pooling's.
          Known limit: where the posterior holds much mass near ``tau = 0``,
          the grid integrates a near-step function of the intercept, and a
          probability for a threshold close to the pooled rate can be off
          by about 0.01 (0.401 for 0.407 measured on 10 groups of 20 trials
          at ``tau_ == 0``); away from it the grid is accurate to 1e-4.
        * :class:`NoPoolingBinomial`: the Jeffreys posterior
          ``Beta(m + 1/2, n - m + 1/2)`` of each group (with a
          ``group_prior``: the exact posterior of its intercept under it), and
          a column ``pvalue``: the exact one-sided binomial p-value
          ``P(M >= m | n, c)`` (``scipy.stats.binomtest``'s, ``"greater"``).
        * :class:`CompletePoolingBinomial`: every group shares the pooled
          fit, so the answer is degenerate: the probability that the pooled
          success probability (at the group's covariates) exceeds ``c``,
          normal on its logit with the Wald covariance.

        Parameters
        ----------
        threshold : float, array-like or Series, optional
            A success probability in (0, 1): one for all groups, one per group
            in the order of ``groups_``, or a Series (or dict) indexed by
            group label covering every fitted group.
        quantile : float, optional
            Instead of ``threshold``: the population's ``quantile``-quantile
            (``population_.ppf(quantile)``), i.e. "a group above 90% of
            groups" for 0.9. Multilevel fits only.
        include_parameter_uncertainty : bool, default=False
            Average over the uncertainty of the fitted parameters (see above).
            Multilevel fits with at most 2 covariates (the grid's limit).

        Returns
        -------
        DataFrame
            Indexed by group label, with columns ``estimate``,
            ``threshold`` and ``probability`` (and ``pvalue`` for no
            pooling). ``attrs["new_group"]`` holds the probability for a new
            group of the population (multilevel fits, one threshold),
            ``attrs["method"]`` how the answer was computed.

        Raises
        ------
        TypeError
            On a threshold, quantile or flag that is not a number (a bool).
        ValueError
            On a threshold outside (0, 1) or of the wrong length; ``quantile``
            without a population; a fit on data that are all failures (or all
            successes); no pooling with covariates and no ``group_prior``;
            parameter uncertainty on a fit with more than 2 covariates.

        See Also
        --------
        flag_groups : Which groups to flag, with false-discovery control.
        ranks : Expected ranks and their intervals.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> ex = m.exceedance(0.25)
        >>> ex.loc[71].round(4).to_dict()
        {'estimate': 0.1994, 'threshold': 0.25, 'probability': 0.2523}
        >>> round(ex.attrs["new_group"], 4)
        0.1063
        """
        check_is_fitted(self)
        check_flag("include_parameter_uncertainty", include_parameter_uncertainty)
        fit = self._fit_result
        c, scalar = _thresholds(self, threshold, quantile)
        method = method_name(fit, include_parameter_uncertainty)
        prob = exceedance(fit, c, include_parameter_uncertainty)
        frame = pd.DataFrame(
            {"estimate": _estimates(fit), "threshold": c, "probability": prob},
            index=self._group_index(),
        )
        if isinstance(fit, NoPoolingFit) and not fit.design.data.Z.shape[1]:
            frame["pvalue"] = binomial_pvalues(fit, c)
        frame.attrs["method"] = method
        frame.attrs["new_group"] = _new_group(
            fit, scalar, include_parameter_uncertainty
        )
        return frame

    def flag_groups(
        self,
        threshold=None,
        *,
        quantile=None,
        fdr=0.05,
        include_parameter_uncertainty=False,
    ):
        """Flag the groups above a threshold, with false-discovery control.

        Flags the groups whose success probability exceeds a threshold,
        controlling the false discovery rate:

        * :class:`MultilevelBinomial` (every fit method): each group's
          posterior error probability (PEP, the local fdr)
          ``pep = P(theta_g <= c | data) = 1 - probability`` from
          :meth:`exceedance`; ``qvalue`` is the mean PEP of the groups at
          least as likely to exceed as this one (ties included, so equal
          groups are flagged alike); the flagged set is
          ``qvalue <= fdr``. This controls the **Bayesian FDR**: given the
          data and the model, the expected share of flagged groups that do
          not exceed ``c`` is at most ``fdr``.
        * :class:`NoPoolingBinomial`: exact one-sided binomial p-values
          ``P(M >= m | n, c)`` with Benjamini-Hochberg adjusted p-values in
          ``qvalue``, flagged where ``qvalue <= fdr``. This controls the
          **frequentist FDR** over repeated data, for independent groups
          (intercept-only data).
        * :class:`CompletePoolingBinomial` has no group effects to flag:
          ValueError.

        Parameters
        ----------
        threshold : float, array-like or Series, optional
            As in :meth:`exceedance`.
        quantile : float, optional
            As in :meth:`exceedance`.
        fdr : float, default=0.05
            The false discovery rate to control, in (0, 1).
        include_parameter_uncertainty : bool, default=False
            As in :meth:`exceedance`.

        Returns
        -------
        DataFrame
            Indexed by group label (fitted order), with columns ``estimate``,
            ``threshold``, ``probability``, ``pep`` (multilevel) or ``pvalue``
            (no pooling), ``qvalue`` and ``flagged``. ``attrs`` holds
            ``fdr``, ``error_rate`` (which rate is controlled), ``method``
            and ``n_flagged``.

        Raises
        ------
        TypeError, ValueError
            As :meth:`exceedance`; ValueError for complete pooling.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> flags = m.flag_groups(0.2, fdr=0.2)
        >>> flags.attrs["n_flagged"], list(flags.index[flags.flagged])
        (4, [67, 68, 69, 70])
        """
        check_is_fitted(self)
        _check_probability("fdr", fdr)
        fit = self._fit_result
        if isinstance(fit, PooledFit):
            raise ValueError(
                "CompletePoolingBinomial gives every group the same fitted model: "
                "there are no group effects to flag. Use MultilevelBinomial "
                "(Bayesian FDR) or NoPoolingBinomial (Benjamini-Hochberg)."
            )
        if isinstance(fit, DegenerateFit):
            raise degenerate_error(fit)
        frame = self.exceedance(
            threshold,
            quantile=quantile,
            include_parameter_uncertainty=include_parameter_uncertainty,
        )
        if isinstance(fit, NoPoolingFit):
            if "pvalue" not in frame:
                raise ValueError(
                    "NoPoolingBinomial flags groups by exact binomial p-values, "
                    "which need intercept-only data (no covariates)."
                )
            frame["qvalue"] = bh_adjust(frame["pvalue"].to_numpy())
            rate = BH_FDR
        else:
            frame["pep"] = 1.0 - frame["probability"]
            frame["qvalue"] = bayes_qvalues(frame["pep"].to_numpy())
            rate = BAYES_FDR
        frame["flagged"] = frame["qvalue"] <= fdr
        frame.attrs.update(
            fdr=float(fdr), error_rate=rate, n_flagged=int(frame["flagged"].sum())
        )
        return frame

    def ranks(
        self,
        *,
        direction="higher",
        level=0.95,
        top=None,
        include_parameter_uncertainty=False,
        n_draws=4000,
        random_state=None,
    ):
        """Each group's rank by success probability, with its uncertainty.

        Ranks come from ``n_draws`` joint Monte Carlo draws of every group's
        success probability from the distributions :meth:`exceedance` uses
        (multilevel: each group's exact conditional distribution, by inverse
        CDF, its quantile function tabulated at 1025 probabilities; with
        parameter uncertainty, and for ``method="bayes"`` fits, the draws are
        spread evenly over 32 nodes of the hyperparameter posterior drawn by
        systematic resampling). Groups whose success probabilities are tied
        in a draw (complete pooling, a boundary fit) share their ranks at
        random. Memory: about 6 bytes per draw and group (10^4 groups and
        4000 draws: 240 MB).

        Parameters
        ----------
        direction : {"higher", "lower"}, default="higher"
            Rank 1 is the group with the highest success probability
            (``"higher"``: higher is worse, e.g. tumour rates) or the lowest.
        level : float, default=0.95
            Coverage of the marginal and of the simultaneous rank intervals.
        top : int, optional
            Also report ``p_top``, the probability that the group's rank is at
            most ``top``.
        include_parameter_uncertainty : bool, default=False
            As in :meth:`exceedance`.
        n_draws : int, default=4000
            Monte Carlo draws (at least 100).
        random_state : int, numpy Generator or None, default=None
            Seed of the draws; the same seed gives the same table.

        Returns
        -------
        DataFrame
            Indexed by group label, with columns ``estimate``,
            ``expected_rank``, ``rank_lower`` and ``rank_upper`` (the
            marginal ``level`` interval of each group's rank),
            ``simultaneous_lower`` and ``simultaneous_upper`` (intervals that
            hold all groups' ranks at once with probability ``level``: the
            widest central intervals of the draws' order statistics with
            joint coverage ``level``, Besag, Green, Higdon and Mengersen
            1995), and ``p_top`` when ``top`` is given. ``attrs["mc_se"]`` is
            the largest Monte Carlo standard error of an expected rank;
            ``attrs`` also holds ``n_draws``, ``level``, ``direction`` and
            ``method``.

        Raises
        ------
        TypeError, ValueError
            On bad arguments, and as :meth:`exceedance`.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> r = m.ranks(random_state=0)
        >>> int(r.sort_values("expected_rank").index[0])
        69
        >>> r.attrs["mc_se"] < 0.5
        True
        """
        check_is_fitted(self)
        if direction not in ("higher", "lower"):
            raise ValueError(
                f"direction must be 'higher' (rank 1 = highest success "
                f"probability) or 'lower'; got {_show(direction)}."
            )
        check_level(level)
        check_flag("include_parameter_uncertainty", include_parameter_uncertainty)
        G = len(self.groups_)
        if top is not None and (
            isinstance(top, bool) or not isinstance(top, Integral) or not 1 <= top <= G
        ):
            raise ValueError(f"top must be an integer in [1, {G}]; got {_show(top)}.")
        if (
            isinstance(n_draws, bool)
            or not isinstance(n_draws, Integral)
            or n_draws < 100
        ):
            raise ValueError(
                f"n_draws must be an integer >= 100; got {_show(n_draws)}."
            )
        fit = self._fit_result
        method = method_name(fit, include_parameter_uncertainty)
        rng = np.random.default_rng(check_random_state_seed(random_state))
        theta, ties = theta_draws(fit, include_parameter_uncertainty, rng, n_draws)
        ranks = np.empty(theta.shape, dtype=np.int16 if G < 2**15 else np.int32)
        total, squares = np.zeros(G), np.zeros(G)
        for s in range(0, n_draws, RANK_BLOCK):
            block = rank_draws(
                theta[s : s + RANK_BLOCK], rng, direction == "higher", ties
            )
            ranks[s : s + RANK_BLOCK] = block
            total += block.sum(axis=0)
            squares += np.square(block, dtype=np.float64).sum(axis=0)
        del theta
        mean = total / n_draws
        sd = np.sqrt(np.maximum(squares / n_draws - mean**2, 0.0))
        srt = np.sort(ranks, axis=0)
        a = (1 - level) / 2
        # marginal limits: the a-quantile (inverted CDF) and the (1 - a)-quantile
        # rounded up, so that each covers at least ``level``
        lower = srt[max(0, int(np.ceil(a * n_draws)) - 1)]
        upper = srt[min(n_draws - 1, int(np.ceil((1 - a) * (n_draws - 1))))]
        sim_lo, sim_hi = joint_band(ranks, level, srt)
        frame = pd.DataFrame(
            {
                "estimate": _estimates(fit),
                "expected_rank": mean,
                "rank_lower": lower.astype(int),
                "rank_upper": upper.astype(int),
                "simultaneous_lower": sim_lo.astype(int),
                "simultaneous_upper": sim_hi.astype(int),
            },
            index=self._group_index(),
        )
        if top is not None:
            frame["p_top"] = (ranks <= top).mean(axis=0)
        frame.attrs.update(
            mc_se=float(sd.max() / np.sqrt(n_draws)),
            n_draws=int(n_draws),
            level=float(level),
            direction=direction,
            method=method,
        )
        return frame
