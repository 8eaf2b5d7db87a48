"""Gauss-Hermite rules for expectations under a standard normal, built once.

Every integral over a normal in skre (the adaptive quadrature of the group
effects, the population mean, the hyperparameter grids, the prediction
interval) uses these rules; they are cached, and the arrays are read-only so
that no caller can change them for the others.
"""

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def normal_rule(n):
    """Nodes ``z`` and weights ``w`` with ``sum(w * f(z)) ~ E[f(Z)]``, Z ~ N(0, 1)."""
    x, w = np.polynomial.hermite.hermgauss(int(n))
    z, w = np.sqrt(2.0) * x, w / np.sqrt(np.pi)
    z.flags.writeable = w.flags.writeable = False
    return z, w


@lru_cache(maxsize=64)
def adaptive_rule(n):
    """Nodes ``t`` and log-weights for ``int f(u) du ~ sum(exp(log_w) * f(t))``.

    The Gauss-Hermite rule with its Gaussian factor divided out, for integrands
    that are centred at 0 with scale 1 (adaptive quadrature moves and scales
    it to each group's conditional mode).
    """
    x, w = np.polynomial.hermite.hermgauss(int(n))
    t, log_w = np.sqrt(2.0) * x, np.log(w) + x**2 + 0.5 * np.log(2.0)
    t.flags.writeable = log_w.flags.writeable = False
    return t, log_w


@lru_cache(maxsize=16)
def product_rule(dim, n):
    """Nodes (n**dim, dim) and log-weights of the product rule for N(0, I_dim)."""
    z, w = normal_rule(n)
    if dim == 0:
        nodes, log_w = np.zeros((1, 0)), np.zeros(1)
    else:
        grids = np.meshgrid(*([z] * dim), indexing="ij")
        nodes = np.stack([g.ravel() for g in grids], axis=1)
        lw = np.meshgrid(*([np.log(w)] * dim), indexing="ij")
        log_w = np.sum([g.ravel() for g in lw], axis=0)
    nodes.flags.writeable = log_w.flags.writeable = False
    return nodes, log_w


@lru_cache(maxsize=32)
def _logistic_normal_rule(halvings):
    h = 0.5 / 2.0**halvings
    k = int(np.ceil(9.5 / h))
    z = np.arange(-k, k + 1) * h
    log_w = -0.5 * z * z
    log_w -= np.log(np.exp(log_w).sum())  # the weights of N(0, 1), summing to 1
    z.flags.writeable = log_w.flags.writeable = False
    return z, log_w


def logistic_normal_rule(scale):
    """Nodes ``z`` and log-weights for ``E[f(loc + scale Z)]``, Z ~ N(0, 1),
    for ``f`` a logistic function of its argument (``expit``, ``log_expit``):
    the trapezoid rule on ``+-9.5`` with step ``0.5 / 2^k <= 0.5 / scale``.

    Each logistic term has poles at an imaginary distance ``pi / scale`` from
    the real line (in ``z``), so the rule's error is below ``exp(-2 pi^2 /
    (step scale)) < 1e-17`` relative, however large ``scale``; a fixed
    Gauss-Hermite rule is not: 64 nodes put ``E[expit(2 + 40 Z)]`` at 0.5004
    for 0.5199 (issue 22). 39 nodes for ``scale <= 1``, 153 up to 4, about
    60 per unit of scale beyond.
    """
    halvings = max(0, int(np.ceil(np.log2(max(float(scale), 1.0)))))
    return _logistic_normal_rule(halvings)
