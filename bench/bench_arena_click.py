"""Python time of one arena click in a document set up as the static site's Pyodide worker has it (no browser).

The page is built as prebuild.py / boot.py build it (held, with a stand-in session), then the document is left
without a session and counted as connected, as write_doc and link_docs.py leave it: a hold then ends in
``Document.unhold``, which runs the held changes' Python callbacks (Panel's ``Syncable._server_change``). The
script fires the main map's Tap handlers at random points and prints the median milliseconds per click, how many
times Panel processed a change as if the browser had sent it (``Syncable._process_events``) per click, and with
``--profile`` the cumulative cProfile of 100 clicks. ``--plain-hold`` clicks with a plain ``pn.io.hold()`` (the arena
before common.hold_except) to compare in one checkout.

Run: ``python bench/bench_arena_click.py [--clicks 300] [--plain-hold] [--profile]``
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import random
import statistics
import sys
import time

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [_ROOT, os.path.join(_ROOT, "tests")]  # the app, and tests/worker_document.py


def worker_page(stack: contextlib.ExitStack):
    """(view, document, main plot) of the arena page in a worker-like document (tests/worker_document.py), open for
    as long as ``stack`` is."""
    from app.arena import create_page
    from worker_document import page_in_a_worker_document

    view, doc, _sent = stack.enter_context(page_in_a_worker_document(create_page, "arena"))
    return view, doc, doc.select_one({"name": "arena_plot"})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clicks", type=int, default=300)
    ap.add_argument("--plain-hold", action="store_true", help="a click held by pn.io.hold() alone (the old way)")
    ap.add_argument("--profile", action="store_true", help="also print the cProfile of 100 clicks")
    args = ap.parse_args(argv)

    from bokeh.events import Tap

    from worker_document import for_a_benchmark

    processed = for_a_benchmark(args.plain_hold)
    stack = contextlib.ExitStack()
    view, _doc, plot = worker_page(stack)
    rng = random.Random(0)

    def click():
        x, y = rng.uniform(-9, 9), rng.uniform(-9, 9)
        for callback in plot._event_callbacks["tap"]:
            callback(Tap(plot, x=x, y=y))
        assert (view.widgets["x"].value, view.widgets["y"].value) == (round(x, 3), round(y, 3))

    for _ in range(10):  # warm-up
        click()
    processed.clear()
    times = []
    for _ in range(args.clicks):
        t0 = time.perf_counter()
        click()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    print(
        f"{'plain hold' if args.plain_hold else 'hold_except'}: median {statistics.median(times) * 1e3:.2f} ms per "
        f"click (quartiles {times[n // 4] * 1e3:.2f}-{times[3 * n // 4] * 1e3:.2f}, {n} clicks); "
        f"_process_events per click: {len(processed) / n:g}"
    )
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(100):
            click()
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
