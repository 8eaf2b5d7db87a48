"""Priors for skre's estimators: immutable, comparable, with log density and slope.

A prior is an estimator parameter, so it must clone, compare and print well
(``GridSearchCV`` grids and ``cv_results_``). Every class here is a frozen
dataclass with ``logpdf(x)`` and ``dlogpdf(x)`` (its derivative in ``x``); the
half-distributions live on ``x >= 0`` and are meant for the between-group SD
``tau``. Normalising constants are kept where they exist (``proper`` is True)
and dropped for the improper ``Flat`` and ``Gamma(shape, 0)``.
"""

from dataclasses import dataclass, fields, replace
from numbers import Real

import numpy as np
from scipy import special, stats

from ._inputs import _show

__all__ = [
    "Flat",
    "Gamma",
    "LKJ",
    "GammaPrecision",
    "HalfCauchy",
    "HalfNormal",
    "HalfStudentT",
    "Normal",
]

#: scales beyond these cannot be squared in double precision
_TINY, _HUGE = 1e-150, 1e150


class _Prior:
    """What every prior shares: validated plain-float fields, a repr that
    prints plain numbers, and scikit-learn's ``get_params``/``set_params`` so
    that ``tau_prior__scale`` can be searched. Priors are immutable:
    ``set_params`` returns a new prior (the estimators' ``set_params`` puts
    it in place)."""

    def _check(self, name, value, *, positive=False, scale=False, nonneg=False):
        kind = type(self).__name__
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
            raise TypeError(
                f"{kind}: {name} must be a real number; got {_show(value)} "
                f"({type(value).__name__})."
            )
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"{kind}: {name} must be finite; got {value!r}.")
        if positive and not value > 0:
            raise ValueError(f"{kind}: {name} must be positive; got {value!r}.")
        if nonneg and value < 0:
            raise ValueError(f"{kind}: {name} must be >= 0; got {value!r}.")
        if scale and not _TINY <= value <= _HUGE:
            raise ValueError(
                f"{kind}: {name}={value!r} is too extreme to compute with (its "
                f"square is not a double); use a value in [{_TINY:g}, {_HUGE:g}]. "
                "A scale this small fixes the parameter: leave it out of the "
                "model, or use a wider prior."
            )
        object.__setattr__(self, name, value)

    def __repr__(self):
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{type(self).__name__}({args})"

    def logpdf(self, x):
        """Log density of the prior (normalised where the prior is proper).

        Parameters
        ----------
        x : float or array-like
            Values of the parameter.

        Returns
        -------
        float or ndarray
            ``log p(x)``; ``-inf`` outside the support.
        """
        return self._logpdf(x)

    def dlogpdf(self, x):
        """Derivative of :meth:`logpdf` in ``x`` (what the optimizers use).

        Parameters
        ----------
        x : float or array-like
            Values of the parameter.

        Returns
        -------
        float or ndarray
            ``d log p(x) / dx``.
        """
        return self._dlogpdf(x)

    def get_params(self, deep=True):
        """The prior's arguments, as scikit-learn's ``get_params``.

        Parameters
        ----------
        deep : bool, default=True
            Ignored (a prior has no nested parameters); kept for scikit-learn.

        Returns
        -------
        dict
            Argument names and values.

        Examples
        --------
        >>> from skre.priors import Gamma
        >>> Gamma(2.5, 0).get_params()
        {'shape': 2.5, 'rate': 0.0}
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def set_params(self, **params):
        """A new prior with some arguments changed (priors are immutable).

        Parameters
        ----------
        **params : dict
            Argument names and their new values.

        Returns
        -------
        prior
            A new prior of the same class; this one is unchanged.

        Examples
        --------
        >>> from skre.priors import HalfNormal
        >>> HalfNormal(1.0).set_params(scale=0.5)
        HalfNormal(scale=0.5)
        """
        names = {f.name for f in fields(self)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no parameter {unknown[0]!r}; its "
                f"parameters are {sorted(names)}."
            )
        return replace(self, **params)


@dataclass(frozen=True, repr=False)
class Normal(_Prior):
    """Normal(mean, scale) on the real line (for logits and coefficients).

    Read more in the :ref:`User Guide <priors_gridsearch>`.

    Parameters
    ----------
    mean : float, default=0.0
        The centre.
    scale : float, default=1.0
        The standard deviation, in [1e-150, 1e150].

    See Also
    --------
    HalfNormal
        The same density folded at 0, for ``tau``.
    Flat
        No prior at all (the default).

    Examples
    --------
    >>> from skre.priors import Normal
    >>> p = Normal(0.0, 2.0)
    >>> round(float(p.logpdf(1.0)), 6), float(p.dlogpdf(1.0))
    (-1.737086, -0.25)
    """

    mean: float = 0.0
    scale: float = 1.0
    proper = True

    def __post_init__(self):
        self._check("mean", self.mean)
        self._check("scale", self.scale, positive=True, scale=True)

    def _logpdf(self, x):
        return stats.norm.logpdf(x, self.mean, self.scale)

    def _dlogpdf(self, x):
        return -(np.asarray(x) - self.mean) / self.scale**2


@dataclass(frozen=True, repr=False)
class HalfNormal(_Prior):
    """Half-normal on ``x >= 0`` with the given scale.

    Read more in the :ref:`User Guide <priors_gridsearch>`.

    Parameters
    ----------
    scale : float, default=1.0
        The scale (the SD of the normal folded at 0), in [1e-150, 1e150].

    See Also
    --------
    HalfCauchy
        Heavier tail: lets ``tau`` be large.
    HalfStudentT
        Between the two.

    Examples
    --------
    >>> from skre.priors import HalfNormal
    >>> round(float(HalfNormal(1.0).logpdf(0.5)), 6)
    -0.350791
    """

    scale: float = 1.0
    proper = True

    def __post_init__(self):
        self._check("scale", self.scale, positive=True, scale=True)

    def _logpdf(self, x):
        return stats.halfnorm.logpdf(x, scale=self.scale)

    def _dlogpdf(self, x):
        return -np.asarray(x) / self.scale**2


@dataclass(frozen=True, repr=False)
class HalfCauchy(_Prior):
    """Half-Cauchy on ``x >= 0`` (Gelman's weakly informative prior for an SD).

    Read more in the :ref:`User Guide <priors_gridsearch>`.

    Parameters
    ----------
    scale : float, default=1.0
        The scale (the median), in [1e-150, 1e150].

    See Also
    --------
    HalfNormal
        Lighter tail.
    Gamma
        Density 0 at ``tau = 0``: keeps the mode positive.

    Examples
    --------
    >>> from skre.priors import HalfCauchy
    >>> round(float(HalfCauchy(1.0).logpdf(1.0)), 6)
    -1.14473
    """

    scale: float = 1.0
    proper = True

    def __post_init__(self):
        self._check("scale", self.scale, positive=True, scale=True)

    def _logpdf(self, x):
        return stats.halfcauchy.logpdf(x, scale=self.scale)

    def _dlogpdf(self, x):
        x = np.asarray(x)
        return -2.0 * x / (self.scale**2 + x * x)


@dataclass(frozen=True, repr=False)
class HalfStudentT(_Prior):
    """Half-Student-t with ``df`` degrees of freedom on ``x >= 0``.

    Read more in the :ref:`User Guide <priors_gridsearch>`.

    Parameters
    ----------
    df : float, default=3.0
        Degrees of freedom (1 is the half-Cauchy, infinity the half-normal).
    scale : float, default=1.0
        The scale, in [1e-150, 1e150].

    See Also
    --------
    HalfCauchy
        ``df = 1``.
    HalfNormal
        The limit of large ``df``.

    Examples
    --------
    >>> from skre.priors import HalfStudentT
    >>> round(float(HalfStudentT(3, 1.0).logpdf(0.0)), 6)
    -0.307742
    """

    df: float = 3.0
    scale: float = 1.0
    proper = True

    def __post_init__(self):
        self._check("df", self.df, positive=True)
        self._check("scale", self.scale, positive=True, scale=True)

    def _logpdf(self, x):
        x = np.asarray(x, dtype=float)
        out = np.log(2.0) + stats.t.logpdf(x, self.df, scale=self.scale)
        return np.where(x >= 0, out, -np.inf)[()]

    def _dlogpdf(self, x):
        x = np.asarray(x)
        return -(self.df + 1.0) * x / (self.df * self.scale**2 + x * x)


@dataclass(frozen=True, repr=False)
class Gamma(_Prior):
    """Gamma(shape, rate) density on ``x > 0``; ``rate = 0`` is improper.

    ``Gamma(2.5, 0)`` on ``tau`` is blme's default penalty: it adds
    ``1.5 log tau`` to the log-likelihood, which keeps the mode of tau away
    from 0.

    Read more in the :ref:`User Guide <priors_gridsearch>`.

    Parameters
    ----------
    shape : float, default=2.5
        The shape; the density behaves as ``x^(shape - 1)`` near 0.
    rate : float, default=0.0
        The rate; 0 gives the improper ``x^(shape - 1)``.

    See Also
    --------
    HalfCauchy
        A proper prior for ``method="bayes"``.

    Examples
    --------
    >>> from skre.priors import Gamma
    >>> p = Gamma(2.5, 0.0)
    >>> p.proper, float(p.dlogpdf(2.0))
    (False, 0.75)
    """

    shape: float = 2.5
    rate: float = 0.0
    proper = property(lambda self: self.rate > 0)

    def __post_init__(self):
        self._check("shape", self.shape, positive=True)
        self._check("rate", self.rate, nonneg=True)

    def _logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore"):
            out = special.xlogy(self.shape - 1.0, x) - self.rate * x
        if self.rate > 0:
            out = out + self.shape * np.log(self.rate) - special.gammaln(self.shape)
        return np.where(x >= 0, out, -np.inf)[()]

    def _dlogpdf(self, x):
        return (self.shape - 1.0) / np.asarray(x, dtype=float) - self.rate


@dataclass(frozen=True, repr=False)
class GammaPrecision(_Prior):
    """The classic BUGS prior: Gamma(shape, rate) on the precision ``1 / tau^2``.

    As a prior on ``tau`` (what skre's estimators take) its density is that
    of the gamma at ``1 / tau^2`` times the Jacobian ``2 / tau^3``::

        p(tau) = 2 rate^shape / Gamma(shape) tau^(-2 shape - 1) exp(-rate / tau^2)

    It vanishes faster than any power as tau goes to 0 (so the posterior
    mode of tau is never 0) and decays as ``tau^(-2 shape - 1)``. BUGS's
    ``dgamma(0.001, 0.001)`` is nearly improper; it pulls tau towards 0 by an
    amount that depends on the scale of the data (Gelman, 2006), which is why
    :class:`HalfCauchy` is usually preferred.

    Read more in the :ref:`User Guide <priors_gridsearch>`.

    Parameters
    ----------
    shape : float, default=1.0
        The gamma's shape (positive).
    rate : float, default=1.0
        The gamma's rate (positive), in [1e-150, 1e150].

    See Also
    --------
    Gamma
        A gamma on tau itself.
    HalfCauchy
        Gelman's weakly informative prior for an SD.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from skre.priors import GammaPrecision
    >>> p = GammaPrecision(2.0, 0.5)
    >>> tau = 0.8
    >>> gamma = stats.gamma(2.0, scale=1 / 0.5).logpdf(tau**-2)
    >>> bool(np.isclose(p.logpdf(tau), gamma + np.log(2 / tau**3)))
    True
    >>> p.proper, float(p.logpdf(0.0))
    (True, -inf)
    """

    shape: float = 1.0
    rate: float = 1.0
    proper = True

    def __post_init__(self):
        self._check("shape", self.shape, positive=True)
        self._check("rate", self.rate, positive=True, scale=True)

    def _logpdf(self, x):
        x = np.asarray(x, dtype=float)
        pos = np.where(x > 0, x, 1.0)
        const = np.log(2.0) + self.shape * np.log(self.rate)
        out = const - special.gammaln(self.shape)
        out = out - (2.0 * self.shape + 1.0) * np.log(pos) - self.rate / pos**2
        return np.where(x > 0, out, -np.inf)[()]

    def _dlogpdf(self, x):
        x = np.asarray(x, dtype=float)
        return -(2.0 * self.shape + 1.0) / x + 2.0 * self.rate / x**3


@dataclass(frozen=True, repr=False)
class Flat(_Prior):
    """The improper flat prior: log density 0 everywhere.

    Read more in the :ref:`User Guide <priors_gridsearch>`.

    See Also
    --------
    Normal
        A proper prior on logits and coefficients.

    Examples
    --------
    >>> from skre.priors import Flat
    >>> Flat() == Flat(), float(Flat().logpdf(3.0))
    (True, 0.0)
    """

    proper = False

    def _logpdf(self, x):
        return np.zeros_like(np.asarray(x, dtype=float))[()]

    def _dlogpdf(self, x):
        return np.zeros_like(np.asarray(x, dtype=float))[()]


@dataclass(frozen=True, repr=False)
class LKJ(_Prior):
    """LKJ prior on the correlations of random effects, and a prior on each SD.

    For ``random_slopes``' covariance: ``log p(Sigma) = sum_i log p_sd(sd_i) +
    (eta - 1) log det R`` with ``R`` the correlation matrix (unnormalised). With
    ``eta > 1`` the density vanishes as a correlation reaches +-1, with
    ``sd=Gamma(2.5, 0)`` (blme's penalty on an SD) as an SD reaches 0: a MAP fit
    stays off the boundary of singular covariances. The mode is found in the
    Cholesky factor's entries, the prior's density evaluated at the covariance
    they give (no Jacobian), as blme evaluates its priors.

    Read more in the :ref:`User Guide <beyond_guide>`.

    Parameters
    ----------
    eta : float, default=2.0
        The LKJ shape: 1 is uniform over correlation matrices, larger values
        pull the correlations towards 0.
    sd : prior, default=Gamma(2.5, 0.0)
        The prior on each random effect's SD (a half-distribution or
        :class:`Gamma`).

    See Also
    --------
    Gamma
        The default prior on each SD, blme's penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from skre.priors import LKJ
    >>> p = LKJ(2.0)
    >>> S = np.array([[1.0, 0.3], [0.3, 0.25]])
    >>> round(float(p.logpdf(S)), 6)  # 1.5 log 1 + 1.5 log 0.5 + log(1 - 0.6^2)
    -1.486008
    """

    eta: float = 2.0
    sd: object = None
    proper = False

    def __post_init__(self):
        self._check("eta", self.eta, positive=True)
        sd = Gamma(2.5, 0.0) if self.sd is None else self.sd
        if not isinstance(sd, (HalfNormal, HalfCauchy, HalfStudentT, Gamma)):
            raise TypeError(
                f"LKJ: sd must be a prior on an SD (HalfNormal, HalfCauchy, "
                f"HalfStudentT or Gamma); got {_show(sd)}."
            )
        object.__setattr__(self, "sd", sd)

    def logpdf(self, x):
        """Log density at a covariance matrix (unnormalised).

        Parameters
        ----------
        x : array-like of shape (n_effects, n_effects)
            A covariance matrix of the random effects.

        Returns
        -------
        float
            ``-inf`` where an SD is 0 under a prior with density 0 there, or
            a correlation is +-1 with ``eta > 1``.
        """
        S = np.asarray(x, dtype=float)
        sd = np.sqrt(np.maximum(np.diag(S), 0.0))
        out = float(np.sum(self.sd.logpdf(sd)))
        if len(sd) > 1 and self.eta != 1.0:
            with np.errstate(divide="ignore", invalid="ignore"):
                R = S / np.outer(sd, sd)
                sign, logdet = np.linalg.slogdet(R)
            out += (self.eta - 1.0) * (logdet if sign > 0 else -np.inf)
        return out

    def dlogpdf(self, x):
        """Not defined for a matrix: the fit differentiates :meth:`logpdf`.

        The fit takes central differences of :meth:`logpdf` in the Cholesky
        factor's entries itself.

        Parameters
        ----------
        x : array-like
            Ignored.

        Returns
        -------
        None
            Always.
        """
        return None


def std_normal_prior(design, prior):
    """A Normal (or Flat) prior on user-scale slopes as ``(means, precisions)`` on
    the standardized slopes the core fits; aliased slopes get none."""
    if prior is None or isinstance(prior, Flat):
        return None
    if not isinstance(prior, Normal):
        raise TypeError(
            f"coef_prior must be a Normal or Flat prior; got {prior!r} (half "
            "distributions are for tau)."
        )
    scale = design.z_scale
    with np.errstate(over="ignore", divide="ignore"):
        mean = np.where(design.aliased, 0.0, prior.mean * scale)
        prec = np.where(design.aliased, 0.0, 1.0 / (prior.scale * scale) ** 2)
    bad = ~(np.isfinite(mean) & np.isfinite(prec))
    if bad.any():
        name = design.covariates[np.flatnonzero(bad)[0]]
        raise ValueError(
            f"coef_prior={prior!r} cannot be used with covariate {str(name)!r}: on "
            "the covariate's scale (its standard deviation) the prior's precision "
            "or mean is not a finite double. Rescale the covariate or widen the "
            "prior."
        )
    return mean, prec


def group_prior_params(prior):
    """``(mean, precision)`` of a Normal prior on group logits, or None."""
    if prior is None or isinstance(prior, Flat):
        return None
    if not isinstance(prior, Normal):
        raise TypeError(
            f"group_prior must be a Normal or Flat prior; got {_show(prior)}."
        )
    return float(prior.mean), 1.0 / prior.scale**2
