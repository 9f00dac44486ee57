"""`panel serve app` with the browser's CPU slowed 4x (Chromium over CDP): Pause still stops every training page.

A page that streams more document updates than the browser can draw saturates its main thread, and a Pause click
then waits behind the queue (issue 15). These tests assert only the outcome, with generous timeouts: the status
says "paused" and the step counter stops advancing. bench/bench_latency.py measures how long it takes.
"""

from __future__ import annotations

import re

import pytest

from browser import throttle_cpu
from test_serve_browser import READY, browser, module_of, screenshot_on_failure, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

TRAINING_PAGES = ("shared_separate", "architectures", "weighting_lab", "training_loop")
STATUS = "() => Bokeh.documents[0].get_model_by_name('status').text"


def status_step(page) -> int:
    """The step count of the status line ("Step 120 / 1000 - training")."""
    match = re.search(r"Step (\d+) /", page.evaluate(STATUS))
    assert match, page.evaluate(STATUS)
    return int(match.group(1))


@pytest.mark.parametrize("slug", TRAINING_PAGES)
def test_pause_stops_training_with_the_cpu_slowed_4x(server, browser, slug):  # noqa: F811 - fixtures
    module_of(slug)
    page = browser.new_page()
    try:
        page.goto(f"{server}?page={slug}")
        page.wait_for_function(READY, timeout=30_000)
        page.wait_for_function(f"() => ({STATUS})().includes('training')", timeout=30_000)
        box = page.locator("button", has_text="Pause").first.bounding_box()  # found before the CPU is slowed
        throttle_cpu(page, 4)
        page.wait_for_timeout(2000)  # train ~2 s at 4x: the updates stream in while the click is made
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_function(f"() => ({STATUS})().includes('paused')", timeout=20_000)
        paused_at = status_step(page)
        page.wait_for_timeout(1500)
        assert status_step(page) == paused_at, "the step counter went on after the page said paused"
        assert "paused" in page.evaluate(STATUS)
    except BaseException:
        screenshot_on_failure(page, f"serve-load-pause-{slug}")
        raise
    finally:
        page.close()
