"""The public namespace: curated top level, one public spelling per name, every name documented.

A name is public when it is listed in the ``__all__`` of a public module: the package, its
subpackages and its plain public modules. Implementation modules are private (``_x.py``).
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import interpolants
from contracts import PUBLIC_MODULES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "api"
MODULES = PUBLIC_MODULES

TOP_LEVEL = {
    # the four abstractions
    "Interpolant",
    "Coupling",
    "Objective",
    "Integrator",
    # what a first script names
    "LinearInterpolant",
    "BrownianGamma",
    "OTCoupling",
    "IndependentCoupling",
    "VelocityObjective",
    "SplitObjective",
    "ODE",
    "SDE",
    "Euler",
    "Dopri5",
    "time_grid",
    "log_likelihood",
    "PairedBatches",
    "GaussianMixture",
    "MLP",
    "Trainer",
    # the subpackages and public modules
    "analytic",
    "cli",
    "coupling",
    "data",
    "density",
    "fields",
    "integrate",
    "interpolant",
    "metrics",
    "nn",
    "objective",
    "train",
}


def test_the_top_level_is_curated() -> None:
    assert set(interpolants.__all__) == TOP_LEVEL
    assert len(interpolants.__all__) == len(TOP_LEVEL)


def test_each_public_name_has_exactly_one_spelling() -> None:
    homes: dict[str, list[str]] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            if inspect.ismodule(getattr(module, attr)):
                continue
            homes.setdefault(attr, []).append(name)
    twice = {k: v for k, v in homes.items() if len(v) > 1}
    assert not twice, f"listed in more than one __all__: {twice}"


def test_subpackages_export_only_their_all() -> None:
    """A subpackage's namespace holds its ``__all__`` and private modules, nothing else, so
    that no second spelling exists by accident."""
    for info in pkgutil.iter_modules(interpolants.__path__):
        if not info.ispkg:
            continue
        package = importlib.import_module(f"interpolants.{info.name}")
        extra = {
            n
            for n in vars(package)
            if not n.startswith("_")
            and n not in package.__all__
            and not inspect.ismodule(getattr(package, n))
        }
        assert not extra, f"interpolants.{info.name} exports {sorted(extra)} outside __all__"


def test_implementation_modules_are_private() -> None:
    """Every public module is a package whose implementation modules are private, so a
    public module's namespace holds nothing but its ``__all__``."""
    public = set(MODULES) | {"interpolants"}
    for info in pkgutil.walk_packages(interpolants.__path__, "interpolants."):
        leaf = info.name.rsplit(".", 1)[-1]
        if not leaf.startswith("_"):
            assert info.name in public, f"{info.name} is a public module not in the list"
            assert info.ispkg, f"{info.name} is a public plain module: make it a package"


def _documented() -> tuple[set[str], set[str]]:
    text = "\n".join(p.read_text() for p in DOCS.glob("*.rst"))
    names = set(re.findall(r"^\s*\.\. (?:auto\w+|data):: ([\w.]+)", text, re.M))
    whole = set(re.findall(r"^\.\. automodule:: ([\w.]+)\n((?:   :\S.*\n)*)", text, re.M))
    with_members = {m for m, opts in whole if ":members:" in opts and "no-members" not in opts}
    return names, with_members


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_is_in_the_api_reference_under_its_spelling(module_name: str) -> None:
    names, modules_with_members = _documented()
    module = importlib.import_module(module_name)
    missing = []
    for name in module.__all__:
        if inspect.ismodule(getattr(module, name)) or module_name in modules_with_members:
            continue
        if f"{module_name}.{name}" not in names:
            missing.append(f"{module_name}.{name}")
    assert not missing, f"not in docs/api under their public spelling: {missing}"


def test_docs_cite_no_file_outside_the_repository() -> None:
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "tests").glob("*.py")]
    files += [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "docs").glob("**/*.rst")]
    files = [f for f in files if "_build" not in f.parts and f.name != "test_docs_api.py"]
    citing = [str(f) for f in files if "MATH.md" in f.read_text() or "shared/" in f.read_text()]
    assert not citing
