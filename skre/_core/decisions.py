"""Decisions on groups: exceedance, ranks, error rates and a new batch's count.

Everything here reads the exact conditional distribution of each group's
effect ``u_g`` (``xi_g = tau u_g``) given its data, whose log density is::

    h_g(u) = sum_i kernel(o_i + tau u; m_i, n_i) - u^2 / 2

(strongly concave: ``h_g'' <= -1``), and the population ``N(0, tau^2)`` of a
new group. No normal approximation is made anywhere.

* :func:`tail_fractions`: ``P(u_g <= u*_g)`` and ``P(u_g > u*_g)``, each
  integrated on its own side of ``u*_g`` by composite Gauss-Legendre rules in
  ``v``, with ``u = mode + s sinh(v)`` (``s`` the Laplace scale): dense near
  the mode, reaching far tails in few nodes.
* :func:`theta_root`: where a group's success probability (the
  trials-weighted mean of ``expit(o_i + xi)`` over its rows) equals ``c``.
* :func:`quantile_table`, :func:`table_draws`: inverse-CDF draws of every
  group's success probability (its quantile function tabulated at 1025
  probabilities from a grid CDF, interpolated linearly).
* :func:`new_batch_tails`, :func:`new_batch_pmf`: the successes of a new
  group's rows, by the trapezoid rule over its effect (:func:`effect_rule`).
* :func:`bayes_qvalues`, :func:`bh_adjust`, :func:`holm_adjust`: error rates.
"""

from math import fsum

import numpy as np
from scipy.special import expit, logit, ndtr
from scipy.stats import binom

from .binomial import kernel

#: |u - mode| beyond which h_g is at least 46 below its top (h'' <= -1)
REACH = 9.6
#: Gauss-Legendre panels per side of the threshold, nodes per panel
PANELS, ORDER = 8, 10
#: rows x nodes evaluated at once
CHUNK = 2_000_000


def _legendre(a, b):
    """Composite Gauss-Legendre nodes and weights on [a_g, b_g] per group:
    (G, PANELS * ORDER) arrays."""
    x, w = np.polynomial.legendre.leggauss(ORDER)
    edges = a[:, None] + (b - a)[:, None] * np.linspace(0.0, 1.0, PANELS + 1)
    half = 0.5 * np.diff(edges, axis=1)  # (G, PANELS)
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    nodes = mid[:, :, None] + half[:, :, None] * x[None, None, :]
    weights = half[:, :, None] * w[None, None, :]
    G = len(a)
    return nodes.reshape(G, -1), weights.reshape(G, -1)


def _log_density(data, offset, tau, u, g0, g1):
    """h_g(u) (without its constant) for groups g0..g1-1 at nodes u (g1-g0, k)."""
    r0 = data.starts[g0]
    r1 = data.starts[g1] if g1 < data.n_groups else len(data.codes)
    codes = data.codes[r0:r1] - g0
    eta = offset[r0:r1, None] + tau * u[codes]
    ll = kernel(eta, data.successes[r0:r1, None], data.trials[r0:r1, None])
    return np.add.reduceat(ll, data.starts[g0:g1] - r0, axis=0) - 0.5 * u * u


def _chunks(data, width):
    """Group ranges whose rows x ``width`` stay near CHUNK."""
    rows = np.diff(np.r_[data.starts, len(data.codes)])
    chunk = (np.cumsum(rows) - 1) // max(1, CHUNK // width)
    bounds = np.r_[0, np.flatnonzero(np.diff(chunk)) + 1, data.n_groups]
    return zip(bounds[:-1], bounds[1:])


def tail_fractions(data, offset, tau, mode, scale, u_star):
    """``(P(u_g <= u*_g), P(u_g > u*_g))`` for every group, exactly.

    ``data`` holds one term per group (Collapsed rows), ``offset`` the rows'
    linear predictor without the effect, ``mode`` and ``scale`` each group's
    conditional mode of ``u`` and Laplace scale. Each side of ``u*`` is
    integrated separately (relative accuracy on small tails); beyond
    ``mode +- REACH`` the density is below ``exp(-46)`` of its top.
    """
    G = data.n_groups
    lower, upper = np.empty(G), np.empty(G)
    reach = REACH / scale
    t_star = np.clip((u_star - mode) / scale, -reach, reach)
    v_lo, v_hi, v_star = np.arcsinh(-reach), np.arcsinh(reach), np.arcsinh(t_star)
    width = 2 * PANELS * ORDER
    for g0, g1 in _chunks(data, width):
        sl = slice(g0, g1)
        v1, w1 = _legendre(v_lo[sl], v_star[sl])
        v2, w2 = _legendre(v_star[sl], v_hi[sl])
        v, w = np.hstack([v1, v2]), np.hstack([w1, w2])
        u = mode[sl, None] + scale[sl, None] * np.sinh(v)
        h = _log_density(data, offset, tau, u, g0, g1)
        h0 = _log_density(data, offset, tau, mode[sl, None], g0, g1)
        f = w * np.cosh(v) * np.exp(h - h0)
        k = PANELS * ORDER
        lo, hi = f[:, :k].sum(axis=1), f[:, k:].sum(axis=1)
        lower[sl], upper[sl] = lo / (lo + hi), hi / (lo + hi)
    return lower, upper


def theta_root(data, offset, c, max_iter=200):
    """Each group's ``xi`` with ``sum_i n_i expit(o_i + xi) / sum_i n_i = c``.

    ``c`` is a scalar or one value per group, in (0, 1). The mean is
    increasing in ``xi``; safeguarded Newton steps in a bracket.
    """
    c = np.broadcast_to(np.asarray(c, dtype=float), (data.n_groups,))
    target = logit(c)
    o_min = np.minimum.reduceat(offset, data.starts)
    o_max = np.maximum.reduceat(offset, data.starts)
    a, b = target - o_max, target - o_min
    if np.all(a == b):  # one offset per group: the root is exact
        return a
    N = data.group_sum(data.trials)
    x = 0.5 * (a + b)
    for _ in range(max_iter):
        p = expit(offset + x[data.codes])
        f = data.group_sum(data.trials * p) / N - c
        df = data.group_sum(data.trials * p * (1 - p)) / N
        a, b = np.where(f < 0, x, a), np.where(f < 0, b, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x - f / df
        inside = (step > a) & (step < b)
        new = np.where(inside, step, 0.5 * (a + b))
        if np.all(np.abs(new - x) <= 1e-13 * (1 + np.abs(x))):
            return new
        x = new
    return x


def quantile_grid(data, offset, tau, mode, scale, n_grid=801):
    """Each group's CDF and success probability on a grid of ``u``
    (mode +- REACH, sinh-spaced): ``(cdf, theta)``, both (G, n_grid)."""
    G = data.n_groups
    reach = np.arcsinh(REACH / scale)
    s = np.linspace(-1.0, 1.0, n_grid)
    cdf, theta = np.empty((G, n_grid)), np.empty((G, n_grid))
    N = data.group_sum(data.trials)
    for g0, g1 in _chunks(data, n_grid):
        sl = slice(g0, g1)
        v = reach[sl, None] * s[None, :]
        u = mode[sl, None] + scale[sl, None] * np.sinh(v)
        h = _log_density(data, offset, tau, u, g0, g1)
        f = np.exp(h - h.max(axis=1, keepdims=True)) * np.cosh(v) * reach[sl, None]
        # the trapezoid rule in v, cumulated
        c = np.concatenate(
            [np.zeros((g1 - g0, 1)), np.cumsum(0.5 * (f[:, 1:] + f[:, :-1]), axis=1)],
            axis=1,
        )
        cdf[sl] = c / c[:, -1:]
        r0 = data.starts[g0]
        r1 = data.starts[g1] if g1 < G else len(data.codes)
        codes = data.codes[r0:r1] - g0
        p = expit(offset[r0:r1, None] + tau * u[codes])
        num = np.add.reduceat(data.trials[r0:r1, None] * p, data.starts[g0:g1] - r0)
        theta[sl] = num / N[sl, None]
    return cdf, theta


def quantile_table(cdf, theta, K=1024):
    """Each group's quantile function of theta at probabilities ``k / K``,
    ``k = 0..K``, from its grid CDF: (G, K + 1)."""
    probs = np.linspace(0.0, 1.0, K + 1)
    return np.array([np.interp(probs, c, t) for c, t in zip(cdf, theta)])


def table_draws(table, U):
    """Draws ``Q_g(U)`` for uniforms ``U`` (k, G), the quantile function
    interpolated linearly between the table's probabilities. Computed group
    by group (each group's table row read contiguously)."""
    K = table.shape[1] - 1
    x = U.T * K  # (G, k)
    i = np.minimum(x.astype(np.intp), K - 1)
    f = x - i
    i += (np.arange(table.shape[0]) * (K + 1))[:, None]
    flat = table.ravel()
    lo = np.take(flat, i)
    return (lo + (np.take(flat, i + 1) - lo) * f).T


def rank_draws(theta, rng, higher_first=True, ties=False):
    """Ranks (1 = first) within each row of draws (n_draws, G), as small ints.
    With ``ties`` (groups whose theta can be shared, as under complete
    pooling), tied groups are ordered at random, so they share their ranks
    evenly."""
    key = -theta if higher_first else theta
    if ties:
        order = np.lexsort((rng.random(theta.shape), key), axis=1)
    else:
        order = np.argsort(key, axis=1)
    dtype = np.int16 if theta.shape[1] < 2**15 else np.int32
    ranks = np.empty(theta.shape, dtype=dtype)
    rows = np.arange(theta.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, theta.shape[1] + 1, dtype=dtype)[None, :]
    return ranks


def joint_band(ranks, level, srt=None):
    """Simultaneous rank intervals from draws (Besag, Green, Higdon and
    Mengersen 1995): each group's interval is ``[r_(k), r_(n-1-k)]`` of its
    own sorted draws (``srt``, sorted down each column), with the largest
    ``k`` for which all groups lie inside their intervals together in at
    least ``level`` of the draws."""
    n = ranks.shape[0]
    srt = np.sort(ranks, axis=0) if srt is None else srt

    def coverage(k):
        lo, hi = srt[k], srt[n - 1 - k]
        inside = np.all((ranks >= lo) & (ranks <= hi), axis=1)
        return inside.mean()

    a, b = 0, (n - 1) // 2  # coverage(0) = 1
    while a < b:
        k = (a + b + 1) // 2
        if coverage(k) >= level:
            a = k
        else:
            b = k - 1
    return srt[a], srt[n - 1 - a]


#: beyond eta = +-(SATURATE + log(trials + 1)) every trial is a failure (a
#: success) but for a probability below exp(-SATURATE)
SATURATE = 40.0
#: above this many trials one binomial's pmf is summed over windows
WINDOWED = 500
#: the normal density is integrated over +-REACH_Z standard deviations
REACH_Z = 9.5


def effect_rule(offsets, tau, total):
    """The trapezoid rule for ``E f(xi)``, ``xi ~ N(0, tau^2)``, where ``f``
    depends on ``xi`` through ``expit(offsets + xi)`` and varies on the scale
    ``1 / (1 + sqrt(total) / 2)``.

    Beyond the points where every row's probability is 0 (or 1) to within
    ``exp(-SATURATE)``, ``f`` is constant: those tails are masses, and the
    rule stops there with an Euler-Maclaurin end correction. Returns
    ``(xi, w, lo, hi)``: ``E f = w @ f(xi) + lo f(all 0) + hi f(all 1)``.
    The node count stays bounded whatever ``tau`` (about 200 for small ``tau``,
    at most ``8 (SATURATE + log(total + 1)) (1 + sqrt(total) / 2)``).
    """
    offsets = np.asarray(offsets, dtype=float)
    if tau == 0.0:
        return np.zeros(1), np.ones(1), 0.0, 0.0
    L = SATURATE + np.log(total + 1.0)
    s_lo, s_hi = -L - offsets.max(), L - offsets.min()
    lo = float(ndtr(s_lo / tau))
    hi = float(ndtr(-s_hi / tau))
    a, b = max(-REACH_Z * tau, s_lo), min(REACH_Z * tau, s_hi)
    if b <= a:
        return np.zeros(0), np.zeros(0), lo, hi
    h = min(tau / 10.0, 0.25 / (1.0 + np.sqrt(total) / 2.0))
    n = int(np.ceil((b - a) / h)) + 1
    xi = np.linspace(a, b, n)
    h = xi[1] - xi[0]
    psi = np.exp(-0.5 * (xi / tau) ** 2) / (tau * np.sqrt(2 * np.pi))
    w = h * psi
    w[0] *= 0.5
    w[-1] *= 0.5
    dpsi = -xi / tau**2 * psi  # the end correction, where the rule is cut
    if a == s_lo:
        lo += h * h / 12.0 * dpsi[0]
    if b == s_hi:
        hi -= h * h / 12.0 * dpsi[-1]
    return xi, w, lo, hi


def successes_distribution(offsets, trials, xi):
    """P(M = k | xi) for k = 0..sum(trials), M the total successes of rows with
    linear predictors ``offsets + xi`` (binomials, convolved over rows):
    (len(xi), total + 1)."""
    p = expit(np.asarray(offsets)[None, :] + np.asarray(xi)[:, None])
    trials = np.asarray(trials).astype(int)
    out = binom.pmf(np.arange(trials[0] + 1)[None, :], trials[0], p[:, :1])
    for j in range(1, len(trials)):
        pmf = binom.pmf(np.arange(trials[j] + 1)[None, :], trials[j], p[:, j : j + 1])
        out = np.array([np.convolve(x, y) for x, y in zip(out, pmf)])
    return out


def _one_binomial(offsets):
    return np.ptp(offsets) == 0.0


def new_batch_pmf(offsets, trials, tau):
    """Distribution of a new group's total successes (rows' linear predictors
    ``offsets`` without the effect), the effect integrated over
    N(0, tau^2): (total + 1,) probabilities."""
    offsets = np.asarray(offsets, dtype=float)
    trials = np.asarray(trials, dtype=float)
    total = int(trials.sum())
    xi, w, lo, hi = effect_rule(offsets, tau, total)
    if _one_binomial(offsets) and total > WINDOWED:
        out = _windowed_binomial_pmf(offsets[0], xi, w, total)
        out[0] += lo
        out[-1] += hi
        return out
    out = np.zeros(total + 1)
    out[0] += lo
    out[-1] += hi
    step = max(1, CHUNK // (total + 1))
    k = np.arange(total + 1)
    for s in range(0, len(xi), step):
        part = xi[s : s + step]
        if _one_binomial(offsets):
            pmf = binom.pmf(k[None, :], total, expit(offsets[0] + part)[:, None])
        else:
            pmf = successes_distribution(offsets, trials, part)
        out += w[s : s + step] @ pmf
    return out


def _windowed_binomial_pmf(b, xi, w, n):
    """``sum_j w_j Binomial(k | n, expit(b + xi_j))`` for k = 0..n, each node's
    pmf summed only where it exceeds about 1e-30 of its top (within 13
    standard deviations of its mean, plus 13): work ~ nodes x sqrt(n)."""
    out = np.zeros(n + 1)
    p = expit(b + xi)
    half = 13.0 * np.sqrt(n * p * (1 - p)) + 13.0
    lo = np.clip(np.floor(n * p - half), 0, n).astype(int)
    hi = np.clip(np.ceil(n * p + half), 0, n).astype(int)
    for j in range(len(xi)):
        k = np.arange(lo[j], hi[j] + 1)
        out[lo[j] : hi[j] + 1] += w[j] * binom.pmf(k, n, p[j])
    return out


def new_batch_tails(offsets, trials, m, tau):
    """``(P(M >= m), P(M <= m), E[M])`` for a new group's total successes
    ``M`` over rows with linear predictors ``offsets`` (without the effect)
    and ``trials``, its effect integrated over N(0, tau^2)."""
    offsets = np.asarray(offsets, dtype=float)
    trials = np.asarray(trials, dtype=float)
    total = trials.sum()
    if total == 0:  # no trials: M = 0 for certain
        return 1.0, 1.0, 0.0
    xi, w, lo, hi = effect_rule(offsets, tau, total)
    p = expit(offsets[None, :] + xi[:, None])
    mean = w @ (p @ trials) + hi * total
    ge_lim, le_lim = (float(m <= 0), 1.0), (1.0, float(m >= total))
    if _one_binomial(offsets):
        ge = w @ binom.sf(m - 1, total, p[:, 0])
        le = w @ binom.cdf(m, total, p[:, 0])
    else:
        ge = le = 0.0
        step = max(1, CHUNK // max(1, int(total) + 1))
        for s in range(0, len(xi), step):
            pmf = successes_distribution(offsets, trials, xi[s : s + step])
            ge += w[s : s + step] @ pmf[:, int(m) :].sum(axis=1)
            le += w[s : s + step] @ pmf[:, : int(m) + 1].sum(axis=1)
    ge += lo * ge_lim[0] + hi * ge_lim[1]
    le += lo * le_lim[0] + hi * le_lim[1]
    norm = w.sum() + lo + hi  # 1 to rounding: exact for a certain outcome
    ge, le, mean = ge / norm, le / norm, mean / norm
    return min(1.0, max(0.0, ge)), min(1.0, max(0.0, le)), mean


def mixture_tails(offsets, trials, m, taus, weights):
    """:func:`new_batch_tails` averaged over parameter nodes: ``offsets``
    (K, rows) and ``taus`` (K,) at each node, ``weights`` (K,). Sums are
    exactly rounded (a certain outcome gives exactly 1)."""
    parts = np.array(
        [new_batch_tails(offsets[k], trials, m, taus[k]) for k in range(len(taus))]
    )
    total = fsum(weights)
    ge, le, mean = (fsum(weights * parts[:, j]) / total for j in range(3))
    return min(1.0, ge), min(1.0, le), mean


def bayes_qvalues(pep):
    """q-values from posterior error probabilities: the mean PEP of the groups
    at least as likely as each one, ties included (Storey 2003; Newton et
    al. 2004), so that equal PEPs get equal q-values."""
    pep = np.asarray(pep, dtype=float)
    n = len(pep)
    order = np.argsort(pep, kind="stable")
    srt = pep[order]
    running = np.cumsum(srt) / np.arange(1, n + 1)
    # a tie takes the running mean at its last member
    last = np.searchsorted(srt, srt, side="right") - 1
    q = np.empty_like(pep)
    q[order] = running[last]
    return q


def bh_adjust(p):
    """Benjamini-Hochberg adjusted p-values."""
    p = np.asarray(p, dtype=float)
    n = len(p)
    order = np.argsort(p, kind="stable")
    adj = p[order] * n / np.arange(1, n + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    return out


def holm_adjust(p):
    """Holm's step-down adjusted p-values (family-wise error rate)."""
    p = np.asarray(p, dtype=float)
    n = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate(p[order] * (n - np.arange(n)))
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    return out


def normal_exceedance(logit_theta, se, c):
    """P(expit(L) > c) for L ~ N(logit_theta, se^2) (se 0: an indicator)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.asarray(logit_theta) - logit(c)) / np.asarray(se)
    return np.where(np.asarray(se) > 0, ndtr(z), (logit_theta > logit(c)) * 1.0)


__all__ = [
    "tail_fractions",
    "theta_root",
    "quantile_grid",
    "quantile_table",
    "table_draws",
    "rank_draws",
    "joint_band",
    "new_batch_pmf",
    "new_batch_tails",
    "mixture_tails",
    "bayes_qvalues",
    "bh_adjust",
    "holm_adjust",
    "normal_exceedance",
]
