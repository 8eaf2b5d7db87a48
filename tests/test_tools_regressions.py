"""Issue 22: the model-comparison and model-checking tools, each finding of the
outside tester with a reference computed without skre: scipy's distributions
and integrators, exact identities, direct formulas, and lme4 (the R script
beside its numbers in tests/reference/).
"""

import numpy as np
import pytest

from skre import MultilevelBinomial
from skre.datasets import load_rats


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


# -- profile intervals -----------------------------------------------------------------
def test_profile_interval_where_the_nuisance_tau_reaches_zero(rats, reference):
    """The first 40 rats batches: an interior fit (tau = 0.289) whose intercept
    profile has tau at its boundary 0 beyond the upper end, and whose tau
    profile never rises by the chi2 cutoff before tau = 0. brentq used to get a
    bracket whose ends had one sign. References: lme4's profile and a
    brute-force profile of a 25-node AGQ likelihood in plain R
    (tests/reference/rats40_profile.R)."""
    ref = reference("rats40_profile.json")
    X, y = rats
    est = MultilevelBinomial(group="batch").fit(X.iloc[:40], y.iloc[:40])
    assert est.converged_ and est.tau_ == pytest.approx(ref["tau"], abs=1e-6)
    prof = est.confint(method="profile")
    brute = ref["brute_force"]
    np.testing.assert_allclose(prof.loc["intercept"], brute["intercept"], atol=2e-6)
    assert prof.loc["tau"].iloc[0] == 0.0
    assert prof.loc["tau"].iloc[1] == pytest.approx(brute["tau_upper"], abs=2e-6)
    # lme4 interpolates its profile with splines: agreement to about 1e-5
    lme4 = ref["lme4_profile_ci_95"]
    np.testing.assert_allclose(prof.loc["intercept"], lme4["intercept"], atol=1e-5)
    np.testing.assert_allclose(prof.loc["tau"], lme4["tau"], atol=1e-5)
