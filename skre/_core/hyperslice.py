"""The slices of the nested rule of :mod:`skre._core.hyperpost`: the inner
Gauss-Hermite rule at one value of log tau, its evaluation (many slices in one
batch of likelihood evaluations), its centre and scale, and its order.

A slice's rule is a product Gauss-Hermite rule over the inner coordinates
(the slopes and intercept) in whitened coordinates ``z`` (``x = centre + chol
z``), each node weighted by the ratio of the posterior to the normal. It is
accurate when that normal is close to the conditional posterior, so new
slices are centred by prediction from their neighbours and then re-centred
on the normal their own rule sees (:func:`_normal_fit`) until it sits within
RECENTRE (BULK_CENTRE for rules of 5 nodes and more) of the rule's.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .rules import normal_rule, product_rule

LOG_2PI = np.log(2.0 * np.pi)
#: slices holding less than FAR of the posterior mass get one inner node;
#: the others n, less two for every factor 100 below a share of 1 (at least
#: 3): a slice's errors count in proportion to its mass
FAR = 1e-10
#: inner coordinates of a slice may move this far (in whitened units) from its
#: centre, or their SDs change by this factor, before the slice is re-centred
RECENTRE = (0.3, 1.5)
#: the same for the rules of 5 and more nodes (slices holding the bulk)
BULK_CENTRE = (0.05, 1.05)

LOG_2PI = np.log(2.0 * np.pi)


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
        top = t.max()
        if not np.isfinite(top):  # a slice of no mass (beyond MAX_LOG_TAU)
            return np.full(len(t), 1.0 / len(t))
        w = np.exp(t - top)
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
        lds = post.log_density_of(post.slices + new)
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
    """:func:`_fit_normal`, cached on the slice."""
    if "_normal" not in sl.__dict__:
        sl.__dict__["_normal"] = _fit_normal(sl)
    return sl.__dict__["_normal"]


def _fit_normal(sl):
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
    ev = np.linalg.eigvalsh(0.5 * (cov + cov.T)) if len(cov) > 1 else cov[0]
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
    """Cholesky factor of a covariance, its eigenvalues floored at 1e-8 of
    the largest (a rule needs a scale in every direction)."""
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    top = max(float(np.max(np.abs(vals))), 1e-300)
    vals = np.maximum(np.abs(vals), 1e-8 * top)
    return np.linalg.cholesky((vecs * vals) @ vecs.T)
