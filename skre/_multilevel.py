"""Partial pooling: the logistic random-intercept (multilevel) model."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import expit, logit
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _bayes
from ._base import GroupedBinomialMixin
from ._core.grouping import Collapsed, collapse, count_patterns
from ._core.multilevel import fit_multilevel
from ._core.population import LogitNormal
from ._core.quadrature import MarginalLikelihood, conditional_quantiles, marginal_mean
from ._intervals import boundary_group_intervals as _boundary_group_intervals
from ._intervals import check_interval_args as _check_interval_args
from ._intervals import multilevel_confint as _multilevel_confint
from ._intervals import multilevel_vcov as _multilevel_vcov
from ._intervals import predictive_interval as _predictive_interval
from ._intervals import vcov_frame as _vcov_frame
from ._validation import factorize
from .exceptions import BoundaryWarning, QuadratureWarning
from .priors import std_normal_prior


def _likelihood_units(data):
    """Groups of an intercept-only model with equal (m, n) share one term."""
    if data.Z.shape[1]:
        return data, np.ones(data.n_groups), np.arange(data.n_groups)
    m, n, count, index = count_patterns(data.successes, data.trials)
    k = len(m)
    return (
        Collapsed(np.arange(k), np.empty((k, 0)), m, n, k, np.arange(k)),
        count,
        index,
    )


class MultilevelBinomial(GroupedBinomialMixin):
    """Partial pooling: a logistic model with a normal random intercept per group.

    ``logit theta_i = b + x_i' coef + xi_g`` with ``xi_g ~ N(0, tau^2)``, fit by
    maximum likelihood with the group effects integrated out by adaptive
    Gauss-Hermite quadrature (lme4's ``glmer(..., nAGQ = n_quad)``; ``n_quad=1``
    is the Laplace approximation, lme4's default).

    Each group's estimate is pulled from its own proportion toward the population
    by an amount that ``tau`` decides. A group not seen in fit is predicted by
    the population average ``E[theta] = E[expit(b + x' coef + xi)]``, not by
    ``expit(b)``.

    When the maximum-likelihood ``tau`` is 0 (no variation between groups beyond
    binomial noise) ``tau_`` is exactly 0.0, the fit equals complete pooling and
    a :class:`~skre.exceptions.BoundaryWarning` says so.

    Parameters
    ----------
    group : str or int
        Column of X holding group labels (a name for a DataFrame, a position for
        an array).
    n_quad : int, default=25
        Quadrature nodes per group; 25 reproduces lme4's ``nAGQ = 25``, 1 is the
        Laplace approximation.
    max_iter : int, default=200
        Maximum optimizer iterations.
    tau_prior : prior object or None, default=None
        A prior on ``tau`` from :mod:`skre.priors` (e.g. ``HalfCauchy(1)``, or
        ``Gamma(2.5, 0)``, blme's default). The estimate is then the posterior
        mode of ``(beta, b, tau)`` (the mode in tau itself, as blme's), with the
        group effects integrated out. None: maximum likelihood.
    coef_prior : Normal, Flat or None, default=None
        Independent normal priors on the slopes (on the user's scale; the
        intercept stays flat).
    method : {"ml", "bayes"}, default="ml"
        ``"ml"``: maximum likelihood (or the posterior mode with priors).
        ``"bayes"``: the posterior of ``(beta, b, log tau)`` integrated by
        deterministic quadrature (no MCMC); needs a proper ``tau_prior``; the
        intercept gets a flat prior. Point estimates become posterior means,
        ``population_`` the posterior predictive of a new group's theta, and
        ``group_estimates`` posterior means and credible intervals that carry the
        uncertainty in tau; see :meth:`posterior_summary`. Up to three or four
        covariates (a product rule over the hyperparameters).
    tol : float, default=1e-9
        Largest gradient component (of the log-likelihood per group, in
        standardized parameters) accepted as converged.

    Attributes
    ----------
    intercept_ : float
        ``b``, the mean of the group logits (at covariates 0).
    coef_ : ndarray of shape (n_covariates,)
    tau_ : float
        Standard deviation of the group effects on the logit scale.
    random_effects_ : ndarray of shape (n_groups,)
        Conditional modes of ``xi_g`` (lme4's ``ranef``).
    random_effects_sd_ : ndarray of shape (n_groups,)
        Their conditional SDs from the Laplace curvature (lme4's
        ``ranef(condVar = TRUE)``, which uses it for every nAGQ).
    population_ : LogitNormal
        Distribution of theta for a new group at the trials-weighted mean of the
        covariates (at ``b`` for intercept-only data).
    groups_, covariates_, classes_ : ndarray
    loglik_, aic_, bic_ : float
        Constants included (the convention of R's ``logLik`` for ``glm`` and for
        ``glmer`` with nAGQ = 1; lme4 drops a constant when nAGQ > 1).
    boundary_ : bool
        True when ``tau_`` is 0.
    n_iter_ : int
    converged_ : bool

    Examples
    --------
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> m4 = MultilevelBinomial(group="batch").fit(X, y)
    >>> round(m4.intercept_, 5), round(m4.tau_, 5), round(m4.loglik_, 3)
    (-1.93902, 0.67412, -157.811)
    >>> [round(v, 3) for v in m4.population_.interval(0.95)]
    [0.037, 0.35]
    """

    _parameter_constraints: dict = {
        **GroupedBinomialMixin._parameter_constraints,
        "n_quad": [Interval(Integral, 1, 100, closed="both")],
        "tau_prior": [None, HasMethods(["logpdf", "dlogpdf"])],
        "coef_prior": [None, HasMethods(["logpdf", "dlogpdf"])],
        "method": [StrOptions({"ml", "bayes"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        group=None,
        n_quad=25,
        tau_prior=None,
        coef_prior=None,
        method="ml",
        max_iter=200,
        tol=1e-9,
    ):
        self.group = group
        self.n_quad = n_quad
        self.method = method
        self.tau_prior = tau_prior
        self.coef_prior = coef_prior
        self.max_iter = max_iter
        self.tol = tol

    def _fit(self, d):
        if self.method == "bayes" and not getattr(self.tau_prior, "proper", False):
            raise ValueError(
                "method='bayes' needs a proper tau_prior (e.g. HalfCauchy(1.0) "
                f"or HalfNormal(1.0)); got {self.tau_prior!r}."
            )
        codes, keep = self._code_groups(d)
        data = self._drop_aliased(self._collapse(d, codes, keep))
        units, weight, self._unit = _likelihood_units(data)
        if data.successes.sum() in (0.0, data.trials.sum()):
            return self._fit_degenerate(d, data)
        self._degenerate = None
        res = fit_multilevel(
            units,
            weight,
            self.n_quad,
            max_iter=self.max_iter,
            gtol=self.tol,
            tau_prior=self.tau_prior,
            coef_prior=std_normal_prior(self, self.coef_prior),
        )
        self._log_prior = res.log_prior if (self.tau_prior or self.coef_prior) else None
        self._model, self._hess, self._pooled_full = res.model, None, None
        self._theta_std = np.concatenate([res.beta, [res.b, res.tau]])
        self._posterior = res.posterior
        self.intercept_, self.coef_ = self._unscale(res.b, res.beta)
        self.tau_ = res.tau
        self.random_effects_ = res.tau * res.posterior.mode[self._unit]
        self.random_effects_sd_ = res.tau * res.posterior.sd[self._unit]
        self.population_ = LogitNormal(res.b, res.tau)
        self.boundary_, self.converged_, self.n_iter_ = (
            res.boundary,
            res.converged,
            res.n_iter,
        )
        self._information_criteria(
            res.loglik + d.constant, len(self._theta_std), d.n_obs
        )
        self._hyper, self._degenerate = None, None
        if self.method == "bayes":
            _bayes.fit(self, res)
            return
        self._warn_if_separated(
            res.b
            + data.Z @ res.beta
            + res.tau * res.posterior.mode[self._unit][data.codes]
        )
        if self.n_quad > 1 and not res.boundary:
            _check_quadrature(self, res, len(units.codes))
        if res.boundary:
            warnings.warn(
                f"{type(self).__name__}: the maximum-likelihood tau is 0 (a "
                "boundary fit): the groups vary no more than binomial noise "
                "explains, so complete pooling is appropriate and every group "
                "gets the pooled estimate. A prior on tau keeps it positive if "
                "you need partial pooling.",
                BoundaryWarning,
                stacklevel=3,
            )
        if not res.converged:
            warnings.warn(
                f"{type(self).__name__}: the optimizer did not converge "
                f"({res.message}); raise max_iter or check the covariates.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _fit_degenerate(self, d, data):
        """Every trial a failure (or a success): probability 0 (1) everywhere.

        The likelihood grows without bound as the intercept goes to -inf
        (+inf); tau is not identified and is reported as 0.
        """
        limit = 0.0 if data.successes.sum() == 0 else 1.0
        self._warn_if_separated(np.zeros(0))
        self._degenerate = limit
        self._hyper, self._log_prior, self._model = None, None, None
        self._hess = self._pooled_full = None
        self.intercept_ = -np.inf if limit == 0 else np.inf
        self.coef_ = np.zeros(data.Z.shape[1])
        self.tau_ = 0.0
        G = len(self.groups_)
        self.random_effects_ = np.zeros(G)
        self.random_effects_sd_ = np.zeros(G)
        self.population_ = LogitNormal(-np.inf if limit == 0 else np.inf, 0.0)
        self.boundary_, self.converged_, self.n_iter_ = True, True, 1
        self._information_criteria(d.constant, 2 + data.Z.shape[1], d.n_obs)

    def posterior_summary(self):
        """Posterior mean, SD and 95% interval of the intercept, slopes and tau.

        Only for ``method="bayes"``: the hyperparameters' posterior integrated
        by quadrature (no sampling), the group effects integrated out exactly.

        Returns
        -------
        DataFrame
            Rows ``intercept``, the covariates, ``tau``; columns ``mean``,
            ``sd``, ``2.5%``, ``97.5%``.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> from skre.priors import HalfCauchy
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(
        ...     group="batch", method="bayes", tau_prior=HalfCauchy(1.0)
        ... )
        >>> m.fit(X, y).posterior_summary().round(3)
                    mean     sd   2.5%  97.5%
        intercept -1.947  0.125 -2.209 -1.717
        tau        0.696  0.131  0.461  0.974
        """
        check_is_fitted(self)
        if self._hyper is None:
            raise ValueError("posterior_summary needs method='bayes'.")
        return _bayes.posterior_summary(self)

    def vcov(self):
        """Covariance matrix of the intercept and slopes (lme4's ``vcov``).

        The inverse observed information of the marginal likelihood (tau
        estimated too), by finite differences of the exact gradient; at a
        boundary fit that of complete pooling.

        Returns
        -------
        DataFrame
            Indexed and labelled by ``intercept`` and the covariates.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> round(float(m.vcov().iloc[0, 0]) ** 0.5, 4)
        0.122
        """
        check_is_fitted(self)
        self._check_not_bayes("vcov")
        return _vcov_frame(self, _multilevel_vcov(self))

    def confint(self, level=0.95, method="wald"):
        """Confidence intervals for the intercept, the slopes and ``tau``.

        Parameters
        ----------
        level : float, default=0.95
        method : {"wald", "profile"}, default="wald"
            ``"wald"``: estimate +- z * SE from the observed information (the
            Hessian of the log-likelihood at the optimum, by finite differences
            of the exact gradient); for ``tau`` on the log scale, so the interval
            stays positive. ``"profile"``: likelihood-ratio intervals, as lme4's
            ``confint(method = "profile")``. At a boundary fit (``tau_ == 0``)
            the intercept and slopes are those of complete pooling (tau held at
            0), the profile interval for ``tau`` starts at 0 and the Wald one is
            undefined (NaN upper end).

        Returns
        -------
        DataFrame
            Rows ``intercept``, the covariates and ``tau``; columns the lower
            and upper quantile levels (``"2.5%"``, ``"97.5%"``).

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> m.confint(method="profile").round(4)
                     2.5%   97.5%
        intercept -2.2029 -1.7166
        tau        0.4507  0.9549
        """
        check_is_fitted(self)
        self._check_not_bayes("confint")
        _check_interval_args(level, method)
        return _multilevel_confint(self, level, method)

    def _check_not_bayes(self, what):
        if self._hyper is not None:
            raise ValueError(
                f"{what}() is for maximum-likelihood (or MAP) fits; with "
                "method='bayes' use posterior_summary()."
            )

    def _linear_predictor(self, codes, Z):
        if self._degenerate is not None:
            return np.full(len(Z), -np.inf if self._degenerate == 0 else np.inf)
        Zs = self._scaled(Z)
        if self._hyper is None:
            p = self._proba_at(self._theta_std, self._posterior, codes, Zs)
        else:
            p = sum(
                w * self._proba_at(theta, post, codes, Zs)
                for w, theta, post in _bayes.nodes(self)
            )
        # quadrature weights sum to 1 within rounding: keep p a probability whose
        # logit is finite (1 - 2**-53 is the largest double below 1)
        return logit(np.clip(p, np.finfo(float).tiny, 1.0 - np.finfo(float).epsneg))

    def _proba_at(self, theta, posterior, codes, Zs):
        """P(success) at hyperparameters ``theta``: the posterior mean of theta_g
        for groups seen in fit, the population mean for new ones."""
        tau = theta[-1]
        eta0 = theta[-2] + Zs @ theta[:-2]
        p = marginal_mean(eta0, tau)
        seen = codes >= 0
        if seen.any():
            unit = self._unit[codes[seen]]
            pi = np.exp(posterior.log_weights[unit])
            p[seen] = np.sum(
                pi * expit(eta0[seen, None] + tau * posterior.nodes[unit]), axis=1
            )
        return p

    def _heldout_loglik(self, d):
        """Sum over test groups of log p(test rows of g | training data)."""
        train = self._train
        G = len(self.groups_)
        codes = self._codes_for(d.labels)
        keep = d.trials > 0
        codes = codes[keep]
        new = codes < 0
        if new.any():
            codes[new] = G + factorize(d.labels[keep][new])[0]
        seen = np.unique(codes[~new])
        in_train = np.isin(train.codes, seen)
        Zs = self._scaled(d.Z[keep])
        all_codes = np.concatenate([train.codes[in_train], codes])
        used, all_codes = np.unique(all_codes, return_inverse=True)
        data = collapse(
            all_codes.ravel(),
            np.vstack([train.Z[in_train], Zs]),
            np.concatenate([train.successes[in_train], d.successes[keep]]),
            np.concatenate([train.trials[in_train], d.trials[keep]]),
            len(used),
        )
        units, weight, _ = _likelihood_units(data)
        union = MarginalLikelihood(units, weight, self.n_quad)

        def at(theta, posterior):
            before = posterior.log_marginal[self._unit[seen]].sum()
            return float(weight @ union.posterior(theta).log_marginal - before)

        if self._hyper is None:
            return at(self._theta_std, self._posterior)
        terms = np.array(
            [np.log(w) + at(theta, post) for w, theta, post in _bayes.nodes(self)]
        )
        return float(terms.max() + np.log(np.exp(terms - terms.max()).sum()))

    def _group_intervals(self, level):
        """Quantiles of each group's conditional distribution, by quadrature.

        With ``method="bayes"``: the posterior mean of theta_g and quantiles of its
        posterior, a mixture over the hyperparameter grid (each component's
        conditional distribution taken as normal on the logit scale).

        The estimate is ``expit(b + x'beta + mode)`` (lme4's ``coef``); the
        interval holds ``level`` of the group's conditional distribution of
        ``xi_g`` given its data and the fitted parameters (exact integration,
        not the normal approximation), mapped to the probability scale. At a
        boundary fit (tau = 0) that distribution is a point, so the interval is
        complete pooling's, which carries the uncertainty of b and the slopes.
        """
        if (
            self._degenerate is not None
        ):  # exact (Clopper-Pearson) for the pooled counts
            data = self._train
            M, N = data.successes.sum(), data.trials.sum()
            a = 1 - level
            bound = 1 - (a / 2) ** (1 / N) if M == 0 else (a / 2) ** (1 / N)
            est = np.full(data.n_groups, self._degenerate)
            other = np.full(data.n_groups, bound)
            return (est, est, other) if M == 0 else (est, other, est)
        if self._hyper is not None:
            return _bayes.group_intervals(self, level)
        if self.boundary_:
            return _boundary_group_intervals(self, level)
        data = self._train
        b, tau = self._theta_std[-2], self._theta_std[-1]
        offset = b + data.Z @ self._theta_std[:-2]
        a = (1 - level) / 2
        q = conditional_quantiles(
            self._model, self._theta_std, [a, 1 - a], posterior=self._posterior
        )[self._unit]
        u = self._posterior.mode[self._unit]
        return tuple(
            self._group_mean_probability(offset, tau * v) for v in (u, q[:, 0], q[:, 1])
        )

    def prediction_interval(self, level=0.95, include_parameter_uncertainty=False):
        """Interval for the success probability of a new group.

        Parameters
        ----------
        level : float, default=0.95
        include_parameter_uncertainty : bool, default=False
            False: the central interval of ``population_`` (the estimates taken
            as known). True: also integrate over the sampling uncertainty of
            ``(b, log tau)`` (a normal approximation from the observed
            information, integrated by Gauss-Hermite quadrature); wider.

        Returns
        -------
        (float, float)

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> [round(v, 3) for v in m.prediction_interval()]
        [0.037, 0.35]
        >>> pi = m.prediction_interval(include_parameter_uncertainty=True)
        >>> [round(v, 3) for v in pi]
        [0.033, 0.364]
        """
        check_is_fitted(self)
        _check_interval_args(level, "wald")
        if not include_parameter_uncertainty or self._hyper is not None:
            # with method="bayes" population_ already integrates over (b, tau)
            return self.population_.interval(level)
        return _predictive_interval(self, level)


def _check_quadrature(est, res, n_rows, budget=400_000):
    """Warn when a rule with about twice the nodes disagrees at the estimate."""
    finer = 2 * est.n_quad + 1
    if n_rows * finer > budget:  # large groups are close to normal: skip the check
        return
    theta = np.r_[res.beta, res.b, res.tau]
    model = est._model
    fine = MarginalLikelihood(model.data, model.group_weight, finer).value(theta)
    coarse = float(model.group_weight @ res.posterior.log_marginal)
    if abs(fine - coarse) > 1e-6 * max(1.0, abs(coarse)):
        warnings.warn(
            f"{type(est).__name__}: the {est.n_quad}-node adaptive quadrature is "
            f"not accurate at the estimate (log-likelihood {coarse:.6g}; "
            f"{fine:.6g} with {finer} nodes). tau = {res.tau:.4g} is large for the "
            "information in each group (e.g. one binary trial per group) and is "
            "weakly identified; the estimate may be an artefact. Try a larger "
            "n_quad, a tau_prior, or a simpler model.",
            QuadratureWarning,
            stacklevel=4,
        )
