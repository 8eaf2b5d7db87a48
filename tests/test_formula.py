"""skre.from_formula: lme4 formulas in, the estimator and its X, y out.

References: lme4's own fit of the same formula (tests/reference/toenail.R),
and exact identities (the formula's X, y are the ones written by hand)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skre import MultilevelBinomial, from_formula
from skre.datasets import load_rats
from skre.exceptions import QuadratureWarning

pytest.importorskip("formulaic")

REF = Path(__file__).parent / "reference"


def test_toenail_formula_equals_lme4():
    """The formula lme4 was given, the same fit (nAGQ = 25, tight)."""
    d = pd.read_csv(REF / "data" / "toenail.csv")
    ref = json.loads((REF / "toenail.json").read_text())["fits"]["nagq25"]
    est, X, y = from_formula("y ~ treat * time + (1 | patient)", d, n_quad=25)
    assert est.get_params()["group"] == "patient" and est.n_quad == 25
    names = [name for name in ref["fixef"] if name != "(Intercept)"]
    assert list(X.columns) == ["patient", *names]  # lme4's names and order
    est.fit(X, y)
    np.testing.assert_allclose(est.coef_, [ref["fixef"][n] for n in names], rtol=1e-5)
    assert est.intercept_ == pytest.approx(ref["fixef"]["(Intercept)"], rel=1e-5)
    assert est.tau_ == pytest.approx(ref["tau"], rel=1e-5)


def test_cbind_counts_equal_the_direct_fit():
    X0, y0 = load_rats(return_X_y=True)
    d = X0.assign(m=y0["m"], n=y0["n"])
    model = from_formula("cbind(m, n - m) ~ 1 + (1 | batch)", d)
    est, X, y = model
    np.testing.assert_array_equal(y, y0[["m", "n"]].to_numpy(dtype=float))
    assert list(X.columns) == ["batch"]
    direct = MultilevelBinomial(group="batch").fit(X0, y0)
    est.fit(X, y)
    assert (est.intercept_, est.tau_, est.loglik_) == (
        direct.intercept_,
        direct.tau_,
        direct.loglik_,
    )
    assert model.estimator is est and model.X is X and model.y is y


@pytest.fixture
def clinics():
    rng = np.random.default_rng(3)
    n = 400
    d = pd.DataFrame(
        {
            "clinic": rng.integers(0, 25, n),
            "arm": rng.choice(["control", "dose1", "dose2"], n),
            "age": rng.uniform(20, 80, n),
        }
    )
    effect = rng.normal(0, 1.0, 25)[d["clinic"]]
    logit = -0.5 + 0.6 * (d["arm"] == "dose2") + 0.02 * (d["age"] - 50) + effect
    d["cured"] = rng.random(n) < 1 / (1 + np.exp(-logit))
    return d


def test_categorical_and_transforms_equal_hand_coding(clinics):
    d = clinics
    model = from_formula("cured ~ arm + np.log(age) + (1 | clinic)", d)
    est, X, y = model
    assert list(X.columns) == ["clinic", "arm[T.dose1]", "arm[T.dose2]", "np.log(age)"]
    hand = pd.DataFrame(
        {
            "clinic": d["clinic"],
            "arm[T.dose1]": (d["arm"] == "dose1").astype(float),
            "arm[T.dose2]": (d["arm"] == "dose2").astype(float),
            "np.log(age)": np.log(d["age"]),
        }
    )
    pd.testing.assert_frame_equal(X, hand)
    np.testing.assert_array_equal(y, d["cured"].astype(int))
    # new rows are coded with the training levels, whatever levels they hold
    new = pd.DataFrame({"clinic": [99], "arm": ["dose2"], "age": [40.0]})
    Xn = model.design(new)
    assert list(Xn.columns) == list(X.columns)
    np.testing.assert_allclose(Xn.iloc[0, 1:].to_numpy(float), [0, 1, np.log(40)])
    est.fit(X, y)
    assert est.predict_proba(Xn).shape == (1, 2)
    with pytest.raises(ValueError, match=r"categories outside.*'dose3'"):
        model.design(new.assign(arm="dose3"))
    with pytest.raises(ValueError, match="name 'age' is not defined"):
        model.design(new.drop(columns="age"))


@pytest.mark.parametrize(
    "formula, error, match",
    [
        ("cured arm + (1 | clinic)", ValueError, "one '~'"),
        ("cured ~ arm", ValueError, r"no random-effect term: add \(1 \| group\)"),
        ("cured ~ arm + (1 + age | clinic)", ValueError, "among the fixed effects"),
        ("cured ~ age + (0 + age | clinic)", NotImplementedError, "random intercept"),
        ("cured ~ age + (1 | arm:arm)", ValueError, "crosses a column with itself"),
        ("cured ~ age + (1 | arm:hospital)", ValueError, "'hospital' is not a column"),
        ("cured ~ age + (1 | arm:clinic-1)", NotImplementedError, "a:b of columns"),
        ("cured ~ (1 | arm) + (1 | clinic)", NotImplementedError, "2 random-effect"),
        (
            "cured ~ age + (1 | interaction(arm, clinic))",
            NotImplementedError,
            r"does not read.*\(interaction\(a, b\) is a:b here\)",
        ),
        ("cured ~ age + (1 | (clinic))", NotImplementedError, "does not read"),
        ("cured ~ 0 + age + (1 | clinic)", ValueError, "no intercept"),
        ("cured ~ age - 1 + (1 | clinic)", ValueError, "no intercept"),
        ("cured ~ age + (1 | hospital)", ValueError, "'hospital' is not a column"),
        ("status ~ age + (1 | clinic)", ValueError, "response 'status' is not"),
        ("age ~ arm + (1 | clinic)", ValueError, "must hold 0/1"),
        ("cbind(cured) ~ arm + (1 | clinic)", ValueError, "two expressions"),
        ("cbind(age, -age) ~ arm + (1 | clinic)", ValueError, "failures are negative"),
        ("cured ~ clinic + (1 | clinic)", ValueError, "both the grouping column"),
    ],
)
def test_bad_formulas_say_what_is_wrong(clinics, formula, error, match):
    with pytest.raises(error, match=match):
        from_formula(formula, clinics)


def test_missing_values_are_refused_not_dropped(clinics):
    for column in ("age", "clinic", "cured"):
        d = clinics.astype({column: object})
        d.loc[7, column] = None
        with pytest.raises(ValueError, match="missing values|null values"):
            from_formula("cured ~ age + (1 | clinic)", d)
    with pytest.raises(TypeError, match="DataFrame"):
        from_formula("cured ~ age + (1 | clinic)", clinics.to_numpy())


def test_random_slopes_from_the_formula_equal_lme4():
    """lme4's own formula, (1 + urban | district) and (1 + urban || district),
    fit by n_quad=1: lme4's Laplace fits (tests/reference/slopes_lme4.R)."""
    d = pd.read_csv(REF / "data" / "contraception.csv")
    ref = json.loads((REF / "slopes_lme4.json").read_text())["contraception"]
    fixed = "use ~ age + age2 + urban + livch1 + livch2 + livch3"
    for bar, kind in (("|", "unstructured"), ("||", "diagonal")):
        est, X, y = from_formula(f"{fixed} + (1 + urban {bar} district)", d, n_quad=1)
        assert est.random_slopes == ["urban"] and est.covariance == kind
        est.fit(X, y)
        polished = ref["fits"][kind]["polished"]
        assert est.loglik_ == pytest.approx(polished["loglik"], rel=1e-10)
        np.testing.assert_allclose(
            est.variance_components_["sdcor"],
            ref["fits"][kind]["varcorr"]["sdcor"],
            rtol=1e-5,
        )


def test_r_powers_inside_I_are_powers(clinics):
    """lme4's I(x^2) squares (formulaic's I() is Python, where ^ is XOR: on
    integers it silently gave x XOR 2)."""
    d = clinics.assign(years=np.arange(len(clinics)) % 7 - 3)
    _, X, _ = from_formula("cured ~ years + I(years^2) + (1 | clinic)", d)
    np.testing.assert_array_equal(X.iloc[:, 2], d["years"] ** 2)


def test_offset_terms_are_glmers_offset():
    """offset(lt) in the fixed part: the estimator's offset= column, the fit
    glmer's ~ x + offset(lt) + (1 | group) (tests/reference/offset_lme4.R);
    offset(np.log(t)) of t = exp(lt) is the same column, and design() codes
    new rows with it."""
    ref = json.loads((REF / "offset_lme4.json").read_text())["glmer"]["nagq25"]
    d = pd.read_csv(REF / "data" / "offset_counts.csv")
    est, X, y = from_formula(
        "cbind(m, n - m) ~ x + offset(lt) + (1 | group)", d, n_quad=25
    )
    assert est.offset == "offset(lt)" and list(X.columns) == [
        "group",
        "x",
        "offset(lt)",
    ]
    est.fit(X, y)
    np.testing.assert_allclose(
        [est.intercept_, est.coef_[0], est.tau_],
        [ref["fixef"]["(Intercept)"], ref["fixef"]["x"], ref["tau"]],
        atol=1e-6,
    )
    d2 = d.assign(t=np.exp(d["lt"]))
    model = from_formula("cbind(m, n - m) ~ offset(np.log(t)) + x + (1 | group)", d2)
    np.testing.assert_allclose(model.X["offset(np.log(t))"], d["lt"], rtol=1e-13)
    new = model.design(d2.iloc[:4])
    np.testing.assert_allclose(new["offset(np.log(t))"], d["lt"][:4], rtol=1e-13)
    with pytest.raises(ValueError, match="offset"):
        from_formula("cbind(m, n - m) ~ x + offset(nope) + (1 | group)", d)


@pytest.fixture
def schools():
    """Binary rows of pupils in schools nested in districts (school labels
    repeat across districts: s0 of d1 is not s0 of d2), one covariate."""
    rng = np.random.default_rng(7)
    rows = []
    for district in range(8):
        u = rng.normal(0, 1.0)
        for school in range(int(rng.integers(1, 4))):
            v = rng.normal(0, 1.0)
            for _ in range(int(rng.integers(5, 9))):
                x = rng.normal()
                p = 1 / (1 + np.exp(-(-0.3 + 0.7 * x + u + v)))
                rows.append((f"d{district}", f"s{school}", x, int(rng.random() < p)))
    return pd.DataFrame(rows, columns=["district", "school", "x", "passed"])


def test_nested_groups_equal_the_direct_fit(schools):
    """(1 | district/school) is MultilevelBinomial(group=[district, school])
    on the same columns, params passed through; design() codes new rows."""
    d = schools
    model = from_formula("passed ~ x + (1|district /  school)", d, n_quad=1)
    est, X, y = model
    assert est.get_params()["group"] == ["district", "school"] and est.n_quad == 1
    pd.testing.assert_frame_equal(X, d[["district", "school", "x"]])
    np.testing.assert_array_equal(y, d["passed"])
    est.fit(X, y)
    direct = MultilevelBinomial(group=["district", "school"], n_quad=1).fit(
        d[["district", "school", "x"]], d["passed"]
    )
    assert (est.intercept_, est.tau_, est.tau_outer_, est.loglik_) == (
        direct.intercept_,
        direct.tau_,
        direct.tau_outer_,
        direct.loglik_,
    )
    np.testing.assert_array_equal(est.coef_, direct.coef_)
    assert est.tau_ > 0 and est.tau_outer_ > 0
    # a seen school, a new school of a seen district, a new district
    new = pd.DataFrame(
        {"district": ["d0", "d0", "d99"], "school": ["s0", "new", "s0"], "x": 0.5}
    )
    Xn = model.design(new)
    pd.testing.assert_frame_equal(Xn, new)
    proba = est.predict_proba(Xn)[:, 1]
    np.testing.assert_array_equal(proba, direct.predict_proba(new)[:, 1])
    assert len(set(proba)) == 3  # each level of novelty predicts differently
    with pytest.raises(ValueError, match="'school' is not a column"):
        model.design(new.drop(columns="school"))


def test_nested_groups_with_an_offset(schools):
    d = schools.assign(lt=np.linspace(-0.2, 0.2, len(schools)))
    model = from_formula("passed ~ x + offset(lt) + (1 | district/school)", d, n_quad=1)
    est, X, y = model
    assert est.offset == "offset(lt)"
    assert list(X.columns) == ["district", "school", "x", "offset(lt)"]
    direct = MultilevelBinomial(
        group=["district", "school"], n_quad=1, offset="lt"
    ).fit(d[["district", "school", "x", "lt"]], d["passed"])
    assert est.fit(X, y).loglik_ == direct.loglik_
    assert list(model.design(d.iloc[:2]).columns) == list(X.columns)


@pytest.mark.parametrize(
    "formula, error, match",
    [
        ("passed ~ x + (1 + x | district/school)", NotImplementedError, "slopes of"),
        ("passed ~ x + (1 | district/school/x)", NotImplementedError, "3 levels"),
        ("passed ~ (1 | district) + (1 | school)", NotImplementedError, "crossed"),
        ("passed ~ (1 | district) + (1 | x:school)", NotImplementedError, "crossed"),
        ("passed ~ x + (1 | x/school)", ValueError, "both a grouping column"),
        ("passed ~ (1 | district/district)", ValueError, "in itself"),
        ("passed ~ (1 | district/class)", ValueError, "'class' is not a column"),
    ],
)
def test_bad_nested_formulas_say_what_is_wrong(schools, formula, error, match):
    with pytest.raises(error, match=match):
        from_formula(formula, schools)


def test_nested_missing_groups_are_refused(schools):
    for column in ("district", "school"):
        d = schools.astype({column: object})
        d.loc[3, column] = None
        with pytest.raises(ValueError, match=f"{column!r} has missing values"):
            from_formula("passed ~ x + (1 | district/school)", d)


@pytest.mark.parametrize(
    "spelling",
    ["(1 | district) + (1 | district:school)", "(1 | school:district) + (1|district)"],
)
def test_long_spelling_of_nesting_is_nesting(schools, spelling):
    """lme4 expands (1 | a/b) to (1 | a) + (1 | a:b); written out, it is the
    same model."""
    est, X, y = from_formula(f"passed ~ x + {spelling}", schools, n_quad=1)
    short, X2, _ = from_formula("passed ~ x + (1 | district/school)", schools, n_quad=1)
    assert est.get_params() == short.get_params()
    pd.testing.assert_frame_equal(X, X2)


def test_pair_groups_equal_lme4_guimmun():
    """(1 | comm:mom): one group per (community, mother) pair, as lme4's
    interaction grouping; Laplace and 25 nodes against glmer(nAGQ = 1, 25)
    (tests/reference/pairs_lme4.R), the pair column as built by hand."""
    d = pd.read_csv(REF / "data" / "guImmun.csv", dtype={"comm": str, "mom": str})
    ref = json.loads((REF / "pairs_lme4.json").read_text())
    formula = "immun ~ kid2pY + ruralY + pcInd81 + (1 | comm:mom)"
    for key, n_quad in (("laplace", 1), ("agq25", 25)):
        model = from_formula(formula, d, n_quad=n_quad)
        est, X, y = model
        assert est.group == "comm:mom" and list(X.columns)[0] == "comm:mom"
        np.testing.assert_array_equal(X["comm:mom"], d["comm"] + ":" + d["mom"])
        if n_quad == 1:  # far from exact here: the fit says so
            with pytest.warns(QuadratureWarning, match="not accurate"):
                est.fit(X, y)
        else:
            est.fit(X, y)
        want = ref[key]
        assert len(est.groups_) == want["n_groups"]
        beta = [want["beta"][c] for c in ("kid2pY", "ruralY", "pcInd81")]
        np.testing.assert_allclose(est.coef_, beta, rtol=1e-5)
        np.testing.assert_allclose(
            est.intercept_, want["beta"]["(Intercept)"], rtol=1e-5
        )
        np.testing.assert_allclose(est.tau_, want["sd"], rtol=1e-5)
        np.testing.assert_allclose(est.loglik_, want["loglik"], rtol=1e-7)
    # new rows: a seen pair, and an unseen pair of a seen community
    new = model.design(d.iloc[[0]].assign(mom=["no such mother"]))
    assert new["comm:mom"].tolist() == [d["comm"][0] + ":no such mother"]
    seen = est.predict_proba(X.iloc[[0]])[:, 1]
    unseen = est.predict_proba(new)[:, 1]
    assert seen != unseen


def test_pair_groups_take_slopes_and_refuse_ambiguous_labels():
    d = pd.DataFrame(
        {
            "a": ["1", "1", "1:2", "1:2"] * 3,
            "b": ["2:3", "3", "3", "4"] * 3,
            "x": np.linspace(-1, 1, 12),
            "y": [0, 1, 1, 0, 1, 1] * 2,
        }
    )
    with pytest.raises(ValueError, match="ambiguous"):
        from_formula("y ~ x + (1 | a:b)", d)  # "1" + "2:3" and "1:2" + "3"
    d["a"] = d["a"].str.replace(":", "-")
    est, X, _ = from_formula("y ~ x + (1 + x | a:b)", d)
    assert est.get_params()["random_slopes"] == ["x"]
    assert sorted(set(X["a:b"])) == ["1-2:3", "1-2:4", "1:2:3", "1:3"]


def test_pair_labels_of_new_rows_follow_the_pairs_values():
    """design() gives a new row the label of the seen pair with its values
    (by value: 2.0 is 2, as for one group column) and refuses a new pair
    whose label a different, seen pair has (the attack's F1, F2); no rows,
    or a missing label, are handled as for one group column (F3, F4)."""
    rng = np.random.default_rng(3)
    d = pd.DataFrame(
        {
            "a": rng.integers(0, 4, 200),
            "b": rng.integers(0, 3, 200),
            "x": rng.normal(size=200),
            "y": rng.integers(0, 2, 200),
        }
    )
    model = from_formula("y ~ x + (1 | a:b)", d, n_quad=7)
    est = model.estimator.fit(model.X, model.y)
    floats = model.design(d.iloc[:5].astype({"a": float}))
    pd.testing.assert_frame_equal(floats, model.X.iloc[:5])
    np.testing.assert_array_equal(
        est.predict_proba(floats), est.predict_proba(model.X.iloc[:5])
    )
    with pytest.raises(ValueError, match="ambiguous.*'2:2'"):
        model.design(pd.DataFrame({"a": ["2"], "b": ["2"], "x": [0.0]}))
    new = model.design(pd.DataFrame({"a": [9], "b": [9], "x": [0.0]}))
    assert new["a:b"].tolist() == ["9:9"] and "9:9" not in set(model.X["a:b"])
    empty = model.design(d.iloc[:0])
    assert list(empty.columns) == ["a:b", "x"] and len(empty) == 0
    with pytest.raises(ValueError, match="'b' has missing values"):
        model.design(d.iloc[:3].astype({"b": float}).assign(b=[1.0, np.nan, 2.0]))
    # the same value in two types within one column is one pair, not an error
    mixed = d.astype({"a": object})
    mixed.loc[0, "a"] = float(mixed.loc[0, "a"])
    X = from_formula("y ~ x + (1 | a:b)", mixed).X
    assert X["a:b"].nunique() == model.X["a:b"].nunique()
