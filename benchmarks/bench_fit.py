"""Wall-clock fit-time benchmark of skre's estimators against in-run baselines.

Run from the repository root::

    python benchmarks/bench_fit.py            # full run (a few minutes)
    python benchmarks/bench_fit.py --quick    # rats, 10^4 groups, predict (smoke test)
    python benchmarks/bench_fit.py --no-r     # skip the external lme4 reference
    python benchmarks/bench_fit.py --threads 1  # cap BLAS/OpenMP pools (threadpoolctl)

Every timing is ``time.perf_counter`` around ``estimator.fit(X, y)`` only: data
generation and conversion happen before the clock starts. Each estimator is fit
once as a warm-up (untimed), then ``repeats`` times; the table shows the median
(and min/max) of those repeats. ``ratio`` is median / median of the case's
baseline (scikit-learn's ``LogisticRegression`` on the same rows, fit in the same
run). See ``benchmarks/README.md`` for what each case measures and the targets.

This is a script, not a pytest test; it never edits anything.
"""

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd
import scipy
import sklearn
from sklearn.linear_model import LogisticRegression

import skre
from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats, make_grouped_binomial
from skre.priors import HalfCauchy

SEED = 0

# the project's targets (see benchmarks/README.md)
#: the label of MultilevelBinomial with its default n_quad="auto" (on rats and
#: on intercept-only counts that is 25 nodes everywhere; on the covariate case
#: each group's count of 5, 7, 9, 15 or 25 nodes)
DEFAULT = "MultilevelBinomial (default n_quad='auto')"
TARGET_RATS_SECONDS = 5e-3  # rats multilevel fit (default n_quad), median
TARGET_1E6_GROUPS_SECONDS = 1.0  # intercept-only counts, 10^6 groups
TARGET_COVARIATE_RATIO = 5.0  # 10^6 x 5 binary rows vs LogisticRegression
#: predict_proba of 10^5 rows whose labels are nearly all unseen (the bound
#: tests/test_edge_cases.py held as a wall-clock assert; it now counts calls)
TARGET_UNSEEN_PREDICT_SECONDS = 2.0


def unpenalized_logistic(**kw):
    """Plain maximum-likelihood logistic regression (no penalty).

    scikit-learn 1.8 deprecated ``penalty=None`` (removal in 1.10) in favour of
    ``C=np.inf``; older releases may not accept ``C=np.inf``, so fall back.
    """
    major_minor = tuple(int(p) for p in sklearn.__version__.split(".")[:2])
    if major_minor >= (1, 8):
        return LogisticRegression(C=np.inf, **kw)
    return LogisticRegression(penalty=None, **kw)


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------
@dataclass
class Row:
    case: str
    estimator: str
    times: list = field(default_factory=list)
    repeats: int = 0
    baseline: bool = False
    note: str = ""
    error: str = ""
    external: bool = False  # timed outside this process (median not available)

    @property
    def median(self):
        return statistics.median(self.times) if self.times else float("nan")


def time_fit(case, name, fit, repeats, *, baseline=False, note=""):
    """Warm up once, then time ``fit()`` ``repeats`` times.

    Warnings raised by the warm-up fit are recorded in the row's note (and are
    silenced in the timed repeats so printing them is not timed). An exception
    is recorded as the row's error instead of a time.
    """
    row = Row(case, name, repeats=repeats, baseline=baseline, note=note)
    # one full collection before the warm-up, none between repeats: a gc.collect()
    # right before a fit walks the whole heap and leaves the CPU caches cold, which
    # added ~1 ms (25-40%) to the 3-4 ms rats fit when tried
    gc.collect()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit()
        seen = sorted({w.category.__name__ for w in caught})
        if seen:
            row.note = "; ".join(filter(None, [row.note, "warns: " + ", ".join(seen)]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(repeats):
                t0 = time.perf_counter()
                fit()
                row.times.append(time.perf_counter() - t0)
    except Exception as exc:  # report, don't abort the whole benchmark
        row.error = f"{type(exc).__name__}: {exc}"
        row.times = []
        tb = traceback.extract_tb(exc.__traceback__)
        where = next((f for f in reversed(tb) if "/skre/" in f.filename), tb[-1])
        row.error += f" [at {os.path.basename(where.filename)}:{where.lineno}]"
    status = (
        f"{fmt_seconds(row.median)} median of {len(row.times)}"
        if row.times
        else f"ERROR {row.error}"
    )
    print(f"  .. {case:<30} {name:<44} {status}", flush=True)
    return row


def run_json_script(python, script, args, env=None):
    """Run ``script`` (Python source) with ``python`` and ``args`` in a
    subprocess; ``(the dict its "JSON..." line printed, None)``, or ``(None,
    what went wrong)`` when it printed none (a peer in its own venv)."""
    proc = subprocess.run(
        [python, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )
    line = next((s for s in proc.stdout.splitlines() if s.startswith("JSON")), None)
    if line is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return None, f"exit {proc.returncode}: {' '.join(tail)[:200]}"
    return json.loads(line[4:]), None


def fmt_seconds(s):
    if not np.isfinite(s):
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def expand_counts(labels, m, n):
    """One 0/1 row per trial: m ones and n - m zeros for each row of counts."""
    m = np.asarray(m, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    group = np.repeat(np.asarray(labels), n)
    # within each group, trial j < m is a success
    start = np.repeat(np.cumsum(n) - n, n)
    y = (np.arange(n.sum()) - start < np.repeat(m, n)).astype(np.int64)
    return group, y


def success_failure_rows(m, n):
    """Two weighted rows per group for LogisticRegression on counts.

    Row 2g has label 1 and weight m_g, row 2g+1 label 0 and weight n_g - m_g
    (zero weights allowed), so the weighted log-loss equals the binomial
    log-likelihood of the counts.
    """
    m = np.asarray(m, dtype=float)
    n = np.asarray(n, dtype=float)
    y = np.tile([1, 0], len(m))
    w = np.column_stack([m, n - m]).ravel()
    return y, w


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------
def case_rats(rows, repeats, *, run_r):
    case = "rats (71 groups)"
    X, y = load_rats(return_X_y=True)
    m, n = y["m"].to_numpy(), y["n"].to_numpy()
    batch, yb = expand_counts(X["batch"].to_numpy(), m, n)
    n_rows = len(yb)

    # baseline: the complete-pooling model on the 1739 binary rows. LogisticRegression
    # needs >= 1 feature, so it gets one all-zero column and fits only the intercept
    # (exactly the model CompletePoolingBinomial fits).
    Xzero = np.zeros((n_rows, 1))
    lr = unpenalized_logistic()
    rows.append(
        time_fit(
            case,
            f"LogisticRegression(C=inf) {n_rows}x1 zero col",
            lambda: lr.fit(Xzero, yb),
            repeats,
            baseline=True,
            note="baseline: intercept only, binary rows",
        )
    )
    for name, est in [
        (DEFAULT, MultilevelBinomial(group="batch")),
        (
            "MultilevelBinomial (n_quad=1, Laplace)",
            MultilevelBinomial(group="batch", n_quad=1),
        ),
        ("NoPoolingBinomial", NoPoolingBinomial(group="batch")),
        ("CompletePoolingBinomial", CompletePoolingBinomial(group="batch")),
    ]:
        rows.append(
            time_fit(
                case, name, lambda est=est: est.fit(X, y), repeats, note="71 count rows"
            )
        )
    # the full posterior of (b, tau) by quadrature; tests/reference/rats_nuts.py
    # samples the same posterior with NumPyro NUTS (4 x 50,000 draws: ~33 s)
    bayes = MultilevelBinomial(group="batch", method="bayes", tau_prior=HalfCauchy(1.0))
    rows.append(
        time_fit(
            case,
            "MultilevelBinomial (method='bayes')",
            lambda: bayes.fit(X, y),
            max(3, repeats // 5),
            note="HalfCauchy(1) on tau; NUTS reference ~33 s",
        )
    )

    # for scale: a per-batch model in scikit-learn (one-hot batch, default L2 C=1,
    # i.e. ridge-shrunk batch effects, a crude partial pooling)
    onehot = (batch[:, None] == np.unique(batch)[None, :]).astype(float)
    lr1h = LogisticRegression(C=1.0)
    rows.append(
        time_fit(
            case,
            f"LogisticRegression(C=1) {n_rows}x71 one-hot",
            lambda: lr1h.fit(onehot, yb),
            repeats,
            note="info: L2-shrunk batch effects",
        )
    )

    try:
        from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM
    except ImportError:
        print(
            "  .. statsmodels is not installed: skipping BinomialBayesMixedGLM.fit_vb",
            flush=True,
        )
        rows.append(
            Row(
                case,
                "statsmodels BinomialBayesMixedGLM.fit_vb",
                note="skipped: statsmodels not installed",
            )
        )
    else:
        frame = pd.DataFrame({"y": yb, "batch": batch})

        def sm_fit():
            model = BinomialBayesMixedGLM.from_formula(
                "y ~ 1", {"batch": "0 + C(batch)"}, frame
            )
            return model.fit_vb()

        rows.append(
            time_fit(
                case,
                "statsmodels BinomialBayesMixedGLM.fit_vb",
                sm_fit,
                min(repeats, 20),
                note=f"from_formula + fit_vb, {n_rows} binary rows",
            )
        )

    if run_r:
        rows.extend(time_lme4(case))


R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
d <- read.csv("{csv}")
f <- cbind(m, n - m) ~ 1 + (1 | batch)
invisible(glmer(f, family = binomial, data = d))  # warm-up
for (q in c(25, 1)) {{
  st <- system.time(for (i in 1:{reps}) glmer(f, family = binomial, data = d, nAGQ = q))
  cat("NAGQ", q, st[["elapsed"]] / {reps}, "\n")
}}
cat("VERSION", as.character(packageVersion("lme4")), as.character(getRversion()), "\n")
"""


def time_lme4(case, reps=20):
    """lme4's glmer on the rats counts, timed inside R (external reference)."""
    rscript = shutil.which("Rscript")
    label = "lme4 glmer nAGQ={q} (R, external)"
    if rscript is None:
        print("  .. Rscript not found: skipping the lme4 reference", flush=True)
        return [
            Row(
                case,
                "lme4 glmer (R, external)",
                external=True,
                note="skipped: Rscript not found",
            )
        ]
    with resources.as_file(
        resources.files("skre.datasets") / "data" / "rats.csv"
    ) as csv:
        code = R_SCRIPT.format(csv=str(csv).replace("\\", "/"), reps=reps)
        try:
            out = subprocess.run(
                [rscript, "--vanilla", "-e", code],
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [
                Row(
                    case,
                    "lme4 glmer (R, external)",
                    external=True,
                    error=f"{type(exc).__name__}: {exc}",
                )
            ]
    if out.returncode != 0:
        msg = (out.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  .. lme4 reference failed: {msg}", flush=True)
        return [
            Row(
                case,
                "lme4 glmer (R, external)",
                external=True,
                note=f"skipped: Rscript failed ({msg})",
            )
        ]
    version = ""
    result = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["VERSION"]:
            version = f"lme4 {parts[1]}, R {parts[2]}; "
        elif parts[:1] == ["NAGQ"]:
            result.append(
                Row(
                    case,
                    label.format(q=parts[1]),
                    times=[float(parts[2])],
                    repeats=reps,
                    external=True,
                )
            )
    for r in result:
        r.note = (
            version + f"MEAN of {reps} (system.time), not a median; Rscript --vanilla"
        )
        print(
            f"  .. {case:<30} {r.estimator:<44} {fmt_seconds(r.median)} mean of {reps}",
            flush=True,
        )
    return result


def case_counts(rows, n_groups, repeats):
    case = f"counts, 10^{int(round(np.log10(n_groups)))} groups"
    X, y, _ = make_grouped_binomial(n_groups, trials=20, random_state=SEED)
    # baseline: the same counts as 2 weighted rows per group (success / failure,
    # sample_weight m and n - m) and one all-zero feature column: intercept only
    yw, w = success_failure_rows(y[:, 0], y[:, 1])
    Xzero = np.zeros((len(yw), 1))
    lr = unpenalized_logistic()
    rows.append(
        time_fit(
            case,
            f"LogisticRegression(C=inf) {len(yw)}x1 weighted",
            lambda: lr.fit(Xzero, yw, sample_weight=w),
            repeats,
            baseline=True,
            note="baseline: 2 rows/group, sample_weight m, n-m",
        )
    )
    est = MultilevelBinomial(group="group")
    rows.append(
        time_fit(
            case,
            DEFAULT,
            lambda: est.fit(X, y),
            repeats,
            note=f"{n_groups} count rows, trials=20",
        )
    )


def case_covariates(rows, repeats):
    case = "10^6 binary x 5 cov, 10^3 gr"
    X, y, _ = make_grouped_binomial(
        1000, trials=1000, n_features=5, binary=True, random_state=SEED
    )
    Z = np.ascontiguousarray(X.drop(columns="group").to_numpy(dtype=float))
    lr = unpenalized_logistic()
    rows.append(
        time_fit(
            case,
            f"LogisticRegression(C=inf) {Z.shape[0]}x{Z.shape[1]}",
            lambda: lr.fit(Z, y),
            repeats,
            baseline=True,
            note="baseline: covariates only, no group column",
        )
    )
    for name, est in [
        (DEFAULT, MultilevelBinomial(group="group")),
        (
            "MultilevelBinomial (n_quad=25)",
            MultilevelBinomial(group="group", n_quad=25),
        ),
        (
            "MultilevelBinomial (n_quad=1, Laplace)",
            MultilevelBinomial(group="group", n_quad=1),
        ),
        ("NoPoolingBinomial", NoPoolingBinomial(group="group")),
        ("CompletePoolingBinomial", CompletePoolingBinomial(group="group")),
    ]:
        rows.append(time_fit(case, name, lambda est=est: est.fit(X, y), repeats))


def case_unseen_labels(rows, repeats):
    """predict_proba, not fit: 10^5 rows, 99.9% of them in groups fit never saw
    (the multilevel model integrates each over the population)."""
    case = "predict 10^5, unseen labels"
    X, y, _ = make_grouped_binomial(20, trials=10, n_features=1, random_state=SEED)
    rng = np.random.default_rng(SEED)
    n = 100_000
    Xp = pd.DataFrame({"group": rng.integers(0, 10**6, n), "x0": rng.normal(size=n)})
    Xp.loc[:99, "group"] = np.arange(100) % 20  # a few seen groups
    yw, w = success_failure_rows(y[:, 0], y[:, 1])
    xw = np.repeat(X[["x0"]].to_numpy(), 2, axis=0)
    lr = unpenalized_logistic().fit(xw, yw, sample_weight=w)
    Z = Xp[["x0"]].to_numpy()
    rows.append(
        time_fit(
            case,
            "LogisticRegression.predict_proba",
            lambda: lr.predict_proba(Z),
            repeats,
            baseline=True,
            note="baseline: the covariate alone",
        )
    )
    for cls in (CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial):
        est = cls(group="group").fit(X, y)
        rows.append(
            time_fit(
                case,
                f"{cls.__name__}.predict_proba",
                lambda est=est: est.predict_proba(Xp),
                repeats,
                note="timed: predict_proba, not fit",
            )
        )


# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------
def skre_revision():
    """``git describe``-like id of the skre checkout being measured, if it is one."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(skre.__file__)))
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "skre"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if head.returncode != 0:
        return "not a git checkout"
    return head.stdout.strip() + (
        " + uncommitted changes in skre/" if dirty.stdout.strip() else ""
    )


def machine_info():
    lines = [
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}",
        f"skre {skre.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}",
        f"skre source: {os.path.dirname(os.path.abspath(skre.__file__))} "
        f"at {skre_revision()}",
    ]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = "?"
    lines.append(
        f"CPUs: os.cpu_count()={os.cpu_count()}, usable by this process={usable}"
    )
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            lines.append(
                "threadpool: "
                + ", ".join(
                    f"{k}={info.get(k)}"
                    for k in (
                        "user_api",
                        "internal_api",
                        "version",
                        "num_threads",
                        "architecture",
                        "threading_layer",
                    )
                    if info.get(k) is not None
                )
            )
    except ImportError:
        lines.append("threadpool: threadpoolctl not installed")
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    lines.append(
        "OPENBLAS_CORETYPE: "
        + (
            f"SET to {coretype!r} (can slow numpy; left as is)"
            if coretype is not None
            else "not set"
        )
    )
    threads = {
        k: os.environ[k]
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        if k in os.environ
    }
    if threads:
        lines.append("thread env: " + ", ".join(f"{k}={v}" for k, v in threads.items()))
    return lines


def print_table(rows):
    base = {}
    for r in rows:
        if r.baseline and r.times:
            base[r.case] = r.median
    header = ("case", "estimator", "median", "min", "max", "repeats", "ratio", "notes")
    table = []
    for r in rows:
        if r.error:
            table.append(
                (r.case, r.estimator, "ERROR", "-", "-", str(r.repeats), "-", r.error)
            )
            continue
        if not r.times:
            table.append((r.case, r.estimator, "-", "-", "-", "0", "-", r.note))
            continue
        ratio = r.median / base[r.case] if r.case in base else float("nan")
        ext = r.external
        table.append(
            (
                r.case,
                r.estimator,
                fmt_seconds(r.median),
                "-" if ext else fmt_seconds(min(r.times)),
                "-" if ext else fmt_seconds(max(r.times)),
                str(r.repeats),
                "1 (base)"
                if r.baseline
                else ("-" if ratio != ratio else f"{ratio:.2f}x"),
                r.note,
            )
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    widths[-1] = len(header[-1])  # notes: no padding

    def line(cells):
        return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    print(line(header))
    print("-+-".join("-" * w for w in widths))
    last = None
    for cells in table:
        if last is not None and cells[0] != last:
            print("-+-".join("-" * w for w in widths))
        last = cells[0]
        print(line(cells))


def check_targets(rows):
    def find(case_prefix, name):
        for r in rows:
            if r.case.startswith(case_prefix) and r.estimator == name:
                return r
        return None

    print("\nTargets:")
    results = []

    r = find("rats", DEFAULT)
    results.append(
        (
            "rats MultilevelBinomial (default) median <= 5 ms",
            r,
            lambda r: r.median <= TARGET_RATS_SECONDS,
            lambda r: fmt_seconds(r.median),
        )
    )

    r = find("counts, 10^6", DEFAULT)
    results.append(
        (
            "10^6 groups intercept-only MultilevelBinomial <= 1 s",
            r,
            lambda r: r.median <= TARGET_1E6_GROUPS_SECONDS,
            lambda r: fmt_seconds(r.median),
        )
    )

    base = next(
        (b for b in rows if b.case.startswith("10^6 binary") and b.baseline), None
    )
    for name in (
        DEFAULT,
        "MultilevelBinomial (n_quad=1, Laplace)",
    ):
        r = find("10^6 binary", name)
        results.append(
            (
                f"10^6 x 5 covariates {name} <= 5x LogisticRegression",
                r,
                lambda r: (
                    base is not None
                    and bool(base.times)
                    and r.median <= TARGET_COVARIATE_RATIO * base.median
                ),
                lambda r: (
                    (
                        f"{fmt_seconds(r.median)} = "
                        f"{r.median / base.median:.2f}x LogisticRegression "
                        f"({fmt_seconds(base.median)})"
                    )
                    if base is not None and base.times
                    else fmt_seconds(r.median)
                ),
            )
        )

    for cls in (CompletePoolingBinomial, NoPoolingBinomial, MultilevelBinomial):
        r = find("predict 10^5", f"{cls.__name__}.predict_proba")
        results.append(
            (
                f"predict_proba of 10^5 mostly unseen labels, {cls.__name__} <= 2 s",
                r,
                lambda r: r.median <= TARGET_UNSEEN_PREDICT_SECONDS,
                lambda r: fmt_seconds(r.median),
            )
        )

    for label, r, ok, show in results:
        if r is None:
            print(f"  [not run] {label}")
        elif r.error:
            print(f"  [FAIL]    {label}: fit raised {r.error}")
        else:
            print(f"  [{'PASS' if ok(r) else 'FAIL'}]    {label}: {show(r)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only rats, 10^4 groups and predict (smoke test)",
    )
    parser.add_argument(
        "--no-r", action="store_true", help="skip the external lme4 (Rscript) reference"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="limit every BLAS/OpenMP thread pool to N threads with "
        "threadpoolctl (default: leave the environment's setting)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.threads):
            return run(args)
    return run(args)


def run(args):

    print("skre fit-time benchmark" + (" (--quick)" if args.quick else ""))
    for line in machine_info():
        print("  " + line)
    if args.threads is not None:
        print(
            f"  --threads {args.threads}: the pools above are limited to "
            f"{args.threads} thread(s) for the whole run (threadpoolctl)"
        )
    print()
    t_start = time.perf_counter()
    start_revision = skre_revision()
    rows = []
    print("running (one warm-up fit each, then the timed repeats):", flush=True)
    case_rats(
        rows, repeats=10 if args.quick else 50, run_r=not args.quick and not args.no_r
    )
    case_counts(rows, 10**4, repeats=5 if args.quick else 20)
    case_unseen_labels(rows, repeats=3 if args.quick else 10)
    if not args.quick:
        case_counts(rows, 10**5, repeats=10)
        case_counts(rows, 10**6, repeats=3)
        case_covariates(rows, repeats=3)
    print(
        f"\nall timings: wall clock (time.perf_counter) of fit() only; median of the "
        f"repeats after one warm-up fit; ratio = median / the case's baseline median "
        f"(total run {time.perf_counter() - t_start:.0f} s)\n"
    )
    print_table(rows)
    check_targets(rows)
    revision = skre_revision()
    if revision != start_revision:
        print(
            f"\nWARNING: the skre checkout changed during the run ({start_revision} -> "
            f"{revision}); modules already imported were measured as they were at "
            "the start."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
