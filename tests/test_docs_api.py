"""Every public name appears in the Sphinx API reference."""

import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api"
PACKAGES = [
    "interpolants",
    "interpolants.coupling",
    "interpolants.integrate",
    "interpolants.objective",
    "interpolants.fields",
    "interpolants.datasets",
    "interpolants.nn",
    "interpolants.train",
    "interpolants.data",
    "interpolants.recipes",
    "interpolants.evaluate",
]


def _documented() -> tuple[set[str], set[str]]:
    text = "\n".join(p.read_text() for p in DOCS.glob("*.rst"))
    names = set(re.findall(r"^\.\. auto\w+:: ([\w.]+)", text, re.M))
    whole = set(re.findall(r"^\.\. automodule:: ([\w.]+)\n((?:   :\S.*\n)*)", text, re.M))
    with_members = {m for m, opts in whole if ":members:" in opts and "no-members" not in opts}
    return {n.rsplit(".", 1)[-1] for n in names}, with_members


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_in_the_api_reference(package: str) -> None:
    names, modules_with_members = _documented()
    module = importlib.import_module(package)
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        home = getattr(obj, "__module__", package)
        if name in names or home in modules_with_members or package in modules_with_members:
            continue
        missing.append(f"{package}.{name}")
    assert not missing, f"not in docs/api: {missing}"
