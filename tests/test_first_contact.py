"""Issue 23 ("First contact"): what a new user met on real data, the numbers.

Expected values come from R (tests/reference/rats_lme4.R, whose JSON holds
``deviance(glm(cbind(m, n - m) ~ 1, binomial))``) or from scipy's binomial
probabilities, never from skre.
"""

import numpy as np
import pandas as pd
import pytest

from skre import MultilevelBinomial
from skre.datasets import load_rats

# Efron and Morris (1975): hits in the first 45 at-bats of the 1970 season
HITS = np.array([18, 17, 16, 15, 14, 14, 13, 12, 11, 11, 10, 10, 10, 10, 10, 9, 8, 7])


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


def _batting():
    return pd.DataFrame({"player": range(len(HITS))}), HITS


# -- R's cbind(successes, failures) habit ---------------------------------------
def test_failures_for_trials_error_names_the_habit():
    """y = [successes, failures] with fewer failures than successes somewhere:
    the error says the second column counts trials (R's cbind habit)."""
    X, hits = _batting()
    y = np.c_[hits, 45 - hits]
    y[0] = [30, 15]  # a row with more successes than failures
    with pytest.raises(ValueError, match=r"successes exceed trials") as info:
        MultilevelBinomial(group="player").fit(X, y)
    message = str(info.value)
    assert "cbind(successes, failures)" in message
    assert "[successes, successes + failures]" in message
