"""The two pooled extremes: one shared probability, or one per group."""

import warnings
from numbers import Integral

import numpy as np
from scipy import stats
from scipy.special import logit
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import GroupedBinomialMixin, _aliased_columns
from ._core.binomial import loglik_terms
from ._core.glm import fit_grouped_logistic, profile_interval
from ._core.grouping import collapse, pooled_rows
from ._core.quadrature import MarginalLikelihood, marginal_mean
from ._intervals import (
    check_interval_args,
    pooled_confint,
    pooled_group_intervals,
    vcov_frame,
)
from ._validation import factorize
from .priors import Flat, Normal, std_normal_prior


def _warn_unconverged(est, res, what):
    if not res.converged:
        warnings.warn(
            f"{type(est).__name__}: the {what} did not converge ({res.message}). "
            "If covariates separate the outcomes perfectly the maximum-likelihood "
            "slopes are infinite; otherwise raise max_iter.",
            ConvergenceWarning,
            stacklevel=4,
        )


class CompletePoolingBinomial(GroupedBinomialMixin):
    """Complete pooling: one logistic regression that ignores the groups.

    ``logit theta_i = intercept + x_i' coef``, fit by maximum likelihood (R's
    ``glm(cbind(m, n - m) ~ x, family = binomial)``). With intercept-only data
    every group gets the same probability, total successes / total trials.

    Parameters
    ----------
    group : str, int or None, default=None
        Column of X holding group labels. It is dropped from the model (so this
        estimator is interchangeable with the other two in a Pipeline) but kept
        for :meth:`group_estimates`. None: every column is a covariate.
    coef_prior : Normal, Flat or None, default=None
        Independent normal priors on the slopes (user scale); the fit is then
        the posterior mode (ridge-like shrinkage of a chosen strength). The
        intercept stays flat.
    max_iter : int, default=100
        Maximum Newton iterations.

    Attributes
    ----------
    intercept_ : float
    coef_ : ndarray of shape (n_covariates,)
        Slopes on the user's scale, in the order of ``covariates_``.
    covariance_ : ndarray of shape (1 + n_covariates, 1 + n_covariates)
        Inverse observed information of ``(intercept_, *coef_)``.
    covariates_ : ndarray of str
    groups_ : ndarray
        Group labels seen in fit (``["(all)"]`` without a group column).
    classes_ : ndarray of shape (2,)
    loglik_, aic_, bic_ : float
        Full binomial log-likelihood (constants included, as R's ``logLik``).
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int
    feature_names_in_ : ndarray of str

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
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }
    _requires_group = False

    def __init__(self, *, group=None, coef_prior=None, max_iter=100):
        self.group = group
        self.coef_prior = coef_prior
        self.max_iter = max_iter

    def _fit(self, d):
        codes, keep = self._code_groups(d)
        data = self._drop_aliased(self._collapse(d, codes, keep))
        res = fit_grouped_logistic(
            pooled_rows(data),
            max_iter=self.max_iter,
            coef_prior=std_normal_prior(self, self.coef_prior),
        )
        _warn_unconverged(self, res, "logistic regression")
        self._warn_if_separated(res.intercepts[0] + data.Z @ res.coef)
        self._a_std, self._beta_std = float(res.intercepts[0]), res.coef
        self.intercept_, self.coef_ = self._unscale(self._a_std, res.coef)
        cov = np.empty((1 + len(res.coef),) * 2)
        cov[0, 0] = res.intercept_var[0]
        cov[0, 1:] = cov[1:, 0] = res.cross_cov[0]
        cov[1:, 1:] = res.coef_cov
        self._cov_std = cov
        J = np.eye(len(cov))
        J[0, 1:] = -self._z_mean / self._z_scale
        J[1:, 1:] = np.diag(1.0 / self._z_scale)
        self.covariance_ = J @ cov @ J.T
        self.n_iter_, self.converged_ = max(res.n_iter, 1), res.converged
        self._information_criteria(res.loglik + d.constant, len(cov), d.n_obs)

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
        return vcov_frame(self, self.covariance_)

    def confint(self, level=0.95, method="wald"):
        """Confidence intervals for the intercept and slopes.

        Parameters
        ----------
        level : float, default=0.95
        method : {"wald", "profile"}, default="wald"
            ``"wald"``: estimate +- z * SE (R's ``confint.default``);
            ``"profile"``: likelihood-ratio intervals (R's ``confint`` on a glm).

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
        check_interval_args(level, method)
        return pooled_confint(self, level, method)

    def _linear_predictor(self, codes, Z):
        return self.intercept_ + Z @ self.coef_

    def _heldout_loglik(self, d):
        return float(
            np.sum(
                loglik_terms(self._linear_predictor(None, d.Z), d.successes, d.trials)
            )
        )

    def _group_intervals(self, level):
        return pooled_group_intervals(
            self, self._a_std, self._beta_std, self._cov_std, level
        )


class NoPoolingBinomial(GroupedBinomialMixin):
    """No pooling: every group its own intercept, estimated independently.

    ``logit theta_i = alpha_g + x_i' coef`` by maximum likelihood (R's
    ``glm(cbind(m, n - m) ~ 0 + factor(batch) + x, family = binomial)``). With
    intercept-only data each group's estimate is its observed proportion; a
    group with 0 successes gets probability 0 (``alpha_g = -inf``).

    Groups not seen in fit have no estimate of their own: with
    ``unknown_group="pooled"`` they get the complete-pooling prediction (a
    logistic regression fit on the same data, ``intercept_`` and
    ``pooled_coef_``); with ``"error"`` predicting them raises ``ValueError``.

    Parameters
    ----------
    group : str or int
        Column of X holding group labels (a name for a DataFrame, a position for
        an array).
    unknown_group : {"pooled", "error"}, default="pooled"
    group_prior : Normal, Flat or None, default=None
        A fixed prior ``Normal(mean, scale)`` on every group's logit (at the
        trials-weighted mean covariates): shrinkage toward ``mean`` of a fixed,
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
    groups_, covariates_, classes_ : ndarray
    loglik_, aic_, bic_ : float
        Constants included, as R's ``logLik``; one parameter per group.
    n_iter_ : int
    converged_ : bool

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
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, *, group=None, unknown_group="pooled", group_prior=None, max_iter=100
    ):
        self.group = group
        self.unknown_group = unknown_group
        self.group_prior = group_prior
        self.max_iter = max_iter

    def _fit(self, d):
        codes, keep = self._code_groups(d)
        data = self._collapse(d, codes, keep)
        # the fallback for unseen groups is complete pooling on the same rows, with
        # the covariates complete pooling identifies (those aliased there are
        # aliased within groups too, so the warning below names them)
        rows = pooled_rows(data)
        rows.Z = rows.Z.copy()
        rows.Z[:, _aliased_columns(rows, within_groups=False)] = 0.0
        data = self._drop_aliased(data, within_groups=True)
        self._alpha_prior = _group_prior(self.group_prior)
        res = fit_grouped_logistic(
            data, max_iter=self.max_iter, alpha_prior=self._alpha_prior
        )
        _warn_unconverged(self, res, "no-pooling fit")
        if data.Z.shape[1] and 0 < data.successes.sum() < data.trials.sum():
            # separation by covariates; 0/n groups sit at an infinite logit by design
            with np.errstate(invalid="ignore"):
                self._warn_if_separated(res.intercepts[data.codes] + data.Z @ res.coef)
        pooled = fit_grouped_logistic(rows, max_iter=self.max_iter)
        self._alpha_std, self._beta_std = res.intercepts, res.coef
        self._coef_cov = res.coef_cov / np.outer(self._z_scale, self._z_scale)
        self._alpha_var = res.intercept_var
        shift = res.coef / self._z_scale @ self._z_mean
        self.coef_ = res.coef / self._z_scale
        self.group_intercepts_ = res.intercepts - shift
        self.intercept_, self.pooled_coef_ = self._unscale(
            float(pooled.intercepts[0]), pooled.coef
        )
        self.n_iter_, self.converged_ = max(res.n_iter, 1), res.converged
        self._information_criteria(
            res.loglik + d.constant, len(self.groups_) + len(res.coef), d.n_obs
        )

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
        return vcov_frame(self, self._coef_cov, intercept=False)

    def _linear_predictor(self, codes, Z):
        seen = codes >= 0
        if not seen.all() and self.unknown_group == "error":
            raise ValueError(
                f"{int((~seen).sum())} rows belong to groups not seen in fit "
                f"(first at row {int(np.flatnonzero(~seen)[0])}); "
                "set unknown_group='pooled' to predict them from the "
                "complete-pooling fit."
            )
        eta = np.where(seen, self.group_intercepts_[np.where(seen, codes, 0)], 0.0)
        with np.errstate(invalid="ignore"):
            eta = eta + Z @ self.coef_
        if self._alpha_prior is not None:  # new groups: the prior predictive
            mean, prec = self._alpha_prior
            loc = mean + ((Z - self._z_mean) / self._z_scale) @ self._beta_std
            pooled = logit(marginal_mean(loc, 1.0 / np.sqrt(prec)))
        else:
            pooled = self.intercept_ + Z @ self.pooled_coef_
        return np.where(seen, eta, pooled)

    def _heldout_loglik(self, d):
        """Seen groups at their estimates; with a group prior, each unseen group's
        logit integrated over the prior (as the multilevel model integrates over
        N(0, tau^2)), otherwise the pooled point prediction."""
        codes = self._codes_for(d.labels)
        eta = self._linear_predictor(codes, d.Z)
        new = (codes < 0) & (d.trials > 0)
        if self._alpha_prior is None or not new.any():
            return float(np.sum(loglik_terms(eta, d.successes, d.trials)))
        seen = float(np.sum(loglik_terms(eta[~new], d.successes[~new], d.trials[~new])))
        new_codes, uniques = factorize(d.labels[new])
        data = collapse(
            new_codes,
            self._scaled(d.Z[new]),
            d.successes[new],
            d.trials[new],
            len(uniques),
        )
        mean, prec = self._alpha_prior
        theta = np.r_[self._beta_std, mean, 1.0 / np.sqrt(prec)]
        post = MarginalLikelihood(data, np.ones(len(uniques)), 25).posterior(theta)
        return seen + float(post.log_marginal.sum())

    def group_estimates(self, level=0.95, method="profile"):
        """Each group's own success probability with an interval.

        Parameters
        ----------
        level : float, default=0.95
        method : {"profile", "exact", "wald"}, default="profile"
            ``"profile"``: likelihood-ratio interval for the group's intercept
            (slopes held at their estimate); finite for 0/n and n/n groups, with
            lower end 0 for a 0/n group. ``"exact"``: Clopper-Pearson (intercept-only
            data). ``"wald"``: estimate +- z * SE on the logit scale, R's
            ``confint.default``; it degenerates to the single point 0 (or 1) for a
            0/n (n/n) group, whose SE is infinite at an infinite logit. Offered for
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
        return self._estimates_frame(*self._group_intervals(level, method))

    def _group_intervals(self, level, method="profile"):
        data = self._train
        offset = data.Z @ self._beta_std
        alpha = self._alpha_std
        if method == "exact":
            if self._alpha_prior is not None:
                raise ValueError(
                    "method='exact' ignores group_prior; use 'profile' or "
                    "'wald' for a fit with a group prior."
                )
            if data.Z.shape[1]:
                raise ValueError(
                    "method='exact' (Clopper-Pearson) is for intercept-only "
                    "data; use 'profile' with covariates."
                )
            M, N = data.successes, data.trials
            a = (1 - level) / 2
            with np.errstate(invalid="ignore"):
                lower = np.where(M > 0, stats.beta.ppf(a, M, N - M + 1), 0.0)
                upper = np.where(M < N, stats.beta.ppf(1 - a, M + 1, N - M), 1.0)
            return M / N, lower, upper
        if method == "wald":
            half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(self._alpha_var)
            lower = np.where(np.isfinite(alpha), alpha - half, alpha)
            upper = np.where(np.isfinite(alpha), alpha + half, alpha)
        else:
            lower, upper = profile_interval(
                data,
                offset,
                alpha,
                stats.chi2.ppf(level, 1),
                alpha_prior=self._alpha_prior,
            )
        return tuple(
            self._group_mean_probability(offset, a) for a in (alpha, lower, upper)
        )


def _group_prior(prior):
    """``(mean, precision)`` of a Normal prior on group logits, or None."""
    if prior is None or isinstance(prior, Flat):
        return None
    if not isinstance(prior, Normal):
        raise TypeError(f"group_prior must be a Normal or Flat prior; got {prior!r}.")
    return float(prior.mean), 1.0 / prior.scale**2
