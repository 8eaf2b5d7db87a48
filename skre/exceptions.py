"""Warnings raised by skre."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["BoundaryWarning", "CollinearityWarning", "ConvergenceWarning"]


class BoundaryWarning(UserWarning):
    """The maximum-likelihood between-group SD is exactly 0.

    The data show no variation between groups beyond binomial noise, so the
    multilevel fit equals complete pooling. This is a valid estimate, not an
    error; a weakly informative prior on tau keeps it positive if needed.
    """


class CollinearityWarning(UserWarning):
    """A covariate is not identified and was dropped (coefficient 0).

    It is constant, a linear combination of other covariates, or (no pooling)
    constant within every group. R's ``glm`` reports such coefficients as NA.
    """
