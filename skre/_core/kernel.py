"""The compiled random-slope node pass (``_slopepass.c``) and mode solver
(``_slopemodes.c``), when they were built.

A plain C library loaded with ctypes (no Python API): :func:`slope_pass` and
:func:`slope_modes` return None where it is not available (not built, not
Linux x86-64, or ``SKRE_NUMPY_PASS=1`` in the environment), and the caller
takes numpy's way, which computes the same numbers
(``tests/test_slope_kernel.py``).
"""

import ctypes
import importlib.machinery
import os
from pathlib import Path

import numpy as np

_HERE = Path(__file__).parent
_lib = None  # the loaded library, False once its absence is known


def _load():
    global _lib
    if _lib is None:
        _lib = False
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = _HERE / f"_slopepass{suffix}"
            if path.exists():
                try:
                    lib = ctypes.CDLL(str(path))
                except OSError:
                    continue
                fn = lib.skre_slope_pass
                fn.restype = ctypes.c_int64
                fn.argtypes = (
                    [ctypes.c_int64] * 5
                    + [ctypes.c_void_p] * 7
                    + [ctypes.c_int64] * 2
                    + [ctypes.c_void_p] * 4
                )
                fn = lib.skre_slope_modes
                fn.restype = ctypes.c_int64
                fn.argtypes = (
                    [ctypes.c_int64] * 2
                    + [ctypes.c_void_p] * 5
                    + [ctypes.c_double, ctypes.c_int64]
                    + [ctypes.c_void_p] * 4
                )
                fn = lib.skre_slope_scores
                fn.restype = ctypes.c_int64
                fn.argtypes = (
                    [ctypes.c_int64] * 4
                    + [ctypes.c_void_p] * 7
                    + [ctypes.c_int64]
                    + [ctypes.c_void_p] * 9
                )
                _lib = lib
                break
    return _lib


def available():
    """Whether random-slope fits use the compiled library."""
    return os.environ.get("SKRE_NUMPY_PASS", "") != "1" and bool(_load())


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
