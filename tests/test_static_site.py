"""End-to-end tests of the static Pyodide site that `python build.py` writes.

The site is built once per session (or static/ is reused when it is a default build of the current sources),
served by `python -m http.server` on a free 127.0.0.1 port and driven in Debian Chromium with every host but
localhost unresolvable (tests/browser.py). Every interaction goes through the real Pyodide worker: the browser
event travels to Python in the worker, the app recomputes, and the test reads the result back out of the page's
live Bokeh document. Any request off 127.0.0.1 and any console error fails a test. Booting a page takes 10-30 s
on 2 cores, hence the generous timeouts. Screenshots of failures go to test-artifacts/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pathlib
import re
import textwrap

import numpy as np
import pytest

from sitebuild.pack import read_pack
from sitebuild.packs import module_name
from sitebuild.pins import PYODIDE_CDN
from sitebuild.previews import PREVIEW_WIDTHS
from browser import (
    PageWatch,
    chromium,
    run_build,
    screenshot_on_failure,
    serve_dir,
    stop_process,
)

pytestmark = pytest.mark.static
ROOT = pathlib.Path(__file__).resolve().parent.parent
BOOT_MS = 120_000  # cold boot of a page: runtime + packages + app (15-30 s on 2 cores, more under load)
ACT_MS = 30_000  # one interaction answered by Python in the worker

LIVE = "() => document.documentElement.dataset.mtlState === 'live'"
MARKS = "() => Object.keys(window.mtlPlayground.marks || {})"  # the worker's phases so far (worker/main.js mark)
SETTLED = "() => ['live', 'error'].includes(document.documentElement.dataset.mtlState)"
# a first visit from here on: this browser forgets the site's files (Cache Storage) and its service worker
FORGET_THE_SITE = """async () => { await caches.delete('mtl-playground');
    for (const r of await navigator.serviceWorker.getRegistrations()) await r.unregister(); }"""
DOC = "window.mtlPlayground.doc"  # the page's live Bokeh document (the preview's is dropped when it goes live)
N_FIGURES = f"() => [...{DOC}.all_models].filter(m => m.constructor.__name__ === 'Figure').length"


# ---------------------------------------------------------------------------------------------- fixtures
# site and url: tests/conftest.py (shared with tests/test_static_faults.py: one build, one server per session)
@pytest.fixture(scope="module")
def ctx():
    with chromium() as c:
        yield c


@contextlib.contextmanager
def opened(ctx, address: str, name: str, *, wait: str | None = LIVE, media: dict | None = None, before=None):
    """Open ``address`` in a fresh tab (its CSS media features emulated as ``media`` says; ``before(page)`` run
    first) and wait until the live app is on screen; screenshot if the block fails."""
    page = ctx.new_page()
    watch = PageWatch()
    watch.attach(page)
    try:
        if media:
            page.emulate_media(**media)
        if before:
            before(page)
        page.goto(address)
        if wait:
            page.wait_for_function(SETTLED, timeout=BOOT_MS)
            state = page.evaluate("document.documentElement.dataset.mtlState")
            if state == "error":
                raise AssertionError("the page showed its error box: " + page.locator("#mtl-error").inner_text()[:2000])
            page.wait_for_function(wait, timeout=ACT_MS)
        yield page, watch
    except BaseException:
        screenshot_on_failure(page, f"static-{name}")
        raise
    finally:
        page.close()


def assert_clean(watch: PageWatch) -> None:
    assert watch.problems() == [], watch.problems()


def model(page, name: str, prop: str = "value"):
    return page.evaluate(f"() => {{ const m = {DOC}.get_model_by_name({name!r}); return m ? m[{prop!r}] : null }}")


def column(page, source: str, col: str) -> list:
    return page.evaluate(f"() => Array.from({DOC}.get_model_by_name({source!r}).data[{col!r}])")


def pages_of(site: pathlib.Path) -> list[str]:
    return json.loads((site / "build-info.json").read_text())["pages"]


def page_config(site: pathlib.Path, slug: str) -> dict:
    """The build-time settings a page hands its loader (<script id="mtl-config">)."""
    return json.loads(
        re.search(r'id="mtl-config">(.*?)</script>', (site / f"{slug}.html").read_text(), re.S)
        .group(1)
        .replace("<\\/", "</")
    )


# ---------------------------------------------------------------------------------------------- the files
def test_site_layout_and_no_offsite_references(site):
    info = json.loads((site / "build-info.json").read_text())
    from app.pages import PAGES

    assert info["pages"] == [p.slug for p in PAGES]
    assert info["lock_packages"] and "numpy" in info["lock_packages"]
    assert not any(w.startswith(("pandas", "nh3")) for w in info["wheels"]), info["wheels"]
    for slug in info["pages"]:
        html = (site / f"{slug}.html").read_text()
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        for ref in refs:
            if ref.startswith("data:"):
                continue
            assert not re.match(r"^[a-z]+:", ref), f"{slug}.html references {ref}"
            assert (site / ref.split("?")[0]).is_file(), f"{slug}.html references missing {ref}"
        config = json.loads(re.search(r'id="mtl-config">(.*?)</script>', html, re.S).group(1))
        assert config["cdnIndexURL"] is None
        assert "bokeh-gl" not in html  # no page draws with WebGL: BokehJS's WebGL bundle is left out (render.py)
        for ref in config["prefetch"] + [
            config["sitePackages"]["url"],
            config["worker"],
            config["preview"]["plain"],
            config["preview"]["embed"],
        ]:
            assert (site / ref.split("?")[0]).is_file(), ref
    runtime = site / config["pyodideDir"]
    for name in ("pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"):
        assert (runtime / name).is_file()
    lock = json.loads((runtime / "pyodide-lock.json").read_text())
    for pkg in lock["packages"].values():  # Pyodide checks these hashes when it loads the package
        assert hashlib.sha256((runtime / pkg["file_name"]).read_bytes()).hexdigest() == pkg["sha256"]
    # content-addressed URLs: a file's URL changes whenever its bytes do (what lets the service worker cache)
    ref = config["sitePackages"]["url"]
    assert ref not in config["prefetch"]  # the page downloads it (loader.js), the worker must not fetch it again
    assert f'"{ref}"' in (site / "sw.js").read_text()  # kept for repeat visits
    assert hashlib.sha256((site / ref).read_bytes()).hexdigest().startswith(ref.split("/")[1])


def test_the_pack_holds_every_wheel_file_and_nothing_else(site):
    info = json.loads((site / "build-info.json").read_text())
    config = page_config(site, "arena")
    index, files, leftover = read_pack(site / config["sitePackages"]["url"])
    assert leftover == 0 and all(len(files[p]) == size for p, size in index)  # nothing missing, nothing extra
    # the modules every page's snapshot has already imported travel apart (only a boot from scratch needs them)
    assert config["sitePackages"]["imported"], "a default build ships snapshots"
    index2, files2, leftover2 = read_pack(site / config["sitePackages"]["imported"])
    assert leftover2 == 0 and index2 and all(p.endswith(".pyc") for p, _ in index2)
    # ... and so do the modules no page imports before it is live (fetched when Python imports one of them)
    later = config["sitePackages"]["later"]
    index3, files3, leftover3 = read_pack(site / later["url"])
    in_pack = {m for p, _ in index3 if (m := module_name(p))}
    assert leftover3 == 0 and index3 and later["modules"] == sorted(set(later["modules"]) & in_pack)
    # those left off the on-demand list: the modules the snapshot's run failed to import (no tornado in the site)
    assert "bokeh.server.contexts" in in_pack - set(later["modules"]) and len(in_pack - set(later["modules"])) < 20
    # a later package comes whole: its folder without its __init__ would be imported as an empty namespace package
    assert "numpy/ma/core.pyc" in files3 and "numpy/ma/README.rst" in files3
    assert "numpy.fft" in later["modules"] and "numpy/fft/__init__.pyc" in files3  # numpy 2 imports it on demand
    assert not {module_name(p) for p in files2} & set(later["modules"])
    assert not set(files) & set(files2) and not set(files) & set(files3) and not set(files2) & set(files3)
    assert "panel/__init__.pyc" in files2 and "numpy/__init__.pyc" in files2
    assert "app/arena.py" in files  # sources stay where tracebacks can read them
    assert not any(p.endswith(".pyc") for p in files)  # a restored page has imported all it needs to go live
    index, files = index + index2 + index3, {**files, **files2, **files3}
    paths = [p for p, _ in index]
    assert len(paths) == len(set(paths)) and not any(p.startswith("/") or ".." in p.split("/") for p in paths)
    tops = {p.split("/")[0] for p in paths}
    for dist in ("numpy", "panel", "bokeh", "param", "mtl_core", "app", "pyodide_http"):
        assert dist in tops, dist
    dynlibs = config["sitePackages"]["dynlibs"]
    assert "numpy/_core/_multiarray_umath.cpython-312-wasm32-emscripten.so" in dynlibs
    assert set(dynlibs) == {p for p in read_pack(site / config["sitePackages"]["url"])[1] if p.endswith(".so")}
    assert not set(dynlibs) & set(files3)
    assert config["lockPackages"] == []  # nothing left for Pyodide's own loader
    assert {w.split("-")[0].lower() + "-" for w in info["wheels"]} <= {
        t.split("-")[0].lower() + "-" for t in tops if t.endswith(".dist-info")
    }
    assert not any(t.startswith(("pandas", "nh3")) for t in tops)
    # the app is shipped as source (readable tracebacks); what a page imports is there
    assert b"def create_page" in files["app/arena.py"]


def test_a_repeat_visit_takes_the_packages_from_the_cache(url, ctx):
    with opened(ctx, f"{url}/training_loop.html", "repeat-first") as (page, watch):
        page.wait_for_function(
            "async () => !!(await (await caches.open('mtl-playground')).keys())"
            ".find((r) => r.url.includes('site-packages.pack'))",
            timeout=ACT_MS,
        )
        assert_clean(watch)
    requested = []

    def record(request):
        if "site-packages.pack" in request.url:
            requested.append(request.url)

    ctx.on("request", record)
    try:
        with opened(ctx, f"{url}/training_loop.html", "repeat-second") as (page, watch):
            assert requested == [], requested  # read back from Cache Storage: not even the service worker is asked
            assert_clean(watch)
    finally:
        ctx.remove_listener("request", record)


def test_a_pack_that_does_not_arrive_shows_a_readable_error(url, ctx):
    page = ctx.new_page()
    try:
        # a first visit: nothing cached (other tests of this browser may have filled the caches)
        page.goto(f"{url}/index.html")
        page.evaluate(FORGET_THE_SITE)
        page.route("**/site-packages.pack*", lambda route: route.fulfill(status=404, body="gone"))
        page.goto(f"{url}/arena.html")
        page.wait_for_function(SETTLED, timeout=BOOT_MS)
        assert page.evaluate("document.documentElement.dataset.mtlState") == "error"
        box = page.locator("#mtl-error")
        assert box.is_visible()
        assert "Python packages did not load" in box.inner_text() and "404" in box.inner_text()
    except BaseException:
        screenshot_on_failure(page, "static-pack-404")
        raise
    finally:
        page.close()


# ---------------------------------------------------------------------------------------------- the memory snapshot
def worker_marks(page) -> dict:
    return page.evaluate("() => window.mtlPlayground.marks")


def test_the_site_ships_one_content_addressed_snapshot_with_one_record_per_compiled_module(site):
    info = json.loads((site / "build-info.json").read_text())
    assert info["snapshot"] is True and info["options"]["snapshot"] is True
    config = page_config(site, "arena")
    snap = config["snapshot"]
    path = site / snap["url"]
    assert path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest().startswith(snap["url"].split("/")[1])
    assert f'"{snap["url"]}"' in (site / "sw.js").read_text()  # kept for repeat visits
    assert snap["codec"] == "zstd" and snap["url"].endswith(".zst")  # smaller than gzip, decoded faster
    assert (site / snap["decoder"].split("?")[0]).is_file()
    import zstandard

    heap = zstandard.ZstdDecompressor().decompress(path.read_bytes())
    assert len(heap) == snap["heapBytes"]
    assert int.from_bytes(heap[:4], "little") == 1886286592  # Pyodide's snapshot magic number
    # every compiled module numpy ships, each with the data address and table slots it had in the snapshot
    dynlibs = config["sitePackages"]["dynlibs"]
    assert [lib["path"] for lib in snap["libs"]] == [config["sitePackages"]["dir"] + so for so in dynlibs]
    table = snap["table"]
    assert table["atBoot"] < table["base"] <= min(lib["tableBase"] for lib in snap["libs"] if lib["tableSize"])
    ends = sorted(
        (lib["memoryBase"], lib["memoryBase"] + lib["memorySize"]) for lib in snap["libs"] if lib["memorySize"]
    )
    assert all(a[1] <= b[0] for a, b in zip(ends, ends[1:]))  # no two libraries share memory
    assert ends[-1][1] <= len(heap)
    assert set(snap["byHandle"].values()) <= {lib["path"] for lib in snap["libs"]} | {p.split("/")[-1] for p in dynlibs}
    assert snap["byHandle"], "numpy's modules were imported when the snapshot was taken"
    # ONE snapshot for the whole site (every page is built in it): a post with two widgets downloads it once
    assert all(_but_doc(page_config(site, slug)["snapshot"]) == _but_doc(snap) for slug in pages_of(site))
    assert config["downloadBytes"] == info["download_bytes"]
    # the heap travels as its difference from the runtime's data segment (shared/heapdelta.js): most of that region
    # was never written after instantiation, so it ships as zeros
    delta, memory_start = snap["dataDelta"], int.from_bytes(heap[4:8], "little")
    region = heap[memory_start + delta["offset"] : memory_start + delta["offset"] + delta["length"]]
    assert delta["length"] > 1_000_000 and region.count(0) > 0.9 * len(region)


def _but_doc(snap: dict) -> dict:
    return {k: v for k, v in snap.items() if k != "doc"}


# the page's document as the worker adopted it: drawn ahead (while the heap downloaded) and used, one document
DRAWN_AHEAD = """() => ({drawn: window.mtlPlayground.drawnAheadAt != null, used: window.mtlPlayground.drawnAheadUsed,
                        docs: Bokeh.documents.length, shown: Bokeh.documents[0] === window.mtlPlayground.doc})"""


def test_each_page_ships_its_document_as_built_beside_the_snapshot(site):
    """The page draws this file while the heap downloads (loader/main.js): it must be the snapshot's own document,
    in the order BokehJS reads it, and kept for repeat visits like the snapshot."""
    sw = (site / "sw.js").read_text()
    for slug in pages_of(site):
        doc = page_config(site, slug)["snapshot"]["doc"]
        path = site / doc
        assert doc.startswith("snapshot/") and doc.endswith(f"/{slug}.json"), doc
        assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(doc.split("/")[1])
        assert f'"{doc}"' in sw
        data = json.loads(path.read_text())
        (doc_id,) = data["docs_json"]
        (item,) = data["render_items"]
        assert item["docid"] == doc_id and item["roots"], item
        roots = data["docs_json"][doc_id]["roots"]
        assert roots and {r["id"] for r in roots} == set(item["roots"]), "the render item draws the document's roots"


def test_the_runtime_wasm_travels_zstd_compressed_and_decodes_to_the_runtime(site):
    """A site with the snapshot's zstd decoder streams the runtime's wasm through it (smaller than a host's gzip):
    the .zst decodes to the very bytes of pyodide.asm.wasm, and the page's download estimate counts the .zst."""
    import gzip

    import zstandard

    config = page_config(site, "arena")
    wasm = (site / config["pyodideDir"] / "pyodide.asm.wasm").read_bytes()
    zst = config["runtimeWasm"]
    packed = (site / zst["url"]).read_bytes()
    assert zst["url"] == config["pyodideDir"] + "pyodide.asm.wasm.zst"
    assert zst["decoder"] == config["snapshot"]["decoder"]
    assert zstandard.ZstdDecompressor().decompress(packed) == wasm and zst["bytes"] == len(wasm)
    assert len(packed) < 0.85 * len(gzip.compress(wasm, 6))


@pytest.mark.parametrize(
    "slug, query, prebuilt",
    [
        ("arena", "", True),
        ("weighting_lab", "", True),
        ("training_loop", "?embed=1", True),
        ("shared_separate", "?relatedness=0.2", False),
        ("training_loop", "?embed=true", False),
    ],
)
def test_a_page_boots_from_its_snapshot_and_uses_the_page_built_in_it_for_plain_urls(
    site, url, ctx, slug, query, prebuilt
):
    with opened(ctx, f"{url}/{slug}.html{query}", f"snapshot-{slug}") as (page, watch):
        marks = worker_marks(page)
        assert "snapshot-restored" in marks and "snapshot-failed" not in marks, marks
        assert "panel-imported" not in marks  # the prelude's imports came with the snapshot
        assert marks["snapshot-restored"] < marks["page-created"] < marks["document-ready"]
        # the page built at build time serves the two URLs it was built for; others are built anew
        assert ("page-imported" not in marks) == prebuilt, marks
        assert page.evaluate(N_FIGURES) > 0
        embed = "embed" in query
        # the header is left out when embedded (the page built for the plain URL hides it: PageView.show_as_embed)
        assert page.locator(".mtl-brand").filter(visible=True).count() == (0 if embed else 1)
        assert page.get_by_role("link", name="MTL Playground", exact=True).count() == (0 if embed else 1)
        assert page.get_by_role("button", name="Copy link").count() == (0 if embed else 1)  # the Share bar too
        if query == "?embed=1":  # the page built for the plain URL, made an embed in place: its URL keeps embed=1
            search = page.evaluate("""() => window.mtlPlayground.runPython(
                "from panel.io.state import state as s\\nMTL_PLAY.relatedness = 0.5\\ns.location.search")""")
            assert "embed=1" in search and "relatedness=0.5" in search, search
        if "relatedness" in query:
            assert abs(model(page, "relatedness") - 0.2) < 1e-9  # the deep link's setting reached the app
        if slug in ("weighting_lab", "training_loop"):
            # a page built without playing starts playing once restored, as create_page(autoplay=True) does
            source = "curves_equal" if slug == "weighting_lab" else "log_source"
            page.wait_for_function(f"() => {DOC}.get_model_by_name({source!r}).data.step.length > 3", timeout=ACT_MS)
        assert not any("memory snapshot" in line for line in watch.console), watch.console
        page.wait_for_timeout(1000)  # errors in the first periodic callbacks show up too
        assert_clean(watch)


def test_a_restored_page_imports_a_standard_module_it_never_used_on_demand(site, url, ctx):
    """Restored from the snapshot, the worker mounts an empty stdlib zip (every module the pages use is in the
    snapshot); a standard module imported later fetches the real zip once; a missing module stays an ImportError."""
    config = page_config(site, "arena")
    assert config["snapshot"]["stdlib"]["stub"] in config["prefetch"]
    assert config["snapshot"]["stdlib"]["full"] not in config["prefetch"]
    with opened(ctx, f"{url}/arena.html", "stdlib-on-demand") as (page, watch):
        assert "stdlib-on-demand" not in worker_marks(page)  # going live needed none of it
        missing = page.evaluate("""() => window.mtlPlayground.runPython(
            "try:\\n    import mtl_no_such_module\\n    r = 'found'\\n"
            + "except ImportError:\\n    r = 'ImportError'\\nr")""")
        assert missing == "ImportError" and "stdlib-on-demand" not in worker_marks(page)
        out = page.evaluate("""() => window.mtlPlayground.runPython(
            "import sys\\nbefore = 'graphlib' in sys.modules\\nimport graphlib\\n"
            + "f'{before} {graphlib.TopologicalSorter({1: [2]}).static_order().__next__()}'")""")
        assert out == "False 2"
        page.wait_for_function("() => 'stdlib-on-demand' in window.mtlPlayground.marks", timeout=ACT_MS)
        assert_clean(watch)


def test_the_snapshot_holds_no_module_a_page_never_reads(url, ctx):
    """The heap every visit downloads: unittest (Panel's cache), yaml (Bokeh's settings), panel.chat and
    Python-Markdown (Panel's Markdown pane renders with markdown-it) are imported only when used
    (sitebuild/patches.py), and no warm-up page is left in it (prebuild.py checks that at build time). All still
    work when asked for."""
    with opened(ctx, f"{url}/arena.html", "no-unread-modules") as (page, watch):
        python = "(code) => window.mtlPlayground.runPython(code)"
        unread = ("unittest", "unittest.mock", "yaml", "panel.chat", "markdown")
        code = f"import sys\n','.join(m for m in {unread!r} if m in sys.modules) or 'none'"
        assert page.evaluate(python, code) == "none"
        later = "import yaml, unittest.mock\nfrom bokeh.settings import settings\nstr(yaml.safe_load('a: 1'))"
        assert page.evaluate(python, later) == "{'a': 1}"
        chat = "import panel as pn\nfrom panel import chat\npn.chat.ChatMessage is chat.ChatMessage and 'yes'"
        assert page.evaluate(python, chat) == "yes"
        md = "import panel as pn\npn.pane.Markdown('*a*', renderer='markdown')._transform_object('*a*')['object']"
        assert page.evaluate(python, md) == "&lt;p&gt;&lt;em&gt;a&lt;/em&gt;&lt;/p&gt;"
        assert_clean(watch)


def test_a_prebuilt_documents_arrays_reach_the_page_as_python_holds_them(url, ctx):
    """The snapshot keeps a prebuilt document's JSON without its large arrays (prebuild.py), and the worker encodes
    them again when a visit sends it (boot.py): the page draws exactly the arrays the page's Python holds."""
    code = textwrap.dedent(
        """
        import json
        from panel.io.state import state
        model = state.curdoc.get_model_by_name
        json.dumps([model("heat_sum").data["image"][0].ravel().tolist(), model("iso_a").data["x"].tolist()])
        """
    )
    with opened(ctx, f"{url}/arena.html", "deferred-arrays") as (page, watch):
        assert "document-as-built" in worker_marks(page)  # the prebuilt document, not one written at the visit
        image, iso_x = json.loads(
            page.evaluate("(code) => window.mtlPlayground.runPython(code)", code).replace("NaN", "null")
        )
        drawn_image = page.evaluate(f"() => Array.from({DOC}.get_model_by_name('heat_sum').data.image[0])")
        drawn_x = page.evaluate(
            f"() => Array.from({DOC}.get_model_by_name('iso_a').data.x, (v) => isNaN(v) ? null : v)"
        )
        assert len(image) > 1000 and drawn_image == image
        assert len(iso_x) > 1000 and drawn_x == iso_x
        assert_clean(watch)


def test_a_traceback_in_the_restored_worker_names_each_file_and_line(url, ctx):
    """The worker's code keeps line numbers but no column ranges (PYTHONNODEBUGRANGES, sitebuild/snapshot.py: 0.6 MB
    less snapshot): a traceback names every file and line, the app's shipped source line included, without ^^^."""
    code = textwrap.dedent(
        """
        import traceback
        import param
        from mtl_core import _checks

        class P(param.Parameterized):
            x = param.Number(1.0)

        out = []
        for bad in (lambda: _checks.real("alpha", 1.5, high=1), lambda: P(x="text")):
            try:
                bad()
            except ValueError:
                out.append(traceback.format_exc())
        out.append(str(list(_checks.real.__code__.co_positions())[-1]))
        "\\n@@\\n".join(out)
        """
    )
    with opened(ctx, f"{url}/arena.html", "traceback") as (page, watch):
        ours, library, positions = page.evaluate("(code) => window.mtlPlayground.runPython(code)", code).split("\n@@\n")
        # the app's own module, shipped as source: file, line, function and the line's text
        assert re.search(r'File "/lib/python3\.12/site-packages/mtl_core/_checks\.py", line \d+, in real\n', ours)
        assert 'raise ValueError(f"{name} must be' in ours and "alpha must be <= 1, got 1.5" in ours
        # a precompiled package (no source shipped): file, line and function still
        assert re.search(r'File "/lib/python3\.12/site-packages/param/parameters\.py", line \d+, in \w+', library)
        assert "^" not in ours + library  # no column ranges: nothing to underline
        assert re.fullmatch(r"\(\d+, \d+, None, None\)", positions), positions
        assert_clean(watch)


def test_a_live_page_fetches_the_modules_no_page_imported_only_when_one_is_imported(site, url, ctx):
    """later.pack (numpy.fft, the packages' unused modules) is not part of going live; the first import of one of
    its modules fetches it once, and an optional import of a module the site does not have fetches nothing."""
    later = page_config(site, "arena")["sitePackages"]["later"]
    fetched = []
    ctx.on("request", lambda r: fetched.append(r.url) if later["url"] in r.url else None)

    def python(page, code: str) -> str:
        return page.evaluate("(code) => window.mtlPlayground.runPython(code)", code)

    with opened(ctx, f"{url}/arena.html", "later-on-demand") as (page, watch):
        page.wait_for_timeout(1000)
        assert fetched == [] and "later-on-demand" not in worker_marks(page)
        missing = python(page, "try:\n    import pandas\n    r = 'found'\nexcept ImportError:\n    r = 'no'\nr")
        assert missing == "no" and fetched == []
        fft = "import numpy as np\nimport numpy.fft\nstr(np.round(np.fft.fft([1.0, 0.0, -1.0, 0.0]).real, 6).tolist())"
        assert python(page, fft) == "[0.0, 2.0, 0.0, 2.0]"  # numpy's compiled fft module, loaded after the restore
        assert len(fetched) == 1 and "later-on-demand" in worker_marks(page)
        assert python(page, "import numpy.ma\nstr(numpy.ma.masked_less([1, 3], 2).sum())") == "3"
        assert len(fetched) == 1  # the pack came once, with all its modules
        assert_clean(watch)


def test_a_page_built_for_its_url_in_the_browser_goes_live_without_later_pack(site, url, ctx):
    """A URL with settings builds its page anew after the restore, and Panel tries bokeh.server.contexts for every
    new document (without tornado it cannot import, here as at build time): that must not fetch later.pack."""
    later = page_config(site, "shared_separate")["sitePackages"]["later"]
    fetched = []
    ctx.on("request", lambda r: fetched.append(r.url) if later["url"] in r.url else None)
    with opened(ctx, f"{url}/shared_separate.html?relatedness=0.3", "deep-link-no-later") as (page, watch):
        marks = worker_marks(page)
        assert "page-imported" in marks, marks  # built here, not adopted from the snapshot
        page.wait_for_timeout(1000)
        assert fetched == [] and "later-on-demand" not in worker_marks(page)
        assert_clean(watch)


def _rewrite_table_digest(route):
    resp = route.fetch()
    html = re.sub(r'("table": \{[^}]*"digest": ")[0-9a-f]+"', r'\g<1>00000000"', resp.text(), count=1)
    assert "00000000" in html
    route.fulfill(response=resp, body=html)


def _rewrite_data_digest(route):
    """A runtime whose data segment is not the one the snapshot's difference was taken against."""
    resp = route.fetch()
    html = re.sub(r'("dataDelta": \{[^}]*"digest": ")[0-9a-f]+"', r'\g<1>00000000"', resp.text(), count=1)
    assert "00000000" in html
    route.fulfill(response=resp, body=html)


def _half_of_the_body(route):
    body = route.fetch().body()
    route.fulfill(status=200, body=body[: len(body) // 2])


@pytest.mark.parametrize(
    "failure", ["snapshot-404", "snapshot-garbage", "snapshot-cut-off", "table-differs", "data-segment-differs"]
)
def test_a_snapshot_that_cannot_be_used_falls_back_to_a_full_boot(url, ctx, failure):
    """A missing snapshot, or a runtime whose function table does not match it (a browser that boots differently),
    costs time, not the page: the worker says why in the console and boots Python from scratch."""
    page = ctx.new_page()
    watch = PageWatch()
    watch.attach(page)
    try:
        if failure in ("table-differs", "data-segment-differs"):
            rewrite = _rewrite_table_digest if failure == "table-differs" else _rewrite_data_digest
            page.route("**/shared_separate.html", rewrite)
        else:
            snapshot_responses = {
                "snapshot-404": lambda route: route.fulfill(status=404, body="gone"),
                # a proxy or a broken cache handing out the wrong bytes: the decoder must say so, not hang
                "snapshot-garbage": lambda route: route.fulfill(status=200, body=bytes(range(256)) * 4096),
                # the connection dropped halfway: the decoder must say so, not hang
                "snapshot-cut-off": _half_of_the_body,
            }
            page.route("**/python-heap.*", snapshot_responses[failure])
            page.goto(f"{url}/index.html")  # a first visit: nothing cached
            page.evaluate(FORGET_THE_SITE)
        page.goto(f"{url}/shared_separate.html")
        page.wait_for_function(SETTLED, timeout=BOOT_MS)
        assert page.evaluate("document.documentElement.dataset.mtlState") == "live"
        marks = worker_marks(page)
        assert "snapshot-failed" in marks and "snapshot-restored" not in marks, marks
        assert marks["snapshot-failed"] < marks["panel-imported"] < marks["page-created"]
        why = {
            "snapshot-404": "404",
            "snapshot-garbage": "not zstd",
            "snapshot-cut-off": "",
            "table-differs": "function table differs",
            "data-segment-differs": "data segment",
        }[failure]
        assert any("memory snapshot could not be used" in line and why in line for line in watch.console), watch.console
        # the document drawn while the heap downloaded is not the one Python built: it left, the worker's is shown
        drawn = page.evaluate(DRAWN_AHEAD)
        assert drawn == {"drawn": True, "used": False, "docs": 1, "shown": True}, (drawn, watch.console)
        assert page.evaluate("window.mtlPlayground.documentSent") is True
        # and the page works: a slider move reaches Python, which writes it back into the URL
        wait_steps(page, "acc_source", 5)
        drag_slider(page, "Task relatedness", 0.1)
        page.wait_for_function("() => window.location.search.includes('relatedness=')", timeout=ACT_MS)
        # a worker booted from scratch ran the definitions the snapshot would have held
        assert {"defined-mtl_link_docs", "defined-mtl_apply_patch"} <= set(page.evaluate(MARKS)), page.evaluate(MARKS)
        assert watch.problems(ignore_console=("404", "Failed to load resource")) == []
    except BaseException:
        screenshot_on_failure(page, f"static-{failure}")
        raise
    finally:
        page.close()


# ---------------------------------------------------------------------------------------------- the browser
def test_index_lists_every_page(site, url, ctx):
    """A card per page, numbered in the suggested order, with its picture when the build took them."""
    pictures = json.loads((site / "build-info.json").read_text())["options"]["preview_images"]
    with opened(ctx, f"{url}/index.html", "index", wait=None) as (page, watch):
        for n, slug in enumerate(pages_of(site), start=1):
            card = page.locator(f'a[href="{slug}.html"]')
            assert card.count() == 1, slug
            assert card.locator(".n").inner_text() == str(n)
            if pictures:
                img = card.locator("img")
                img.scroll_into_view_if_needed()
                page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
                assert img.evaluate("(el) => [el.naturalWidth, el.naturalHeight]") == [640, 400]
                assert img.get_attribute("alt").startswith("Preview of the page")
                assert (site / f"previews/{slug}-card.jpg").stat().st_size < 80_000  # a card, not a screenshot
        assert_clean(watch)


@pytest.mark.parametrize(
    "slug", ["shared_separate", "architectures", "arena", "weighting_lab", "training_loop", "auxiliary"]
)
def test_page_boots_in_the_worker_without_errors(site, url, ctx, slug):
    if slug not in pages_of(site):
        pytest.fail(f"{slug} is not in the built site")
    with opened(ctx, f"{url}/{slug}.html", f"boot-{slug}") as (page, watch):
        st = page.evaluate("({preview: window.mtlPlayground.previewShownAt, live: window.mtlPlayground.liveAt})")
        assert st["preview"] is not None and st["preview"] < st["live"], st  # the preview came first
        assert page.evaluate(N_FIGURES) > 0
        assert page.locator("#mtl-loading").is_hidden() and page.locator("#mtl-error").is_hidden()
        assert page.locator("#mtl-preview").count() == 0  # replaced by the live app
        drawn = page.evaluate(DRAWN_AHEAD)
        assert drawn == {"drawn": True, "used": True, "docs": 1, "shown": True}, drawn
        page.wait_for_timeout(1500)  # live pages run a few ticks: errors in periodic callbacks show up too
        # the worker's definitions (linking the documents, applying the page's changes) came with the snapshot
        marks = page.evaluate(MARKS)
        assert "snapshot-restored" in marks and not [m for m in marks if m.startswith("defined-")], marks
        assert_clean(watch)


@contextlib.contextmanager
def heap_held(page, url: str, site: pathlib.Path):
    """Within the block the worker does not get the snapshot's heap, so what the page does before Python is ready
    can be looked at without racing it (a visit with everything cached is live within a second). This browser's
    copies of the site are forgotten first: a heap in Cache Storage would not be asked for."""
    held = []
    page.goto(f"{url}/index.html")
    page.evaluate(FORGET_THE_SITE)
    heap = page_config(site, "arena")["snapshot"]["url"]  # one snapshot serves every page
    page.route(f"**/{heap}", lambda route: held.append(route))
    yield
    for _ in range(600):  # the worker asks for the heap first of all: it is waiting by now
        if held:
            break
        page.wait_for_timeout(50)
    held[0].continue_()


@pytest.mark.parametrize("query", ["", "?embed=1"])
def test_a_page_that_drew_its_document_ahead_is_not_sent_it_once_more(site, url, ctx, query):
    """The worker sends only the render items of a document the page already drew from the file beside the snapshot
    (boot.py): the heap is held back here until the page has drawn, so the worker knows it when it gets there."""
    page = ctx.new_page()
    watch = PageWatch()
    watch.attach(page)
    try:
        with heap_held(page, url, site):
            page.goto(f"{url}/architectures.html{query}")
            page.wait_for_function("() => window.mtlPlayground.drawnAheadAt != null", timeout=BOOT_MS)
        page.wait_for_function(LIVE, timeout=BOOT_MS)
        drawn = page.evaluate(DRAWN_AHEAD)
        assert drawn == {"drawn": True, "used": True, "docs": 1, "shown": True}, drawn
        assert page.evaluate("window.mtlPlayground.documentSent") is False
        assert "snapshot-restored" in page.evaluate("window.mtlPlayground.marks")
        # the page drawn from the file is the live one: a slider move reaches Python and comes back into the URL
        drag_slider(page, "Task relatedness", 0.1)
        page.wait_for_function("() => window.location.search.includes('relatedness=')", timeout=ACT_MS)
        assert_clean(watch)
    except BaseException:
        screenshot_on_failure(page, f"static-not-sent-again{query}")
        raise
    finally:
        page.close()


@pytest.mark.parametrize("embed", [False, True])
def test_preview_picture_shows_before_python_and_gives_way_to_the_live_app(site, url, ctx, embed):
    config = page_config(site, "shared_separate")
    shots = config["previewImages"]["embed" if embed else "plain"]
    assert sorted(s["w"] for s in shots) == sorted(PREVIEW_WIDTHS["embed" if embed else "plain"])
    for shot in shots:
        assert (site / shot["url"].split("?")[0]).read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    address = f"{url}/shared_separate.html" + ("?embed=1" if embed else "")
    page = ctx.new_page()
    watch = PageWatch()
    watch.attach(page)
    try:
        with heap_held(page, url, site):  # Python is not ready before the picture has been looked at
            page.goto(address)
            page.wait_for_function("() => window.mtlPlayground.previewShownAt != null", timeout=ACT_MS)
            img = page.evaluate("""() => { const i = document.querySelector('#mtl-preview img');
                return i && {w: i.naturalWidth, src: i.currentSrc, shown: i.getBoundingClientRect().height > 100}; }""")
            assert img is not None and img["w"] > 0 and img["shown"], img
            assert page.evaluate("document.documentElement.dataset.mtlState") == "preview"
            # a 1200-px window gets the widest picture that fits it, at its natural size
            fits = max(s["w"] for s in shots if s["w"] <= 1200)
            assert f"-{fits}.jpg" in img["src"], img
            assert page.evaluate("document.querySelector('#mtl-preview img').getBoundingClientRect().width") == fits
        page.wait_for_function(LIVE, timeout=BOOT_MS)
        assert page.locator("#mtl-preview").count() == 0  # the picture gave way to the live app
        assert page.evaluate(N_FIGURES) > 0
        # an embed adopts the plain page's document drawn ahead too: its own changes follow as patches
        drawn = page.evaluate(DRAWN_AHEAD)
        assert drawn == {"drawn": True, "used": True, "docs": 1, "shown": True}, drawn
        assert_clean(watch)
    except BaseException:
        screenshot_on_failure(page, f"static-picture-{embed}")
        raise
    finally:
        page.close()


def drag_slider(page, title: str, fraction: float) -> None:
    """Drag the slider whose label starts with ``title`` to ``fraction`` of its track, like a user."""
    group = page.locator("div.bk-input-group", has=page.locator(".bk-slider-title", has_text=title))
    handle = group.locator(".noUi-handle").bounding_box()
    track = group.locator(".noUi-base").bounding_box()
    y = handle["y"] + handle["height"] / 2
    page.mouse.move(handle["x"] + handle["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + fraction * track["width"], y, steps=6)
    page.mouse.up()


def wait_steps(page, source: str, n: int) -> None:
    page.wait_for_function(f"() => {DOC}.get_model_by_name({source!r}).data.step.length >= {n}", timeout=ACT_MS)


def test_relatedness_slider_retrains_and_redraws(url, ctx):
    with opened(ctx, f"{url}/shared_separate.html", "slider") as (page, watch):
        wait_steps(page, "acc_source", 15)  # live training runs in the worker
        before = column(page, "acc_source", "shared_test_b")[:15]
        old = model(page, "relatedness")
        drag_slider(page, "Task relatedness", 0.1)
        page.wait_for_function(f"() => {DOC}.get_model_by_name('relatedness').value < 0.25", timeout=ACT_MS)
        new = model(page, "relatedness")
        assert new != old
        # Python restarted the run (the curve starts again from step 0) and redrew with the new data
        page.wait_for_function(
            f"(old) => {{ const d = {DOC}.get_model_by_name('acc_source').data;"
            f"  return d.step.length >= 15 && d.shared_test_b.slice(0, 15).some((v, i) => v !== old[i]); }}",
            arg=before,
            timeout=ACT_MS,
        )
        image = page.evaluate(f"() => Array.from({DOC}.get_model_by_name('heat_shared_b').data.image[0]).slice(0, 50)")
        assert len(image) == 50 and all(0.0 <= v <= 1.0 for v in image)
        # the app wrote the new setting back into the page's URL (through the worker)
        page.wait_for_function("() => window.location.search.includes('relatedness=')", timeout=ACT_MS)
        assert_clean(watch)


ARROWS = f"""() => {{
  const d = {DOC}.get_model_by_name('arrow_source').data;
  return {{which: [...d.which], gx: [...d.gx], gy: [...d.gy], x0: [...d.x0], y0: [...d.y0]}};
}}"""
TO_PAGE = f"""([name, x, y]) => {{
  const view = Bokeh.index.find_one({DOC}.get_model_by_name(name));
  const r = view.canvas_view.el.getBoundingClientRect();
  return [r.left + view.frame.x_scale.compute(x), r.top + view.frame.y_scale.compute(y)];
}}"""
ARROWS_CHANGED = f"""(old) => {{ const d = {DOC}.get_model_by_name('arrow_source').data;
  return d.x0[0] !== old.x0[0] || d.y0[0] !== old.y0[0] || d.gx[2] !== old.gx[2] || d.gy[2] !== old.gy[2]; }}"""


def test_arena_click_moves_arrows_and_pcgrad_changes_the_combined_arrow(url, ctx):
    from mtl_core.arena import CAGradToy
    from mtl_core.combine import make_combiner

    with opened(ctx, f"{url}/arena.html", "arena") as (page, watch):
        before = page.evaluate(ARROWS)
        history = page.evaluate("history.length")
        assert before["which"] == ["g_A", "g_B", "combined"]
        target = (-1.0, 7.0)  # between the CAGrad toy's valleys: the task gradients conflict there
        page.mouse.click(*page.evaluate(TO_PAGE, ["arena_plot", *target]))
        page.wait_for_function(ARROWS_CHANGED, arg=before, timeout=ACT_MS)
        after = page.evaluate(ARROWS)
        clicked = np.array([after["x0"][0], after["y0"][0]])
        assert np.allclose(clicked, target, atol=0.2), clicked
        G = CAGradToy().grads(clicked)  # computed here by CPython; the page's came from Pyodide
        assert np.allclose([after["gx"][0], after["gy"][0]], G[0], rtol=1e-6, atol=1e-9)
        assert np.allclose([after["gx"][1], after["gy"][1]], G[1], rtol=1e-6, atol=1e-9)
        assert np.allclose([after["gx"][2], after["gy"][2]], G.sum(axis=0), rtol=1e-6)

        page.get_by_role("button", name="PCGrad surgery").click()
        page.wait_for_function(ARROWS_CHANGED, arg=after, timeout=ACT_MS)
        toggled = page.evaluate(ARROWS)
        pc = make_combiner("pcgrad").combine(G, rng=np.random.default_rng(0)).direction
        assert np.allclose([toggled["gx"][2], toggled["gy"][2]], pc, rtol=1e-6, atol=1e-9)
        assert not np.allclose(pc, G.sum(axis=0))
        page.wait_for_function("() => window.location.search.includes('pcgrad=1')", timeout=ACT_MS)
        # the address was replaced, not pushed: Back leaves the page instead of walking through the clicks
        assert page.evaluate("history.length") == history

        page.locator("select").select_option(label="FairGrad")  # a newer method, from the menu
        page.wait_for_function(ARROWS_CHANGED, arg=toggled, timeout=ACT_MS)
        fair_arrows = page.evaluate(ARROWS)
        fair = make_combiner("fairgrad", alpha=2.0).combine(G, rng=np.random.default_rng(0)).direction
        assert np.allclose([fair_arrows["gx"][2], fair_arrows["gy"][2]], fair, rtol=1e-6, atol=1e-9)
        page.get_by_text("FairGrad α").wait_for(state="visible", timeout=ACT_MS)
        assert_clean(watch)


def test_reduced_motion_starts_a_training_page_paused_and_train_still_works(url, ctx):
    with opened(ctx, f"{url}/shared_separate.html", "reduced-motion", media={"reduced_motion": "reduce"}) as (
        page,
        watch,
    ):
        page.get_by_text("Your system asks for reduced motion").wait_for(timeout=ACT_MS)
        page.wait_for_timeout(1500)  # live, and nothing trains by itself
        assert "Step 0 /" in model(page, "status", "text")
        page.get_by_role("button", name="Train").click()
        # (generous: once, on a machine at load 20, the first redraw after this click took over 30 s)
        page.wait_for_function(f"() => !{DOC}.get_model_by_name('status').text.includes('Step 0 /')", timeout=BOOT_MS)
        assert_clean(watch)


def test_copy_link_and_embed_on_the_static_site(url, ctx):
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    with opened(ctx, f"{url}/arena.html?x=1&y=2", "share") as (page, watch):
        page.get_by_role("button", name="Copy link").click()
        page.get_by_text("Link copied.").wait_for(timeout=ACT_MS)
        assert page.evaluate("navigator.clipboard.readText()") == page.url
        page.get_by_role("button", name="Embed").click()
        page.get_by_text("Embed snippet copied.").wait_for(timeout=ACT_MS)
        snippet = page.evaluate("navigator.clipboard.readText()")
        assert f'src="{url}/arena.html?x=1&amp;y=2&amp;embed=1"' in snippet
        assert f'<script src="{url}/embed.js" async></script>' in snippet  # the site's iframe resizer
        assert_clean(watch)


def test_deep_link_reaches_the_app_in_the_worker(url, ctx):
    with opened(ctx, f"{url}/shared_separate.html?relatedness=0.3&seed=5", "deeplink") as (page, watch):
        assert model(page, "relatedness") == 0.3 and model(page, "seed") == 5
        # a preview is the default state: with settings in the URL the page must not show it
        assert page.evaluate("window.mtlPlayground.previewShownAt") is None
        assert page.locator("#mtl-preview img").count() == 0
        assert_clean(watch)


def test_architectures_deep_link_and_slider_retrain_in_the_worker(url, ctx):
    """The branch point of the link reaches Python (the shared-layer count of the diagram), and a slider move there
    starts a new run that trains and redraws."""
    with opened(ctx, f"{url}/architectures.html?branch=0&relatedness=0.3", "architectures") as (page, watch):
        assert model(page, "branch") == 0 and model(page, "relatedness") == 0.3
        labels = column(page, "arch_source", "label")
        assert not any(label.startswith("shared") for label in labels), labels  # branch 0: nothing shared
        wait_steps(page, "acc_source", 5)
        before = column(page, "acc_source", "hard_test_b")[:5]
        drag_slider(page, "Task relatedness", 0.9)
        page.wait_for_function(f"() => {DOC}.get_model_by_name('relatedness').value > 0.6", timeout=ACT_MS)
        page.wait_for_function(
            f"(old) => {{ const d = {DOC}.get_model_by_name('acc_source').data;"
            f"  return d.step.length >= 5 && d.hard_test_b.slice(0, 5).some((v, i) => v !== old[i]); }}",
            arg=before,
            timeout=ACT_MS,
        )
        page.wait_for_function("() => window.location.search.includes('branch=0')", timeout=ACT_MS)
        assert_clean(watch)


def test_embed_page_fits_an_800px_iframe_that_the_embed_script_resizes(url, ctx):
    page = ctx.new_page()
    watch = PageWatch()
    watch.attach(page)
    try:
        page.goto(f"{url}/index.html")  # a same-origin host page standing in for a blog post
        page.evaluate(
            """(src) => {
            document.body.innerHTML = '';
            const f = document.createElement('iframe');
            f.src = src; f.id = 'demo'; f.style.cssText = 'width:800px;height:150px;border:0';
            document.body.appendChild(f);
            const s = document.createElement('script'); s.src = 'embed.js'; document.body.appendChild(s);
        }""",
            f"{url}/arena.html?embed=1",
        )
        frame = page.frame_locator("#demo")
        page.wait_for_function(
            "() => { const w = document.getElementById('demo').contentWindow;"
            "  const el = w && w.document && w.document.documentElement;"
            "  return !!el && ['live', 'error'].includes(el.dataset.mtlState) }",
            timeout=BOOT_MS,
        )
        inner = next(f for f in page.frames if f.url.endswith("arena.html?embed=1"))
        assert inner.evaluate("document.documentElement.dataset.mtlState") == "live"
        # no site chrome inside a blog post: the page built for the plain URL hides it (PageView.show_as_embed)
        assert frame.locator("nav.mtl-header").filter(visible=True).count() == 0
        assert frame.get_by_role("navigation").count() == 0  # nor does a screen reader meet it
        assert inner.evaluate("document.documentElement.scrollWidth") <= 800  # no sideways scrolling
        content = inner.evaluate("Math.ceil(document.body.getBoundingClientRect().height)")
        assert content > 300
        page.wait_for_function(
            "(h) => Math.abs(document.getElementById('demo').getBoundingClientRect().height - h) <= 2",
            arg=content,
            timeout=ACT_MS,
        )
        assert_clean(watch)
    except BaseException:
        screenshot_on_failure(page, "static-embed")
        raise
    finally:
        page.close()


POST_PAGES = ("shared_separate", "arena")


def post_with_two_widgets(ctx, url: str, name: str, heap_route, pages=POST_PAGES):
    """A blog post (a page of the site's origin, as the README's snippet puts it in a post) embedding ``pages``, on
    a first visit; every request for the snapshot's heap goes to ``heap_route(route)``. Yields (page, watch) once it
    is opened."""
    post = "<h1>A post</h1>" + "".join(
        f'<iframe src="{s}.html?embed=1" style="width:800px;height:900px;border:0"></iframe>' for s in pages
    )

    def first_visit(page):
        page.goto(f"{url}/index.html")
        page.evaluate(FORGET_THE_SITE)
        page.route(f"{url}/__post.html", lambda route: route.fulfill(body=post, content_type="text/html"))
        page.route("**/python-heap.*", heap_route)

    return opened(ctx, f"{url}/__post.html", name, wait=None, before=first_visit)


def post_frames(page, pages=POST_PAGES) -> dict:
    """{slug: frame} of the post's widgets, once all are settled (live or showing their error)."""
    frames = {}
    for _ in range(BOOT_MS // 100):
        frames = {s: f for f in page.frames for s in pages if f"/{s}.html" in f.url}
        try:
            if len(frames) == len(pages) and all(f.evaluate(SETTLED) for f in frames.values()):
                return frames
        except Exception:  # noqa: BLE001 - a frame still navigating
            pass
        page.wait_for_timeout(100)
    raise AssertionError(f"the post's widgets did not settle: {sorted(frames)}")


def listen_for_relay_requests(page, url: str, site: pathlib.Path) -> None:
    """The post's own page listens on the heap's relay channel (shared/relay.js): ``window.joined`` counts the
    requests of workers that wait on another's download."""
    heap = page_config(site, "arena")["snapshot"]["url"]
    page.evaluate(
        """(url) => { window.joined = 0; const c = new BroadcastChannel('mtl-playground relay ' + url);
            c.onmessage = (e) => { if (e.data && e.data.join) window.joined += 1; }; }""",
        f"{url}/{heap}",
    )


def test_a_post_with_two_widgets_downloads_the_heap_once_and_relays_it_to_the_second(site, url, ctx):
    """The second widget's worker does not wait until the first has the heap whole in Cache Storage: it gets the
    bytes relayed as they arrive (shared/relay.js). The heap is held back here until the second has asked for it,
    so it is the relay, not the cache, that it reads."""
    asked = []
    with post_with_two_widgets(ctx, url, "post-relay", lambda route: asked.append(route)) as (page, watch):
        listen_for_relay_requests(page, url, site)
        page.wait_for_function("() => window.joined > 0", timeout=BOOT_MS)
        assert len(asked) == 1, "the heap was requested once, by the first worker"
        asked[0].continue_()
        frames = post_frames(page)
        marks = {slug: f.evaluate("window.mtlPlayground.marks") for slug, f in frames.items()}
        for slug, m in marks.items():
            assert frames[slug].evaluate("document.documentElement.dataset.mtlState") == "live", slug
            assert "snapshot-restored" in m and "snapshot-failed" not in m, (slug, m)
        assert sorted("snapshot-relayed" in m for m in marks.values()) == [False, True], marks
        assert len(asked) == 1  # nobody downloaded it a second time
        for f in frames.values():
            assert f.evaluate(N_FIGURES) > 0
        assert_clean(watch)


def test_a_widget_waiting_on_one_that_leaves_the_post_downloads_the_heap_itself(site, url, ctx):
    """The widget whose worker is downloading the heap (the one that would relay it) is taken out of the post while
    the other waits on it: the other is not left waiting, it downloads the heap itself and restores it."""
    asked = []
    hold = lambda route: asked.append(route)  # noqa: E731 - Playwright wants a Python function, not a bound builtin
    with post_with_two_widgets(ctx, url, "post-leaver", hold, pages=("arena",)) as (page, watch):
        listen_for_relay_requests(page, url, site)
        page.wait_for_function("() => document.querySelector('iframe') != null")
        for _ in range(BOOT_MS // 100):
            if asked:
                break
            page.wait_for_timeout(100)
        assert len(asked) == 1, "the arena's worker asked for the heap (held back here)"
        page.evaluate(
            """() => { const f = document.createElement('iframe'); f.src = 'shared_separate.html?embed=1';
                f.style.cssText = 'width:800px;height:900px;border:0'; document.body.appendChild(f); }"""
        )
        page.wait_for_function("() => window.joined > 0", timeout=BOOT_MS)
        page.evaluate("() => document.querySelector('iframe').remove()")  # the arena leaves, its download unfinished
        for _ in range(BOOT_MS // 100):
            if len(asked) > 1:
                break
            page.wait_for_timeout(100)
        assert len(asked) == 2, "the widget left alone asked for the heap itself"
        asked[1].continue_()
        (frame,) = post_frames(page, ("shared_separate",)).values()
        assert frame.evaluate("document.documentElement.dataset.mtlState") == "live"
        marks = frame.evaluate("window.mtlPlayground.marks")
        assert "snapshot-restored" in marks and "snapshot-relayed" not in marks, marks
        assert frame.evaluate(N_FIGURES) > 0
        assert_clean(watch)


def test_a_post_whose_heap_arrives_cut_off_still_goes_live_in_both_widgets(site, url, ctx):
    """The heap relayed to the second widget is as damaged as the first's: both fall back to a full boot, neither
    hangs."""
    with post_with_two_widgets(ctx, url, "post-cut", _half_of_the_body) as (page, watch):
        frames = post_frames(page)
        for slug, f in frames.items():
            assert f.evaluate("document.documentElement.dataset.mtlState") == "live", slug
            assert "snapshot-failed" in f.evaluate("window.mtlPlayground.marks"), slug
        assert watch.problems(ignore_console=("Failed to load resource",)) == []


# ---------------------------------------------------------------------------------------------- failures
FIXTURE_PAGES = """
from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    slug: str
    title: str
    module: str
    summary: str


PAGES = (PageInfo("broken", "Broken", "mtl_fixture_app.broken", "Renders at build time, fails in the browser."),)
"""
FIXTURE_BROKEN = """
import sys

import panel as pn


def create_page(query=None):
    if sys.platform == "emscripten":
        raise RuntimeError("fixture page: this page fails in the browser on purpose")
    return pn.Column(pn.pane.Markdown("# built fine"), pn.widgets.FloatSlider(name="x"))
"""


@pytest.fixture(scope="module")
def fixture_app(tmp_path_factory) -> pathlib.Path:
    pkg = tmp_path_factory.mktemp("fixture") / "mtl_fixture_app"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "pages.py").write_text(textwrap.dedent(FIXTURE_PAGES))
    (pkg / "broken.py").write_text(textwrap.dedent(FIXTURE_BROKEN))
    return pkg


@pytest.fixture(scope="module")
def fixture_site(fixture_app, tmp_path_factory) -> pathlib.Path:
    """The fixture app built once (~25-50 s a build): the failing page is served from it and the reproducibility
    test builds it once more to compare."""
    out = tmp_path_factory.mktemp("fixture-site") / "site"
    res = run_build(out, "--app-dir", str(fixture_app))
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_a_failing_page_shows_a_readable_error_not_a_blank_page(fixture_site, ctx):
    proc, base = serve_dir(fixture_site, "static_fixture_server")
    try:
        with opened(ctx, f"{base}/broken.html", "broken", wait=None) as (page, watch):
            page.wait_for_function(SETTLED, timeout=BOOT_MS)
            assert page.evaluate("document.documentElement.dataset.mtlState") == "error"
            box = page.locator("#mtl-error")
            assert box.is_visible()
            assert "RuntimeError: fixture page: this page fails in the browser on purpose" in box.inner_text()
            assert page.locator("#mtl-loading").is_hidden()
            assert watch.offsite_requests == []
    finally:
        stop_process(proc)


def test_cdn_build_loads_numpy_from_the_cdn_and_keeps_the_rest_local(fixture_app, tmp_path):
    out = tmp_path / "cdn"
    res = run_build(out, "--app-dir", str(fixture_app), "--cdn", "--no-preview-images")
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (out / "pyodide").exists()
    config = page_config(out, "broken")
    assert config["cdnIndexURL"] == PYODIDE_CDN and "numpy" in config["lockPackages"]
    assert all(u.startswith(PYODIDE_CDN) for u in config["prefetch"])
    assert config["sitePackages"]["dynlibs"] == []
    assert config["snapshot"] is None  # the snapshot needs the pack's numpy
    index, _, _ = read_pack(out / config["sitePackages"]["url"])
    tops = {p.split("/")[0] for p, _ in index}
    assert "numpy" not in tops and {"panel", "bokeh", "mtl_fixture_app"} <= tops


def sha256_of(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_is_reproducible(fixture_app, fixture_site, tmp_path):
    again = tmp_path / "again"
    res = run_build(again, "--app-dir", str(fixture_app))
    assert res.returncode == 0, res.stderr[-3000:]
    digests = [
        {f.relative_to(out).as_posix(): sha256_of(f) for f in out.rglob("*") if f.is_file()}
        for out in (fixture_site, again)
    ]
    assert digests[0] == digests[1]
    assert len(digests[0]) > 20


def test_missing_pages_module_stops_the_build_with_a_message(tmp_path):
    (tmp_path / "noapp").mkdir()
    res = run_build(tmp_path / "out", "--app-dir", str(tmp_path / "noapp"))
    assert res.returncode == 2
    assert "pages.py not found" in res.stderr and "--app-dir" in res.stderr
