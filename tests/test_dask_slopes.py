"""Random slopes on Dask input: the map-reduce fit equals the in-memory one.

Runs on a real LocalCluster (2 worker processes, 1 thread each), as
tests/test_dask.py does; ``skre.local-rows`` 0 sends every fit through the
partitions, however small the data. 240 groups keep the Newton steps on the
outer products of the groups' scores (BHHH_GROUPS), as on large data. The
size of the benchmark (2e4 groups) is in benchmarks/bench_dask.py.
"""

import logging

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from skre import MultilevelBinomial  # noqa: E402
from skre.priors import LKJ, Normal  # noqa: E402

COLS = ["g", "x0", "x1", "x2"]
RTOL = 1e-7


def simulated(G=240, per=8, seed=0, slopes=1):
    """Binary rows, a random intercept and ``slopes`` random slopes (x0, x1)
    plus a fixed covariate x2; rows in random order, so that every input
    partition holds pieces of most groups."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(G), per)
    Z = rng.normal(size=(G * per, 3))
    sd = np.r_[0.9, 0.5, 0.4][: 1 + slopes]
    B = rng.normal(size=(G, 1 + slopes)) * sd
    eta = -0.4 + Z @ [0.6, -0.3, 0.2] + B[codes, 0]
    eta += np.sum(B[codes, 1:] * Z[:, :slopes], axis=1)
    frame = pd.DataFrame({"g": codes, "x0": Z[:, 0], "x1": Z[:, 1], "x2": Z[:, 2]})
    frame["y"] = rng.binomial(1, expit(eta))
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def one():
    return simulated()


@pytest.fixture(scope="module")
def two():
    return simulated(seed=1, slopes=2)


def distributed_fit():
    return dask.config.set({"skre.local-rows": 0})


def fit_both(df, npartitions=4, **params):
    """The in-memory fit and the Dask fit of the same rows."""
    a = MultilevelBinomial(group="g", **params).fit(df[COLS], df["y"])
    ddf = dd.from_pandas(df, npartitions=npartitions, sort=False)
    with distributed_fit():
        b = MultilevelBinomial(group="g", **params).fit(ddf[COLS], ddf["y"])
    return a, b


def assert_same_fit(a, b, rtol=RTOL):
    for name in ("intercept_", "coef_", "random_covariance_", "tau_"):
        np.testing.assert_allclose(
            getattr(b, name), getattr(a, name), rtol=rtol, atol=0, err_msg=name
        )
    assert b.loglik_ == pytest.approx(a.loglik_, rel=rtol)
    assert b._fit_result.n_quad == a._fit_result.n_quad  # the same rule
    np.testing.assert_array_equal(b.groups_, a.groups_)
    np.testing.assert_array_equal(b.feature_names_in_, a.feature_names_in_)
    np.testing.assert_array_equal(b.random_slopes_, a.random_slopes_)


@pytest.mark.parametrize(
    "params",
    [
        {"random_slopes": ["x0"], "n_quad": 1},
        {"random_slopes": ["x0"], "n_quad": 7},
        {"random_slopes": ["x0"], "covariance": "diagonal", "n_quad": 3},
    ],
    ids=["laplace", "7-nodes", "diagonal"],
)
def test_one_slope_equals_in_memory(client, one, params):
    a, b = fit_both(one, **params)
    assert_same_fit(a, b)


@pytest.mark.slow  # (a few seconds of map-reduce rounds; CI runs it)
def test_auto_nodes_and_the_methods_after_the_fit(client, one):
    """n_quad="auto" checks its rule on the partitions and picks the same
    one; the fitted estimator then answers as the in-memory one (its
    collapsed rows are gathered for that)."""
    a, b = fit_both(one, random_slopes=["x0"])
    assert_same_fit(a, b)
    assert b._fit_result.check[:2] == a._fit_result.check[:2]
    X = one[COLS]
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-9)
    assert b.score(X, one["y"]) == pytest.approx(a.score(X, one["y"]), abs=1e-9)
    va, vb = a.variance_components_, b.variance_components_
    assert vb.drop(columns=["vcov", "sdcor"]).equals(va.drop(columns=["vcov", "sdcor"]))
    np.testing.assert_allclose(vb["vcov"], va["vcov"], rtol=RTOL)
    for call in (
        lambda e: e.confint(method="wald"),
        lambda e: e.group_estimates(),
        lambda e: e.summary().fixed_effects,
        lambda e: e.summary().random_effects,
    ):
        pa, pb = call(a), call(b)
        assert list(pb.index) == list(pa.index)
        np.testing.assert_allclose(
            pb.select_dtypes("number"), pa.select_dtypes("number"), rtol=1e-6
        )


@pytest.mark.slow  # (a few seconds of map-reduce rounds; CI runs it)
def test_two_slopes_equal_in_memory(client, two):
    a, b = fit_both(two, random_slopes=["x0", "x1"], n_quad=1)
    assert_same_fit(a, b)
    assert b.random_covariance_.shape == (3, 3)


@pytest.mark.slow  # a few hundred map-reduce rounds: about 15 s
def test_two_slopes_on_a_rule_equal_in_memory(client, two):
    a, b = fit_both(two, random_slopes=["x0", "x1"], n_quad=3)
    assert_same_fit(a, b)


def test_covariance_prior_equals_in_memory(client, one):
    """The prior is added on the client, to the partitions' sums."""
    a, b = fit_both(one, random_slopes=["x0"], n_quad=1, covariance_prior=LKJ(2.0))
    assert_same_fit(a, b)


@pytest.mark.slow  # (a few seconds of map-reduce rounds; CI runs it)
def test_groups_split_across_partitions(client, one):
    """Every input partition holds rows of most groups: the shuffle into
    whole groups (as for the random intercept) makes the fit independent of
    how the rows were cut, and equal to the in-memory one."""
    ddf = dd.from_pandas(one, npartitions=5, sort=False)
    per_part = ddf.map_partitions(lambda f: f["g"].nunique()).compute()
    assert min(per_part) > 0.5 * one["g"].nunique()
    for n in (1, 5):
        a, b = fit_both(one, npartitions=n, random_slopes=["x0"], n_quad=1)
        assert_same_fit(a, b)


def test_the_fit_is_a_map_reduce(client, one, caplog):
    """Each evaluation is one round over the partitions (dozens of them),
    and the modes stay there: only the finished fit's modes are gathered."""
    from skre._dask import slopes

    gathered = []
    field = slopes.Kept.__array__

    def spy(self, *args, **kwargs):
        gathered.append(self.name)
        return field(self, *args, **kwargs)

    ddf = dd.from_pandas(one, npartitions=4, sort=False)
    with caplog.at_level(logging.INFO, logger="skre.dask"), distributed_fit():
        slopes.Kept.__array__ = spy
        try:
            MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=1).fit(
                ddf[COLS], ddf["y"]
            )
        finally:
            slopes.Kept.__array__ = field
    rounds = [r.skre_rounds for r in caplog.records if hasattr(r, "skre_rounds")]
    assert rounds and rounds[0] > 10
    assert sorted(gathered) == ["C", "u"]


def test_local_scheduler(one):
    """No client: the active local scheduler runs the same code."""
    a = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=1)
    a.fit(one[COLS], one["y"])
    ddf = dd.from_pandas(one, npartitions=3, sort=False)
    with dask.config.set({"scheduler": "sync", "skre.local-rows": 0}):
        b = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=1)
        b.fit(ddf[COLS], ddf["y"])
    assert_same_fit(a, b)


def test_what_stays_refused(client, one):
    ddf = dd.from_pandas(one, npartitions=2, sort=False)
    est = MultilevelBinomial(group="g", random_slopes=["x0"], n_quad=1)
    with dask.config.set({"skre.local-rows": 0, "skre.gather-rows": 0}):
        with pytest.raises(ValueError, match="skre.gather-rows"):
            est.fit(ddf[COLS], ddf["y"])
    est.fit(one[COLS], one["y"])
    for call in (
        lambda: est.predict_proba(ddf[COLS]),
        lambda: est.score(ddf[COLS], ddf["y"]),
    ):
        with pytest.raises(NotImplementedError, match="Dask collections yet"):
            call()
    with pytest.raises(NotImplementedError, match="offset"):
        MultilevelBinomial(group="g", random_slopes=["x0"], offset="x2").fit(
            ddf[["g", "x0", "x1", "x2"]], ddf["y"]
        )
    zeros = one.assign(m=0, n=1)  # counts without a success
    ddz = dd.from_pandas(zeros, npartitions=2, sort=False)
    with pytest.raises(ValueError, match="nothing to vary around") as mem:
        MultilevelBinomial(group="g", random_slopes=["x0"]).fit(
            zeros[COLS], zeros[["m", "n"]]
        )
    with distributed_fit(), pytest.raises(ValueError) as dist:
        MultilevelBinomial(group="g", random_slopes=["x0"]).fit(
            ddz[COLS], ddz[["m", "n"]]
        )
    assert str(dist.value) == str(mem.value)
    # the parameters' checks run before the data are read, as in memory
    with pytest.raises(NotImplementedError, match="coef_prior"):
        MultilevelBinomial(
            group="g", random_slopes=["x0"], coef_prior=Normal(0.0, 2.5)
        ).fit(ddf[COLS], ddf["y"])
