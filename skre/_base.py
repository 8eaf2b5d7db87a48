"""Shared scikit-learn plumbing of the three estimators.

``fit`` validates, builds the design and calls the estimator's ``_fit`` hook,
which returns a fit result (:mod:`skre._fit_result`) without touching the
estimator; only then are the fitted attributes replaced, all at once, so a fit
that raises leaves the estimator as it was. ``predict*``, ``score``,
``group_estimates`` and ``summary`` live here once and read the result.
"""

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, Options
from sklearn.utils.validation import check_is_fitted

from ._core.separation import separated
from ._dask.detect import dask_impl, is_dask
from ._decisions import GroupDecisionsMixin
from ._fit_result import DegenerateFit, PooledFit
from ._inputs import _show
from ._intervals import check_level
from ._labels import group_column_name
from ._validation import check_scored_trials, prepare, split_X
from .exceptions import SeparationWarning, warn


class GroupColumn(Options):
    """A column name (any hashable scalar but a bool) or an integer position.

    (An ``Options`` subclass only because scikit-learn's validation accepts
    constraint objects of its own classes.)
    """

    def __init__(self):
        super().__init__(object, set())

    def is_satisfied_by(self, val):
        if isinstance(val, (bool, np.bool_)) or val is None:
            return False
        if isinstance(val, (str, Integral, np.integer)):
            return True
        if isinstance(val, float):  # a float column label, but never NaN
            return not np.isnan(val)
        return isinstance(val, tuple) and hash(val) is not None

    def __str__(self):
        return "a column name (str) or an integer column position"


class Number(Interval):
    """scikit-learn's ``Interval`` without bools: ``n_quad=True`` is a mistake,
    not 1."""

    def is_satisfied_by(self, val):
        if isinstance(val, (bool, np.bool_)):
            return False
        return super().is_satisfied_by(val)


#: a prior for each prior parameter, for messages
PRIOR_EXAMPLES = {
    "tau_prior": "HalfCauchy(1.0)",
    "coef_prior": "Normal(0.0, 2.5)",
    "group_prior": "Normal(0.0, 1.5)",
}


#: log(eps) of float64: log_loss's floor for a probability
LOG_EPS = float(np.log(np.finfo(float).eps))


def point_loglik(lp0, lp1, successes, trials):
    """``sum m log p + (n - m) log(1 - p)`` from log-probabilities floored at
    ``log(eps)``, as scikit-learn's ``log_loss`` clips probabilities below at
    ``eps`` (its ceiling ``1 - eps`` moves a score by at most 2.2e-16 per
    trial and is not copied: a certain outcome still scores 0)."""
    lp0, lp1 = np.maximum(lp0, LOG_EPS), np.maximum(lp1, LOG_EPS)
    return float(successes @ lp1 + (trials - successes) @ lp0)


def _no_nested_parameter(est, key, name, value):
    """sklearn's "Invalid parameter" for ``name__arg`` when ``name`` holds a
    value without parameters (no prior set, or a plain value such as group)."""
    arg = key.split("__", 1)[1]
    text = (
        f"Invalid parameter {key!r} for estimator {type(est).__name__}: {name} "
        f"is {_show(value)}, which has no argument {arg!r}."
    )
    example = PRIOR_EXAMPLES.get(name)
    if example is None:
        return text
    return (
        f"{text} Set the prior first, e.g. set_params({name}={example}), or both "
        f"at once: set_params({name}={example.split('(')[0]}(), {key}=...)."
    )


def group_column_text(est):
    """The group column for messages: its name (quoted) or its position."""
    name = group_column_name(est)
    if isinstance(est.group, (Integral, np.integer)) and name == "group":
        return f"at position {int(est.group)}"
    return _show(name)


def _dask_backend(est, fitting=False):
    """The Dask implementation, for the fits and calls it supports."""
    if isinstance(getattr(est, "group", None), list):
        raise NotImplementedError(
            f"{type(est).__name__}: nested groups do not take Dask collections "
            "yet; compute the data into pandas first."
        )
    if not fitting and hasattr(est, "random_slopes_"):
        # (a random-slope fit's seen groups are predicted from the training
        # rows, which the workers do not get)
        raise NotImplementedError(
            f"{type(est).__name__}: the predictions and scores of a fit with "
            "random_slopes do not take Dask collections yet (its fit does); "
            "compute X (and y) into pandas first, e.g. X.compute(), or "
            "predict partition by partition with X.map_partitions."
        )
    if getattr(est, "offset", None) is not None:
        raise NotImplementedError(
            f"{type(est).__name__}: fits with an offset do not take Dask "
            "collections yet; compute the data into pandas first."
        )
    return dask_impl()


class GroupedBinomialMixin(GroupDecisionsMixin, ClassifierMixin, BaseEstimator):
    """Fit/predict/score for binomial estimators of grouped data."""

    _parameter_constraints: dict = {"group": [None, GroupColumn()]}
    _requires_group = True
    #: the kind of model, for the nesting checks of lr_test (skre._lr_checks)
    _model_kind = None

    @classmethod
    def _get_param_names(cls):
        """scikit-learn's, once per class: it reads the signature of
        ``__init__`` with ``inspect`` on every call, and ``fit`` validates the
        parameters each time (0.1 ms of the 2 ms rats fit)."""
        names = cls.__dict__.get("_param_names")
        if names is None:
            names = super()._get_param_names()
            cls._param_names = names
        return list(names)

    def set_params(self, **params):
        """Set parameters, including a prior's arguments (``tau_prior__scale``).

        Priors are immutable: a nested prior argument replaces the prior by a
        new one with that argument changed, so estimators that shared the old
        prior (clones, grid-search candidates) are not affected. A prior
        argument needs a prior: ``tau_prior__scale`` while ``tau_prior`` is
        None raises ``ValueError`` (set ``tau_prior`` in the same call).

        Parameters
        ----------
        **params : dict
            Estimator parameters, and ``<prior>__<argument>`` for priors.

        Returns
        -------
        object
            The estimator itself.
        """
        nested = {}
        own = self.get_params(deep=False)
        for key in [k for k in params if "__" in k]:
            name, arg = key.split("__", 1)
            prior = params.get(name, getattr(self, name, None))
            if hasattr(prior, "set_params") and not hasattr(prior, "fit"):
                nested.setdefault(name, {})[arg] = params.pop(key)
            elif name in own and not hasattr(prior, "set_params"):
                raise ValueError(_no_nested_parameter(self, key, name, prior))
        for name, args in nested.items():
            params[name] = params.get(name, getattr(self, name)).set_params(**args)
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.string = True  # group labels may be strings
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        The fit is atomic: every input is validated and the model is fitted
        before any attribute changes, so a fit that raises leaves the
        estimator as it was (fitted to the earlier data, or not fitted).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The column named by ``group`` holds group labels; every other column
            is a numeric covariate.
        y : array-like of shape (n_samples,) or (n_samples, 2)
            Binary labels (the second of ``classes_`` is success), or counts
            ``[successes, trials]``.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights: weight ``k`` is the row repeated ``k`` times.

        Returns
        -------
        object
            The fitted estimator.
        """
        if is_dask(X):
            return _dask_backend(self, fitting=True).fit(self, X, y, sample_weight)
        if self._requires_group and self.group is None:
            raise ValueError(
                f"{type(self).__name__} needs group=: the name (DataFrame) "
                "or position (array) of the column of group labels in X."
            )
        rows = prepare(self, X, y, sample_weight, reset=True)
        result = self._fit(rows)
        self._set_fitted(rows, result)
        return self

    def _set_fitted(self, rows, result):
        """Replace every fitted attribute at once (none survive from a refit)."""
        for name in [
            k for k in vars(self) if k.endswith("_") and not k.startswith("__")
        ]:
            delattr(self, name)
        attrs = {
            "classes_": rows.classes,
            "n_features_in_": rows.n_features_in,
            **(
                {"feature_names_in_": rows.feature_names_in}
                if rows.feature_names_in is not None
                else {}
            ),
            **result.attributes(),
        }
        for name, value in attrs.items():
            setattr(self, name, value)
        self._fit_result = result

    def _warn_if_separated(self, design, eta, codes=None, n_groups=1, remedy=None):
        """Warn when the covariates separate the outcomes (a linear program),
        so that some slopes have infinite maximum-likelihood estimates.

        ``eta`` holds the fixed-effect logits of the training rows; only a fit
        with one beyond +-30 (a probability within 1e-13 of 0 or 1) is
        checked. A steep but finite fit whose classes overlap (R's "fitted
        probabilities numerically 0 or 1 occurred") is not warned about: its
        estimates are the maximum-likelihood ones, and converged. ``remedy``
        replaces the advice (a coef_prior) where the fit has no coef_prior.
        """
        split = separated(design.data, eta, codes, n_groups)
        name = type(self).__name__
        if split:
            remedy = remedy or (
                "A coef_prior (e.g. Normal(0, 2.5)) gives finite estimates."
            )
            warn(
                f"{name}: the covariates separate successes from failures "
                "(perfect or quasi-perfect separation): some slopes have infinite "
                "maximum-likelihood estimates, so fitted probabilities are "
                "numerically 0 or 1 and the reported slopes are where the "
                f"optimizer stopped. {remedy}",
                SeparationWarning,
            )
        elif split is None:
            warn(
                f"{name}: fitted probabilities numerically 0 or 1 occurred (a "
                "fitted logit beyond +-30), and the data are too large to check "
                "whether the covariates separate the outcomes (then some slopes "
                "would be infinite). Check for separation, outliers or a "
                "covariate on a very different scale.",
                SeparationWarning,
            )

    def _warn_degenerate(self, limit):
        what = "failure" if limit == 0 else "success"
        warn(
            f"{type(self).__name__}: every trial is a {what}, so the "
            f"estimated probability is {int(limit)} and the intercept is "
            "infinite; intervals are one-sided and exact. A prior on the "
            "intercept or the groups gives finite estimates.",
            SeparationWarning,
        )

    # -- prediction -------------------------------------------------------------------
    def _log_proba(self, X):
        check_is_fitted(self)
        labels, Z, _ = split_X(self, X, reset=False)
        codes = self._fit_result.codes_for(
            labels, type(self).__name__, group_column_text(self)
        )
        lp0, lp1 = self._result_log_proba(codes, Z)
        # quadrature weights sum to 1 within rounding: keep log-probabilities <= 0
        return np.minimum(lp0, 0.0), np.minimum(lp1, 0.0)

    def _result_log_proba(self, codes, Z):
        return self._fit_result.log_proba(codes, Z)

    def decision_function(self, X):
        """Compute the log-odds of success, ``logit P(y = classes_[1] | X)``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``log P(success) - log P(failure)``; ``-inf`` or ``inf`` where a
            probability is exactly 0.
        """
        if is_dask(X):
            return _dask_backend(self).decision_function(self, X)
        lp0, lp1 = self._log_proba(X)
        with np.errstate(invalid="ignore"):
            return lp1 - lp0

    def predict_log_proba(self, X):
        """Compute the log-probability of each class, in log space.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            Column 1 is success.
        """
        if is_dask(X):
            return _dask_backend(self).predict_log_proba(self, X)
        return np.column_stack(self._log_proba(X))

    def predict_proba(self, X):
        """Probability of each class; column 1 is success.

        For a group seen in fit, the conditional *mean* of the group's
        probability given its data (multilevel; for the pooled models the
        group's own estimate). This is not ``group_estimates()["estimate"]``,
        which is the probability at the conditional mode (lme4's ``coef``).
        For a group not seen in fit, the population mean ``E[expit(b + x'
        coef + xi)]`` (multilevel; not ``expit(b)``, the median that lme4's
        ``re.form = NA`` gives) or ``unknown_group``'s rule (no pooling).
        Computed in log space, so it is finite and in [0, 1] for any finite
        input. Read more in the :ref:`User Guide <predictions>` and the
        :ref:`FAQ <choosing>`.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            Column 1 is success.
        """
        if is_dask(X):
            return _dask_backend(self).predict_proba(self, X)
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Most probable label (``classes_[1]`` when P(success) > 0.5).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        if is_dask(X):
            return _dask_backend(self).predict(self, X)
        lp0, lp1 = self._log_proba(X)
        return self.classes_[(lp1 > lp0).astype(int)]

    def score(self, X, y, sample_weight=None):
        """Mean log predictive probability per trial (higher is better).

        Binomial coefficients are excluded, so binary rows and their aggregated
        counts score the same. Each group's effect is integrated over its fitted
        distribution: a point for the pooled estimators (the score is then
        ``-log_loss``), the conditional posterior for groups seen in fit and
        ``N(0, tau^2)`` for new groups in the multilevel model, each integral on
        the fit's own rule (with ``n_quad=1``, its Laplace approximation).

        Point predictions (the pooled estimators, and any fit to data with no
        success or no failure) are clipped below at ``eps =
        np.finfo(float).eps``, as scikit-learn's ``log_loss`` clips them: a
        probability of exactly 0 for an observed outcome (a no-pooling group
        with 0 successes meeting a success) costs ``log(eps)``, about -36.04
        per trial, instead of making the score ``-inf``. The multilevel
        model's probabilities, integrated over each group's effect, are
        positive and not clipped.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            As in :meth:`fit`.
        y : array-like of shape (n_samples,) or (n_samples, 2)
            As in :meth:`fit`.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        float
            At most 0; finite.
        """
        if is_dask(X):
            return _dask_backend(self).score(self, X, y, sample_weight)
        check_is_fitted(self)
        rows = prepare(self, X, y, sample_weight, reset=False)
        total = rows.trials.sum()
        check_scored_trials(total)
        codes = self._fit_result.codes_for(
            rows.labels, type(self).__name__, group_column_text(self)
        )
        return float(self._heldout_loglik(rows, codes) / total)

    def _heldout_loglik(self, rows, codes):
        result = self._fit_result
        if isinstance(result, (PooledFit, DegenerateFit)):  # point predictions
            lp0, lp1 = self._result_log_proba(codes, rows.Z)
            return point_loglik(lp0, lp1, rows.successes, rows.trials)
        return result.heldout_loglik(rows, codes)

    def summary(self, level=0.95, method="wald"):
        """Coefficient table, random effects (multilevel) and fit statistics.

        It reads like R's ``summary(glm)`` for the pooled models and lme4's
        ``summary(glmer)`` for the multilevel one.

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the confidence intervals.
        method : {"wald", "profile"}, default="wald"
            Confidence intervals, as in ``confint`` (no pooling offers only
            Wald intervals for its shared slopes).

        Returns
        -------
        Summary
            Tables ``fixed_effects``, ``random_effects`` (multilevel only) and
            ``fit``; printing it gives the text report, and it renders as HTML
            in Jupyter.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> s = MultilevelBinomial(group="batch").fit(X, y).summary()
        >>> s.fixed_effects.round(4)
                   estimate  std_error        z  p_value    2.5%   97.5%
        intercept    -1.939      0.122 -15.8902      0.0 -2.1782 -1.6998
        >>> s.random_effects.round(4)
                  tau  tau_sq    2.5%   97.5%
        batch  0.6741  0.4544  0.4676  0.9719
        """
        from ._summary import Summary  # presentation layer, imported on use

        check_is_fitted(self)
        check_level(level)
        not_bayes = getattr(self, "_check_not_bayes", None)
        if not_bayes is not None:
            not_bayes("summary")
        return Summary.from_estimator(self, level, method)

    def group_estimates(self, level=0.95):
        """Per-group success probability with an interval.

        ``estimate`` is ``expit(b + x' coef + xi_g)`` at the group's conditional
        mode of ``xi_g`` (lme4's ``coef``). The interval holds ``level`` of the
        group's conditional distribution given its data, computed with ``b``,
        ``coef`` and ``tau`` fixed at their estimates, as if they were known
        (lme4's ``ranef(condVar = TRUE)`` does the same): it leaves out their
        sampling uncertainty, so with few groups it is too narrow. A
        ``method="bayes"`` fit integrates over them instead (posterior means
        and credible intervals); a boundary fit (``tau_ == 0``) reports
        complete pooling's interval, which carries the uncertainty of ``b``
        and the slopes.

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the intervals.

        Returns
        -------
        DataFrame
            Indexed by group label (the index is named after the group
            column), with columns ``trials``, ``successes``,
            ``observed`` (successes / trials), ``estimate``, ``lower`` and ``upper``.
            With covariates, ``estimate`` is the trials-weighted mean fitted
            probability over the group's rows. With ``random_slopes``
            (:class:`MultilevelBinomial`) the interval of that mean comes from
            4000 draws (fixed seed) of the group's effects from the normal of
            their conditional modes and curvature, and each random
            coefficient adds its conditional mode, SD and normal interval:
            columns ``(Intercept)``, ``(Intercept)_sd``,
            ``(Intercept)_lower``, ``(Intercept)_upper`` and the same for each
            slope. With nested groups (``group=[outer, inner]``) the index is
            the (outer, inner) pairs, the interval comes from 4000 draws of
            the pair's summed effect (the same normal), and the columns
            ``<outer>``, ``<inner>:<outer>`` (with ``_sd``, ``_lower``,
            ``_upper``) give its outer group's and its own effect.
        """
        check_is_fitted(self)
        check_level(level)
        frame = self._estimates_frame(*self._fit_result.group_intervals(level))
        effects = getattr(self._fit_result, "group_effects", None)
        if effects is not None:  # random slopes: each coefficient's too
            frame = frame.join(effects(level).set_axis(frame.index))
        return frame

    def _group_index(self):
        if isinstance(self.group, list):  # nested: (outer, inner) pairs
            return pd.MultiIndex.from_tuples(
                list(self.groups_), names=[str(g) for g in self.group]
            )
        return pd.Index(self.groups_, name=group_column_name(self))

    def _estimates_frame(self, est, lower, upper):
        design = self._fit_result.design
        M, N = design.group_successes, design.group_trials
        return pd.DataFrame(
            {
                "trials": N,
                "successes": M,
                "observed": M / N,
                "estimate": est,
                "lower": lower,
                "upper": upper,
            },
            index=self._group_index(),
        )

    # -- model checking ---------------------------------------------------------------
    def simulate(
        self, n_sims=1, random_state=None, new_groups=False, X=None, trials=None
    ):
        """Simulate successes from the fitted model.

        Each simulation draws every group's effect once and then the successes
        of each of its rows: from the group's conditional distribution given
        the training data (``new_groups=False``; the multilevel model) or from
        the population ``N(0, tau^2)`` (``new_groups=True``, or a group not
        seen in fit). The pooled models have no group effect to draw (no
        pooling with a ``group_prior`` draws a new group's intercept from it).

        Parameters
        ----------
        n_sims : int, default=1
            Number of simulated data sets.
        random_state : int, numpy Generator or None, default=None
            Seed; the same seed gives the same draws.
        new_groups : bool, default=False
            Draw every group's effect from the population, as for groups not
            seen in fit (the unconditional, parametric-bootstrap simulation).
        X : array-like or DataFrame, default=None
            Rows to simulate; None: the training rows, in the order given to
            ``fit``, each with its own trials (times its frequency weight).
        trials : array-like of int, default=None
            Trials of each row of ``X`` (default 1: binary outcomes).

        Returns
        -------
        ndarray of shape (n_sims, n_rows)
            Simulated successes.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> sims = m.simulate(1000, random_state=0)
        >>> sims.shape
        (1000, 71)
        >>> bool(abs(sims[:, 70].mean() - 14 * m.predict_proba(X)[70, 1]) < 0.2)
        True
        """
        from ._checking import simulate

        check_is_fitted(self)
        return simulate(self, n_sims, random_state, new_groups, X, trials)

    def residuals(self, X, y, kind="quantile", random_state=None, conditional=False):
        """Compute the residuals of rows ``(X, y)`` under the fitted model.

        ``"quantile"``: randomised quantile residuals (Dunn & Smyth 1996), the
        normal quantile of a uniform draw between ``P(Y < y)`` and ``P(Y <=
        y)``, with each row's probability integrated over its group's effect:
        over the population ``N(0, tau^2)`` (the default, as DHARMa's
        unconditional simulations), or with ``conditional=True`` over the
        group's conditional distribution given the training data (for new rows
        of known groups; on the training rows themselves these use the data
        twice and are too small). At the true parameters the default quantile
        residuals are exactly N(0, 1), whatever the trials per row (rows of one
        group are correlated through its effect). At the fitted parameters
        they are only approximately N(0, 1), because the fit has adapted to
        these data; a Kolmogorov-Smirnov test against N(0, 1) then rejects
        less often than its level. ``"pearson"`` and
        ``"deviance"``: the classical ones, at ``predict_proba``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            As in :meth:`fit`.
        y : array-like of shape (n_samples,) or (n_samples, 2)
            Binary labels or ``[successes, trials]`` counts.
        kind : {"quantile", "pearson", "deviance"}, default="quantile"
            Which residuals.
        random_state : int, numpy Generator or None, default=None
            Seed of the uniform draws of quantile residuals.
        conditional : bool, default=False
            Integrate quantile residuals over each seen group's conditional
            distribution instead of the population. The multilevel model
            only: the pooled models have no group effect to integrate, so for
            them both settings give the same residuals. With nested groups
            a seen pair's rows integrate over its posterior of both effects,
            and a new inner group's rows in a seen outer group over the
            outer effect's posterior and ``N(0, tau^2)``.

        Returns
        -------
        ndarray of shape (n_samples,)
            One residual per row.

        Examples
        --------
        >>> from scipy import stats
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> r = m.residuals(X, y, random_state=0)
        >>> r.shape, bool(stats.kstest(r, "norm").pvalue > 0.05)
        ((71,), True)
        """
        from ._checking import residuals

        check_is_fitted(self)
        return residuals(self, X, y, kind, random_state, conditional)

    def _bootstrap_confint(self, level, n_boot, random_state, n_jobs):
        from ._checking import bootstrap_confint

        return bootstrap_confint(self, level, n_boot, random_state, n_jobs)
