"""The optional compiled library, when it was built: the random-slope fits'
node pass, modes and scores (``_slopepass.c``, ``_slopemodes.c``,
``_slopescores.c``), and the random intercept's modes and rule without
covariates (``_interpass.c``).

A plain C library loaded with ctypes (no Python API): :func:`slope_pass`,
:func:`slope_modes` and :func:`slope_scores` return None, and
:func:`intercept_available` says no, where it is not available (not built, not
Linux x86-64, or ``SKRE_NUMPY_PASS=1`` in the environment), and the caller
takes numpy's way, which computes the same numbers
(``tests/test_slope_kernel.py``, ``tests/test_intercept_kernel.py``).
"""

import ctypes
import importlib.machinery
import os
from pathlib import Path

import numpy as np

_HERE = Path(__file__).parent
_libs = {}  # each loaded library by name, False once its absence is known

_I, _P, _D = ctypes.c_int64, ctypes.c_void_p, ctypes.c_double
#: each library's functions: their return types and arguments (int64,
#: pointer, double)
_SIGNATURES = {
    "_slopepass": {
        "skre_slope_pass": (_I, [_I] * 5 + [_P] * 7 + [_I] * 2 + [_P] * 4),
        "skre_slope_modes": (_I, [_I] * 2 + [_P] * 5 + [_D, _I] + [_P] * 4),
        "skre_slope_scores": (_I, [_I] * 4 + [_P] * 7 + [_I] + [_P] * 9),
    },
    "_interpass": {
        "skre_intercept_modes": (_I, [_I] + [_P] * 6 + [_D] * 3 + [_I] + [_P] * 5),
        "skre_intercept_rule": (
            _I,
            [_I] * 2 + [_P] * 4 + [_D] + [_P] * 4 + [_D, _I] + [_P] * 10,
        ),
    },
}


def _load(name="_slopepass"):
    """The library ``name`` (``_slopepass``: the random slopes',
    ``_interpass``: the random intercept's), or False where it was not built."""
    if name not in _libs:
        _libs[name] = False
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = _HERE / f"{name}{suffix}"
            if path.exists():
                try:
                    lib = ctypes.CDLL(str(path))
                except OSError:
                    continue
                for fn_name, (restype, argtypes) in _SIGNATURES[name].items():
                    fn = getattr(lib, fn_name)
                    fn.restype, fn.argtypes = restype, argtypes
                _libs[name] = lib
                break
    return _libs[name]


def available(name="_slopepass"):
    """Whether the fits use the compiled library ``name`` (see :func:`_load`)."""
    return os.environ.get("SKRE_NUMPY_PASS", "") != "1" and bool(_load(name))


def slope_pass(D, eta_hat, m, t, per_group, per_node, bounds, grad):
    """The node pass of binary rows (see ``_slopepass.c``): ``(logm without
    log|C|, E[t] and E[t t'] per group, E[r] and E[r t] per row or None)``;
    None where the compiled pass is not available.

    ``D`` (rows, q): each row's logit movement per unit of the nodes ``t``
    (N, q); ``eta_hat`` the logits at the modes; ``per_group`` (G, J) @
    ``per_node`` (J, N) the nodes' log weights and prior; ``bounds`` the
    groups' first rows and the number of rows."""
    if not available():
        return None
    lib = _load()
    rows, q = D.shape
    G, J = per_group.shape
    N = len(t)
    Dt = np.ascontiguousarray(D.T, dtype=float)
    T = np.ascontiguousarray(t.T, dtype=float)
    eh = np.ascontiguousarray(eta_hat, dtype=float)
    m = np.ascontiguousarray(m, dtype=float)
    pg = np.ascontiguousarray(per_group, dtype=float)
    pn = np.ascontiguousarray(per_node, dtype=float)
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    logm = np.empty(G)
    tmom = np.empty((G, q + q * q))
    rmom = np.empty((rows, 1 + q)) if grad else np.empty((1, 1 + q))
    z = product_nodes(t)
    K = 0 if z is None else len(z)
    z = np.zeros(1) if z is None else z
    status = lib.skre_slope_pass(
        G,
        N,
        q,
        J,
        rows,
        *(a.ctypes.data for a in (Dt, eh, m, T, pg, pn, bounds)),
        int(bool(grad)),
        K,
        z.ctypes.data,
        logm.ctypes.data,
        tmom.ctypes.data,
        rmom.ctypes.data,
    )
    if status < 0:
        raise MemoryError("the compiled node pass could not allocate its buffers")
    return logm, tmom, rmom if grad else None


def slope_modes(offset, RL, m, n, bounds, u, tol, max_iter):
    """Each group's conditional mode (see ``_slopemodes.c``): ``(u, I + sum
    w RL RL' there (G, q, q), the rows' logits there, each group's h)``, from
    the starts ``u`` (G, q); None where the compiled solver is not available.
    ``n`` None: every row one trial; ``bounds`` as for :func:`slope_pass`."""
    if not available():
        return None
    rows, q = RL.shape
    G = len(u)
    offset = np.ascontiguousarray(offset, dtype=float)
    RL = np.ascontiguousarray(RL, dtype=float)
    m = np.ascontiguousarray(m, dtype=float)
    if n is not None:
        n = np.ascontiguousarray(n, dtype=float)
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    u = np.array(u, dtype=float, order="C")
    H, eta, h = np.empty((G, q, q)), np.empty(rows), np.empty(G)
    status = _load().skre_slope_modes(
        G,
        q,
        *(a.ctypes.data for a in (offset, RL, m)),
        None if n is None else n.ctypes.data,
        bounds.ctypes.data,
        float(tol),
        int(max_iter),
        *(a.ctypes.data for a in (u, H, eta, h)),
    )
    if status < 0:
        raise MemoryError("the compiled mode solver could not allocate its buffers")
    return u, H, eta, h


def slope_scores(bounds, R, RL, X, m, n, eta, rmom, u, Hinv, C, tmom, L, entries):
    """Each group's exact gradient of its rule's value (see
    ``_slopescores.c``), (G, p + 1 + len(entries[0])); None where the compiled
    version is not available. ``rmom`` (rows, 1 + q) and ``tmom`` (G, q +
    q^2) the node pass's moments, both None for the Laplace rule; ``entries``
    the rows and columns of L's packed entries."""
    if not available():
        return None
    rows, q = R.shape
    p = X.shape[1]
    G = len(u)
    nodes = rmom is not None
    rows_a, rows_b = (np.ascontiguousarray(e, dtype=np.int64) for e in entries)
    args = [np.ascontiguousarray(a, dtype=float) for a in (R, RL, X, m)]
    if n is not None:
        n = np.ascontiguousarray(n, dtype=float)
    eta = np.ascontiguousarray(eta, dtype=float)
    rmom = np.ascontiguousarray(rmom if nodes else np.zeros(1), dtype=float)
    tmom = np.ascontiguousarray(tmom if nodes else np.zeros(1), dtype=float)
    u, Hinv, C, L = (np.ascontiguousarray(a, dtype=float) for a in (u, Hinv, C, L))
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    scores = np.empty((G, p + 1 + len(rows_a)))
    status = _load().skre_slope_scores(
        G,
        q,
        p,
        len(rows_a),
        bounds.ctypes.data,
        *(a.ctypes.data for a in args),
        None if n is None else n.ctypes.data,
        eta.ctypes.data,
        int(nodes),
        *(a.ctypes.data for a in (rmom, u, Hinv, C, tmom, L, rows_a, rows_b)),
        scores.ctypes.data,
    )
    if status < 0:
        raise MemoryError("the compiled scores could not allocate their buffers")
    return scores


def product_nodes(t):
    """The 1-D nodes ``z`` when the rule's nodes ``t`` (N, q) are their
    product grid in ``meshgrid(..., indexing="ij")`` order (q = 2 or 3), so
    that e^-eta factors over the dimensions; else None."""
    N, q = t.shape
    if q not in (2, 3):
        return None
    K = int(round(N ** (1.0 / q)))
    if K**q != N:
        return None
    z = np.ascontiguousarray(t[:K, q - 1], dtype=float)
    grid = np.stack([g.ravel() for g in np.meshgrid(*([z] * q), indexing="ij")], 1)
    return z if np.array_equal(grid, t) else None


def intercept_available():
    """Whether the random intercept's fits without covariates use the compiled
    library (:class:`InterceptPass`)."""
    return available("_interpass")


class InterceptPass:
    """The random intercept's mode solve and rule without covariates (see
    ``_interpass.c``), on one data set's rows (Collapsed, sorted by group;
    the offsets are the caller's); ``binary``: every row one trial."""

    def __init__(self, data, binary):
        self.G = int(data.n_groups)
        self._keep = [
            np.ascontiguousarray(np.r_[data.starts, len(data.codes)], dtype=np.int64),
            np.ascontiguousarray(data.successes, dtype=float),
            None if binary else np.ascontiguousarray(data.trials, dtype=float),
        ]
        self._ptr = [None if a is None else a.ctypes.data for a in self._keep]
        self._lib = _load("_interpass")
        self._rule_of = None

    def modes(self, offset, M, N, tau, u, tol, last_step, max_iter):
        """The modes from the starts ``u`` (a new array) and the sums there:
        ``(u, W, R0, V, h0, converged)``; ``M``, ``N`` each group's
        successes and trials. ``roots.solve_decreasing`` with ``tol``,
        ``last_step`` and ``max_iter``, then ``ModePass.at_mode``."""
        bounds, m, n = self._ptr
        G = self.G
        offset = np.ascontiguousarray(offset, dtype=float)
        M = np.ascontiguousarray(M, dtype=float)
        N = np.ascontiguousarray(N, dtype=float)
        u = np.array(u, dtype=float, order="C")
        out = np.empty((4, G))
        status = self._lib.skre_intercept_modes(
            G,
            bounds,
            offset.ctypes.data,
            m,
            n,
            M.ctypes.data,
            N.ctypes.data,
            tau,
            tol,
            last_step,
            max_iter,
            u.ctypes.data,
            *(out[j].ctypes.data for j in range(4)),
        )
        if status < 0:
            raise MemoryError("the compiled mode solve could not allocate its buffers")
        return (u, *out, bool(status))

    def rule(self, offset, tau, u, at, t, log_omega, log_sqrt_2pi, want, M=None):
        """The rule of ``len(t) > 1`` nodes at the modes ``u`` with the sums
        there ``at`` (:class:`~skre._core.nodepass.AtMode`; ``W``, and ``R0``
        and ``V`` with ``want``): ``(s, nodes, logpi, logm, np_sum, w_sum,
        parts)``. With ``want >= 1`` also ``np_sum`` and ``parts`` (7, G),
        each group's score in b and tau and its mode's derivatives in them
        (``M`` each group's successes), with ``want >= 2`` ``w_sum`` and
        Louis' Hessian terms in ``parts``; else those are None."""
        bounds, m, n = self._ptr
        G, K = self.G, len(t)
        if self._rule_of is not t:  # the rule's nodes, kept while they serve
            self._rule_of = t
            self._t = np.ascontiguousarray(t, dtype=float)
            self._log_omega = np.ascontiguousarray(log_omega, dtype=float)
            self._rule_ptr = (self._t.ctypes.data, self._log_omega.ctypes.data)
        offset = np.ascontiguousarray(offset, dtype=float)
        # one input buffer: u, W, M, R0, V; one output buffer: s, logm, the
        # parts (7, G), then nodes, logpi, np_sum, w_sum (G, K) each
        vec = np.empty((5, G))
        vec[0], vec[1] = u, at.W
        if want >= 1:
            vec[2], vec[3], vec[4] = M, at.R0, at.V
        out = np.empty(9 * G + 4 * G * K)
        a, b = vec.ctypes.data, out.ctypes.data
        status = self._lib.skre_intercept_rule(
            G,
            K,
            bounds,
            offset.ctypes.data,
            m,
            n,
            tau,
            a,
            a + 8 * G,
            *self._rule_ptr,
            log_sqrt_2pi,
            want,
            a + 16 * G,
            a + 24 * G,
            a + 32 * G,
            b,
            b + 8 * (9 * G),
            b + 8 * (9 * G + G * K),
            b + 8 * G,
            b + 8 * (9 * G + 2 * G * K),
            b + 8 * (9 * G + 3 * G * K),
            b + 16 * G,
        )
        if status < 0:
            raise MemoryError("the compiled rule could not allocate its buffers")
        grids = out[9 * G :].reshape(4, G, K)
        return (
            out[:G],
            grids[0],
            grids[1],
            out[G : 2 * G],
            grids[2] if want >= 1 else None,
            grids[3] if want >= 2 else None,
            out[2 * G : 9 * G].reshape(7, G) if want >= 1 else None,
        )
