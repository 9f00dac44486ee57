"""Faults on the static site's downloads (issue 15, item 4): every file a visit downloads, cut off halfway or
replaced by garbage, and every copy kept in Cache Storage, damaged.

The page must settle: it shows its readable error box (the loading box gone) or it falls back and goes live; it
never sits with a spinner. A damaged copy in Cache Storage is dropped on the visit that meets it, so the next visit
downloads the file again and works, without the reader clearing anything. Each case runs in a browser of its own
(a fresh profile: no cache, no service worker). The snapshot's own first-visit faults (404, garbage, cut off, a
differing function table) are in tests/test_static_site.py.
"""

from __future__ import annotations

import contextlib
import re

import pytest

from browser import PageWatch, chromium, screenshot_on_failure
from test_static_site import ACT_MS, BOOT_MS, SETTLED, page_config, worker_marks

pytestmark = pytest.mark.static
GARBAGE = bytes(range(256)) * 4096  # 1 MB that is no wasm, no JS, no zip, no pack, no zstd

# each download: the URL glob that routes it, and the one fault it meets (garbage or cut off halfway, both met by
# the runtime's files and by the zips; one fault per file keeps the module to a few minutes)
DOWNLOADS = {
    "wasm": ("**/pyodide.asm.wasm*", "cut-off"),  # the site's zstd copy (pyodide.asm.wasm.zst) when it has one
    "wasm.zst": ("**/pyodide.asm.wasm.zst", "garbage"),
    "asm.js": ("**/pyodide.asm.js", "garbage"),
    "stdlib": ("**/python_stdlib.stub.zip", "garbage"),  # the (empty) stdlib zip a restored worker mounts
    "pack": ("**/site-packages.pack*", "garbage"),
    "bokehjs": ("**/_static/bokeh/bokeh.min.js*", "cut-off"),
    "document": ("**/snapshot/*/arena.json", "garbage"),  # the document as built, drawn while the heap downloads
}


def _garbage(route):
    route.fulfill(status=200, body=GARBAGE, headers={"content-type": "application/octet-stream"})


def _half(route):
    resp = route.fetch()
    body = resp.body()
    route.fulfill(response=resp, body=body[: len(body) // 2])


@contextlib.contextmanager
def fresh_browser(name: str):
    """A browser of its own for one case (nothing cached, no service worker); screenshot if the block fails."""
    with chromium() as ctx:
        page = ctx.new_page()
        watch = PageWatch()
        watch.attach(page)
        try:
            yield ctx, page, watch
        except BaseException:
            screenshot_on_failure(page, f"fault-{name}")
            raise


def settle(page) -> str:
    """Wait until the page is live or shows its error (a spinner forever fails here); the state it settled in."""
    page.wait_for_function(SETTLED, timeout=BOOT_MS)
    state = page.evaluate("document.documentElement.dataset.mtlState")
    if state == "error":
        box = page.locator("#mtl-error")
        assert box.is_visible() and page.locator("#mtl-loading").is_hidden()
        assert box.locator(".mtl-error-msg").inner_text().strip(), "an error box without a message"
    return state


def error_text(page) -> str:
    return page.locator("#mtl-error .mtl-error-msg").inner_text() + "\n" + page.locator("#mtl-error pre").inner_text()


# what each broken download leaves on screen: the error box and words from its message, or a live page (a fallback)
OUTCOMES = {
    "wasm": ("error", "Python runtime (WebAssembly) did not load"),
    "wasm.zst": ("error", "Python runtime (WebAssembly) did not load"),
    "asm.js": ("error", "importScripts"),
    "stdlib": ("live", None),
    "pack": ("error", "Python packages"),
    "bokehjs": ("error", "plotting library (BokehJS) did not load"),
    "document": ("live", None),  # the worker's copy is drawn instead
}


@pytest.mark.parametrize("download", list(DOWNLOADS))
def test_a_download_cut_off_or_garbled_shows_a_readable_error_or_falls_back(url, download):
    glob, fault = DOWNLOADS[download]
    with fresh_browser(f"{download}-{fault}") as (ctx, page, watch):
        page.route(glob, _garbage if fault == "garbage" else _half)
        page.goto(f"{url}/arena.html")
        state, words = settle(page), OUTCOMES[download][1]
        assert state == OUTCOMES[download][0], error_text(page) if state == "error" else worker_marks(page)
        if state == "error":
            assert words in error_text(page), error_text(page)
        else:  # the page works: Python in the worker answers
            assert page.evaluate("() => window.mtlPlayground.runPython('6 * 7')") == "42"
        assert watch.offsite_requests == []


def test_a_standard_module_whose_zip_arrives_cut_off_is_an_import_error_not_a_hang(url):
    """The real stdlib zip, fetched on demand by a restored page (tests/test_static_site.py has the good case)."""
    with fresh_browser("stdlib-full-cut-off") as (ctx, page, watch):
        page.route("**/python_stdlib.zip", _half)
        page.goto(f"{url}/arena.html")
        assert settle(page) == "live"
        out = page.evaluate("""() => window.mtlPlayground.runPython(
            "try:\\n    import graphlib\\n    r = 'imported'\\n"
            + "except ImportError as e:\\n    r = 'ImportError'\\nr").catch((e) => 'error: ' + e.message)""")
        assert out in ("ImportError",) or out.startswith("error: "), out
        assert page.evaluate("() => window.mtlPlayground.runPython('6 * 7')") == "42"  # and Python still answers


# each file kept in Cache Storage (by the page's code, or by the service worker for the scripts), its content type,
# and how the visit that meets a damaged copy of it ends: live (dropped and downloaded again, or a fallback) or error
CACHED = {
    "wasm": (lambda cfg, html: cfg["pyodideDir"] + "pyodide.asm.wasm", "application/wasm", "error"),
    "asm.js": (lambda cfg, html: cfg["pyodideDir"] + "pyodide.asm.js", "text/javascript", "error"),
    "stdlib": (lambda cfg, html: cfg["snapshot"]["stdlib"]["stub"], "application/zip", "live"),
    "pack": (
        lambda cfg, html: (cfg["sitePackages"].get("zst") or cfg["sitePackages"])["url"],
        "application/octet-stream",
        "error",
    ),
    "snapshot": (lambda cfg, html: cfg["snapshot"]["url"], "application/octet-stream", "live"),
    "document": (lambda cfg, html: cfg["snapshot"]["doc"], "application/json", "live"),
    "bokehjs": (
        lambda cfg, html: re.search(r'src="(_static/bokeh/bokeh\.min\.js[^"]*)"', html).group(1),
        "text/javascript",
        "error",
    ),
}
REGISTER_SW = "async () => { await navigator.serviceWorker.register('sw.js'); await navigator.serviceWorker.ready; }"
DAMAGE = """async ([url, type]) => {
  const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 255);
  await (await caches.open('mtl-playground')).put(url, new Response(bytes, {headers: {'content-type': type}}));
}"""
# the cached copy is gone, or whole again (downloaded anew)
DROPPED = """async ([url, size]) => {
  const hit = await (await caches.open('mtl-playground')).match(url);
  return !hit || (await hit.arrayBuffer()).byteLength === size;
}"""


@pytest.mark.parametrize("download", list(CACHED))
def test_a_damaged_copy_in_cache_storage_is_dropped_and_the_next_visit_recovers(site, url, download):
    """A repeat visitor (service worker installed) whose cached copy of a file went bad: the visit that meets it
    shows the error box or falls back, the copy is dropped, and the next visit works, from the snapshot."""
    cfg, html = page_config(site, "arena"), (site / "arena.html").read_text()
    rel, content_type, first = CACHED[download]
    rel = rel(cfg, html)
    address = f"{url}/{rel}"
    with fresh_browser(f"cached-{download}") as (ctx, page, watch):
        page.goto(f"{url}/index.html")
        page.evaluate(
            "async () => { await navigator.serviceWorker.register('sw.js'); await navigator.serviceWorker.ready; }"
        )
        page.evaluate(DAMAGE, [address, content_type])
        page.goto(f"{url}/arena.html")
        state = settle(page)
        assert state == first, error_text(page) if state == "error" else worker_marks(page)
        page.wait_for_function(DROPPED, arg=[address, (site / rel.split("?")[0]).stat().st_size], timeout=ACT_MS)
        if state == "error" or "snapshot-restored" not in worker_marks(page):  # not already recovered in this visit
            page.goto(f"{url}/arena.html")
            assert settle(page) == "live", error_text(page)
        assert "snapshot-restored" in worker_marks(page), worker_marks(page)
        assert page.evaluate("() => window.mtlPlayground.runPython('6 * 7')") == "42"
