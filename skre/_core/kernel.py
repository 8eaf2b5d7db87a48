"""The compiled random-slope node pass (``_slopepass.c``), when it was built.

A plain C library loaded with ctypes (no Python API): :func:`slope_pass`
returns None where it is not available (not built, not Linux x86-64, or
``SKRE_NUMPY_PASS=1`` in the environment), and the caller takes the numpy
pass, which computes the same numbers (``tests/test_slope_kernel.py``).
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
                _lib = lib
                break
    return _lib


def available():
    """Whether fits use the compiled pass."""
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
