"""Conditional modes and SDs of the rats random intercepts against lme4.

lme4's ``ranef(fit, condVar = TRUE)`` of a fresh ``glmer`` fit: the conditional
mode of each batch's intercept deviation (skre's ``random_effects_``) and its
conditional SD, the square root of ``attr(, "postVar")`` (skre's
``random_effects_sd_``). tests/reference/rats_lme4.R reads them *before*
``confint(fit, method = "profile")``: profiling modifies the lme4 fit object (it
leaves the relative covariance factor at the last profiled tau), and ranef read
afterwards is not the fitted model's (``nagq25.ranef_after_profile`` and
``nagq25.profile_side_effect`` in rats_lme4_intervals.json demonstrate it).
"""

import numpy as np
import pytest

from skre import MultilevelBinomial
from skre.datasets import load_rats

# Tolerance (absolute, all 71 batches), from the reference's own precision:
# - The "tight" lme4 fits pin (b, tau) to about 3e-7: that is how far they lie from
#   an independent plain-R maximisation of the same likelihood
#   (rats_lme4.json, glmer.*.independent_nlminb). A conditional mode or SD is a
#   smooth function of (b, tau) with derivatives of order one, so the tight
#   reference carries the same ~3e-7 uncertainty; 1e-6 leaves room for that and
#   nothing more. Observed skre vs tight: <= 1e-8 at nAGQ = 25, <= 3e-7 at Laplace
#   (lme4's Laplace optimum sits ~1.5e-7 off in tau because lme4 evaluates log|L|
#   with PIRLS weights of the previous iterate).
# - The default-tolerance lme4 fits differ from the tight ones by up to 6.6e-6 in
#   the modes (per_batch_default, max_abs_diff_cond_mode_default_vs_tight), so
#   they are not used as the reference here.
# - ranef read after profiling is off by 0.075 (nAGQ = 25), and scaling skre's
#   values by 1.0001 moves them by up to 6e-5: both are far outside 1e-6.
ATOL = 1e-6


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


@pytest.fixture(
    scope="module", params=[(25, "nagq25"), (1, "laplace")], ids=["nagq25", "laplace"]
)
def fitted(request, rats, reference):
    n_quad, key = request.param
    ref = reference("rats_lme4_intervals.json")[key]
    return MultilevelBinomial(group="batch", n_quad=n_quad).fit(*rats), ref


def test_batches_line_up(fitted):
    m, ref = fitted
    assert len(ref["per_batch"]["batch"]) == 71
    np.testing.assert_array_equal(np.asarray(m.groups_), ref["per_batch"]["batch"])


def test_conditional_modes_match_lme4_ranef(fitted):
    m, ref = fitted
    np.testing.assert_allclose(
        m.random_effects_, ref["per_batch"]["cond_mode"], atol=ATOL, rtol=0
    )
    # coef(fit) = fixef + ranef, per batch
    np.testing.assert_allclose(
        m.intercept_ + m.random_effects_, ref["per_batch"]["coef"], atol=ATOL, rtol=0
    )


def test_conditional_sds_match_lme4_condvar(fitted):
    m, ref = fitted
    np.testing.assert_allclose(
        m.random_effects_sd_, ref["per_batch"]["cond_sd"], atol=ATOL, rtol=0
    )


@pytest.mark.parametrize(
    "n_quad, modes, sds",
    [
        # fresh glmer(cbind(m, n - m) ~ 1 + (1 | batch), nAGQ = 25), batches 1, 42, 71
        (25, [-0.640485, 0.099136, 0.549056], [0.533717, 0.517217, 0.474815]),
        (1, [-0.629875, 0.096625, 0.540237], [0.527883, 0.512900, 0.471918]),
    ],
)
def test_quoted_numbers_for_batches_1_42_71(rats, n_quad, modes, sds):
    m = MultilevelBinomial(group="batch", n_quad=n_quad).fit(*rats)
    idx = [list(m.groups_).index(g) for g in (1, 42, 71)]
    # quoted to 6 decimals: rounding adds up to 5e-7
    np.testing.assert_allclose(m.random_effects_[idx], modes, atol=ATOL + 5e-7, rtol=0)
    np.testing.assert_allclose(m.random_effects_sd_[idx], sds, atol=ATOL + 5e-7, rtol=0)


def test_reference_was_read_before_profiling(reference):
    """Guards the reference itself, should rats_lme4.R be rerun or changed."""
    ref = reference("rats_lme4_intervals.json")
    for key in ("nagq25", "laplace"):
        # lme4's ranef agrees with the modes recomputed in plain R at its (b, tau)
        for col in ("cond_mode", "cond_sd"):
            np.testing.assert_allclose(
                ref[key]["per_batch"][col],
                ref[key]["per_batch_independent"][col],
                atol=1e-7,
                rtol=0,
            )
    # ... while the ranef of the same fit read after confint(method = "profile") do not
    after = ref["nagq25"]["ranef_after_profile"]
    side = ref["nagq25"]["profile_side_effect"]
    assert side["theta_after"] == side["theta_before"]
    assert side["lambdat_after"] != pytest.approx(side["lambdat_before"], abs=1e-3)
    diff = np.subtract(after["cond_mode"], ref["nagq25"]["per_batch"]["cond_mode"])
    assert np.max(np.abs(diff)) > 0.05
