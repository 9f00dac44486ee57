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
import cProfile
import os
import pstats
import random
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def worker_page():
    """(view, document, main plot) of the arena page in a worker-like document (tests/test_app_arena.py has the
    same set-up as a context manager)."""
    from bokeh.document import Document
    from bokeh.io.doc import set_curdoc as set_bokeh_curdoc
    from panel.io.document import MockSessionContext
    from panel.io.state import state
    from panel.util import edit_readonly

    from app.arena import create_page

    doc = Document()
    set_bokeh_curdoc(doc)
    state.curdoc = doc
    doc.hold()
    doc._session_context = lambda: MockSessionContext(document=doc)  # as panel.io.pyodide.init_doc
    state._thread_id = threading.get_ident()  # the worker's one thread is Panel's
    with edit_readonly(state.location):
        state.location.param.update(search="", pathname="/arena.html")
    view = create_page()
    view.servable(title="arena")
    doc._session_context = None  # as write_doc leaves it
    doc.on_change(lambda event: None)  # the worker's pysync
    doc.unhold()
    state._connected[doc] = True  # the page said DocumentReady
    view.animator.stop()
    return view, doc, doc.select_one({"name": "arena_plot"})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clicks", type=int, default=300)
    ap.add_argument("--plain-hold", action="store_true", help="a click held by pn.io.hold() alone (the old way)")
    ap.add_argument("--profile", action="store_true", help="also print the cProfile of 100 clicks")
    args = ap.parse_args(argv)

    import panel as pn
    from bokeh.events import Tap
    from panel.reactive import Syncable

    from app import common

    if args.plain_hold:
        common.hold_except = lambda *linked: pn.io.hold()
    processed = [0]
    process = Syncable._process_events

    def counted(self, events):
        processed[0] += 1
        return process(self, events)

    Syncable._process_events = counted
    view, _doc, plot = worker_page()
    rng = random.Random(0)

    def click():
        x, y = rng.uniform(-9, 9), rng.uniform(-9, 9)
        for callback in plot._event_callbacks["tap"]:
            callback(Tap(plot, x=x, y=y))
        assert (view.widgets["x"].value, view.widgets["y"].value) == (round(x, 3), round(y, 3))

    for _ in range(10):  # warm-up
        click()
    processed[0] = 0
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
        f"_process_events per click: {processed[0] / n:g}"
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
