"""Sphinx configuration of the lni_geometry documentation site.

Build it (the ``docs`` extra installs what it needs; no network is used)::

    python -m pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

``tests/test_docs.py`` runs the same build, warnings as errors, in the test suite.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package of this checkout

import lni_geometry  # noqa: E402

project = "lni_geometry"
author = "lni_geometry developers"
copyright = "2026, lni_geometry developers"
version = release = lni_geometry.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]

# --- API reference: autosummary pages from the docstrings --------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # a module's public names are its __all__
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # the numpydoc sections state the types
add_module_names = False

numpydoc_show_class_members = False  # methods are listed by the class template
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# a docstring numpydoc cannot parse is an error (with -W): check the sections it knows
numpydoc_validation_checks = set()

# --- notebooks (myst-nb): executed at build time, at the sizes of their first cell ----------
nb_execution_mode = "cache"  # executed once per build folder, reused while unchanged
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
# the build must work offline: no intersphinx, no remote images
suppress_warnings = ["mystnb.unknown_mime_type"]

# --- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"lni_geometry {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    # the notebooks get the width for their code and figures
    "secondary_sidebar_items": {"[!n]*": ["page-toc"], "generated/*": ["page-toc"], "notebooks/*": []},
}
# pages without sub-pages get the whole width (no empty section navigation)
html_sidebars = {page: [] for page in ("index", "getting_started", "benchmarks", "changelog", "contributing")}

# Math: MathJax from the docs extra (jupyter-server-mathjax ships MathJax 2), so that the
# pages show their formulas without a network; without it, Sphinx's default (a CDN).
try:
    import jupyter_server_mathjax
except ImportError:  # pragma: no cover - the docs extra installs it
    pass
else:
    html_static_path.append(os.path.join(os.path.dirname(jupyter_server_mathjax.__file__), "static"))
    mathjax_path = "MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
    mathjax2_config = {
        "messageStyle": "none",
        "tex2jax": {
            "inlineMath": [["\\(", "\\)"]],
            "displayMath": [["\\[", "\\]"]],
            "processRefs": False,
            "processEnvironments": False,
            "processClass": "tex2jax_process|mathjax_process|math|output_area",
        },
        # the package ships the STIX web fonts only (not MathJax's TeX fonts)
        "HTML-CSS": {"availableFonts": [], "webFont": "STIX-Web", "imageFont": None},
    }
# names in a module's __all__ that have a section of their own in api.rst
autosummary_context = {"skip": ["__version__", "theory"]}


# --- broken references ----------------------------------------------------------------------
# The docstrings also name internal functions and modules that have no page of their own
# (kernels, validation, ...): Sphinx leaves those as plain text. A reference to a name of
# the package that does not exist at all (a typo, a renamed function) is a warning, and
# with -W an error.
import importlib  # noqa: E402
import inspect  # noqa: E402
import re  # noqa: E402

from sphinx.util import logging as _logging  # noqa: E402

_log = _logging.getLogger("lni_geometry.docs")


def _exists(dotted):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name) and not _instance_attribute(obj, name):
                return False
            obj = getattr(obj, name, None)
        return True
    return False


def _instance_attribute(cls, name):
    """``name`` is an attribute that instances of the class ``cls`` get: annotated,
    documented in its docstring, or set as ``self.name`` in its source."""
    if not isinstance(cls, type):
        return False
    if name in getattr(cls, "__annotations__", {}) or re.search(rf"\b{name}\b", cls.__doc__ or ""):
        return True
    for klass in cls.__mro__:
        try:
            if f"self.{name}" in inspect.getsource(klass):
                return True
        except (OSError, TypeError):
            continue
    return False


def _missing_reference(app, env, node, contnode):
    target = node.get("reftarget", "")
    if node.get("refdomain") == "py" and target.split(".")[0] == "lni_geometry" and not _exists(target):
        _log.warning("reference to %r: no such name in the package", target, location=node,
                     type="ref", subtype="lni_geometry")
    return None


def setup(app):
    app.connect("missing-reference", _missing_reference)
