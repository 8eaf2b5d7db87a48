"""The logit-normal distribution of a new group's success probability."""

import numpy as np
from scipy import stats
from scipy.special import expit, logit

from .quadrature import marginal_mean
from .rules import logistic_normal_rule


def _plain(value):
    """A numpy scalar as the Python number it holds (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _rng(random_state):
    if isinstance(random_state, np.random.RandomState):
        return random_state
    return np.random.default_rng(random_state)


class _ThetaDistribution:
    """What every distribution of a success probability derives from cdf/ppf/pdf/var."""

    def sf(self, x):
        """Probability that a new group's theta exceeds ``x``.

        Parameters
        ----------
        x : float or array-like
            Success probabilities in [0, 1].

        Returns
        -------
        float or ndarray
            ``1 - cdf(x)``.
        """
        return 1.0 - self.cdf(x)

    def isf(self, q):
        """Inverse of :meth:`sf`: the theta exceeded with probability ``q``.

        Parameters
        ----------
        q : float or array-like
            Probabilities in [0, 1].

        Returns
        -------
        float or ndarray
            ``ppf(1 - q)``.
        """
        return self.ppf(1.0 - np.asarray(q))

    def logpdf(self, x):
        """Log density of theta.

        Parameters
        ----------
        x : float or array-like
            Success probabilities in [0, 1].

        Returns
        -------
        float or ndarray
            ``log pdf(x)``; ``-inf`` outside (0, 1).
        """
        with np.errstate(divide="ignore"):
            return np.log(self.pdf(x))

    def std(self):
        """Standard deviation of theta.

        Returns
        -------
        float
            ``sqrt(var())``.
        """
        return float(np.sqrt(self.var()))

    def interval(self, confidence):
        """Central interval holding ``confidence`` of new groups' theta.

        Parameters
        ----------
        confidence : float
            Probability in (0, 1), e.g. 0.95.

        Returns
        -------
        tuple of float
            ``(ppf((1 - confidence) / 2), ppf((1 + confidence) / 2))``.
        """
        a = (1.0 - confidence) / 2.0
        return float(self.ppf(a)), float(self.ppf(1.0 - a))


class LogitNormal(_ThetaDistribution):
    """The logit-normal distribution of theta, like a frozen scipy distribution.

    ``theta = expit(loc + scale * Z)`` with ``Z ~ N(0, 1)``.

    This is the population distribution of a multilevel model: the success
    probability of a batch not in the data. ``scale = 0`` is a point mass at
    ``expit(loc)`` (a boundary fit).

    Its mean ``E[theta]`` is what :meth:`MultilevelBinomial.predict_proba
    <skre.MultilevelBinomial.predict_proba>` returns for a new group; its
    median ``expit(loc)`` is what lme4 predicts with ``re.form = NA``.

    Read more in the :ref:`User Guide <population_guide>`.

    Parameters
    ----------
    loc : float
        Mean of ``logit(theta)`` (the model's intercept ``b``).
    scale : float
        Standard deviation of ``logit(theta)`` (the model's ``tau``).

    See Also
    --------
    skre.MultilevelBinomial.prediction_interval : The interval of a new
        group's theta, optionally with the uncertainty of ``b`` and ``tau``.
    skre.plotting.PopulationDisplay : Plot of this distribution.

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
        if not (
            (np.isfinite(self.loc) or self.scale == 0)
            and np.isfinite(self.scale)
            and self.scale >= 0
        ):
            raise ValueError(
                f"LogitNormal needs a finite loc and scale >= 0; got "
                f"loc={_plain(loc)!r}, scale={_plain(scale)!r}."
            )

    def __repr__(self):
        return f"LogitNormal(loc={self.loc:.6g}, scale={self.scale:.6g})"

    def _z(self, x):
        with np.errstate(divide="ignore"):
            return (logit(np.asarray(x, dtype=float)) - self.loc) / self.scale

    def cdf(self, x):
        """Probability that a new group's theta is at most ``x``.

        Parameters
        ----------
        x : float or array-like
            Success probabilities in [0, 1].

        Returns
        -------
        float or ndarray
            ``Phi((logit x - loc) / scale)``; 0 below 0 and 1 above 1, as a
            frozen scipy distribution gives outside its support.
        """
        x = np.asarray(x, dtype=float)
        if self.scale == 0:
            return np.where(x >= expit(self.loc), 1.0, 0.0)[()]
        inside = np.clip(x, 0.0, 1.0)
        with np.errstate(divide="ignore"):
            return np.where(np.isnan(x), np.nan, stats.norm.cdf(self._z(inside)))[()]

    def ppf(self, q):
        """Quantile function: ``expit(loc + scale * Phi^-1(q))``.

        Parameters
        ----------
        q : float or array-like
            Probabilities in [0, 1].

        Returns
        -------
        float or ndarray
            The theta below which a share ``q`` of new groups fall.
        """
        return expit(self.loc + self.scale * stats.norm.ppf(q))

    def pdf(self, x):
        """Density of theta on (0, 1).

        Parameters
        ----------
        x : float or array-like
            Success probabilities in [0, 1].

        Returns
        -------
        float or ndarray
            The logit-normal density; 0 outside (0, 1).
        """
        x = np.asarray(x, dtype=float)
        if self.scale == 0:
            return np.where(x == expit(self.loc), np.inf, 0.0)[()]
        inside = (x > 0) & (x < 1)
        xs = np.where(inside, x, 0.5)
        dens = stats.norm.pdf(self._z(xs)) / (self.scale * xs * (1.0 - xs))
        return np.where(inside, dens, 0.0)[()]

    def mean(self):
        """``E[theta]``: the marginal probability of success in a new group.

        Returns
        -------
        float
            ``E[expit(loc + scale Z)]`` by a trapezoid rule in ``Z`` whose
            step shrinks with ``scale`` (exact to rounding however large
            ``scale``).
        """
        if not np.isfinite(self.loc):  # a point mass at 0 or 1
            return float(expit(self.loc))
        return float(marginal_mean(self.loc, self.scale))

    def median(self):
        """The median of theta, ``expit(loc)``.

        Returns
        -------
        float
            ``expit(loc)``, below the mean when ``loc < 0``.
        """
        return float(expit(self.loc))

    def var(self):
        """Variance of theta.

        Returns
        -------
        float
            ``E[theta^2] - E[theta]^2`` by the same rule as :meth:`mean`.
        """
        if not np.isfinite(self.loc):
            return 0.0
        z, log_w = logistic_normal_rule(self.scale)
        vals = expit(self.loc + self.scale * z)
        return float(np.exp(log_w) @ vals**2 - self.mean() ** 2)

    def rvs(self, size=None, random_state=None):
        """Draw success probabilities of new groups.

        Parameters
        ----------
        size : int or tuple of int, default=None
            Shape of the draws; None for one float.
        random_state : int, Generator, RandomState or None, default=None
            Seed or generator.

        Returns
        -------
        float or ndarray
            Draws of theta.
        """
        return expit(self.loc + self.scale * _rng(random_state).standard_normal(size))


class LogitNormalMixture(_ThetaDistribution):
    """A weighted mixture of :class:`LogitNormal` distributions, with the same
    methods: the posterior predictive of theta for a new group when the
    hyperparameters are integrated over (``method="bayes"``).

    Examples
    --------
    >>> from skre._core.population import LogitNormalMixture
    >>> mix = LogitNormalMixture([-2.0, -1.8], [0.6, 0.7], [0.5, 0.5])
    >>> round(float(mix.cdf(mix.ppf(0.3))), 10)
    0.3
    """

    def __init__(self, locs, scales, weights):
        self.locs = np.asarray(locs, dtype=float)
        self.scales = np.asarray(scales, dtype=float)
        self.weights = np.asarray(weights, dtype=float) / np.sum(weights)
        self._parts = [LogitNormal(a, s) for a, s in zip(self.locs, self.scales)]

    def __repr__(self):
        return f"LogitNormalMixture({len(self.weights)} components)"

    def cdf(self, x):
        return sum(w * p.cdf(x) for w, p in zip(self.weights, self._parts))

    def pdf(self, x):
        return sum(w * p.pdf(x) for w, p in zip(self.weights, self._parts))

    def ppf(self, q):
        """Quantiles, by Brent's method on the mixture CDF."""
        from scipy.optimize import brentq

        q = np.asarray(q, dtype=float)
        lo, hi = (
            expit(self.locs.min() - 12 * self.scales.max() - 1),
            expit(self.locs.max() + 12 * self.scales.max() + 1),
        )
        out = [
            brentq(lambda v: float(self.cdf(v)) - qi, lo, hi, xtol=1e-15, rtol=1e-13)
            for qi in q.ravel()
        ]
        return np.reshape(out, q.shape)[()]

    def mean(self):
        return float(sum(w * p.mean() for w, p in zip(self.weights, self._parts)))

    def median(self):
        return float(self.ppf(0.5))

    def var(self):
        second = sum(
            w * (p.var() + p.mean() ** 2) for w, p in zip(self.weights, self._parts)
        )
        return float(second - self.mean() ** 2)

    def rvs(self, size=None, random_state=None):
        rng = _rng(random_state)
        n = int(np.prod(size)) if size is not None else 1
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        draws = expit(self.locs[k] + self.scales[k] * rng.standard_normal(n))
        return draws.reshape(size) if size is not None else float(draws[0])
