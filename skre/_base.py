"""Shared scikit-learn plumbing of the three estimators.

Public estimators implement hooks (``_fit``, ``_linear_predictor``,
``_heldout_loglik``, ``_group_intervals``); ``fit``, ``predict*``, ``score``
and ``group_estimates`` live here once.
"""

import warnings

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils.validation import check_is_fitted

from ._core.grouping import collapse, standardize
from ._validation import check_labels, factorize, prepare, split_X
from .exceptions import CollinearityWarning, SeparationWarning


class GroupedBinomialMixin(ClassifierMixin, BaseEstimator):
    """Fit/predict/score for binomial estimators of grouped data."""

    _parameter_constraints: dict = {"group": "no_validation"}
    _requires_group = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.string = True  # group labels may be strings
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

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
        self : object
        """
        if self._requires_group and self.group is None:
            raise ValueError(
                f"{type(self).__name__} needs group=: the name (DataFrame) "
                "or position (array) of the column of group labels in X."
            )
        d = prepare(self, X, y, sample_weight, reset=True)
        self._fit(d)
        return self

    # -- shared fitting steps ---------------------------------------------------------
    def _code_groups(self, d):
        """Integer group codes of the rows that carry trials; sets ``groups_``."""
        if d.labels is None:
            codes = np.zeros(len(d.trials), dtype=np.intp)
            uniques = np.array(["(all)"], dtype=object)
        else:
            codes, uniques = factorize(d.labels)
        keep = d.trials > 0
        used, codes = np.unique(codes[keep], return_inverse=True)
        self.groups_ = uniques[used]
        self._group_index = pd.Index(self.groups_)
        return codes.ravel(), keep

    def _collapse(self, d, codes, keep):
        """Rows that carry trials, merged by (group, covariates); covariates
        standardized.

        Standardizing the collapsed rows (not the input rows) makes the fit a
        function of the data alone: row order, weights and repeated rows give
        bit-identical results.
        """
        data = collapse(
            codes, d.Z[keep], d.successes[keep], d.trials[keep], len(self.groups_)
        )
        data.Z, self._z_mean, self._z_scale = standardize(data.Z, data.trials)
        self._aliased = np.zeros(data.Z.shape[1], dtype=bool)
        self._train = data
        return data

    def _drop_aliased(self, data, *, within_groups=False):
        """Zero covariates that are not identified; warn, naming them.

        An aliased covariate (constant, or a linear combination of the others or
        of the intercepts) gets coefficient 0, as R's ``NA``.
        """
        self._aliased = _aliased_columns(data, within_groups)
        if self._aliased.any():
            overall = _aliased_columns(data, False) if within_groups else self._aliased
            data.Z[:, self._aliased] = 0.0
            for mask, where in (
                (
                    self._aliased & overall,
                    "constant or a linear combination of the other covariates",
                ),
                (
                    self._aliased & ~overall,
                    "constant within every group (or a combination of other "
                    "covariates within groups), so not identified next to the "
                    "per-group intercepts "
                    "(MultilevelBinomial does identify group-level covariates)",
                ),
            ):
                if mask.any():
                    names = ", ".join(repr(str(c)) for c in self.covariates_[mask])
                    warnings.warn(
                        f"{type(self).__name__}: covariate {names} is {where}; it "
                        "is dropped from the fit (coefficient 0). Remove it to "
                        "silence this warning.",
                        CollinearityWarning,
                        stacklevel=4,
                    )
        return data

    def _warn_if_separated(self, eta):
        """R's warning "fitted probabilities numerically 0 or 1 occurred".

        ``eta`` holds the fitted logits of the training rows (rows of a
        no-pooling group with 0/n or n/n, at an infinite logit, are expected and
        left out by the caller).
        """
        data = self._train
        total, trials = data.successes.sum(), data.trials.sum()
        if total == 0 or total == trials:
            what = "failure" if total == 0 else "success"
            warnings.warn(
                f"{type(self).__name__}: every trial is a {what}, so the "
                f"estimated probability is {0 if total == 0 else 1} and the "
                "intercept is infinite. A prior on the intercept or the groups "
                "gives finite estimates.",
                SeparationWarning,
                stacklevel=4,
            )
        elif np.any(np.abs(eta[np.isfinite(eta)]) > 30.0):  # p within 1e-13 of 0 or 1
            warnings.warn(
                f"{type(self).__name__}: fitted probabilities numerically 0 or 1 "
                "occurred: the covariates separate successes from failures "
                "(perfect separation), so some slopes have infinite maximum-"
                "likelihood estimates and the reported ones are where the "
                "optimizer stopped. A coef_prior (e.g. Normal(0, 2.5)) gives "
                "finite estimates.",
                SeparationWarning,
                stacklevel=4,
            )

    def _scaled(self, Z):
        """Covariates as the core saw them in fit: standardized, aliased ones zeroed."""
        Zs = (Z - self._z_mean) / self._z_scale
        Zs[:, self._aliased] = 0.0
        return Zs

    def _unscale(self, intercept, coef):
        """Map (intercept, slopes) on standardized covariates to the user's scale."""
        coef = coef / self._z_scale
        return float(intercept - coef @ self._z_mean), coef

    def _information_criteria(self, loglik, n_params, n_obs):
        n_params -= int(self._aliased.sum())  # R counts the rank, not dropped columns
        self.nobs_ = float(n_obs)
        self.loglik_ = float(loglik)
        self.aic_ = -2.0 * self.loglik_ + 2.0 * n_params
        self.bic_ = -2.0 * self.loglik_ + np.log(n_obs) * n_params

    def _codes_for(self, labels):
        """Training codes of ``labels`` (-1 where the group was not seen in fit)."""
        if labels is None:
            return None
        check_labels(labels)
        return self._group_index.get_indexer(labels)

    # -- prediction -------------------------------------------------------------------
    def decision_function(self, X):
        """Log-odds of success, ``logit P(y = classes_[1] | X)``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        labels, Z, _ = split_X(self, X, reset=False)
        return self._linear_predictor(self._codes_for(labels), Z)

    def predict_proba(self, X):
        """Probability of each class; column 1 is success.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        """Most probable label (``classes_[1]`` when P(success) > 0.5).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    def score(self, X, y, sample_weight=None):
        """Mean log predictive probability per trial (higher is better).

        Binomial coefficients are excluded, so binary rows and their aggregated
        counts score the same. Each group's effect is integrated over its fitted
        distribution: a point for the pooled estimators (the score is then
        ``-log_loss``), the conditional posterior for groups seen in fit and
        ``N(0, tau^2)`` for new groups in the multilevel model.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, 2)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        check_is_fitted(self)
        d = prepare(self, X, y, sample_weight, reset=False)
        total = d.trials.sum()
        if total <= 0:
            raise ValueError("score needs at least one trial with positive weight.")
        return float(self._heldout_loglik(d) / total)

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
        return Summary.from_estimator(self, level, method)

    def group_estimates(self, level=0.95):
        """Per-group success probability with an interval.

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the intervals.

        Returns
        -------
        DataFrame
            Indexed by group label, with columns ``trials``, ``successes``,
            ``observed`` (successes / trials), ``estimate``, ``lower`` and ``upper``.
            With covariates, ``estimate`` is the trials-weighted mean fitted
            probability over the group's rows.
        """
        check_is_fitted(self)
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1); got {level!r}.")
        return self._estimates_frame(*self._group_intervals(level))

    def _estimates_frame(self, est, lower, upper):
        data = self._train
        M = data.group_sum(data.successes)
        N = data.group_sum(data.trials)
        return pd.DataFrame(
            {
                "trials": N,
                "successes": M,
                "observed": M / N,
                "estimate": est,
                "lower": lower,
                "upper": upper,
            },
            index=pd.Index(self.groups_, name="group"),
        )

    def _group_mean_probability(self, offset_rows, shift):
        """Trials-weighted mean of ``expit(offset + shift[group])`` per group."""
        data = self._train
        p = expit(offset_rows + shift[data.codes])
        return data.group_sum(data.trials * p) / data.group_sum(data.trials)


def _aliased_columns(data, within_groups):
    """Boolean mask of covariates collinear with the intercept(s) and each other.

    Works on the trials-weighted cross-product of the covariates centred overall
    (a shared intercept) or within each group (one intercept per group, as in no
    pooling), by Cholesky in column order: a column whose squared residual
    norm, after the columns kept before it, is below ``1e-14`` of the total
    weight (its norm: the covariates are standardized) is aliased, i.e.
    collinear to 1e-7 relative; of two collinear columns the later one goes,
    as in R.
    """
    Z = data.Z
    aliased = np.zeros(Z.shape[1], dtype=bool)
    if Z.shape[1] == 0:
        return aliased
    w = data.trials
    wZ = w[:, None] * Z
    gram = Z.T @ wZ
    if within_groups:
        W = data.group_sum(w)
        S = data.group_sum(wZ)
        gram -= (S / np.where(W > 0, W, np.inf)[:, None]).T @ S
    else:
        total = wZ.sum(axis=0)
        gram -= np.outer(total, total) / w.sum()
    threshold = 1e-14 * w.sum()
    A = gram.copy()
    for j in range(
        len(A)
    ):  # in column order, so the later of two collinear columns goes (as R)
        if A[j, j] <= threshold:
            aliased[j] = True
            continue
        A -= np.outer(A[:, j] / A[j, j], A[j, :])
    return aliased
