"""Priors for skre's estimators: immutable, comparable, with log density and slope.

A prior is an estimator parameter, so it must clone, compare and print well
(``GridSearchCV`` grids and ``cv_results_``). Every class here is a frozen
dataclass with ``logpdf(x)`` and ``dlogpdf(x)`` (its derivative in ``x``); the
half-distributions live on ``x >= 0`` and are meant for the between-group SD
``tau``. Normalising constants are kept where they exist (``proper`` is True)
and dropped for the improper ``Flat`` and ``Gamma(shape, 0)``.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = ["Flat", "Gamma", "HalfCauchy", "HalfNormal", "HalfStudentT", "Normal"]


def _positive(name, value):
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")


@dataclass(frozen=True)
class Normal:
    """Normal(mean, scale) on the real line (for logits and coefficients).

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
        _positive("scale", self.scale)
        if not np.isfinite(self.mean):
            raise ValueError(f"mean must be finite; got {self.mean!r}.")

    def logpdf(self, x):
        return stats.norm.logpdf(x, self.mean, self.scale)

    def dlogpdf(self, x):
        return -(np.asarray(x) - self.mean) / self.scale**2


@dataclass(frozen=True)
class HalfNormal:
    """Half-normal on ``x >= 0`` with the given scale.

    Examples
    --------
    >>> from skre.priors import HalfNormal
    >>> round(float(HalfNormal(1.0).logpdf(0.5)), 6)
    -0.350791
    """

    scale: float = 1.0
    proper = True

    def __post_init__(self):
        _positive("scale", self.scale)

    def logpdf(self, x):
        return stats.halfnorm.logpdf(x, scale=self.scale)

    def dlogpdf(self, x):
        return -np.asarray(x) / self.scale**2


@dataclass(frozen=True)
class HalfCauchy:
    """Half-Cauchy on ``x >= 0`` (Gelman's weakly informative prior for an SD).

    Examples
    --------
    >>> from skre.priors import HalfCauchy
    >>> round(float(HalfCauchy(1.0).logpdf(1.0)), 6)
    -1.14473
    """

    scale: float = 1.0
    proper = True

    def __post_init__(self):
        _positive("scale", self.scale)

    def logpdf(self, x):
        return stats.halfcauchy.logpdf(x, scale=self.scale)

    def dlogpdf(self, x):
        x = np.asarray(x)
        return -2.0 * x / (self.scale**2 + x * x)


@dataclass(frozen=True)
class HalfStudentT:
    """Half-Student-t with ``df`` degrees of freedom on ``x >= 0``.

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
        _positive("df", self.df)
        _positive("scale", self.scale)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        out = np.log(2.0) + stats.t.logpdf(x, self.df, scale=self.scale)
        return np.where(x >= 0, out, -np.inf)[()]

    def dlogpdf(self, x):
        x = np.asarray(x)
        return -(self.df + 1.0) * x / (self.df * self.scale**2 + x * x)


@dataclass(frozen=True)
class Gamma:
    """Gamma(shape, rate) density on ``x > 0``; ``rate = 0`` is improper.

    ``Gamma(2.5, 0)`` on ``tau`` is blme's default penalty: it adds
    ``1.5 log tau`` to the log-likelihood, which keeps the mode of tau away
    from 0.

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
        _positive("shape", self.shape)
        if not (np.isfinite(self.rate) and self.rate >= 0):
            raise ValueError(f"rate must be finite and >= 0; got {self.rate!r}.")

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore"):
            out = special.xlogy(self.shape - 1.0, x) - self.rate * x
        if self.rate > 0:
            out = out + self.shape * np.log(self.rate) - special.gammaln(self.shape)
        return np.where(x >= 0, out, -np.inf)[()]

    def dlogpdf(self, x):
        return (self.shape - 1.0) / np.asarray(x, dtype=float) - self.rate


@dataclass(frozen=True)
class Flat:
    """The improper flat prior: log density 0 everywhere.

    Examples
    --------
    >>> from skre.priors import Flat
    >>> Flat() == Flat(), float(Flat().logpdf(3.0))
    (True, 0.0)
    """

    proper = False

    def logpdf(self, x):
        return np.zeros_like(np.asarray(x, dtype=float))[()]

    def dlogpdf(self, x):
        return np.zeros_like(np.asarray(x, dtype=float))[()]


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
    mean = np.where(design.aliased, 0.0, prior.mean * scale)
    prec = np.where(design.aliased, 0.0, 1.0 / (prior.scale * scale) ** 2)
    return mean, prec
