"""`panel serve app`: a figure scrolled out of view is not repainted while the page trains, but its data keeps
coming, and it is drawn, up to date, once it scrolls in (common.LEAN_PAINT_JS, issue 15: a slow browser spends its
time on what the reader sees). Outcomes only: which figures painted, never how fast.
"""

from __future__ import annotations

import contextlib

import pytest

from browser import ANSWER_MS

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


@contextlib.contextmanager
def lean_page(server, browser, slug: str, height: int = 900):  # noqa: F811 - fixtures
    """A tab of ``slug`` under ``panel serve``, 1200 px wide, once its LEAN_PAINT_JS is installed."""
    module_of(slug)
    page = browser.new_page()
    try:
        page.set_viewport_size({"width": 1200, "height": height})
        page.goto(f"{server}?page={slug}")
        page.wait_for_function(READY, timeout=30_000)
        page.wait_for_function("() => window.__mtlLeanPaint === true", timeout=30_000)
        yield page
    finally:
        page.close()


def test_a_figure_out_of_view_is_drawn_when_it_scrolls_in(server, browser):  # noqa: F811 - fixtures
    with lean_page(server, browser, SLUG) as page:
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


LAB = "weighting_lab"
CURVES = ["loss_figure_0", "loss_figure_1", "weight_figure"]
# a figure's legend view and left-axis view, by the figure's name (BokehJS keeps a legend among the center renderers)
VIEWS = """const parts = (name) => { const m = Bokeh.documents[0].get_model_by_name(name), v = Bokeh.index.find_one(m);
  const legend = m.center.find((r) => r.type === 'Legend');
  return {legend: v.renderer_views.get(legend), axis: v.renderer_views.get(m.left[0])}; };"""
# marks every legend entry's element of the Lab's curve figures; the figures' left-axis widths
MARK_LEGENDS = f"""(names) => {{ {VIEWS} const out = {{}}; for (const name of names) {{ const p = parts(name);
  for (const e of p.legend.entries) e.el.dataset.mtlMark = name;
  out[name] = p.axis.layout.bbox.width; }} return out; }}"""
LEGENDS_KEPT = f"""(names) => {{ {VIEWS} return names.every((name) => {{ const {{entries}} = parts(name).legend;
  return entries.length === 4 && entries.every((e) => e.el.dataset.mtlMark === name && e.el.isConnected); }}); }}"""
AXIS_WIDTHS = f"""(names) => {{ {VIEWS}
  return Object.fromEntries(names.map((name) => [name, parts(name).axis.layout.bbox.width])); }}"""
STEPS = f"() => {DOC}.get_model_by_name('curves_equal').data.step"
FIRST_ENTRY = f"""() => {{ {VIEWS} const r = parts('loss_figure_0').legend.entries[0].el.getBoundingClientRect();
  return [r.left + r.width / 2, r.top + r.height / 2]; }}"""
FIRST_ENTRY_STATE = f"""() => {{ {VIEWS} const e = parts('loss_figure_0').legend.entries[0];
  return [e.item.renderers[0].visible, e.el.classList.contains('bk-inactive')]; }}"""


def test_a_new_run_keeps_the_lab_legends_and_axes(server, browser):  # noqa: F811 - fixtures
    """A new run replaces every curve's data. The legends keep their entries (BokehJS rebuilt each legend once
    per replaced source) and still hide a method's line on a click; the axes keep their width (no plot is laid out
    again for narrower labels)."""
    from test_serve_browser import drag_slider

    with lean_page(server, browser, LAB, height=3000) as page:  # every figure on screen: all of them paint
        page.wait_for_function("() => window.__mtlLeanLegend === true && window.__mtlLeanAxis === true")
        page.wait_for_function(f"() => ({STEPS})().length > 5", timeout=30_000)  # trained a while
        widths = page.evaluate(MARK_LEGENDS, CURVES)
        assert all(w >= 40 for w in widths.values()), widths  # a vertical auto-ranged axis keeps room for 5 chars
        drag_slider(page, "Missing labels", 0.5)
        page.wait_for_function(f"() => ({STEPS})()[0] === 0 && ({STEPS})().length <= 2", timeout=30_000)
        page.wait_for_function(f"() => ({STEPS})().length > 3", timeout=30_000)  # the new run trains and draws
        assert page.evaluate(LEGENDS_KEPT, CURVES), "a legend was rebuilt for a new run of the same methods"
        after = page.evaluate(AXIS_WIDTHS, CURVES)
        assert all(after[k] >= widths[k] for k in widths), (widths, after)
        page.mouse.click(*page.evaluate(FIRST_ENTRY))  # click_policy "hide": the line goes, the entry greys
        page.wait_for_function(f"() => ({FIRST_ENTRY_STATE})()[0] === false", timeout=ANSWER_MS)
        assert page.evaluate(FIRST_ENTRY_STATE) == [False, True]
        page.mouse.click(*page.evaluate(FIRST_ENTRY))
        page.wait_for_function(f"() => ({FIRST_ENTRY_STATE})()[0] === true", timeout=ANSWER_MS)
        assert page.evaluate(FIRST_ENTRY_STATE) == [True, False]


ARENA = "arena"
MAPS = ["arena_plot", "map_a", "map_b", "map_sum"]
# counts each map's paints of its primary layer (image, iso-lines, axes) and of its overlay layer (point, arrows)
COUNT_LAYERS = """(names) => { window.__layers = {}; for (const name of names) {
  const v = Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name(name));
  for (const layer of ['_paint_primary', '_paint_overlays']) { const paint = v[layer].bind(v);
    v[layer] = (ctx) => { const key = name + layer; window.__layers[key] = (window.__layers[key] || 0) + 1;
      paint(ctx); };
  } } }"""
ARIA = "(name) => Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name(name)).el.getAttribute('aria-label')"


def test_an_arena_click_repaints_only_what_moved(server, browser):  # noqa: F811 - fixtures
    """A click moves the point and the arrows, drawn on the maps' overlay layer: the heat images, iso-lines and
    axes below are not painted again, and the maps' text alternatives (aria-label) still follow the point."""
    from test_serve_browser_arena import TO_PAGE

    with lean_page(server, browser, ARENA) as page:
        page.wait_for_timeout(1000)
        label = page.evaluate(ARIA, "map_a")
        page.evaluate(COUNT_LAYERS, MAPS)
        page.mouse.click(*page.evaluate(TO_PAGE, ["arena_plot", -1.0, 7.0]))
        page.wait_for_function(f"() => {DOC}.get_model_by_name('point_source').data.x[0] === -1", timeout=30_000)
        page.wait_for_function(f"(label) => ({ARIA})('map_a') !== label", arg=label, timeout=30_000)
        page.wait_for_function("() => (window.__layers.map_a_paint_overlays || 0) > 0", timeout=30_000)
        page.wait_for_timeout(500)
        layers = page.evaluate("() => window.__layers")
        assert all(layers.get(f"{name}_paint_overlays", 0) >= 1 for name in MAPS), layers
        assert not any(layers.get(f"{name}_paint_primary", 0) for name in MAPS), layers
        assert "-1.00" in page.evaluate(ARIA, "arena_plot")  # the main map's label says where the point is
