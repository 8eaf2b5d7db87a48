"""Dask input: fit, predict and score on partitions equal the in-memory ones.

Runs on a real LocalCluster (2 worker processes, 1 thread each), started once
for the session; the data are small so the file takes well under a minute.
The acceptance-size checks (2e6 rows) are in benchmarks/bench_dask.py.
"""

import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from skre import (  # noqa: E402
    CompletePoolingBinomial,
    MultilevelBinomial,
    NoPoolingBinomial,
)
from skre.datasets import make_grouped_binomial  # noqa: E402
from skre.exceptions import CollinearityWarning  # noqa: E402
from skre.priors import Normal  # noqa: E402

ESTIMATORS = [CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial]
COLS = ["group", "x0", "x1"]


@pytest.fixture(scope="session")
def frame():
    """Binary rows of 150 groups, shuffled (partitions are not sorted by group)."""
    X, y, _ = make_grouped_binomial(
        150, trials=20, n_features=2, binary=True, random_state=0
    )
    order = np.random.default_rng(1).permutation(len(X))
    df = X.iloc[order].reset_index(drop=True)
    df["y"] = y[order]
    return df


@pytest.fixture(scope="session")
def heldout():
    """Rows of 40 new groups and of 30 groups seen in fit."""
    X, y, _ = make_grouped_binomial(
        70, trials=10, n_features=2, binary=True, random_state=5
    )
    X["group"] = np.where(X["group"] < 40, X["group"] + 1000, X["group"])
    X["y"] = y
    return X


def distributed_fit():
    """Every fit through the map-reduce path, however small the data."""
    return dask.config.set({"skre.local-rows": 0})


def assert_same_fit(a, b, tol=1e-7):
    for name in ("intercept_", "coef_", "tau_", "group_intercepts_", "pooled_coef_"):
        if hasattr(a, name):
            np.testing.assert_allclose(
                getattr(b, name), getattr(a, name), rtol=0, atol=tol, err_msg=name
            )
    assert b.loglik_ == pytest.approx(a.loglik_, rel=1e-12)
    if hasattr(a, "variance_components_"):
        vc_a, vc_b = a.variance_components_, b.variance_components_
        assert vc_b.drop(columns=["vcov", "sdcor"]).equals(
            vc_a.drop(columns=["vcov", "sdcor"])
        )
        np.testing.assert_allclose(vc_b["sdcor"], vc_a["sdcor"], rtol=0, atol=tol)
    np.testing.assert_array_equal(b.groups_, a.groups_)
    assert b.n_features_in_ == a.n_features_in_
    names = getattr(a, "feature_names_in_", None)
    np.testing.assert_array_equal(getattr(b, "feature_names_in_", None), names)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_predict_score_equal_in_memory(client, frame, heldout, cls):
    ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    a = cls(group="group").fit(frame[COLS], frame["y"])
    with distributed_fit():
        b = cls(group="group").fit(ddf[COLS], ddf["y"])
    assert_same_fit(a, b)
    proba = b.predict_proba(ddf[COLS])
    assert isinstance(proba, da.Array)  # lazy
    np.testing.assert_allclose(
        proba.compute(), a.predict_proba(frame[COLS]), rtol=0, atol=1e-9
    )
    np.testing.assert_array_equal(
        b.predict(ddf[COLS]).compute(), a.predict(frame[COLS])
    )
    np.testing.assert_allclose(
        b.decision_function(ddf[COLS]).compute(),
        a.decision_function(frame[COLS]),
        rtol=0,
        atol=1e-8,
    )
    assert b.score(ddf[COLS], ddf["y"]) == pytest.approx(
        a.score(frame[COLS], frame["y"]), abs=1e-9
    )
    hd = dd.from_pandas(heldout, npartitions=3, sort=False)
    assert b.score(hd[COLS], hd["y"]) == pytest.approx(
        a.score(heldout[COLS], heldout["y"]), abs=1e-9
    )
    pd.testing.assert_frame_equal(
        b.group_estimates(), a.group_estimates(), check_exact=False, atol=1e-8
    )
    # an ordinary estimator: pickles, and works on pandas
    c = pickle.loads(pickle.dumps(b))
    np.testing.assert_allclose(
        c.predict_proba(heldout[COLS]), a.predict_proba(heldout[COLS]), atol=1e-9
    )


def test_predict_log_proba_and_arrays(client, frame):
    """Dask arrays with group= a position; predictions keep the chunks."""
    values = frame[COLS].to_numpy()
    a = MultilevelBinomial(group=0).fit(values, frame["y"].to_numpy())
    X = da.from_array(values, chunks=(700, 2))
    y = da.from_array(frame["y"].to_numpy(), chunks=500)
    with distributed_fit():
        b = MultilevelBinomial(group=0).fit(X, y)
    assert_same_fit(a, b)
    out = b.predict_log_proba(X)
    assert out.chunks[0] == X.chunks[0]
    np.testing.assert_allclose(out.compute(), a.predict_log_proba(values), atol=1e-9)


def test_local_path_for_counts(client):
    """Intercept-only counts collapse to one row per group: fit in memory."""
    X, y, _ = make_grouped_binomial(300, trials=12, random_state=3)
    df = X.assign(m=y[:, 0], n=y[:, 1]).sample(frac=1.0, random_state=0)
    ddf = dd.from_pandas(df, npartitions=3, sort=False)
    for cls in ESTIMATORS:
        a = cls(group="group").fit(df[["group"]], df[["m", "n"]])
        b = cls(group="group").fit(ddf[["group"]], ddf[["m", "n"]])
        assert_same_fit(a, b, tol=1e-12)
        assert b.score(ddf[["group"]], ddf[["m", "n"]]) == pytest.approx(
            a.score(df[["group"]], df[["m", "n"]]), abs=1e-12
        )


def test_parquet(client, frame, tmp_path):
    dd.from_pandas(frame, npartitions=4, sort=False).to_parquet(tmp_path / "data")
    ddf = dd.read_parquet(tmp_path / "data")
    a = MultilevelBinomial(group="group").fit(frame[COLS], frame["y"])
    with distributed_fit():
        b = MultilevelBinomial(group="group").fit(ddf[COLS], ddf["y"])
    assert_same_fit(a, b)


def test_weights_and_string_labels(client, frame):
    df = frame.assign(
        group="g" + frame["group"].astype(str),
        w=np.random.default_rng(2).integers(0, 4, len(frame)).astype(float),
    )
    ddf = dd.from_pandas(df, npartitions=5, sort=False)
    for cls in (NoPoolingBinomial, MultilevelBinomial):
        a = cls(group="group").fit(df[COLS], df["y"], sample_weight=df["w"])
        with distributed_fit():
            b = cls(group="group").fit(ddf[COLS], ddf["y"], sample_weight=ddf["w"])
        assert_same_fit(a, b)
        assert b.score(ddf[COLS], ddf["y"], sample_weight=ddf["w"]) == pytest.approx(
            a.score(df[COLS], df["y"], sample_weight=df["w"]), abs=1e-9
        )


def test_partitions_with_one_class_and_no_weight(client, frame):
    """A partition of only failures, and one with zero weights, are fine."""
    df = frame.sort_values("y", kind="stable").reset_index(drop=True)
    df["w"] = 1.0
    df.loc[: len(df) // 8, "w"] = 0.0
    ddf = dd.from_pandas(df, npartitions=6, sort=False)
    a = CompletePoolingBinomial(group="group").fit(df[COLS], df["y"], df["w"])
    with distributed_fit():
        b = CompletePoolingBinomial(group="group").fit(ddf[COLS], ddf["y"], ddf["w"])
    assert_same_fit(a, b)


def test_rowless_fit(client, frame, heldout):
    """Above skre.gather-rows the estimator keeps group-level summaries."""
    ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    hd = dd.from_pandas(heldout, npartitions=3, sort=False)
    new = heldout[heldout["group"] >= 1000]
    a = MultilevelBinomial(group="group").fit(frame[COLS], frame["y"])
    with dask.config.set({"skre.local-rows": 0, "skre.gather-rows": 0}):
        b = MultilevelBinomial(group="group").fit(ddf[COLS], ddf["y"])
    assert_same_fit(a, b)
    b = pickle.loads(pickle.dumps(b))
    np.testing.assert_allclose(
        b.predict_proba(hd[COLS]).compute(),
        a.predict_proba(heldout[COLS]),
        atol=1e-9,
    )
    assert b.score(new[COLS], new["y"]) == pytest.approx(
        a.score(new[COLS], new["y"]), abs=1e-9
    )
    for call in (
        b.group_estimates,
        b.vcov,
        lambda: b.score(hd[COLS], hd["y"]),
        lambda: b.score(heldout[COLS], heldout["y"]),
    ):
        with pytest.raises(ValueError, match="needs the training rows"):
            call()
    with dask.config.set({"skre.local-rows": 0, "skre.gather-rows": 0}):
        for cls in (CompletePoolingBinomial, NoPoolingBinomial):
            assert_same_fit(
                cls(group="group").fit(frame[COLS], frame["y"]),
                cls(group="group").fit(ddf[COLS], ddf["y"]),
            )


def test_no_pooling_prior_scores_new_groups(client, frame, heldout):
    ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    hd = dd.from_pandas(heldout, npartitions=3, sort=False)
    est = NoPoolingBinomial(group="group", group_prior=Normal(-1.5, 0.7))
    a = est.fit(frame[COLS], frame["y"])
    score = a.score(heldout[COLS], heldout["y"])
    with distributed_fit():
        b = NoPoolingBinomial(group="group", group_prior=Normal(-1.5, 0.7))
        b.fit(ddf[COLS], ddf["y"])
    assert b.score(hd[COLS], hd["y"]) == pytest.approx(score, abs=1e-9)


def test_complete_pooling_without_group(client, frame):
    ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    a = CompletePoolingBinomial().fit(frame[["x0", "x1"]], frame["y"])
    with distributed_fit():
        b = CompletePoolingBinomial().fit(ddf[["x0", "x1"]], ddf["y"])
    assert_same_fit(a, b)
    assert b.groups_.tolist() == ["(all)"]


def test_local_scheduler(frame):
    """No client: the active local scheduler runs the same code."""
    ddf = dd.from_pandas(frame, npartitions=3, sort=False)
    a = NoPoolingBinomial(group="group").fit(frame[COLS], frame["y"])
    with dask.config.set({"scheduler": "sync", "skre.local-rows": 0}):
        b = NoPoolingBinomial(group="group").fit(ddf[COLS], ddf["y"])
        assert b.score(ddf[COLS], ddf["y"]) == pytest.approx(
            a.score(frame[COLS], frame["y"]), abs=1e-9
        )
    assert_same_fit(a, b)


def test_aliased_covariate_warns_as_in_memory(client, frame):
    df = frame.assign(x2=2.0 * frame["x0"] - frame["x1"])
    cols = [*COLS, "x2"]
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    for gather in (10**9, 0):
        for est in (
            CompletePoolingBinomial(group="group"),
            MultilevelBinomial(group="group", n_quad=3),
        ):
            with warnings.catch_warnings(record=True) as mem:
                warnings.simplefilter("always")
                a = clone(est).fit(df[cols], df["y"])
            with (
                dask.config.set({"skre.local-rows": 0, "skre.gather-rows": gather}),
                warnings.catch_warnings(record=True) as dist,
            ):
                warnings.simplefilter("always")
                b = clone(est).fit(ddf[cols], ddf["y"])
            assert_same_fit(a, b)
            shown = [str(w.message) for w in dist if w.category is CollinearityWarning]
            assert shown == [
                str(w.message) for w in mem if w.category is CollinearityWarning
            ]
            assert len(shown) == 1


def in_memory_error(call):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize(
    "change",
    [
        lambda df: df.assign(x0=df["x0"].where(df.index != 1500, np.nan)),
        lambda df: df.assign(group=df["group"].astype(float).where(df.index != 1600)),
        lambda df: df.assign(y=df["y"].where(df.index != 2000, 2)),
        lambda df: df.assign(y=0),
        lambda df: df.assign(x1=df["x1"].astype(str)),
    ],
    ids=["nan-covariate", "missing-group", "third-label", "one-class", "string"],
)
def test_bad_input_same_error(client, frame, change):
    df = change(frame)
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    message = in_memory_error(
        lambda: MultilevelBinomial(group="group").fit(df[COLS], df["y"])
    )
    row = re.search(r"rows? (\d+)", message)
    with pytest.raises((ValueError, TypeError)) as info:
        MultilevelBinomial(group="group").fit(ddf[COLS], ddf["y"])
    got = str(info.value)
    # Dask stores text as its own string dtype; the message names the dtype
    message = re.sub(r"dtype \w+;", "dtype <text>;", message)
    got = re.sub(r"dtype \w+;", "dtype <text>;", got)
    if row:  # the same message, the row counted within its partition, named
        r = int(row.group(1))
        offsets = np.r_[0, np.cumsum(ddf.map_partitions(len).compute())]
        part = int(np.searchsorted(offsets, r, side="right")) - 1
        local = row.group(0).split()[0] + f" {r - offsets[part]}"
        message = message.replace(row.group(0), local)
        assert f"in partition {part} of 4" in got
    assert got.startswith(message)


def test_sample_weight_must_be_dask(client, frame):
    ddf = dd.from_pandas(frame, npartitions=2, sort=False)
    with pytest.raises(TypeError, match="must be one too"):
        MultilevelBinomial(group="group").fit(ddf[COLS], frame["y"])


def test_skre_imports_no_dask():
    """The core and the estimators import dask only when given Dask input."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, skre\n"
        "from skre.datasets import load_rats\n"
        "X, y = load_rats(return_X_y=True)\n"
        "skre.MultilevelBinomial(group='batch').fit(X, y).predict_proba(X)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in "
        "('dask', 'distributed')], 'dask imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    core = Path(__file__).parents[1] / "skre" / "_core"
    for path in core.glob("*.py"):
        text = path.read_text()
        assert "import dask" not in text and "from dask" not in text, path
        assert "sklearn" not in text, path


def test_auto_nodes_choose_as_in_memory(client):
    """n_quad="auto" on data past 200,000 rows x 25 nodes: each group's node
    count is chosen against the whole data's log-likelihood, as in memory
    (small groups from 7 nodes, groups of 100 trials or more from 3)."""
    X, y, _ = make_grouped_binomial(
        900, trials=10, n_features=1, binary=True, tau=1.5, random_state=4
    )
    big, y_big, _ = make_grouped_binomial(
        30, trials=200, n_features=1, binary=True, tau=1.5, random_state=5
    )
    big["group"] = big["group"].astype(str) + "-big"
    X["group"] = X["group"].astype(str)
    df = pd.concat([X.assign(y=y), big.assign(y=y_big)]).sample(
        frac=1.0, random_state=1
    )
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    cols = ["group", "x0"]
    a = MultilevelBinomial(group="group").fit(df[cols], df["y"])
    assert np.ndim(a._fit_result.n_quad) == 1  # one count per group
    with distributed_fit():
        b = MultilevelBinomial(group="group").fit(ddf[cols], ddf["y"])
    np.testing.assert_array_equal(b._fit_result.n_quad, a._fit_result.n_quad)
    assert_same_fit(a, b)
    np.testing.assert_allclose(
        b.predict_proba(ddf[cols]).compute(), a.predict_proba(df[cols]), atol=1e-9
    )


def test_true_and_1_in_different_partitions_are_refused(client):
    """Group labels True and 1 in different partitions would be merged into
    one group by the summaries' concatenation; refused as in memory. (By
    default Dask turns an object column into strings, "True" and "1", which
    stay apart; the check is for object columns kept as they are.)"""
    df = pd.DataFrame(
        {"group": [True, True, 1, 1, 2, 2], "x0": [0.0, 1, 2, 3, 4, 5], "y": [0, 1] * 3}
    )
    df["group"] = df["group"].astype(object)
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(df, npartitions=3, sort=False)
    with distributed_fit(), pytest.raises(ValueError, match="True == 1"):
        NoPoolingBinomial(group="group").fit(ddf[["group", "x0"]], ddf["y"])
    with pytest.raises(ValueError, match="True == 1"):
        NoPoolingBinomial(group="group").fit(df[["group", "x0"]], df["y"])


def test_partitions_left_empty_by_the_shuffle(client):
    """Three groups in six partitions: the shuffle into whole groups leaves
    partitions without rows, which fit as in memory (0.2 failed to reshape
    an empty covariate block)."""
    X, y, _ = make_grouped_binomial(
        3, trials=40, n_features=1, binary=True, tau=1.5, random_state=3
    )
    df = X.assign(y=y)
    ddf = dd.from_pandas(df, npartitions=6, sort=False)
    a = MultilevelBinomial(group="group").fit(df[["group", "x0"]], df["y"])
    with distributed_fit():
        b = MultilevelBinomial(group="group").fit(ddf[["group", "x0"]], ddf["y"])
    assert_same_fit(a, b)


def test_large_data_path_equals_in_memory(client):
    """The staged fit for large data: 6000 groups (past BHHH_GROUPS, so the
    quadrature's Newton steps start from the outer products of the groups'
    scores, one more map-reduce) and 18,000 rows x 25 nodes (past
    STAGED_WORK: Laplace first). Issue 22: 0.2 crashed here with
    "'DaskLikelihood' object has no attribute 'outer'"."""
    from skre._core import multilevel

    X, y, _ = make_grouped_binomial(
        6000, trials=3, n_features=3, binary=True, tau=1.0, random_state=7
    )
    assert len(X) * 25 > multilevel.STAGED_WORK
    assert X["group"].nunique() >= multilevel.BHHH_GROUPS
    df = X.assign(y=y).sample(frac=1.0, random_state=2)
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    cols = ["group", "x0", "x1", "x2"]
    a = MultilevelBinomial(group="group").fit(df[cols], df["y"])
    with distributed_fit():
        b = MultilevelBinomial(group="group").fit(ddf[cols], ddf["y"])
    np.testing.assert_array_equal(b._fit_result.n_quad, a._fit_result.n_quad)
    assert_same_fit(a, b)


@pytest.mark.slow  # two Bayes grids with a covariate: about 20 s
def test_bayes_equal_in_memory(client, frame):
    """method="bayes": the posterior's mode and its grid come from the same
    map-reduce sums as the ML fit."""
    from skre.priors import HalfNormal

    # one covariate and 50 rows a group keep the in-memory grid to seconds
    X, y, _ = make_grouped_binomial(
        60, trials=50, n_features=1, binary=True, random_state=2
    )
    df = X.assign(y=y).sample(frac=1.0, random_state=3)
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    cols = ["group", "x0"]
    est = MultilevelBinomial(group="group", method="bayes", tau_prior=HalfNormal(1.0))
    a = clone(est).fit(df[cols], df["y"])
    with distributed_fit():
        b = clone(est).fit(ddf[cols], ddf["y"])
    assert_same_fit(a, b)
    part = ddf.partitions[0][cols]  # posterior-averaged predictions cost seconds
    np.testing.assert_allclose(
        b.predict_proba(part).compute(), a.predict_proba(part.compute()), atol=1e-9
    )


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_no_successes_as_in_memory(client, frame, cls):
    """Counts with no success anywhere: the same degenerate fit, the same
    warning, and scores of 0 for the certain zeros, as in memory."""
    df = frame.assign(y=0, n=1)
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    with warnings.catch_warnings(record=True) as wa:
        warnings.simplefilter("always")
        a = cls(group="group").fit(df[COLS], df[["y", "n"]])
    with warnings.catch_warnings(record=True) as wb, distributed_fit():
        warnings.simplefilter("always")
        b = cls(group="group").fit(ddf[COLS], ddf[["y", "n"]])
    assert [w.category for w in wb] == [w.category for w in wa]
    np.testing.assert_array_equal(
        b.predict_proba(ddf[COLS]).compute(), a.predict_proba(df[COLS])
    )
    assert b.score(ddf[COLS], ddf[["y", "n"]]) == a.score(df[COLS], df[["y", "n"]])


def test_unknown_group_error_names_partition(client, frame, heldout):
    ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    hd = dd.from_pandas(heldout, npartitions=3, sort=False)
    with distributed_fit():
        est = NoPoolingBinomial(group="group", unknown_group="error")
        est.fit(ddf[COLS], ddf["y"])
    with pytest.raises(ValueError, match=r"not seen in fit.*in partition \d of 3"):
        est.predict_proba(hd[COLS]).compute()


# n_quad=1 is the Laplace approximation, which these binary groups measure as
# inaccurate; the test compares where the candidates run, not the candidates
@pytest.mark.filterwarnings(
    "ignore:MultilevelBinomial. the Laplace approximation:"
    "skre.exceptions.QuadratureWarning"
)
def test_grid_search_on_joblib_dask_backend(client, frame):
    """The user guide's recipe: GridSearchCV's candidates run on the cluster."""
    import joblib
    from sklearn.model_selection import GridSearchCV, GroupKFold

    grid = {"n_quad": [1, 25]}
    args = (frame[COLS], frame["y"])
    kw = {"groups": frame["group"]}
    local = GridSearchCV(MultilevelBinomial(group="group"), grid, cv=GroupKFold(3))
    local.fit(*args, **kw)
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(clone(local.estimator), grid, cv=GroupKFold(3), n_jobs=-1)
        remote.fit(*args, **kw)
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        rtol=1e-12,
    )


def test_decisions_on_dask_fits_equal_in_memory(client, frame, heldout):
    """exceedance, flag_groups, ranks and the historical-control test read the
    fit result, which a Dask fit holds in memory: the same numbers."""
    ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    a = MultilevelBinomial(group="group").fit(frame[COLS], frame["y"])
    with distributed_fit():
        b = MultilevelBinomial(group="group").fit(ddf[COLS], ddf["y"])
    pd.testing.assert_frame_equal(b.exceedance(0.5), a.exceedance(0.5), atol=1e-7)
    pd.testing.assert_frame_equal(
        b.flag_groups(0.6, fdr=0.1), a.flag_groups(0.6, fdr=0.1), atol=1e-7
    )
    ra, rb = a.ranks(random_state=0, n_draws=500), b.ranks(random_state=0, n_draws=500)
    np.testing.assert_allclose(rb["expected_rank"], ra["expected_rank"], atol=0.5)
    new = heldout[heldout["group"] >= 1000]
    # plug-in: the posterior grid over 4 hyperparameters costs seconds here
    opts = dict(correction="bh", include_parameter_uncertainty=False)
    ta = a.historical_control_test(new[COLS], new["y"], **opts)
    tb = b.historical_control_test(new[COLS], new["y"], **opts)
    pd.testing.assert_frame_equal(tb.table, ta.table, atol=1e-6)
    with dask.config.set({"skre.local-rows": 0, "skre.gather-rows": 0}):
        lean = MultilevelBinomial(group="group").fit(ddf[COLS], ddf["y"])
    with pytest.raises(ValueError, match="needs the training rows"):
        lean.exceedance(0.5)
