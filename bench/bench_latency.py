"""Event latency of the pages under `panel serve app` and on the static site, with the browser's CPU slowed
(issue 15, item 1).

    .venv/bin/python bench/bench_latency.py [--static DIR] [--pages PAGE,...]
        [--rates 1,4] [--reps 5] [--train 3] [--viewport 1200x900] [--json out.json]

Without ``--static`` it starts `panel serve app` on a free port; with ``--static DIR`` it serves that built site
(sitebuild/serve.py, the handler of ``build.py --serve``) and opens ``<slug>.html``, where Python runs in the page's
Pyodide worker. Either way it drives headless Debian Chromium (tests/browser.py: every host but localhost
unresolvable) in a ``--viewport`` window (the pages draw only the figures on screen: a tall one, e.g.
1200x3000, shows them all, the worst case). Each rep opens a fresh tab of the page (default: every training page
and the arena), waits until it is live and training, slows its CPU with Chromium's
``Emulation.setCPUThrottlingRate`` over CDP, lets it train ``--train`` seconds, then measures, from just before
the real mouse event to when the page shows the answer (wall clock, so a click the saturated main thread delivers
late counts):

* pause:  click Pause -> the status line says "paused";
* reset:  click Train, train 1 s, click Reset -> the status says "ready" (step 0);
* slider: drag the page's slider (released) on the reset page -> the page's first redraw of its curves
  (its ColumnDataSource changes).

The arena (no training) has one measure, click: a click on its plot -> the arrows' source changes. Prints per
page, rate and measure the median and the largest wall-clock latency (and how many reps timed out: "n/a" when all
did), the load average before and after, and where the time went, by the page's own clock (medians, ms):

* shown: from the mouse event to the end of the first animation frame after the answer reached the page's
  document (what the reader sees; the wall clock also counts how long a saturated page took to run the harness's check);
* deliver: from the mouse event to the page's pointerup handler (the main thread was busy);
* out: from there to the event's message leaving the page (to the server's websocket or to the worker);
* back: from there to the message that carried the answer (as the page's thread got to it);
* queue: how many other messages came in meanwhile (updates already on their way);
* apply: from that message to the answer in the document; paint: from there to the end of the next animation frame;
* busy: the share (%) of the 2 s before the event that the page's thread spent in long tasks (over 50 ms);
  longest: the longest of them from then until the answer was painted (what an event can wait behind).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium, panel_served  # noqa: E402
from sitebuild.serve import background_server  # noqa: E402

TRAINING = {  # page: (the curves' source, the slider's label, where to drag it on its track)
    "shared_separate": ("acc_source", "Task relatedness", 0.1),
    "weighting_lab": ("curves_equal", "Missing labels", 0.3),
    "training_loop": ("log_source", "Task relatedness", 0.1),
    "architectures": ("acc_source", "Task relatedness", 0.1),
    "auxiliary": ("curves_source", "Task relatedness", 0.1),
}
PAGES = (*TRAINING, "arena")
# the live Bokeh document: the server's is the page's only one; the static page keeps its own (the preview's
# document is dropped when it goes live)
DOCS = {"serve": "Bokeh.documents[0]", "static": "window.mtlPlayground.doc"}
LIVE = "() => ['live', 'error'].includes(document.documentElement.dataset.mtlState)"
READY = "(name) => window.Bokeh && Bokeh.documents.length > 0 && DOC != null && DOC.get_model_by_name(name) != null"
STATUS_HAS = "(word) => DOC.get_model_by_name('status').text.includes(word)"
# The timeline of an event, in epoch ms (comparable with Python's time.time()): installed before the page's own
# scripts, it notes when the page's click / pointerup handler ran, every message the page sent (websocket or
# worker) and received after that, and (``__lat.watch``) when a model's change was applied and then painted.
TIMELINE = """(() => {
  const now = () => performance.timeOrigin + performance.now();
  const lat = window.__lat = {armed: false, down: null, up: null, out: [], in: [], applied: null, painted: null};
  const arm = (e) => { Object.assign(lat, {armed: true, up: now(), out: [], in: [], applied: null, painted: null}); };
  window.addEventListener('pointerdown', () => { lat.down = now(); }, true);
  window.addEventListener('pointerup', arm, true);
  const note = (list) => { if (lat.armed && list.length < 500) list.push(now()); };
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (...a) { note(lat.out); return send.apply(this, a); };
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (...a) { note(lat.out); return post.apply(this, a); };
  const WS = window.WebSocket, W = window.Worker;
  const heard = (obj) => obj.addEventListener('message', () => note(lat.in));
  window.WebSocket = class extends WS { constructor(...a) { super(...a); heard(this); } };
  window.Worker = class extends W { constructor(...a) { super(...a); heard(this); } };
  lat.tasks = [];  // the page thread's long tasks (> 50 ms): [start, end], the last 200
  new PerformanceObserver((list) => { for (const e of list.getEntries()) {
    lat.tasks.push([performance.timeOrigin + e.startTime, performance.timeOrigin + e.startTime + e.duration]);
    if (lat.tasks.length > 200) lat.tasks.shift(); } }).observe({type: 'longtask', buffered: false});
  lat.hit = () => { if (lat.armed && lat.applied == null) { lat.applied = now();
    // after the frame that draws it: BokehJS paints in an animation-frame callback too, often one asked for later
    // in the same message (after this one), so the end of this callback would be before the answer's paint
    requestAnimationFrame(() => setTimeout(() => { lat.painted = now(); }, 0)); } };
})();"""
# flags the first change of a source after now: a replaced .data, a stream or a patch
MARK_SOURCE = """(name) => { const src = DOC.get_model_by_name(name); window.__changed = false;
  const hit = () => { window.__changed = true; window.__lat.hit(); };
  src.connect(src.properties.data.change, hit); src.connect(src.streaming, hit); src.connect(src.patching, hit); }"""
# notes when the status line's text changes to say ``word``
MARK_STATUS = """(word) => { const m = DOC.get_model_by_name('status');
  m.connect(m.properties.text.change, () => { if (m.text.includes(word)) window.__lat.hit(); }); }"""
# page coordinates of a data point of the arena's plot (its plot view's scales map data -> canvas pixels)
ARENA_POINT = """([x, y]) => { const fig = DOC.get_model_by_name('arena_plot');
  const view = Bokeh.index.find_one(fig); const r = view.canvas_view.el.getBoundingClientRect();
  return [r.left + view.frame.x_scale.compute(x), r.top + view.frame.y_scale.compute(y)]; }"""
TIMEOUT_MS = 30_000
PARTS = ("shown", "deliver", "out", "back", "queue", "apply", "paint", "busy", "longest")


class Target:
    """Where the pages come from: ``panel serve`` (``base?page=slug``) or a static site (``base/slug.html``)."""

    def __init__(self, kind: str, base: str):
        self.kind, self.base, self.doc = kind, base, DOCS[kind]

    def url(self, slug: str) -> str:
        return f"{self.base}?page={slug}" if self.kind == "serve" else f"{self.base}/{slug}.html"

    def js(self, code: str) -> str:
        return code.replace("DOC", self.doc)


def center(page, label: str) -> tuple[float, float]:
    box = page.locator("button", has_text=label).first.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def timeline(page, t0: float) -> dict:
    """Where the time of the last event went (ms; see the module docstring), from the page's ``__lat``."""
    lat = page.evaluate("() => { const l = window.__lat; l.armed = false; return l; }")
    t0_ms = 1000 * t0
    up, out, ins, applied, painted = lat["up"], lat["out"], lat["in"], lat["applied"], lat["painted"]
    if up is None or applied is None:
        return {}
    # the page thread's busy share in the 2 s before the event, and its longest task in that time or until painted
    end = painted or applied
    recent = [(a, b) for a, b in lat["tasks"] if b > t0_ms - 2000 and a < end]
    busy = sum(min(b, t0_ms) - max(a, t0_ms - 2000) for a, b in recent if a < t0_ms) / 2000
    first_out = next((t for t in out if t >= up), None)
    before = [t for t in ins if first_out is not None and first_out <= t <= applied]
    return {
        "shown": None if painted is None else painted - t0_ms,
        "deliver": up - t0_ms,
        "out": None if first_out is None else first_out - up,
        "back": before[-1] - first_out if before else None,
        "queue": max(0, len(before) - 1) if first_out is not None else None,
        "apply": applied - before[-1] if before else None,
        "paint": None if painted is None else painted - applied,
        "busy": 100 * busy,
        "longest": max((b - a for a, b in recent), default=0.0),
    }


def timed(page, act, js: str, arg=None) -> tuple[float | None, dict]:
    """Seconds from just before ``act()`` (a real mouse event) until ``js(arg)`` is true in the page (None if
    never), and the event's timeline."""
    t0_wall, t0 = time.time(), time.perf_counter()
    act()
    try:
        page.wait_for_function(js, arg=arg, timeout=TIMEOUT_MS, polling=10)
    except Exception:  # noqa: BLE001 - a timeout is a result (reported as such), not a crash
        return None, {}
    took = time.perf_counter() - t0
    page.wait_for_timeout(100)  # the answer's animation frame
    return took, timeline(page, t0_wall)


def drag_points(page, title: str, fraction: float):
    group = page.locator("div.bk-input-group", has=page.locator(".bk-slider-title", has_text=title))
    handle = group.locator(".noUi-handle").bounding_box()
    track = group.locator(".noUi-base").bounding_box()
    y = handle["y"] + handle["height"] / 2
    return (handle["x"] + handle["width"] / 2, y), (track["x"] + fraction * track["width"], y)


def positions(page, target: Target, slug: str) -> dict:
    """Where to click, found before the CPU is slowed (a saturated page answers no layout queries in time)."""
    if slug == "arena":
        return {"plot": page.evaluate(target.js(ARENA_POINT), [-1.0, 7.0])}
    _source, title, fraction = TRAINING[slug]
    out = {name: center(page, name) for name in ("Pause", "Train", "Reset")}
    out["drag"] = drag_points(page, title, fraction)
    return out


def measure_training(page, target: Target, slug: str, train_s: float, where: dict) -> tuple[dict, dict]:
    source = TRAINING[slug][0]
    status_has = target.js(STATUS_HAS)
    page.evaluate(target.js(MARK_STATUS), "paused")
    page.wait_for_timeout(train_s * 1000)
    out, parts = {}, {}
    out["pause"], parts["pause"] = timed(page, lambda: page.mouse.click(*where["Pause"]), status_has, "paused")
    page.mouse.click(*where["Train"])
    try:  # a run that finished before the Pause landed does not train again: Reset is then measured paused
        page.wait_for_function(status_has, arg="training", timeout=TIMEOUT_MS)
    except Exception:  # noqa: BLE001
        pass
    page.evaluate(target.js(MARK_STATUS), "ready")
    page.wait_for_timeout(1000)
    out["reset"], parts["reset"] = timed(page, lambda: page.mouse.click(*where["Reset"]), status_has, "ready")
    page.wait_for_timeout(500)
    start, end = where["drag"]
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=4)
    page.evaluate(target.js(MARK_SOURCE), source)
    out["slider"], parts["slider"] = timed(page, page.mouse.up, "() => window.__changed")
    return out, parts


def measure_arena(page, target: Target, where: dict) -> tuple[dict, dict]:
    px, py = where["plot"]
    page.evaluate(target.js(MARK_SOURCE), "arrow_source")
    took, parts = timed(page, lambda: page.mouse.click(px, py), "() => window.__changed")
    return {"click": took}, {"click": parts}


def one_rep(ctx, target: Target, slug: str, rate: float, train_s: float, viewport: dict) -> tuple[dict, dict]:
    page = ctx.new_page()
    try:
        page.set_viewport_size(viewport)
        page.add_init_script(TIMELINE)
        page.goto(target.url(slug))
        if target.kind == "static":
            page.wait_for_function(LIVE, timeout=180_000)
        ready = "arena_plot" if slug == "arena" else "status"
        page.wait_for_function(target.js(READY), arg=ready, timeout=TIMEOUT_MS)
        if slug != "arena":  # the page is laid out once it trains (a button found earlier may move)
            page.wait_for_function(target.js(STATUS_HAS), arg="training", timeout=TIMEOUT_MS)
        page.wait_for_timeout(1000)
        where = positions(page, target, slug)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
        if slug == "arena":
            return measure_arena(page, target, where)
        return measure_training(page, target, slug, train_s, where)
    finally:
        page.close()


def summarize(results: dict, kind: str) -> list[str]:
    head = f"{'target':<6} {'page':<16} {'rate':>4} {'measure':<7} {'median ms':>9} {'max ms':>7} {'timeouts':>8}"
    lines = [head + "   " + " ".join(f"{p:>7}" for p in PARTS)]
    for (slug, rate), reps in results.items():
        for measure in reps[0][0]:
            vals = [r[measure] for r, _parts in reps if r[measure] is not None]
            med = f"{1000 * statistics.median(vals):.0f}" if vals else "n/a"
            top = f"{1000 * max(vals):.0f}" if vals else "n/a"
            cells = []
            for part in PARTS:
                got = [p[measure][part] for _r, p in reps if p[measure].get(part) is not None]
                cells.append(f"{statistics.median(got):>7.0f}" if got else f"{'-':>7}")
            lines.append(
                f"{kind:<6} {slug:<16} {rate:>3g}x {measure:<7} {med:>9} {top:>7} {len(reps) - len(vals):>8}   "
                + " ".join(cells)
            )
    return lines


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--static", metavar="DIR", help="a built static site (build.py --out DIR) instead of panel serve")
    ap.add_argument("--pages", default=",".join(PAGES))
    ap.add_argument("--rates", default="1,4")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--train", type=float, default=3.0, help="seconds of training before the first click")
    ap.add_argument("--viewport", default="1200x900", help="the window, WIDTHxHEIGHT in CSS pixels")
    ap.add_argument("--json", help="also write the raw latencies (seconds) and timelines (ms) here")
    args = ap.parse_args(argv)
    pages = [p for p in args.pages.split(",") if p]
    rates = [float(r) for r in args.rates.split(",") if r]
    width, height = (int(v) for v in args.viewport.lower().split("x"))
    kind = "static" if args.static else "serve"
    if args.static and not (pathlib.Path(args.static) / "build-info.json").is_file():
        ap.error(f"{args.static} is not a built site (no build-info.json): build.py --out DIR")
    print(f"before: {load()}; viewport {width}x{height}", flush=True)
    results = {}
    served = (
        background_server(pathlib.Path(args.static))
        if args.static
        else panel_served("app", "bench_latency_serve", "app")
    )
    with served as base, chromium() as ctx:
        target = Target(kind, base)
        for slug in pages:
            for rate in rates:
                results[slug, rate] = [
                    one_rep(ctx, target, slug, rate, args.train, {"width": width, "height": height})
                    for _ in range(args.reps)
                ]
                print("\n".join(summarize({(slug, rate): results[slug, rate]}, kind)[1:]), flush=True)
    print("\n".join(summarize(results, kind)))
    print(f"after: {load()}")
    if args.json:
        raw = {f"{kind}:{s}@{r}": [{"latency": r_, "timeline": p} for r_, p in v] for (s, r), v in results.items()}
        pathlib.Path(args.json).write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
