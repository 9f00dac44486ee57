"""prefers-reduced-motion: reduce -> a training page starts paused at step 0 and says why; Train still works.
Logic through the view's hidden motion_preference widget, then Chromium under `panel serve` with the media
feature emulated (the static site's path, loader -> play.py, is in tests/test_static_site.py)."""

from __future__ import annotations

import pytest

from app import common, shared_separate
from browser import PageWatch, chromium, panel_served, screenshot_on_failure


def _hidden_motion_widget(view):
    return view.motion


def test_the_browsers_reduce_answer_resets_and_pauses_a_running_page_with_a_notice():
    view = shared_separate.create_page("seed=3", autoplay=True)
    view.animator.stop()
    state = view.state
    state.tick(4)
    assert state.running and state.steps > 0
    _hidden_motion_widget(view).value = "reduce"
    assert not state.running and state.steps == 0 and "ready" in state.status
    assert common.REDUCED_MOTION_NOTICE.split(",")[0] in view.notices.object
    state.play()  # Train still works
    state.tick(2)
    assert state.steps == 2


def test_any_other_answer_changes_nothing():
    view = shared_separate.create_page("", autoplay=True)
    view.animator.stop()
    view.state.tick(2)
    _hidden_motion_widget(view).value = "no-preference"
    assert view.state.running and view.state.steps == 2 and view.notices.object == ""


@pytest.mark.browser
def test_under_panel_serve_a_reduced_motion_browser_sees_the_page_paused_then_trains_on_train():
    with panel_served("app", "serve_motion", "app") as base, chromium() as ctx:
        page = ctx.new_page()
        watch = PageWatch()
        watch.attach(page)
        try:
            page.emulate_media(reduced_motion="reduce")
            page.goto(f"{base}?page=shared_separate")
            page.get_by_text("Your system asks for reduced motion").wait_for(timeout=45_000)
            status = "() => Bokeh.documents[0].get_model_by_name('status').text"
            page.wait_for_function(f"() => ({status})().includes('Step 0 /')", timeout=10_000)
            page.wait_for_timeout(1500)  # nothing trains by itself
            assert "Step 0 /" in page.evaluate(status)
            page.get_by_role("button", name="Train").click()
            page.wait_for_function(f"() => !({status})().includes('Step 0 /')", timeout=30_000)
            assert watch.problems() == []
        except BaseException:
            screenshot_on_failure(page, "reduced_motion")
            raise
        finally:
            page.close()
