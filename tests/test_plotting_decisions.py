"""FunnelDisplay and RankDisplay (issue 24): what they draw, against numbers
computed here, on the Agg backend."""

import re
import sys
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import integrate, stats
from scipy.special import expit
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats
from skre.exceptions import BoundaryWarning
from skre.priors import HalfNormal

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # before pyplot: no windows

import matplotlib.pyplot as plt  # noqa: E402

from skre.plotting import FunnelDisplay, RankDisplay  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def rats():
    return load_rats(return_X_y=True)


@pytest.fixture(scope="module")
def fits(rats):
    X, y = rats
    return {
        cls.__name__: cls(group="batch").fit(X, y)
        for cls in (CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial)
    }


@pytest.fixture(scope="module")
def m4(fits):
    return fits["MultilevelBinomial"]


def _draw(disp):
    disp.figure_.canvas.draw()  # renders every artist: errors and warnings surface


# -- the logit-normal-binomial, by scipy ---------------------------------------------
def lnb_pmf_k(k, n, eta, tau):
    """P(M = k) of a new group: M ~ Binomial(n, expit(eta + tau z)),
    z ~ N(0, 1), by scipy's quad."""
    return integrate.quad(
        lambda z: stats.binom.pmf(k, n, expit(eta + tau * z)) * stats.norm.pdf(z),
        -np.inf,
        np.inf,
        epsabs=1e-13,
    )[0]


@cache
def lnb_pmf(n, eta, tau):
    """P(M = k), k = 0..n, at once: the same integral by scipy's quad_vec."""
    if tau == 0:
        return stats.binom.pmf(np.arange(n + 1), n, expit(eta))
    k = np.arange(n + 1)
    return integrate.quad_vec(
        lambda z: stats.binom.pmf(k, n, expit(eta + tau * z)) * stats.norm.pdf(z),
        -np.inf,
        np.inf,
        epsabs=1e-13,
    )[0]


def lnb_quantile(n, eta, tau, q):
    """The smallest k with P(M <= k) >= q."""
    cdf = np.cumsum(lnb_pmf(n, eta, tau))
    return int(np.flatnonzero(cdf >= q * (1 - 1e-9))[0])


def lnb_limits(n, eta, tau, level):
    a = (1 - level) / 2
    return lnb_quantile(n, eta, tau, a), lnb_quantile(n, eta, tau, 1 - a)


def population_mean(eta, tau):
    return integrate.quad(
        lambda z: expit(eta + tau * z) * stats.norm.pdf(z), -np.inf, np.inf
    )[0]


def rats_table():
    """Trials, successes and proportion per batch, from the raw frame."""
    frame = load_rats().frame.groupby("batch")[["m", "n"]].sum()
    frame["p"] = frame["m"] / frame["n"]
    return frame


def outside(table, eta, tau, level):
    """Labels of the groups whose count is outside the level limits at their n."""
    labels = []
    for label, row in table.iterrows():
        lo, hi = lnb_limits(int(row["n"]), eta, tau, level)
        if row["m"] < lo or row["m"] > hi:
            labels.append(label)
    return labels


# -- FunnelDisplay -------------------------------------------------------------------
def test_funnel_limits_are_logit_normal_binomial_quantiles(m4):
    disp = FunnelDisplay.from_estimator(m4)
    _draw(disp)
    b, tau = m4.intercept_, m4.tau_
    pmf = [lnb_pmf_k(k, 14, b, tau) for k in range(15)]  # quad, k by k
    assert_allclose(pmf, lnb_pmf(14, b, tau), atol=1e-12)
    assert sum(pmf) == pytest.approx(1, abs=1e-10)
    limits = disp.limits_
    assert_array_equal(limits.index, np.arange(10, 53))  # every n, 10 to 52 rats
    assert list(limits.columns) == [
        "lower_0.95",
        "upper_0.95",
        "lower_0.998",
        "upper_0.998",
    ]
    for n in (10, 14, 20, 52):
        for level in (0.95, 0.998):
            lo, hi = lnb_limits(n, b, tau, level)
            assert limits.loc[n, f"lower_{level}"] == lo / n
            assert limits.loc[n, f"upper_{level}"] == hi / n
    # 14 rats: 0 to 6 tumours hold 95% of new batches, 0 to 9 99.8%
    assert limits.loc[14].tolist() == [0, 6 / 14, 0, 9 / 14]
    # overdispersed: wider than binomial limits at the population mean
    mean = population_mean(b, tau)
    assert stats.binom.ppf(0.975, 14, mean) < 6
    # the step lines hold these numbers
    for level, lines in disp.limit_lines_.items():
        for line, side in zip(lines, ("lower", "upper")):
            x, y = line.get_data()
            assert_array_equal(x, limits.index)
            assert_allclose(y, limits[f"{side}_{level}"])
            assert line.get_drawstyle() == "steps-mid"
    assert set(disp.limit_lines_) == {0.95, 0.998}


def test_funnel_population_mean_and_points(m4):
    disp = FunnelDisplay.from_estimator(m4)
    mean = population_mean(m4.intercept_, m4.tau_)
    assert disp.mean_line_.get_ydata()[0] == pytest.approx(mean, abs=1e-9)
    assert disp.population_mean == pytest.approx(0.144, abs=5e-4)
    table = rats_table()
    assert_array_equal(disp.groups, table.index)
    assert_allclose(disp.points_.get_offsets(), table[["n", "p"]].to_numpy())
    # the limits and every point fit in the axes
    low, high = disp.ax_.get_ylim()
    assert low < 0 and high > disp.limits_.to_numpy().max()
    assert disp.figure_ is disp.ax_.figure


def test_funnel_flags_the_groups_outside_the_outer_limits(m4):
    b, tau = m4.intercept_, m4.tau_
    table = rats_table()
    assert outside(table, b, tau, 0.998) == []  # the rats: no batch is unusual
    default = FunnelDisplay.from_estimator(m4)
    assert list(default.flagged_) == [] and default.flagged_points_ is None
    assert default.labels_ == []
    # narrow limits: the outer one (0.8) flags, the inner one (0.5) does not
    disp = FunnelDisplay.from_estimator(m4, levels=(0.8, 0.5))
    _draw(disp)
    assert disp.levels == (0.5, 0.8)
    expected = outside(table, b, tau, 0.8)
    assert 3 <= len(expected) < len(outside(table, b, tau, 0.5))
    assert list(disp.flagged_) == expected
    assert_allclose(
        disp.flagged_points_.get_offsets(), table.loc[expected, ["n", "p"]].to_numpy()
    )
    # one label per position: groups with the same counts share it
    texts = sorted(a.get_text() for a in disp.labels_)
    spots = table.loc[expected].groupby(["n", "m"]).groups
    assert texts == sorted(", ".join(map(str, g)) for g in spots.values())
    assert "outside the 80% limits" in disp.flagged_points_.get_label()


def test_funnel_flags_an_outlying_batch_with_its_label(rats):
    X, y = rats
    X = pd.concat([X, pd.DataFrame({"batch": [72, 73]})], ignore_index=True)
    y = pd.concat([y, pd.DataFrame({"m": [36, 36], "n": [40, 40]})], ignore_index=True)
    est = MultilevelBinomial(group="batch").fit(X, y)
    disp = FunnelDisplay.from_estimator(est)
    _draw(disp)
    table = pd.DataFrame({"m": y["m"].to_numpy(), "n": y["n"].to_numpy()})
    table.index = X["batch"].to_numpy()
    table["p"] = table["m"] / table["n"]
    assert outside(table, est.intercept_, est.tau_, 0.998) == [72, 73]
    assert list(disp.flagged_) == [72, 73]
    (label,) = disp.labels_
    assert label.get_text() == "72, 73" and label.xy == (40.0, 0.9)
    no_labels = FunnelDisplay.from_estimator(est, label_flagged=False)
    assert no_labels.labels_ == [] and list(no_labels.flagged_) == [72, 73]


def test_funnel_threshold_flags_as_flag_groups(m4):
    disp = FunnelDisplay.from_estimator(m4, threshold=0.2, fdr=0.1)
    flags = m4.flag_groups(0.2, fdr=0.1)
    assert list(disp.flagged_) == list(flags.index[flags["flagged"]]) == [67, 68, 69]
    # the q-value: the running mean of the sorted PEPs (no ties among these)
    pep = 1 - m4.exceedance(0.2)["probability"]
    running = pep.sort_values().expanding().mean()
    assert set(running.index[running <= 0.1]) == {67, 68, 69}
    assert sorted(a.get_text() for a in disp.labels_) == ["67", "68", "69"]
    assert "θ > 0.2, FDR 0.1" in disp.flagged_points_.get_label()
    # the limits do not depend on the flags
    assert_allclose(disp.limits_, FunnelDisplay.from_estimator(m4).limits_)


def test_funnel_covariates_at_the_population_means(rats):
    X, y = rats
    X = X.assign(dose=np.random.default_rng(1).normal(size=len(X)).round(2))
    est = MultilevelBinomial(group="batch").fit(X, y)
    disp = FunnelDisplay.from_estimator(est, levels=0.9)
    zbar = np.average(X["dose"], weights=y["n"])  # trials-weighted mean
    eta = est.intercept_ + est.coef_[0] * zbar
    for n in (14, 47):
        lo, hi = lnb_limits(n, eta, est.tau_, 0.9)
        assert disp.limits_.loc[n].tolist() == [lo / n, hi / n]
    assert disp.mean_line_.get_ydata()[0] == pytest.approx(est.population_.mean())


def test_funnel_boundary_fit_has_binomial_limits():
    X = pd.DataFrame({"g": ["a", "b", "c"]})
    y = np.array([[5, 30], [4, 30], [6, 40]])
    with pytest.warns(BoundaryWarning):
        est = MultilevelBinomial(group="g").fit(X, y)
    disp = FunnelDisplay.from_estimator(est)
    p = 15 / 100
    for n in (30, 35, 40):
        for level in (0.95, 0.998):
            a = (1 - level) / 2
            lo, hi = stats.binom.ppf([a, 1 - a], n, p)
            assert disp.limits_.loc[n, f"lower_{level}"] == lo / n
            assert disp.limits_.loc[n, f"upper_{level}"] == hi / n
    assert disp.mean_line_.get_ydata()[0] == pytest.approx(p)


def test_funnel_log_grid_for_a_wide_range_of_trials():
    trials = np.array([5, 12, 40, 150, 400, 1000])
    X = pd.DataFrame({"g": np.arange(len(trials))})
    y = np.column_stack([np.rint(0.2 * trials), trials])
    y[:, 0] += [1, -2, 5, -10, 30, -60]
    est = MultilevelBinomial(group="g").fit(X, y)
    disp = FunnelDisplay.from_estimator(est, levels=0.95)
    _draw(disp)
    n = disp.limits_.index.to_numpy()
    assert n[0] == 5 and n[-1] == 1000 and np.all(np.diff(n) > 0)
    assert set(trials) <= set(n)  # the limits at each group's own trials
    assert 80 <= len(n) <= 100 + len(trials)
    assert disp.ax_.get_xscale() == "log"
    assert_allclose(np.diff(np.log(n[n > 100])).max(), np.log(1000 / 5) / 99, rtol=0.2)
    # the flags use the exact limits at each group's trials
    b, tau = est.intercept_, est.tau_
    table = pd.DataFrame({"m": y[:, 0], "n": y[:, 1]})
    expected = [
        g
        for g in range(3)  # quad over k = 0..n: the small groups only
        if not (
            lnb_limits(int(table.n[g]), b, tau, 0.95)[0]
            <= table.m[g]
            <= lnb_limits(int(table.n[g]), b, tau, 0.95)[1]
        )
    ]
    assert [g for g in disp.flagged_ if g < 3] == expected
    for g in range(len(trials)):
        d = est.predictive_counts(int(trials[g]))
        lo, hi = d.interval(0.95)
        assert (g in disp.flagged_) == (not lo <= y[g, 0] <= hi)


@pytest.mark.slow  # 1.8 s: two posterior grids
def test_funnel_with_parameter_uncertainty_and_bayes(rats):
    X, y = rats
    keep = y["n"].between(19, 20).to_numpy()  # 2 numbers of trials: quick
    Xs, ys = X[keep], y[keep]
    ml = MultilevelBinomial(group="batch").fit(Xs, ys)
    plug = FunnelDisplay.from_estimator(ml)
    mixed = FunnelDisplay.from_estimator(ml, include_parameter_uncertainty=True)
    assert_array_equal(mixed.limits_.index, [19, 20])
    for n in (19, 20):
        d = ml.predictive_counts(n, include_parameter_uncertainty=True)
        for level in (0.95, 0.998):
            lo, hi = d.interval(level)
            assert mixed.limits_.loc[n, f"upper_{level}"] == hi / n
            assert mixed.limits_.loc[n, f"lower_{level}"] == lo / n
    # the uncertainty of b and tau widens the limits (or leaves them)
    assert np.all(
        mixed.limits_.filter(like="upper") >= plug.limits_.filter(like="upper")
    )
    bayes = MultilevelBinomial(
        group="batch", method="bayes", tau_prior=HalfNormal(1.0)
    ).fit(Xs, ys)
    disp = FunnelDisplay.from_estimator(bayes, threshold=0.2, fdr=0.2)
    _draw(disp)
    lo, hi = bayes.predictive_counts(20).interval(0.95)
    assert disp.limits_.loc[20].tolist()[:2] == [lo / 20, hi / 20]
    assert disp.mean_line_.get_ydata()[0] == pytest.approx(bayes.population_.mean())
    flags = bayes.flag_groups(0.2, fdr=0.2)
    assert list(disp.flagged_) == list(flags.index[flags["flagged"]])


def test_funnel_accepts_a_pipeline_and_given_axes(rats, m4):
    X, y = rats
    pipe = make_pipeline(MultilevelBinomial(group="batch")).fit(X, y)
    fig, ax = plt.subplots()
    disp = FunnelDisplay.from_estimator(pipe, ax=ax, color="C4")
    assert disp.ax_ is ax and disp.figure_ is fig and len(plt.get_fignums()) == 1
    assert_allclose(disp.limits_, FunnelDisplay.from_estimator(m4).limits_)
    assert_allclose(disp.points_.get_facecolor()[0][:3], matplotlib.colors.to_rgb("C4"))


@pytest.mark.parametrize("name", ["CompletePoolingBinomial", "NoPoolingBinomial"])
def test_funnel_needs_a_population(fits, name):
    with pytest.raises(
        ValueError, match=f"needs a fitted MultilevelBinomial; got {name}"
    ):
        FunnelDisplay.from_estimator(fits[name])
    with pytest.raises(ValueError, match="no population of groups"):
        FunnelDisplay.from_estimator(make_pipeline(fits[name]))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"levels": 1.5},
            ValueError,
            r"every level must be a number in \(0, 1\); got 1.5",
        ),
        ({"levels": (0.9, 0)}, ValueError, r"every level .* got 0"),
        ({"levels": []}, ValueError, "levels must hold at least one number"),
        ({"levels": "0.95"}, ValueError, "levels must be one number or a sequence"),
        ({"fdr": 5}, ValueError, r"fdr must be a number in \(0, 1\); got 5"),
        ({"threshold": 1.2}, ValueError, r"threshold must be in \(0, 1\); got 1.2"),
        ({"label_flagged": "yes"}, TypeError, "label_flagged must be True or False"),
        (
            {"include_parameter_uncertainty": 1},
            TypeError,
            "include_parameter_uncertainty must be True or False",
        ),
    ],
)
def test_funnel_input_errors(m4, kwargs, error, message):
    with pytest.raises(error, match=message):
        FunnelDisplay.from_estimator(m4, **kwargs)


def test_funnel_fractional_trials_and_unfitted(rats):
    X, y = rats
    with pytest.raises(NotFittedError):
        FunnelDisplay.from_estimator(MultilevelBinomial(group="batch"))
    weights = np.where(X["batch"] == 3, 0.37, 1.0)  # 7.4 of 20 rats
    est = MultilevelBinomial(group="batch").fit(X, y, sample_weight=weights)
    assert est.group_estimates().loc[3, "trials"] == pytest.approx(7.4)
    with pytest.raises(ValueError, match=r"whole number of trials per group; group 3"):
        FunnelDisplay.from_estimator(est)


# -- RankDisplay ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["CompletePoolingBinomial", "NoPoolingBinomial", "MultilevelBinomial"]
)
def test_ranks_draw_the_ranks_table(fits, name):
    est = fits[name]
    disp = RankDisplay.from_estimator(est, level=0.9, n_draws=1000, random_state=3)
    _draw(disp)
    table = est.ranks(level=0.9, n_draws=1000, random_state=3)
    order = np.argsort(table["expected_rank"].to_numpy(), kind="stable")
    expected = table.iloc[order]
    pd.testing.assert_frame_equal(disp.ranks_, expected)
    assert np.all(np.diff(disp.ranks_["expected_rank"]) >= 0)
    y = np.arange(len(table))
    assert_allclose(disp.points_.get_xdata(), expected["expected_rank"])
    assert_array_equal(disp.points_.get_ydata(), y)
    for artist, lo, hi in (
        (disp.intervals_, "rank_lower", "rank_upper"),
        (disp.simultaneous_, "simultaneous_lower", "simultaneous_upper"),
    ):
        segments = np.array(artist.get_segments())
        assert_array_equal(segments[:, 0, 0], expected[lo])
        assert_array_equal(segments[:, 1, 0], expected[hi])
        assert_array_equal(segments[:, :, 1], np.column_stack([y, y]))
    # simultaneous intervals hold the marginal ones
    assert np.all(expected["simultaneous_lower"] <= expected["rank_lower"])
    assert np.all(expected["simultaneous_upper"] >= expected["rank_upper"])
    labels = [t.get_text() for t in disp.ax_.get_yticklabels()]
    assert labels == list(map(str, expected.index))
    bottom, top = disp.ax_.get_ylim()
    assert top < 0 < len(table) - 1 < bottom  # rank 1 at the top
    assert disp.ax_.get_xlim() == (0.5, 71.5)
    if name == "CompletePoolingBinomial":  # one theta: ranks are tie-breaks
        assert_allclose(expected["expected_rank"], 36, atol=3)
    else:
        assert expected.index[0] in (67, 68, 69, 70)


def test_ranks_options(m4, rats):
    X, y = rats
    pipe = make_pipeline(MultilevelBinomial(group="batch")).fit(X, y)
    fig, ax = plt.subplots()
    disp = RankDisplay.from_estimator(
        pipe,
        direction="lower",
        simultaneous=False,
        n_draws=500,
        random_state=0,
        ax=ax,
        color="C2",
    )
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.simultaneous_ is None
    assert disp.ranks_.attrs["direction"] == "lower"
    assert disp.ax_.get_xlabel() == "rank (1 = lowest θ)"
    assert disp.ranks_.index[-1] in (67, 68, 69, 70)  # lowest rank of a high theta
    assert disp.points_.get_color() == "C2"
    direct = RankDisplay.from_estimator(
        m4, direction="lower", n_draws=500, random_state=0
    )
    pd.testing.assert_frame_equal(disp.ranks_, direct.ranks_)
    with pytest.raises(TypeError, match="simultaneous must be True or False"):
        RankDisplay.from_estimator(m4, simultaneous="no")
    with pytest.raises(ValueError, match="direction must be 'higher'"):
        RankDisplay.from_estimator(m4, direction="up")
    with pytest.raises(ValueError, match="n_draws must be an integer >= 100"):
        RankDisplay.from_estimator(m4, n_draws=10)


def test_ranks_many_groups_have_no_labels():
    rng = np.random.default_rng(0)
    G = 120
    X = pd.DataFrame({"g": np.arange(G)})
    trials = rng.integers(10, 30, G)
    y = np.column_stack([rng.binomial(trials, 0.3), trials])
    est = NoPoolingBinomial(group="g").fit(X, y)
    disp = RankDisplay.from_estimator(est, n_draws=200, random_state=0)
    assert len(disp.ax_.get_yticks()) == 0
    assert len(disp.ranks_) == G


# -- both ----------------------------------------------------------------------------
def test_no_warnings_drawing(m4):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for disp in (
            FunnelDisplay.from_estimator(m4, threshold=0.2, fdr=0.2),
            RankDisplay.from_estimator(m4, random_state=0),
        ):
            _draw(disp)


def test_import_error_without_matplotlib(monkeypatch, m4):
    for name in [
        m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")
    ]:
        monkeypatch.setitem(sys.modules, name, None)
    message = re.escape("requires matplotlib: pip install matplotlib")
    with pytest.raises(ImportError, match=message):
        FunnelDisplay.from_estimator(m4)
    with pytest.raises(ImportError, match=message):
        RankDisplay.from_estimator(m4)


def test_funnel_labels_do_not_overlap_and_give_way_to_many_flags(m4):
    disp = FunnelDisplay.from_estimator(m4, threshold=0.15, fdr=0.3)
    _draw(disp)
    spots = {(x, y) for x, y in disp.flagged_points_.get_offsets()}
    assert 10 <= len(spots) <= 25 and len(disp.labels_) == len(spots)
    renderer = disp.figure_.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in disp.labels_]
    for i, a in enumerate(boxes):
        for b in boxes[:i]:
            assert not a.overlaps(b) or a.intersection(a, b).width < 2
    crowded = FunnelDisplay.from_estimator(m4, threshold=0.12, fdr=0.3)
    n_flagged = m4.flag_groups(0.12, fdr=0.3).attrs["n_flagged"]
    assert len(crowded.flagged_) == n_flagged == 49 and crowded.labels_ == []
