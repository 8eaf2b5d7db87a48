"""The CDF of a binomial count whose logit is normal, accurate for any trials.

``P(Y <= k)`` for ``Y | xi ~ Binomial(n, expit(loc + xi))``, ``xi ~ N(0,
scale^2)``: the population distribution of a row's count under the
random-intercept model, which quantile residuals need. With ``T`` the logit
of a ``Beta(k + 1, n - k)`` variable, ``P(Y <= k | p) = P(T >= logit p)``
(the binomial-beta identity), so

    P(Y <= k) = E_xi[ P(T >= loc + xi) ] = E_T[ Phi((T - loc) / scale) ].

Either expectation is a smooth integrand against a one-dimensional
distribution, but each is accurate by Gauss-Hermite quadrature only when its
integrand varies on a scale no smaller than that distribution's: the first
when ``scale`` is at most ``sd(T)`` (few trials: the binomial CDF varies
slowly in xi), the second otherwise (many trials: T is concentrated and Phi is
smooth on its scale). A fixed rule in xi alone misses the binomial CDF's step
once ``n`` is large (CDF errors of 0.009 at n = 100 and 0.067 at n = 1000
with 25 nodes). The second expectation is taken over the normal quantile
transform of T (``T = Q_T(Phi(v))``, v ~ N(0, 1)), whose integrand is smooth
also when ``k`` is 0 or ``n - 1`` (T then has an exponential tail).

Against ``scipy.integrate.quad`` over 1700 cases (n from 1 to 10^6, scale
from 0.01 to 8, loc from -8 to 2.5, k across its range) the largest absolute
error is 7e-12; in the lower tail the relative error is below 2e-8 down to
probabilities of 1e-10 (1e-4 down to 1e-30; the far tail beyond, where a
residual is past -11, is not resolved).
"""

import numpy as np
from scipy import stats
from scipy.special import betainccinv, betaincinv, expit, log_ndtr, logsumexp, polygamma

from .rules import normal_rule

#: Gauss-Hermite nodes of either expectation
NODES = 64


def logit_normal_binom_logcdf(k, n, loc, scale):
    """``log P(Y <= k)`` row by row (arrays of one length; ``scale`` >= 0).

    ``scale`` 0 is the binomial CDF at ``expit(loc)``; ``k < 0`` gives
    ``-inf`` and ``k >= n`` gives 0.
    """
    k, n, loc, scale = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (k, n, loc, scale))
    )
    out = np.where(k < 0, -np.inf, 0.0)
    inner = (k >= 0) & (k < n)
    a, b = k[inner] + 1.0, n[inner] - k[inner]
    sd_T = np.sqrt(polygamma(1, a) + polygamma(1, b))
    over_T = scale[inner] > sd_T
    z, w = normal_rule(NODES)
    rows = np.flatnonzero(inner)
    i = rows[~over_T]
    if len(i):
        p = expit(loc[i, None] + scale[i, None] * z)
        with np.errstate(divide="ignore"):
            log_cdf = stats.binom.logcdf(k[i, None], n[i, None], p)
        out[i] = logsumexp(np.log(w) + log_cdf, axis=1)
    i = rows[over_T]
    if len(i):
        a, b = a[over_T, None], b[over_T, None]
        tail = stats.norm.cdf(-np.abs(z))  # each node's tail probability
        # T's quantiles at Phi(z): from the lower tail below the median, from
        # the upper tail above it (no rounding of probabilities near 1)
        B = np.where(z < 0, betaincinv(a, b, tail), betainccinv(a, b, tail))
        with np.errstate(divide="ignore"):
            T = np.log(B) - np.log1p(-B)
        out[i] = logsumexp(
            np.log(w) + log_ndtr((T - loc[i, None]) / scale[i, None]), axis=1
        )
    return np.minimum(out, 0.0)
