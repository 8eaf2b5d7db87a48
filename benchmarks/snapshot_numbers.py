"""Snapshot every number skre reports on the test suite's reference data.

Used to show that a refactor moves no number: run it before the change with
``--write before.json``, after it with ``--compare before.json``. Every fitted
value, interval, score and prediction is compared to ``--tol`` (default 1e-10,
relative to max(1, |value|)); differences are listed one per line.

    python benchmarks/snapshot_numbers.py --write /tmp/before.json
    python benchmarks/snapshot_numbers.py --compare /tmp/before.json

It needs only the project and its test data (tests/reference/data).
"""

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats
from skre.priors import Gamma, HalfCauchy, Normal

DATA = Path(__file__).resolve().parents[1] / "tests" / "reference" / "data"


def data_sets():
    """(name, X, y, group) for the rats data and the three simulated sets."""
    X, y = load_rats(return_X_y=True)
    yield "rats", X, y, "batch"
    counts = pd.read_csv(DATA / "sim_counts.csv")
    yield "sim_counts", counts[["group", "dose"]], counts[["m", "n"]], "group"
    binary = pd.read_csv(DATA / "sim_binary.csv")
    yield "sim_binary", binary[["group", "x1", "x2"]], binary["y"], "group"
    boundary = pd.read_csv(DATA / "sim_boundary.csv")
    yield "sim_boundary", boundary[["group"]], boundary[["m", "n"]], "group"


def models(group, name):
    yield "complete", CompletePoolingBinomial(group=group)
    yield "no_pooling", NoPoolingBinomial(group=group)
    yield (
        "no_pooling_prior",
        NoPoolingBinomial(group=group, group_prior=Normal(-1.5, 1.0)),
    )
    yield "multilevel_agq25", MultilevelBinomial(group=group)
    yield "multilevel_laplace", MultilevelBinomial(group=group, n_quad=1)
    yield "multilevel_blme", MultilevelBinomial(group=group, tau_prior=Gamma(2.5, 0))
    if name != "sim_binary":
        yield (
            "multilevel_coefprior",
            MultilevelBinomial(
                group=group, coef_prior=Normal(0, 1.0), tau_prior=HalfCauchy(1.0)
            ),
        )
    if name in ("rats", "sim_boundary"):
        yield (
            "multilevel_bayes",
            MultilevelBinomial(group=group, method="bayes", tau_prior=HalfCauchy(1.0)),
        )


def _flat(prefix, value, out):
    if isinstance(value, pd.DataFrame):
        for col in value.columns:
            for idx, v in value[col].items():
                _flat(f"{prefix}[{idx}][{col}]", v, out)
    elif isinstance(value, (pd.Series,)):
        for idx, v in value.items():
            _flat(f"{prefix}[{idx}]", v, out)
    elif isinstance(value, (list, tuple, np.ndarray)):
        for i, v in enumerate(np.ravel(np.asarray(value, dtype=float))):
            _flat(f"{prefix}[{i}]", v, out)
    else:
        try:
            out[prefix] = float(value)
        except (TypeError, ValueError):
            pass


def _call(out, key, fn):
    try:
        _flat(key, fn(), out)
    except Exception as exc:  # a method that raises is recorded, not fatal
        out[key] = f"raises {type(exc).__name__}"


def snapshot():
    out = {}
    for name, X, y, group in data_sets():
        for label, est in models(group, name):
            key = f"{name}/{label}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)
                for attr in (
                    "intercept_",
                    "coef_",
                    "tau_",
                    "loglik_",
                    "aic_",
                    "bic_",
                    "group_intercepts_",
                    "random_effects_",
                    "random_effects_sd_",
                ):
                    if hasattr(est, attr):
                        _flat(f"{key}/{attr}", getattr(est, attr), out)
                _call(out, f"{key}/predict_proba", lambda: est.predict_proba(X)[:, 1])
                _call(out, f"{key}/score", lambda: est.score(X, y))
                _call(out, f"{key}/group_estimates", est.group_estimates)
                if isinstance(est, NoPoolingBinomial):
                    for m in ("exact", "wald"):
                        _call(
                            out,
                            f"{key}/group_estimates_{m}",
                            lambda m=m: est.group_estimates(method=m),
                        )
                _call(out, f"{key}/vcov", est.vcov)
                if not isinstance(est, NoPoolingBinomial):
                    for m in ("wald", "profile"):
                        _call(
                            out, f"{key}/confint_{m}", lambda m=m: est.confint(method=m)
                        )
                if isinstance(est, MultilevelBinomial):
                    _call(out, f"{key}/population_mean", est.population_.mean)
                    _call(out, f"{key}/prediction_interval", est.prediction_interval)
                    _call(
                        out,
                        f"{key}/prediction_interval_param",
                        lambda: est.prediction_interval(
                            include_parameter_uncertainty=True
                        ),
                    )
                    if est.method == "bayes":
                        _call(out, f"{key}/posterior_summary", est.posterior_summary)
    return out


def compare(before, after, tol):
    bad = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, float) and isinstance(b, float):
            same = (
                (math.isnan(a) and math.isnan(b))
                or a == b
                or (
                    math.isfinite(a)
                    and math.isfinite(b)
                    and abs(a - b) <= tol * max(1.0, abs(a))
                )
            )
            if not same:
                bad.append(f"{key}: {a!r} -> {b!r} (diff {b - a:.3g})")
        elif a != b:
            bad.append(f"{key}: {a!r} -> {b!r}")
    return bad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", metavar="FILE")
    p.add_argument("--compare", metavar="FILE")
    p.add_argument("--tol", type=float, default=1e-10)
    args = p.parse_args(argv)
    now = snapshot()
    if args.write:
        Path(args.write).write_text(json.dumps(now, indent=0, sort_keys=True))
        print(f"{len(now)} numbers written to {args.write}")
    if args.compare:
        before = json.loads(Path(args.compare).read_text())
        bad = compare(before, now, args.tol)
        print(
            f"{len(before)} numbers before, {len(now)} after; "
            f"{len(bad)} differ by more than {args.tol:g}"
        )
        print("\n".join(bad))
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
