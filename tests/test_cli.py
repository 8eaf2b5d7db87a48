"""The command line: ``python -m skre`` and ``skre.__main__``."""

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from skre._cli import main
from skre.datasets import load_rats

COUNTS = ["--successes", "tumours", "--trials", "rats", "--group", "lab"]


@pytest.fixture(scope="module")
def rats_output():
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def rats_csv(tmp_path):
    """The rats data with renamed columns and a batch-level covariate."""
    frame = load_rats().frame.rename(
        columns={"batch": "lab", "m": "tumours", "n": "rats"}
    )
    frame["dose"] = np.random.default_rng(0).normal(size=len(frame)).round(2)
    path = tmp_path / "rats.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _scores(out):
    """Held-out mean score of each model, from the score block."""
    return {
        name: float(v)
        for name, v in re.findall(
            r"^  (complete pooling|no pooling|partial pooling)\s+(-?\d\.\d+) ±",
            out,
            flags=re.M,
        )
    }


def test_rats_report(rats_output):
    code, out, err = rats_output
    assert code == 0 and err == ""
    assert "71 batches, 267/1739 successes" in out
    for name in ("complete pooling", "no pooling", "partial pooling"):
        assert re.search(rf"^{name}\s+-\d+\.\d\d\s+\d+\.\d\s", out, flags=re.M)
    assert "intercept -1.707; θ = 0.154" in out
    assert "b (intercept) -1.939, τ 0.674" in out
    assert "median θ 0.126, mean θ 0.144" in out
    assert "95% interval [0.037, 0.350]" in out
    # representative batches: lowest (1, 0/20), median, highest, most trials, last (71)
    rows = re.findall(r"^\s+(\d+)\s+(\d+/\d+) ", out, flags=re.M)
    assert rows == [
        ("1", "0/20"),
        ("36", "3/27"),
        ("71", "4/14"),
        ("67", "16/52"),
        ("70", "9/24"),
    ]
    assert re.search(
        r"^\s+1\s+0/20 0\.000  0\.154 \[0\.137, 0\.171\]  0\.000 \[0\.000, "
        r"0\.092\]  0\.070 \[",
        out,
        flags=re.M,
    )
    assert "5-fold GroupKFold" in out and "per rat" in out and "higher is better" in out
    scores = _scores(out)
    assert len(scores) == 3
    assert max(scores, key=scores.get) == "partial pooling"
    assert re.search(r"partial pooling\s+-0\.4\d+ ± 0\.0\d+  best$", out, flags=re.M)
    assert "note" not in out
    assert len(out.splitlines()) <= 40


def test_csv_counts_match_bundled(rats_csv, rats_output, capsys):
    path, _ = rats_csv
    assert main([str(path), *COUNTS]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rats.csv: 71 groups (column 'lab'), 267/1739 successes")
    assert _scores(out) == _scores(rats_output[1])
    assert "τ 0.674" in out and "[0.037, 0.350]" in out and "per trial" in out


def test_csv_covariate_and_options(rats_csv, capsys):
    path, _ = rats_csv
    assert (
        main(
            [
                str(path),
                *COUNTS,
                "--covariates",
                "dose",
                "--level",
                "0.9",
                "--folds",
                "3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "covariates: dose" in out
    assert re.search(r"τ \d\.\d{3}, dose -?\d\.\d{3}", out)
    assert "90% interval [" in out and ", at the covariate means" in out
    assert "3-fold GroupKFold" in out
    assert len(_scores(out)) == 3
    # with a covariate the tau = 0 test is the likelihood ratio and the score test
    assert "test of τ = 0" in out and "score test: p = " in out


def test_tau_test_is_printed_next_to_the_table(rats_output):
    code, out, _ = rats_output
    lines = out.splitlines()
    at = lines.index("test of τ = 0 (do the groups differ?)")
    assert "likelihood ratio 28.19, p = 5.51e-08" in lines[at + 1]
    assert "exact conditional test: p = 0.0001" in lines[at + 2]
    assert at < lines.index(next(x for x in lines if x.startswith("θ by batch")))


def test_binary_outcome(tmp_path, capsys):
    rats = load_rats().frame
    rows = [
        (b, int(k < m)) for b, m, n in rats.itertuples(index=False) for k in range(n)
    ]
    path = tmp_path / "binary.csv"
    path.write_text("batch,tumour\n" + "".join(f"{b},{t}\n" for b, t in rows))
    assert main([str(path), "--outcome", "tumour", "--group", "batch"]) == 0
    out = capsys.readouterr().out
    assert "71 groups (column 'batch'), 267/1739 successes" in out
    assert "success: tumour = 1" in out
    assert "τ 0.674" in out and "[0.037, 0.350]" in out


def test_fewer_groups_than_folds_and_boundary_note(tmp_path, capsys):
    path = tmp_path / "few.csv"
    path.write_text("g,m,n\na,5,30\nb,4,30\nc,6,30\n")
    assert main([str(path), "--successes", "m", "--trials", "n", "--group", "g"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "τ 0.000" in out
    assert "note: τ = 0 (a boundary fit)" in out
    assert "only 3 groups, so 3 folds" in out and "3-fold GroupKFold" in out
    assert "Warning" not in out


@pytest.mark.parametrize(
    "args, named",
    [
        (["--successes", "tumour", "--trials", "rats", "--group", "lab"], "tumour"),
        (
            [
                "--successes",
                "tumours",
                "--trials",
                "rats",
                "--group",
                "lab",
                "--covariates",
                "age",
            ],
            "age",
        ),
    ],
)
def test_missing_column(rats_csv, capsys, args, named):
    path, _ = rats_csv
    with pytest.raises(SystemExit) as info:
        main([str(path), *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"column {named!r} not in" in err
    assert "its columns are: lab, tumours, rats, dose" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope.csv", *COUNTS], "cannot read nope.csv"),
        (
            ["{csv}", "--successes", "tumours", "--trials", "rats"],
            "--group is required",
        ),
        (["{csv}", "--group", "lab"], "give --successes and --trials"),
        (["{csv}", "--outcome", "rats", *COUNTS], "either --outcome or"),
        (["--group", "lab"], "need a CSV FILE"),
        (["--level", "95"], "--level must be between 0 and 1"),
    ],
)
def test_usage_errors(rats_csv, capsys, args, message):
    path, _ = rats_csv
    with pytest.raises(SystemExit) as info:
        main([a.format(csv=path) for a in args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_data_error_is_one_line(rats_csv, capsys):
    path, frame = rats_csv
    frame.loc[[3, 5], "tumours"] = 99
    frame.to_csv(path, index=False)
    assert main([str(path), *COUNTS]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "skre: error: successes exceed trials"
    )
    assert "rows 3, 5" in lines[0] and "Traceback" not in captured.err


def test_module_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "skre", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("usage: skre")
    assert "partial pooling" in done.stdout and "--successes COL" in done.stdout


def test_ascii_terminal(monkeypatch):
    import io

    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stream)
    assert main([]) == 0
    stream.flush()
    out = buffer.getvalue().decode("ascii")
    assert "tau 0.674" in out and "-0.4195 +/- " in out
    assert "null 1/2 chi2(0) + 1/2 chi2(1)" in out


PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = ["shrinkage.png", "population.png", "caterpillar.png"]


def test_plot_writes_pngs(tmp_path, capsys):
    directory = tmp_path / "new" / "plots"  # created, parents too
    assert main(["--folds", "2", "--plot", str(directory)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for name in PLOTS:
        data = (directory / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
    assert out.splitlines()[-3:] == [f"plot: {directory / name}" for name in PLOTS]
    assert "b (intercept) -1.939, τ 0.674" in out  # the report comes first, unchanged


def test_plot_boundary_fit_and_covariates(tmp_path, rats_csv, capsys):
    few = tmp_path / "few.csv"
    few.write_text("g,m,n\na,5,30\nb,4,30\nc,6,30\n")
    assert (
        main(
            [
                str(few),
                "--successes",
                "m",
                "--trials",
                "n",
                "--group",
                "g",
                "--plot",
                str(tmp_path / "few"),
            ]
        )
        == 0
    )
    path, _ = rats_csv
    assert (
        main(
            [
                str(path),
                *COUNTS,
                "--covariates",
                "dose",
                "--folds",
                "2",
                "--plot",
                str(tmp_path / "dose"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    for sub in ("few", "dose"):
        for name in PLOTS:
            assert (tmp_path / sub / name).read_bytes().startswith(PNG)


def test_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(SystemExit) as info:
        main(["--plot", str(tmp_path / "plots")])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--plot requires matplotlib: pip install matplotlib" in captured.err
    assert not (tmp_path / "plots").exists()


def test_plot_into_a_file(tmp_path, capsys):
    path = tmp_path / "taken"
    path.write_text("")
    with pytest.raises(SystemExit) as info:
        main(["--plot", str(path)])
    assert info.value.code == 2
    assert "--plot needs a directory" in capsys.readouterr().err


@pytest.mark.parametrize("rows", ["a,3,10\n", "a,3,10\na,4,12\n"])
def test_one_group_skips_the_tau_test(tmp_path, capsys, rows):
    """With one group every simulated table ties with the observed one: the
    exact test's p-value was its random tie-break (issue 22, item 4)."""
    path = tmp_path / "one.csv"
    path.write_text("g,m,n\n" + rows)
    assert main([str(path), "--successes", "m", "--trials", "n", "--group", "g"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "note: the test of τ = 0 needs at least 2 groups; skipped" in out
    assert "exact conditional test" not in out and "likelihood ratio" not in out
    assert "note: cross-validation needs at least 2 groups; skipped" in out


def test_exact_test_with_every_simulated_table_tied_is_skipped(tmp_path, capsys):
    """Four groups of one trial and two successes: every table is a
    permutation of (1, 1, 0, 0), of the same dispersion, so every simulation
    ties."""
    path = tmp_path / "four.csv"
    path.write_text("g,m,n\na,1,1\nb,1,1\nc,0,1\nd,0,1\n")
    assert main([str(path), "--successes", "m", "--trials", "n", "--group", "g"]) == 0
    out = capsys.readouterr().out
    assert "exact conditional test: skipped, every simulated table ties" in out
    assert "likelihood ratio" in out  # the large-sample test is still shown


def _rare_events(tmp_path, counts):
    """Binary rows of groups ``{label: (successes, trials)}``."""
    rows = [(g, int(k < m)) for g, (m, n) in counts.items() for k in range(n)]
    path = tmp_path / "rare.csv"
    path.write_text("g,y\n" + "".join(f"{g},{t}\n" for g, t in rows))
    return path, rows


def test_fold_with_one_class_is_left_out_of_the_scores(tmp_path, capsys):
    """Only group e has successes: the fold that holds it out trains on
    failures alone, which binary labels cannot fit ('y contains only one
    class' stopped the CLI; issue 22, item 8). It is left out, with a note."""
    from sklearn.model_selection import GroupKFold

    counts = {"a": (0, 10), "b": (0, 12), "c": (0, 8), "d": (0, 9), "e": (5, 10)}
    counts["f"] = (0, 7)
    path, rows = _rare_events(tmp_path, counts)
    assert main([str(path), "--outcome", "y", "--group", "g", "--folds", "3"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "Held-out score (2 of 3 GroupKFold folds, mean ± sd" in out
    assert re.search(
        r"note: fold \d of 3 not scored: the training groups hold no success", out
    )
    # complete pooling's held-out score, by hand: each kept fold's training
    # proportion p scores m log p + (n - m) log(1 - p) per held-out trial
    groups = np.array([g for g, _ in rows])
    y = np.array([t for _, t in rows])
    folds = []
    for train, test in GroupKFold(n_splits=3).split(y, y, groups):
        p = y[train].mean()
        if 0 < p < 1:
            folds.append(np.mean(np.where(y[test] == 1, np.log(p), np.log1p(-p))))
    assert len(folds) == 2
    assert _scores(out)["complete pooling"] == pytest.approx(np.mean(folds), abs=1e-4)


def test_too_few_folds_with_both_classes_skip_cross_validation(tmp_path, capsys):
    path, _ = _rare_events(tmp_path, {"a": (3, 10), "b": (0, 10)})
    assert main([str(path), "--outcome", "y", "--group", "g"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "Held-out score" not in out
    assert "note: fold 1 of 2 not scored" in out or "note: fold 2 of 2" in out
    assert "note: cross-validation skipped: fewer than 2 folds" in out


# -- issue 23 ("First contact"), CLI items ------------------------------------------
def test_covariates_may_come_before_the_file(rats_csv, capsys):
    """``--covariates dose FILE.csv``: argparse's list took FILE.csv as a column
    and the CLI stopped with 'need a CSV FILE'."""
    path, _ = rats_csv
    assert main([str(path), *COUNTS, "--covariates", "dose", "--folds", "3"]) == 0
    after = capsys.readouterr().out
    assert main(["--covariates", "dose", str(path), *COUNTS, "--folds", "3"]) == 0
    before = capsys.readouterr().out
    assert before == after and "covariates: dose" in before


def test_dropped_covariate_is_na_and_notes_are_whole(rats_csv, capsys):
    """A covariate constant within batches is dropped by no pooling: its line
    said 'dose 0.000' (summary() shows NA), and the note stopped mid-sentence."""
    path, frame = rats_csv
    frame["dose"] = frame["lab"] % 3  # one value per batch
    frame.to_csv(path, index=False)
    assert main([str(path), *COUNTS, "--covariates", "dose", "--folds", "3"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("no pooling"))
    assert line.endswith("71 group intercepts, dose NA")
    complete = next(x for x in out.splitlines() if x.startswith("complete pooling"))
    assert re.search(r"dose -?\d\.\d{3}$", complete)  # identified there
    notes = re.findall(r"^note.*?(?=\n\S|\Z)", out, flags=re.M | re.S)
    assert notes and all(len(x) <= 80 for n in notes for x in n.splitlines())
    note = " ".join(notes[0].split())
    assert "…" not in out and note.startswith("note: NoPoolingBinomial: covariate")
    assert note.endswith(
        "it is dropped from the fit (coefficient 0). Remove it to silence this warning."
    )


def test_version(capsys):
    import skre

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"skre {skre.__version__}\n"
    done = subprocess.run(
        [sys.executable, "-m", "skre", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == f"skre {skre.__version__}\n"


# -- issue 24: --flag THRESHOLD [--fdr Q] --------------------------------------------
FLAG_ROW = re.compile(
    r"^\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d\.\d{3})\s+(\d\.\d{3})\s+(\d\.\d{3})\s+(\d\.\d{3})$"
)


def _flag_rows(out):
    """The rows of the --flag block: label, trials, successes and the numbers."""
    block = out[out.index("Flagged (--flag)") :]
    return [
        (g, int(n), int(m), *map(float, rest))
        for g, n, m, *rest in (
            FLAG_ROW.match(x).groups() for x in block.splitlines() if FLAG_ROW.match(x)
        )
    ]


def _expected_flags(counts, b, tau, threshold, fdr):
    """Each group's P(theta > c | data) at the fitted b and tau, by quad over its
    effect's exact conditional (binomial likelihood times N(0, tau^2)); the
    conditional mode's theta; PEPs, and q-values as running means of the
    sorted PEPs. Returns the flagged rows, smallest q-value first."""
    from scipy import integrate, optimize, stats
    from scipy.special import expit, logit

    cut = logit(threshold) - b
    rows = []
    for label, (m, n) in counts.items():

        def post(x, m=m, n=n):
            return stats.binom.pmf(m, n, expit(b + x)) * stats.norm.pdf(x, 0, tau)

        total = integrate.quad(post, -np.inf, np.inf, epsabs=1e-14)[0]
        above = integrate.quad(post, cut, np.inf, epsabs=1e-14)[0]
        mode = optimize.minimize_scalar(
            lambda x, m=m, n=n: -np.log(post(x)), bounds=(-8, 8), method="bounded"
        ).x
        rows.append((label, n, m, expit(b + mode), above / total))
    frame = pd.DataFrame(
        rows, columns=["label", "trials", "successes", "estimate", "probability"]
    )
    frame["pep"] = 1 - frame["probability"]
    frame = frame.sort_values("pep", kind="stable")
    frame["qvalue"] = frame["pep"].cumsum() / np.arange(1, len(frame) + 1)
    return frame[frame["qvalue"] <= fdr]


def _check_flags(out, frame, group, threshold, fdr):
    from skre import MultilevelBinomial

    counts = frame.groupby(group)[["tumours", "rats"]].sum()
    ml = MultilevelBinomial(group=group).fit(frame[[group]], frame[["tumours", "rats"]])
    expected = _expected_flags(
        {g: (int(r.tumours), int(r.rats)) for g, r in counts.iterrows()},
        ml.intercept_,
        ml.tau_,
        threshold,
        fdr,
    )
    rows = _flag_rows(out)
    assert [r[0] for r in rows] == [str(g) for g in expected["label"]]
    for row, (_, want) in zip(rows, expected.iterrows()):
        assert row[1:3] == (want.trials, want.successes)
        assert_allclose(
            row[3:],
            [want.estimate, want.probability, want.pep, want.qvalue],
            atol=5.1e-4,
        )
    return expected


def test_flag_rats(capsys):
    assert main(["--folds", "2", "--flag", "0.15"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    at = lines.index(
        "Flagged (--flag): θ > 0.15 in partial pooling, false discovery rate 0.05"
    )
    assert at > lines.index(next(x for x in lines if x.startswith("Held-out score")))
    block = " ".join(" ".join(lines[at + 1 : at + 5]).split())
    assert block.startswith(
        "controls the Bayesian FDR: the expected share of false flags among the "
        "flagged groups, given the data and the model"
    )
    assert (
        "PEP = P(θ <= 0.15 | data), the chance a flag is false; flagged if q <= 0.05"
        in out
    )
    assert re.search(
        r"^batch\s+trials\s+successes\s+estimate\s+P\(θ > 0\.15\)\s+PEP\s+q-value$",
        out,
        flags=re.M,
    )
    frame = load_rats().frame.rename(columns={"m": "tumours", "n": "rats"})
    expected = _check_flags(out, frame, "batch", 0.15, 0.05)
    assert list(expected["label"]) == [69, 68, 67, 70, 58, 57]
    assert lines[-1] == "  6 of 71 flagged"
    assert all(len(x) <= 80 for x in lines[at:])


@pytest.mark.slow  # 2.4 s: the whole CLI on a CSV; test_flag_rats stays quick
def test_flag_csv_with_fdr_and_none_flagged(rats_csv, capsys):
    path, frame = rats_csv
    assert (
        main([str(path), *COUNTS, "--folds", "2", "--flag", "0.2", "--fdr", "0.1"]) == 0
    )
    out = capsys.readouterr().out
    assert "θ > 0.2 in partial pooling, false discovery rate 0.1" in out
    assert re.search(r"^group\s+trials\s+successes", out, flags=re.M)
    expected = _check_flags(out, frame, "lab", 0.2, 0.1)
    assert list(expected["label"]) == [69, 68, 67]
    assert out.splitlines()[-1] == "  3 of 71 flagged"
    assert main([str(path), *COUNTS, "--folds", "2", "--flag", "0.4"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "  no group flagged"
    assert not _flag_rows(out)


def test_flag_on_data_without_successes_is_a_note(tmp_path, capsys):
    path = tmp_path / "zero.csv"
    path.write_text("g,m,n\na,0,10\nb,0,12\nc,0,9\n")
    args = [str(path), "--successes", "m", "--trials", "n", "--group", "g"]
    assert main([*args, "--flag", "0.2"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    note = " ".join(out[out.index("note: --flag skipped") :].split())
    assert note.startswith(
        "note: --flag skipped: every trial in the training data is a failure"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--flag", "0"], "--flag must be a success probability between 0 and 1"),
        (["--flag", "1"], "--flag must be a success probability between 0 and 1"),
        (["--flag", "1.5"], "(exclusive); got 1.5"),
        (["--flag", "nan"], "--flag must be a success probability"),
        (["--flag", "abc"], "argument --flag: invalid float value: 'abc'"),
        (["--flag", "0.2", "--fdr", "0"], "--fdr must be a rate between 0 and 1"),
        (["--flag", "0.2", "--fdr", "1.2"], "(exclusive); got 1.2"),
        (["--fdr", "0.1"], "--fdr is the false discovery rate of --flag; give --flag"),
    ],
)
def test_flag_usage_errors(capsys, args, message):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_flag_treats_identical_batches_alike(capsys):
    assert main(["--folds", "2", "--flag", "0.2", "--fdr", "0.2"]) == 0
    flagged = {row[0] for row in _flag_rows(capsys.readouterr().out)}
    assert len(flagged & {"64", "65", "66"}) in (0, 3)
