"""Keyboard, screen readers and visible focus under `panel serve app` (issue 14, item 5), in Chromium.

* A training page walked with the keyboard alone: Tab from the top reaches every settings widget and the
  Train / Pause / Step / Reset buttons in the page's order, each with a visible focus outline; an arrow key on a
  focused slider changes its value and the page retrains; Enter on Pause pauses, Space on Step steps.
* Every page has its text alternative (the ``description`` live region, the figures' ``role="img"`` +
  ``aria-label``), not empty, and it follows the page: after training, after a typed point in the arena.
* axe-core (npm, installed by scripts/setup.sh test into .cache/axe) on every page: no critical or serious
  violation except those in ``ALLOWED`` (each says why it cannot be fixed here).
"""

from __future__ import annotations

import contextlib
import os
import pathlib

import pytest

from app.pages import PAGES
from app.shared_separate_state import SETTINGS as SHARED_SETTINGS
from browser import PageWatch, chromium, panel_served, screenshot_on_failure

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parent.parent
AXE = pathlib.Path(os.environ.get("MTL_AXE", ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"))
SLUGS = [p.slug for p in PAGES]
READY = "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].roots().length > 0"
DOC = "Bokeh.documents[0]"
# the page has been made accessible in the browser (common.A11Y_JS ran: slider handles have names)
LABELLED = "() => window.__mtlFocusSheet !== undefined"

# critical / serious axe rules that may stay, each with why it cannot be fixed in this project. Keys are axe rule ids;
# a value is (why, a substring that every offending node's selector must contain), so a new case of the same rule
# elsewhere still fails.
ALLOWED: dict[str, tuple[str, str]] = {
    # (none at present: slider handles, spinner buttons, the file input, contrast, lang are all fixed)
}

# The focused element deep inside shadow roots, the name of the innermost named Bokeh model whose view holds it,
# and its focus outline.
FOCUSED = """() => {
  let a = document.activeElement; const hosts = [];
  while (a && a.shadowRoot) { hosts.push(a); if (!a.shadowRoot.activeElement) break; a = a.shadowRoot.activeElement; }
  let name = null, depth = -1;
  for (const m of Bokeh.documents[0].all_models) {
    if (!m.name) continue;
    const v = Bokeh.index.find_one(m);
    const i = v ? hosts.indexOf(v.el) : -1;
    if (i > depth) { depth = i; name = m.name; }
  }
  const cs = getComputedStyle(a);
  return {name, tag: a.tagName, label: a.getAttribute("aria-label") || (a.innerText || "").trim().slice(0, 40),
          outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth) || 0};
}"""
STATUS = f"() => {DOC}.get_model_by_name('status').text"
DESCRIPTION = f"() => {DOC}.get_model_by_name('description').text"
# the figures of the page: their element's role and aria-label (what a screen reader says for the plot)
FIGURE_LABELS = f"""() => [...{DOC}.all_models].filter(m => m.constructor.__name__ === 'Figure').map(m => {{
  const v = Bokeh.index.find_one(m);
  return [m.name, v ? v.el.getAttribute('role') : null, v ? v.el.getAttribute('aria-label') : null];
}})"""


@pytest.fixture(scope="module")
def server():
    with panel_served("app", "serve_a11y", "app") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with chromium() as ctx:
        yield ctx


@contextlib.contextmanager
def opened(browser, url: str, name: str, *, playground: bool = True):
    """Open ``url`` in a new tab once Bokeh shows it (and, on a playground page, ``A11Y_JS`` has run)."""
    page = browser.new_page()
    watch = PageWatch()
    watch.attach(page)
    try:
        page.goto(url)
        page.wait_for_function(READY, timeout=60_000)
        if playground:
            page.wait_for_function(LABELLED, timeout=30_000)
        yield page, watch
    except BaseException:
        screenshot_on_failure(page, f"serve-a11y-{name}")
        raise
    finally:
        page.close()


def tab_walk(page, max_stops: int = 120) -> list[dict]:
    """Press Tab from the top of the page until focus comes back to the first stop; every stop, in order."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    stops = []
    for _ in range(max_stops):
        page.keyboard.press("Tab")
        now = page.evaluate(FOCUSED)
        if stops and now["tag"] != "BODY" and (now["name"], now["label"]) == (stops[0]["name"], stops[0]["label"]):
            break
        stops.append(now)
    return stops


def tab_to(page, name: str, max_stops: int = 150) -> dict:
    """Press Tab until the focus is in the widget named ``name``."""
    for _ in range(max_stops):
        page.keyboard.press("Tab")
        now = page.evaluate(FOCUSED)
        if now["name"] == name:
            return now
    raise AssertionError(f"Tab never reached {name}")


def test_a_training_page_walked_with_the_keyboard_alone(server, browser):
    with opened(browser, f"{server}?page=shared_separate&seed=3", "keyboard") as (page, watch):
        stops = [s for s in tab_walk(page) if s["tag"] != "BODY"]
        names = [s["name"] for s in stops]
        # every control in the page's order: the transport buttons, the settings column, then the Data choice
        expected = ["train_button", "pause_button", "step_button", "reset_button"]
        expected += [s.name for s in SHARED_SETTINGS if s.name != "data"] + ["data"]
        for name in expected:
            assert name in names, f"Tab never reaches {name}: {names}"
        firsts = [names.index(n) for n in expected]
        assert firsts == sorted(firsts), f"Tab order {[names[i] for i in sorted(firsts)]} is not {expected}"
        # every stop shows where the focus is: an outline of 2 px or more
        faint = [s for s in stops if s["outline"] in ("none", "") or s["width"] < 2]
        assert not faint, f"stops without a visible focus outline: {faint}"
        # no plot is a Tab stop of its own (no keyboard tool; its text alternative is its aria-label)
        assert not any((s["name"] or "").endswith("_figure") or "boundary" in (s["name"] or "") for s in stops), stops

        # an arrow key on the focused relatedness slider moves it, and the page starts a new run
        tab_to(page, "relatedness")
        m = f"{DOC}.get_model_by_name('relatedness')"
        before, low = page.evaluate(f"() => [{m}.value, {m}.start]")
        page.evaluate(f"() => {{ window.__mtlSteps = {DOC}.get_model_by_name('acc_source').data.step.length; }}")
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('acc_source').data.step.length > window.__mtlSteps + 3", timeout=60_000
        )
        page.evaluate(
            f"() => {{ const s = {DOC}.get_model_by_name('acc_source'); window.__mtlReset = false;"
            " s.connect(s.properties.data.change, () => { window.__mtlReset = s.data.step.length <= 2; }); }"
        )
        page.keyboard.press("ArrowLeft" if before > low else "ArrowRight")
        page.wait_for_function(f"() => {m}.value !== {before}", timeout=20_000)
        page.wait_for_function("() => window.__mtlReset === true", timeout=60_000)  # a new run began
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('acc_source').data.step.length > 3", timeout=60_000
        )  # and trains
        page.wait_for_function("() => location.search.includes('relatedness=')", timeout=20_000)

        # Enter on the focused Pause button pauses; Space on Step does one step
        tab_to(page, "pause_button")
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => ({STATUS})().includes('paused')", timeout=30_000)
        steps = int(page.evaluate(STATUS).split("Step ")[1].split(" ")[0])
        tab_to(page, "step_button")
        page.keyboard.press("Space")
        page.wait_for_function(f"() => ({STATUS})().includes('Step {steps + 1} /')", timeout=30_000)
        assert watch.problems() == [], watch.problems()


@pytest.mark.parametrize("slug", SLUGS)
def test_every_page_has_a_text_alternative_that_follows_it(server, browser, slug):
    with opened(browser, f"{server}?page={slug}", f"text-{slug}") as (page, watch):
        attrs = page.evaluate(
            f"() => {{ const v = Bokeh.index.find_one({DOC}.get_model_by_name('description'));"
            " return [v.el.getAttribute('aria-live'), v.el.getAttribute('role')]; }"
        )
        assert attrs == ["polite", "status"], attrs
        # the text and the figures' labels at one moment (an update may come in between two evaluations)
        first, figures = page.evaluate(f"() => [({DESCRIPTION})(), ({FIGURE_LABELS})()]")
        assert len(first) > 40 and "no description" not in first, first
        assert figures, "no figure found"
        for name, role, label in figures:
            assert role == "img" and label and len(label) > 20, (name, role, label)
        if slug == "arena":  # the point typed into its number inputs (no pointer): the text says where it is now
            for label, text in (("θ x", "2.5"), ("θ y", "-4")):
                page.get_by_label(label).focus()
                page.keyboard.press("Control+A")
                page.keyboard.type(text)
                page.keyboard.press("Enter")
            page.wait_for_function(f"() => ({DESCRIPTION})().includes('(2.50, -4.00)')", timeout=20_000)
        else:  # a training page trains by itself: the text follows the steps
            page.wait_for_function(f"(first) => ({DESCRIPTION})() !== first", arg=first, timeout=60_000)
        now = page.evaluate(DESCRIPTION)
        assert now != first and len(now) > 40
        page.wait_for_function(
            f"(old) => JSON.stringify(({FIGURE_LABELS})()) !== JSON.stringify(old)", arg=figures, timeout=20_000
        )  # some figure's aria-label follows too
        assert watch.problems() == [], watch.problems()


def run_axe(page) -> list[dict]:
    """axe-core's violations on the page (every rule axe runs by default: WCAG 2.x A/AA and best practices)."""
    assert AXE.exists(), f"{AXE} is missing: run `bash scripts/setup.sh test` (npm install axe-core)"
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({"
        " id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => ({target: JSON.stringify(n.target), summary: n.failureSummary})) }))"
    )


def unexplained(violations: list[dict]) -> list[dict]:
    """The critical and serious violations that ``ALLOWED`` does not explain."""
    bad = []
    for v in violations:
        if v["impact"] not in ("critical", "serious"):
            continue
        why = ALLOWED.get(v["id"])
        nodes = [n for n in v["nodes"] if why is None or why[1] not in n["target"]]
        if nodes:
            bad.append({**v, "nodes": nodes[:5]})
    return bad


@pytest.mark.parametrize("slug", ["", *SLUGS])
def test_axe_finds_no_unexplained_critical_or_serious_violation(server, browser, slug):
    url = f"{server}?page={slug}" if slug else server  # "": the landing page (links only; A11Y_JS too)
    with opened(browser, url, f"axe-{slug or 'index'}") as (page, watch):
        if slug:
            page.wait_for_function(f"() => ({DESCRIPTION})().length > 0", timeout=30_000)
        page.wait_for_timeout(1500)  # the first updates of a training page have come in
        bad = unexplained(run_axe(page))
        assert bad == [], bad
        assert watch.problems() == [], watch.problems()


def test_the_landing_page_gets_the_focus_outline_every_page_has(server, browser):
    # opened() waits for A11Y_JS's stylesheet: the landing page runs it too now
    with opened(browser, server, "landing-focus") as (page, watch):
        assert page.evaluate("document.documentElement.lang") == "en"
        stops = []
        for _ in range(12):
            page.keyboard.press("Tab")
            stops.append(page.evaluate(FOCUSED_LINK))
            if stops[-1]["href"] and "page=" in stops[-1]["href"]:
                break
        nav = [s for s in stops if s["tag"] == "A"]
        assert nav and "page=" in nav[-1]["href"], stops  # Tab reaches the page links of the header
        for stop in nav:
            # A11Y_JS's outline (3px, #1a5fb4), not the browser's thin default ring: the nav had none of its own
            assert (stop["outline"], stop["width"], stop["color"]) == ("solid", 3.0, "rgb(26, 95, 180)"), stop
        assert watch.problems() == [], watch.problems()


# the focused element deep inside shadow roots: its tag, link and focus outline
FOCUSED_LINK = """() => {
  let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  const cs = getComputedStyle(a);
  return {tag: a.tagName, href: a.getAttribute("href"), outline: cs.outlineStyle,
          width: parseFloat(cs.outlineWidth) || 0, color: cs.outlineColor};
}"""
