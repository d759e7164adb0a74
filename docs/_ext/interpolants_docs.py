"""Local Sphinx helpers for the interpolants documentation.

* short references (``Coupling.pair``) resolve to the one documented object whose full name
  ends with them;
* ``.. api-toctree::`` lists API pages by group, skipping names without a page, and with
  ``:rest:`` every page of the folder not listed yet (so that a new page is never orphaned);
* ``.. public-names:: module`` tabulates a module's ``__all__`` with one-line summaries
  (``:rest:``: every subpackage not tabulated yet);
* :func:`reset_torch` seeds and pins threads before each gallery example;
* the ``[docs]`` links of the highlighted source pages point at the objects' own anchors.
"""

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.errors import PycodeError
from sphinx.ext.autosummary import extract_summary
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docstrings import prepare_docstring
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode


def reset_torch(gallery_conf: dict[str, Any], fname: str) -> None:
    """Before each gallery example: one torch thread, every global RNG seeded."""
    import random

    import numpy as np
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 - the legacy global RNG, for code that uses it
    random.seed(0)


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
    (name,) = found
    entry = domain.objects[name]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


class ApiToctree(SphinxDirective):
    """A toctree of the pages named in the content that exist in this folder (in that order);
    with ``:rest:``, of every page of the folder not named by an earlier ``api-toctree``."""

    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {
        "caption": directives.unchanged,
        "rest": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        folder = Path(self.env.doc2path(self.env.docname)).parent
        listed: set[str] = self.env.temp_data.setdefault("api_toctree_listed", set())
        if "rest" in self.options:
            names = sorted(p.stem for p in folder.glob("*.rst") if p.stem != "index")
            names = [n for n in names if n not in listed]
        else:
            names = [line.strip() for line in self.content if line.strip()]
        pages = [n for n in names if (folder / f"{n}.rst").exists()]
        listed.update(pages)
        if not pages:
            return []
        lines = [".. toctree::", "   :maxdepth: 1"]
        if "caption" in self.options:
            lines.append(f"   :caption: {self.options['caption']}")
        lines += ["", *(f"   {name}" for name in pages)]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.env.docname), 0, container)
        return container.children


class PublicNames(SphinxDirective):
    """A table of the public names of a module (its ``__all__``, modules left out) with the
    first sentence of each docstring, each linking to the page that documents it. With
    ``:rest:`` instead of a module, a titled table for each subpackage of :mod:`interpolants`
    not tabulated yet on the page."""

    optional_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"rest": directives.flag}

    def run(self) -> list[nodes.Node]:
        done: set[str] = self.env.temp_data.setdefault("public_names_done", set())
        lines: list[str] = []
        if "rest" in self.options:
            package = importlib.import_module("interpolants")
            for name in package.__all__:
                full = f"interpolants.{name}"
                if inspect.ismodule(getattr(package, name)) and full not in done:
                    lines += [f".. rubric:: :mod:`{full}`", "", *self._table(full), ""]
        else:
            lines = self._table(self.arguments[0])
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.env.docname), 0, container)
        return container.children

    def _table(self, module_name: str) -> list[str]:
        self.env.temp_data["public_names_done"].add(module_name)
        module = importlib.import_module(module_name)
        names = [n for n in module.__all__ if not inspect.ismodule(getattr(module, n))]
        lines = [".. list-table::", "   :widths: 30 70", "   :class: public-names", ""]
        for name in sorted(names, key=str.lower):
            summary = self._summary(module_name, name, getattr(module, name))
            lines += [f"   * - :py:obj:`~{module_name}.{name}`", f"     - {summary}"]
        return lines

    def _summary(self, module_name: str, name: str, obj: object) -> str:
        """The first sentence of the object's docstring; for data and type aliases, of the
        docstring written after the assignment in the module that defines it."""
        doc = None
        if inspect.isclass(obj) or inspect.isroutine(obj):
            doc = inspect.getdoc(obj)
        else:
            prefix = module_name + "."
            for candidate in [module_name, *sorted(m for m in sys.modules if m.startswith(prefix))]:
                try:
                    attrs = ModuleAnalyzer.for_module(candidate).find_attr_docs()
                except PycodeError:
                    continue
                if ("", name) in attrs:
                    doc = "\n".join(attrs[("", name)])
                    break
        if not doc:
            return ""
        document = self.state.document  # Sphinx < 9 takes the document, 9 its settings
        parameters = list(inspect.signature(extract_summary).parameters)
        where = document.settings if parameters[1] == "settings" else document
        return extract_summary(prepare_docstring(doc), where)


def _fix_viewcode_backlinks(app, pagename, templatename, context, doctree):  # type: ignore[no-untyped-def]
    """Point each ``[docs]`` link of a highlighted module at the object's own anchor.

    :mod:`sphinx.ext.viewcode` builds every back-link of a module's page from one module name,
    the one under which the *first* object of that module was documented. The private
    implementation modules hold objects documented under several public modules
    (``interpolants.MLP``, ``interpolants.nn.TwoHeadMLP``), so most of those links would
    name anchors that do not exist; each is replaced by the anchor of the one object of its
    page whose full name ends with the object's name.
    """
    modules = getattr(app.env, "_viewcode_modules", {})
    if not pagename.startswith("_modules/") or "body" not in context:
        return
    entry = modules.get(pagename.removeprefix("_modules/").replace("/", "."))
    if not entry:
        return
    _code, _tags, used, refname = entry
    objects = app.env.get_domain("py").objects
    body = context["body"]
    for name, docname in used.items():
        if f"{refname}.{name}" in objects:
            continue
        found = [
            obj.node_id
            for full, obj in objects.items()
            if obj.docname == docname and not obj.aliased and full.endswith("." + name)
        ]
        if len(found) != 1:
            continue
        uri = app.builder.get_relative_uri(pagename, docname)
        body = body.replace(f'href="{uri}#{refname}.{name}"', f'href="{uri}#{found[0]}"')
    context["body"] = body


def _api_index_is_always_read(app, env, added, changed, removed):  # type: ignore[no-untyped-def]
    """The API index lists the folder's pages: re-read it whenever any page is (re)read."""
    return ["api/index"] if (added or changed or removed) else []


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", _resolve_short_names)
    app.connect("env-get-outdated", _api_index_is_always_read)
    app.connect("html-page-context", _fix_viewcode_backlinks)
    app.add_directive("api-toctree", ApiToctree)
    app.add_directive("public-names", PublicNames)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
