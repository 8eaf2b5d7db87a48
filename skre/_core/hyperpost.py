"""The posterior of the hyperparameters by nested deterministic quadrature.

With one random intercept the hyperparameters ``x = (beta, b, log tau)`` are few,
and their posterior ``p(x | y) ∝ L(x) p(x)`` (the group effects integrated out
exactly by adaptive quadrature) can be integrated on a grid instead of sampled.
The marginal of ``theta = log tau`` is far from normal (a long tail towards
tau = 0, where the likelihood flattens to that of complete pooling), so the
grid is nested, as in INLA:

* ``theta`` runs over ``theta(s) = theta_hat + sigma (s + K A (1 - exp(-s/A)))``
  with ``s`` on a uniform grid of step ``h`` (the trapezoid rule, spectrally
  accurate for smooth decaying integrands; the map stretches the steps
  exponentially towards tau = 0 only), extended both ways until the density
  falls below ``exp(-TAIL)`` of its top;
* at each ``theta`` (a *slice*, :mod:`skre._core.hyperslice`) the other
  coordinates are integrated by a product Gauss-Hermite rule centred and
  scaled on their conditional posterior, with ``n`` nodes per dimension where
  the slice holds more than 1% of the mass and two fewer for every factor 100
  less (its errors count in proportion to its mass).

Both rules are checked: the posterior means and SDs (of every coordinate, the
reported coefficients and tau) are compared with those of the grid of step
``2 h`` (every other slice: no new evaluations) and with those of every slice's
rule of two nodes fewer. While the first change exceeds ``tol`` posterior SDs
the step is halved; while the second does, the slices whose coarser rule
alone moves the summary most get two more nodes. Each check measures the
error of the coarser rule, so the reported one is well within it. The
one-dimensional marginals (for quantiles, :mod:`skre._core.hypermarg`) reuse
the same values and are checked the same way.
"""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .hyperslice import Slice, _Builder, _chol
from .optimize import _positive_definite, fd_hessian, minimize_smooth

#: likelihood evaluations allowed over all rules of one fit
MAX_EVALS = 150_000
#: the first number of inner nodes per dimension, by the inner dimension
FIRST_ORDER = {0: 1, 1: 9, 2: 7}
#: otherwise
DEFAULT_ORDER = 5
#: first step of the uniform grid in s (units of the posterior SD of log tau)
FIRST_STEP = 0.45
#: the map theta(s) = theta_hat + sigma (s + K A (1 - exp(-s / A))): steps grow
#: exponentially (scale A) towards tau = 0 only, where the tail is long
STRETCH = 2.0
KAPPA = 0.05
#: the grid of log tau stops where the log density is this far below its top
TAIL = 27.0
#: at most this many new slices at each end per batch (their centres are
#: extrapolated from the slices already computed)
BLOCK = 6


def first_order(dim):
    """Inner nodes per dimension of the first rule, ``dim`` = coordinates
    other than log tau."""
    return FIRST_ORDER.get(dim, DEFAULT_ORDER)


def first_rules_cost(dim, n_theta=30):
    """Evaluations of the least grid that can show convergence: about
    ``n_theta`` values of log tau, each with the first inner rule and the
    one with two nodes fewer."""
    n = first_order(dim - 1)
    return n_theta * (n ** (dim - 1) + max(n - 2, 1) ** (dim - 1))


@dataclass
class HyperPosterior:
    """The nested rule; ``nodes`` and ``weights`` flatten it for averaging."""

    mode: np.ndarray  # the posterior mode of x
    chol: np.ndarray  # Cholesky factor of the inverse Hessian at the mode
    slices: list  # Slice per value of s, sorted by s
    step: float  # h, the step in s
    scale: float  # sigma of the map theta(s)
    n_per_dim: int  # inner nodes per dimension of the slices holding the bulk
    converged: bool  # means and SDs within tol of the coarser rules
    n_evals: int = 0
    changes: dict = field(default_factory=dict)  # the last checks, in SDs

    def theta_of(self, s):
        s = np.asarray(s, dtype=float)
        g = s + KAPPA * STRETCH * (1.0 - np.exp(-s / STRETCH))
        return self.mode[-1] + self.scale * g

    def dtheta_ds(self, s):
        return self.scale * (
            1.0 + KAPPA * np.exp(-np.asarray(s, dtype=float) / STRETCH)
        )

    def s_of(self, theta):
        """Inverse of :meth:`theta_of` (Newton's method; the map is convex)."""
        t = (np.asarray(theta, dtype=float) - self.mode[-1]) / self.scale
        s = np.where(
            t > 0, t, -STRETCH * np.log1p(np.maximum(-t, 0) / (KAPPA * STRETCH))
        )
        for _ in range(60):
            g = s + KAPPA * STRETCH * (1.0 - np.exp(-s / STRETCH))
            step = (g - t) / (1.0 + KAPPA * np.exp(-s / STRETCH))
            s = s - step
            if np.all(np.abs(step) < 1e-13 * (1 + np.abs(s))):
                break
        return s

    @property
    def s(self):
        return np.array([sl.s for sl in self.slices])

    @property
    def log_density_s(self):
        """log density of s (up to a constant) at every slice."""
        return _log_density_s(self, self.slices)

    def log_density_of(self, slices):
        """log density of s (up to a constant) at these slices."""
        return _log_density_s(self, slices)

    def slice_weights(self, slices=None):
        """Trapezoid weights of the slices, summing to 1."""
        lds = _log_density_s(self, self.slices if slices is None else slices)
        w = np.exp(lds - lds.max())
        return w / w.sum()

    @cached_property
    def nodes(self):
        return np.concatenate([sl.x for sl in self.slices])

    @cached_property
    def weights(self):
        W = self.slice_weights()
        return np.concatenate([w * sl.weights for w, sl in zip(W, self.slices)])

    def mean(self, values):
        return self.weights @ values

    def sd(self, values):
        m = self.mean(values)
        return np.sqrt(np.maximum(self.weights @ (values - m) ** 2, 0.0))


def _log_density_s(post, slices):
    lm = np.array([sl.log_mass for sl in slices])
    return lm + np.log(post.dtheta_ds(np.array([sl.s for sl in slices])))


def moment_summary(post, slices, rows):
    """Means and SDs of ``rows @ x`` (x = inner coordinates, theta) and of tau."""
    W = post.slice_weights(slices)
    theta = np.array([sl.theta for sl in slices])
    means = np.array([np.r_[sl.moments[0], sl.theta] for sl in slices]) @ rows.T
    inner = rows[:, :-1]
    covs = np.array([sl.moments[1] for sl in slices])
    var = np.einsum("ij,sjk,ik->si", inner, covs, inner)
    m = W @ means
    sd = np.sqrt(np.maximum(W @ (var + means**2) - m * m, 0.0))
    tau = np.exp(theta)
    tau_m = W @ tau
    tau_sd = np.sqrt(max(W @ (tau - tau_m) ** 2, 0.0))
    return np.r_[m, tau_m], np.r_[sd, tau_sd]


def summary_change(a, b):
    """Largest change between two moment summaries, in posterior SDs."""
    (m1, s1), (m2, s2) = a, b
    sd = np.maximum(s1, 1e-300)
    return float(max(np.max(np.abs(m1 - m2) / sd), np.max(np.abs(s1 - s2) / sd)))


def fit_hyperposterior(
    neg_logpost, x0, *, rows=None, max_evals=MAX_EVALS, tol=1e-5, progress=None
):
    """Mode, Hessian and nested quadrature of ``exp(-neg_logpost(x))``.

    ``neg_logpost(x) -> (f, grad)`` over x = (inner coordinates, log tau), with
    ``neg_logpost.batch(X)`` the values at many rows. ``rows`` (k, dim): linear
    functions of x whose means and SDs must converge too (the reported
    coefficients); the coordinates and tau always do. Refines until the
    changes are within ``tol`` SDs or the next refinement would take the
    evaluations beyond ``max_evals`` (``converged`` is then False).
    ``progress(n, n_slices, evaluations, change)`` is called after each check.
    """
    res = minimize_smooth(neg_logpost, x0, polish=3)
    mode = res.x
    H = fd_hessian(neg_logpost, mode)
    cov = _positive_definite(H)
    dim = len(mode)
    d = dim - 1
    rows = np.eye(dim) if rows is None else np.vstack([np.eye(dim), rows])
    sigma = float(np.sqrt(cov[-1, -1]))
    n = first_order(d)
    post = HyperPosterior(
        mode, np.linalg.cholesky(cov), [], FIRST_STEP, sigma, n, False
    )
    build = _Builder(
        neg_logpost, post, neg_logpost(mode)[0], cov[:-1, -1] / cov[-1, -1]
    )
    first = Slice(
        0.0, mode[-1], mode[:-1], _chol(_positive_definite(H[:-1, :-1])), 1, None
    )
    post.slices = build.centred([first], 3)
    post.slices[0].coarse = build.same(post.slices, 1)[0]
    _extend(post, build)
    build.assign(n)
    while True:
        fine = moment_summary(post, post.slices, rows)
        keep = np.isclose(np.mod(np.round(post.s / post.step), 2), 0)
        half = [sl for sl, k in zip(post.slices, keep) if k]
        step_change = summary_change(fine, moment_summary(post, half, rows))
        lower = [sl.coarse if sl.coarse is not None else sl for sl in post.slices]
        order_change = summary_change(fine, moment_summary(post, lower, rows))
        post.changes = {"step": step_change, "order": order_change}
        if progress is not None:
            progress(n, len(post.slices), build.evals, max(step_change, order_change))
        if step_change <= tol and order_change <= tol:
            post.converged = True
            break
        if order_change > tol:
            # two more nodes where the check moved most: every slice whose
            # coarser rule alone moves the summary by a tenth of the largest
            part = [
                summary_change(fine, moment_summary(post, _swap(post, k), rows))
                for k in range(len(post.slices))
            ]
            top = max(part)
            want = [
                sl.n + 2 if p >= 0.1 * top and p > 0 else sl.n
                for sl, p in zip(post.slices, part)
            ]
            cost = sum(k**d for k, sl in zip(want, post.slices) if k > sl.n)
            if build.evals + cost > max_evals:
                break
            build.upgrade(want)
            n = max(n, max(want))
        else:
            cost = sum(sl.n**d for sl in post.slices if sl.n > 1)
            if build.evals + 2 * cost > max_evals:
                break
            _halve(post, build)
            build.assign(n)
        post.n_per_dim = n
    post.n_evals = build.evals
    return post


def _swap(post, k):
    """The slices with slice k's coarser rule in its place."""
    out = list(post.slices)
    if out[k].coarse is not None:
        out[k] = out[k].coarse
    return out


def _extend(post, build):
    """Add slices at s = +-h, +-2h, ... until the density is TAIL below its
    top, both ways at once, as many a round as the slope of the log density
    at each end says are still needed."""
    h = post.step
    while True:
        positions = []
        for direction in (1.0, -1.0):
            order = np.argsort(direction * post.s)
            lds = post.log_density_s
            last = lds[order[-1]]
            if not np.isfinite(last) or last < lds.max() - TAIL:
                continue
            slope = last - lds[order[-2]] if len(order) > 1 else -1.0
            left = (last - lds.max() + TAIL) / max(-slope, 0.5)
            count = int(np.clip(np.ceil(left) + 1, 2, BLOCK))
            edge = post.s[order[-1]]
            positions.extend(edge + direction * h * np.arange(1, count + 1))
        if not positions:
            return
        new = build.probe(np.array(positions))
        post.slices = sorted(post.slices + new, key=lambda sl: sl.s)


def _halve(post, build):
    """Halve the step: a new slice between every two."""
    s = post.s
    new = build.probe(0.5 * (s[:-1] + s[1:]))
    post.slices = sorted(post.slices + new, key=lambda sl: sl.s)
    post.step *= 0.5
    _extend(post, build)
