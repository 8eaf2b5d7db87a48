"""The two pooled extremes: one shared probability, or one per group."""

from dataclasses import replace
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import GroupedBinomialMixin, Number, point_loglik
from ._core.glm import fit_grouped_logistic
from ._core.grouping import pooled_rows, row_offset
from ._core.separation import separated
from ._design import aliased_columns, build_design
from ._fit_result import (
    PooledFit,
    degenerate_fit,
    no_pooling_fit_result,
    pooled_fit_result,
)
from ._fit_warnings import warn_unconverged
from ._group_profile import profile_group_intervals
from ._intervals import check_interval_args
from .priors import group_prior_params, std_normal_prior


class CompletePoolingBinomial(GroupedBinomialMixin):
    """Complete pooling: one logistic regression that ignores the groups.

    ``logit theta_i = intercept + x_i' coef`` for every row ``i``, whatever its
    group, fit by maximum likelihood (R's
    ``glm(cbind(m, n - m) ~ x, family = binomial)``). With intercept-only data
    every group gets the same probability, total successes / total trials.

    Read more in the :ref:`User Guide <rats_guide>`.

    Parameters
    ----------
    group : str, int or None, default=None
        Column of X holding group labels. It is dropped from the model (so this
        estimator is interchangeable with the other two in a Pipeline) but kept
        for :meth:`group_estimates`. None: every column is a covariate, and
        an integer column that looks like group labels (named ``batch``,
        ``group``, ``id``, ...; or numbering the rows or groups 1, 2, ...) is
        fitted as one with a :class:`~skre.exceptions.GroupLabelWarning`. Labels
        may be any hashable values, but not booleans next to numbers equal to
        them (``True`` and ``1``, ``False`` and ``0``: Python counts them
        equal, so they would merge), which raise ``ValueError``.
    offset : str, int or None, default=None
        Column of X that enters the linear predictor with coefficient 1, as
        R's ``offset(x)``: ``logit theta_i = ... + offset_i``, in fit, in
        ``score`` and in every prediction (new rows bring their own offsets,
        in a column of the same name). Named as ``group`` is (a column name,
        or a position in an array). It is not a covariate (not in
        ``covariates_``). Without rows of its own, a new group is taken at
        the training rows' trials-weighted mean covariates and offset.
        Fits with an offset do not take Dask collections.
    coef_prior : Normal, Flat or None, default=None
        Independent normal priors on the slopes (user scale); the fit is then
        the posterior mode (ridge-like shrinkage of a chosen strength). The
        intercept stays flat.
    max_iter : int, default=100
        Maximum Newton iterations.

    Attributes
    ----------
    intercept_ : float
        Log-odds of success at covariates 0.
    coef_ : ndarray of shape (n_covariates,)
        Slopes on the user's scale, in the order of ``covariates_``.
    covariance_ : ndarray of shape (1 + n_covariates, 1 + n_covariates)
        Inverse observed information of ``(intercept_, *coef_)``; NaN for an
        aliased covariate (R's NA).
    covariates_ : ndarray of str
        The covariate columns (every column of X but ``group``).
    groups_ : ndarray
        Group labels seen in fit (``["(all)"]`` without a group column).
    classes_ : ndarray of shape (2,)
        The labels; ``classes_[1]`` is success (``[0, 1]`` for counts).
    loglik_ : float
        Full binomial log-likelihood (constants included, as R's ``logLik``).
    aic_, bic_ : float
        ``-2 loglik_ + 2 n_params_`` and ``-2 loglik_ + log(nobs_) n_params_``.
    n_params_ : int
        Estimated parameters, aliased covariates not counted (what AIC and
        BIC use): intercept and slopes.
    nobs_ : float
        Rows of the expanded data (the sum of ``sample_weight``), BIC's n.
    n_iter_ : int
        Newton iterations.
    converged_ : bool
        Whether Newton's method met its tolerance.
    n_features_in_ : int
        Columns of X seen in fit.
    feature_names_in_ : ndarray of str
        Their names, when X has column names.

    See Also
    --------
    NoPoolingBinomial : Each group on its own.
    MultilevelBinomial : Partial pooling, a random intercept per group.

    Examples
    --------
    >>> from skre import CompletePoolingBinomial
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> cp = CompletePoolingBinomial(group="batch").fit(X, y)
    >>> round(cp.intercept_, 6), round(cp.loglik_, 4)
    (-1.707129, -171.9046)
    """

    _parameter_constraints: dict = {
        **GroupedBinomialMixin._parameter_constraints,
        "coef_prior": [None, HasMethods(["logpdf", "dlogpdf"])],
        "max_iter": [Number(Integral, 1, None, closed="left")],
    }
    _requires_group = False
    _model_kind = "complete pooling"

    def __init__(self, *, group=None, offset=None, coef_prior=None, max_iter=100):
        self.group = group
        self.offset = offset
        self.coef_prior = coef_prior
        self.max_iter = max_iter

    def _fit(self, rows):
        design, _ = build_design(self, rows)
        if design.degenerate is not None:
            self._warn_degenerate(design.degenerate)
            return degenerate_fit(design, multilevel=False)
        data = design.data
        res = fit_grouped_logistic(
            pooled_rows(data),
            max_iter=self.max_iter,
            coef_prior=std_normal_prior(design, self.coef_prior),
        )
        warn_unconverged(self, res, "logistic regression")
        self._warn_if_separated(
            design, res.intercepts[0] + data.Z @ res.coef + row_offset(data)
        )
        return pooled_fit_result(design, res)

    def group_estimates(self, level=0.95, method=None):
        """Per-group success probability with an interval.

        The estimate is the trials-weighted mean fitted probability over the
        group's rows (with intercept-only data, total successes / total
        trials for every group).

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the intervals.
        method : {"wald", "profile"} or None, default=None
            ``"wald"``: the delta-method interval, symmetric on the logit of
            the group's mean probability. ``"profile"``: likelihood-ratio
            intervals: the profile interval of each covariate pattern's
            probability, as R's ``confint`` profiles a glm (a group of one
            pattern gets exactly that; a group of several, the
            trials-weighted mean of their lower ends to the mean of their
            upper ends, which contains the group's own and is wider). Where
            the covariates separate the outcomes, a pattern with estimate 0
            (or 1) gets ``(0, upper)`` (or ``(lower, 1)``). None:
            ``"profile"`` when the covariates separate the outcomes (the fit
            warned with ``SeparationWarning``): the slopes are then where the
            optimizer stopped, and the Wald intervals with them, which were
            ``[0, 1]`` for some groups and of zero width for others. Else
            ``"wald"``.

        Returns
        -------
        DataFrame
            Indexed by group label (the index is named after the group
            column), with columns ``trials``, ``successes``, ``observed``
            (successes / trials), ``estimate``, ``lower`` and ``upper``.

        Examples
        --------
        >>> import pandas as pd
        >>> from skre import CompletePoolingBinomial
        >>> X = pd.DataFrame({"g": list("aabbccdd"), "x": [0, 0, 1, 1, 2, 2, 3, 3]})
        >>> y = [0, 0, 0, 1, 1, 1, 1, 1]  # x > 1 succeeds, x < 1 fails
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     cp = CompletePoolingBinomial(group="g").fit(X, y)
        >>> caught[0].category.__name__
        'SeparationWarning'
        >>> cp.group_estimates()[["estimate", "lower", "upper"]].round(4)
           estimate   lower   upper
        g
        a       0.0  0.0000  0.4936
        b       0.5  0.0381  0.9619
        c       1.0  0.5688  1.0000
        d       1.0  0.8003  1.0000
        """
        check_is_fitted(self)
        check_interval_args(
            level, "wald" if method is None else method, ("wald", "profile")
        )
        result = self._fit_result
        est, lower, upper = result.group_intervals(level)
        if isinstance(result, PooledFit):  # not DegenerateFit: exact one-sided
            data = result.design.data
            if method == "profile" or (
                method is None
                and separated(data, result.a + data.Z @ result.beta + row_offset(data))
                is True
            ):
                lower, upper = profile_group_intervals(
                    result.design, result.a, result.beta, level
                )
        return self._estimates_frame(est, lower, upper)

    def vcov(self):
        """Covariance matrix of the intercept and slopes (R's ``vcov``).

        Returns
        -------
        DataFrame
            ``covariance_`` labelled by ``intercept`` and the covariates.

        Examples
        --------
        >>> from skre import CompletePoolingBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> cp = CompletePoolingBinomial(group="batch").fit(X, y)
        >>> round(float(cp.vcov().iloc[0, 0]), 7)
        0.0044247
        """
        check_is_fitted(self)
        return self._fit_result.vcov()

    def confint(
        self, level=0.95, method="wald", n_boot=1000, random_state=None, n_jobs=None
    ):
        """Confidence intervals for the intercept and slopes.

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the intervals.
        method : {"wald", "profile", "bootstrap"}, default="wald"
            ``"wald"``: estimate +- z * SE (R's ``confint.default``);
            ``"profile"``: likelihood-ratio intervals (R's ``confint`` on a glm);
            ``"bootstrap"``: parametric-bootstrap percentile intervals (refits
            to data simulated from the fit; failed refits are counted in the
            frame's ``attrs`` and warned about, never dropped in silence).
        n_boot : int, default=1000
            Simulated data sets for ``method="bootstrap"``.
        random_state : int, numpy Generator or None, default=None
            Seed of the bootstrap (the same seed gives the same intervals,
            whatever ``n_jobs``).
        n_jobs : int or None, default=None
            Parallel refits (joblib); None is 1.

        Returns
        -------
        DataFrame
            Rows ``intercept`` and the covariates; columns the lower and upper
            quantile levels (``"2.5%"``, ``"97.5%"``).

        Examples
        --------
        >>> from skre import CompletePoolingBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> cp = CompletePoolingBinomial(group="batch").fit(X, y)
        >>> cp.confint(method="profile").round(5)
                      2.5%    97.5%
        intercept -1.83952 -1.57867
        """
        check_is_fitted(self)
        check_interval_args(level, method, ("wald", "profile", "bootstrap"))
        if method == "bootstrap":
            return self._bootstrap_confint(level, n_boot, random_state, n_jobs)
        return self._fit_result.confint(level, method)


class NoPoolingBinomial(GroupedBinomialMixin):
    """No pooling: every group its own intercept, estimated independently.

    ``logit theta_i = alpha_g(i) + x_i' coef`` for row ``i`` in group ``g(i)``,
    one free ``alpha_g`` per group ``g``, by maximum likelihood (R's
    ``glm(cbind(m, n - m) ~ 0 + factor(batch) + x, family = binomial)``). With
    intercept-only data each group's estimate is its observed proportion; a
    group with 0 successes gets probability 0 (``alpha_g = -inf``).

    Groups not seen in fit have no estimate of their own: with
    ``unknown_group="pooled"`` they get the complete-pooling prediction (a
    logistic regression fit on the same data, ``intercept_`` and
    ``pooled_coef_``); with ``"error"`` predicting them raises ``ValueError``.

    Read more in the :ref:`User Guide <rats_guide>`.

    Parameters
    ----------
    group : str or int
        Column of X holding group labels (a name for a DataFrame, a position for
        an array). Labels may be any hashable values, but not booleans next
        to numbers equal to them (``True`` and ``1``, ``False`` and ``0``:
        Python counts them equal, so they would merge), in fit or against the
        labels seen in fit, which raise ``ValueError``.
    offset : str, int or None, default=None
        Column of X that enters the linear predictor with coefficient 1, as
        R's ``offset(x)``: ``logit theta_i = ... + offset_i``, in fit, in
        ``score`` and in every prediction (new rows bring their own offsets,
        in a column of the same name). Named as ``group`` is (a column name,
        or a position in an array). It is not a covariate (not in
        ``covariates_``). Without rows of its own, a new group is taken at
        the training rows' trials-weighted mean covariates and offset.
        Fits with an offset do not take Dask collections.
    unknown_group : {"pooled", "error"}, default="pooled"
    group_prior : Normal, Flat or None, default=None
        A fixed prior ``Normal(mean, scale)`` on every group's logit (at the
        trials-weighted mean covariates, and offset 0 with an ``offset``: the
        prior is on the intercept the offset adds to): shrinkage toward
        ``mean`` of a fixed,
        tunable strength (tune ``scale`` with GridSearchCV), and every estimate
        finite. Groups not seen in fit are then predicted from the prior (its
        marginal mean probability), not from the pooled fit.
    max_iter : int, default=100
        Maximum Newton iterations for the shared slopes.

    Attributes
    ----------
    group_intercepts_ : ndarray of shape (n_groups,)
        ``alpha_g`` on the logit scale, ``-inf``/``inf`` for 0/n and n/n groups.
    coef_ : ndarray of shape (n_covariates,)
        Shared slopes.
    intercept_, pooled_coef_ : float, ndarray
        The complete-pooling fit used for unseen groups.
    groups_ : ndarray of shape (n_groups,)
        Group labels seen in fit, in the order of ``group_intercepts_``.
    covariates_ : ndarray of str
        The covariate columns (every column of X but ``group``).
    classes_ : ndarray of shape (2,)
        The labels; ``classes_[1]`` is success (``[0, 1]`` for counts).
    loglik_ : float
        Full binomial log-likelihood (constants included, as R's ``logLik``).
    aic_, bic_ : float
        ``-2 loglik_ + 2 n_params_`` and ``-2 loglik_ + log(nobs_) n_params_``.
    n_params_ : int
        Estimated parameters, aliased covariates not counted (what AIC and
        BIC use): one intercept per group and the slopes (71 for the rats).
    nobs_ : float
        Rows of the expanded data (the sum of ``sample_weight``), BIC's n.
    n_iter_ : int
        Newton iterations.
    converged_ : bool
        Whether Newton's method met its tolerance.
    n_features_in_ : int
        Columns of X seen in fit.
    feature_names_in_ : ndarray of str
        Their names, when X has column names.

    See Also
    --------
    CompletePoolingBinomial : One probability for all groups.
    MultilevelBinomial : Partial pooling, a random intercept per group.

    Examples
    --------
    >>> from skre import NoPoolingBinomial
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> npool = NoPoolingBinomial(group="batch").fit(X, y)
    >>> round(npool.loglik_, 5)
    -84.40023
    >>> npool.group_estimates().loc[71, ["observed", "estimate"]].round(4).tolist()
    [0.2857, 0.2857]
    """

    _parameter_constraints: dict = {
        **GroupedBinomialMixin._parameter_constraints,
        "unknown_group": [StrOptions({"pooled", "error"})],
        "group_prior": [None, HasMethods(["logpdf", "dlogpdf"])],
        "max_iter": [Number(Integral, 1, None, closed="left")],
    }
    _model_kind = "no pooling"

    def __init__(
        self,
        *,
        group=None,
        offset=None,
        unknown_group="pooled",
        group_prior=None,
        max_iter=100,
    ):
        self.group = group
        self.offset = offset
        self.unknown_group = unknown_group
        self.group_prior = group_prior
        self.max_iter = max_iter

    def _fit(self, rows):
        design, Z_unaliased = build_design(self, rows, within_groups=True)
        data = design.data
        alpha_prior = group_prior_params(self.group_prior)
        res = fit_grouped_logistic(
            data, max_iter=self.max_iter, alpha_prior=alpha_prior
        )
        warn_unconverged(self, res, "no-pooling fit")
        if data.Z.shape[1] and design.degenerate is None:
            # separation by covariates; 0/n groups sit at an infinite logit by design
            with np.errstate(invalid="ignore"):
                eta = res.intercepts[data.codes] + data.Z @ res.coef + row_offset(data)
            self._warn_if_separated(design, eta, data.codes, data.n_groups)
        # the fallback for unseen groups is complete pooling on the same rows, with
        # the covariates complete pooling identifies (those aliased there are
        # aliased within groups too, so the warning above named them)
        rows = pooled_rows(data)
        rows.Z = Z_unaliased
        pooled_aliased = aliased_columns(rows, within_groups=False)
        rows.Z = np.where(pooled_aliased, 0.0, Z_unaliased)
        pooled = fit_grouped_logistic(rows, max_iter=self.max_iter)
        return no_pooling_fit_result(design, res, alpha_prior, pooled, pooled_aliased)

    def vcov(self):
        """Covariance matrix of the shared slopes (the group intercepts aside).

        Returns
        -------
        DataFrame
            Labelled by the covariates (empty for intercept-only data).

        Examples
        --------
        >>> from skre import NoPoolingBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> NoPoolingBinomial(group="batch").fit(X, y).vcov().shape
        (0, 0)
        """
        check_is_fitted(self)
        return self._fit_result.vcov()

    def confint(
        self, level=0.95, method="wald", n_boot=1000, random_state=None, n_jobs=None
    ):
        """Confidence intervals for the shared slopes.

        The group intercepts have theirs in :meth:`group_estimates`.

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the intervals.
        method : {"wald", "bootstrap"}, default="wald"
            ``"wald"``: estimate +- z * SE from the inverse information;
            ``"bootstrap"``: parametric-bootstrap percentile intervals.
        n_boot : int, default=1000
            Simulated data sets for ``method="bootstrap"``.
        random_state : int, numpy Generator or None, default=None
            Seed of the bootstrap (the same seed gives the same intervals,
            whatever ``n_jobs``).
        n_jobs : int or None, default=None
            Parallel refits (joblib); None is 1.

        Returns
        -------
        DataFrame
            One row per covariate (none for intercept-only data).

        Examples
        --------
        >>> import numpy as np
        >>> from skre import NoPoolingBinomial
        >>> from skre.datasets import make_grouped_binomial
        >>> X, y, _ = make_grouped_binomial(20, n_features=1, random_state=0)
        >>> NoPoolingBinomial(group="group").fit(X, y).confint().round(3)
            2.5%  97.5%
        x0  0.28  0.805
        """
        check_is_fitted(self)
        check_interval_args(level, method, ("wald", "bootstrap"))
        if method == "bootstrap":
            return self._bootstrap_confint(level, n_boot, random_state, n_jobs)
        from ._intervals import table, wald_rows

        design = self._fit_result.design
        rows, _ = wald_rows(
            np.eye(len(self.coef_)), self._fit_result.coef_cov, self.coef_, level
        )
        return table(design, [(np.nan, np.nan), *rows], level).iloc[1:]

    def _result_log_proba(self, codes, Z):
        return self._fit_result.log_proba(codes, Z, self.unknown_group)

    def _heldout_loglik(self, rows, codes):
        """Seen groups (and, without a group prior, new ones) are point
        predictions, clipped as ``log_loss`` clips; with a group prior a new
        group's rows share one draw from it (the fit result's integral)."""
        result = self._fit_result
        lp0, lp1 = self._result_log_proba(codes, rows.Z)
        point = (codes >= 0) | (result.alpha_prior is None)
        total = point_loglik(
            lp0[point], lp1[point], rows.successes[point], rows.trials[point]
        )
        if not point.all():
            new = ~point
            rows = replace(
                rows,
                labels=rows.labels[new],
                Z=rows.Z[new],
                successes=rows.successes[new],
                trials=rows.trials[new],
            )
            total += result.heldout_loglik(rows, codes[new], self.unknown_group)
        return total

    def group_estimates(self, level=0.95, method="profile"):
        """Each group's own success probability with an interval.

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the intervals.
        method : {"profile", "exact", "wald"}, default="profile"
            ``"profile"``: likelihood-ratio interval for the group's intercept
            (slopes held at their estimate); finite for 0/n and n/n groups, with
            lower end 0 for a 0/n group. ``"exact"``: Clopper-Pearson (intercept-only
            data). ``"wald"``: estimate +- z * SE on the logit scale, R's
            ``confint.default``; it is the whole of (0, 1) for a 0/n or n/n
            group, whose SE is infinite at an infinite logit. Offered for
            comparison with R; do not use it for such groups.

        Returns
        -------
        DataFrame
            As :meth:`CompletePoolingBinomial.group_estimates`.

        Examples
        --------
        >>> from skre import NoPoolingBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> npool = NoPoolingBinomial(group="batch").fit(X, y)
        >>> exact = npool.group_estimates(method="exact")
        >>> exact.loc[1, ["lower", "upper"]].round(7).tolist()
        [0.0, 0.1684335]
        """
        check_is_fitted(self)
        check_interval_args(level, method, ("profile", "exact", "wald"))
        return self._estimates_frame(*self._fit_result.group_intervals(level, method))
