"""The logit-normal distribution of a new group's success probability."""

import numpy as np
from scipy import stats
from scipy.special import expit, logit

from .quadrature import marginal_mean


class LogitNormal:
    """``theta = expit(loc + scale * Z)`` with ``Z ~ N(0, 1)``, like a frozen scipy
    distribution.

    This is the population distribution of a multilevel model: the success
    probability of a batch not in the data. ``scale = 0`` is a point mass at
    ``expit(loc)`` (a boundary fit).

    Parameters
    ----------
    loc : float
        Mean of ``logit(theta)`` (the model's intercept ``b``).
    scale : float
        Standard deviation of ``logit(theta)`` (the model's ``tau``).

    Examples
    --------
    >>> from skre import LogitNormal
    >>> pop = LogitNormal(-1.939, 0.674)
    >>> round(pop.median(), 4)
    0.1258
    >>> round(pop.mean(), 4)
    0.1436
    >>> [round(v, 4) for v in pop.interval(0.95)]
    [0.037, 0.3502]
    """

    def __init__(self, loc, scale):
        self.loc = float(loc)
        self.scale = float(scale)
        if not (np.isfinite(self.loc) and np.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(f"LogitNormal needs a finite loc and scale >= 0; got "
                             f"loc={loc!r}, scale={scale!r}.")

    def __repr__(self):
        return f"LogitNormal(loc={self.loc:.6g}, scale={self.scale:.6g})"

    def _z(self, x):
        with np.errstate(divide="ignore"):
            return (logit(np.asarray(x, dtype=float)) - self.loc) / self.scale

    def cdf(self, x):
        """Probability that a new group's theta is at most ``x``."""
        if self.scale == 0:
            return np.where(np.asarray(x) >= expit(self.loc), 1.0, 0.0)[()]
        return stats.norm.cdf(self._z(x))

    def sf(self, x):
        return 1.0 - self.cdf(x)

    def ppf(self, q):
        """Quantile function: ``expit(loc + scale * Phi^-1(q))``."""
        return expit(self.loc + self.scale * stats.norm.ppf(q))

    def isf(self, q):
        return self.ppf(1.0 - np.asarray(q))

    def pdf(self, x):
        """Density of theta on (0, 1)."""
        x = np.asarray(x, dtype=float)
        if self.scale == 0:
            return np.where(x == expit(self.loc), np.inf, 0.0)[()]
        inside = (x > 0) & (x < 1)
        xs = np.where(inside, x, 0.5)
        dens = stats.norm.pdf(self._z(xs)) / (self.scale * xs * (1.0 - xs))
        return np.where(inside, dens, 0.0)[()]

    def logpdf(self, x):
        with np.errstate(divide="ignore"):
            return np.log(self.pdf(x))

    def mean(self):
        """``E[theta]``: the marginal probability of success in a new group."""
        return float(marginal_mean(self.loc, self.scale))

    def median(self):
        return float(expit(self.loc))

    def var(self):
        x, w = np.polynomial.hermite.hermgauss(64)
        vals = expit(self.loc + np.sqrt(2.0) * self.scale * x)
        return float(w @ vals**2 / np.sqrt(np.pi) - self.mean() ** 2)

    def std(self):
        return float(np.sqrt(self.var()))

    def interval(self, confidence):
        """Central interval holding ``confidence`` of new groups' theta."""
        a = (1.0 - confidence) / 2.0
        return float(self.ppf(a)), float(self.ppf(1.0 - a))

    def rvs(self, size=None, random_state=None):
        """Draw success probabilities of new groups."""
        rng = np.random.default_rng(random_state) if not isinstance(
            random_state, np.random.RandomState) else random_state
        return expit(self.loc + self.scale * rng.standard_normal(size))
