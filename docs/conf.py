"""Sphinx configuration for interpolants (built with -W: warnings are errors)."""

import interpolants

project = "interpolants"
author = "The interpolants developers"
copyright = "2026, The interpolants developers"
release = interpolants.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# jaxtyping annotations render as their shape strings; no intersphinx (CI has no web access).
autodoc_type_aliases = {
    "State": "interpolants._types.State",
    "TimeLike": "interpolants._types.TimeLike",
}
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
