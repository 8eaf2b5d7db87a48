"""``python -m skre``: compare complete, no and partial pooling on grouped data."""

import argparse
import os
import re
import sys
import textwrap
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, cross_val_score

from ._multilevel import MultilevelBinomial
from ._pooling import CompletePoolingBinomial, NoPoolingBinomial
from .exceptions import BoundaryWarning

MODELS = {
    "complete pooling": CompletePoolingBinomial,
    "no pooling": NoPoolingBinomial,
    "partial pooling": MultilevelBinomial,
}
ASCII = str.maketrans(
    {
        "τ": "tau",
        "θ": "theta",
        "±": "+/-",
        "…": "...",
        "—": "-",
        "½": "1/2 ",
        "χ": "chi",
        "²": "2",
        "₀": "(0)",
        "₁": "(1)",
    }
)
DESCRIPTION = """\
Fit three binomial models to grouped data (m successes out of n trials per group)
and compare them: complete pooling (one probability for all groups), no pooling
(one per group, independently) and partial pooling (a multilevel logistic model
with a normal random intercept per group). Without FILE, uses the bundled rats
tumour data (71 batches of rats)."""


def _parser():
    from . import __version__  # read on use: whatever the package says it is

    p = argparse.ArgumentParser(
        prog="skre",
        description=DESCRIPTION,
        epilog="example: skre data.csv --successes m --trials n "
        "--group batch --covariates dose",
    )
    p.add_argument("--version", action="version", version=f"skre {__version__}")
    p.add_argument(
        "file",
        nargs="?",
        metavar="FILE.csv",
        help="CSV with one row per group (counts) or per trial (--outcome)",
    )
    p.add_argument("--successes", metavar="COL", help="column of success counts")
    p.add_argument("--trials", metavar="COL", help="column of trial counts")
    p.add_argument(
        "--outcome",
        metavar="COL",
        help="column of 0/1 outcomes, one trial per row (instead of "
        "--successes/--trials)",
    )
    p.add_argument(
        "--group", metavar="COL", help="column of group labels (required with FILE)"
    )
    p.add_argument(
        "--covariates",
        metavar="COL",
        nargs="+",
        default=[],
        help="numeric covariate columns (fixed effects); FILE.csv may come "
        "before or after them",
    )
    p.add_argument(
        "--level",
        type=float,
        default=0.95,
        help="coverage of the intervals (default: 0.95)",
    )
    p.add_argument(
        "--folds",
        type=int,
        default=5,
        help="folds of GroupKFold for the held-out-group score (default: 5)",
    )
    p.add_argument(
        "--flag",
        metavar="THRESHOLD",
        type=float,
        help="also list the groups whose success probability is probably above "
        "THRESHOLD (a probability in (0, 1)), from the partial-pooling fit, "
        "with the false discovery rate controlled at --fdr",
    )
    p.add_argument(
        "--fdr",
        metavar="Q",
        type=float,
        help="false discovery rate of --flag, in (0, 1) (default: 0.05)",
    )
    p.add_argument(
        "--plot",
        metavar="DIR",
        help="also write shrinkage.png, population.png and caterpillar.png "
        "(of the partial-pooling fit) to DIR, created if missing; needs "
        "matplotlib",
    )
    return p


def _file_after_covariates(args):
    """``--covariates a b FILE.csv``: argparse gives the list every word up to
    the next option, FILE included. Without a FILE of its own, a last word that
    names a CSV (ends in .csv, compressed or not) or an existing file is FILE."""
    if args.file is None and args.covariates:
        last = args.covariates[-1]
        if _CSV.search(last) or Path(last).is_file():
            args.file, args.covariates = last, args.covariates[:-1]
    return args


_CSV = re.compile(r"\.csv(\.(gz|bz2|zip|xz|zst|tar))?$", re.IGNORECASE)


def _check_plot(parser, directory):
    """Fail early (usage error) when --plot cannot work."""
    from .plotting._base import check_matplotlib

    try:
        check_matplotlib("--plot")
    except ImportError as exc:
        parser.error(str(exc))
    if Path(directory).exists() and not Path(directory).is_dir():
        parser.error(f"--plot needs a directory; {directory} is a file")


def _plots(models, level, directory):
    """Write the three PNGs into ``directory``; return their paths."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    from .plotting import CaterpillarDisplay, PopulationDisplay, ShrinkageDisplay
    from .plotting._base import default_figsize

    _, npool, ml = models.values()
    draw = {
        "shrinkage": lambda ax: ShrinkageDisplay.from_estimators(
            npool, ml, level=level, ax=ax
        ),
        "population": lambda ax: PopulationDisplay.from_estimator(
            ml, level=level, ax=ax
        ),
        "caterpillar": lambda ax: CaterpillarDisplay.from_estimator(
            ml, level=level, ax=ax
        ),
    }
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, plot in draw.items():
        fig = Figure(
            figsize=default_figsize(kind, len(ml.groups_)), layout="constrained"
        )
        plot(fig.subplots())
        paths.append(directory / f"{kind}.png")
        fig.savefig(paths[-1], dpi=120)  # a PNG: drawn by Agg
    return paths


def _load(parser, args):
    """Validate the command line; return the data and how to name its parts."""
    if not 0 < args.level < 1:
        parser.error(f"--level must be between 0 and 1; got {args.level}")
    if args.folds < 2:
        parser.error(f"--folds must be at least 2; got {args.folds}")
    if args.flag is not None and not 0 < args.flag < 1:
        parser.error(
            f"--flag must be a success probability between 0 and 1 (exclusive); "
            f"got {args.flag:g}"
        )
    if args.fdr is not None and args.flag is None:
        parser.error("--fdr is the false discovery rate of --flag; give --flag too")
    if args.fdr is not None and not 0 < args.fdr < 1:
        parser.error(
            f"--fdr must be a rate between 0 and 1 (exclusive); got {args.fdr:g}"
        )
    if args.file is None:
        if (
            args.successes
            or args.trials
            or args.outcome
            or args.group
            or args.covariates
        ):
            parser.error(
                "--successes, --trials, --outcome, --group and --covariates "
                "need a CSV FILE"
            )
        from .datasets import load_rats

        X, y = load_rats(return_X_y=True)
        return SimpleNamespace(
            title="Rats tumour data (bundled)",
            X=X,
            y=y,
            group="batch",
            noun="batch",
            nouns="batches",
            unit="rat",
        )
    try:
        frame = pd.read_csv(args.file)
    except (OSError, ValueError) as exc:  # missing, unreadable or not a CSV
        parser.error(
            f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}"
        )
    available = ", ".join(map(str, frame.columns))
    if not args.group:
        parser.error(
            f"--group is required with a CSV file; its columns are: {available}"
        )
    if args.outcome and (args.successes or args.trials):
        parser.error("give either --outcome or --successes and --trials, not both")
    if not args.outcome and not (args.successes and args.trials):
        parser.error(
            f"give --successes and --trials (counts) or --outcome (0/1 rows); "
            f"the columns of {args.file} are: {available}"
        )
    ys = [args.outcome] if args.outcome else [args.successes, args.trials]
    wanted = [args.group, *args.covariates, *ys]
    missing = [c for c in dict.fromkeys(wanted) if c not in frame.columns]
    if missing:
        parser.error(
            f"column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))} not in "
            f"{args.file}; its columns are: {available}"
        )
    if len(set(wanted)) < len(wanted):
        parser.error("each column may be used once (group, covariates, outcome)")
    return SimpleNamespace(
        title=Path(args.file).name,
        X=frame[[args.group, *args.covariates]],
        y=frame[ys[0]] if args.outcome else frame[ys],
        group=args.group,
        noun="group",
        nouns=f"groups (column {args.group!r})",
        unit="trial",
    )


def _fit(src):
    """Fit the three models; return them and a note per warning raised."""
    return _recorded(
        lambda: {
            name: cls(group=src.group).fit(src.X, src.y) for name, cls in MODELS.items()
        },
        "",
    )


def _cross_validate(src, models, folds):
    """Held-out-group scores of each model; return them, the folds used (as text)
    and notes.

    A fold whose training groups hold no success (or no failure) is not
    scored: every model then predicts probability 0 (or 1) for it, so it
    cannot tell them apart (and binary labels of one class cannot be fitted).
    """
    n_groups = src.X[src.group].nunique()
    if n_groups < 2:
        return None, 0, ["note: cross-validation needs at least 2 groups; skipped"]
    notes = []
    if n_groups < folds:
        notes.append(
            f"note: only {n_groups} groups, so {n_groups} folds "
            f"(leave one group out) instead of {folds}"
        )
        folds = n_groups
    groups = src.X[src.group]
    splits = list(GroupKFold(n_splits=folds).split(src.X, groups=groups))
    successes, trials = _row_counts(src, models["complete pooling"].classes_)
    lacking = {}  # fold -> what its training groups lack
    for k, (train, _) in enumerate(splits, 1):
        m, n = successes[train].sum(), trials[train].sum()
        if m in (0, n):
            lacking[k] = "success" if m == 0 else "failure"
    if lacking:
        which = ", ".join(map(str, lacking))
        what = " or ".join(f"no {w}" for w in sorted(set(lacking.values())))
        notes.append(
            _note(
                f"note: fold{'s' if len(lacking) > 1 else ''} {which} of {folds} "
                f"not scored: the training groups hold {what}, so every model "
                "predicts the same probability (0 or 1) and the fold cannot tell "
                "them apart"
            )
        )
    kept = [split for k, split in enumerate(splits, 1) if k not in lacking]
    if len(kept) < 2:
        notes.append(
            "note: cross-validation skipped: fewer than 2 folds have training "
            "groups with both successes and failures"
        )
        return None, 0, notes
    scores, cv_notes = _recorded(
        lambda: {
            name: cross_val_score(
                est, src.X, src.y, cv=kept, groups=groups, error_score="raise"
            )
            for name, est in models.items()
        },
        " (cross-validation)",
    )
    used = (
        f"{folds}-fold GroupKFold"
        if len(kept) == folds
        else f"{len(kept)} of {folds} GroupKFold folds"
    )
    return scores, used, notes + cv_notes


def _row_counts(src, classes):
    """Successes and trials of each row of the data (binary or counts)."""
    if isinstance(src.y, pd.Series):  # --outcome: one trial per row
        successes = (src.y.to_numpy() == classes[1]).astype(float)
        return successes, np.ones(len(successes))
    counts = src.y.to_numpy(dtype=float)
    return counts[:, 0], counts[:, 1]


def _recorded(task, where):
    """Run ``task()`` recording warnings; return its result and one note per warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        result = task()
    lines = []
    for w in caught:
        if issubclass(w.category, BoundaryWarning):
            text = (
                "τ = 0 (a boundary fit): no variation between groups beyond binomial "
                "noise, so partial pooling = complete pooling"
            )
        else:
            text = " ".join(str(w.message).split())
        lines.append(_note(f"note{where}: {text}"))
    return result, list(dict.fromkeys(lines))


def _note(text):
    """A note whole, wrapped at 80 columns (a warning's message has its reason
    and its remedy after the first sentence)."""
    return textwrap.fill(
        text,
        80,
        subsequent_indent="      ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _header(src, models):
    cp = models["complete pooling"]
    table = cp.group_estimates()
    m, n = int(table["successes"].sum()), int(table["trials"].sum())
    lines = [f"{src.title}: {len(table)} {src.nouns}, {m}/{n} successes ({m / n:.1%})"]
    if len(cp.covariates_):
        lines[0] += f"; covariates: {', '.join(cp.covariates_)}"
    if isinstance(src.y, pd.Series):
        lines.append(
            f"outcome: one {src.unit} per row, success: {src.y.name} = {cp.classes_[1]}"
        )
    return lines


def _coefs(est):
    """The slopes; NA (as in summary() and R) for a covariate the fit dropped."""
    aliased = est._fit_result.design.aliased
    return "".join(
        f", {name} {'NA' if dropped else f'{c:.3f}'}"
        for name, c, dropped in zip(est.covariates_, est.coef_, aliased)
    )


def _model_lines(src, models, level):
    cp, npool, ml = models.values()
    if len(cp.covariates_):
        texts = [
            f"intercept {cp.intercept_:.3f}{_coefs(cp)}",
            f"{len(npool.groups_)} {src.noun} intercepts{_coefs(npool)}",
        ]
        at = ", at the covariate means"
    else:
        p = cp.group_estimates(level).iloc[0]
        texts = [
            f"intercept {cp.intercept_:.3f}; θ = {p.estimate:.3f} "
            f"[{p.lower:.3f}, {p.upper:.3f}] in every {src.noun}",
            f"{len(npool.groups_)} {src.noun} intercepts; θ = the observed proportion",
        ]
        at = ""
    texts.append(f"b (intercept) {ml.intercept_:.3f}, τ {ml.tau_:.3f}{_coefs(ml)}")
    pop = ml.population_
    lo, hi = ml.prediction_interval(level)  # at tau = 0: b's uncertainty
    lines = ["", f"{'model':<17} {'logLik':>8} {'AIC':>7}  estimates"]
    lines += [
        f"{name:<17} {est.loglik_:8.2f} {est.aic_:7.1f}  {text}"
        for (name, est), text in zip(models.items(), texts)
    ]
    lines += [
        f"{'':36}new {src.noun}: median θ {pop.median():.3f}, mean θ {pop.mean():.3f},",
        f"{'':36}{100 * level:g}% interval [{lo:.3f}, {hi:.3f}]{at}",
    ]
    return lines


def _tau_test_lines(models):
    """The test of tau = 0 next to the table: do the groups differ?

    Skipped, with a note, where it has nothing to test: one group (every
    simulated table is the observed one, and the exact test's p-value would
    be its random tie-break alone).
    """
    ml = models["partial pooling"]
    if len(ml.groups_) < 2:
        return ["", "note: the test of τ = 0 needs at least 2 groups; skipped"]
    try:
        lrt = ml.test_tau("lrt")
    except ValueError:  # no successes or no failures: nothing to test
        return []
    lines = [
        "",
        "test of τ = 0 (do the groups differ?)",
        f"  likelihood ratio {lrt.statistic:.2f}, p = {lrt.pvalue:.3g} "
        "(null ½χ²₀ + ½χ²₁, large-sample)",
    ]
    if not len(ml.covariates_):
        exact = ml.test_tau("exact", n_sims=9999, random_state=0)
        if exact.details["n_ties"] == exact.details["n_sims"]:
            lines.append(
                "  exact conditional test: skipped, every simulated table ties "
                "with the observed one (its p-value would be a random tie-break)"
            )
        else:
            lines.append(
                f"  exact conditional test: p = {exact.pvalue:.3g} "
                "(9999 simulations given the total successes)"
            )
    else:
        score = ml.test_tau("score")
        lines.append(f"  score test: p = {score.pvalue:.3g} (large-sample)")
    return lines


def _chosen(table):
    """Positions and tags of the rows to show, in order of observed proportion."""
    order = np.argsort(table["observed"].to_numpy(), kind="stable")
    picks = {}
    for tag, pos in (
        ("lowest", order[0]),
        ("median", order[(len(order) - 1) // 2]),
        ("highest", order[-1]),
        ("most trials", table["trials"].argmax()),
        ("last", len(order) - 1),
    ):
        picks.setdefault(int(pos), []).append(tag)
    return [(pos, ", ".join(picks[pos])) for pos in order if pos in picks]


def _group_lines(src, models, level):
    tables = [est.group_estimates(level) for est in models.values()]
    first = tables[0]
    chosen = _chosen(first)
    labels = [str(first.index[pos])[:16] for pos, _ in chosen]
    counts = [
        f"{first.successes.iloc[p]:.0f}/{first.trials.iloc[p]:.0f}" for p, _ in chosen
    ]
    lw, cw = max(len(src.noun), *map(len, labels)), max(3, *map(len, counts))
    lines = [
        "",
        f"θ by {src.noun}: estimate [{100 * level:g}% interval] for a few {src.nouns}",
        f"{src.noun:>{lw}}  {'observed':<{cw + 6}}"
        + "".join(f"  {name:<20}" for name in models),
    ]
    for label, count, (pos, tag) in zip(labels, counts, chosen):
        cells = "".join(
            f"  {t.estimate.iloc[pos]:.3f} [{t.lower.iloc[pos]:.3f}, "
            f"{t.upper.iloc[pos]:.3f}]"
            for t in tables
        )
        lines.append(
            f"{label:>{lw}}  {count:>{cw}} {first.observed.iloc[pos]:.3f}"
            f"{cells}  ({tag})"
        )
    return lines


def _score_lines(src, scores, folds):
    if scores is None:
        return []
    best = max(round(s.mean(), 4) for s in scores.values())
    lines = [
        "",
        f"Held-out score ({folds}, mean ± sd over folds): mean log predictive",
        f"probability per {src.unit} in {src.nouns} left out of the fit "
        "(higher is better)",
    ]
    lines += [
        f"  {name:<17} {s.mean():.4f} ± {s.std(ddof=1):.4f}"
        + ("  best" if round(s.mean(), 4) == best else "")
        for name, s in scores.items()
    ]
    lines.append(
        f"  (no pooling predicts a new {src.noun} with the complete-pooling fit)"
    )
    return lines


def _count(value):
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def _flag_lines(src, models, threshold, fdr):
    """The groups the partial-pooling fit flags above ``threshold`` at false
    discovery rate ``fdr``, most certain first (smallest q-value)."""
    ml = models["partial pooling"]
    try:
        flags, notes = _recorded(
            lambda: ml.flag_groups(threshold, fdr=fdr), " (--flag)"
        )
    except ValueError as exc:
        message = " ".join(str(exc).split())
        return ["", _note(f"note: --flag skipped: {message}")]
    counts = ml.group_estimates()
    lines = [
        "",
        f"Flagged (--flag): θ > {threshold:g} in partial pooling, false "
        f"discovery rate {fdr:g}",
        textwrap.fill(
            f"controls the {flags.attrs['error_rate']}",
            80,
            initial_indent="  ",
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        ),
    ]
    lines.append(
        f"  PEP = P(θ <= {threshold:g} | data), the chance a flag is false; "
        f"flagged if q <= {fdr:g}"
    )
    chosen = flags[flags["flagged"]]
    if not len(chosen):
        return [*lines, f"  no {src.noun} flagged", *notes]
    chosen = chosen.iloc[np.argsort(chosen["qvalue"].to_numpy(), kind="stable")]
    labels = [str(g)[:16] for g in chosen.index]
    lw = max(len(src.noun), *map(len, labels))
    head = f"P(θ > {threshold:g})"
    lines.append(
        f"{src.noun:>{lw}}  {'trials':>7}  {'successes':>9}  {'estimate':>8}  "
        f"{head:>{max(11, len(head))}}  {'PEP':>6}  {'q-value':>7}"
    )
    for label, (group, row) in zip(labels, chosen.iterrows()):
        lines.append(
            f"{label:>{lw}}  {_count(counts.loc[group, 'trials']):>7}  "
            f"{_count(counts.loc[group, 'successes']):>9}  {row.estimate:8.3f}  "
            f"{row.probability:{max(11, len(head))}.3f}  {row.pep:6.3f}  "
            f"{row.qvalue:7.3f}"
        )
    lines.append(f"  {len(chosen)} of {len(flags)} flagged")
    return lines + notes


def main(argv=None):
    """Fit the three pooling strategies to grouped binomial data and compare them.

    Without a file, uses the bundled rats tumour data. Prints each model's
    estimates, log-likelihood and AIC, the estimates for a few representative
    groups, and each model's cross-validated score on held-out groups (a fold
    whose training groups hold no success, or no failure, is left out with a
    note: every model predicts the same probability there). With
    ``--plot DIR``, also writes ``shrinkage.png``, ``population.png`` and
    ``caterpillar.png`` (see :mod:`skre.plotting`) into DIR and prints their paths.
    With ``--flag THRESHOLD [--fdr Q]``, also lists the groups that the
    partial-pooling fit flags as probably above THRESHOLD
    (:meth:`~skre.MultilevelBinomial.flag_groups`, Bayesian false discovery
    rate Q, default 0.05), with their counts, estimates, probabilities of
    exceeding, posterior error probabilities and q-values.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments without the program name; default ``sys.argv[1:]``.
        See ``python -m skre --help``.

    Returns
    -------
    int
        Exit code: 0 on success, 1 when skre rejects the data or cannot write the
        ``--plot`` files (the reason is printed to stderr as ``skre: error: ...``).

    Raises
    ------
    SystemExit
        With code 2 for usage errors (missing file or columns, ``--plot`` without
        matplotlib), from ``argparse``.
    """
    parser = _parser()
    args = _file_after_covariates(parser.parse_args(argv))
    src = _load(parser, args)
    if args.plot is not None:
        _check_plot(parser, args.plot)
    try:
        models, fit_notes = _fit(src)
        scores, folds, cv_notes = _cross_validate(src, models, args.folds)
    except (ValueError, TypeError) as exc:
        message = str(exc).splitlines()[0]
        if re.search(r"\brows? \d", message):
            message += (
                " (rows count from 0: the first row after the CSV header is row 0)"
            )
        print(f"skre: error: {message}", file=sys.stderr)
        return 1
    lines = [
        *_header(src, models),
        *_model_lines(src, models, args.level),
        *_tau_test_lines(models),
        *fit_notes,
        *_group_lines(src, models, args.level),
        *_score_lines(src, scores, folds),
        *cv_notes,
    ]
    if args.flag is not None:
        fdr = 0.05 if args.fdr is None else args.fdr
        lines += _flag_lines(src, models, args.flag, fdr)
    text = "\n".join(line.rstrip() for line in lines)
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except UnicodeEncodeError:
        text = text.translate(ASCII)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # e.g. `python -m skre | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if args.plot is None:
        return 0
    try:
        paths = _plots(models, args.level, args.plot)
    except OSError as exc:
        print(
            f"skre: error: cannot write plots to {args.plot}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    try:
        print("\n".join(f"plot: {path}" for path in paths), flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
