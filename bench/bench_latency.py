"""Event latency of the pages under `panel serve app` with the browser's CPU slowed (issue 15, item 1).

    .venv/bin/python bench/bench_latency.py [--pages shared_separate,weighting_lab,training_loop,arena]
        [--rates 1,4] [--reps 5] [--train 3] [--json out.json]

Starts `panel serve app` on a free port and drives headless Debian Chromium (tests/browser.py: every host but
localhost unresolvable). Each rep opens a fresh tab of the page, slows its CPU with Chromium's
``Emulation.setCPUThrottlingRate`` over CDP, lets it train ``--train`` seconds, then measures, from just before
the real mouse event to when the page shows the answer (wall clock, so a click the saturated main thread
delivers late counts):

* pause:  click Pause -> the status line says "paused";
* reset:  click Train, train 1 s, click Reset -> the status says "ready" (step 0);
* slider: drag the page's slider (released) on the reset page -> the page's first redraw of its curves
  (its ColumnDataSource changes).

The arena (no training) has one measure, click: a click on its plot -> the arrows' source changes. Prints the
median per page, rate and measure (and how many of the reps timed out, shown as "n/a" when all did).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium, panel_served  # noqa: E402

TRAINING = {  # page: (the curves' source, the slider's label, where to drag it on its track)
    "shared_separate": ("acc_source", "Task relatedness", 0.1),
    "weighting_lab": ("curves_equal", "Missing labels", 0.3),
    "training_loop": ("log_source", "Task relatedness", 0.1),
}
PAGES = (*TRAINING, "arena")
READY = "(name) => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].get_model_by_name(name) != null"
STATUS_HAS = "(word) => Bokeh.documents[0].get_model_by_name('status').text.includes(word)"
# flags the first change of a source after now: a replaced .data, a stream or a patch
MARK_SOURCE = """(name) => { const src = Bokeh.documents[0].get_model_by_name(name); window.__changed = false;
  const hit = () => { window.__changed = true };
  src.connect(src.properties.data.change, hit); src.connect(src.streaming, hit); src.connect(src.patching, hit); }"""
# page coordinates of a data point of the arena's plot (its plot view's scales map data -> canvas pixels)
ARENA_POINT = """([x, y]) => { const fig = Bokeh.documents[0].get_model_by_name('arena_plot');
  const view = Bokeh.index.find_one(fig); const r = view.canvas_view.el.getBoundingClientRect();
  return [r.left + view.frame.x_scale.compute(x), r.top + view.frame.y_scale.compute(y)]; }"""
TIMEOUT_MS = 30_000


def center(page, label: str) -> tuple[float, float]:
    box = page.locator("button", has_text=label).first.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def timed(page, act, js: str, arg=None) -> float | None:
    """Seconds from just before ``act()`` (a real mouse event) until ``js(arg)`` is true in the page; None if never."""
    t0 = time.perf_counter()
    act()
    try:
        page.wait_for_function(js, arg=arg, timeout=TIMEOUT_MS, polling=10)
    except Exception:  # noqa: BLE001 - a timeout is a result (reported as such), not a crash
        return None
    return time.perf_counter() - t0


def drag_points(page, title: str, fraction: float):
    group = page.locator("div.bk-input-group", has=page.locator(".bk-slider-title", has_text=title))
    handle = group.locator(".noUi-handle").bounding_box()
    track = group.locator(".noUi-base").bounding_box()
    y = handle["y"] + handle["height"] / 2
    return (handle["x"] + handle["width"] / 2, y), (track["x"] + fraction * track["width"], y)


def positions(page, slug: str) -> dict:
    """Where to click, found before the CPU is slowed (a saturated page answers no layout queries in time)."""
    if slug == "arena":
        return {"plot": page.evaluate(ARENA_POINT, [-1.0, 7.0])}
    _source, title, fraction = TRAINING[slug]
    out = {name: center(page, name) for name in ("Pause", "Train", "Reset")}
    out["drag"] = drag_points(page, title, fraction)
    return out


def measure_training(page, slug: str, train_s: float, where: dict) -> dict:
    source = TRAINING[slug][0]
    page.wait_for_timeout(train_s * 1000)
    out = {"pause": timed(page, lambda: page.mouse.click(*where["Pause"]), STATUS_HAS, "paused")}
    page.mouse.click(*where["Train"])
    try:  # a run that finished before the Pause landed does not train again: Reset is then measured paused
        page.wait_for_function(STATUS_HAS, arg="training", timeout=TIMEOUT_MS)
    except Exception:  # noqa: BLE001
        pass
    page.wait_for_timeout(1000)
    out["reset"] = timed(page, lambda: page.mouse.click(*where["Reset"]), STATUS_HAS, "ready")
    page.wait_for_timeout(500)
    start, end = where["drag"]
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=4)
    page.evaluate(MARK_SOURCE, source)
    out["slider"] = timed(page, page.mouse.up, "() => window.__changed")
    return out


def measure_arena(page, where: dict) -> dict:
    px, py = where["plot"]
    page.evaluate(MARK_SOURCE, "arrow_source")
    return {"click": timed(page, lambda: page.mouse.click(px, py), "() => window.__changed")}


def one_rep(ctx, base: str, slug: str, rate: float, train_s: float) -> dict:
    page = ctx.new_page()
    try:
        page.goto(f"{base}?page={slug}")
        ready = "arena_plot" if slug == "arena" else "status"
        page.wait_for_function(READY, arg=ready, timeout=TIMEOUT_MS)
        if slug != "arena":  # the page is laid out once it trains (a button found earlier may move)
            page.wait_for_function(STATUS_HAS, arg="training", timeout=TIMEOUT_MS)
        page.wait_for_timeout(1000)
        where = positions(page, slug)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
        return measure_arena(page, where) if slug == "arena" else measure_training(page, slug, train_s, where)
    finally:
        page.close()


def summarize(results: dict) -> list[str]:
    lines = [f"{'page':<16} {'rate':>4} {'measure':<7} {'median ms':>9} {'max ms':>7} {'timeouts':>8}"]
    for (slug, rate), reps in results.items():
        for measure in reps[0]:
            vals = [r[measure] for r in reps if r[measure] is not None]
            med = f"{1000 * statistics.median(vals):.0f}" if vals else "n/a"
            top = f"{1000 * max(vals):.0f}" if vals else "n/a"
            lines.append(f"{slug:<16} {rate:>3g}x {measure:<7} {med:>9} {top:>7} {len(reps) - len(vals):>8}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", default=",".join(PAGES))
    ap.add_argument("--rates", default="1,4")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--train", type=float, default=3.0, help="seconds of training before the first click")
    ap.add_argument("--json", help="also write the raw latencies (seconds) here")
    args = ap.parse_args(argv)
    pages = [p for p in args.pages.split(",") if p]
    rates = [float(r) for r in args.rates.split(",") if r]
    results = {}
    with panel_served("app", "bench_latency_serve", "app") as base, chromium() as ctx:
        for slug in pages:
            for rate in rates:
                results[slug, rate] = [one_rep(ctx, base, slug, rate, args.train) for _ in range(args.reps)]
                print("\n".join(summarize({(slug, rate): results[slug, rate]})[1:]), flush=True)
    print("\n".join(summarize(results)))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({f"{s}@{r}": v for (s, r), v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
