"""Random slopes: the Laplace bias simulation and the speed against peers (issue 25).

    python benchmarks/bench_slopes.py                  # full run, ~25 min on 2 cores
    python benchmarks/bench_slopes.py --quick          # smoke run, about a minute
    python benchmarks/bench_slopes.py --parts speed    # only part 2

Two parts, both on binary rows from the model with one correlated random slope,
``logit P(y = 1) = b0 + b1 x1 + u0_g + u1_g x1``, ``x1 ~ N(0, 1)`` per row and
``(u0_g, u1_g) ~ N(0, Sigma)``:

1. **Why exactness matters** (the acceptance of issue 25): ``--replicates``
   data sets (default 500) of 500 groups x 5 rows, with b0 = -0.5, b1 = 0.5,
   SD(intercept) 1.5, SD(slope) 0.5 and correlation 0.3. Each is fitted by
   ``MultilevelBinomial(group="g", random_slopes=["x1"])`` (unstructured) with
   Laplace (``n_quad=1``) and with the exact default (``n_quad="auto"``). For
   each method and parameter: mean estimate, bias (with its MCSE), relative
   bias, RMSE and the coverage of the Wald 95% interval of ``confint`` (with
   its MCSE; an interval that is NaN, as when an SD sits at 0, counts as a
   miss). Fits that raised, did not converge or warned are counted, and the
   median of (default's log-likelihood - Laplace's), each at its own optimum,
   is given. Each replicate's seed is (seed, 1, replicate), so a run is
   reproducible whatever ``--jobs``.
2. **Speed**, one thread everywhere (the BLAS/OpenMP/rayon variables are set
   to 1 before numpy is imported; gpboost gets ``num_parallel_threads=1``):
   ``(1 + x1 | g)`` with SD (1.0, 0.5), correlation 0.3, b = (-0.5, 0.5), on
   (a) 2000 groups x 20 rows and (b) 20 000 groups x 5 rows. Medians of
   ``--repeats`` fits after one warm-up fit of: skre's default, skre's Laplace,
   skre's random intercept only (x1 fixed) on the same data; the PyPI package
   ``glmm`` (Rust; Laplace and 7x7 adaptive quadrature, ``nagq=7``) in its own
   venv (``--glmm-python``, default /work/venv-glmm/bin/python), run in a
   subprocess on the same data (an .npz file); gpboost's ``GPModel`` with an
   independent random slope (``group_rand_coef_data``: it has no correlation
   parameter) if importable; lme4's ``glmer`` and glmmTMB (both Laplace) via
   ``Rscript``, timed inside R with ``system.time`` after a warm-up on the
   first 200 groups. Ratios are to skre's default from the same run. Then the
   peak memory of one fit on case (b): skre's default under tracemalloc (numpy's
   and Python's allocations), and skre's default and glmm's 7x7 fit as the rise
   of the process's peak RSS (VmHWM in /proc/self/status) over its RSS before the
   fit, each in a fresh subprocess after a warm-up on 1000 groups.

The tables go to ``docs/_includes/slopes_bias.rst`` and ``slopes_speed.rst``
(not with ``--quick``, unless ``--rst-dir`` is given), stamped with the command
and the commit. CI does not run this script.
"""

import os

# one thread everywhere, before numpy (and any BLAS) is loaded; subprocesses
# (joblib's workers, glmm's venv, Rscript) inherit these
for _var in (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import warnings  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from scipy import special  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import skre  # noqa: E402
from skre import MultilevelBinomial  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import run_json_script  # noqa: E402

try:
    import gpboost
except ImportError:  # an optional, benchmark-only dependency
    gpboost = None

ROOT = Path(__file__).resolve().parents[1]
LEVEL = 0.95

# part 1: the bias simulation
B0, B1, SD0, SD1, RHO = -0.5, 0.5, 1.5, 0.5, 0.3
BIAS_GROUPS, BIAS_ROWS = 500, 5
# part 2: speed
SPEED_SD0, SPEED_SD1, SPEED_RHO = 1.0, 0.5, 0.3
SPEED_CASES = [("(a)", 2000, 20), ("(b)", 20_000, 5)]
R_WARMUP_GROUPS = 200
MEM_WARMUP_GROUPS = 1000

PARAMS = [  # key, label, true value, confint row
    ("b0", "intercept b0", B0, "intercept"),
    ("b1", "fixed slope b1", B1, "x1"),
    ("sd0", "SD(intercept)", SD0, "tau"),
    ("sd1", "SD(slope)", SD1, "sd_x1"),
    ("rho", "correlation", RHO, "cor_(Intercept).x1"),
]
METHODS = [(1, "Laplace (n_quad=1)"), ("auto", 'default (n_quad="auto")')]


def simulate(rng, G, n, b0, b1, sd0, sd1, rho):
    """G groups of n binary rows from the random-slope model: (X, y)."""
    cov = np.array([[sd0**2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1**2]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=G)
    g = np.repeat(np.arange(G), n)
    x = rng.standard_normal(G * n)
    eta = b0 + b1 * x + u[g, 0] + u[g, 1] * x
    y = rng.binomial(1, special.expit(eta))
    return pd.DataFrame({"g": g, "x1": x}), y


# -- 1. the bias simulation -----------------------------------------------------------
def fit_one(X, y, n_quad):
    """One fit: estimates, Wald intervals, loglik, time, warnings (never raises)."""
    out = {"error": "", "warnings": [], "converged": False}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            est = MultilevelBinomial(
                group="g",
                random_slopes=["x1"],
                covariance="unstructured",
                n_quad=n_quad,
            ).fit(X, y)
        except Exception as exc:  # record, don't crash
            out["error"] = f"{type(exc).__name__}: {exc}"[:200]
            est = None
        out["time"] = time.perf_counter() - start
        if est is not None:
            cov = np.asarray(est.random_covariance_, dtype=float)
            sd0, sd1 = np.sqrt(np.diag(cov))
            out.update(
                b0=float(est.intercept_),
                b1=float(np.ravel(est.coef_)[0]),
                sd0=float(sd0),
                sd1=float(sd1),
                rho=float(cov[0, 1] / (sd0 * sd1)) if sd0 * sd1 > 0 else float("nan"),
                loglik=float(est.loglik_),
                converged=bool(est.converged_),
            )
            try:
                ci = est.confint(level=LEVEL)
                for key, _, _, row in PARAMS:
                    out[f"{key}_lo"] = float(ci.loc[row].iloc[0])
                    out[f"{key}_hi"] = float(ci.loc[row].iloc[1])
            except Exception as exc:
                out["error"] = f"confint: {type(exc).__name__}: {exc}"[:200]
    out["warnings"] = [
        (w.category.__name__, str(w.message).splitlines()[0][:160]) for w in caught
    ]
    return out


def replicate(seed, rep):
    rng = np.random.default_rng([seed, 1, rep])
    X, y = simulate(rng, BIAS_GROUPS, BIAS_ROWS, B0, B1, SD0, SD1, RHO)
    with threadpool_limits(1):
        return {n_quad: fit_one(X, y, n_quad) for n_quad, _ in METHODS}


def summarise_bias(results):
    """Per method: per-parameter statistics and counts of failures and warnings."""
    summary = {}
    for n_quad, label in METHODS:
        fits = [r[n_quad] for r in results]
        ok = [f for f in fits if "sd0" in f]
        stats = []
        for key, name, truth, _ in PARAMS:
            est = np.array([f[key] for f in ok], dtype=float)
            finite = est[np.isfinite(est)]
            lo = np.array([f.get(f"{key}_lo", np.nan) for f in ok], dtype=float)
            hi = np.array([f.get(f"{key}_hi", np.nan) for f in ok], dtype=float)
            nan_ci = int(np.sum(~(np.isfinite(lo) & np.isfinite(hi))))
            cover = (lo <= truth) & (truth <= hi)  # NaN compares False: a miss
            m = len(finite)
            cov = cover.mean() if len(cover) else np.nan
            stats.append(
                {
                    "key": key,
                    "name": name,
                    "truth": truth,
                    "n": m,
                    "mean": finite.mean() if m else np.nan,
                    "bias": finite.mean() - truth if m else np.nan,
                    "bias_se": finite.std(ddof=1) / np.sqrt(m) if m > 1 else np.nan,
                    "rel": (finite.mean() - truth) / truth if m else np.nan,
                    "rmse": np.sqrt(np.mean((finite - truth) ** 2)) if m else np.nan,
                    "cover": cov,
                    "cover_se": np.sqrt(cov * (1 - cov) / len(cover))
                    if len(cover)
                    else np.nan,
                    "nan_ci": nan_ci,
                    "nan_est": len(est) - m,
                }
            )
        categories = {}
        for f in fits:
            for cat in sorted({c for c, _ in f["warnings"]}):
                categories[cat] = categories.get(cat, 0) + 1
        messages = {}
        for f in fits:
            for c, msg in f["warnings"]:
                messages.setdefault(f"{c}: {msg}", 0)
                messages[f"{c}: {msg}"] += 1
        summary[n_quad] = {
            "label": label,
            "stats": stats,
            "fits": len(fits),
            "errors": sum(bool(f["error"]) for f in fits),
            "error_examples": sorted({f["error"] for f in fits if f["error"]})[:3],
            "not_converged": sum("sd0" in f and not f["converged"] for f in fits),
            "warned": sum(bool(f["warnings"]) for f in fits),
            "categories": categories,
            "messages": sorted(messages.items(), key=lambda kv: -kv[1])[:4],
            "sd1_zero": sum("sd1" in f and f["sd1"] < 1e-4 for f in fits),
            "cor_one": sum("rho" in f and abs(f["rho"]) >= 0.999 for f in fits),
            "time": float(np.median([f["time"] for f in fits])),
        }
    diff = np.array(
        [
            r["auto"]["loglik"] - r[1]["loglik"]
            for r in results
            if "loglik" in r["auto"] and "loglik" in r[1]
        ]
    )
    summary["loglik_diff"] = (
        (
            float(np.median(diff)),
            float(np.quantile(diff, 0.1)),
            float(np.quantile(diff, 0.9)),
            len(diff),
        )
        if len(diff)
        else (np.nan, np.nan, np.nan, 0)
    )
    return summary


def run_bias(args):
    print(
        f"part 1: {args.replicates} data sets of {BIAS_GROUPS} groups x {BIAS_ROWS} "
        f"binary rows; b0 {B0}, b1 {B1}, SD(intercept) {SD0}, SD(slope) {SD1}, "
        f"correlation {RHO}; {args.jobs} jobs",
        flush=True,
    )
    start = time.perf_counter()
    results = Parallel(n_jobs=args.jobs, verbose=0)(
        delayed(replicate)(args.seed, rep) for rep in range(args.replicates)
    )
    summary = summarise_bias(results)
    summary["seconds"] = time.perf_counter() - start
    summary["replicates"] = args.replicates
    print_bias(summary)
    return summary


def fmt(x, digits=3):
    return "NaN" if not np.isfinite(x) else f"{x:.{digits}f}"


def bias_rows(summary):
    header = [
        "parameter",
        "true",
        "method",
        "mean",
        "bias (MCSE)",
        "rel. bias",
        "RMSE",
        "95% coverage (MCSE)",
        "NaN CI",
    ]
    body = []
    for i, (_key, name, truth, _) in enumerate(PARAMS):
        for n_quad, _label in METHODS:
            s = summary[n_quad]["stats"][i]
            extra = f" ({s['nan_est']} NaN est.)" if s["nan_est"] else ""
            body.append(
                [
                    name + extra,
                    f"{truth:g}",
                    "Laplace" if n_quad == 1 else "default",
                    fmt(s["mean"]),
                    f"{fmt(s['bias'], 3)} ({fmt(s['bias_se'], 3)})",
                    f"{100 * s['rel']:+.1f}%" if np.isfinite(s["rel"]) else "NaN",
                    fmt(s["rmse"]),
                    f"{100 * s['cover']:.1f}% ({100 * s['cover_se']:.1f})",
                    str(s["nan_ci"]),
                ]
            )
    return header, body


def fit_rows(summary):
    header = [
        "method",
        "fits",
        "raised",
        "not converged",
        "warned (by category)",
        "SD(slope) < 1e-4",
        "abs(cor) >= 0.999",
        "median time",
    ]
    body = []
    for n_quad, label in METHODS:
        s = summary[n_quad]
        cats = ", ".join(f"{k} {v}" for k, v in s["categories"].items())
        body.append(
            [
                label,
                str(s["fits"]),
                str(s["errors"]),
                str(s["not_converged"]),
                f"{s['warned']}" + (f" ({cats})" if cats else ""),
                str(s["sd1_zero"]),
                str(s["cor_one"]),
                f"{s['time']:.3f} s",
            ]
        )
    return header, body


def print_plain(header, body):
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in body:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def print_bias(summary):
    print()
    print_plain(*bias_rows(summary))
    print()
    print_plain(*fit_rows(summary))
    med, q10, q90, n = summary["loglik_diff"]
    print(
        f"\nlog-likelihood, default minus Laplace (each at its own optimum, {n} data "
        f"sets): median {med:.3f} (10% {q10:.3f}, 90% {q90:.3f})"
    )
    for n_quad, _ in METHODS:
        s = summary[n_quad]
        for msg, count in s["messages"]:
            print(f"  {s['label']}: {count} x {msg}")
        for e in s["error_examples"]:
            print(f"  {s['label']}: raised {e}")
    print(f"part 1: {summary['seconds']:.0f} s", flush=True)


# -- 2. speed -------------------------------------------------------------------------
def median_time(fn, repeats):
    """Warm-up once (its warnings recorded), then the median of ``repeats`` fits."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    seen = sorted({w.category.__name__ for w in caught})
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return {
        "median": float(np.median(times)),
        "min": min(times),
        "max": max(times),
        "warns": seen,
    }


def describe_skre(est):
    cov = np.asarray(est.random_covariance_, dtype=float)
    sd = np.sqrt(np.diag(cov))
    rho = cov[0, 1] / (sd[0] * sd[1]) if sd[0] * sd[1] > 0 else float("nan")
    return (
        f"SDs {sd[0]:.4f}, {sd[1]:.4f}, cor {rho:.4f}, loglik {est.loglik_:.3f}, "
        f"converged {est.converged_}"
    )


GLMM_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    import numpy as np
    import glmm
    from importlib.metadata import version
    path, repeats, nagq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    d = np.load(path)
    data = {"y": d["y"].astype(float), "x1": d["x1"], "g": d["g"]}
    out = {"version": version("glmm")}
    def one():
        return glmm.fit(data, "y ~ x1 + (1 + x1 | g)", "binomial", nagq=nagq)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = one()  # warm-up
    out["warns"] = sorted({w.category.__name__ for w in caught})
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            t = time.perf_counter()
            f = one()
            times.append(time.perf_counter() - t)
    sd, corr = f.stddev_corr(0)
    out.update(times=times, beta=[float(b) for b in f.beta],
               sd=[float(s) for s in sd], rho=float(corr[0, 1]),
               loglik=float(f.loglik), converged=bool(f.converged),
               nagq=int(f.nagq), n_eval=int(f.n_eval))
    print("JSON" + json.dumps(out))
    """
)

MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    path, which, warm = sys.argv[1], sys.argv[2], int(sys.argv[3])
    d = np.load(path)
    g, x1, y = d["g"], d["x1"], d["y"]
    small = g < warm
    if which == "glmm":
        import glmm
        def fit(mask):
            data = {"y": y[mask].astype(float), "x1": x1[mask], "g": g[mask]}
            return glmm.fit(data, "y ~ x1 + (1 + x1 | g)", "binomial", nagq=7)
    else:
        import pandas as pd
        from skre import MultilevelBinomial
        def fit(mask):
            X = pd.DataFrame({"g": g[mask], "x1": x1[mask]})
            return MultilevelBinomial(group="g", random_slopes=["x1"]).fit(X, y[mask])
    full = np.ones(len(y), dtype=bool)
    # this process's own counters (ru_maxrss carries the parent's over fork)
    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(small)  # imports and caches before the measurement
        before_peak = status("VmHWM")
        before = status("VmRSS")
        fit(full)
        after_peak = status("VmHWM")
    print("JSON" + json.dumps({"before": before, "before_peak": before_peak,
                               "after_peak": after_peak}))
    """
)

R_SCRIPT = textwrap.dedent(
    """
    args <- commandArgs(trailingOnly = TRUE)
    path <- args[1]; repeats <- as.integer(args[2]); which <- args[3]
    warm <- as.integer(args[4])
    suppressMessages(ok <- requireNamespace(which, quietly = TRUE))
    if (!ok) { cat("SKIP", which, "not installed\\n"); quit(status = 0) }
    suppressMessages(library(which, character.only = TRUE))
    d <- read.csv(path); d$g <- factor(d$g)
    f <- y ~ x1 + (1 + x1 | g)
    fit <- if (which == "lme4") {
      function(dd) glmer(f, family = binomial, data = dd)
    } else {
      function(dd) glmmTMB(f, family = binomial, data = dd)
    }
    invisible(suppressWarnings(fit(d[as.integer(as.character(d$g)) < warm, ])))
    warns <- character(0)
    times <- numeric(0)
    for (i in seq_len(repeats)) {
      tm <- system.time(m <- withCallingHandlers(fit(d), warning = function(w) {
        warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")}))
      times <- c(times, tm[["elapsed"]])
    }
    if (which == "lme4") {
      sdcor <- as.data.frame(VarCorr(m))$sdcor
    } else {
      S <- VarCorr(m)$cond$g
      sdcor <- c(sqrt(diag(S)), cov2cor(S)[1, 2])
    }
    cat("TIMES", times, "\\n")
    cat("VERSION", as.character(packageVersion(which)), "\\n")
    cat("LOGLIK", as.numeric(logLik(m)), "\\n")
    cat("SDCOR", sdcor, "\\n")
    w1 <- gsub("\\n", " ", substr(unique(warns)[1], 1, 120))
    cat("WARN", length(unique(warns)), w1, "\\n")
    """
)


def run_glmm(python, path, repeats, nagq):
    out, error = run_json_script(python, GLMM_SCRIPT, [path, repeats, nagq])
    return out if out is not None else {"error": f"glmm failed ({error})"}


def run_r(path, repeats, which):
    if shutil.which("Rscript") is None:
        return {"error": "skipped: Rscript not found"}
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(R_SCRIPT)
    try:
        proc = subprocess.run(
            ["Rscript", fh.name, str(path), str(repeats), which, str(R_WARMUP_GROUPS)],
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(fh.name)
    out = {}
    for line in proc.stdout.splitlines():
        key, _, rest = line.partition(" ")
        out[key] = rest.strip()
    if "SKIP" in out:
        return {"error": f"skipped: {out['SKIP']}"}
    if "TIMES" not in out:
        tail = proc.stderr.strip().splitlines()[-1:]
        return {"error": f"R failed (exit {proc.returncode}): {' '.join(tail)[:200]}"}
    sdcor = [float(v) for v in out["SDCOR"].split()]
    n_warn, _, first = out.get("WARN", "0").partition(" ")
    return {
        "times": [float(v) for v in out["TIMES"].split()],
        "version": out.get("VERSION", "?"),
        "loglik": float(out["LOGLIK"]),
        "sd": sdcor[:2],
        "rho": sdcor[2] if len(sdcor) > 2 else float("nan"),
        "warns": [f"{n_warn} R warning(s): {first}"] if n_warn != "0" else [],
    }


def gp_fit(X, y):
    model = gpboost.GPModel(
        group_data=X["g"].to_numpy(),
        group_rand_coef_data=X[["x1"]].to_numpy(),
        ind_effect_group_rand_coef=[1],
        likelihood="bernoulli_logit",
        num_parallel_threads=1,
    )
    model.set_optim_params(params={"trace": False})
    model.fit(y=y, X=np.column_stack([np.ones(len(y)), X["x1"].to_numpy()]))
    return model


def external_row(case, name, res, note=""):
    row = {"case": case, "name": name, "note": note}
    if "error" in res:
        row["error"] = res["error"]
        return row
    t = res["times"]
    row.update(median=float(np.median(t)), min=min(t), max=max(t))
    parts = [note] if note else []
    if "sd" in res:
        parts.append(
            f"SDs {res['sd'][0]:.4f}, {res['sd'][1]:.4f}, cor {res['rho']:.4f}, "
            f"loglik {res['loglik']:.3f}"
        )
    if "converged" in res:
        parts.append(f"converged {res['converged']}")
    if "n_eval" in res:
        parts.append(f"{res['n_eval']} evaluations")
    if res.get("warns"):
        parts.append("warns: " + ", ".join(res["warns"]))
    row["note"] = "; ".join(parts)
    return row


def run_speed(args):
    rows = []
    memory = {}
    glmm_python = args.glmm_python
    glmm_ok = bool(glmm_python) and Path(glmm_python).exists()
    tmp = Path(tempfile.mkdtemp(prefix="bench_slopes_"))
    cases = SPEED_CASES
    if args.quick:
        cases = [(c, G // 10, n) for c, G, n in cases]
    print(
        f"part 2: speed, one thread, median of {args.repeats} after a warm-up; "
        f"(1 + x1 | g), SDs ({SPEED_SD0}, {SPEED_SD1}), correlation {SPEED_RHO}",
        flush=True,
    )
    try:
        for tag, G, n in cases:
            case = f"{tag} {G:,} groups x {n} rows"
            rng = np.random.default_rng([args.seed, 2, G, n])
            X, y = simulate(rng, G, n, B0, B1, SPEED_SD0, SPEED_SD1, SPEED_RHO)
            npz = tmp / f"case_{G}_{n}.npz"
            np.savez(npz, g=X["g"].to_numpy(), x1=X["x1"].to_numpy(), y=y)
            csv = tmp / f"case_{G}_{n}.csv"
            pd.DataFrame({"y": y, "x1": X["x1"], "g": X["g"]}).to_csv(csv, index=False)

            def add(name, fn, describe=None, case=case):
                try:
                    with threadpool_limits(1):
                        res = median_time(fn, args.repeats)
                    row = {"case": case, "name": name, **res}
                    row["note"] = describe() if describe else ""
                    if res["warns"]:
                        row["note"] += "; warns: " + ", ".join(res["warns"])
                except Exception as exc:
                    row = {
                        "case": case,
                        "name": name,
                        "error": f"{type(exc).__name__}: {exc}"[:200],
                        "note": "",
                    }
                rows.append(row)
                show(row)
                return row

            default = MultilevelBinomial(group="g", random_slopes=["x1"])
            laplace = MultilevelBinomial(group="g", random_slopes=["x1"], n_quad=1)
            intercept = MultilevelBinomial(group="g")
            add(
                "skre default (exact)",
                lambda: default.fit(X, y),
                lambda: describe_skre(default),
            )
            add(
                "skre Laplace (n_quad=1)",
                lambda: laplace.fit(X, y),
                lambda: describe_skre(laplace),
            )
            add(
                "skre random intercept only (default)",
                lambda: intercept.fit(X, y),
                lambda: f"tau {intercept.tau_:.4f}",
            )
            if glmm_ok:
                for nagq, label in (
                    (1, "glmm Laplace (nagq=1)"),
                    (7, "glmm 7x7 AGQ (nagq=7)"),
                ):
                    res = run_glmm(glmm_python, npz, args.repeats, nagq)
                    note = f"glmm {res.get('version', '')}".strip()
                    if "nagq" in res and res["nagq"] != nagq:
                        note += f"; ran nagq={res['nagq']} (fallback)"
                    rows.append(external_row(case, label, res, note))
                    show(rows[-1])
            else:
                rows.append(
                    {
                        "case": case,
                        "name": "glmm",
                        "error": (
                            f"skipped: no python at {glmm_python!r} (--glmm-python)"
                        ),
                        "note": "",
                    }
                )
                show(rows[-1])
            if gpboost is not None:
                gp = {}
                add(
                    "gpboost GPModel (Laplace, no correlation)",
                    lambda: gp.update(m=gp_fit(X, y)),
                    lambda: (
                        "SDs "
                        + ", ".join(
                            f"{np.sqrt(v):.4f}"
                            for v in np.ravel(
                                np.asarray(gp["m"].get_cov_pars(), dtype=float)
                            )[:2]
                        )
                        + f", cor fixed at 0; gpboost {gpboost.__version__}"
                    ),
                )
            else:
                rows.append(
                    {
                        "case": case,
                        "name": "gpboost",
                        "error": "skipped: gpboost not importable",
                        "note": "",
                    }
                )
                show(rows[-1])
            if not args.no_r:
                for which in ("lme4", "glmmTMB"):
                    res = run_r(csv, args.repeats, which)
                    label = (
                        "lme4 glmer (Laplace)"
                        if which == "lme4"
                        else "glmmTMB (Laplace)"
                    )
                    note = f"{which} {res.get('version', '')}, timed in R".strip()
                    rows.append(external_row(case, label, res, note))
                    show(rows[-1])
            if tag == "(b)" or (args.quick and tag == cases[-1][0]):
                memory = run_memory(X, y, npz, glmm_python if glmm_ok else None, case)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for row in rows:
        base = next(
            (
                r
                for r in rows
                if r["case"] == row["case"]
                and r["name"].startswith("skre default")
                and "median" in r
            ),
            None,
        )
        row["ratio"] = (
            row["median"] / base["median"] if base and "median" in row else np.nan
        )
    print()
    print_plain(*speed_rows(rows))
    print_memory(memory)
    return rows, memory


def show(row):
    status = (
        f"{row['median']:.3f} s median [{row['min']:.3f}, {row['max']:.3f}]"
        if "median" in row
        else row["error"]
    )
    print(
        f"  .. {row['case']:<28} {row['name']:<42} {status}  {row.get('note', '')}",
        flush=True,
    )


def run_memory(X, y, npz, glmm_python, case):
    memory = {"case": case}
    est = MultilevelBinomial(group="g", random_slopes=["x1"])
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = X["g"].to_numpy() < MEM_WARMUP_GROUPS
        est.fit(X[small], y[small])  # imports and caches outside the trace
        tracemalloc.start()
        tracemalloc.reset_peak()
        est.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    memory["skre tracemalloc"] = peak
    memory["input"] = X.memory_usage(deep=True).sum() + y.nbytes
    for who, python in (("skre", sys.executable), ("glmm", glmm_python)):
        if python is None:
            memory[f"{who} rss"] = "skipped: no glmm python"
            continue
        r, error = run_json_script(python, MEMORY_SCRIPT, [npz, who, MEM_WARMUP_GROUPS])
        if r is None:
            memory[f"{who} rss"] = f"failed ({error})"
            continue
        if r["after_peak"] > r["before_peak"]:
            memory[f"{who} rss"] = r["after_peak"] - r["before"]
        else:
            memory[f"{who} rss"] = (
                f"below the warm-up's peak ({r['before_peak'] / 1e6:.0f} MB RSS)"
            )
    return memory


def fmt_mb(v):
    return f"{v / 1e6:.1f} MB" if isinstance(v, (int, float, np.integer)) else str(v)


def print_memory(memory):
    if not memory:
        return
    print(
        f"\npeak memory of one fit, {memory['case']} "
        f"(input {fmt_mb(memory['input'])}):\n"
        "  skre default, tracemalloc peak during fit: "
        f"{fmt_mb(memory['skre tracemalloc'])}\n"
        f"  skre default, peak RSS rise (fresh process): {fmt_mb(memory['skre rss'])}\n"
        f"  glmm nagq=7, peak RSS rise (fresh process):  {fmt_mb(memory['glmm rss'])}",
        flush=True,
    )


def speed_rows(rows):
    header = ["case", "fit", "median", "min - max", "ratio to skre default", "notes"]
    body = []
    for r in rows:
        if "median" in r:
            body.append(
                [
                    r["case"],
                    r["name"],
                    f"{r['median']:.3f} s",
                    f"{r['min']:.3f} - {r['max']:.3f}",
                    f"{r['ratio']:.2f}" if np.isfinite(r["ratio"]) else "",
                    r.get("note", ""),
                ]
            )
        else:
            body.append([r["case"], r["name"], "-", "", "", r["error"]])
    return header, body


# -- tables ---------------------------------------------------------------------------
def list_table(title, header, body, widths=None):
    lines = [f".. list-table:: {title}", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {' '.join(map(str, widths))}")
    lines.append("")
    for row in [header, *body]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}".rstrip() for cell in row[1:]]
    return "\n".join(lines) + "\n"


def stamp(seconds, head):
    command = "python benchmarks/bench_slopes.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    return (
        f".. generated by: {command.strip()} ({head}, {date.today().isoformat()}, "
        f"{machine()}; {seconds:.0f} s)\n\n"
    )


def write_bias(args, summary, head):
    out = Path(args.rst_dir)
    out.mkdir(parents=True, exist_ok=True)
    med, q10, q90, n = summary["loglik_diff"]
    text = stamp(summary["seconds"], head)
    text += list_table(
        f"Laplace against the exact default on {summary['replicates']} simulated data "
        f"sets ({BIAS_GROUPS} groups x {BIAS_ROWS} binary rows, (1 + x1 | g), "
        f"b0 = {B0}, b1 = {B1}, SD(intercept) = {SD0}, SD(slope) = {SD1}, "
        f"correlation = {RHO}); Wald 95% intervals of confint, a NaN interval "
        "counted as a miss",
        *bias_rows(summary),
        widths=[16, 6, 9, 8, 14, 9, 8, 14, 7],
    )
    text += "\n"
    text += list_table(
        "Fits that raised, did not converge or warned", *fit_rows(summary)
    )
    text += (
        f"\nLog-likelihood of the default minus that of Laplace, each at its own "
        f"optimum, over {n} data sets: median {med:.3f} (10% quantile {q10:.3f}, "
        f"90% quantile {q90:.3f}).\n"
    )
    (out / "slopes_bias.rst").write_text(text)


def write_speed(args, rows, memory, seconds, head):
    out = Path(args.rst_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = stamp(seconds, head)
    text += list_table(
        f"Fit time of (1 + x1 | g) on binary rows (median of {args.repeats} after a "
        "warm-up, one thread), ratio to skre's default in the same run",
        *speed_rows(rows),
        widths=[14, 20, 8, 12, 8, 38],
    )
    if memory:
        text += (
            f"\nPeak memory of one fit on {memory['case']} (input "
            f"{fmt_mb(memory['input'])}): skre's default "
            f"{fmt_mb(memory['skre tracemalloc'])} "
            f"under tracemalloc during the fit; peak RSS rise over the RSS before the "
            f"fit, in a fresh process: skre's default {fmt_mb(memory['skre rss'])}, "
            f"glmm nagq=7 {fmt_mb(memory['glmm rss'])}.\n"
        )
    (out / "slopes_speed.rst").write_text(text)


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


def machine():
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return f"{os.cpu_count()}-vCPU {model}".strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=500, help="part 1 data sets")
    parser.add_argument("--repeats", type=int, default=3, help="part 2 timed fits")
    parser.add_argument("--jobs", type=int, default=2, help="part 1 worker processes")
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument("--parts", default="bias,speed", help="comma-separated subset")
    parser.add_argument(
        "--glmm-python",
        default=os.environ.get("GLMM_PYTHON", "/work/venv-glmm/bin/python"),
        help="a python with the PyPI package glmm installed",
    )
    parser.add_argument("--no-r", action="store_true", help="skip lme4 and glmmTMB")
    parser.add_argument(
        "--rst-dir",
        default=None,
        help="where the tables go (default docs/_includes; none with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20 data sets, 1 repeat, the speed cases 10x smaller",
    )
    args = parser.parse_args()
    if args.quick:
        args.replicates = min(args.replicates, 20)
        args.repeats = 1
    elif args.rst_dir is None:
        args.rst_dir = str(ROOT / "docs" / "_includes")
    parts = set(args.parts.split(","))
    head = header()
    print(f"{head}; {machine()}; seed {args.seed}", flush=True)
    start = time.perf_counter()
    # speed first, before the workers load the machine
    if "speed" in parts:
        t0 = time.perf_counter()
        rows, memory = run_speed(args)
        seconds = time.perf_counter() - t0
        print(f"part 2: {seconds:.0f} s", flush=True)
        if args.rst_dir:
            write_speed(args, rows, memory, seconds, head)
    if "bias" in parts:
        # the workers import skre now: stamp the tree as it is when they start
        head = header()
        summary = run_bias(args)
        if args.rst_dir:
            write_bias(args, summary, head)
    print(f"total {time.perf_counter() - start:.0f} s", flush=True)
    if args.rst_dir:
        print(f"tables written to {args.rst_dir}")


if __name__ == "__main__":
    main()
