"""Issue 22: the model-comparison and model-checking tools, each finding of the
outside tester with a reference computed without skre: scipy's distributions
and integrators, exact identities, direct formulas, and lme4 (the R script
beside its numbers in tests/reference/).
"""

import os
import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats
from skre.exceptions import SeparationWarning


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


# -- deviance residuals ----------------------------------------------------------------
def _deviance_residuals(m, n, p):
    """The textbook formula, each term 0 when its count is 0 (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(m > 0, m * np.log(m / (n * p)), 0.0)
        down = np.where(n - m > 0, (n - m) * np.log((n - m) / (n * (1 - p))), 0.0)
    return np.sign(m - n * p) * np.sqrt(np.maximum(2 * (up + down), 0.0))


def test_deviance_residuals_of_0_of_n_and_n_of_n_groups(rats):
    """No pooling gives the 0/n batches probability exactly 0: their deviance
    residuals are 0 (the saturated term), not 0 * log 0 = NaN."""
    X, y = rats
    Xn = X.assign(batch=np.r_[X["batch"].to_numpy()[:-1], 1])  # batch 1: 0/20 and 4/14
    y_all = y.assign(m=np.where(np.arange(71) == 70, y["n"], y["m"]))  # a 14/14 batch
    for Xi, yi in ((X, y), (X, y_all)):
        est = NoPoolingBinomial(group="batch").fit(Xi, yi)
        m, n = yi["m"].to_numpy(float), yi["n"].to_numpy(float)
        p = est.predict_proba(Xi)[:, 1]
        r = est.residuals(Xi, yi, kind="deviance")
        assert np.all(np.isfinite(r))
        np.testing.assert_allclose(r, _deviance_residuals(m, n, p), atol=1e-6)
        assert np.all(r[(m == 0) | (m == n)] == 0.0)
    # a batch with one 0/20 row and one 4/14 row: p is that batch's 4/34
    est = NoPoolingBinomial(group="batch").fit(Xn, y)
    m, n = y["m"].to_numpy(float), y["n"].to_numpy(float)
    p = est.predict_proba(Xn)[:, 1]
    np.testing.assert_allclose(
        est.residuals(Xn, y, kind="deviance"), _deviance_residuals(m, n, p), atol=1e-6
    )
    # every trial a failure: complete pooling's probability is exactly 0
    zero = y.assign(m=0)
    with pytest.warns(SeparationWarning, match="every trial is a failure"):
        cp = CompletePoolingBinomial(group="batch").fit(X, zero)
    assert np.all(cp.residuals(X, zero, kind="deviance") == 0.0)


# -- simulations need whole trials -----------------------------------------------------
def test_simulation_tools_refuse_fractional_trials_alike(rats):
    """sample_weight 1.5 makes 19 trials 28.5: a binomial draw of 28.5 trials
    does not exist. The bootstrap test of tau used to truncate them to 28 (other
    data than the fit's); it now refuses, as the exact test and the bootstrap
    intervals do, with the same message."""
    X, y = rats
    est = MultilevelBinomial(group="batch").fit(X, y, sample_weight=np.full(71, 1.5))
    odd = int(np.sum(y["n"] % 2 == 1))
    assert odd > 0
    calls = {
        "test_tau(method='bootstrap')": lambda: est.test_tau("bootstrap", n_sims=5),
        "test_tau(method='exact')": lambda: est.test_tau("exact", n_sims=5),
        "confint(method='bootstrap')": lambda: est.confint(
            method="bootstrap", n_boot=5
        ),
    }
    for what, call in calls.items():
        with pytest.raises(ValueError, match=r"fractional (trials|successes)") as err:
            call()
        assert what in str(err.value) and "sample_weight" in str(err.value)
    with pytest.raises(ValueError, match=f"fractional trials \\({odd} of 71 rows"):
        est.test_tau("bootstrap", n_sims=5)
    # whole weights are whole trials: accepted
    twice = MultilevelBinomial(group="batch").fit(X, y, sample_weight=np.full(71, 2))
    assert twice.test_tau("bootstrap", n_sims=3, random_state=0).pvalue > 0


# -- the bootstrap's workers -----------------------------------------------------------
@pytest.mark.parametrize("cls", [CompletePoolingBinomial, MultilevelBinomial])
def test_bootstrap_tasks_pickle_by_reference(rats, monkeypatch, cls):
    """joblib's processes get each task pickled; cloudpickle sends a closure
    or lambda by value, together with the globals it reads, which broke the
    workers (BrokenProcessPool) in a script importing scipy.special.expit.
    The standard library's pickle sends functions by reference only, so it
    pickles a task exactly when no function in it travels by value."""
    sent = []

    class Recording:
        def __init__(self, **kwargs):
            pass

        def __call__(self, tasks):
            out = []
            for func, args, kwargs in tasks:
                sent.append(pickle.dumps((func, args, kwargs)))
                out.append(func(*args, **kwargs))
            return out

    monkeypatch.setattr(joblib, "Parallel", Recording)
    X, y = rats
    est = cls(group="batch").fit(X, y)
    boot = est.confint(method="bootstrap", n_boot=3, random_state=0, n_jobs=2)
    assert len(sent) == 3 and boot.notna().all().all()


def test_bootstrap_in_processes_from_a_script_importing_expit(tmp_path):
    """The reported script: run as __main__, it imports expit and asks for
    bootstrap intervals on two processes."""
    script = tmp_path / "boot.py"
    script.write_text(
        "from scipy.special import expit\n"
        "from skre import MultilevelBinomial\n"
        "from skre.datasets import load_rats\n"
        "X, y = load_rats(return_X_y=True)\n"
        "m = MultilevelBinomial(group='batch').fit(X, y)\n"
        "b = m.confint(method='bootstrap', n_boot=4, random_state=0, n_jobs=2)\n"
        "print(b.shape, expit(0.0))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "(2, 2) 0.5" in done.stdout
