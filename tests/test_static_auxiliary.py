"""The auxiliary page on the static site (Pyodide in a web worker): its deep link reaches Python, a slider move
starts a new run that trains and redraws there, and the two-head toggle computes the bug's numbers in Pyodide
(booting without errors is checked with every page in tests/test_static_site.py)."""

from __future__ import annotations

import pytest

import test_static_site
from test_static_site import ACT_MS, DOC, assert_clean, column, drag_slider, model, opened, wait_steps

pytestmark = pytest.mark.static
ctx = test_static_site.ctx  # its Chromium fixture
# the first points of a new run differ from ``old`` (the first points of the run before the slider moved)
NEW_CURVE = f"""(old) => {{ const d = {DOC}.get_model_by_name('curves_source').data;
  return d.step.length >= old.length && old.some((v, i) => d.with_test[i] !== v); }}"""


def test_auxiliary_deep_link_slider_and_two_head_toggle_in_the_worker(url, ctx):
    with opened(ctx, f"{url}/auxiliary.html?relatedness=0.9&aux_kind=regression", "auxiliary") as (page, watch):
        assert model(page, "relatedness") == 0.9 and model(page, "aux_kind", "active") == 1  # the numeric score
        assert "RMSE" in model(page, "eval_table", "text")
        wait_steps(page, "curves_source", 3)
        before = column(page, "curves_source", "with_test")[:3]
        drag_slider(page, "Task relatedness", 0.1)
        page.wait_for_function(f"() => {DOC}.get_model_by_name('relatedness').value < 0.25", timeout=ACT_MS)
        page.wait_for_function(NEW_CURVE, arg=before, timeout=ACT_MS)
        page.locator("button", has_text="Forget to flatten").click()
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('two_head_source').data.wrong.every(v => v === v)", timeout=ACT_MS
        )
        from app.auxiliary_state import AuxiliaryState  # the same numbers in CPython

        expected = AuxiliaryState(flatten_bug=True).two_head
        assert column(page, "two_head_source", "wrong") == pytest.approx(list(expected["wrong"]), rel=1e-9)
        assert column(page, "two_head_source", "right") == pytest.approx(list(expected["right"]), rel=1e-9)
        page.wait_for_function("() => window.location.search.includes('flatten_bug=1')", timeout=ACT_MS)
        assert_clean(watch)
