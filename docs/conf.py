"""Sphinx configuration for interpolants (built with -W: warnings are errors).

``make docs`` builds the HTML site (running the gallery in ``../examples``) and then runs the
``.. doctest::`` blocks of the pages with the doctest builder, and ``docs/check_site.py``
checks the internal links and the rendering of the built pages. Nothing is fetched from the
network, at build time (no intersphinx: CI reaches only the package index) or when a page is
read (MathJax is copied into the site).
"""

import sys
from pathlib import Path

import interpolants

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "interpolants"
author = "The interpolants developers"
copyright = "2026, The interpolants developers"
release = interpolants.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served with the site: no CDN needed to read the math
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
    "interpolants_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_ext", "auto_examples/*.ipynb", "auto_examples/*.py"]
nitpicky = False

# --- autodoc -----------------------------------------------------------------------------
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# jaxtyping annotations render as their shape strings.
autodoc_type_aliases = {
    "State": "interpolants._types.State",
    "TimeLike": "interpolants._types.TimeLike",
}

# --- doctest: only the explicit ``.. doctest::`` blocks of the pages -------------------------
# (the docstrings' examples run under pytest --doctest-modules in ``make test``)
doctest_test_doctest_blocks = ""
doctest_global_setup = "import torch\ntorch.set_num_threads(1)"

# --- Markdown pages (the changelog and the benchmark tables) -------------------------------
myst_heading_anchors = 3
myst_enable_extensions: list[str] = []

# --- the gallery ---------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",  # run every example on every build
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib", "interpolants_docs.reset_torch"),
    "abort_on_example_error": False,  # report every failing example, then fail the build
    "remove_config_comments": True,
    "download_all_examples": False,
    "min_reported_time": 0,
    "show_memory": False,
    "show_signature": False,
    "capture_repr": (),
    "matplotlib_animations": False,
    "write_computation_times": True,
}

# --- HTML ------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"interpolants {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": True,
}
copybutton_prompt_text = r">>> |\.\.\. "
copybutton_prompt_is_regexp = True
