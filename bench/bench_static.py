"""Static-site speed: our build against a stock-style `panel convert` worker build of the same pages.

    .venv/bin/python bench/bench_static.py [--loads 3] [--pages shared_separate,arena] [--skip-build]

In one run it builds both sites (ours with build.py; the stock one with Panel's own convert_app, its default
packages incl. pandas, micropip installs, no precompilation, no preview of its own beyond Panel's prerender, patched
only as far as needed to run offline: local Pyodide URL, inlined BokehJS, the jsnull/nh3 shims), serves them on
127.0.0.1 with a server that counts bytes, and loads every page `--loads` times in headless Debian Chromium with
a fresh cache (a new browser context per load; every host but localhost unresolvable). Per load:

* preview: navigation -> a Bokeh figure is on screen, or for ours its preview picture (first meaningful paint);
* interactive: navigation -> a real slider key press (or an arena click) answered by Python, i.e. the app wrote
  the new setting into the page URL through its Location model;
* bytes transferred (uncompressed response bodies counted by the server).

Then, for our site: repeat-visit time-to-interactive with a warm cache (same browser context, service worker
installed), and in-browser latencies: slider -> retrain -> redraw (shared_separate) and arena click -> redraw.
Prints medians and our/stock ratios; targets from issue 5 are printed beside them. Timing is noisy on a shared
2-core machine: compare within one run.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sitebuild.render import load_pages  # noqa: E402
from sitebuild.serve import Handler  # noqa: E402
from browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

PYTHON = sys.executable
DOC = "Bokeh.documents[Bokeh.documents.length - 1]"  # the live document is the last one in both builds
HAS_FIGURE = (
    "() => window.Bokeh && Bokeh.index && Bokeh.documents.length > 0 && "
    "[...Bokeh.documents[0].all_models].some(m => m.constructor.__name__ === 'Figure') && "
    "document.querySelector('.bk-Figure, .bk-panel-models-layout-Column, [data-root-id]') !== null"
)
# ours: its preview picture (or, without one, the same Figure test); previewShownAt is set when the picture loaded
PREVIEW = {
    "ours": f"() => (window.mtlPlayground && window.mtlPlayground.previewShownAt != null) || ({HAS_FIGURE})()",
    "stock": HAS_FIGURE,
}
LIVE = {
    "ours": "() => document.documentElement.dataset.mtlState === 'live'",
    "stock": "() => window.Bokeh && Bokeh.documents.length > 0 && document.body && "
    "!document.body.classList.contains('pn-loading')",
}


# ---------------------------------------------------------------------------------------------- stock build
STOCK_LOCK_PACKAGES = ["micropip", "numpy", "pandas", "pillow", "contourpy", "packaging"]


def build_stock(out: pathlib.Path, pages: list) -> None:
    """The same pages the way `panel convert --to pyodide-worker` makes them, made to run offline.

    Runs in a subprocess of its own: Panel's convert module must be imported with PANEL_CDN_ROOT pointing into
    the site, and the pages render there.
    """
    out.mkdir(parents=True, exist_ok=True)
    code = STOCK_BUILDER.replace("__OUT__", repr(str(out))).replace("__PAGES__", repr([p.slug for p in pages]))
    res = subprocess.run(
        [PYTHON, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PANEL_CDN_ROOT": "./panel-cdn/"},
    )
    if res.returncode != 0:
        raise SystemExit(f"stock build failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")


STOCK_BUILDER = (
    r"""
import json, os, pathlib, shutil, sys, jinja2
sys.path.insert(0, os.getcwd())
from sitebuild.pins import APP_WHEEL, CACHE
from sitebuild.sources import fetch_core, fetch_lock_wheels, fetch_pure_wheels
from sitebuild.wheels import build_app_wheel, repack
import panel.io.convert as C
from panel.io.resources import DIST_DIR, JS_VERSION

OUT = pathlib.Path(__OUT__)
SLUGS = __PAGES__
cache = CACHE
core = fetch_core(cache)
lock = json.loads(core["pyodide-lock.json"].read_text())
needed, todo = [], list("""
    + repr(STOCK_LOCK_PACKAGES)
    + r''')
while todo:
    n = todo.pop(0)
    if n not in needed:
        needed.append(n); todo += lock["packages"][n]["depends"]
files = fetch_lock_wheels(cache, [lock["packages"][n]["file_name"] for n in needed], lock)
(OUT / "pyodide").mkdir(exist_ok=True)
for name in ("pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"):
    shutil.copyfile(core[name], OUT / "pyodide" / name)
for name, path in files.items():
    shutil.copyfile(path, OUT / "pyodide" / name)
# pure wheels as PyPI ships them (panel convert installs panel/bokeh wheels from Panel's CDN: slimmed like these)
(OUT / "wheels").mkdir(exist_ok=True)
names = []
for src in fetch_pure_wheels(cache):
    repack(src, OUT / "wheels" / src.name, cache)
    names.append(src.name)
build_app_wheel(pathlib.Path("app").resolve(), OUT / "wheels" / APP_WHEEL)
names.append(APP_WHEEL)
cdn = OUT / "panel-cdn" / JS_VERSION / "dist"
if not cdn.exists():
    shutil.copytree(DIST_DIR, cdn, ignore=shutil.ignore_patterns("bundled", "lib", "dts", "*.map", "panel.json", "panel.js", "wheels"))
    for sub in ["theme", "reactiveesm", "font-awesome"]:
        if (DIST_DIR / "bundled" / sub).exists():
            shutil.copytree(DIST_DIR / "bundled" / sub, cdn / "bundled" / sub)
SHIMS = (
    "import pyodide.ffi, html, panel.util\\n"
    "if not hasattr(pyodide.ffi, 'jsnull'): pyodide.ffi.jsnull = object()\\n"
    "panel.util.HTML_SANITIZER._sanitize = lambda t: html.escape(t, quote=True)\\n"
)
WORKER = r"""importScripts("{{ PYODIDE_URL }}");
function sendPatch(patch, buffers, msg_id) { self.postMessage({type: 'patch', patch: patch, buffers: buffers}) }
async function startApplication() {
  self.postMessage({type: 'status', msg: 'Loading pyodide'})
  const here = (p) => new URL(p, self.location.href).href;
  self.pyodide = await loadPyodide({indexURL: here('./pyodide/'), env: {PANEL_CDN_ROOT: here('./panel-cdn/')}});
  self.pyodide.globals.set("sendPatch", sendPatch);
  self.postMessage({type: 'status', msg: 'Loading packages'})
  await self.pyodide.loadPackage(__LOCK__);
  self.postMessage({type: 'status', msg: 'Installing environment'})
  self.pyodide.globals.set("WHEEL_URLS", __WHEELS__.map(w => here('./wheels/' + w)));
  await self.pyodide.runPythonAsync("import micropip\nawait micropip.install(list(WHEEL_URLS), deps=False)");
  self.pyodide.runPython("__SHIMS__");
  self.postMessage({type: 'status', msg: 'Executing code'})
  const [docs_json, render_items, root_ids] = await self.pyodide.runPythonAsync(`{{ code }}`)
  self.postMessage({type: 'render', docs_json: docs_json, render_items: render_items, root_ids: root_ids})
}
""".replace("__LOCK__", json.dumps('''
    + repr(STOCK_LOCK_PACKAGES)
    + r""")).replace("__WHEELS__", json.dumps(names)).replace("__SHIMS__", SHIMS)
orig = pathlib.Path(C.__file__).parent.parent / "_templates" / "pyodide_worker.js"
WORKER += "\nself.onmessage" + orig.read_text().split("self.onmessage", 1)[1]
C.PYODIDE_URL = C.PYODIDE_PYC_URL = "./pyodide/pyodide.js"
C.WEB_WORKER_TEMPLATE = jinja2.Environment().from_string(WORKER)
import app.common
app.common.IN_BROWSER = True
import tempfile
tmp = pathlib.Path(tempfile.mkdtemp())
for slug in SLUGS:
    # convert puts its own code before the script, where `from __future__` is a SyntaxError: drop that line
    src = pathlib.Path(f"app/{slug}.py").read_text().replace("from __future__ import annotations\n", "")
    # and the script runs as __main__ in the worker: make the bottom `.servable()` unconditional, as convert expects
    guard = 'if __name__.startswith("bokeh"):'
    i = src.rindex(guard)
    src = src[:i] + "if True:" + src[i + len(guard):]
    (tmp / f"{slug}.py").write_text(src)
    res = C.convert_app(str(tmp / f"{slug}.py"), OUT, requirements=[], runtime="pyodide-worker", prerender=True,
                        http_patch=False, inline=True, panel_version="local", verbose=False)
    if res is None:
        raise SystemExit(f"convert_app failed for {slug}")
print("stock ok")
"""
)


# ---------------------------------------------------------------------------------------------- serving
class CountingHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = Handler.extensions_map
    sent: list = []  # (time, path, bytes), shared by all requests

    def copyfile(self, source, outputfile):
        n = 0
        while True:
            buf = source.read(1 << 16)
            if not buf:
                break
            outputfile.write(buf)
            n += len(buf)
        CountingHandler.sent.append((time.time(), self.path, n))

    def log_message(self, *args):
        pass


def start_server(directory: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(CountingHandler, directory=str(directory))
    )
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


# ---------------------------------------------------------------------------------------------- measuring
def interact(page, slug: str) -> None:
    """One user action that the app answers by writing the URL: an arena click, or a slider key press."""
    if slug == "arena":
        box = page.evaluate(f"""() => {{
            const view = Bokeh.index.find_one({DOC}.get_model_by_name('arena_plot'));
            const r = view.canvas_view.el.getBoundingClientRect();
            return [r.left + view.frame.x_scale.compute(-1), r.top + view.frame.y_scale.compute(7)]; }}""")
        page.mouse.click(*box)
    else:
        handle = page.locator(".noUi-handle").first
        handle.focus()
        page.keyboard.press("ArrowLeft" if slug == "shared_separate" else "ArrowRight")


def answered_at(page, slug: str, tries: int = 20) -> float | None:
    """perf_counter() when the app first answered :func:`interact` (it wrote the URL), None if it never did."""
    search0 = page.evaluate("location.search")
    for _ in range(tries):
        try:
            interact(page, slug)
            page.wait_for_function("(s) => location.search !== s", arg=search0, timeout=3_000, polling=20)
            return time.perf_counter()
        except Exception:  # noqa: BLE001 - not answered yet: the app may still be wiring up; try again
            continue
    return None


def one_load(context, base: str, kind: str, slug: str) -> dict:
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)[:200]))
    CountingHandler.sent.clear()
    t0 = time.perf_counter()
    page.goto(f"{base}/{kind}/{slug}.html", wait_until="commit")
    page.on("console", lambda m: errors.append(m.text[:300]) if m.type == "error" else None)
    try:
        page.wait_for_function(PREVIEW[kind], timeout=120_000, polling=20)
        t_preview = time.perf_counter() - t0
        page.wait_for_function(LIVE[kind], timeout=180_000, polling=20)
        t_live = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - report the failed load, keep benchmarking
        page.close()
        return {
            "preview_s": None,
            "live_s": None,
            "interactive_s": None,
            "bytes": None,
            "errors": [str(exc)[:200]] + errors[:5],
        }
    t_answer = answered_at(page, slug)
    t_interactive = t_answer - t0 if t_answer is not None else None
    t_end = time.time()
    time.sleep(0.3)  # let the last responses land in the count (the service worker registers 3 s after live)
    nbytes = sum(n for t, _, n in CountingHandler.sent if t <= t_end + 0.2)
    page.close()
    return {
        "preview_s": round(t_preview, 2),
        "live_s": round(t_live, 2),
        "interactive_s": round(t_interactive, 2) if t_interactive else None,
        "bytes": nbytes,
        "errors": errors[:3],
    }


SLIDER_LATENCY = f"""async () => {{
  const doc = {DOC};
  const pts = doc.get_model_by_name('points_source');
  const acc = doc.get_model_by_name('acc_source');
  const out = {{}};
  await new Promise((resolve) => {{
    let t0 = null;
    document.addEventListener('keydown', () => {{ t0 = performance.now(); }}, {{capture: true, once: true}});
    pts.change.connect(() => {{ if (t0 !== null && out.reset_redraw_ms === undefined) out.reset_redraw_ms = performance.now() - t0; }});
    acc.change.connect(() => {{
      if (t0 !== null && out.reset_redraw_ms !== undefined && acc.data.step.length > 0 && out.first_steps_ms === undefined) {{
        out.first_steps_ms = performance.now() - t0; resolve(); }} }});
    setTimeout(resolve, 20000);
  }});
  return out;
}}"""

CLICK_LATENCY = f"""async () => {{
  const src = {DOC}.get_model_by_name('arrow_source');
  return await new Promise((resolve) => {{
    let t0 = null;
    document.addEventListener('pointerdown', () => {{ t0 = performance.now(); }}, {{capture: true, once: true}});
    src.change.connect(() => {{ if (t0 !== null) resolve(performance.now() - t0); }});
    setTimeout(() => resolve(null), 20000);
  }});
}}"""


def latencies(context, base: str, reps: int = 3) -> dict:
    out = {"slider_reset_redraw_ms": [], "slider_first_steps_ms": [], "arena_click_redraw_ms": []}
    page = context.new_page()
    page.goto(f"{base}/ours/shared_separate.html")
    page.wait_for_function(LIVE["ours"], timeout=240_000)
    page.wait_for_timeout(1500)
    for i in range(reps):
        page.evaluate(f"() => {{ window.__lat = ({SLIDER_LATENCY})(); }}")  # listen first, then act
        page.locator(".noUi-handle").first.focus()
        page.keyboard.press("ArrowLeft" if i % 2 == 0 else "ArrowRight")
        r = page.evaluate("() => window.__lat")
        out["slider_reset_redraw_ms"].append(r.get("reset_redraw_ms"))
        out["slider_first_steps_ms"].append(r.get("first_steps_ms"))
        page.wait_for_timeout(800)
    page.close()
    page = context.new_page()
    page.goto(f"{base}/ours/arena.html")
    page.wait_for_function(LIVE["ours"], timeout=240_000)
    page.wait_for_timeout(800)
    for i in range(reps):
        page.evaluate(f"() => {{ window.__lat = ({CLICK_LATENCY})(); }}")
        box = page.evaluate(
            f"""([x, y]) => {{
            const view = Bokeh.index.find_one({DOC}.get_model_by_name('arena_plot'));
            const r = view.canvas_view.el.getBoundingClientRect();
            return [r.left + view.frame.x_scale.compute(x), r.top + view.frame.y_scale.compute(y)]; }}""",
            [-1.0 + i, 7.0 - i],
        )
        page.mouse.click(*box)
        out["arena_click_redraw_ms"].append(page.evaluate("() => window.__lat"))
        page.wait_for_timeout(500)
    page.close()
    return out


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 2) if xs else None


def build_both(work: pathlib.Path, slugs: list[str]) -> int:
    """Build our site and the stock-style one into ``work``; non-zero when our build failed."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print("[bench] building our site", flush=True)
    res = subprocess.run([PYTHON, str(ROOT / "build.py"), "--out", str(work / "ours")], cwd=ROOT)
    if res.returncode:
        return res.returncode
    print("[bench] building the stock-style site", flush=True)
    build_stock(work / "stock", [p for p in load_pages(ROOT / "app") if p.slug in slugs])
    return 0


def print_medians(loads: int, slugs: list[str], results: dict, repeat: dict) -> dict:
    """Print the medians per page and metric, ours against stock; return them."""
    print("\n== medians over", loads, "fresh-cache loads (seconds, MB) ==")
    print(f"{'page':16s} {'metric':14s} {'ours':>8s} {'stock':>8s} {'ratio':>7s}")
    summary = {}
    for slug in slugs:
        for metric in ("preview_s", "interactive_s", "bytes"):
            o = med([r[metric] for r in results["ours"][slug]])
            s = med([r[metric] for r in results["stock"][slug]])
            ratio = round(o / s, 2) if o and s else None
            summary[f"{slug}.{metric}"] = (o, s, ratio)
            fmt = (lambda v: f"{v / 1e6:8.1f}") if metric == "bytes" else (lambda v: f"{v:8.2f}")
            print(
                f"{slug:16s} {metric:14s} {fmt(o) if o else '     n/a'} {fmt(s) if s else '     n/a'} "
                f"{ratio if ratio is not None else 'n/a':>7}"
            )
        rv = med([r["interactive_s"] for r in repeat[slug]])
        summary[f"{slug}.repeat_interactive_s"] = rv
        print(f"{slug:16s} {'repeat TTI':14s} {rv if rv else 'n/a':>8}")
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loads", type=int, default=3)
    ap.add_argument("--pages", default="shared_separate,arena,weighting_lab,training_loop")
    ap.add_argument("--dir", default=str(ROOT / ".cache" / "bench-static"))
    ap.add_argument("--skip-build", action="store_true", help="reuse the sites already in --dir")
    ap.add_argument("--json", help="also write the raw results here")
    a = ap.parse_args()
    work = pathlib.Path(a.dir)
    slugs = a.pages.split(",")
    if not a.skip_build and build_both(work, slugs):
        return 1
    size = {k: sum(f.stat().st_size for f in (work / k).rglob("*") if f.is_file()) for k in ("ours", "stock")}
    srv, base = start_server(work)
    from playwright.sync_api import sync_playwright

    results = {"ours": {}, "stock": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for slug in slugs:
            for i in range(a.loads):
                for kind in ("stock", "ours"):  # interleaved: machine load hits both alike
                    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
                    r = one_load(ctx, base, kind, slug)
                    ctx.close()
                    results[kind].setdefault(slug, []).append(r)
                    print(f"[bench] {kind:5s} {slug:16s} load {i + 1}: {json.dumps(r)}", flush=True)
        # repeat visits (ours): warm the cache once, let the service worker install, then reload
        repeat = {}
        for slug in slugs:
            ctx = browser.new_context(viewport={"width": 1200, "height": 900})
            one_load(ctx, base, "ours", slug)
            page = ctx.new_page()
            page.goto(f"{base}/ours/index.html")
            # the service worker precaches nothing; wait until it is active, so that the repeat visits go through it
            page.wait_for_function(
                "async () => { const r = await navigator.serviceWorker.getRegistration();"
                "  return !!(r && r.active && r.active.state === 'activated'); }",
                timeout=120_000,
                polling=500,
            )
            page.close()
            repeat[slug] = [one_load(ctx, base, "ours", slug) for _ in range(a.loads)]
            print(f"[bench] ours  {slug:16s} repeat visits: {json.dumps(repeat[slug])}", flush=True)
            ctx.close()
        ctx = browser.new_context(viewport={"width": 1200, "height": 900})
        lat = latencies(ctx, base)
        ctx.close()
        browser.close()
    srv.shutdown()

    summary = print_medians(a.loads, slugs, results, repeat)
    for k, v in lat.items():
        summary[k] = med(v)
        print(f"latency {k:30s} median {med(v)} ms  (all: {v})")
    print(f"site size on disk: ours {size['ours'] / 1e6:.1f} MB, stock {size['stock'] / 1e6:.1f} MB")
    print(
        "targets (issue 5): TTI ratio <= 0.35, preview <= 1 s, repeat TTI <= 3 s, slider redraw <= 1000 ms, "
        "arena click redraw <= 100 ms"
    )
    if a.json:
        pathlib.Path(a.json).write_text(
            json.dumps({"results": results, "repeat": repeat, "latency": lat, "summary": summary}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
