"""Warnings raised by skre."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["BoundaryWarning", "ConvergenceWarning"]


class BoundaryWarning(UserWarning):
    """The maximum-likelihood between-group SD is exactly 0.

    The data show no variation between groups beyond binomial noise, so the
    multilevel fit equals complete pooling. This is a valid estimate, not an
    error; a weakly informative prior on tau keeps it positive if needed.
    """
