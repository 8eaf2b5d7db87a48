"""Warnings raised by skre."""

from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "GroupLabelWarning",
    "SampleWeightWarning",
    "BoundaryWarning",
    "CollinearityWarning",
    "ConvergenceWarning",
    "QuadratureWarning",
    "SeparationWarning",
]


class BoundaryWarning(UserWarning):
    """The maximum-likelihood between-group SD is exactly 0.

    The data show no variation between groups beyond binomial noise, so the
    multilevel fit equals complete pooling. This is a valid estimate, not an
    error; a weakly informative prior on tau keeps it positive if needed.

    Read more in the :ref:`User Guide <boundary>` and in the FAQ,
    :ref:`faq_tau_zero`.
    """


class CollinearityWarning(UserWarning):
    """A covariate is not identified and was dropped (coefficient 0).

    It is constant, a linear combination of other covariates, or (no pooling)
    constant within every group. R's ``glm`` reports such coefficients as NA.

    Read more in the :ref:`User Guide <pipelines>` (a categorical covariate
    needs a reference level; a group-level covariate under no pooling).
    """


class SeparationWarning(UserWarning):
    """Fitted probabilities numerically 0 or 1 occurred.

    Every trial is a failure (or a success), or covariates separate successes
    from failures: some maximum-likelihood estimates are infinite, and the
    reported ones are where the optimizer stopped. R's ``glm`` warns the same
    way. A prior (``coef_prior``) gives finite estimates.

    Read more in :ref:`validation`.
    """


class GroupLabelWarning(UserWarning):
    """Group labels are not where, or what, they seem to be.

    - At predict time most group labels are unseen, and of another type:
      fitting with integer batch ids and predicting with the same ids as
      strings makes every group new; the predictions are then the estimator's
      rule for new groups, which is rarely what was meant.
    - At fit, without ``group=``, an integer column of X looks like group
      labels, and is fitted as a numeric covariate (complete pooling on the
      rats gives ``~ 1 + batch``, intercept -3.80, instead of -1.71). A column
      looks like group labels when a word of its name is one of
      ``skre._group_hint.LABEL_WORDS`` (``batch``, ``group``, ``id``,
      ``patient_id``, ...) and it takes at least 3 values, or when its values
      number rows or groups: every whole number from 0 or 1 up to at least 10,
      each in one run of consecutive rows. Pass ``group=`` to name the column,
      or pass a covariate that matches as float.

    Read more in :ref:`validation`.
    """


class SampleWeightWarning(UserWarning):
    """Every ``sample_weight`` is below 1.

    skre's weights are frequency weights: weight ``k`` is the row repeated
    ``k`` times, so weights that sum to less than the number of rows shrink
    the data (and the information about tau).

    Read more in the :ref:`User Guide <sklearn_guide>`.
    """


class QuadratureWarning(UserWarning):
    """The adaptive quadrature is not accurate at the estimate, as measured there.

    With a fixed ``n_quad``: a rule at least a third larger (35 nodes for
    25, 3 for the Laplace approximation) moves an estimate by more than 0.1
    standard errors; ``n_quad="auto"`` (the default) raises the nodes until the fit is
    exact. With ``n_quad="auto"``: even 201 nodes did not meet its target for
    some groups (groups of a few binary trials with a tau above about 10,
    whose integrands turn too sharply for Gauss-Hermite rules). The message
    gives the measured differences, log-likelihoods on the ``loglik_`` scale.

    Read more in the :ref:`User Guide <quadrature>`.
    """


def warn(message, category):
    """``warnings.warn`` attributed to the first frame outside skre, sklearn
    and joblib.

    A warning about a fit should point at the user's line that called ``fit``
    (through scikit-learn's wrappers, a Pipeline or a search), not at skre's
    or scikit-learn's internals.
    """
    import os
    import sys
    import warnings

    import sklearn

    inside = [
        os.path.dirname(os.path.abspath(__file__)) + os.sep,
        os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep,
    ]
    joblib = sys.modules.get("joblib")  # a search's sequential loop
    if joblib is not None:
        inside.append(os.path.dirname(os.path.abspath(joblib.__file__)) + os.sep)
    inside = tuple(inside)
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
