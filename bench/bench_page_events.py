"""Python time of one event on a training page in a document set up as the static site's Pyodide worker has it.

The page is built as prebuild.py / boot.py build it (held, with a stand-in session), then the document is left
without a session and counted as connected, as write_doc and link_docs.py leave it: a hold then ends in
``Document.unhold``, which runs the held changes' Python callbacks (Panel's ``Syncable._server_change``). Events
(``--event``), each changed as the worker applies the page's patches (``set_from_json(setter="js")``) or clicked:

* ``move``: a setting's slider let go at a new value (``value`` then ``value_throttled``) while paused: a new run,
  trained at once (``--setting``, default the page's first enabled slider that starts a new run);
* ``tick``: one Animator tick while training, the last update drawn;
* ``train``: the Train button while paused; ``reset``: the Reset button while training;
* ``upload``: a CSV of one's own (made up here); ``reset_data``: Reset to generated data after one.

What each event needs first (pausing, the browser's receipt of the last update, an upload) is done untimed. The
script prints the median milliseconds per event and how many times Panel processed a change per event
(``Syncable._process_events``: the browser's own changes, plus any held change of the page's that came back as if
the browser had sent it). ``--plain-hold`` holds with a plain ``pn.io.hold()`` (the pages before common.page_hold)
to compare in one checkout; ``--profile`` adds the cumulative cProfile of 20 events.

Run: ``python bench/bench_page_events.py --page shared_separate --event tick [--events 40] [--plain-hold]``
"""

from __future__ import annotations

import argparse
import contextlib
import base64
import cProfile
import importlib
import os
import pstats
import statistics
import sys
import time

import numpy as np

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [_ROOT, os.path.join(_ROOT, "tests")]  # the app, and tests/worker_document.py

PAGES = ("shared_separate", "architectures", "weighting_lab", "training_loop", "auxiliary")
EVENTS = ("move", "tick", "train", "reset", "upload", "reset_data")


def worker_page(slug: str, stack: contextlib.ExitStack):
    """(view, document) of the page ``slug``, paused, in a worker-like document (tests/worker_document.py), open for
    as long as ``stack`` is."""
    from worker_document import page_in_a_worker_document

    create = importlib.import_module(f"app.{slug}").create_page
    view, doc, _sent = stack.enter_context(page_in_a_worker_document(create, slug))
    return view, doc


def own_csv(slug: str, seed: int = 0) -> str:
    """A small CSV of one's own for ``slug``'s upload."""
    x = np.random.default_rng(seed).standard_normal((60, 3)).round(3)
    if slug == "weighting_lab":
        rows = [f"{a},{b},{c},{1000 * a:.3f},{int(b > 0)}" for a, b, c in x]
        return "x1,x2,x3,y_reg,y_cls\n" + "\n".join(rows) + "\n"
    if slug == "auxiliary":
        rows = [f"{a},{b},{int(a * b > 0) if i < 20 else ''},{int(a > 0)}" for i, (a, b, _c) in enumerate(x)]
        return "x1,x2,main,aux\n" + "\n".join(rows) + "\n"
    rows = [f"{a},{b},{int(a > 0)},{int(b > 0)}" for a, b, _c in x]
    return "x1,x2,label_a,label_b\n" + "\n".join(rows) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--page", choices=PAGES, default="shared_separate")
    ap.add_argument("--event", choices=EVENTS, default="tick")
    ap.add_argument("--setting", default="", help="the slider a move changes (default: the page's first)")
    ap.add_argument("--events", type=int, default=40)
    ap.add_argument("--plain-hold", action="store_true", help="holds by pn.io.hold() alone (the old way)")
    ap.add_argument("--profile", action="store_true", help="also print the cProfile of 20 events")
    args = ap.parse_args(argv)

    from worker_document import for_a_benchmark

    processed = for_a_benchmark(args.plain_hold)
    stack = contextlib.ExitStack()
    view, doc = worker_page(args.page, stack)
    s, animator = view.state, view.animator
    from worker_document import from_the_browser, model

    receipt = model(animator.receipt, doc)
    if args.event in ("upload", "reset_data") and not hasattr(view, "upload"):
        ap.error(f"{args.page} takes no data of one's own")
    # two files, in turn: the input's model keeps the last file's value (a cleared input sends no change), and the
    # same file again would be no change either
    raws = [base64.b64encode(own_csv(args.page, seed).encode()).decode() for seed in (0, 1)]

    def drawn():  # the browser has drawn the last update (its receipt), untimed
        if receipt.placeholder not in ("", "0"):
            from_the_browser(receipt, value=receipt.placeholder)
        animator._idle_until = 0.0

    def pause():
        if s.running:
            view.buttons["pause"].clicks += 1

    sliders = [k for k in s.reset_on if type(model(view.widgets[k], doc)).__name__ == "Slider"]
    name = args.setting or next(k for k in sliders if not view.widgets[k].disabled)
    slider = model(view.widgets[name], doc)
    up = slider.value + slider.step
    values = [slider.value, round(up if up <= slider.end else slider.start, 6)]  # the move goes back and forth
    count = [0]

    def upload():
        count[0] += 1
        from_the_browser(model(view.upload, doc), mime_type="text/csv", filename="mine.csv", value=raws[count[0] % 2])

    def prepare():
        """What the next event needs, untimed."""
        if args.event in ("move", "train"):
            pause()
        elif args.event in ("tick", "reset"):
            s.running = True
        elif args.event == "reset_data":
            upload()
        elif args.event == "upload":
            view.reset_data.clicks += 1
        drawn()

    def event():
        if args.event == "move":
            count[0] += 1
            new = values[count[0] % 2]
            from_the_browser(slider, value=new, value_throttled=new)
        elif args.event == "tick":
            animator._tick()
        elif args.event in ("train", "reset"):
            view.buttons[args.event].clicks += 1
        elif args.event == "upload":
            upload()
        else:
            view.reset_data.clicks += 1

    s.running = True  # a first update drawn: a new run is numbered too (Animator._on_running), as in the page
    animator._tick()
    drawn()
    for _ in range(3):  # warm-up
        prepare()
        event()
    times = []
    processes = 0
    for _ in range(args.events):
        prepare()
        processed.clear()
        t0 = time.perf_counter()
        event()
        times.append(time.perf_counter() - t0)
        processes += len(processed)
    animator.stop()
    times.sort()
    n = len(times)
    what = f"{args.event} ({name})" if args.event == "move" else args.event
    print(
        f"{args.page} {what}, {'plain hold' if args.plain_hold else 'page_hold'}: median "
        f"{statistics.median(times) * 1e3:.2f} ms per event (quartiles {times[n // 4] * 1e3:.2f}-"
        f"{times[3 * n // 4] * 1e3:.2f}, {n} events); _process_events per event: {processes / n:g}"
    )
    if args.profile:
        profile = cProfile.Profile()
        for _ in range(20):
            prepare()
            profile.enable()
            event()
            profile.disable()
        animator.stop()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
