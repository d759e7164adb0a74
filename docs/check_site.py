"""Check a built HTML site: every internal link resolves, and the pages render in a browser.

``make docs`` runs this on ``docs/_build/html`` after Sphinx::

    python docs/check_site.py docs/_build/html --screenshots docs/_build/screenshots

1. **Internal links.** Every ``href`` and ``src`` of every page that stays inside the site
   (no scheme, no host) must name a file of the site, and its ``#fragment``, if any, an
   ``id`` (or ``<a name>``) of that page. Nothing may point outside the site. External links
   are not followed (the build machine reaches no web site).
2. **Rendering.** Headless Chromium (Debian's ``chromium``, found on the ``PATH`` or at
   ``/usr/bin/chromium``; ``--browser`` names another) loads the landing page and one gallery
   page from a local HTTP server, and for each: the rendered DOM must hold the page's title,
   its typeset mathematics (MathJax's ``mjx-container`` elements, for pages with math) and
   its figures; a screenshot must have the requested size and not be blank (enough distinct
   colours and enough pixels away from the background). The screenshots are kept for a look.

Without a browser the rendering check is skipped with a message, unless ``--require-browser``
is given. The exit status is 1 when any check fails.
"""

import argparse
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: The attributes that hold a URL, by tag.
URL_ATTRIBUTES = {
    "a": ("href",),
    "link": ("href",),
    "img": ("src",),
    "script": ("src",),
    "source": ("src",),
    "iframe": ("src",),
}


class _Page(HTMLParser):
    """The anchors (``id`` and ``<a name>``) and the URLs of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.anchors.add(str(values["id"]))
        if tag == "a" and values.get("name"):
            self.anchors.add(str(values["name"]))
        for attribute in URL_ATTRIBUTES.get(tag, ()):
            url = values.get(attribute)
            if url is not None:
                self.urls.append(url)


@functools.cache
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def _is_external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc)


def internal_link_errors(root: Path) -> list[str]:
    """Every broken internal link of the HTML pages under ``root``, as ``page: url (why)``.

    Parameters
    ----------
    root
        The folder of the built site (``docs/_build/html``).

    Returns
    -------
    list[str]
        One line per broken link; empty when every link resolves.
    """
    root = root.resolve()
    _parse.cache_clear()
    errors = []
    pages = sorted(root.rglob("*.html"))
    if not pages:
        return [f"{root}: no HTML pages"]
    for page in pages:
        where = page.relative_to(root)
        for url in _parse(page).urls:
            if not url or _is_external(url):
                continue
            parts = urlsplit(url)
            if not parts.path:  # "#fragment": on this page
                target = page
            else:
                target = (page.parent / unquote(parts.path)).resolve()
                if not target.is_relative_to(root):
                    errors.append(f"{where}: {url} (outside the site)")
                    continue
                if target.is_dir():
                    target = target / "index.html"
                if not target.is_file():
                    errors.append(f"{where}: {url} (no such file)")
                    continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in _parse(target).anchors:
                errors.append(f"{where}: {url} (no anchor #{fragment})")
    return errors


# --- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderCheck:
    """One page to load in the browser and what its rendering must show."""

    page: str
    """The page, relative to the site's root."""
    title: str
    """Text that the rendered page's ``<title>`` must contain."""
    math: bool
    """Whether MathJax must have typeset mathematics on it."""
    min_images: int
    """The least number of ``<img>`` elements of the page's body."""


#: The landing page and the first gallery example.
PAGES = (
    RenderCheck("index.html", "interpolants", math=True, min_images=1),
    RenderCheck(
        "auto_examples/plot_01_first_ten_minutes.html",
        "The first ten minutes",
        math=True,
        min_images=2,
    ),
)
WINDOW = (1280, 2000)


def find_browser(name: str | None = None) -> str | None:
    """The Chromium executable: ``name`` if given, else ``chromium`` on the ``PATH`` or at
    ``/usr/bin/chromium``; ``None`` when there is none."""
    for candidate in [name] if name else ["chromium", "/usr/bin/chromium", "chromium-browser"]:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on a free local port; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _chromium(browser: str, profile: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # runs as root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",  # let MathJax and the fonts finish
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def screenshot_errors(png: Path, size: tuple[int, int]) -> list[str]:
    """Why a screenshot looks wrong: not the window's size, blank, or nearly one colour."""
    from PIL import Image

    if not png.is_file() or png.stat().st_size == 0:
        return [f"{png.name}: no screenshot"]
    with Image.open(png) as image:
        rgb = image.convert("RGB")
    errors = []
    if rgb.size != size:
        errors.append(f"{png.name}: {rgb.size[0]}×{rgb.size[1]} pixels, expected {size}")
    colours = rgb.getcolors(maxcolors=1 << 20) or []
    background = max(colours)[0] if colours else 0
    content = 1 - background / (rgb.size[0] * rgb.size[1])
    if len(colours) < 64:
        errors.append(f"{png.name}: {len(colours)} distinct colours (a blank page?)")
    if content < 0.03:
        errors.append(f"{png.name}: {content:.1%} of the pixels differ from the background")
    return errors


def render_errors(root: Path, browser: str, out: Path) -> list[str]:
    """Load each of :data:`PAGES` in headless Chromium; check its DOM and a screenshot."""
    from bs4 import BeautifulSoup  # a dependency of furo

    out.mkdir(parents=True, exist_ok=True)
    errors = []
    with serve(root) as base, tempfile.TemporaryDirectory() as profile:
        for check in PAGES:
            url = base + check.page
            dom = _chromium(browser, profile, "--dump-dom", url)
            if dom.returncode != 0 or "<html" not in dom.stdout:
                errors.append(f"{check.page}: chromium could not load it: {dom.stderr[-500:]}")
                continue
            soup = BeautifulSoup(dom.stdout, "html.parser")
            title = soup.title.get_text() if soup.title else ""
            if check.title not in title:
                errors.append(f"{check.page}: title {title!r} lacks {check.title!r}")
            typeset = len(soup.find_all("mjx-container"))
            if check.math and typeset == 0:
                errors.append(f"{check.page}: no typeset mathematics (MathJax did not run)")
            article = soup.find("article") or soup
            images = [img for img in article.find_all("img") if img.get("src")]
            if len(images) < check.min_images:
                errors.append(f"{check.page}: {len(images)} images, expected {check.min_images}+")
            png = out / (check.page.replace("/", "_").removesuffix(".html") + ".png")
            png.unlink(missing_ok=True)
            size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
            shot = _chromium(browser, profile, size, f"--screenshot={png}", url)
            if shot.returncode != 0:
                errors.append(f"{check.page}: screenshot failed: {shot.stderr[-500:]}")
                continue
            errors += screenshot_errors(png, WINDOW)
            print(f"rendered {check.page}: {typeset} formulas typeset, {len(images)} images, {png}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built HTML (docs/_build/html)")
    parser.add_argument("--screenshots", type=Path, default=None, help="where to keep them")
    parser.add_argument("--browser", default=os.environ.get("CHROMIUM"), help="chromium binary")
    parser.add_argument("--require-browser", action="store_true", help="fail without one")
    args = parser.parse_args(argv)

    errors = internal_link_errors(args.site)
    pages = len(list(args.site.rglob("*.html")))
    print(f"internal links: {pages} pages checked, {len(errors)} broken")

    browser = find_browser(args.browser)
    if browser is None:
        message = "rendering: no chromium found (Debian: apt-get install chromium)"
        if args.require_browser:
            errors.append(message)
        else:
            print(message + "; skipped")
    else:
        out = args.screenshots or args.site.parent / "screenshots"
        errors += render_errors(args.site.resolve(), browser, out)

    for error in errors:
        print("ERROR:", error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
