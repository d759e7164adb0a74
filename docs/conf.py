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


def _resolve_short_names(app, env, node, contnode):  # type: ignore[no-untyped-def]
    """Resolve a short reference such as ``Coupling.pair`` to the one documented object whose
    full name ends with it: docstrings name the public objects by their short spelling, while
    the pages document them under their one public spelling (``interpolants.Coupling``)."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    domain = env.get_domain("py")
    found = {name for name in domain.objects if name == target or name.endswith("." + target)}
    public = {name for name in found if "._" not in name}  # not the private alias autodoc adds
    found = public or found
    if len(found) > 1:  # documented at the top level and reachable from its module: the shorter
        depth = min(name.count(".") for name in found)
        found = {name for name in found if name.count(".") == depth}
    if len(found) != 1:
        return None
    from sphinx.util.nodes import make_refnode

    (name,) = found
    entry = domain.objects[name]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("missing-reference", _resolve_short_names)
