"""The static site with the page's CPU slowed 4x (Chromium over CDP): the Loss-Weighting Lab -- the page with the
most figures redrawn per tick -- answers Pause, Reset and a slider while it trains in its Pyodide worker (issue 15).

Only the outcome is asserted, with generous timeouts (no timing: the speed goal lives in bench/bench_latency.py
``--static``): Pause says "paused" and the step counter stops; Reset says "Step 0 / ... - ready", stays there and
empties the curves; a slider released on a training page starts a new run in the worker that trains with the new
value (the curves refill). Every event travels to Python in the worker and back.
"""

from __future__ import annotations

import re

import pytest

import test_static_site
from browser import throttle_cpu
from test_serve_browser_throttled import center, slider_points
from test_static_site import ACT_MS, DOC, assert_clean, model, opened

pytestmark = pytest.mark.static
ctx = test_static_site.ctx  # its Chromium fixture
SLUG = "weighting_lab"
STATUS = f"() => {DOC}.get_model_by_name('status').text"
ANSWER_MS = 2 * ACT_MS  # an answer under 4x throttling on a busy 2-core machine: generous, the bench measures speed


def status_has(word: str) -> str:
    return f"() => ({STATUS})().includes({word!r})"


def status_step(page) -> int:
    match = re.search(r"Step (\d+) /", page.evaluate(STATUS))
    assert match, page.evaluate(STATUS)
    return int(match.group(1))


def test_pause_reset_and_a_slider_are_answered_in_the_worker_with_the_cpu_slowed_4x(url, ctx):
    with opened(ctx, f"{url}/{SLUG}.html", "throttled") as (page, watch):
        page.wait_for_function(status_has("training"), timeout=ACT_MS)
        page.wait_for_timeout(1000)  # laid out: the positions below stay put
        # found before the CPU is slowed (a saturated page answers layout queries late)
        where = {label: center(page, label) for label in ("Pause", "Train", "Reset")}
        start, end = slider_points(page, "Missing labels", 0.5)
        throttle_cpu(page, 4)
        page.wait_for_timeout(2000)  # ~2 s of training at 4x: updates stream in while the click is made

        page.mouse.click(*where["Pause"])
        page.wait_for_function(status_has("paused"), timeout=ANSWER_MS)
        paused_at = status_step(page)
        assert paused_at > 0
        page.wait_for_timeout(1500)
        assert status_step(page) == paused_at, "the step counter went on after the page said paused"

        page.mouse.click(*where["Train"])
        page.wait_for_function(
            f"() => ({STATUS})().includes('training') && Number(({STATUS})().match(/Step (\\d+)/)[1]) > {paused_at}",
            timeout=ANSWER_MS,
        )
        page.mouse.click(*where["Reset"])
        page.wait_for_function(status_has("ready"), timeout=ANSWER_MS)
        assert status_step(page) == 0
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('curves_equal').data.step.every((v) => v === 0)", timeout=ANSWER_MS
        )
        page.wait_for_timeout(1500)
        assert "Step 0 /" in page.evaluate(STATUS) and "ready" in page.evaluate(STATUS), "the Reset did not hold"

        old = model(page, "missing")
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=4)
        page.mouse.up()
        # a new run in the worker with the new value, training: the curves refill
        page.wait_for_function(f"() => {DOC}.get_model_by_name('missing').value !== {old}", timeout=ANSWER_MS)
        page.wait_for_function(status_has("training"), timeout=ANSWER_MS)
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('curves_equal').data.step.length >= 3", timeout=ANSWER_MS
        )
        assert model(page, "missing") > old
        assert_clean(watch)
