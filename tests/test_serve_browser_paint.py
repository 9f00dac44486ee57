"""`panel serve app`: a figure scrolled out of view is not repainted while the page trains, but its data keeps
coming, and it is drawn, up to date, once it scrolls in (common.LEAN_PAINT_JS, issue 15: a slow browser spends its
time on what the reader sees). Outcomes only: which figures painted, never how fast.
"""

from __future__ import annotations

import pytest

from test_serve_browser import READY, browser, module_of, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

SLUG = "shared_separate"
DOC = "Bokeh.documents[0]"
FAR = "cosine_figure"  # the last figure of the page: below the fold of a 1200 x 900 window
NEAR = "boundary_shared_a"  # a decision map at the top
# counts each figure's real paints (BokehJS's _actual_paint: the canvas drawn) from now on
COUNT_PAINTS = """() => { window.__paints = {};
  for (const m of Bokeh.documents[0].all_models) { const v = Bokeh.index.find_one(m);
    if (v && v._actual_paint && m.name) { const paint = v._actual_paint.bind(v);
      v._actual_paint = () => { window.__paints[m.name] = (window.__paints[m.name] || 0) + 1; paint(); }; } } }"""
PAINTS = "(name) => window.__paints[name] || 0"
ROWS = f"() => {DOC}.get_model_by_name('cosine_source').data.step.length"
SCROLL_TO = f"(name) => Bokeh.index.find_one({DOC}.get_model_by_name(name)).el.scrollIntoView({{block: 'center'}})"
CSS_VALUE = (
    f"(name) => Bokeh.index.find_one({DOC}.get_model_by_name(name)).visuals.outline_line._get_css_value('line_color')"
)


def test_a_figure_out_of_view_is_drawn_when_it_scrolls_in(server, browser):  # noqa: F811 - fixtures
    module_of(SLUG)
    page = browser.new_page()
    try:
        page.set_viewport_size({"width": 1200, "height": 900})
        page.goto(f"{server}?page={SLUG}")
        page.wait_for_function(READY, timeout=30_000)
        page.wait_for_function("() => window.__mtlLeanPaint === true", timeout=30_000)
        page.wait_for_function(f"() => {DOC}.get_model_by_name('status').text.includes('training')", timeout=30_000)
        page.wait_for_timeout(1500)  # laid out, and the observer has told every figure where it is
        page.evaluate(COUNT_PAINTS)
        rows = page.evaluate(ROWS)
        page.wait_for_function(f"() => ({ROWS})() > {rows} + 2", timeout=30_000)  # it trains: new cosine rows
        page.wait_for_function(PAINTS, arg=NEAR, timeout=30_000)  # what is on screen is drawn
        assert page.evaluate(PAINTS, FAR) == 0, "a figure below the fold was repainted"
        page.evaluate(SCROLL_TO, FAR)
        page.wait_for_function(PAINTS, arg=FAR, timeout=30_000)  # scrolled in: drawn
        # BokehJS no longer asks the CSS cascade for --bk-* overrides (nothing on the page defines one)
        assert page.evaluate(CSS_VALUE, NEAR) == ""
    finally:
        page.close()
