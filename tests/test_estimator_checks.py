"""scikit-learn's estimator checks on all three estimators.

The checks feed plain float arrays. With ``group=-1`` the last column holds the
group labels (continuous values: every row its own group with one trial) and
the other columns are covariates.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial

ESTIMATORS = [
    CompletePoolingBinomial(),
    CompletePoolingBinomial(group=-1),
    NoPoolingBinomial(group=-1),
    MultilevelBinomial(group=-1),
]

GROUP_TAKES_A_FEATURE = (
    "the check's blobs have two features; with group=-1 one of them becomes group "
    "labels (one row per group), so a single covariate is left: training accuracy "
    "is 0.685, exactly that of LogisticRegression on the remaining column, below the "
    "check's 0.83 (the multilevel fit is at tau = 0: single-trial groups carry no "
    "information on tau)"
)


# The checks fit what skre warns about, and skre's warnings say so truthfully:
# random covariates that separate a handful of labels (SeparationWarning), columns
# constant within the one-row groups of group=-1 or duplicated by the dtype checks
# (CollinearityWarning), single-trial groups without information on tau
# (BoundaryWarning, or tau in the hundreds, where even 201 nodes fall short:
# QuadratureWarning, and the optimizer's ConvergenceWarning). sklearn asserts
# what it needs of warnings inside the checks themselves.
pytestmark = [
    pytest.mark.filterwarnings(f"ignore::{category}")
    for category in (
        "skre.exceptions.SeparationWarning",
        "skre.exceptions.CollinearityWarning",
        "skre.exceptions.BoundaryWarning",
        "skre.exceptions.QuadratureWarning",
        "sklearn.exceptions.ConvergenceWarning",
    )
]


def expected_failed_checks(estimator):
    if estimator.group is not None and not isinstance(estimator, NoPoolingBinomial):
        return {"check_classifiers_train": GROUP_TAKES_A_FEATURE}
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
