"""Sphinx configuration for skre's documentation.

Build (from the repository root, after ``pip install ".[docs]"``)::

    python -m sphinx -W -b html docs docs/_build/html

Intersphinx links to numpy, scipy, pandas, scikit-learn and matplotlib need
their ``objects.inv`` from the web. Without network the build must still pass
with ``-W``, so:

- ``SKRE_DOCS_OFFLINE=1`` turns intersphinx off and tries no network at all
  (CI sets it);
- otherwise each inventory is downloaded (10 s timeout; cached for a day in
  the temporary directory) before Sphinx starts; an inventory that cannot be
  fetched is left out with a note on stderr (references to it are then plain
  text) instead of a warning that ``-W`` would turn into an error;
- ``SKRE_DOCS_OFFLINE=0`` insists on every inventory: an unreachable one is an
  error.
"""

import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from numpydoc.xref import DEFAULT_LINKS

import skre

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# -- Project -----------------------------------------------------------------

project = "skre"
author = "the skre developers"
copyright = f"2024-{time.gmtime().tm_year}, {author}"
release = skre.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.json",
    "auto_examples/*.md5",
    "sg_execution_times.rst",
]
templates_path = ["_templates"]
default_role = "code"
pygments_style = "sphinx"

# -- autodoc / autosummary / numpydoc ----------------------------------------

autosummary_generate = True
# Methods of the class and its skre mixin; scikit-learn's metadata-routing
# boilerplate (its docstrings use scikit-learn's own glossary) is left out.
autodoc_default_options = {
    "members": True,
    "inherited-members": True,
    "member-order": "groupwise",
    "exclude-members": "set_fit_request, set_score_request, get_metadata_routing",
}
autodoc_typehints = "none"

# numpydoc renders Parameters/Returns/Attributes and the class method table;
# types are linked where they resolve (via intersphinx when online).
numpydoc_show_class_members = False  # autodoc documents the members in full
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = True
numpydoc_xref_ignore = {
    "of",
    "shape",
    "or",
    "default",
    "optional",
    "n_groups",
    "n_covariates",
    "n_rows",
    "n_features",
    "n_samples",
    "n_classes",
    "n_outputs",
    "estimator",
    "prior",
    "object",
}
numpydoc_xref_aliases = {
    "DataFrame": "pandas.DataFrame",
    "Series": "pandas.Series",
    "ndarray": "numpy.ndarray",
    "Bunch": "sklearn.utils.Bunch",
    "RandomState": "numpy.random.RandomState",
    "Axes": "matplotlib.axes.Axes",
    "Figure": "matplotlib.figure.Figure",
    "LogitNormal": "skre.LogitNormal",
    "Summary": "skre._summary.Summary",
}

# -- sphinx-gallery ----------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reference_url": {"skre": None},
    "doc_module": ("skre",),
    "backreferences_dir": "generated/backreferences",
    "show_memory": False,
    "write_computation_times": False,
}

# -- matplotlib plot directive (figures in the user guide) ---------------------

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.figsize": (6.4, 4.2)}
plot_apply_rcparams = True

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skre {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # the wide comparison tables get the full width
    "secondary_sidebar_items": {
        "**": ["page-toc"],
        "index": [],
        "lme4": [],
        "statsmodels": [],
    },
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {page: [] for page in ("index", "install", "lme4", "statsmodels")}
html_show_sourcelink = False

# -- intersphinx (optional, see the module docstring) -------------------------

_INVENTORIES = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "pandas": "https://pandas.pydata.org/docs/",
    "sklearn": "https://scikit-learn.org/stable/",
    "matplotlib": "https://matplotlib.org/stable/",
}


def _intersphinx_mapping():
    """``intersphinx_mapping`` with only the inventories we could download."""
    mode = os.environ.get("SKRE_DOCS_OFFLINE", "").strip().lower()
    if mode in {"1", "true", "yes", "on"}:
        print(
            "skre docs: SKRE_DOCS_OFFLINE is set; intersphinx is off.", file=sys.stderr
        )
        return {}
    strict = mode in {"0", "false", "no", "off"}
    cache = Path(tempfile.gettempdir()) / "skre-docs-intersphinx"
    cache.mkdir(exist_ok=True)
    mapping, missing = {}, []
    for name, url in _INVENTORIES.items():
        path = cache / f"{name}.inv"
        if not path.exists() or time.time() - path.stat().st_mtime > 86400:
            try:
                with urllib.request.urlopen(url + "objects.inv", timeout=10) as resp:
                    data = resp.read()
                path.write_bytes(data)
            except Exception as err:  # no network, DNS failure, HTTP error, timeout
                if not path.exists():  # a stale copy is better than none
                    missing.append(f"{name} ({type(err).__name__}: {err})")
                    continue
        mapping[name] = (url, str(path))
    if missing:
        msg = "skre docs: intersphinx inventories not reachable: " + "; ".join(missing)
        if strict:
            from sphinx.errors import ConfigError

            raise ConfigError(msg + " (SKRE_DOCS_OFFLINE=0 requires all of them)")
        print(msg + ". Links to them are left as plain text.", file=sys.stderr)
    return mapping


intersphinx_mapping = _intersphinx_mapping()
intersphinx_timeout = 10

# numpydoc's default type aliases point into the Python and NumPy docs
# (":class:`python:int`", ":term:`numpy:array_like`"); without those inventories
# they would render as "python:int" or warn. Offline, alias them to plain
# targets instead: unresolved :obj: references render as text, silently.
_PLAIN_TYPES = {
    "array-like": "numpy.typing.ArrayLike",
    "array_like": "numpy.typing.ArrayLike",
    "boolean": "bool",
    "string": "str",
}
for _key, _link in DEFAULT_LINKS.items():
    if any(
        f"{p}:" in _link and p not in intersphinx_mapping for p in ("python", "numpy")
    ):
        numpydoc_xref_aliases.setdefault(_key, _PLAIN_TYPES.get(_key, _key))


# -- Optional pages ----------------------------------------------------------


def _optional_toctree_entries(app, docname, source):
    """Put ``validation`` in the Reference toctree only once the page exists
    (it is written separately; a toctree entry for a missing page is a
    warning, which -W makes an error)."""
    if docname != "index":
        return
    entry = "   validation\n" if (HERE / "validation.rst").exists() else ""
    source[0] = source[0].replace("   .. optional: validation\n", entry)


def setup(app):
    app.connect("source-read", _optional_toctree_entries)
