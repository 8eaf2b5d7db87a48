"""skre: scikit-learn estimators for grouped binomial data.

Three strategies for many groups with m successes out of n trials:
:class:`CompletePoolingBinomial` (one shared probability),
:class:`NoPoolingBinomial` (one per group, independently) and
:class:`MultilevelBinomial` (partial pooling with a logistic random intercept).
"""

from . import metrics
from ._api import binomial_model
from ._binary_rows import binary_rows
from ._compare_models import compare_models
from ._comparison import TestResult, lr_test
from ._core.population import LogitNormal
from ._formula import FormulaModel, from_formula
from ._multilevel import MultilevelBinomial
from ._new_batch import HistoricalControlTest, PredictiveCounts
from ._pooling import CompletePoolingBinomial, NoPoolingBinomial

# The one place the version is written: pyproject.toml reads it from here
# (PEP 440; ".dev0" until 0.2.0 is released, see docs/changelog.rst).
__version__ = "0.2.0.dev0"

__all__ = [
    "CompletePoolingBinomial",
    "FormulaModel",
    "HistoricalControlTest",
    "LogitNormal",
    "MultilevelBinomial",
    "NoPoolingBinomial",
    "PredictiveCounts",
    "TestResult",
    "binary_rows",
    "binomial_model",
    "compare_models",
    "from_formula",
    "lr_test",
    "metrics",
]
