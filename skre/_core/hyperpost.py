"""The posterior of the hyperparameters by nested deterministic quadrature.

With one random intercept the hyperparameters ``x = (beta, b, log tau)`` are few,
and their posterior ``p(x | y) ∝ L(x) p(x)`` (the group effects integrated out
exactly by adaptive quadrature) can be integrated on a grid instead of sampled.
The marginal of ``theta = log tau`` is far from normal (a long tail towards
tau = 0, where the likelihood flattens to that of complete pooling), so the
grid is nested, as in INLA:

* ``theta`` runs over ``theta(s) = theta_hat + sigma A sinh(s / A)`` with ``s``
  on a uniform grid of step ``h`` (the trapezoid rule, spectrally accurate for
  smooth decaying integrands; the sinh stretches the steps in the far tails),
  extended both ways until the density falls below ``exp(-TAIL)`` of its
  largest value;
* at each ``theta`` the other coordinates ``(beta, b)`` are integrated by a
  product Gauss-Hermite rule of ``n`` nodes per dimension, centred and scaled
  by their conditional mean and covariance (predicted from the neighbouring
  values of ``theta``, and re-centred when the prediction was poor), each node
  weighted by the ratio of the posterior to that normal.

Both rules are checked the same way: posterior means and SDs (of every
coordinate, the reported coefficients and tau) are compared with those of the
grid of step ``2 h`` (every other value of ``theta``, no new evaluations) and
with those of the inner rule with ``n - 2`` nodes; the step is halved or ``n``
raised by 2 until both change by less than ``tol`` posterior SDs. Each check
measures the error of the coarser rule, so the finer one is well within it.
One-dimensional marginals (for quantiles, :mod:`skre._core.hypermarg`) reuse
the same values, interpolated, and are checked the same way.
"""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .optimize import _positive_definite, fd_hessian, minimize_smooth
from .rules import normal_rule, product_rule

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
#: slices holding less than FAR of the posterior mass get one inner node;
#: the others n, less two for every factor 100 below a share of 1 (at least
#: 3): a slice's errors count in proportion to its mass
FAR = 1e-10
#: at most this many new slices at each end per batch (their centres are
#: extrapolated from the slices already computed)
BLOCK = 4
#: inner coordinates of a slice may move this far (in whitened units) from its
#: centre, or their SDs change by this factor, before the slice is re-centred
RECENTRE = (0.3, 1.5)
#: the same for the rules of 5 and more nodes (slices holding the bulk)
BULK_CENTRE = (0.05, 1.05)

LOG_2PI = np.log(2.0 * np.pi)


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
class Slice:
    """The inner rule at one value ``theta`` of log tau."""

    s: float
    theta: float
    centre: np.ndarray  # (d,) centre of the inner rule
    chol: np.ndarray  # (d, d) its scale
    n: int  # nodes per dimension
    log_ratio: np.ndarray  # (n**d,) -(f - f_mode) + |z|^2 / 2 at the nodes
    coarse: object = None  # the same slice with n - 2 nodes, for the check

    @property
    def z(self):
        return product_rule(len(self.centre), self.n)[0]

    @property
    def x(self):
        """Nodes as full rows (inner coordinates, theta)."""
        inner = self.centre + self.z @ self.chol.T
        return np.column_stack([inner, np.full(len(inner), self.theta)])

    @cached_property
    def _terms(self):  # log weights of the nodes, unnormalised
        return product_rule(len(self.centre), self.n)[1] + self.log_ratio

    @cached_property
    def log_mass(self):
        """log of the integral of exp(-(f - f_mode)) over the inner coordinates."""
        d = len(self.centre)
        logdet = np.sum(np.log(np.diag(self.chol))) if d else 0.0
        t = self._terms
        top = t.max()
        if not np.isfinite(top):
            return -np.inf
        total = top + np.log(np.sum(np.exp(t - top)))
        return float(total + logdet + 0.5 * d * LOG_2PI)

    @cached_property
    def weights(self):
        t = self._terms
        w = np.exp(t - t.max())
        return w / w.sum()

    @cached_property
    def moments(self):
        """Mean and covariance of the inner coordinates given theta (with one
        node, its centre and the covariance of its normal)."""
        if self.n == 1:
            return self.centre, self.chol @ self.chol.T
        inner = self.x[:, :-1]
        mean = self.weights @ inner
        dev = inner - mean
        return mean, (self.weights[:, None] * dev).T @ dev


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
    var = np.array(
        [np.einsum("ij,jk,ik->i", inner, sl.moments[1], inner) for sl in slices]
    )
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


def _values(neg_logpost, x):
    """``neg_logpost`` at every row of x, in one batch when it offers one."""
    batch = getattr(neg_logpost, "batch", None)
    if batch is not None:
        return batch(x)
    return np.array([neg_logpost(xi)[0] for xi in x])


class _Builder:
    """Evaluates slices, many in one batch, counting likelihood evaluations."""

    def __init__(self, neg_logpost, post, f_mode, cond_slope):
        self.nlp, self.post, self.f_mode = neg_logpost, post, f_mode
        self.cond_slope, self.evals = cond_slope, 0

    def slices(self, specs):
        """Slices for ``(s, theta, centre, chol, n)`` specs, in one batch."""
        if not specs:
            return []
        parts, zs = [], []
        for _, theta, centre, chol, n in specs:
            z = product_rule(len(centre), n)[0]
            inner = centre + z @ chol.T
            parts.append(np.column_stack([inner, np.full(len(inner), theta)]))
            zs.append(z)
        x = np.concatenate(parts)
        f = _values(self.nlp, x)
        self.evals += len(x)
        out, start = [], 0
        for (s, theta, centre, chol, n), z in zip(specs, zs):
            lr = 0.5 * np.sum(z * z, axis=1) - (f[start : start + len(z)] - self.f_mode)
            lr[~np.isfinite(lr)] = -np.inf
            out.append(Slice(s, theta, centre, chol, n, lr))
            start += len(z)
        return out

    def same(self, slices, n):
        """The slices with ``n`` nodes per dimension (one count, or one
        each), same centres."""
        ns = [n] * len(slices) if np.ndim(n) == 0 else n
        return self.slices(
            [(sl.s, sl.theta, sl.centre, sl.chol, k) for sl, k in zip(slices, ns)]
        )

    def centred(self, slices, n, limits=RECENTRE, tries=3):
        """The slices with ``n`` nodes (one count, or one each), re-centred
        on their own moments while these sit far from the centre and scale
        (see RECENTRE)."""
        out = self.same(slices, n)
        for _ in range(tries):
            redo = [k for k, sl in enumerate(out) if _off_centre(sl, limits)]
            if not redo:
                break
            moved = self.same([_moved(out[k]) for k in redo], [out[k].n for k in redo])
            for k, sl in zip(redo, moved):
                out[k] = sl
        return out

    def probe(self, positions):
        """New slices at ``positions`` of s: one node at the predicted centre,
        then (unless their mass is beyond FAR) 3 per dimension, re-centred,
        with the one-node rule at the final centre beside them."""
        post = self.post
        specs = []
        for s in positions:
            theta = float(post.theta_of(s))
            mean, cov = _predict(post.slices, s, theta, self.cond_slope)
            specs.append((s, theta, mean, _chol(cov), 1))
        new = self.slices(specs)
        lds = _log_density_s(post, post.slices + new)
        lds = lds - lds.max()
        share = np.exp(lds - np.log(np.sum(np.exp(lds))))[len(post.slices) :]
        grow = [
            k
            for k, sl in enumerate(new)
            if np.isfinite(sl.log_mass) and share[k] >= 0.01 * FAR
        ]
        better = self.centred([new[k] for k in grow], 3)
        for k, sl, low in zip(grow, better, self.same(better, 1)):
            sl.coarse = low
            new[k] = sl
        return new

    def assign(self, n):
        """Give each slice (at least) its order for its share of the mass (see
        FAR), with the rule of two nodes fewer beside it, for the check."""
        self.upgrade([grade(w, n) for w in self.post.slice_weights()])

    def upgrade(self, want):
        """Raise each slice k to ``want[k]`` nodes where it has fewer."""
        slices = self.post.slices
        up = [k for k, sl in enumerate(slices) if want[k] > sl.n]
        # the rule of two nodes fewer: the slice itself when it has that many
        # and sits well; otherwise re-centred (on the moments of its best rule
        # so far) until it does, tightly for rules of 5 nodes and more
        lower = {}
        for k in up:
            limits = BULK_CENTRE if want[k] > 5 else RECENTRE
            if slices[k].n == want[k] - 2 and not _off_centre(slices[k], limits):
                lower[k] = slices[k]
        for limits in (BULK_CENTRE, RECENTRE):
            ks = [k for k in up if k not in lower and want[k] > 3]
            ks = [k for k in ks if (want[k] > 5) == (limits is BULK_CENTRE)]
            moved = [_moved(slices[k]) for k in ks]
            lower.update(
                zip(ks, self.centred(moved, [want[k] - 2 for k in ks], limits))
            )
        ks = [k for k in up if k not in lower]  # 3 nodes, beside the 1-node rule
        lower.update(zip(ks, self.same([slices[k] for k in ks], 1)))
        specs = [
            (lower[k].s, lower[k].theta, lower[k].centre, lower[k].chol, want[k])
            for k in up
        ]
        for k, sl in zip(up, self.slices(specs)):
            sl.coarse = lower[k]
            slices[k] = sl


def _normal_fit(sl):
    """Mean and covariance, in the slice's whitened coordinates z, of the
    normal its rule sees: the moments of rules of 5 nodes and more; for 3
    nodes (whose moments underrate a wrong scale) the normal through the log
    density at the 3^d nodes (a Newton step with the finite-difference
    gradient and Hessian there, exact for a normal)."""
    d = len(sl.centre)
    if sl.n != 3:
        z, w = sl.z, sl.weights
        mean = w @ z
        dev = z - mean
        return mean, (w[:, None] * dev).T @ dev
    step = normal_rule(3)[0][2]
    lp = (sl.log_ratio - 0.5 * np.sum(sl.z**2, axis=1)).reshape((3,) * d)
    mid = (1,) * d

    def at(**moves):
        idx = list(mid)
        for axis, k in moves.items():
            idx[int(axis[1:])] = k
        return lp[tuple(idx)]

    g, H = np.empty(d), np.empty((d, d))
    for i in range(d):
        g[i] = (at(**{f"a{i}": 2}) - at(**{f"a{i}": 0})) / (2 * step)
        H[i, i] = (at(**{f"a{i}": 2}) - 2 * lp[mid] + at(**{f"a{i}": 0})) / step**2
        for j in range(i):
            H[i, j] = H[j, i] = (
                at(**{f"a{i}": 2, f"a{j}": 2})
                - at(**{f"a{i}": 2, f"a{j}": 0})
                - at(**{f"a{i}": 0, f"a{j}": 2})
                + at(**{f"a{i}": 0, f"a{j}": 0})
            ) / (4 * step**2)
    if not np.all(np.isfinite(H)) or np.any(np.linalg.eigvalsh(-H) <= 0):
        z, w = sl.z, sl.weights  # not concave there: fall back on the moments
        mean = w @ z
        dev = z - mean
        return mean, (w[:, None] * dev).T @ dev
    cov = np.linalg.inv(-H)
    return cov @ g, cov


def _moved(sl):
    """A slice (not evaluated) centred and scaled by :func:`_normal_fit`."""
    if sl.n == 1 or not np.isfinite(sl.log_mass):
        return sl
    mean_z, cov_z = _normal_fit(sl)
    try:
        chol = sl.chol @ np.linalg.cholesky(cov_z)
    except np.linalg.LinAlgError:
        return sl
    return Slice(sl.s, sl.theta, sl.centre + sl.chol @ mean_z, chol, sl.n, None)


def _off_centre(sl, limits):
    """Whether the normal of :func:`_normal_fit` sits far from the slice's
    rule (mean 0 and covariance I in its whitened coordinates)."""
    if sl.n == 1 or not np.isfinite(sl.log_mass):
        return False
    shift, cov = _normal_fit(sl)
    ev = np.linalg.eigvalsh(0.5 * (cov + cov.T))
    if not np.all(np.isfinite(ev)) or ev.min() <= 0:
        return False  # cannot re-centre on a degenerate covariance
    far, ratio = limits
    return bool(
        np.max(np.abs(shift)) > far or ev.min() < ratio**-2 or ev.max() > ratio**2
    )


def grade(share, n):
    """Inner nodes per dimension for a slice with this share of the mass."""
    if share < FAR:
        return 1
    return max(n - 2 * int(np.floor(-np.log10(share) / 2)), 3)


def _predict(slices, s, theta, cond_slope):
    """Centre and covariance for a new slice from its computed neighbours:
    interpolated between two, extrapolated beyond the ends (linearly in
    theta towards large tau, in tau^2 towards tau = 0, where the conditional
    moments level off)."""
    ss = np.array([sl.s for sl in slices])
    below, above = np.flatnonzero(ss < s), np.flatnonzero(ss > s)
    if len(below) and len(above):
        a, b = slices[below[-1]], slices[above[0]]
        t = (theta - a.theta) / (b.theta - a.theta)
        return (1 - t) * a.moments[0] + t * b.moments[0], a.moments[1]
    near = [slices[k] for k in (above[:2] if len(above) else below[::-1][:2])]
    a = near[0]
    if len(near) == 1:
        return a.moments[0] + cond_slope * (theta - a.theta), a.moments[1]
    b = near[1]
    if theta > a.theta:
        t = (theta - a.theta) / (a.theta - b.theta)
    else:
        t = (np.exp(2 * theta) - np.exp(2 * a.theta)) / (
            np.exp(2 * a.theta) - np.exp(2 * b.theta)
        )
    return a.moments[0] + t * (a.moments[0] - b.moments[0]), a.moments[1]


def _chol(cov):
    return np.linalg.cholesky(_positive_definite(np.linalg.inv(cov)))


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
            cost = sum(k**d for k in want if k > 1)
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
