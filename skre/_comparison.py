"""Model comparison: likelihood-ratio tests with the boundary handled and the
tests of tau = 0 (``skre._compare_models`` has the table of held-out
scores, ``skre._lr_checks`` what lr_test checks).

``lr_test(restricted, full)`` compares two fits of the same data. When the
full model adds the between-group SD tau, tau = 0 lies on the boundary of its
space and the likelihood-ratio statistic is not chi2 under the null: it is
the 50:50 mixture of chi2(k) and chi2(k + 1) for k added fixed effects (Self &
Liang 1987). ``MultilevelBinomial.test_tau`` offers that test, the score test
(the model is fitted only under the null), an exact conditional Monte Carlo
test for intercept-only data and a parametric bootstrap.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._core.grouping import row_offset
from ._lr_checks import check_nested, check_no_priors, random_effects_added
from ._validation import _show

NULLS = {
    "chi2": "chi2({df})",
    "mixture": "0.5 chi2({df0}) + 0.5 chi2({df}): tau = 0 is on the boundary "
    "(Self & Liang 1987)",
    "slope": "0.5 chi2({df0}) + 0.5 chi2({df}): the added slope's SD = 0 is on "
    "the boundary (Stram & Lee 1994)",
    "level": "0.5 chi2({df0}) + 0.5 chi2({df}): the added level's SD ({sd}) = 0 "
    "is on the boundary (Self & Liang 1987)",
}


@dataclass(frozen=True)
class TestResult:
    """The outcome of a test: statistic, p-value and null distribution.

    Returned by :func:`lr_test` and :meth:`MultilevelBinomial.test_tau`;
    printing it gives a table like R's ``anova``.

    Parameters
    ----------
    statistic : float
        The test statistic.
    df : float
        Degrees of freedom of the chi-square (of its larger component for
        a mixture), or NaN for Monte Carlo tests.
    pvalue : float
        The p-value.
    null : str
        The null distribution, in words.
    method : str
        Which test.
    table : DataFrame or None
        The models compared (npar, AIC, BIC, logLik, deviance), for
        :func:`~skre.lr_test`.
    details : dict
        Anything else (Monte Carlo sample size, the simulated statistics).

    Examples
    --------
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> result = MultilevelBinomial(group="batch").fit(X, y).test_tau()
    >>> result.method, round(result.statistic, 2), result.pvalue < 1e-7
    ('Likelihood-ratio test of tau = 0', 28.19, True)
    """

    statistic: float
    df: float
    pvalue: float
    null: str
    method: str
    table: pd.DataFrame | None = None
    details: dict = field(default_factory=dict)

    __test__ = False  # not a pytest test class

    def __str__(self):
        lines = [f"{self.method}"]
        if self.table is not None:
            t = self.table.copy()
            shown = pd.DataFrame(
                {
                    "npar": t["npar"].map("{:g}".format),
                    "AIC": t["AIC"].map("{:.2f}".format),
                    "BIC": t["BIC"].map("{:.2f}".format),
                    "logLik": t["logLik"].map("{:.3f}".format),
                    "deviance": t["deviance"].map("{:.3f}".format),
                    "Chisq": ["", f"{self.statistic:.4f}"],
                    "Df": ["", f"{self.df:g}"],
                    "Pr(>Chisq)": ["", f"{self.pvalue:.4g}"],
                },
                index=t.index,
            )
            lines.append(shown.to_string())
        else:
            lines.append(
                f"statistic = {self.statistic:.6g}, p-value = {self.pvalue:.4g}"
            )
        lines.append(f"null distribution: {self.null}")
        if "n_sims" in self.details:
            lines.append(f"Monte Carlo: {self.details['n_sims']} simulated data sets")
        return "\n".join(lines)

    __repr__ = __str__


#: rounding of a kernel log-likelihood, relative to its size (see lr_statistic)
ROUNDING = 128 * np.finfo(float).eps


def lr_statistic(loglik_restricted, loglik_full):
    """``2 (loglik_full - loglik_restricted)``, exactly 0 when it is within
    rounding of 0 (or below it).

    A kernel log-likelihood is a sum of non-positive terms (logs of
    probabilities), so its rounding error is a few units of ``eps |loglik|``,
    growing slowly with the number of terms: two fits with equal likelihoods
    (a multilevel fit at tau = 0 and complete pooling) differ by up to 4 eps
    (|loglik_full| + |loglik_restricted|) on 30 to 15,000 rows. A statistic
    within ``ROUNDING = 128 eps`` times that sum (2.3e-11 for two
    log-likelihoods near -400, 5.7e-9 near -10^5) is such noise: taken at face
    value it lands in the chi2 part of the boundary mixture and gives p = 0.5
    instead of 1.
    """
    statistic = 2.0 * (float(loglik_full) - float(loglik_restricted))
    noise = ROUNDING * (abs(float(loglik_full)) + abs(float(loglik_restricted)))
    return statistic if statistic > noise else 0.0


def mixture_pvalue(statistic, df_fixed):
    """P-value under 0.5 chi2(df_fixed) + 0.5 chi2(df_fixed + 1); chi2(0) is a
    point mass at 0."""
    statistic = max(float(statistic), 0.0)
    upper = stats.chi2.sf(statistic, df_fixed + 1)
    lower = stats.chi2.sf(statistic, df_fixed) if df_fixed else float(statistic <= 0)
    return float(0.5 * upper + 0.5 * lower)


# -- lr_test ---------------------------------------------------------------------------
def lr_test(restricted, full):
    """Likelihood-ratio test of a restricted model against a full one.

    Both must be fitted by maximum likelihood to the same rows: the same
    ``y`` and ``sample_weight`` row by row (X may differ in its columns).
    The same trials as counts and as binary rows are refused: their
    log-likelihoods differ by the binomial coefficients; fit both models to
    one form (:func:`skre.binary_rows` gives the binary one). The restricted
    model must be nested in the full one, which is checked on the rows:

    - kinds: complete pooling in any model, no pooling in no pooling,
      partial pooling in partial pooling;
    - groups: a no-pooling full model's groups each inside one restricted
      group; two multilevel models with the same groups;
    - covariates: each of the restricted model's a linear combination of the
      full model's covariates and intercept (for no pooling, its group
      intercepts: complete pooling with a covariate constant within groups is
      nested in no pooling);
    - two multilevel fits must use the same quadrature (``n_quad``): a
      Laplace fit's log-likelihood is off by about as much as a statistic.

    The statistic is ``2 (loglik_full - loglik_restricted)``, 0 when it is
    within rounding of 0 (so p = 1 at a boundary fit, ``tau_ == 0``).

    - Fixed effects only: ``chi2(df)``, df the added parameters.
    - Complete pooling against partial pooling (tau added, perhaps with
      ``k`` fixed effects): tau = 0 is on the boundary, and the null
      distribution is ``0.5 chi2(k) + 0.5 chi2(k + 1)`` (Self & Liang 1987).
      It is the large-sample limit, and conservative for groups with little
      information each (see :meth:`MultilevelBinomial.test_tau` for exact
      and bootstrap versions).
    - A random slope added to a multilevel model (``random_slopes``, perhaps
      with ``k`` fixed effects): its SD = 0 is on the boundary; with ``q``
      random effects before, unstructured, the null is ``0.5 chi2(k + q) +
      0.5 chi2(k + q + 1)``, diagonal ``0.5 chi2(k) + 0.5 chi2(k + 1)``
      (Stram & Lee 1994). One slope at a time: two added at once raise
      ``NotImplementedError``.
    - Nested groups (``group=[outer, inner]``) against the one-level model
      of either level (``group=outer``, or a column of the ``(outer,
      inner)`` pairs), perhaps with ``k`` fixed effects: the other level's
      SD = 0 is on the boundary, and the null is ``0.5 chi2(k) + 0.5
      chi2(k + 1)``; a nested fit with that SD at 0 is the one-level model
      (statistic 0, p = 1). Two nested fits with the same groups differ in
      fixed effects only. Complete pooling against nested groups (both SDs
      at 0) raises ``NotImplementedError``: test one level at a time.

    Parameters
    ----------
    restricted : fitted estimator
        The smaller model.
    full : fitted estimator
        The larger model.

    Returns
    -------
    TestResult
        ``statistic``, ``df``, ``pvalue``, ``null`` and a ``table`` of the two
        models; printing it gives R's ``anova`` table.

    Raises
    ------
    ValueError
        Fits with priors or ``method="bayes"``; fits of different rows (or the
        same trials as counts and as binary rows); models that are not nested;
        two multilevel fits with different ``n_quad``; fits to a Dask
        collection, whose rows the estimator does not keep (fit both to
        in-memory data to test).
    NotImplementedError
        A full model with two more random slopes than the restricted one, or
        with nested groups against complete pooling.

    Examples
    --------
    >>> from skre import CompletePoolingBinomial, MultilevelBinomial, lr_test
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> cp = CompletePoolingBinomial(group="batch").fit(X, y)
    >>> ml = MultilevelBinomial(group="batch").fit(X, y)
    >>> result = lr_test(cp, ml)
    >>> round(result.statistic, 5), float(f"{result.pvalue:.4e}")
    (28.18721, 5.5065e-08)
    """
    from sklearn.utils.validation import check_is_fitted

    for est in (restricted, full):
        check_is_fitted(est)
    (k_r, k_f), level = check_nested(restricted, full)
    if k_r == "complete pooling" and isinstance(getattr(full, "group", None), list):
        raise NotImplementedError(
            "lr_test of complete pooling against nested groups adds two SDs at "
            "once (both on the boundary): the null distribution is then a "
            "chi-bar-square mixture that lr_test does not compute. Test one "
            "level at a time: complete pooling against the one-level model of "
            "the outer groups, then that against the nested model."
        )
    ll_r = restricted._fit_result.loglik
    ll_f = full._fit_result.loglik
    statistic = lr_statistic(ll_r, ll_f)
    df = full.n_params_ - restricted.n_params_
    if df <= 0:
        raise ValueError(
            f"the full model has no more parameters than the restricted one "
            f"({full.n_params_} vs {restricted.n_params_}); swap them, or they "
            "are not nested."
        )
    if level is not None and df == 1 and getattr(full, level) == 0.0:
        # the full fit is on the boundary: it is the restricted model, and the
        # two log-likelihoods differ only by their rules' errors
        statistic = 0.0
    added = (
        random_effects_added(restricted, full)
        if (k_r, k_f) == ("multilevel", "multilevel")
        else 0
    )
    if level is not None:
        df0 = df - 1
        pvalue = mixture_pvalue(statistic, df0)
        null = NULLS["level"].format(df0=df0, df=df, sd=level.rstrip("_"))
    elif k_r == "complete pooling" and k_f == "multilevel":
        df0 = df - 1
        pvalue = mixture_pvalue(statistic, df0)
        null = NULLS["mixture"].format(df0=df0, df=df)
    elif added:
        df0 = df - 1
        pvalue = mixture_pvalue(statistic, df0)
        null = NULLS["slope"].format(df0=df0, df=df)
    else:
        pvalue = float(stats.chi2.sf(statistic, df))
        null = NULLS["chi2"].format(df=df)
    names = [type(restricted).__name__, type(full).__name__]
    if names[0] == names[1]:
        names = [f"{names[0]} (restricted)", f"{names[1]} (full)"]
    table = pd.DataFrame(
        {
            "npar": [restricted.n_params_, full.n_params_],
            "AIC": [restricted.aic_, full.aic_],
            "BIC": [restricted.bic_, full.bic_],
            "logLik": [restricted.loglik_, full.loglik_],
            "deviance": [-2 * restricted.loglik_, -2 * full.loglik_],
        },
        index=names,
    )
    return TestResult(
        statistic, float(df), pvalue, null, "Likelihood-ratio test", table
    )


# -- tests of tau = 0 ------------------------------------------------------------------
TAU_METHODS = ("lrt", "score", "exact", "bootstrap")


def run_tau_test(est, method, n_sims, random_state, n_jobs):
    """See :meth:`MultilevelBinomial.test_tau`."""
    from ._fit_result import DegenerateFit
    from ._simulation_args import check_count, check_random_state_seed

    if method not in TAU_METHODS:
        raise ValueError(
            f"method must be one of {list(TAU_METHODS)}; got {_show(method)}."
        )
    if method in ("lrt", "bootstrap"):
        check_no_priors(
            est,
            f"test_tau(method={_show(method)})",
            instead="method='score' and method='exact' use only the data (not "
            "the fitted tau) and work on this fit; or refit by maximum "
            f"likelihood (method='ml', no priors) for method={_show(method)}",
        )
    fit = est._fit_result
    if isinstance(fit, DegenerateFit):
        raise ValueError(
            "test_tau needs both successes and failures: with every trial a "
            f"{'failure' if fit.limit == 0 else 'success'} the data say nothing "
            "about tau (the likelihood is flat in it)."
        )
    if method == "lrt":
        observed = lr_statistic(fit.pooled.loglik, fit.loglik)
        return TestResult(
            observed,
            1.0,
            mixture_pvalue(observed, 0),
            NULLS["mixture"].format(df0=0, df=1),
            "Likelihood-ratio test of tau = 0",
        )
    if method == "score":
        z = score_statistic(fit.design)
        return TestResult(
            z,
            np.nan,
            float(stats.norm.sf(z)),
            "N(0, 1), one-sided: the score for tau^2 at the complete-pooling fit, "
            "standardised by its efficient information (Lin 1997)",
            "Score test of tau = 0",
        )
    n_sims = check_count("n_sims", n_sims)
    seed = check_random_state_seed(random_state)
    if method == "exact":
        if len(fit.design.covariates) or fit.design.offset is not None:
            raise ValueError(
                "method='exact' conditions on the total successes, which is "
                "sufficient under the null only without covariates or an "
                "offset; use method='bootstrap' for a model with them."
            )
        return exact_test(fit.design, n_sims, seed)
    observed = lr_statistic(fit.pooled.loglik, fit.loglik)
    return bootstrap_test(est, observed, n_sims, seed, n_jobs)


def score_statistic(design):
    """The standardised score for tau^2 at tau = 0, at the complete-pooling fit.

    ``U = 1/2 sum_g (R_g^2 - W_g)`` (``R_g`` the group's residual sum,
    ``W_g`` its binomial variance); its variance under the null is
    ``1/4 sum_g (2 W_g^2 + sum_i kappa4_i)`` less the part explained by the
    score for the fixed effects, ``c' I^-1 c`` with ``c = 1/2 sum_i x_i
    kappa3_i`` (the binomial's third and fourth cumulants; Lin 1997).
    """
    from ._core.glm import fit_grouped_logistic
    from ._core.grouping import pooled_rows

    data = design.data
    cp = fit_grouped_logistic(pooled_rows(data))
    X = np.column_stack([np.ones(len(data.codes)), data.Z[:, ~design.aliased]])
    p = stats.logistic.cdf(
        float(cp.intercepts[0]) + data.Z @ cp.coef + row_offset(data)
    )
    m, n = data.successes, data.trials
    w = n * p * (1 - p)
    R, W = data.group_sum(m - n * p), data.group_sum(w)
    U = 0.5 * float(np.sum(R**2 - W))
    kappa3, kappa4 = w * (1 - 2 * p), w * (1 - 6 * p * (1 - p))
    c = 0.5 * X.T @ kappa3
    info = (X * w[:, None]).T @ X
    var = 0.25 * float(np.sum(2 * W**2) + np.sum(kappa4)) - c @ np.linalg.solve(info, c)
    return U / np.sqrt(var) if var > 0 else 0.0


def exact_test(design, n_sims, seed):
    """Monte Carlo test conditional on the total successes: under tau = 0
    the groups' counts are multivariate hypergeometric, whatever the common
    probability. The statistic is the dispersion ``sum_g (m_g - n_g p)^2``
    (p = M / N is fixed by the conditioning), the score statistic's core.

    The statistic is discrete, and with few trials per group many simulated
    values equal the observed one. Counting every tie as "at least as
    extreme" makes the test conservative (2.4% at 5% with 30 groups of 2
    trials); instead the observed value takes a uniformly random place
    among its ties (Besag & Clifford 1989), which makes its rank among the
    ``n_sims + 1`` values uniform under the null, so the test rejects at
    level alpha with probability alpha whenever ``alpha * (n_sims + 1)`` is
    a whole number. The conservative p-value is kept in ``details``.
    """
    from ._simulation_args import whole_trials

    whole_trials(design, "test_tau(method='exact')", successes=True)
    M_g, N_g = design.group_successes, design.group_trials.astype(np.int64)
    M = int(round(M_g.sum()))
    p = M / N_g.sum()
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_hypergeometric(N_g, M, size=n_sims)
    observed = float(np.sum((M_g - N_g * p) ** 2))
    simulated = np.sum((draws - N_g * p) ** 2, axis=1)
    tol = 1e-9 * observed  # equal tables summed in another order
    greater = int(np.sum(simulated > observed + tol))
    ties = int(np.sum(np.abs(simulated - observed) <= tol))
    above = int(rng.integers(0, ties + 1))  # ties ranked above the observed
    return TestResult(
        observed,
        np.nan,
        (1 + greater + above) / (1 + n_sims),
        "the group counts' multivariate hypergeometric distribution given the "
        "total successes (exact; Monte Carlo, ties broken at random)",
        "Exact conditional test of tau = 0",
        details={
            "n_sims": n_sims,
            "simulated": simulated,
            "n_ties": ties,
            "pvalue_conservative": (1 + greater + ties) / (1 + n_sims),
        },
    )


def bootstrap_test(est, observed, n_sims, seed, n_jobs):
    """Parametric bootstrap of the likelihood-ratio statistic under the
    complete-pooling fit.

    The refits skip validation and the design (the simulated data are the
    training rows with new successes): the core fits the multilevel model
    and complete pooling to each, and the statistic is twice the difference
    of their log-likelihoods, as for the data.
    """
    from joblib import Parallel, delayed
    from scipy.special import expit

    from ._simulation_args import whole_trials

    fit = est._fit_result
    data = fit.design.data
    cp = fit.pooled  # on the likelihood units; the logit of each row:
    p = expit(float(cp.intercepts[0]) + data.Z @ cp.coef + row_offset(data))
    trials = whole_trials(fit.design, "test_tau(method='bootstrap')")
    seeds = seed.spawn(n_sims)
    stats_ = Parallel(n_jobs=n_jobs, verbose=10 if getattr(est, "verbose", 0) else 0)(
        delayed(_lrt_replicate)(data, trials, p, est.n_quad, s) for s in seeds
    )
    failed = sum(s is None for s in stats_)
    simulated = np.array([s for s in stats_ if s is not None])
    exceed = int(np.sum(simulated >= observed * (1 - 1e-9) - 1e-12))
    return TestResult(
        observed,
        np.nan,
        (1 + exceed) / (1 + len(simulated)),
        "the likelihood-ratio statistic of data simulated from the "
        "complete-pooling fit (parametric bootstrap)",
        "Parametric-bootstrap test of tau = 0",
        details={"n_sims": len(simulated), "n_failed": failed, "simulated": simulated},
    )


def _lrt_replicate(data, trials, p, n_quad, seed):
    """The likelihood-ratio statistic of one data set simulated under tau = 0."""
    import warnings

    from ._core.grouping import Collapsed
    from ._core.multilevel import InMemory, fit_multilevel
    from ._multilevel_fit import likelihood_units

    m = np.random.default_rng(seed).binomial(trials, p).astype(float)
    if m.sum() in (0.0, float(trials.sum())):
        return 0.0  # no successes (or failures): nothing favours tau > 0
    sim = Collapsed(data.codes, data.Z, m, data.trials, data.n_groups, data.starts)
    units, weight, _ = likelihood_units(sim)
    source = InMemory(units, weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = fit_multilevel(source, n_quad)
            pooled = source.pooled()
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            return None
    return lr_statistic(pooled.loglik, res.loglik)
