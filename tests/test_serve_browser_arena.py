"""Real-browser test of the arena and weighting-lab pages under `panel serve app`.

Chromium clicks the arena's plot with the real mouse and toggles PCGrad with the real mouse; the test reads the
arrows' data source back out of the Bokeh document in the page, so the whole round trip (browser event ->
Python state -> data source -> browser) is checked. Every host but localhost is unresolvable (tests/browser.py).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from browser import (
    ANSWER_MS,
    panel_served,
    PageWatch,
    chromium,
    screenshot_on_failure,
)

pytestmark = pytest.mark.browser
ROOT = pathlib.Path(__file__).resolve().parent.parent

# JS helpers run inside the page
ARROWS = """() => {
  const src = Bokeh.documents[0].get_model_by_name('arrow_source');
  const d = src.data;
  return {which: [...d.which], gx: [...d.gx], gy: [...d.gy], x0: [...d.x0], y0: [...d.y0]};
}"""
# page coordinates of a data point of a named figure: the plot view's own scales map data -> canvas pixels
TO_PAGE = """([name, x, y]) => {
  const fig = Bokeh.documents[0].get_model_by_name(name);
  const view = Bokeh.index.find_one(fig);
  const r = view.canvas_view.el.getBoundingClientRect();
  return [r.left + view.frame.x_scale.compute(x), r.top + view.frame.y_scale.compute(y)];
}"""
READY = "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].get_model_by_name('{name}') != null"


@pytest.fixture(scope="module")
def server():
    with panel_served("app", "serve_arena", "app") as base:
        yield base


@pytest.fixture(scope="module")
def browser_ctx():
    with chromium() as ctx:
        yield ctx


def _open(ctx, url: str, ready_name: str):
    page = ctx.new_page()
    watch = PageWatch()
    watch.attach(page)
    page.goto(url)
    page.wait_for_function(READY.replace("{name}", ready_name), timeout=45_000)
    page.wait_for_timeout(500)  # let the first layout pass finish
    return page, watch


def _wait_arrows_change(page, before: dict, timeout: float = 10_000) -> dict:
    page.wait_for_function(
        """(old) => { const d = Bokeh.documents[0].get_model_by_name('arrow_source').data;
                      return d.x0[0] !== old.x0[0] || d.y0[0] !== old.y0[0] ||
                             d.gx[2] !== old.gx[2] || d.gy[2] !== old.gy[2]; }""",
        arg=before,
        timeout=timeout,
    )
    return page.evaluate(ARROWS)


def test_arena_click_and_pcgrad_in_browser(server, browser_ctx):
    from mtl_core.arena import CAGradToy
    from mtl_core.combine import make_combiner

    page, watch = _open(browser_ctx, f"{server}?page=arena", "arena_plot")
    try:
        before = page.evaluate(ARROWS)
        history = page.evaluate("history.length")
        assert before["which"] == ["g_A", "g_B", "combined"]
        # (-1, 7) lies between the CAGrad toy's two valleys, where the task gradients point apart
        target = (-1.0, 7.0)
        px, py = page.evaluate(TO_PAGE, ["arena_plot", *target])
        page.mouse.click(px, py)
        after = _wait_arrows_change(page, before)
        clicked = np.array([after["x0"][0], after["y0"][0]])
        assert np.allclose(clicked, target, atol=0.2), clicked  # within a pixel or two of the aimed point
        toy = CAGradToy()
        G = toy.grads(clicked)
        assert np.allclose([after["gx"][0], after["gy"][0]], G[0], rtol=1e-6, atol=1e-9)
        assert np.allclose([after["gx"][1], after["gy"][1]], G[1], rtol=1e-6, atol=1e-9)
        assert G[0] @ G[1] < 0, "the aimed point should be a conflicting one"
        assert np.allclose([after["gx"][2], after["gy"][2]], G.sum(axis=0), rtol=1e-6)  # method: sum

        # the toggle, clicked with the real mouse, turns the combined arrow into PCGrad's direction
        page.get_by_role("button", name="PCGrad surgery").click()
        toggled = _wait_arrows_change(page, after)
        pc = make_combiner("pcgrad").combine(G, rng=np.random.default_rng(0)).direction
        assert np.allclose([toggled["gx"][2], toggled["gy"][2]], pc, rtol=1e-6, atol=1e-9)
        assert not np.allclose(pc, G.sum(axis=0))
        # the method buttons reflect the toggle
        chosen = page.evaluate("() => Bokeh.documents[0].get_model_by_name('method').value")
        assert chosen == "pcgrad"
        # and the URL now carries the state, so the view can be shared
        page.wait_for_function("() => window.location.search.includes('pcgrad=1')", timeout=ANSWER_MS)
        assert "method=pcgrad" in page.url and "x=" in page.url
        # the address was replaced, not pushed: Back leaves the page instead of walking through the clicks
        assert page.evaluate("history.length") == history
        assert watch.problems() == []
    except BaseException:
        screenshot_on_failure(page, "serve_arena")
        raise
    finally:
        page.close()


def test_arena_new_method_chosen_in_the_menu_and_fairgrad_alpha(server, browser_ctx):
    """The method menu (a real <select>) picks FairGrad: the arrow becomes mtl_core's FairGrad direction and the
    alpha slider appears; a deep link with alpha=1 gives Nash-MTL's direction."""
    from mtl_core.arena import CAGradToy
    from mtl_core.combine import make_combiner

    G = CAGradToy().grads(np.array([-1.0, 7.0]))
    page, watch = _open(browser_ctx, f"{server}?page=arena&x=-1&y=7", "arena_plot")
    try:
        before = page.evaluate(ARROWS)
        assert not page.get_by_text("FairGrad α").is_visible()
        page.locator("select").select_option(label="FairGrad")
        after = _wait_arrows_change(page, before)
        fair = make_combiner("fairgrad", alpha=2.0).combine(G, rng=np.random.default_rng(0)).direction
        assert np.allclose([after["gx"][2], after["gy"][2]], fair, rtol=1e-6, atol=1e-9)
        page.get_by_text("FairGrad α").wait_for(state="visible", timeout=ANSWER_MS)
        page.wait_for_function("() => window.location.search.includes('method=fairgrad')", timeout=ANSWER_MS)
        assert watch.problems() == []
    except BaseException:
        screenshot_on_failure(page, "serve_arena_fairgrad")
        raise
    finally:
        page.close()
    page, watch = _open(browser_ctx, f"{server}?page=arena&x=-1&y=7&method=fairgrad&alpha=1", "arena_plot")
    try:
        d = page.evaluate(ARROWS)
        nash = make_combiner("nash_mtl").combine(G, rng=np.random.default_rng(0)).direction
        assert np.allclose([d["gx"][2], d["gy"][2]], nash, rtol=1e-6, atol=1e-9)
        assert page.evaluate("() => Bokeh.documents[0].get_model_by_name('method').value") == "fairgrad"
        assert watch.problems() == []
    except BaseException:
        screenshot_on_failure(page, "serve_arena_fairgrad_link")
        raise
    finally:
        page.close()


def test_arena_point_placed_with_the_keyboard_alone(server, browser_ctx):
    """No pointer: focus the point's x input, type a value and Enter, the same for y: the arrows start there."""
    page, watch = _open(browser_ctx, f"{server}?page=arena", "arena_plot")
    try:
        before = page.evaluate(ARROWS)
        for label, text in (("θ x", "2.5"), ("θ y", "-4")):
            page.get_by_label(label).focus()
            page.keyboard.press("Control+A")
            page.keyboard.type(text)
            page.keyboard.press("Enter")
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('arrow_source').data.y0[0] === -4", timeout=ANSWER_MS
        )
        after = page.evaluate(ARROWS)
        assert (after["x0"][0], after["y0"][0]) == (2.5, -4.0) and after != before
        assert watch.problems() == []
    except BaseException:
        screenshot_on_failure(page, "serve_arena_keyboard")
        raise
    finally:
        page.close()


def test_arena_deep_link_restores_state(server, browser_ctx):
    page, watch = _open(
        browser_ctx, f"{server}?page=arena&surface=quadratics&angle=170&x=0&y=0&method=mgda", "arena_plot"
    )
    try:
        d = page.evaluate(ARROWS)
        assert d["x0"][0] == 0 and d["y0"][0] == 0
        g = np.array([d["gx"][:2], d["gy"][:2]]).T  # (2, 2): the two task gradients
        cos = g[0] @ g[1] / np.linalg.norm(g[0]) / np.linalg.norm(g[1])
        assert cos == pytest.approx(np.cos(np.deg2rad(170)), abs=1e-9)
        assert page.evaluate("() => Bokeh.documents[0].get_model_by_name('method').value") == "mgda"
        assert page.evaluate("() => Bokeh.documents[0].get_model_by_name('pcgrad').active") is False
        assert watch.problems() == []
    except BaseException:
        screenshot_on_failure(page, "serve_arena_deeplink")
        raise
    finally:
        page.close()


def test_weighting_lab_loads_and_trains(server, browser_ctx):
    page, watch = _open(browser_ctx, f"{server}?page=weighting_lab", "loss_figure_0")
    try:
        # live training starts by itself: the equal-weights curve source grows
        n_steps = "() => Bokeh.documents[0].get_model_by_name('curves_equal').data.step.length"
        page.wait_for_function(f"() => ({n_steps})() > 3", timeout=20_000)
        # Pause (real mouse) stops the periodic callback: the curves stop growing
        page.get_by_role("button", name="Pause").click()
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('status').text.includes('paused')", timeout=ANSWER_MS
        )
        paused_at = page.evaluate(n_steps)
        page.wait_for_timeout(1000)
        assert page.evaluate(n_steps) == paused_at
        assert watch.problems() == []
    except BaseException:
        screenshot_on_failure(page, "serve_weighting_lab")
        raise
    finally:
        page.close()
