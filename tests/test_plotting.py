"""skre.plotting: the displays' artists, on the Agg backend."""

import re
import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")  # before pyplot: no windows

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats
from skre.exceptions import BoundaryWarning
from skre.plotting import CaterpillarDisplay, PopulationDisplay, ShrinkageDisplay

MESSAGE = "requires matplotlib: pip install matplotlib"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def rats():
    X, y = load_rats(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def fits(rats):
    X, y = rats
    return {
        cls.__name__: cls(group="batch").fit(X, y)
        for cls in (CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial)
    }


@pytest.fixture(scope="module")
def m3(fits):
    return fits["NoPoolingBinomial"]


@pytest.fixture(scope="module")
def m4(fits):
    return fits["MultilevelBinomial"]


def _interval(est, level):
    """The prediction interval the displays should show."""
    if hasattr(est, "prediction_interval"):
        return est.prediction_interval(level=level)
    return est.population_.interval(level)


class _Reordered(BaseEstimator):
    """A fitted estimator whose group_estimates come in another order."""

    def __init__(self, est, order):
        self.est, self.order = est, order
        self.groups_ = est.groups_[order]

    def fit(self, X, y):  # pragma: no cover - check_is_fitted wants an estimator
        return self

    def group_estimates(self, level=0.95):
        return self.est.group_estimates(level).iloc[self.order]


def _draw(disp):
    disp.figure_.canvas.draw()  # renders every artist: errors and warnings surface


# -- ShrinkageDisplay ----------------------------------------------------------------
def test_shrinkage_artists(m3, m4):
    disp = ShrinkageDisplay.from_estimators(m3, m4, level=0.9)
    _draw(disp)
    ml, npool = m4.group_estimates(), m3.group_estimates()
    assert len(disp.arrows_) == len(m4.groups_) == 71
    assert_array_equal(disp.groups, ml.index)
    tails = np.array([a.xyann for a in disp.arrows_])
    heads = np.array([a.xy for a in disp.arrows_])
    assert_array_equal(tails[:, 0], 0.0)
    assert_array_equal(heads[:, 0], 1.0)
    assert_allclose(tails[:, 1], npool.loc[ml.index, "estimate"])
    assert_allclose(heads[:, 1], ml["estimate"])
    assert disp.population_line_.get_ydata()[0] == pytest.approx(m4.population_.mean())
    # every arrow points toward the population's centre expit(b) (the median: shrinkage
    # is on the logit scale) and does not overshoot it
    centre = m4.population_.median()
    assert np.all(np.abs(heads[:, 1] - centre) <= np.abs(tails[:, 1] - centre) + 1e-12)
    assert heads[:, 1].std() < 0.6 * tails[:, 1].std()
    # two columns of points; marker area grows with trials
    assert len(disp.points_) == 2
    assert_allclose(disp.points_[0].get_offsets(), tails)
    assert_allclose(disp.points_[1].get_offsets(), heads)
    trials = ml["trials"].to_numpy()
    for points in disp.points_:
        sizes = points.get_sizes()
        assert len(sizes) == len(trials)
        bigger = trials[:, None] > trials[None, :]
        assert np.all((sizes[:, None] > sizes[None, :])[bigger])
    # the band of a new batch's theta
    band = disp.interval_  # a Polygon or a Rectangle, by matplotlib version
    corners = band.get_transform().transform(band.get_path().vertices)
    ys = disp.ax_.transData.inverted().transform(corners)[:, 1]
    assert_allclose([ys.min(), ys.max()], _interval(m4, 0.9))
    assert disp.figure_ is disp.ax_.figure


def test_shrinkage_without_level_and_given_ax(m3, m4):
    fig, ax = plt.subplots()
    disp = ShrinkageDisplay.from_estimators(m3, m4, ax=ax)
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.interval_ is None and disp.interval is None
    assert len(plt.get_fignums()) == 1


def test_shrinkage_matches_groups_by_label(m3, m4):
    order = np.random.default_rng(0).permutation(len(m3.groups_))
    reordered = _Reordered(m3, order)
    assert not np.array_equal(reordered.group_estimates().index, m4.groups_)
    a = ShrinkageDisplay.from_estimators(m3, m4)
    b = ShrinkageDisplay.from_estimators(reordered, m4)
    assert_array_equal(a.groups, b.groups)
    assert_allclose(a.no_pooling, b.no_pooling)
    assert [x.xyann for x in a.arrows_] == [x.xyann for x in b.arrows_]


def test_shrinkage_input_errors(rats, m3, m4):
    X, y = rats
    keep = (X["batch"] != 71).to_numpy()
    fewer = NoPoolingBinomial(group="batch").fit(X[keep], y[keep])
    with pytest.raises(ValueError, match="different groups"):
        ShrinkageDisplay.from_estimators(fewer, m4)
    with pytest.raises(TypeError, match="needs a fitted MultilevelBinomial"):
        ShrinkageDisplay.from_estimators(m3, m3)
    with pytest.raises(NotFittedError):
        ShrinkageDisplay.from_estimators(m3, MultilevelBinomial(group="batch"))
    with pytest.raises(ValueError, match=r"level must be a number in \(0, 1\)"):
        ShrinkageDisplay.from_estimators(m3, m4, level=95)


# -- PopulationDisplay ---------------------------------------------------------------
def test_population_artists(m4):
    disp = PopulationDisplay.from_estimator(m4, level=0.95)
    _draw(disp)
    lower, upper = _interval(m4, 0.95)
    assert disp.interval == pytest.approx((lower, upper))
    assert disp.interval == pytest.approx((0.037, 0.350), abs=5e-4)
    x, dens = disp.line_.get_data()
    assert 0 < x.min() <= 1e-3 and 1 - 1e-3 <= x.max() < 1 and len(x) > 1000
    assert_allclose(dens, m4.population_.pdf(x))
    # the shaded area spans exactly the prediction interval, under the curve
    xy = np.concatenate([p.vertices for p in disp.interval_.get_paths()])
    assert_allclose([xy[:, 0].min(), xy[:, 0].max()], [lower, upper])
    assert xy[:, 1].min() == 0 and xy[:, 1].max() <= dens.max()
    # the rug: one tick per batch at its observed proportion
    assert_allclose(disp.rug_.get_xdata(), m4.group_estimates()["observed"])
    assert disp.ax_.get_xlim()[0] < 0  # the ticks at 0 (0 of n) are visible
    assert disp.figure_ is disp.ax_.figure


def test_population_options(m4):
    fig, ax = plt.subplots()
    disp = PopulationDisplay.from_estimator(
        m4, level=0.5, ax=ax, observed=False, color="C3"
    )
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.rug_ is None
    assert disp.line_.get_color() == "C3"
    assert disp.interval == pytest.approx(m4.population_.interval(0.5))
    with pytest.raises(ValueError, match="level"):
        PopulationDisplay.from_estimator(m4, level=1.0)
    with pytest.raises(TypeError, match="MultilevelBinomial"):
        PopulationDisplay.from_estimator(
            CompletePoolingBinomial(group="batch").fit(
                pd.DataFrame({"batch": [1, 2]}), np.array([[1, 4], [2, 4]])
            )
        )


def test_population_uses_prediction_interval(m4, monkeypatch):
    monkeypatch.setattr(
        m4,
        "prediction_interval",
        lambda level=0.95, include_parameter_uncertainty=False: (0.05, 0.3),
        raising=False,
    )
    disp = PopulationDisplay.from_estimator(m4)
    assert disp.interval == (0.05, 0.3)
    xs = np.concatenate([p.vertices for p in disp.interval_.get_paths()])[:, 0]
    assert_allclose([xs.min(), xs.max()], [0.05, 0.3])


def test_population_boundary_fit():
    X = pd.DataFrame({"g": ["a", "b", "c"]})
    y = np.array([[5, 30], [4, 30], [6, 30]])
    with pytest.warns(BoundaryWarning):
        est = MultilevelBinomial(group="g").fit(X, y)
    disp = PopulationDisplay.from_estimator(est)
    _draw(disp)
    assert_allclose(disp.line_.get_xdata(), 1 / 6)  # a vertical line at the point mass
    # at tau = 0 the prediction interval is the Wald interval of the pooled b
    p, N = 15 / 90, 90
    half = stats.norm.ppf(0.975) / np.sqrt(N * p * (1 - p))
    expected = expit(np.log(p / (1 - p)) + np.array([-half, half]))
    assert disp.interval == pytest.approx(tuple(expected), abs=1e-6)
    lo, width = disp.interval_.get_x(), disp.interval_.get_width()
    assert_allclose([lo, lo + width], expected, atol=1e-6)
    assert "(τ = 0)" in disp.line_.get_label()


# -- CaterpillarDisplay --------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["CompletePoolingBinomial", "NoPoolingBinomial", "MultilevelBinomial"]
)
def test_caterpillar_matches_group_estimates(fits, name):
    est = fits[name]
    disp = CaterpillarDisplay.from_estimator(est, level=0.9)
    _draw(disp)
    table = est.group_estimates(0.9).loc[disp.groups]
    assert sorted(disp.groups) == sorted(est.groups_)
    assert np.all(np.diff(table["estimate"]) >= 0)  # sorted by estimate
    points, _, (bars,) = disp.errorbar_.lines
    assert_allclose(points.get_xdata(), table["estimate"])
    assert_array_equal(points.get_ydata(), np.arange(len(table)))
    segments = np.array(bars.get_segments())
    assert_allclose(segments[:, 0, 0], table["lower"])
    assert_allclose(segments[:, 1, 0], table["upper"])
    assert_array_equal(segments[:, 0, 1], np.arange(len(table)))
    assert_allclose(disp.observed_.get_xdata(), table["observed"])
    assert (disp.reference_line_ is not None) == (name == "MultilevelBinomial")
    assert [t.get_text() for t in disp.ax_.get_yticklabels()] == list(
        map(str, disp.groups)
    )


def test_caterpillar_unsorted_and_given_ax(m4):
    fig, ax = plt.subplots()
    disp = CaterpillarDisplay.from_estimator(m4, ax=ax, sort=False, observed=False)
    assert disp.ax_ is ax and disp.figure_ is fig
    assert_array_equal(disp.groups, m4.groups_)
    assert disp.observed_ is None
    assert "sorted" not in ax.get_ylabel() and ax.get_ylabel() == "batch"


def test_caterpillar_sort_is_stable_for_ties(m3):
    disp = CaterpillarDisplay.from_estimator(m3)
    assert_array_equal(disp.groups[:14], np.arange(1, 15))  # the 14 batches with 0 of n


def test_displays_from_numbers():
    disp = CaterpillarDisplay(
        groups=["x", "y"], estimate=[0.2, 0.4], lower=[0.1, 0.3], upper=[0.3, 0.5]
    ).plot()
    assert disp.observed_ is None and disp.reference_line_ is None
    disp = ShrinkageDisplay(
        groups=[1, 2],
        no_pooling=[0.1, 0.5],
        multilevel=[0.2, 0.4],
        trials=[10, 20],
        population_mean=0.3,
    ).plot()
    assert len(disp.arrows_) == 2 and disp.interval_ is None
    _draw(disp)


# -- without matplotlib --------------------------------------------------------------
@pytest.fixture
def no_matplotlib(monkeypatch):
    """Make ``import matplotlib`` (and its submodules) fail, as if not installed."""
    for name in [
        m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")
    ]:
        monkeypatch.setitem(sys.modules, name, None)


def test_import_error_without_matplotlib(no_matplotlib, m3, m4):
    calls = [
        lambda: ShrinkageDisplay.from_estimators(m3, m4),
        lambda: PopulationDisplay.from_estimator(m4),
        lambda: CaterpillarDisplay.from_estimator(m3),
        lambda: CaterpillarDisplay(
            groups=[1], estimate=[0.5], lower=[0.4], upper=[0.6]
        ).plot(),
    ]
    for call in calls:
        with pytest.raises(ImportError, match=re.escape(MESSAGE)):
            call()


def test_import_without_matplotlib():
    code = (
        "import sys; sys.modules['matplotlib'] = None; import skre.plotting; "
        "print(sorted(skre.plotting.__all__))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ShrinkageDisplay" in done.stdout


def test_no_warnings_drawing_all(m3, m4):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for disp in (
            ShrinkageDisplay.from_estimators(m3, m4, level=0.95),
            PopulationDisplay.from_estimator(m4),
            CaterpillarDisplay.from_estimator(m4),
        ):
            _draw(disp)
