"""Dask fits: equal to the in-memory fit, and what they cost (issue 14).

Two parts, each against the in-memory fit in the same run:

1. Equality at the acceptance size: 2e6 binary rows, 2e4 groups, 3 covariates,
   8 partitions not sorted by group, a LocalCluster of 2 worker processes
   (1 thread each). MultilevelBinomial's parameters, predict_proba and score;
   complete and no pooling's log-likelihoods; the same data read back from
   Parquet; the time of the Dask fit over the in-memory one (medians).
2. Random slopes: 2e4 groups x 10 binary rows, one random slope
   (``random_slopes=["x1"]``), 8 partitions not sorted by group, the same
   LocalCluster: the default rule ("auto") and the Laplace fit, Dask against
   in memory (largest relative parameter difference, medians of the times).
   ``skre.local-rows`` is 0 here, so the fit runs on the partitions (2e5
   rows would otherwise be gathered and fit in memory).
3. Scale: 2e7 simulated rows written to Parquet (rows not sorted by group) and
   fit from ``dd.read_parquet`` on a fresh LocalCluster of 2 workers: time,
   rows per second per worker, each worker's peak memory (VmHWM) against the
   size of the data, the share of the time spent in the shuffle pass and in
   the shuffle's own tasks, and a closing note that extrapolates to 1e9 rows.

The in-memory fits run with one BLAS thread (this script sets the variables
before numpy loads); the workers of a LocalCluster get one thread each too.

    python benchmarks/bench_dask.py                 # all parts, ~30 min on 2 cores
    python benchmarks/bench_dask.py --quick         # 2e5 / 2e6 rows, a smoke test
    python benchmarks/bench_dask.py --skip-scale    # parts 1 and 2 only
    python benchmarks/bench_dask.py --skip-equality --skip-scale  # part 2 only
    python benchmarks/bench_dask.py --skip-equality --rows 20000000

Data go to --workdir (default /tmp/skre-bench-dask), deleted at the end
unless --keep.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.special import expit  # noqa: E402

COLS = ["group", "x0", "x1", "x2"]
COEF = np.array([0.5, -0.3, 0.2])


class Phases(logging.Handler):
    """Collects the phase times that skre._dask logs for each fit."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        if hasattr(record, "skre_phase"):
            self.records.append((record.skre_phase, record.seconds))
        if hasattr(record, "skre_rounds"):
            self.records.append(("rounds", record.skre_rounds))

    def take(self):
        out, self.records = dict(self.records), []
        return out


def start_cluster(n_workers):
    """A LocalCluster whose workers have imported skre (as a running one has)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
    )
    client = Client(cluster)
    client.run(_warm_up)
    return cluster, client


def _warm_up():
    import skre._dask.fit  # noqa: F401  (skre, scikit-learn and scipy)


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def params(est):
    return np.r_[est.intercept_, est.coef_, getattr(est, "tau_", [])]


def line(text=""):
    print(text, flush=True)


# -- part 1: equality at the acceptance size -----------------------------------------


def equality(args, phases):
    import dask.dataframe as dd
    from distributed import wait

    from skre import CompletePoolingBinomial, NoPoolingBinomial
    from skre.datasets import make_grouped_binomial

    n_groups = args.groups
    X, y, _ = make_grouped_binomial(
        n_groups, trials=100, n_features=3, binary=True, random_state=0
    )
    order = np.random.default_rng(0).permutation(len(X))
    df = X.iloc[order].reset_index(drop=True)
    df["y"] = y[order]
    Xn, yn, _ = make_grouped_binomial(
        n_groups // 10, trials=50, n_features=3, binary=True, random_state=1
    )
    held = Xn.assign(group=Xn["group"] + 10**7, y=yn)  # groups not seen in fit
    held = pd.concat([held, df.iloc[: len(held)]], ignore_index=True)  # and seen
    line(f"## 1. Equality: {len(df):,} binary rows, {n_groups:,} groups, 3 covariates")
    line(f"MultilevelBinomial with its default n_quad={model('default').n_quad!r}")
    line("8 partitions in random row order; LocalCluster of 2 processes x 1 thread")
    line()

    r = args.repeats
    t_mem, all_mem, mem = timed(lambda: model("default").fit(df[COLS], df["y"]), r)
    line(f"in-memory MultilevelBinomial fit: median {t_mem:.2f} s {fmt(all_mem)}")
    cluster, client = start_cluster(2)
    try:
        ddf = client.persist(dd.from_pandas(df, npartitions=8, sort=False))
        wait(ddf)
        hdd = client.persist(dd.from_pandas(held, npartitions=4, sort=False))
        wait(hdd)
        t_dask, all_dask, dist = timed(
            lambda: model("default").fit(ddf[COLS], ddf["y"]), r
        )
        ph = phases.take()
        line(f"Dask      MultilevelBinomial fit: median {t_dask:.2f} s {fmt(all_dask)}")
        line(f"  ratio Dask / in-memory: {t_dask / t_mem:.2f} (acceptance: <= 4)")
        line(f"  last fit's phases: {fmt_phases(ph)}")
        line()
        d_par = np.max(np.abs(params(dist) - params(mem)))
        t0 = time.perf_counter()
        proba = dist.predict_proba(ddf[COLS]).compute()
        t_pred = time.perf_counter() - t0
        d_proba = np.max(np.abs(proba - mem.predict_proba(df[COLS])))
        t0 = time.perf_counter()
        s_dask = dist.score(ddf[COLS], ddf["y"])
        t_score = time.perf_counter() - t0
        d_score = abs(s_dask - mem.score(df[COLS], df["y"]))
        d_held = abs(dist.score(hdd[COLS], hdd["y"]) - mem.score(held[COLS], held["y"]))
        line("| check | max abs difference | acceptance |")
        line("|---|---|---|")
        line(f"| MultilevelBinomial parameters (b, slopes, tau) | {d_par:.1e} | 1e-7 |")
        line(
            f"| predict_proba, {len(df):,} rows ({t_pred:.1f} s) "
            f"| {d_proba:.1e} | 1e-9 |"
        )
        line(f"| score, training rows ({t_score:.1f} s) | {d_score:.1e} | 1e-9 |")
        line(f"| score, held-out rows (new and seen groups) | {d_held:.1e} | 1e-9 |")
        for cls in (CompletePoolingBinomial, NoPoolingBinomial):
            t_m, _, a = timed(
                lambda cls=cls: cls(group="group").fit(df[COLS], df["y"]), 1
            )
            t_d, _, b = timed(
                lambda cls=cls: cls(group="group").fit(ddf[COLS], ddf["y"]), 1
            )
            d_ll = abs(a.loglik_ - b.loglik_)
            d_coef = np.max(np.abs(params(a) - params(b)))
            line(
                f"| {cls.__name__} loglik_ (coef {d_coef:.1e}; {t_m:.1f} s in memory, "
                f"{t_d:.1f} s Dask) | {d_ll:.1e} | equal |"
            )
        path = Path(args.workdir) / "equality.parquet"
        ddf.to_parquet(path, overwrite=True)
        pq = dd.read_parquet(path)
        back = model("default").fit(pq[COLS], pq["y"])
        d_pq = np.max(np.abs(params(back) - params(mem)))
        d_pq2 = np.max(np.abs(params(back) - params(dist)))
        line(
            f"| the same data from Parquet: parameters (vs the Dask-frame fit "
            f"{d_pq2:.1e}) | {d_pq:.1e} | same fit |"
        )
        line()
        return {"ratio": t_dask / t_mem, "t_mem": t_mem, "t_dask": t_dask}
    finally:
        client.close()
        cluster.close()


# -- part 2: random slopes -----------------------------------------------------------


def slope_frame(n_groups, per=10, seed=3):
    """Binary rows: logit -0.5 + 0.4 x0 + 0.6 x1 - 0.3 x2 + a_g + b_g x1,
    (a_g, b_g) of SDs 0.8 and 0.4, correlation 0.3; rows in random order."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    Z = rng.standard_normal((len(g), 3))
    L = np.linalg.cholesky([[0.64, 0.096], [0.096, 0.16]])
    B = rng.standard_normal((n_groups, 2)) @ L.T
    eta = -0.5 + Z @ [0.4, 0.6, -0.3] + B[g, 0] + B[g, 1] * Z[:, 1]
    df = pd.DataFrame({"group": g, "x0": Z[:, 0], "x1": Z[:, 1], "x2": Z[:, 2]})
    df["y"] = rng.binomial(1, expit(eta))
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def slope_params(est):
    return np.r_[est.intercept_, est.coef_, est.random_covariance_.ravel(), est.loglik_]


def random_slopes(args, phases):
    import dask
    import dask.dataframe as dd
    from distributed import wait

    from skre import MultilevelBinomial

    df = slope_frame(args.slope_groups)
    line(
        f"## 2. Random slopes: {len(df):,} binary rows, {args.slope_groups:,} "
        "groups x 10, random_slopes=['x1'] (3 covariates)"
    )
    line("8 partitions in random row order; LocalCluster of 2 processes x 1 thread")
    line()
    line(
        "| n_quad | rule | in memory (s) | Dask (s) | ratio | rounds "
        "| max rel. parameter difference |"
    )
    line("|---|---|---|---|---|---|---|")
    r = args.repeats
    cluster, client = start_cluster(2)
    out = {}
    try:
        ddf = client.persist(dd.from_pandas(df, npartitions=8, sort=False))
        wait(ddf)
        for n_quad in ("auto", 1):

            def est(n_quad=n_quad):
                return MultilevelBinomial(
                    group="group", random_slopes=["x1"], n_quad=n_quad
                )

            t_mem, _, mem = timed(lambda est=est: est().fit(df[COLS], df["y"]), r)
            with dask.config.set({"skre.local-rows": 0}):
                t_dask, _, dist = timed(
                    lambda est=est: est().fit(ddf[COLS], ddf["y"]), r
                )
            ph = phases.take()
            a, b = slope_params(mem), slope_params(dist)
            rel = float(np.max(np.abs(a - b) / np.abs(a)))
            rule = dist._fit_result.n_quad
            line(
                f"| {n_quad!r} | {rule} | {t_mem:.2f} | {t_dask:.2f} "
                f"| {t_dask / t_mem:.2f} | {ph.get('rounds', '?')} | {rel:.1e} |"
            )
            out[n_quad] = {"t_mem": t_mem, "t_dask": t_dask, "rel": rel}
        line()
        line(
            "(parameters: intercept, coefficients, the random effects' "
            "covariance and loglik_; medians of the repeats; rounds: the last "
            "Dask fit's map-reduce rounds)"
        )
        line()
        return out
    finally:
        client.close()
        cluster.close()


def fmt(times):
    return "(" + ", ".join(f"{t:.2f}" for t in times) + ")"


def fmt_phases(ph):
    return ", ".join(
        f"{k} {v:.2f} s" if k != "rounds" else f"{v} map-reduce rounds"
        for k, v in ph.items()
    )


# -- part 3: scale ------------------------------------------------------------------


def write_parquet(path, n_rows, n_files, seed=0):
    """Rows of n_rows / 100 groups, each group spread over every file."""
    rng = np.random.default_rng(seed)
    n_groups = n_rows // 100
    xi = 0.7 * rng.standard_normal(n_groups)
    path.mkdir(parents=True, exist_ok=True)
    per = n_rows // n_files
    for f in range(n_files):
        g = rng.integers(0, n_groups, per)
        Z = rng.standard_normal((per, 3))
        y = rng.binomial(1, expit(-1.5 + Z @ COEF + xi[g]))
        frame = pd.DataFrame({"group": g, "x0": Z[:, 0], "x1": Z[:, 1], "x2": Z[:, 2]})
        frame["y"] = y
        frame.to_parquet(path / f"part-{f:04d}.parquet", index=False)
    return n_groups


def model(n_quad):
    """MultilevelBinomial with ``n_quad`` ("default": the estimator's default)."""
    from skre import MultilevelBinomial

    options = {} if n_quad == "default" else {"n_quad": n_quad}
    return MultilevelBinomial(group="group", **options)


def _in_memory(path, n_quad, queue):
    """In a fresh process: read the Parquet files, fit, report time and peak RSS."""
    import resource

    df = pd.read_parquet(path)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = model(n_quad).fit(df[COLS], df["y"])
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queue.put((seconds, peak, params(est)))


def in_memory(path, n_quad):
    """``(seconds, peak bytes, parameters)``, or None if the process failed
    (e.g. killed for want of memory)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_in_memory, args=(str(path), n_quad, queue))
    proc.start()
    proc.join()
    return queue.get() if proc.exitcode == 0 else None


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak resident set size


def _status(field):
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith(field + ":"):
            return int(text.split()[1]) * 1024
    return float("nan")


def _peak():
    return _status("VmHWM")


def _resident():
    return _status("VmRSS")


def dask_fit(client, path, n_quad, phases):
    import dask.dataframe as dd
    from distributed import get_task_stream

    base = client.run(_resident)  # the worker with skre imported, no data
    client.run(_reset_peak)
    with get_task_stream(client) as stream:
        ddf = dd.read_parquet(path)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = model(n_quad).fit(ddf[COLS], ddf["y"])
        seconds = time.perf_counter() - t0
    peaks = client.run(_peak)
    busy = shuffle = 0.0
    for task in stream.data:
        spent = sum(
            s["stop"] - s["start"]
            for s in task["startstops"]
            if s["action"] == "compute"
        )
        busy += spent
        if "shuffle" in str(task["key"]):
            shuffle += spent
    return seconds, peaks, base, phases.take(), busy, shuffle, est


def scale(args, phases):
    path = Path(args.workdir) / "scale.parquet"
    rows = args.rows
    n_files = max(8, rows // 500_000)
    line(
        f"## 3. Scale: {rows:,} rows ({rows // 100:,} groups, 3 covariates) in Parquet"
    )
    t0 = time.perf_counter()
    write_parquet(path, rows, n_files)
    disk = sum(f.stat().st_size for f in path.glob("*.parquet"))
    memory = rows * 5 * 8  # group, x0..x2 and y as 64-bit columns
    line(
        f"written in {time.perf_counter() - t0:.0f} s: {n_files} files, "
        f"{disk / 2**20:.0f} MiB on disk, {memory / 2**20:.0f} MiB as a pandas "
        "DataFrame (the full data's size below)"
    )
    line()
    results = {}
    for n_quad in args.n_quads:
        line(f"### n_quad={model(n_quad).n_quad!r}")
        cluster, client = start_cluster(2)
        try:
            seconds, peaks, base, ph, busy, shuffle, est = dask_fit(
                client, path, n_quad, phases
            )
        finally:
            client.close()
            cluster.close()
        worst = max(peaks.values())
        data_part = max(peaks[w] - base[w] for w in peaks)
        line(
            f"Dask fit from dd.read_parquet: {seconds:.1f} s, "
            f"{rows / seconds / 2:,.0f} rows/s per worker"
        )
        line(f"  phases: {fmt_phases(ph)}")
        line(
            "  shuffle pass (read, validate, code, collapse, shuffle, persist): "
            f"{ph.get('shuffle', 0) / seconds:.0%} of the wall time; the shuffle's "
            f"own tasks {shuffle / busy:.0%} of the workers' compute time"
        )
        line(
            "  peak memory per worker: "
            + ", ".join(f"{v / 2**20:.0f} MiB" for v in peaks.values())
            + f" ({worst / memory:.0%} of the full data's {memory / 2**20:.0f} MiB); "
            f"above the idle worker's {max(base.values()) / 2**20:.0f} MiB (Python "
            f"and libraries): at most {data_part / 2**20:.0f} MiB"
        )
        result = {
            "seconds": seconds,
            "peak": worst,
            "data_part": data_part,
            "base": max(base.values()),
            "phases": ph,
            "params": params(est),
        }
        got = in_memory(path, n_quad) if n_quad in args.in_memory else None
        if got is not None:
            t_mem, peak_mem, p_mem = got
            line(
                f"in-memory fit (one process, pd.read_parquet first): {t_mem:.1f} s, "
                f"peak {peak_mem / 2**20:.0f} MiB; Dask / in-memory "
                f"{seconds / t_mem:.2f}; parameters differ by "
                f"{np.max(np.abs(p_mem - params(est))):.1e}"
            )
            result.update(t_mem=t_mem, peak_mem=peak_mem)
        else:
            line(
                "in-memory fit not run (or it failed): at n_quad=25 it holds "
                "several (rows x 25) arrays at once, over 20 GiB at this size"
            )
        line()
        results[n_quad] = result
    return results, memory


def closing_note(rows, results, memory, n_workers=2):
    """Extrapolate the measured rates and memory to 1e9 rows on N workers."""
    big = 10**9
    line("## Closing note: 1e9 rows on N workers")
    for n_quad, r in results.items():
        rate = rows / r["seconds"] / n_workers  # rows per second per worker
        per_row = r["data_part"] / (rows / n_workers)  # peak above idle, per row
        parts = []
        for N in (16, 64, 256):
            hours = big / (rate * N) / 3600
            gib = (per_row * big / N + r["base"]) / 2**30
            parts.append(f"N = {N}: about {hours:.2f} h and {gib:.1f} GiB per worker")
        line(
            f"n_quad={model(n_quad).n_quad!r}: measured {rate:,.0f} rows/s per "
            "worker and "
            f"{per_row:.0f} bytes of peak worker memory (above the idle worker's "
            f"{r['base'] / 2**20:.0f} MiB) per row it holds. Work and "
            "memory are per row and split evenly by the hash shuffle, so 1e9 rows "
            f"({big // 100:,} groups at 100 rows each) would take "
            + "; ".join(parts)
            + ". What does not shrink with N: each optimizer evaluation is one "
            "round trip (tens of ms on a LocalCluster, more on a network) and the "
            "client holds per-group arrays (posterior nodes and weights, about "
            "16 * n_quad bytes per group: 4 GB for 1e7 groups at n_quad=25)."
        )
    line()


def nodes(text):
    return text if text in ("default", "auto") else int(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--slope-groups", type=int, default=20_000)
    parser.add_argument(
        "--n-quads",
        type=nodes,
        nargs="+",
        default=["default", 1],
        help='node counts for part 2; "default" is the estimator\'s default',
    )
    parser.add_argument(
        "--in-memory",
        type=nodes,
        nargs="*",
        default=["default", 1],
        help="of those, the ones also fit in memory (in a subprocess)",
    )
    parser.add_argument("--skip-equality", action="store_true")
    parser.add_argument("--skip-slopes", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--workdir", default="/tmp/skre-bench-dask")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.groups, args.rows, args.repeats = 2_000, 2_000_000, 1
        args.slope_groups = 2_000
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    phases = Phases()
    logger = logging.getLogger("skre.dask")
    logger.addHandler(phases)
    logger.setLevel(logging.INFO)
    warnings.filterwarnings("ignore", message="Sending large graph")

    import dask
    import distributed

    import skre

    for name in ("distributed", "distributed.shuffle._scheduler_plugin"):
        logging.getLogger(name).setLevel(logging.ERROR)

    line(
        f"# skre {skre.__version__}, dask {dask.__version__}, distributed "
        f"{distributed.__version__}, {os.cpu_count()} CPUs, one BLAS thread"
    )
    line()
    try:
        if not args.skip_equality:
            equality(args, phases)
        if not args.skip_slopes:
            random_slopes(args, phases)
        if not args.skip_scale:
            results, memory = scale(args, phases)
            closing_note(args.rows, results, memory)
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
