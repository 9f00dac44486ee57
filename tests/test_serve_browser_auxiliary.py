"""The auxiliary page under `panel serve app` in a real browser: a slider retrains and redraws, the sweep runs on
demand and stops on Pause, the two-head toggle shows the broadcast bug (the render / deep-link / garbage-link checks
of every page are in tests/test_serve_browser.py)."""

from __future__ import annotations

import pytest

from browser import ANSWER_MS

import test_serve_browser
from app.auxiliary_state import SWEEP_REPEATS, SWEEP_STEPS
import test_serve_browser_load
from test_serve_browser import arm_replaced, assert_clean, column, drag_slider, model_value, opened, wait_steps

pytestmark = pytest.mark.browser
server, browser = test_serve_browser.server, test_serve_browser.browser  # its fixtures: a server of our own
DOC = "Bokeh.documents[0]"


def test_relatedness_slider_retrains_and_redraws(server, browser):
    with opened(browser, f"{server}?page=auxiliary", "auxiliary-slider") as (page, watch, dialogs):
        wait_steps(page, "curves_source", 4)
        before = column(page, "curves_source", "with_test")[:4]
        arm_replaced(page, "curves_source")
        drag_slider(page, "Task relatedness", 0.1)
        page.wait_for_function(f"() => {DOC}.get_model_by_name('relatedness').value < 0.25", timeout=ANSWER_MS)
        # the server's answer: generous, as a busy machine (CI) may take well over 10 s
        page.wait_for_url("**relatedness=*", timeout=ANSWER_MS)
        page.wait_for_function(
            f"() => window.__mtlReplaced && {DOC}.get_model_by_name('curves_source').data.step.length >= 4",
            timeout=20_000,
        )
        assert column(page, "curves_source", "with_test")[:4] != before, "the curve did not change"
        assert "points" in model_value(page, "summary", "text")  # the gain, in words
        assert_clean(page, watch, dialogs)


def test_the_sweep_runs_on_demand_and_pause_stops_it(server, browser):
    status = f"() => {DOC}.get_model_by_name('sweep_status').text"
    total = 2 * SWEEP_REPEATS * SWEEP_STEPS  # steps of a sweep over 1 and 2 tasks
    with opened(browser, f"{server}?page=auxiliary&n_tasks=2", "auxiliary-sweep") as (page, watch, dialogs):
        assert "not run yet" in page.evaluate(status)
        page.locator("button", has_text="Pause").click()
        page.locator("button", has_text="Run the sweep").click()
        page.wait_for_function(f"() => /step [1-9][0-9]* \\/ {total}\\) - running/.test(({status})())", timeout=30_000)
        page.locator("button", has_text="Pause").click()  # the page's one Pause stops the sweep too
        page.wait_for_function(f"() => ({status})().includes('paused')", timeout=20_000)
        paused = page.evaluate(status)
        page.wait_for_timeout(1500)
        assert page.evaluate(status) == paused, "the sweep went on after it said paused"
        assert "Step 0 / 400" not in model_value(page, "status", "text")  # the live runs were paused, not reset
        assert_clean(page, watch, dialogs)


def test_forget_to_flatten_shows_the_wrong_loss_beside_the_right_one(server, browser):
    with opened(browser, f"{server}?page=auxiliary", "auxiliary-two-head") as (page, watch, dialogs):
        assert all(v != v for v in column(page, "two_head_source", "wrong"))  # NaN: no wrong bars yet
        page.locator("button", has_text="Forget to flatten").click()
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('two_head_source').data.wrong.every(v => v === v)", timeout=ANSWER_MS
        )
        right, wrong = column(page, "two_head_source", "right"), column(page, "two_head_source", "wrong")
        assert right != wrong
        assert "The bug" in model_value(page, "two_head_text", "text")
        page.wait_for_url("**flatten_bug=1*", timeout=ANSWER_MS)
        assert_clean(page, watch, dialogs)


def test_pause_stops_training_with_the_cpu_slowed_4x(server, browser):
    test_serve_browser_load.test_pause_stops_training_with_the_cpu_slowed_4x(server, browser, "auxiliary")
