"""Sphinx configuration for skre's documentation.

Build (from the repository root, after ``pip install ".[docs]"``)::

    SKRE_DOCS_OFFLINE=1 python -m sphinx -n -W -b html docs docs/_build/html

and open ``docs/_build/html/index.html``. ``-n`` reports every cross-reference
that does not resolve and ``-W`` makes that an error, so the build is strict
about links. Links into the numpy, scipy, pandas, scikit-learn, matplotlib
and Python documentation go through intersphinx:

- ``SKRE_DOCS_OFFLINE=1`` uses only the small inventories shipped in
  ``docs/_intersphinx/`` (the targets these pages use) and tries no network
  (CI sets it); the links still point at the projects' online pages;
- otherwise each project's full inventory is downloaded (10 s timeout;
  cached for a day in the temporary directory), and the shipped one stands in
  for any that cannot be fetched, with a note on stderr;
- ``SKRE_DOCS_OFFLINE=0`` insists on downloading every inventory: an
  unreachable one is an error.
"""

import os
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

import skre

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "sphinxext"))  # the gallery's reading order

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
    "sphinx.ext.viewcode",  # [source] links on the API pages, offline
    "numpydoc",
    "sphinx_copybutton",
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
# Methods of the class and its skre mixin. scikit-learn's metadata-routing
# boilerplate (its docstrings use scikit-learn's own glossary) is left out
# where it is inherited, kept where skre defines it (JointLogScore); see setup().
autodoc_default_options = {
    "members": True,
    "inherited-members": True,
    "member-order": "groupwise",
}
_SKLEARN_ROUTING = {"set_fit_request", "set_score_request", "get_metadata_routing"}
autodoc_typehints = "none"
# the right sidebar of an API page lists "fit()", not "MultilevelBinomial.fit()"
toc_object_entries_show_parents = "hide"

# numpydoc renders Parameters/Returns/Attributes and the class method table;
# types are linked where they resolve (via intersphinx when online).
numpydoc_show_class_members = False  # autodoc documents the members in full
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = True
numpydoc_xref_ignore = {
    # types not in the offline inventories of docs/_intersphinx
    "Index",
    "LineCollection",
    "of",
    "shape",
    "or",
    "default",
    "optional",
    "n_groups",
    "trials",
    "n_covariates",
    "n_effects",
    "formulaic.ModelSpec",
    "n_rows",
    "n_features",
    "n_samples",
    "n_classes",
    "n_outputs",
    "n_sims",
    "estimator",
    "estimators",
    "splitter",
    "prior",
    "fitted",
}
numpydoc_xref_aliases = {
    "DataFrame": "pandas.DataFrame",
    "Series": "pandas.Series",
    "ndarray": "numpy.ndarray",
    "Bunch": "sklearn.utils.Bunch",
    "MetadataRequest": "sklearn.utils.metadata_routing.MetadataRequest",
    "RandomState": "numpy.random.RandomState",
    "Axes": "matplotlib.axes.Axes",
    "Figure": "matplotlib.figure.Figure",
    "Line2D": "matplotlib.lines.Line2D",
    "Patch": "matplotlib.patches.Patch",
    "PathCollection": "matplotlib.collections.PathCollection",
    "PolyCollection": "matplotlib.collections.PolyCollection",
    "ErrorbarContainer": "matplotlib.container.ErrorbarContainer",
    "Annotation": "matplotlib.text.Annotation",
    "LogitNormal": "skre.LogitNormal",
    "TestResult": "skre.TestResult",
    "CompletePoolingBinomial": "skre.CompletePoolingBinomial",
    "NoPoolingBinomial": "skre.NoPoolingBinomial",
    "MultilevelBinomial": "skre.MultilevelBinomial",
    "Normal": "skre.priors.Normal",
    "Flat": "skre.priors.Flat",
    "Summary": "skre._summary.Summary",
    "JointLogScore": "skre.metrics.JointLogScore",
}

# -- sphinx-gallery ----------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    # a newcomer's order: the three strategies first (see sphinxext/)
    "within_subsection_order": "skre_gallery.ReadingOrder",
    "minigallery_sort_order": "skre_gallery.minigallery_order",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reference_url": {"skre": None},
    "doc_module": ("skre",),
    "backreferences_dir": "generated/backreferences",
    "show_memory": False,
    "write_computation_times": False,
    # print() output is shown; the value of a block's last expression (a
    # Display object, a Legend) is not
    "capture_repr": (),
    # every figure also at twice the resolution, for high-density screens
    "image_srcset": ["2x"],
}

# -- sphinx-copybutton ---------------------------------------------------------

# copy the code of a doctest without its prompts and without its output
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

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
html_static_path = ["_static"]
# Formulas render without a network: MathJax 3.2.2 (TeX input, CommonHTML
# output and its fonts) is shipped in _static/mathjax/ (see README.txt there),
# instead of Sphinx's default, a CDN that offline readers cannot reach.
mathjax_path = "mathjax/tex-chtml.js"
# wider text column, wrapped printed output, wrapping right sidebar
html_css_files = ["skre.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # the wide comparison tables get the full width
    "secondary_sidebar_items": {
        "**": ["page-toc"],
        "index": [],
        "lme4": [],
        "statsmodels": [],
        "glossary": [],
    },
    # the header: Installation, User guide, Examples, Coming from lme4,
    # Coming from statsmodels, FAQ, API reference (index.rst's toctrees, in
    # their order); Glossary and the About pages under "More"
    "header_links_before_dropdown": 7,
    # room for them: the search is a button in the header's end (Ctrl+K too)
    "navbar_persistent": [],
    "navbar_end": ["search-button", "theme-switcher"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {
    page: []
    for page in (
        "index",
        "install",
        "lme4",
        "statsmodels",
        "faq",
        "glossary",
        "changelog",
        "citing",
        "contributing",
    )
}
html_show_sourcelink = False

# -- intersphinx (see the module docstring) ------------------------------------

_INVENTORIES = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "pandas": "https://pandas.pydata.org/docs/",
    "sklearn": "https://scikit-learn.org/stable/",
    "matplotlib": "https://matplotlib.org/stable/",
}


def _shipped_inventory(name, cache):
    """Compile ``docs/_intersphinx/<name>.txt`` into a Sphinx ``objects.inv``."""
    lines = [
        line
        for line in (HERE / "_intersphinx" / f"{name}.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {name}\n# Version: shipped with skre\n"
        "# The remaining of this file is compressed using zlib.\n"
    )
    path = cache / f"{name}-shipped.inv"
    path.write_bytes(
        header.encode() + zlib.compress(("\n".join(lines) + "\n").encode())
    )
    return str(path)


def _intersphinx_mapping():
    """``intersphinx_mapping``: downloaded inventories, or the shipped ones."""
    mode = os.environ.get("SKRE_DOCS_OFFLINE", "").strip().lower()
    offline = mode in {"1", "true", "yes", "on"}
    strict = mode in {"0", "false", "no", "off"}
    cache = Path(tempfile.gettempdir()) / "skre-docs-intersphinx"
    cache.mkdir(exist_ok=True)
    mapping, missing = {}, []
    for name, url in _INVENTORIES.items():
        path = cache / f"{name}.inv"
        if not offline and (
            not path.exists() or time.time() - path.stat().st_mtime > 86400
        ):
            try:
                with urllib.request.urlopen(url + "objects.inv", timeout=10) as resp:
                    data = resp.read()
                path.write_bytes(data)
            except Exception as err:  # no network, DNS failure, HTTP error, timeout
                if not path.exists():  # a stale copy is better than none
                    missing.append(f"{name} ({type(err).__name__}: {err})")
        if offline or not path.exists():
            mapping[name] = (url, _shipped_inventory(name, cache))
        else:
            mapping[name] = (url, str(path))
    if offline:
        print(
            "skre docs: SKRE_DOCS_OFFLINE is set; shipped inventories.", file=sys.stderr
        )
    if missing:
        msg = "skre docs: intersphinx inventories not reachable: " + "; ".join(missing)
        if strict:
            from sphinx.errors import ConfigError

            raise ConfigError(msg + " (SKRE_DOCS_OFFLINE=0 requires all of them)")
        print(msg + ". The shipped ones stand in.", file=sys.stderr)
    return mapping


intersphinx_mapping = _intersphinx_mapping()
intersphinx_timeout = 10


# -- Setup ---------------------------------------------------------------------


def _skip_sklearn_routing(app, what, name, obj, skip, options):
    """Leave out scikit-learn's metadata-routing methods unless skre defines them."""
    if name in _SKLEARN_ROUTING:
        return not getattr(obj, "__module__", "").startswith("skre")
    return None


def _api_pages_end_in_themselves(app, pagename, templatename, context, doctree):
    """Keep the generated API pages out of the other pages' prev/next links.

    The API reference's generated pages (one per class or function) sit
    between the FAQ and the glossary in the reading order, so the glossary's
    "Previous" was SeparationWarning. A page outside them whose neighbour is
    one of them points at the API reference's index instead (the index
    itself still leads into them), and the last of them has no "Next".
    """

    inside = pagename.startswith("generated/")

    def generated(link):  # links are relative to the page
        if not link:
            return False
        if inside:
            return not link["link"].startswith("../")
        return link["link"].startswith("generated/")

    for key in ("prev", "next"):
        link = context.get(key)
        if inside and key == "next" and link and not generated(link):
            context[key] = None
        elif not inside and pagename != "api" and generated(link):
            context[key] = {
                "link": app.builder.get_relative_uri(pagename, "api"),
                "title": app.env.titles["api"].astext(),
            }


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_routing)
    app.connect("html-page-context", _api_pages_end_in_themselves)
