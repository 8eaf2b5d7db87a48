"""Calibration and speed of the decisions on groups (issue 24).

    python benchmarks/bench_decisions.py               # full run, ~30 min on 2 cores
    python benchmarks/bench_decisions.py --quick       # smoke run, well under a minute
    python benchmarks/bench_decisions.py --jobs 1      # one worker process

Four parts, each on data simulated from the multilevel model with the rats'
parameters (intercept -1.96, tau 0.68: ``theta_g = expit(b + tau z_g)``,
every group with the same trials):

1. **Size of** ``historical_control_test`` at 5%: a history of G groups of n
   trials (G = 10, 30, 100; n = 5, 20, 50) and a new batch of n trials drawn
   from the same model; ``--replicates`` histories per cell (default 2000).
   Rejection rates of the default (parameter uncertainty), the plug-in p-value,
   the rule "above the historical range" (the new batch's proportion above the
   largest historical proportion) and the rule "outside the historical range"
   (above the largest or below the smallest). A history whose every trial is
   a failure cannot be fitted (the methods raise ValueError): such histories
   are counted in their own column and left out of every rate.
2. **flag_groups at 5% FDR** with the threshold c = the population's 80%
   quantile of theta (from the true parameters): realised FDR (false flags /
   max(1, flags), averaged over data sets) and power (true exceeders flagged /
   true exceeders) of the multilevel model plug-in and with parameter
   uncertainty, and of no pooling (Benjamini-Hochberg on exact binomial
   p-values); G = 50, 200 and n = 10, 50.
3. **Coverage of the marginal 95% rank intervals** of ``ranks()``: the share
   of groups whose true rank (1 = highest theta) lies in its interval, plug-in
   and with parameter uncertainty (fewer data sets: it refits the reference
   posterior each time), and how often the simultaneous intervals hold every
   group at once.
4. **Speed**: ``exceedance`` for 10^5 groups and ``ranks`` (4000 draws,
   marginal and simultaneous intervals) for 10^4 groups, medians of repeats
   with one BLAS thread, beside the fit of the same data and
   ``LogisticRegression`` on it (two weighted rows per group) in the same run.

Each replicate's seed derives from (seed, part, cell, replicate), so runs are
reproducible whatever ``--jobs``. Every rate is given with its Monte Carlo
standard error (MCSE); a criterion PASSes when the rate is within 2 MCSE of
its target. The tables go to ``docs/_includes/decisions_*.rst`` (not with
``--quick``, unless ``--rst-dir`` is given). CI does not run this script.
"""

import argparse
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from joblib import Parallel, delayed
from scipy import special
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import skre
from skre import MultilevelBinomial, NoPoolingBinomial
from skre.datasets import make_grouped_binomial

B, TAU = -1.96, 0.68
ALPHA = 0.05
FDR = 0.05
LEVEL = 0.95
ROOT = Path(__file__).resolve().parents[1]

SIZE_CELLS = [(G, n) for G in (10, 30, 100) for n in (5, 20, 50)]
FDR_CELLS = [(G, n) for G in (50, 200) for n in (10, 50)]
RANK_CELLS = [(50, 20), (200, 20)]


def rng_for(seed, part, cell, rep):
    return np.random.default_rng([seed, part, cell, rep])


def simulate(rng, G, n):
    """G groups of n trials from the model: (theta, successes)."""
    theta = special.expit(B + TAU * rng.standard_normal(G))
    return theta, rng.binomial(n, theta)


def frame(G):
    return pd.DataFrame({"g": np.arange(G)})


# -- 1. size of the historical-control test ---------------------------------------
def size_chunk(seed, cell, reps, G, n):
    out = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rep in reps:
            _, m = simulate(rng_for(seed, 1, cell, rep), G + 1, n)
            hist, new = m[:G], m[G]
            above = new > hist.max()
            outside = above or new < hist.min()
            row = {"above": above, "outside": outside, "degenerate": False}
            try:
                est = MultilevelBinomial(group="g").fit(frame(G), np.c_[hist, [n] * G])
                Xn, yn = pd.DataFrame({"g": [G]}), np.array([[new, n]])
                row["plug_in"] = est.historical_control_test(
                    Xn, yn, include_parameter_uncertainty=False
                ).pvalue
                row["default"] = est.historical_control_test(Xn, yn).pvalue
                row["boundary"] = bool(est.boundary_)
            except ValueError as exc:
                if "every trial in the training data" not in str(exc):
                    raise
                row["degenerate"] = True
            out.append(row)
    return out


def rate(x):
    """Mean of 0/1 outcomes and its MCSE."""
    x = np.asarray(x, dtype=float)
    p = x.mean() if len(x) else float("nan")
    return p, np.sqrt(p * (1 - p) / max(len(x), 1))


def run_size(args, parallel):
    rows = []
    for cell, (G, n) in enumerate(SIZE_CELLS):
        start = time.perf_counter()
        res = sum(
            parallel(
                delayed(size_chunk)(args.seed, cell, chunk, G, n)
                for chunk in chunks(args.replicates, args.jobs)
            ),
            [],
        )
        ok = [r for r in res if not r["degenerate"]]
        d, d_se = rate([r["default"] <= ALPHA for r in ok])
        rows.append(
            {
                "groups": G,
                "trials": n,
                "replicates": len(res),
                "all failures": len(res) - len(ok),
                "boundary fits": sum(r["boundary"] for r in ok),
                "default": (d, d_se),
                "plug-in": rate([r["plug_in"] <= ALPHA for r in ok]),
                "above range": rate([r["above"] for r in ok]),
                "outside range": rate([r["outside"] for r in ok]),
                "pass": d <= ALPHA + 2 * d_se,
                "seconds": time.perf_counter() - start,
            }
        )
        print_size_row(rows[-1])
    return rows


def print_size_row(r):
    f = "{:.4f} ± {:.4f}".format
    print(
        f"  G={r['groups']:>3} n={r['trials']:>2}  reps {r['replicates']:>5}  "
        f"all-failure {r['all failures']:>3}  boundary {r['boundary fits']:>4}  "
        f"default {f(*r['default'])} {'PASS' if r['pass'] else 'FAIL'}  "
        f"plug-in {f(*r['plug-in'])}  above range {f(*r['above range'])}  "
        f"outside range {f(*r['outside range'])}  ({r['seconds']:.0f} s)",
        flush=True,
    )


# -- 2. FDR and power of flag_groups ------------------------------------------------
def fdr_chunk(seed, cell, reps, G, n, with_pu):
    c = float(special.expit(B + TAU * special.ndtri(0.8)))
    out = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rep in reps:
            theta, m = simulate(rng_for(seed, 2, cell, rep), G, n)
            true = theta > c
            y = np.c_[m, [n] * G]
            row = {"exceeders": int(true.sum())}
            try:
                est = MultilevelBinomial(group="g").fit(frame(G), y)
                fits = {"plug-in": (est, False)}
                if rep in with_pu:
                    fits["parameter uncertainty"] = (est, True)
                fits["no pooling (BH)"] = (
                    NoPoolingBinomial(group="g").fit(frame(G), y),
                    False,
                )
                for name, (model, pu) in fits.items():
                    flags = model.flag_groups(
                        c, fdr=FDR, include_parameter_uncertainty=pu
                    )["flagged"].to_numpy()
                    k = int(flags.sum())
                    row[name] = (
                        (flags & ~true).sum() / max(1, k),
                        (flags & true).sum() / true.sum() if true.any() else np.nan,
                        k,
                    )
            except ValueError as exc:
                if "every trial in the training data" not in str(exc):
                    raise
                row["degenerate"] = True
            out.append(row)
    return out


FDR_METHODS = ("plug-in", "parameter uncertainty", "no pooling (BH)")


def run_fdr(args, parallel):
    rows = []
    for cell, (G, n) in enumerate(FDR_CELLS):
        start = time.perf_counter()
        with_pu = set(range(args.pu_replicates))
        res = sum(
            parallel(
                delayed(fdr_chunk)(args.seed, cell, chunk, G, n, with_pu)
                for chunk in chunks(args.fdr_replicates, args.jobs)
            ),
            [],
        )
        for name in FDR_METHODS:
            got = [r[name] for r in res if name in r]
            fdp = np.array([g[0] for g in got])
            power = np.array([g[1] for g in got])
            power = power[~np.isnan(power)]
            fdr, se = fdp.mean(), fdp.std(ddof=1) / np.sqrt(len(fdp))
            rows.append(
                {
                    "groups": G,
                    "trials": n,
                    "method": name,
                    "replicates": len(got),
                    "all failures": sum("degenerate" in r for r in res),
                    "fdr": (fdr, se),
                    "power": (power.mean(), power.std(ddof=1) / np.sqrt(len(power))),
                    "flagged": np.mean([g[2] for g in got]),
                    "exceeders": np.mean([r["exceeders"] for r in res]),
                    "pass": fdr <= FDR + 2 * se,
                }
            )
            print_fdr_row(rows[-1])
        print(f"    ({time.perf_counter() - start:.0f} s)", flush=True)
    return rows


def print_fdr_row(r):
    f = "{:.4f} ± {:.4f}".format
    print(
        f"  G={r['groups']:>3} n={r['trials']:>2}  {r['method']:<22} "
        f"reps {r['replicates']:>5}  FDR {f(*r['fdr'])} "
        f"{'PASS' if r['pass'] else 'FAIL'}  power {f(*r['power'])}  "
        f"flagged {r['flagged']:.1f} of {r['exceeders']:.1f} exceeders "
        f"(all-failure data sets {r['all failures']})",
        flush=True,
    )


# -- 3. coverage of the rank intervals ----------------------------------------------
def rank_chunk(seed, cell, reps, G, n, with_pu):
    out = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rep in reps:
            rng = rng_for(seed, 3, cell, rep)
            theta, m = simulate(rng, G, n)
            true_rank = np.empty(G, dtype=int)
            true_rank[np.argsort(-theta)] = np.arange(1, G + 1)
            est = MultilevelBinomial(group="g").fit(frame(G), np.c_[m, [n] * G])
            row = {}
            for name, pu in (("plug-in", False), ("parameter uncertainty", True)):
                if pu and rep not in with_pu:
                    continue
                r = est.ranks(
                    level=LEVEL, include_parameter_uncertainty=pu, random_state=rep
                )
                lo, hi = r["rank_lower"].to_numpy(), r["rank_upper"].to_numpy()
                slo = r["simultaneous_lower"].to_numpy()
                shi = r["simultaneous_upper"].to_numpy()
                row[name] = (
                    np.mean((lo <= true_rank) & (true_rank <= hi)),
                    float(np.all((slo <= true_rank) & (true_rank <= shi))),
                    np.mean(hi - lo + 1),
                )
            out.append(row)
    return out


def run_ranks(args, parallel):
    rows = []
    for cell, (G, n) in enumerate(RANK_CELLS):
        start = time.perf_counter()
        with_pu = set(range(args.rank_pu_replicates))
        res = sum(
            parallel(
                delayed(rank_chunk)(args.seed, cell, chunk, G, n, with_pu)
                for chunk in chunks(args.rank_replicates, args.jobs)
            ),
            [],
        )
        for name in ("plug-in", "parameter uncertainty"):
            got = np.array([r[name] for r in res if name in r])
            cov = got[:, 0]
            se = cov.std(ddof=1) / np.sqrt(len(cov))
            rows.append(
                {
                    "groups": G,
                    "trials": n,
                    "method": name,
                    "replicates": len(got),
                    "coverage": (cov.mean(), se),
                    "simultaneous": rate(got[:, 1]),
                    "width": got[:, 2].mean(),
                    "pass": cov.mean() >= LEVEL - 2 * se,
                }
            )
            print_rank_row(rows[-1])
        print(f"    ({time.perf_counter() - start:.0f} s)", flush=True)
    return rows


def print_rank_row(r):
    f = "{:.4f} ± {:.4f}".format
    print(
        f"  G={r['groups']:>3} n={r['trials']:>2}  {r['method']:<22} "
        f"reps {r['replicates']:>5}  marginal {f(*r['coverage'])} "
        f"{'PASS' if r['pass'] else 'FAIL'}  simultaneous {f(*r['simultaneous'])}  "
        f"mean width {r['width']:.1f} ranks",
        flush=True,
    )


# -- 4. speed -----------------------------------------------------------------------
def median_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times)), float(np.max(times))


def logistic_baseline(y):
    """Two weighted rows per group: the complete-pooling likelihood."""
    m, n = y[:, 0], y[:, 1]
    Z = np.zeros((2 * len(m), 1))
    label = np.r_[np.ones(len(m)), np.zeros(len(m))]
    weight = np.r_[m, n - m].astype(float)
    version = tuple(int(x) for x in sklearn.__version__.split(".")[:2])
    kw = {"C": np.inf} if version >= (1, 8) else {"penalty": None}
    return lambda: LogisticRegression(**kw).fit(Z, label, sample_weight=weight)


def run_speed(args):
    rows = []
    cases = [
        ("exceedance(0.2)", 10**5, lambda est: est.exceedance(0.2), 1.0),
        (
            "ranks() (4000 draws)",
            10**4,
            lambda est: est.ranks(random_state=0),
            5.0,
        ),
        ("ranks(n_draws=1000)", 10**4, lambda est: est.ranks(n_draws=1000), None),
    ]
    if args.quick:
        cases = [(a, G // 10, f, t) for a, G, f, t in cases]
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, G, call, target in cases:
            X, y, _ = make_grouped_binomial(
                G, trials=20, intercept=B, tau=TAU, random_state=0
            )
            y = np.asarray(y)
            est = MultilevelBinomial(group="group").fit(X, y)
            repeats = args.speed_repeats
            t = median_time(lambda est=est, call=call: call(est), repeats)
            fit = median_time(
                lambda: MultilevelBinomial(group="group").fit(X, y), repeats
            )
            lr = median_time(logistic_baseline(y), repeats)
            rows.append(
                {
                    "case": f"{name}, {G:,} groups of 20 trials",
                    "median": t,
                    "fit": fit,
                    "lr": lr,
                    "target": target,
                    "pass": None if target is None else t[0] <= target,
                    "repeats": repeats,
                }
            )
            r = rows[-1]
            verdict = "" if target is None else f" (<= {target:g} s: "
            verdict += "" if target is None else ("PASS)" if r["pass"] else "FAIL)")
            print(
                f"  {r['case']}: median {t[0]:.3f} s "
                f"[{t[1]:.3f}, {t[2]:.3f}]{verdict}; "
                f"fit {fit[0]:.3f} s (ratio {t[0] / fit[0]:.1f}), "
                f"LogisticRegression {lr[0]:.3f} s (ratio {t[0] / lr[0]:.1f})",
                flush=True,
            )
    return rows


# -- tables -------------------------------------------------------------------------
def chunks(total, jobs):
    """Replicate indices cut into about 4 chunks per job."""
    k = max(1, min(total, 4 * jobs))
    return [list(c) for c in np.array_split(np.arange(total), k) if len(c)]


def pm(value, digits=3):
    return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


def list_table(title, header, body, widths=None):
    lines = [f".. list-table:: {title}", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {' '.join(map(str, widths))}")
    lines.append("")
    for row in [header, *body]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def write_tables(args, size, fdr, ranks, speed, seconds, head):
    out = Path(args.rst_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = (
        ".. generated by: python benchmarks/bench_decisions.py "
        f"{' '.join(sys.argv[1:])} ({head}; {seconds / 60:.0f} min)\n\n"
    )
    if size:
        body = [
            [
                f"{r['groups']} × {r['trials']}",
                r["all failures"],
                f"{pm(r['default'])} {'PASS' if r['pass'] else 'FAIL'}",
                pm(r["plug-in"]),
                pm(r["above range"]),
                pm(r["outside range"]),
            ]
            for r in size
        ]
        (out / "decisions_size.rst").write_text(
            stamp
            + list_table(
                "Rejection rate at the 5% level of a new batch drawn from the "
                "history's own model (rats-like: intercept -1.96, tau 0.68), "
                f"{size[0]['replicates']} histories per row, ± Monte Carlo SE; "
                "PASS: the default is ≤ 5% + 2 MCSE",
                [
                    "groups × trials",
                    "all failures (not fitted)",
                    "default (parameter uncertainty)",
                    "plug-in",
                    "above the historical range",
                    "outside the historical range",
                ],
                body,
                [12, 10, 22, 18, 18, 18],
            )
        )
    missing = (
        ".. note::\n\n   The run these tables come from had not reached this part.\n"
    )
    for name, rows in (("size", size), ("fdr", fdr), ("ranks", ranks)):
        if not rows and args.from_log:
            (out / f"decisions_{name}.rst").write_text(stamp + missing)
    if fdr:
        body = [
            [
                r["groups"],
                r["trials"],
                r["method"],
                r["replicates"],
                pm(r["fdr"]),
                "PASS" if r["pass"] else "FAIL",
                pm(r["power"]),
                f"{r['flagged']:.1f} / {r['exceeders']:.1f}",
            ]
            for r in fdr
        ]
        (out / "decisions_fdr.rst").write_text(
            stamp
            + list_table(
                "flag_groups at 5% FDR, threshold the population's 80% quantile "
                "(data from the model), ± Monte Carlo SE",
                [
                    "groups",
                    "trials per group",
                    "method",
                    "data sets",
                    "realised FDR",
                    "≤ 5% + 2 MCSE",
                    "power",
                    "flagged / true exceeders (means)",
                ],
                body,
                [7, 7, 16, 8, 14, 8, 14, 12],
            )
        )
    if ranks:
        body = [
            [
                r["groups"],
                r["trials"],
                r["method"],
                r["replicates"],
                pm(r["coverage"]),
                "PASS" if r["pass"] else "FAIL",
                pm(r["simultaneous"]),
                f"{r['width']:.1f}",
            ]
            for r in ranks
        ]
        (out / "decisions_ranks.rst").write_text(
            stamp
            + list_table(
                "Coverage of the 95% rank intervals of ranks() (data from the "
                "model), ± Monte Carlo SE",
                [
                    "groups",
                    "trials per group",
                    "method",
                    "data sets",
                    "marginal: share of groups covered",
                    "≥ 95% - 2 MCSE",
                    "simultaneous: all groups covered",
                    "mean marginal width (ranks)",
                ],
                body,
                [7, 7, 16, 8, 14, 8, 14, 10],
            )
        )
    if speed:
        body = [
            [
                r["case"],
                f"{r['median'][0]:.3f} s",
                "" if r["target"] is None else f"≤ {r['target']:g} s",
                "" if r["pass"] is None else ("PASS" if r["pass"] else "FAIL"),
                f"{r['fit'][0]:.3f} s "
                f"({r.get('fit ratio', r['median'][0] / r['fit'][0]):.0f}x)",
                f"{r['lr'][0]:.3f} s "
                f"({r.get('lr ratio', r['median'][0] / r['lr'][0]):.0f}x)",
            ]
            for r in speed
        ]
        (out / "decisions_speed.rst").write_text(
            stamp
            + list_table(
                f"Time of the decisions (median of {speed[0]['repeats']} repeats, "
                "one BLAS thread) beside the fit and LogisticRegression on the "
                "same data",
                [
                    "call",
                    "median",
                    "target",
                    "",
                    "fit (ratio)",
                    "LogisticRegression (ratio)",
                ],
                body,
                [30, 10, 8, 7, 15, 15],
            )
        )


NUM = r"([0-9.]+) ± ([0-9.]+)"


def parse_log(text):
    """The rows of (size, fdr, ranks, speed) from a run's printed lines."""

    def pair(g, i):
        return float(g[i]), float(g[i + 1])

    size = [
        {
            "groups": int(g[0]),
            "trials": int(g[1]),
            "replicates": int(g[2]),
            "all failures": int(g[3]),
            "boundary fits": int(g[4]),
            "default": pair(g, 5),
            "pass": g[7] == "PASS",
            "plug-in": pair(g, 8),
            "above range": pair(g, 10),
            "outside range": pair(g, 12),
        }
        for g in re.findall(
            rf"G=\s*(\d+) n=\s*(\d+)\s+reps\s+(\d+)\s+all-failure\s+(\d+)\s+"
            rf"boundary\s+(\d+)\s+default {NUM} (PASS|FAIL)\s+plug-in {NUM}\s+"
            rf"above range {NUM}\s+outside range {NUM}",
            text,
        )
    ]
    fdr = [
        {
            "groups": int(g[0]),
            "trials": int(g[1]),
            "method": g[2].strip(),
            "replicates": int(g[3]),
            "fdr": pair(g, 4),
            "pass": g[6] == "PASS",
            "power": pair(g, 7),
            "flagged": float(g[9]),
            "exceeders": float(g[10]),
        }
        for g in re.findall(
            rf"G=\s*(\d+) n=\s*(\d+)  (.+?)\s+reps\s+(\d+)\s+FDR {NUM} (PASS|FAIL)"
            rf"\s+power {NUM}\s+flagged ([0-9.]+) of ([0-9.]+) exceeders",
            text,
        )
    ]
    ranks = [
        {
            "groups": int(g[0]),
            "trials": int(g[1]),
            "method": g[2].strip(),
            "replicates": int(g[3]),
            "coverage": pair(g, 4),
            "pass": g[6] == "PASS",
            "simultaneous": pair(g, 7),
            "width": float(g[9]),
        }
        for g in re.findall(
            rf"G=\s*(\d+) n=\s*(\d+)  (.+?)\s+reps\s+(\d+)\s+marginal {NUM} "
            rf"(PASS|FAIL)\s+simultaneous {NUM}\s+mean width ([0-9.]+) ranks",
            text,
        )
    ]
    repeats = re.search(r"speed \(one BLAS thread, (\d+) repeats\)", text)
    speed = [
        {
            "case": f"{g[0]}, {g[1]} groups of 20 trials",
            "median": (float(g[2]),),
            "target": float(g[3]) if g[3] else None,
            "pass": (g[4] == "PASS") if g[4] else None,
            "fit": (float(g[5]),),
            "fit ratio": float(g[6]),
            "lr": (float(g[7]),),
            "lr ratio": float(g[8]),
            "repeats": int(repeats.group(1)) if repeats else 5,
        }
        for g in re.findall(
            r"  (.+?), ([\d,]+) groups of 20 trials: median ([0-9.]+) s \[[^\]]*\]"
            r"(?: \(<= ([0-9.]+) s: (PASS|FAIL)\))?; "
            r"fit ([0-9.]+) s \(ratio ([0-9.]+)\), "
            r"LogisticRegression ([0-9.]+) s \(ratio ([0-9.]+)\)",
            text,
        )
    ]
    return size, fdr, ranks, speed


def header():
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "skre"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        commit += " (skre/ modified)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown commit"
    return f"skre {skre.__version__} at {commit}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=2000, help="size: per cell")
    parser.add_argument("--fdr-replicates", type=int, default=1000)
    parser.add_argument(
        "--pu-replicates",
        type=int,
        default=200,
        help="FDR data sets also flagged with parameter uncertainty",
    )
    parser.add_argument("--rank-replicates", type=int, default=400)
    parser.add_argument("--rank-pu-replicates", type=int, default=100)
    parser.add_argument("--speed-repeats", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument(
        "--parts", default="speed,size,fdr,ranks", help="comma-separated subset"
    )
    parser.add_argument(
        "--rst-dir",
        default=None,
        help="where the tables go (default docs/_includes; none with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument(
        "--from-log",
        metavar="FILE",
        help="write the tables from the printed output of a run, without running",
    )
    args = parser.parse_args()
    if args.from_log:
        args.rst_dir = args.rst_dir or str(ROOT / "docs" / "_includes")
        text = Path(args.from_log).read_text()
        head = text.splitlines()[0].split("; jobs")[0] + f" (from {args.from_log})"
        total = re.search(r"^total (\d+) s", text, re.M)
        if total is None:
            head += ", unfinished"
        seconds = float(total.group(1)) if total else 0.0
        write_tables(args, *parse_log(text), seconds, head)
        print(f"tables written to {args.rst_dir}")
        return
    if args.quick:
        args.replicates, args.fdr_replicates, args.pu_replicates = 8, 8, 2
        args.rank_replicates, args.rank_pu_replicates, args.speed_repeats = 4, 2, 1
    elif args.rst_dir is None:
        args.rst_dir = str(ROOT / "docs" / "_includes")
    parts = set(args.parts.split(","))
    head = header()
    print(f"{head}; jobs {args.jobs}; seed {args.seed}", flush=True)
    start = time.perf_counter()
    size = fdr = ranks = speed = []
    # speed first, before the workers load the machine
    if "speed" in parts:
        print(f"speed (one BLAS thread, {args.speed_repeats} repeats)", flush=True)
        speed = run_speed(args)
    with Parallel(n_jobs=args.jobs) as parallel:
        if "size" in parts:
            print(
                f"size of historical_control_test at 5% ({args.replicates} "
                "histories per cell)",
                flush=True,
            )
            size = run_size(args, parallel)
        if "fdr" in parts:
            print(
                f"flag_groups at {FDR:.0%} FDR ({args.fdr_replicates} data sets, "
                f"{args.pu_replicates} with parameter uncertainty)",
                flush=True,
            )
            fdr = run_fdr(args, parallel)
        if "ranks" in parts:
            print(
                f"coverage of 95% rank intervals ({args.rank_replicates} data sets, "
                f"{args.rank_pu_replicates} with parameter uncertainty)",
                flush=True,
            )
            ranks = run_ranks(args, parallel)
    seconds = time.perf_counter() - start
    print(f"total {seconds:.0f} s", flush=True)
    if args.rst_dir:
        write_tables(args, size, fdr, ranks, speed, seconds, head)
        print(f"tables written to {args.rst_dir}")


if __name__ == "__main__":
    main()
