"""Sphinx configuration of the mixup-theory documentation site.

Build (offline, warnings as errors)::

    pip install -e ".[docs]"
    python -m sphinx -W -b html docs docs/_build/html

Pages generated at build time (never committed, under ``docs/_generated/``): the API reference
(one entry per name in ``theory.__all__``, grouped as ``theory/__init__.py`` groups them) and the
figure gallery (each figure's claim and verdict read from ``figures/data/NAME.json``); see
``docs/_ext/``. MathJax 3 is served from the ``django-static-mathjax`` wheel (copied into
``_static/mathjax``): no page loads a script or font from the network.
"""
from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import theory  # noqa: E402

project = "mixup-theory"
author = "the mixup-theory authors"
copyright = "2026, the mixup-theory authors"
version = release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",             # MyST Markdown pages and the executed notebook
    "mixup_site",          # generated pages (API list, gallery) and the local MathJax copy
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}  # .rst first: autosummary stubs
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "tutorial.py"]
nitpicky = False

# --- MyST
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3
myst_dmath_double_inline = True      # $$ ... $$ inside a paragraph is display math (docs/theory.md)

# --- myst-nb: render the committed, executed notebook as it is
nb_execution_mode = "off"
nb_ipywidgets_js = {}                # widget JavaScript would come from a CDN: the slider stays a static output
nb_merge_streams = True

# --- autodoc / autosummary / numpydoc
autosummary_generate = True
templates_path = ["_templates"]   # autosummary/class.rst: a class page documents its public methods
autosummary_imported_members = True
autodoc_typehints = "none"           # the numpydoc Parameters section states the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# --- math: MathJax 3 from a package, copied into _static by mixup_site
mathjax_path = "mathjax/tex-chtml.js"

# --- HTML
html_theme = "pydata_sphinx_theme"
html_title = "mixup-theory"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False
suppress_warnings = []
