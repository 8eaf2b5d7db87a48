"""Nested random intercepts, ``group=[outer, inner]`` (lme4's ``(1 | a/b)``).

References: lme4's and glmmTMB's Laplace fits of mlmRev's guImmun
(``tests/reference/nested_lme4.R`` writes ``nested_lme4.json``), and scipy's
own nested ``quad`` for the exact log-likelihood and predictions.
"""

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit
from sklearn.base import clone

from skre import MultilevelBinomial

REF = Path(__file__).parent / "reference"


def _guimmun():
    d = pd.read_csv(REF / "data" / "guImmun.csv", dtype={"comm": str, "mom": str})
    return d, json.loads((REF / "nested_lme4.json").read_text())


def _check_laplace(m, ref, rtol):
    cols = [c for c in ref["beta"] if c != "(Intercept)"]
    beta = np.array([ref["beta"][c] for c in cols])
    np.testing.assert_allclose(m.coef_, beta, rtol=rtol)
    np.testing.assert_allclose(m.intercept_, ref["beta"]["(Intercept)"], rtol=rtol)
    np.testing.assert_allclose(m.tau_, ref["sd_inner"], rtol=rtol)
    np.testing.assert_allclose(m.tau_outer_, ref["sd_outer"], rtol=rtol)


def test_laplace_equals_lme4_guimmun():
    """The full model, where lme4's own glmer stops at max|grad| 0.33: its
    optimum polished on lme4's deviance function."""
    d, ref = _guimmun()
    ref = ref["full"]
    cols = [c for c in ref["beta"] if c != "(Intercept)"]
    m = MultilevelBinomial(group=["comm", "mom"], n_quad=1).fit(
        d[["comm", "mom", *cols]], d["immun"]
    )
    _check_laplace(m, ref, 1e-5)
    assert m.loglik_ == pytest.approx(ref["loglik"], rel=1e-8)
    vc = m.variance_components_
    assert list(vc["grp"]) == ["mom:comm", "comm"]
    np.testing.assert_allclose(vc["sdcor"], [ref["sd_inner"], ref["sd_outer"]], 1e-5)


def test_laplace_equals_lme4_and_glmmtmb_small_model():
    """kid2p + rural + pcInd81: lme4's Laplace optimum (its deviance at
    tolPwrss = 1e-14: at 1e-12 it is still 5e-5 off on this model) and
    glmmTMB's."""
    d, ref = _guimmun()
    small = ref["small"]
    cols = ["kid2pY", "ruralY", "pcInd81"]
    m = MultilevelBinomial(group=["comm", "mom"], n_quad=1).fit(
        d[["comm", "mom", *cols]], d["immun"]
    )
    _check_laplace(m, small, 1e-5)
    _check_laplace(m, small["tmb"], 1e-5)
    assert m.loglik_ == pytest.approx(small["loglik"], abs=1e-8)
    assert m.loglik_ == pytest.approx(small["tmb"]["loglik"], abs=1e-8)


# -- exact quadrature against scipy's nested quad --------------------------------


def _simulated(seed=7, A=7):
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(A):
        u = rng.normal() * 1.0
        for j in range(rng.integers(1, 4)):
            v = rng.normal() * 0.8
            for _ in range(rng.integers(1, 5)):
                x = rng.normal()
                n = int(rng.integers(1, 4))
                m = rng.binomial(n, expit(-0.2 + 0.6 * x + u + v))
                rows.append((f"d{a}", j, x, m, n))
    frame = pd.DataFrame(rows, columns=["district", "school", "x", "m", "n"])
    return frame[["district", "school", "x"]], frame[["m", "n"]].to_numpy()


#: the brute-force rule: the trapezoid rule on [-10, 10] in steps of 0.02 in
#: each dimension (geometrically convergent for these smooth integrands,
#: independent of skre's Gauss-Hermite rules)
GRID = np.linspace(-10.0, 10.0, 1001)
GRID_W = stats.norm.pdf(GRID) * 0.02


def _inner_lik(r, b, coef, sa, sb):
    """(len(GRID) z, len(GRID) w) likelihood of one inner group's rows."""
    eta = (
        b
        + coef * r["x"].to_numpy()[:, None, None]
        + sa * GRID[None, :, None]
        + sb * GRID[None, None, :]
    )
    m, n = r["m"].to_numpy()[:, None, None], r["n"].to_numpy()[:, None, None]
    return np.exp(np.sum(m * eta - n * np.logaddexp(0, eta), axis=0))


def _brute_loglik(X, y, b, coef, sa, sb):
    """Sum over outer groups of log int phi(z) prod_j int phi(w) L dw dz, on
    the tensor grid."""
    total = 0.0
    for _, rows in X.assign(m=y[:, 0], n=y[:, 1]).groupby("district"):
        given_z = np.ones(len(GRID))
        for _, r in rows.groupby("school"):
            given_z *= _inner_lik(r, b, coef, sa, sb) @ GRID_W
        total += np.log(given_z @ GRID_W)
    return total


def _binomial_constant(y):
    from scipy.special import gammaln

    m, n = y[:, 0], y[:, 1]
    return float(np.sum(gammaln(n + 1) - gammaln(m + 1) - gammaln(n - m + 1)))


def test_default_equals_brute_force():
    X, y = _simulated()
    m = MultilevelBinomial(group=["district", "school"]).fit(X, y)
    kernel = _brute_loglik(X, y, m.intercept_, m.coef_[0], m.tau_outer_, m.tau_)
    assert m.loglik_ == pytest.approx(kernel + _binomial_constant(y), abs=1e-7)


@pytest.mark.slow
def test_default_is_the_brute_force_maximum():
    """Moving any parameter of the default's estimate lowers the brute-force
    log-likelihood."""
    X, y = _simulated()
    m = MultilevelBinomial(group=["district", "school"]).fit(X, y)
    kernel = _brute_loglik(X, y, m.intercept_, m.coef_[0], m.tau_outer_, m.tau_)
    for k in range(4):
        p = [m.intercept_, m.coef_[0], m.tau_outer_, m.tau_]
        for h in (-0.02, 0.02):
            q = list(p)
            q[k] += h
            assert _brute_loglik(X, y, *q) < kernel


@pytest.mark.parametrize("K", [1, 3, 9])
def test_exact_gradient_equals_differences(K):
    """The core's analytic scores (the nodes moving with the modes and
    curvatures) against Richardson differences of its values, an SD at 0
    included."""
    from skre._core.nested import NestedLikelihood
    from skre._nested_fit import nested_data, outer_codes_of

    X, y = _simulated()
    m = MultilevelBinomial(group=["district", "school"], n_quad=1).fit(X, y)
    design = m._fit_result.design
    data, _ = nested_data(design.data, outer_codes_of(design.groups)[0])
    for x in ([0.5, -0.3, 1.2, 0.9], [-0.2, 0.4, 0.0, 2.0], [0.1, 0.2, 0.7, 0.0]):
        lik = NestedLikelihood(data, K)
        logm, scores = lik.value_and_scores(np.array(x))
        np.testing.assert_allclose(logm, lik.group_loglik(np.array(x)), rtol=1e-13)
        np.testing.assert_allclose(scores, lik.fd_scores(np.array(x)), atol=1e-8)


def test_predictions_equal_brute_force():
    """A seen pair: E[expit(eta)] over its posterior; a new inner group of a
    seen outer: over the outer effect's posterior and N(0, tau^2); a new
    outer group: over N(0, tau_outer^2 + tau^2) (the tensor grid)."""
    X, y = _simulated()
    m = MultilevelBinomial(group=["district", "school"], n_quad=25).fit(X, y)
    b, c, sa, sb = m.intercept_, m.coef_[0], m.tau_outer_, m.tau_
    rows = X.assign(m=y[:, 0], n=y[:, 1]).query("district == 'd2'")
    x_new = 0.4
    liks = {s: _inner_lik(r, b, c, sa, sb) for s, r in rows.groupby("school")}
    given_z = {s: L @ GRID_W for s, L in liks.items()}
    post_z = np.prod(list(given_z.values()), axis=0) * GRID_W  # unnormalized
    p_new_w = expit(b + c * x_new + sa * GRID[:, None] + sb * GRID[None, :]) @ GRID_W
    school = rows.school.iloc[0]
    # the seen pair: its own (z, w) posterior times the other schools' z terms
    own = liks[school] * GRID_W[None, :]
    joint = own * (post_z / given_z[school])[:, None]
    p_seen = np.sum(joint * expit(b + c * x_new + sa * GRID[:, None] + sb * GRID))
    p_seen /= joint.sum()
    p_new_inner = post_z @ p_new_w / post_z.sum()
    s = np.hypot(sa, sb)
    p_new = expit(b + c * x_new + s * GRID) @ GRID_W
    new = pd.DataFrame(
        {"district": ["d2", "d2", "zz"], "school": [school, 99, 0], "x": [x_new] * 3}
    )
    got = m.predict_proba(new)[:, 1]
    np.testing.assert_allclose(got, [p_seen, p_new_inner, p_new], rtol=1e-7)


def test_profile_ends_are_where_the_likelihood_drops():
    """Each profile end: Nelder-Mead over the other parameters (on the rule's
    values alone, no gradients) finds the drop chi2_1(0.95) / 2 there; an SD
    whose profile at 0 stays within the drop has lower end 0."""
    from scipy import optimize

    from skre._core.nested import NestedLikelihood

    X, y = _simulated()
    m = MultilevelBinomial(group=["district", "school"], n_quad=7).fit(X, y)
    ci = m.confint(method="profile")
    fit = m._fit_result
    lik = NestedLikelihood(fit.data(), 7)
    z_mean, z_scale = fit.design.z_mean, fit.design.z_scale

    def loglik(q):  # (intercept, slope, tau_outer, tau) on the user's scale
        beta = q[1] * z_scale
        return lik.group_loglik(np.r_[beta, q[0] + q[1] * z_mean, q[2], q[3]]).sum()

    p0 = np.r_[m.intercept_, m.coef_[0], m.tau_outer_, m.tau_]
    top = loglik(p0)
    drop = stats.chi2.ppf(0.95, 1) / 2
    for name, k in {"intercept": 0, "x": 1, "tau_outer": 2, "tau": 3}.items():
        others = [j for j in range(4) if j != k]
        for end in ci.loc[name]:

            def neg(v, end=end, k=k, others=others):
                q = p0.copy()
                q[others], q[k] = v, end
                return -loglik(q)

            best = min(
                optimize.minimize(
                    neg,
                    p0[others] + d,
                    method="Nelder-Mead",
                    options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 4000},
                ).fun
                for d in (0.0, 0.05)
            )
            if k >= 2 and end == 0.0:
                assert top + best < drop  # the profile at 0 is within the drop
            else:
                assert top + best == pytest.approx(drop, abs=1e-7)
    assert ci.loc["tau_outer"].iloc[0] == 0.0


def test_score_is_group_joint_on_new_outer_groups():
    """score on rows of a new outer group: their joint marginal likelihood
    (per trial), by nested quad."""
    X, y = _simulated()
    m = MultilevelBinomial(group=["district", "school"], n_quad=25).fit(X, y)
    Xt, yt = _simulated(seed=11, A=2)
    Xt = Xt.assign(district=Xt.district + "_new")
    kernel = _brute_loglik(Xt, yt, m.intercept_, m.coef_[0], m.tau_outer_, m.tau_)
    assert m.score(Xt, yt) == pytest.approx(kernel / yt[:, 1].sum(), abs=1e-9)


# -- identities and sklearn manners -----------------------------------------------


def test_binary_rows_equal_counts_and_row_order():
    X, y = _simulated()
    m1 = MultilevelBinomial(group=["district", "school"]).fit(X, y)
    rows = np.repeat(np.arange(len(X)), y[:, 1])
    first = np.r_[0, np.cumsum(y[:, 1])[:-1]]
    yb = (np.arange(len(rows)) - first[rows] < y[rows, 0]).astype(int)
    Xb = X.iloc[rows].reset_index(drop=True)
    perm = np.random.default_rng(0).permutation(len(Xb))
    m2 = MultilevelBinomial(group=["district", "school"]).fit(Xb.iloc[perm], yb[perm])
    np.testing.assert_allclose(
        [m2.intercept_, *m2.coef_, m2.tau_, m2.tau_outer_],
        [m1.intercept_, *m1.coef_, m1.tau_, m1.tau_outer_],
        rtol=1e-6,
    )


def test_positions_equal_names_and_inner_labels_are_within_outer():
    X, y = _simulated()
    m1 = MultilevelBinomial(group=["district", "school"], n_quad=1).fit(X, y)
    m2 = MultilevelBinomial(group=[0, 1], n_quad=1).fit(X.to_numpy(dtype=object), y)
    assert m2.tau_ == pytest.approx(m1.tau_, rel=1e-12)
    # school 0 of d0 and school 0 of d1 are different groups
    assert ("d0", 0) in list(m1.groups_) and ("d1", 0) in list(m1.groups_)
    assert len(m1.groups_) == len(X.groupby(["district", "school"]))
    idx = m1.group_estimates().index
    assert list(idx.names) == ["district", "school"]


def test_outer_labels_of_two_types_stay_apart():
    """Outer labels 1 and "1" are two outer groups (as one group column keeps
    them apart)."""
    X, y = _simulated()
    X = X.astype({"district": object})
    X.loc[X.district == "d0", "district"] = 1
    X.loc[X.district == "d1", "district"] = "1"
    m = MultilevelBinomial(group=["district", "school"], n_quad=1).fit(X, y)
    assert len(m.outer_groups_) == 7
    assert {1, "1"} <= set(m.outer_groups_)


def test_clone_pickle_and_refuse():
    X, y = _simulated()
    est = MultilevelBinomial(group=["district", "school"], n_quad=3)
    assert clone(est).get_params()["group"] == ["district", "school"]
    m = est.fit(X, y)
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2.predict_proba(X), m.predict_proba(X))
    for method in ("test_tau", "exceedance", "ranks", "flag_groups"):
        with pytest.raises(NotImplementedError, match="nested groups"):
            getattr(m, method)()
    with pytest.raises(NotImplementedError, match="nested fits cannot"):
        m.simulate()
    s = str(m.summary())
    assert "(1 | district/school)" in s and "school:district" in s


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"group": ["district"]}, ValueError, "two column names"),
        ({"group": ["district", "school", "x"]}, NotImplementedError, "3 levels"),
        ({"group": ("district", "school")}, ValueError, "pass a list"),
        ({"group": ["district", "district"]}, ValueError, "twice"),
        ({"group": ["district", "nope"]}, ValueError, "'nope' is not in X"),
        (
            {"group": ["district", "school"], "random_slopes": ["x"]},
            NotImplementedError,
            "random_slopes",
        ),
        ({"group": ["district", "school"], "offset": "school"}, ValueError, "offset"),
    ],
)
def test_bad_nested_parameters(kwargs, error, match):
    X, y = _simulated()
    est = MultilevelBinomial(**kwargs)
    with pytest.raises(error, match=match):
        est.fit(X, y)
    assert not hasattr(est, "coef_")


def test_inner_sd_at_zero_is_the_outer_random_intercept():
    """A boundary fit (the inner SD 0, warned) is the one-level model of
    the outer groups: the same estimates and log-likelihood."""
    from skre.exceptions import BoundaryWarning

    X, y = _simulated(seed=3)
    for n_quad in (15, "auto"):
        with pytest.warns(BoundaryWarning, match="inner groups' SD .* is 0"):
            m = MultilevelBinomial(group=["district", "school"], n_quad=n_quad).fit(
                X, y
            )
        one = MultilevelBinomial(group="district", n_quad=n_quad).fit(
            X[["district", "x"]], y
        )
        assert m.tau_ == 0.0 and m.boundary_
        assert m.tau_outer_ == pytest.approx(one.tau_, rel=1e-6)
        np.testing.assert_allclose(m.coef_, one.coef_, rtol=1e-6)
        assert m.loglik_ == pytest.approx(one.loglik_, abs=1e-8)
    note = str(m.summary())
    assert "one-level model of group='district'" in note
    assert "complete pooling" not in note


def test_outer_sd_at_zero_is_the_pairs_random_intercept():
    """The outer SD at 0: the one-level model of the (outer, inner) pairs."""
    from skre.exceptions import BoundaryWarning

    X, y = _simulated(seed=4)
    with pytest.warns(BoundaryWarning, match="outer groups' SD .* is 0"):
        m = MultilevelBinomial(group=["district", "school"], n_quad=15).fit(X, y)
    pairs = X.assign(pair=X.district + "/" + X.school.astype(str))
    one = MultilevelBinomial(group="pair", n_quad=15).fit(pairs[["pair", "x"]], y)
    assert m.tau_outer_ == 0.0
    assert m.tau_ == pytest.approx(one.tau_, rel=1e-6)
    assert m.loglik_ == pytest.approx(one.loglik_, abs=1e-8)
    assert "(1 | district:school)" in str(m.summary())


def test_missing_label_names_the_column():
    X, y = _simulated()
    X = X.astype({"school": object})
    X.loc[3, "school"] = None
    with pytest.raises(ValueError, match="group column 'school'"):
        MultilevelBinomial(group=["district", "school"]).fit(X, y)
