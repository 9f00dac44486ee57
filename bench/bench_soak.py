"""Long sessions on the static site: does a page's memory stay flat while a reader plays with it? (issue 15, item 3)

    .venv/bin/python bench/bench_soak.py --site /tmp/site [--minutes 10] [--pages arena,training_loop] [--json out]

Serves a built site (``--site``, default ``$MTL_STATIC_SITE`` or ``static/``) on 127.0.0.1 and opens each page in
headless Debian Chromium (tests/browser.py). For ``--minutes`` minutes per page it does what a curious reader does,
over and over: Train, change a setting through its widget in the browser (the change travels to Python in the
worker, which retrains), Reset, Train again; on the arena: click the loss surface, change a setting, Run, Clear
paths. Every minute (and once when the page went live) it samples, after a garbage collection on both sides:

* wasm: the worker's WebAssembly memory (``len(memory.buffer)``: it only grows, so it is the high-water mark);
* malloc: the part of it in use (mallinfo's uordblks: what malloc handed out and has not had back);
* pyobjs: Python's gc-tracked objects; with ``--trace`` also pyheap, what Python allocated since the first sample
  and still holds (``tracemalloc``, numpy's arrays included; Pyodide's ``sys.getallocatedblocks()`` is always 0),
  and at the end the lines where it grew most since the 1-minute sample;
* js: the page's JS heap in use (CDP ``Performance.getMetrics`` JSHeapUsedSize, after ``HeapProfiler.collectGarbage``);
* models / rows: Bokeh models in the page's live document and rows in all its ColumnDataSources.

It prints each page's figures at 1 minute and at the end and the growth between them (goal: flat, under +10 %;
the first minute is warm-up: caches, the first runs' allocations). Not a test: it takes ``minutes x pages``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sitebuild.serve import background_server  # noqa: E402
from browser import chromium  # noqa: E402

DOC = "window.mtlPlayground.doc"
LIVE = "() => ['live', 'error'].includes(document.documentElement.dataset.mtlState)"
GOAL = 0.10  # growth after the first minute that still counts as flat
# Python in the worker: collect, then report the wasm memory, what Python allocated since the first sample and
# still holds (tracemalloc, started then: numpy's array buffers are traced too) and the gc-tracked objects
PY_SAMPLE = """
import gc, sys, pyodide_js
if MTL_SOAK_TRACE and "tracemalloc" not in sys.modules:
    import tracemalloc
    tracemalloc.start()
gc.collect()
traced = sys.modules["tracemalloc"].get_traced_memory()[0] if MTL_SOAK_TRACE else 0
M = pyodide_js._module
info = M._calloc(10, 4)  # struct mallinfo: its 8th int is uordblks, the bytes malloc has handed out and not had back
M._mallinfo(info)
used = M.HEAPU32[(info >> 2) + 7]
getattr(M, "_free", lambda p: None)(info)
f"{M.HEAPU8.length} {used} {traced} {len(gc.get_objects())}"
"""
# where Python's memory grew from the 1-minute sample to the end (tracemalloc snapshots; file:line, KB, blocks)
PY_MARK = "import tracemalloc\nmtl_soak_mark = tracemalloc.take_snapshot()\n''"
PY_GREW = """
import gc, tracemalloc
gc.collect()
stats = tracemalloc.take_snapshot().compare_to(mtl_soak_mark, "lineno")[:8]
"\\n".join(f"{s.size_diff / 1024:+.1f} KB {s.count_diff:+d} blocks {s.traceback}" for s in stats)
"""
DOC_SAMPLE = f"""() => {{
  let rows = 0, models = 0;
  for (const m of {DOC}.all_models) {{
    models += 1;
    if (m.data && typeof m.data === 'object')
      for (const col of Object.values(m.data)) rows += (col && col.length) || 0;
  }}
  return {{models, rows}};
}}"""
# set one setting's widget in the browser, as a reader's click or drag would (kind and limits from the page's table)
TWIDDLE = f"""([s, r, r2]) => {{
  const m = {DOC}.get_model_by_name(s.name);
  if (!m) return null;
  if (s.kind === 'bool') m.active = !m.active;
  else if (s.kind === 'multi') {{
    const pick = s.n.map((_, i) => i).filter((i) => ((r2 * 1024) >> i) & 1);
    m.active = pick.length ? pick : [0];
  }} else if (s.kind === 'choice') {{
    const i = Math.floor(r * s.n.length);
    if (typeof m.active === 'number') m.active = i;
    else {{ const o = m.options[i]; m.value = Array.isArray(o) ? o[0] : o; }}
  }} else {{
    let v = s.low + r * (s.high - s.low);
    v = s.kind === 'int' ? Math.round(v) : (s.step ? Math.round(v / s.step) * s.step : v);
    m.value = Math.min(s.high, Math.max(s.low, v));
  }}
  return s.name;
}}"""
TO_PAGE = f"""([x, y]) => {{
  const view = Bokeh.index.find_one({DOC}.get_model_by_name('arena_plot'));
  const r = view.canvas_view.el.getBoundingClientRect();
  return [r.left + view.frame.x_scale.compute(x), r.top + view.frame.y_scale.compute(y)];
}}"""


def page_settings(slug: str) -> list[dict]:
    """The page's settings table as the browser needs it (``lr`` left alone: a random one only diverges)."""
    import importlib

    table = importlib.import_module(f"app.{slug}_state").SETTINGS
    return [
        {"name": s.name, "kind": s.kind, "low": s.low, "high": s.high, "step": s.step, "n": list(s.choices)}
        for s in table
        if s.name != "lr"
    ]


def run_python(page, code: str, timeout_s: float = 300) -> str:
    """Python in the page's worker; a worker that does not answer within ``timeout_s`` fails the page's soak."""
    out = page.evaluate(
        "([code, ms]) => Promise.race([window.mtlPlayground.runPython(code),"
        " new Promise((r) => setTimeout(() => r(null), ms))])",
        [code, timeout_s * 1000],
    )
    if out is None:
        raise TimeoutError(f"the worker did not answer within {timeout_s:g} s")
    return out


def sample(page, cdp, t0: float, trace: bool) -> dict:
    wasm, used, traced, objs = (int(v) for v in run_python(page, f"MTL_SOAK_TRACE = {trace}\n" + PY_SAMPLE).split())
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {
        "t": round(time.monotonic() - t0, 1),
        "wasm": wasm,
        "malloc": used,
        "pyheap": traced,
        "pyobjs": objs,
        "js": int(metrics["JSHeapUsedSize"]),
        **page.evaluate(DOC_SAMPLE),
    }


def click(page, label: str) -> None:
    button = page.get_by_role("button", name=label)
    if button.count():
        button.first.click(timeout=10_000)


def one_round(page, slug: str, settings: list[dict], rng: random.Random) -> None:
    """What a reader does in ~10 s: train, change a setting, reset, train again (arena: click, run, clear)."""
    if slug == "arena":
        page.mouse.click(*page.evaluate(TO_PAGE, [rng.uniform(-8, 8), rng.uniform(-8, 8)]))
        page.wait_for_timeout(1500)
        click(page, "Run")
    else:
        click(page, "Train")
    page.wait_for_timeout(3000)
    page.evaluate(TWIDDLE, [rng.choice(settings), rng.random(), rng.random()])
    page.wait_for_timeout(3000)
    click(page, "Clear paths" if slug == "arena" else "Reset")
    page.wait_for_timeout(1000)
    click(page, "Run" if slug == "arena" else "Train")
    page.wait_for_timeout(2000)


def soak_page(ctx, base: str, slug: str, minutes: float, seed: int, trace: bool) -> dict:
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)[:300]))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text[:300]))
    try:
        page.goto(f"{base}/{slug}.html")
        page.wait_for_function(LIVE, timeout=180_000)
        if page.evaluate("document.documentElement.dataset.mtlState") != "live":
            return {"error": "did not go live: " + page.locator("#mtl-error").inner_text()[:500]}
        print(f"  {slug} live; sampling", flush=True)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        settings, rng = page_settings(slug), random.Random(seed)
        t0 = time.monotonic()
        samples, rounds = [sample(page, cdp, t0, trace)], 0
        # a sample at most once a minute, between rounds (a busy machine stretches a round: minutes stay minutes)
        next_at = 60.0
        while True:
            one_round(page, slug, settings, rng)
            rounds += 1
            t = time.monotonic() - t0
            done = t >= 60 * minutes and len(samples) >= 2
            if t >= next_at or done:
                samples.append(sample(page, cdp, t0, trace))
                print(f"  {slug} {samples[-1]['t']:.0f} s: {samples[-1]}", flush=True)
                next_at = t + 60
                if len(samples) == 2 and trace:
                    run_python(page, PY_MARK)
            if done:
                break
        grew = run_python(page, PY_GREW) if trace else ""
        if grew:
            print(f"  {slug}: Python's memory grew most at\n    " + grew.replace("\n", "\n    "), flush=True)
        return {"samples": samples, "rounds": rounds, "errors": errors[:20], "grew": grew.splitlines()}
    finally:
        page.close()


def growth(samples: list[dict], key: str) -> float | None:
    """Relative change from the first sample after a minute to the last (None without both)."""
    if len(samples) < 3 or not samples[1][key]:
        return None
    return (samples[-1][key] - samples[1][key]) / samples[1][key]


KEYS = ("wasm", "malloc", "pyheap", "pyobjs", "js", "models", "rows")


def report(results: dict) -> list[str]:
    lines = [f"{'page':16} {'figure':9} {'live':>12} {'1 min':>12} {'end':>12} {'growth':>8}"]
    for slug, res in results.items():
        if "error" in res:
            lines.append(f"{slug:16} failed: {res['error']}")
            continue
        s = res["samples"]
        for key in KEYS:
            g = growth(s, key)
            flag = "" if g is None or g <= GOAL else "  <-- over +10 %"
            shown = "n/a" if g is None else f"{100 * g:+.1f}%"
            lines.append(f"{slug:16} {key:9} {s[0][key]:>12} {s[1][key]:>12} {s[-1][key]:>12} {shown:>8}{flag}")
        times = ", ".join(f"{x['t']:.0f}" for x in s)
        lines.append(f"{slug:16} rounds: {res['rounds']}, samples at {times} s, page errors: {len(res['errors'])}")
        lines.extend(f"{slug:16}   {e}" for e in res["errors"][:3])
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", default=os.environ.get("MTL_STATIC_SITE", str(ROOT / "static")))
    ap.add_argument("--minutes", type=float, default=10, help="per page (default 10)")
    ap.add_argument("--pages", default="", help="comma-separated slugs (default: every page)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--trace",
        action="store_true",
        help="trace Python's allocations (tracemalloc: slower, and its "
        "own tables grow the wasm memory) and print where they grew",
    )
    ap.add_argument("--json", help="write the samples here")
    args = ap.parse_args(argv)
    site = pathlib.Path(args.site)
    if not (site / "build-info.json").is_file():
        ap.error(f"{site} is not a built site (run build.py --out {site})")
    slugs = args.pages.split(",") if args.pages else json.loads((site / "build-info.json").read_text())["pages"]
    if args.minutes < 2:
        ap.error("--minutes must be at least 2 (the first minute is warm-up)")
    results = {}
    with background_server(site) as base, chromium() as ctx:
        for slug in slugs:
            print(f"{slug}: {args.minutes:g} min", flush=True)
            try:
                results[slug] = soak_page(ctx, base, slug, args.minutes, args.seed, args.trace)
            except Exception as exc:  # noqa: BLE001 - one page's failure is its result; the other pages still run
                results[slug] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    print("\n".join(report(results)))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
