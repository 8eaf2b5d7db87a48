"""Partial pooling: the logistic random-intercept (multilevel) model."""

from numbers import Integral, Real

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import GroupColumn, GroupedBinomialMixin, Number
from ._bayes import BayesFit, check_bayes_data, fit_bayes
from ._core.grouping import row_offset
from ._core.multilevel import InMemory, fit_multilevel
from ._design import build_design
from ._fit_result import degenerate_fit
from ._fit_warnings import warn_boundary, warn_rule
from ._intervals import check_interval_args, check_level
from ._labels import group_column_name
from ._multilevel_fit import MultilevelFit, likelihood_units, variance_components
from ._nested_estimator import check_nested_groups, fit_with_nested
from ._nested_fit import NestedFit
from ._new_batch import NewBatchMixin
from ._slopes_estimator import (
    degenerate_slopes_error,
    fit_with_slopes,
    refuse_unsupported,
)
from ._slopes_fit import SlopesFit
from .exceptions import warn
from .priors import LKJ, Normal, std_normal_prior


class MultilevelBinomial(NewBatchMixin, GroupedBinomialMixin):
    """Partial pooling: a logistic model with a normal random intercept per group.

    ``logit theta_i = b + x_i' coef + xi_g(i)`` for row ``i`` in group ``g(i)``,
    with ``xi_g ~ N(0, tau^2)`` independently for each group ``g``, fit by
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

    Read more in the :ref:`User Guide <rats_guide>`.

    Parameters
    ----------
    group : str, int or list
        Column of X holding group labels (a name for a DataFrame, a position for
        an array). Labels may be any hashable values, but not booleans next to
        numbers equal to them (``True`` and ``1``, ``False`` and ``0``: Python
        counts them equal, so they would merge), which raise ``ValueError``.
        A list of two columns, outer first (``["district", "school"]``),
        fits nested random intercepts, lme4's ``(1 | district/school)``:
        ``logit theta_i = b + x_i' coef + u_d + v_ds`` with ``u_d ~ N(0,
        tau_outer^2)`` per outer group and ``v_ds ~ N(0, tau^2)`` per inner
        group within it (an inner label names a group only within its outer
        group). Both effects are integrated out by nested adaptive
        quadrature (Pinheiro and Chao 2006): ``n_quad`` nodes for the outer
        effect and, at each, ``n_quad`` for each inner group's, centred at
        its conditional mode; ``n_quad=1`` is lme4's Laplace fit and
        ``"auto"`` raises the rule from 7 nodes until the next level agrees
        to 1e-8 of the log-likelihood and 3e-7 of each estimate, as with
        ``random_slopes``. The groups (``groups_``, the rows of
        ``group_estimates``) are the ``(outer, inner)`` pairs.
        Working: ``fit``, the predictions (a seen pair from its posterior, a
        new inner group of a seen outer one from the outer effect's
        posterior, a new outer group from the population), ``score``
        (group-joint at the outer level), ``summary``, Wald and profile
        ``confint`` (the fixed effects and both SDs),
        ``vcov``, ``group_estimates``, ``prediction_interval()``,
        ``residuals`` (the default quantile residuals over a new outer
        group's population, ``conditional=True`` over what the training
        data say of the row's outer and inner effects),
        ``simulate(new_groups=True)`` (new outer and inner effects),
        bootstrap ``confint``, :func:`skre.lr_test` against the
        one-level model of either level, pickling and cloning. Not yet
        (``NotImplementedError``): ``random_slopes``, priors,
        ``method="bayes"``, ``simulate(new_groups=False)``, ``test_tau``, the
        decision tools and Dask collections; data whose trials are all
        failures (or all successes) raise ``ValueError``, as do data where
        every outer group has a single inner group (the two SDs are then not
        separately identifiable).
    offset : str, int or None, default=None
        Column of X that enters the linear predictor with coefficient 1, as
        R's ``offset(x)``: ``logit theta_i = ... + offset_i``, in fit, in
        ``score`` and in every prediction (new rows bring their own offsets,
        in a column of the same name). Named as ``group`` is (a column name,
        or a position in an array). It is not a covariate (not in
        ``covariates_``). Without rows of its own, a new group is taken at
        the training rows' trials-weighted mean covariates and offset.
        Fits with an offset do not take Dask collections.
    n_quad : int or "auto", default="auto"
        Adaptive Gauss-Hermite nodes per group. An int from 1 to 100 is a
        fixed rule (25 reproduces lme4's ``nAGQ = 25``, 1 is the Laplace
        approximation); the fit then compares it at its estimate with the next
        rule of 3, 5, 7, 9, 15, 25, 35, 51, 75, 101, 151, 201 nodes at least
        a third larger (35 for 25, 3 for Laplace) and warns with the measured
        difference when an estimate would move by more than 0.1 standard
        errors.
        ``"auto"`` is the exact fit: 25 nodes for every group on small data
        (rows x 25 within 200,000), on larger data each group's count chosen
        at the Laplace estimate; then, at the final estimate, every group's
        rule is compared with the next larger one (up to 201 nodes), in the
        log-likelihood and in the estimates it implies, and groups short of
        their share of the target (1e-8 of the log-likelihood, 3e-7 of each
        estimate) get more nodes and the fit goes on, until all pass. A
        QuadratureWarning says so, with the measured error, where even 201
        nodes are not enough. See the user guide's "The likelihood".
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
        uncertainty in tau; see :meth:`posterior_summary`. At most
        ``skre._bayes.MAX_COVARIATES`` (2) covariates: ``log tau`` is
        integrated on a grid and the coefficients given tau by a product
        Gauss-Hermite rule, whose size grows as ``n ** (covariates + 1)``; a
        larger model is refused before any grid is built. Needs data with both
        successes and failures (the flat intercept prior is improper
        otherwise).
    max_iter : int, default=200
        Maximum optimizer iterations.
    tol : float, default=1e-9
        Largest gradient component (of the log-likelihood per group, in
        standardized parameters) accepted as converged. A fit also stops when
        the Newton step (the estimated distance to the optimum, in
        standardized parameters) is below 1e-8. Small fits without
        covariates, whose Newton steps use the exact Hessian, stop on the
        Newton step alone, whatever the gradient.
    verbose : int, default=0
        If positive, long computations (the ``method="bayes"`` grid, profile
        intervals) print a line as each step finishes.
    random_slopes : list of str or int, default=None
        Covariate columns of X (names, or positions as ``group`` takes them)
        whose slopes vary by group too: lme4's ``x1 + (1 + x1 | g)``. At most
        two. The columns stay fixed effects (``coef_``); the intercept and
        slopes of each group, ``(xi_g, eta_g) ~ N(0, Sigma)``, are integrated
        out by adaptive Gauss-Hermite quadrature in their dimensions (the
        product rule of ``n_quad`` nodes per dimension, centred at each
        group's conditional mode and
        scaled by the Cholesky factor of its conditional covariance).
        ``n_quad=1`` is lme4's Laplace fit; ``"auto"`` starts at 9 nodes per
        dimension (5 for two slopes), compares the rule at the estimate with
        the next larger level and raises it until the two agree (1e-8 of the
        log-likelihood, 3e-7 of each estimate), skipping to the first level
        whose value settles where a rule is far off; with one slope, beyond
        51 nodes it goes on with trapezoid rules in ``t = sinh(v)`` (steps
        0.1, 0.07, 0.05, each checked against the next; for skewed,
        heavy-tailed conditional distributions: binary data with a large
        intercept SD), and it warns where its finest rule does not settle
        (beyond 25 nodes with two slopes). With
        random slopes, ``fit``, ``predict_proba``, ``predict_log_proba``, ``predict``,
        ``decision_function``, ``score``, ``vcov``, ``summary``, Wald,
        profile and bootstrap ``confint``, ``group_estimates``,
        ``residuals``, ``simulate(new_groups=True)``, :func:`skre.lr_test`
        (one added slope) and the fitted attributes work, and
        ``prediction_interval`` without parameter uncertainty;
        ``simulate(new_groups=False)``, ``test_tau``, ``exceedance``,
        ``flag_groups``, ``ranks``, ``predictive_counts`` and
        ``historical_control_test`` raise ``NotImplementedError``, as do
        ``tau_prior``, ``coef_prior`` and ``method="bayes"``. ``fit`` takes
        Dask collections (each partition evaluates its own groups and keeps
        their conditional modes; the result equals the in-memory fit, and
        its collapsed rows are gathered for the methods above, up to
        ``skre.gather-rows`` of them); predictions and ``score`` of Dask
        collections raise ``NotImplementedError`` (compute X first).
    covariance : {"unstructured", "diagonal"}, default="unstructured"
        The random effects' covariance with ``random_slopes``: any (lme4's
        ``(1 + x | g)``) or independent effects (``(1 + x || g)``).
    covariance_prior : skre.priors.LKJ or None, default=None
        With ``random_slopes``, a prior on the random effects' covariance
        (:class:`skre.priors.LKJ`: an LKJ density on the correlations and a
        prior on each SD, as blme's penalties): the fit is then its posterior
        mode, off the boundary of singular covariances, and ``loglik_`` the
        likelihood there.

    Attributes
    ----------
    intercept_ : float
        ``b``, the mean of the group logits (at covariates 0).
    coef_ : ndarray of shape (n_covariates,)
        Slopes on the user's scale, in the order of ``covariates_``:
        conditional (per-group) effects.
    tau_ : float
        Standard deviation of the group effects on the logit scale.
    random_effects_ : ndarray of shape (n_groups,)
        Conditional modes of ``xi_g`` (lme4's ``ranef``).
    random_effects_sd_ : ndarray of shape (n_groups,)
        Their conditional SDs from the Laplace curvature (lme4's
        ``ranef(condVar = TRUE)``, which uses it for every nAGQ).
    population_ : LogitNormal
        Distribution of theta for a new group at the trials-weighted mean of the
        covariates (at ``b`` for intercept-only data) and of the offset; with
        ``method="bayes"`` a mixture of them, the posterior predictive.
    boundary_ : bool
        True when ``tau_`` is 0; with ``random_slopes``, when the covariance
        is singular (an SD at 0 or a correlation at +-1, lme4's
        ``isSingular``).
    tau_outer_ : float
        With nested groups (``group=[outer, inner]``): the SD of the outer
        groups' effects; ``tau_`` is then the inner groups' SD.
    outer_groups_ : ndarray
        With nested groups: the outer group labels. ``random_effects_`` and
        ``random_effects_sd_`` are then (n_groups, 2): each pair's outer
        effect and its own inner effect (conditional modes, and SDs from the
        joint Laplace curvature).
    random_slopes_ : ndarray of str
        With ``random_slopes``: the covariates with random slopes.
    random_covariance_ : ndarray of shape (n_effects, n_effects)
        With ``random_slopes``: the covariance of each group's intercept and
        slopes (``n_effects = 1 + len(random_slopes)``), on the user's scale;
        ``tau_`` is the square root of its first entry, ``random_effects_``
        and ``random_effects_sd_`` are then (n_groups, n_effects).
    variance_components_ : DataFrame
        The variance components as lme4's ``as.data.frame(VarCorr(fit))``
        lays them out: one row per variance (and covariance), columns ``grp``
        (the group column's name), ``var1`` (``"(Intercept)"``), ``var2``
        (missing for a variance), ``vcov`` (``tau_ ** 2``) and ``sdcor``
        (``tau_``). With ``random_slopes``: a row per variance (var1
        ``"(Intercept)"`` and each slope's name), then, unstructured, a row
        per covariance (var1 and var2 the pair, ``sdcor`` their correlation);
        diagonal, the groups are named ``g``, ``g.1``, ... as lme4 names the
        terms of ``(1 + x || g)``. Nested: two rows, ``inner:outer`` (the
        inner groups' variance) then ``outer``, as lme4 lists ``(1 |
        outer/inner)``.
    groups_ : ndarray of shape (n_groups,)
        Group labels seen in fit, in the order of the per-group attributes.
    covariates_ : ndarray of str
        The covariate columns (every column of X but ``group``).
    classes_ : ndarray of shape (2,)
        The labels; ``classes_[1]`` is success (``[0, 1]`` for counts).
    loglik_ : float
        Log-likelihood with the binomial constants (R's ``logLik`` for ``glm``
        and for ``glmer`` with nAGQ = 1; lme4 drops a constant when nAGQ > 1).
    aic_, bic_ : float
        ``-2 loglik_ + 2 n_params_`` and ``-2 loglik_ + log(nobs_) n_params_``.
    n_params_ : int
        Estimated parameters, aliased covariates not counted (what AIC and
        BIC use): intercept, slopes and ``tau`` (2 for the rats).
    nobs_ : float
        Rows of the expanded data (the sum of ``sample_weight``), BIC's n.
    n_iter_ : int
        Optimizer (or Newton) iterations.
    converged_ : bool
        Whether the optimizer met its tolerance.
    n_features_in_ : int
        Columns of X seen in fit.
    feature_names_in_ : ndarray of str
        Their names, when X has column names.

    See Also
    --------
    NoPoolingBinomial : Each group on its own.
    CompletePoolingBinomial : One probability for all groups.
    skre.LogitNormal : The population distribution.

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
        "group": [None, GroupColumn(), list],
        "n_quad": [Number(Integral, 1, 100, closed="both"), StrOptions({"auto"})],
        "tau_prior": [None, HasMethods(["logpdf", "dlogpdf"])],
        "coef_prior": [None, HasMethods(["logpdf", "dlogpdf"])],
        "method": [StrOptions({"ml", "bayes"})],
        "max_iter": [Number(Integral, 1, None, closed="left")],
        "tol": [Number(Real, 0, None, closed="neither")],
        "verbose": ["verbose"],
        "random_slopes": [None, list, tuple],
        "covariance": [StrOptions({"unstructured", "diagonal"})],
        "covariance_prior": [None, HasMethods(["logpdf"])],
    }
    _model_kind = "multilevel"

    def __init__(
        self,
        *,
        group=None,
        offset=None,
        n_quad="auto",
        tau_prior=None,
        coef_prior=None,
        method="ml",
        max_iter=200,
        tol=1e-9,
        verbose=0,
        random_slopes=None,
        covariance="unstructured",
        covariance_prior=None,
    ):
        self.group = group
        self.offset = offset
        self.n_quad = n_quad
        self.random_slopes = random_slopes
        self.covariance = covariance
        self.covariance_prior = covariance_prior
        self.method = method
        self.tau_prior = tau_prior
        self.coef_prior = coef_prior
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose

    @property
    def variance_components_(self):
        """lme4's ``as.data.frame(VarCorr(fit))`` (see Attributes), built when
        read: a DataFrame per fit cost the rats fit 0.16 ms of its 2 ms."""
        result = self.__dict__.get("_fit_result")
        if result is None or not hasattr(self, "tau_"):
            raise AttributeError(
                f"This {type(self).__name__} instance is not fitted yet: "
                "variance_components_ is set by fit."
            )
        if isinstance(result, (SlopesFit, NestedFit)):
            return result.variance_components()
        return variance_components(group_column_name(self), self.tau_)

    def _check_fit_parameters(self):
        """The checks of the parameters together that ``fit`` makes before
        it reads the data (in memory and on Dask alike)."""
        bayes = self.method == "bayes"
        name = type(self).__name__
        if isinstance(self.tau_prior, (Normal, LKJ)):
            raise TypeError(
                f"{name}: tau_prior is a prior on the SD tau >= 0 (HalfNormal, "
                f"HalfCauchy, HalfStudentT, Gamma); got {self.tau_prior!r}"
                + (
                    ", which puts mass on negative values."
                    if isinstance(self.tau_prior, Normal)
                    else ", a prior on a covariance matrix (covariance_prior)."
                )
            )
        if self.covariance_prior is not None and not isinstance(
            self.covariance_prior, LKJ
        ):
            raise TypeError(
                f"{name}: covariance_prior must be a skre.priors.LKJ prior on the "
                f"random effects' covariance; got {self.covariance_prior!r}."
            )
        if isinstance(self.group, list):
            check_nested_groups(self, bayes)
        if self.random_slopes and (bayes or self.tau_prior or self.coef_prior):
            raise NotImplementedError(
                f"{type(self).__name__}: random_slopes fits take covariance_prior "
                "(an LKJ prior) but not method='bayes', tau_prior or coef_prior "
                "yet."
            )
        if self.covariance == "diagonal" and not self.random_slopes:
            raise ValueError(
                f"{type(self).__name__}: covariance='diagonal' is the covariance "
                "of random_slopes (independent intercept and slopes); without "
                "them there is one random effect and nothing to set."
            )
        if self.covariance_prior is not None and not self.random_slopes:
            raise ValueError(
                f"{type(self).__name__}: covariance_prior is a prior on the "
                "covariance of random_slopes; without them use tau_prior for the "
                "random intercept's SD."
            )
        if bayes and not getattr(self.tau_prior, "proper", False):
            raise ValueError(
                "method='bayes' needs a proper tau_prior (e.g. HalfCauchy(1.0) "
                f"or HalfNormal(1.0)); got {self.tau_prior!r}."
            )

    def _fit(self, rows):
        bayes = self.method == "bayes"
        self._check_fit_parameters()
        design, _ = build_design(self, rows)
        if bayes:
            check_bayes_data(design)
        if design.degenerate is not None:
            if self.random_slopes:
                raise degenerate_slopes_error(self, design.degenerate)
            if isinstance(self.group, list):
                raise ValueError(
                    f"{type(self).__name__}: every trial is a "
                    f"{'failure' if design.degenerate == 0 else 'success'}; "
                    "nested groups have nothing to vary around. Fit with one "
                    "group column (group=outer or inner)."
                )
            self._warn_degenerate(design.degenerate)
            return degenerate_fit(design, multilevel=True)
        if self.random_slopes:
            return fit_with_slopes(self, design, rows)
        if isinstance(self.group, list):
            return fit_with_nested(self, design)
        units, weight, unit = likelihood_units(design.data)
        coef_prior = std_normal_prior(design, self.coef_prior)
        res = fit_multilevel(
            InMemory(units, weight),
            self.n_quad,
            max_iter=self.max_iter,
            gtol=self.tol,
            tau_prior=self.tau_prior,
            coef_prior=coef_prior,
            constant=design.constant,
        )
        fit = MultilevelFit.of(
            design, res, units, weight, unit, self.tau_prior, coef_prior
        )
        fit.__dict__["model"] = res.model  # already built: seed the cache
        if bayes:
            return fit_bayes(fit, type(self).__name__, self.verbose)
        data = design.data
        self._warn_if_separated(design, res.b + data.Z @ res.beta + row_offset(data))
        warn_rule(self, fit, res.check)
        warn_boundary(self, res)
        if not res.converged:
            warn(
                f"{type(self).__name__}: the optimizer did not converge "
                f"({res.message}); raise max_iter or check the covariates.",
                ConvergenceWarning,
            )
        return fit

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
        if not isinstance(self._fit_result, BayesFit):
            raise ValueError(
                "posterior_summary() is for method='bayes' fits; this one was fit "
                "by maximum likelihood: use confint() and summary()."
            )
        return self._fit_result.posterior_summary.copy()

    def posterior_density(self, parameter="tau"):
        """The marginal posterior density of one parameter, on a grid.

        Only for ``method="bayes"``: the density of the intercept, a slope or
        ``tau`` with the other parameters integrated out (by the same
        quadrature as :meth:`posterior_summary`), on 161 points spanning 7
        posterior SDs either side of the mode (of ``log tau`` for tau).

        Parameters
        ----------
        parameter : str, default="tau"
            ``"intercept"``, ``"tau"`` or a covariate's name.

        Returns
        -------
        DataFrame
            Columns ``value`` and ``density``; the density integrates to 1
            over the grid.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> from skre.priors import HalfCauchy
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(
        ...     group="batch", method="bayes", tau_prior=HalfCauchy(1.0)
        ... ).fit(X, y)
        >>> d = m.posterior_density("tau")
        >>> round(float(d["value"][d["density"].idxmax()]), 2)  # the mode
        0.67
        """
        import pandas as pd

        check_is_fitted(self)
        if not isinstance(self._fit_result, BayesFit):
            raise ValueError(
                "posterior_density() is for method='bayes' fits; this one was fit "
                "by maximum likelihood: use confint(method='profile')."
            )
        values, density = self._fit_result.posterior_density(parameter)
        return pd.DataFrame({"value": values, "density": density})

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
        return self._fit_result.vcov()

    def confint(
        self, level=0.95, method="wald", n_boot=1000, random_state=None, n_jobs=None
    ):
        """Confidence intervals for the intercept, the slopes and ``tau``.

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the intervals.
        method : {"wald", "profile", "bootstrap"}, default="wald"
            ``"wald"``: estimate +- z * SE from the observed information (the
            Hessian of the log-likelihood at the optimum, by finite differences
            of the exact gradient); for ``tau`` on the log scale, so the interval
            stays positive. ``"profile"``: likelihood-ratio intervals, as lme4's
            ``confint(method = "profile")``. At a boundary fit (``tau_ == 0``)
            the intercept and slopes are those of complete pooling (tau held at
            0), the profile interval for ``tau`` starts at 0 and the Wald one is
            undefined (NaN upper end). ``"bootstrap"``: parametric-bootstrap
            percentile intervals: refits to data simulated from the fit with
            new group effects from ``N(0, tau^2)``; failed refits are counted
            in the frame's ``attrs`` and warned about, never dropped in silence.
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
            Rows ``intercept``, the covariates and ``tau``; columns the lower
            and upper quantile levels (``"2.5%"``, ``"97.5%"``). With
            ``random_slopes`` also ``sd_<slope>`` for each slope's SD and,
            unstructured, ``cor_<a>.<b>`` for each correlation: Wald ones on
            the log scale for the SDs, on Fisher's z for the correlations
            (NaN for an SD at 0); bootstrap ones from refits to data with
            new group effects drawn from ``N(0, Sigma)``; profile ones for
            the fixed effects and the SDs (on the fit's rule; an SD's lower
            end is 0 where the profile there is within the drop), with the
            correlations' rows Wald.

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
        check_interval_args(level, method, ("wald", "profile", "bootstrap"))
        if method == "bootstrap":
            return self._bootstrap_confint(level, n_boot, random_state, n_jobs)
        return self._fit_result.confint(level, method, self.verbose)

    def test_tau(self, method="lrt", n_sims=1000, random_state=None, n_jobs=None):
        """Test whether the groups differ: the null hypothesis tau = 0.

        Parameters
        ----------
        method : {"lrt", "score", "exact", "bootstrap"}, default="lrt"
            ``"lrt"``: the likelihood-ratio statistic against complete
            pooling, with the boundary's null distribution ``0.5 chi2(0) +
            0.5 chi2(1)`` (Self & Liang 1987); a large-sample result, off
            in either direction with few groups or few trials per group
            (the user guide's "Comparing and checking models" has a table).
            ``"score"``: the score for tau^2 at the complete-pooling fit,
            standardised by its efficient information (Lin 1997); one-sided
            normal reference, also large-sample. ``"exact"``: without
            covariates, a Monte Carlo test conditional on the total successes
            (the group counts are then multivariate hypergeometric under the
            null): exact at any sample size, 0/n groups included. Its
            statistic is discrete, so the observed value takes a random
            place among simulated values equal to it; ``details`` holds the
            conservative p-value that counts every tie against the null.
            ``"bootstrap"``: the likelihood-ratio statistic calibrated by a
            parametric bootstrap under the complete-pooling fit (covariates
            allowed; whole numbers of trials). ``"lrt"`` and ``"bootstrap"``
            need the maximum-likelihood fit; ``"score"`` and ``"exact"`` use
            only the data, so they work on fits with priors and on
            ``method="bayes"`` fits too.
        n_sims : int, default=1000
            Simulated data sets for ``"exact"`` and ``"bootstrap"``.
        random_state : int, numpy Generator or None, default=None
            Seed of the simulations.
        n_jobs : int or None, default=None
            Parallel refits for ``"bootstrap"`` (joblib).

        Returns
        -------
        TestResult
            ``statistic``, ``pvalue``, ``null`` (and ``df`` for ``"lrt"``);
            printing it gives a short report.

        Raises
        ------
        ValueError
            On data with no success (or no failure) at all, where the
            likelihood is flat in tau; ``"lrt"`` and ``"bootstrap"`` on fits
            with priors or ``method="bayes"``; ``"exact"`` with covariates or an
            offset;
            ``"exact"`` and ``"bootstrap"`` on fractional trials.

        Examples
        --------
        >>> from skre import MultilevelBinomial
        >>> from skre.datasets import load_rats
        >>> X, y = load_rats(return_X_y=True)
        >>> m = MultilevelBinomial(group="batch").fit(X, y)
        >>> round(m.test_tau().statistic, 4)
        28.1872
        >>> m.test_tau("exact", n_sims=999, random_state=0).pvalue
        0.001
        """
        from ._comparison import run_tau_test

        check_is_fitted(self)
        return run_tau_test(self, method, n_sims, random_state, n_jobs)

    def _check_not_bayes(self, what):
        if isinstance(self._fit_result, BayesFit):
            raise ValueError(
                f"{what}() is for maximum-likelihood (or MAP) fits; with "
                "method='bayes' use posterior_summary()."
            )

    def prediction_interval(self, level=0.95, include_parameter_uncertainty=False):
        """Interval for the success probability of a new group.

        Parameters
        ----------
        level : float, default=0.95
            Probability that a new group's theta falls in the interval.
        include_parameter_uncertainty : bool, default=False
            False: the central interval of ``population_`` (the estimates taken
            as known). True: also integrate over the sampling uncertainty of
            ``(b, log tau)`` (a normal approximation from the observed
            information, integrated by Gauss-Hermite quadrature); wider. With
            ``random_slopes``, ``population_`` is a new group's theta at the
            trials-weighted mean covariates and only False is available.

        Returns
        -------
        tuple of float
            ``(lower, upper)``. At a boundary fit (``tau_ == 0``) the population
            is a point mass, and the interval always carries the uncertainty
            of ``b`` (the plug-in interval would have zero width); on data with
            no successes (or no failures) it is the exact one-sided interval.

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
        check_level(level)
        return self._fit_result.prediction_interval(
            level, include_parameter_uncertainty
        )


refuse_unsupported(MultilevelBinomial)
