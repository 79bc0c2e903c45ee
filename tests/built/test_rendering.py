"""The rendered book, checked in a real browser (headless Chromium).

Serves ``_build/html`` on localhost, opens every page of ``_toc.yml`` and checks its title, that its
figures load, that its math is typeset by the bundled MathJax, that it loads nothing from another
host (a classroom may be offline) and that its internal links resolve. Saves a screenshot of every
page under ``_build/screenshots/``. Skips with a message when the book is not built or Chromium is
missing (``.ci/run`` installs Debian's ``chromium`` and builds the book first).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from toc_notebooks import ROOT, toc_entries  # noqa: E402

bs4 = pytest.importorskip("bs4")

HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)

pytestmark = [
    pytest.mark.skipif(not (HTML / "index.html").exists(),
                       reason="the book is not built: run `make book` first"),
    pytest.mark.skipif(CHROMIUM is None,
                       reason="Chromium is missing: install Debian's `chromium` package"),
]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _chromium(args: list[str], profile: Path) -> str:
    out = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                         capture_output=True, text=True, timeout=120)
    return out.stdout


def _page_names() -> list[str]:
    return [entry for entry in toc_entries()]


@pytest.mark.parametrize("entry", _page_names())
def test_page_renders(entry, server, tmp_path):
    url = f"{server}/{entry}.html"
    dom = _chromium(["--virtual-time-budget=15000", "--dump-dom", url], tmp_path / "dom")
    soup = bs4.BeautifulSoup(dom, "html.parser")

    # the page exists and has a title of its own
    h1 = soup.find("h1")
    assert h1 is not None, f"{entry}: no heading (page missing?)"
    heading = h1.get_text(" ", strip=True).rstrip("#").strip()
    title = soup.title.get_text(strip=True) if soup.title else ""
    assert heading.split()[-1] in title and "Interest Migration" in title, (title, heading)

    # nothing is loaded from another host
    for tag, attr in (("script", "src"), ("link", "href"), ("img", "src")):
        for node in soup.find_all(tag):
            ref = node.get(attr)
            if not ref or (tag == "link" and "stylesheet" not in (node.get("rel") or [])
                           and "preload" not in (node.get("rel") or [])):
                continue
            host = urllib.parse.urlparse(urllib.parse.urljoin(url, ref)).hostname
            assert host == "127.0.0.1", f"{entry}: {tag} loads {ref} from another host"

    # every figure loads
    images = soup.find_all("img")
    for img in images:
        src = urllib.parse.urljoin(url, img["src"])
        with urllib.request.urlopen(src) as response:
            assert response.status == 200 and len(response.read()) > 100, src

    # math is typeset: every math element became a MathJax container
    math_nodes = soup.select(".math")
    if math_nodes:
        typeset = soup.find_all("mjx-container")
        assert len(typeset) >= len(math_nodes), f"{entry}: {len(math_nodes)} math, {len(typeset)} typeset"
        assert not soup.select(".math:not(:has(mjx-container))"), f"{entry}: untypeset math"

    # internal links resolve, anchors included
    for a in soup.find_all("a", href=True):
        target = urllib.parse.urljoin(url, a["href"])
        parsed = urllib.parse.urlparse(target)
        if parsed.hostname != "127.0.0.1" or parsed.scheme not in ("http", "https"):
            continue
        path = HTML / urllib.parse.unquote(parsed.path).lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        assert path.exists(), f"{entry}: broken link {a['href']}"
        if parsed.fragment and path.suffix == ".html":
            ids = _ids(path)
            assert parsed.fragment in ids, f"{entry}: missing anchor {a['href']}"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{entry.replace('/', '__')}.png"
    _chromium(["--virtual-time-budget=15000", "--window-size=1280,2400",
               f"--screenshot={shot}", url], tmp_path / "shot")
    assert shot.exists() and shot.stat().st_size > 10_000


@functools.cache
def _ids(path: Path) -> frozenset[str]:
    soup = bs4.BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    return frozenset(node["id"] for node in soup.find_all(id=True))
