"""The project's own files agree with each other (issue 23, "First contact").

Checked from the sources, without building anything: the version is written
once and the changelog matches it; the documentation renders its formulas
from files it ships (no network) and keeps TeX out of section titles, which
become the tables of contents; the README, the install page and
CONTRIBUTING name one docs output folder, and CONTRIBUTING the commands that
check a change.
"""

import re
from pathlib import Path

import pytest

import skre

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(
    not (DOCS / "conf.py").exists(), reason="needs the source tree, not an install"
)


def _rst_files():
    return sorted(p for p in DOCS.rglob("*.rst") if not _generated(p))


def _generated(path):
    parts = path.relative_to(DOCS).parts
    return parts[0] in {"_build", "auto_examples", "generated", "_includes"}


def test_version_is_written_once():
    pyproject = (ROOT / "pyproject.toml").read_text()
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, re.M), "a second version"
    assert re.search(r'^dynamic\s*=\s*\[\s*"version"\s*\]', project, re.M)
    assert re.search(r'version\s*=\s*\{\s*attr\s*=\s*"skre.__version__"', pyproject)
    # PEP 440: a release N.N.N, or the next one with .devN between releases
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", skre.__version__)


def test_changelog_is_dated_and_matches_the_version():
    text = (DOCS / "changelog.rst").read_text()
    headings = re.findall(r"^(\d+\.\d+\.\d+) \((.+)\)\n=+$", text, re.M)
    assert headings, "no version headings like '0.2.0 (2026-01-31)'"
    (latest, when), *released = headings
    release, _, dev = skre.__version__.partition(".dev")
    assert latest == release
    assert (when == "unreleased") == bool(dev), (latest, when, skre.__version__)
    for version, date in released:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date), (version, date)


def test_mathjax_is_shipped_with_the_docs():
    conf = (DOCS / "conf.py").read_text()
    path = re.search(r'^mathjax_path\s*=\s*"([^"]+)"', conf, re.M)
    assert path, "mathjax_path unset: Sphinx would load MathJax from a CDN"
    assert "://" not in path.group(1)
    assert re.search(r'^html_static_path\s*=\s*\[\s*"_static"\s*\]', conf, re.M)
    mathjax = DOCS / "_static" / path.group(1)
    assert mathjax.is_file()
    # tex-chtml.js loads its fonts relative to itself
    fonts = mathjax.parent / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file()
    assert (mathjax.parent / "LICENSE").is_file()


def test_section_titles_hold_no_tex():
    underline = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")
    bad = []
    for path in _rst_files():
        lines = path.read_text().splitlines()
        for k in range(1, len(lines)):
            title = lines[k - 1]
            if underline.match(lines[k]) and title.strip() and ":math:" in title:
                bad.append(f"{path.relative_to(ROOT)}:{k}: {title}")
    assert not bad, "TeX in section titles (the TOC shows it raw):\n" + "\n".join(bad)


def test_one_docs_output_folder():
    """README, install page, CONTRIBUTING and conf.py build into one folder
    and say which file to open (the README said docs/_build, install.rst
    docs/_build/html)."""
    command = "python -m sphinx -n -W -b html docs docs/_build/html"
    for name in ("README.md", "docs/install.rst", "CONTRIBUTING.rst", "docs/conf.py"):
        text = (ROOT / name).read_text()
        outputs = set(re.findall(r"-b html docs ([\w/.]+)", text))
        assert outputs == {"docs/_build/html"}, (name, outputs)
        assert command in text, name
        assert "docs/_build/html/index.html" in text, name


def test_contributing_says_how_to_check_a_change():
    text = (ROOT / "CONTRIBUTING.rst").read_text()
    for command in (
        'python -m pytest -m "not slow"',
        "python -m pytest\n",
        "ruff check . && ruff format --check .",
        '--doctest-glob="*.rst" docs',
        "benchmarks/README.md",
        "python benchmarks/bench_fit.py",
        "python benchmarks/bench_peers.py",
    ):
        assert command in text, command
    # the docs page is the same file
    assert "include:: ../CONTRIBUTING.rst" in (DOCS / "contributing.rst").read_text()
