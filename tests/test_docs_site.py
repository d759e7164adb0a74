"""The documentation site: the gallery's scripts, the landing page, and the site checker.

The checker (``docs/check_site.py``) runs in ``make docs`` on the freshly built site; here it
is tested on small hand-made sites and screenshots, and run on ``docs/_build/html`` when a
build is there.
"""

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
BUILT = DOCS / "_build" / "html"

#: The gallery, in the order of the issue that asked for it.
GALLERY = [
    "plot_01_first_ten_minutes.py",
    "plot_02_couplings.py",
    "plot_03_samplers.py",
    "plot_04_density_estimation.py",
    "plot_05_conditional_generation.py",
    "plot_06_inpainting.py",
    "plot_07_extending.py",
    "plot_08_distributed.py",
    "plot_09_gpu.py",
]


def _load_checker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("check_site", DOCS / "check_site.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_site"] = module
    spec.loader.exec_module(module)
    return module


check_site = _load_checker()


# --- the gallery's scripts -----------------------------------------------------------------


def test_the_gallery_has_the_nine_examples() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("plot_*.py")) == GALLERY
    assert (EXAMPLES / "README.rst").is_file()


@pytest.mark.parametrize("name", GALLERY)
def test_each_example_is_titled_seeded_plots_and_prints(name: str) -> None:
    source = (EXAMPLES / name).read_text()
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree)
    assert docstring, f"{name}: no docstring (the gallery page's title and introduction)"
    title, underline = docstring.splitlines()[:2]
    assert underline == "=" * len(title), f"{name}: the docstring must open with a title"
    calls = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert "manual_seed" in calls, f"{name}: not seeded"
    assert "show" in calls, f"{name}: draws no figure (plt.show())"
    assert "print" in calls, f"{name}: prints nothing (no metric in the page)"


def test_the_sources_cite_no_file_outside_the_repository() -> None:
    files = [*EXAMPLES.glob("*"), *DOCS.glob("*.py"), *DOCS.glob("*.md"), *DOCS.glob("_ext/*.py")]
    files += [p for p in DOCS.rglob("*.rst") if "_build" not in p.parts]
    outside = re.compile("MATH" + r"\.md|" + "shared" + "/")  # spelled so as not to match here
    citing = [str(f) for f in files if outside.search(f.read_text())]
    assert not citing


def test_the_landing_page_runs_its_example() -> None:
    """A ``.. doctest::`` block (run by ``make docs``), with nothing skipped, a figure and
    links to the gallery."""
    index = (DOCS / "index.rst").read_text()
    assert ".. doctest::" in index
    assert "+SKIP" not in index
    assert ".. figure::" in index or ".. image::" in index
    assert ":doc:`auto_examples/index`" in index


# --- the checker on hand-made sites --------------------------------------------------------


def _site(root: Path, pages: dict[str, str]) -> Path:
    for name, body in pages.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<html><head><title>t</title></head><body>{body}</body></html>")
    return root


def test_the_link_check_passes_a_sound_site(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        {
            "index.html": '<a href="sub/page.html#part">x</a> <a href="#top" id="top">y</a>'
            ' <img src="img.png"> <a href="https://example.org/none">web</a>'
            ' <a href="sub/">folder</a> <a href="mailto:a@b.c">mail</a>',
            "sub/page.html": '<h2 id="part">part</h2><a href="../index.html">home</a>',
            "sub/index.html": '<a name="old">old-style anchor</a><a href="index.html#old">self</a>',
        },
    )
    (site / "img.png").write_bytes(b"png")
    assert check_site.internal_link_errors(site) == []


def test_the_link_check_reports_each_broken_link(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.html"
    outside.write_text("<html></html>")
    site = _site(
        tmp_path / "html",
        {
            "index.html": '<a href="missing.html">a</a> <a href="page.html#nowhere">b</a>'
            ' <a href="#gone">c</a> <a href="../elsewhere.html">d</a>'
            ' <script src="_static/missing.js"></script>',
            "page.html": '<p id="here">here</p>',
        },
    )
    errors = check_site.internal_link_errors(site)
    assert len(errors) == 5, errors
    assert any("missing.html (no such file)" in e for e in errors)
    assert any("page.html#nowhere (no anchor #nowhere)" in e for e in errors)
    assert any("#gone (no anchor #gone)" in e for e in errors)
    assert any("outside the site" in e for e in errors)
    assert any("_static/missing.js" in e for e in errors)


def test_the_screenshot_check_tells_a_page_from_a_blank(tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    import numpy as np

    blank = tmp_path / "blank.png"
    image_module.new("RGB", (200, 100), "white").save(blank)
    errors = check_site.screenshot_errors(blank, (200, 100))
    assert any("distinct colours" in e for e in errors)
    assert any("differ from the background" in e for e in errors)

    pixels = np.full((100, 200, 3), 255, dtype=np.uint8)
    rng = np.random.default_rng(0)
    pixels[20:80, 20:180] = rng.integers(0, 256, (60, 160, 3), dtype=np.uint8)
    page = tmp_path / "page.png"
    image_module.fromarray(pixels).save(page)
    assert check_site.screenshot_errors(page, (200, 100)) == []
    assert any("expected" in e for e in check_site.screenshot_errors(page, (300, 100)))


# --- the built site (after ``make docs``) ---------------------------------------------------

needs_build = pytest.mark.skipif(
    not (BUILT / "index.html").is_file(), reason="no built site: run `make docs`"
)


@needs_build
def test_the_built_site_has_no_broken_internal_link() -> None:
    assert check_site.internal_link_errors(BUILT) == []


@needs_build
def test_the_built_site_has_every_page() -> None:
    for page in [
        "index.html",
        "auto_examples/index.html",
        *(f"auto_examples/{name.removesuffix('.py')}.html" for name in GALLERY),
        *(f"concepts/{n}.html" for n in ("interpolants", "couplings", "objectives")),
        *(f"concepts/{n}.html" for n in ("integrators", "likelihood")),
        "benchmarks.html",
        "changelog.html",
        "api/index.html",
    ]:
        assert (BUILT / page).is_file(), page


@pytest.mark.slow
@needs_build
@pytest.mark.skipif(check_site.find_browser() is None, reason="no chromium")
def test_the_built_site_renders_in_chromium(tmp_path: Path) -> None:
    assert check_site.render_errors(BUILT, check_site.find_browser(), tmp_path) == []
