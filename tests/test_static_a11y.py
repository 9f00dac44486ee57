"""Screen readers and axe-core on the static site (Pyodide in a web worker; issue 14, item 5): the text alternative of
the plots is there and follows the training that the worker drives, Bokeh's widgets got their names and the focus
outline in the browser, and axe-core finds no critical or serious violation that tests/test_serve_browser_a11y.py's
``ALLOWED`` does not explain, on the arena and on Shared vs Separate. (Keyboard walks: tests/test_serve_browser_a11y.py;
the page is the same document here.)"""

from __future__ import annotations

import pytest

import test_static_site
from test_serve_browser_a11y import run_axe, unexplained
from test_static_site import ACT_MS, DOC, assert_clean, opened

pytestmark = pytest.mark.static
ctx = test_static_site.ctx  # its Chromium fixture

DESCRIPTION = f"() => {DOC}.get_model_by_name('description').text"
LIVE_REGION = f"""() => {{ const v = Bokeh.index.find_one({DOC}.get_model_by_name('description'));
  return v ? [v.el.getAttribute('aria-live'), v.el.getAttribute('role')] : null; }}"""
FIGURE_LABELS = f"""() => [...{DOC}.all_models].filter(m => m.constructor.__name__ === 'Figure').map(m => {{
  const v = Bokeh.index.find_one(m);
  return [m.name, v ? v.el.getAttribute('role') : null, v ? v.el.getAttribute('aria-label') : null];
}})"""
# common.A11Y_JS ran in the page: the focus stylesheet exists and the slider handles have names
LABELLED = """() => window.__mtlFocusSheet !== undefined"""
# the aria-label of every slider handle in the page (inside Bokeh's shadow roots)
HANDLE_NAMES = """() => { const out = [];
  const visit = (root) => { for (const el of root.querySelectorAll('*')) {
    if (!el.shadowRoot) continue;
    for (const h of el.shadowRoot.querySelectorAll('.noUi-handle[role=slider]')) out.push(h.getAttribute('aria-label'));
    visit(el.shadowRoot); } };
  visit(document); return out; }"""


def test_the_text_alternative_is_there_and_follows_the_training_in_the_worker(url, ctx):
    with opened(ctx, f"{url}/shared_separate.html?seed=4", "a11y-text") as (page, watch):
        assert page.evaluate(LIVE_REGION) == ["polite", "status"]
        # the text and the figures' labels at one moment (an update may come in between two evaluations)
        first, figures = page.evaluate(f"() => [({DESCRIPTION})(), ({FIGURE_LABELS})()]")
        assert first.startswith("Step ") and "Test accuracy" in first, first
        assert len(figures) == 9, figures
        assert all(role == "img" and label and len(label) > 20 for _, role, label in figures), figures
        # the worker trains the page (it plays once live): the text and the figures' labels follow
        page.wait_for_function(f"(first) => ({DESCRIPTION})() !== first", arg=first, timeout=ACT_MS)
        page.wait_for_function(f"() => !({DESCRIPTION})().startsWith('Step 0 /')", timeout=ACT_MS)
        page.wait_for_function(
            f"(old) => JSON.stringify(({FIGURE_LABELS})()) !== JSON.stringify(old)", arg=figures, timeout=ACT_MS
        )
        page.wait_for_function(LABELLED, timeout=ACT_MS)
        names = page.evaluate(HANDLE_NAMES)
        assert names and all(names), names  # every slider handle has a name
        assert "Task relatedness" in names
        assert_clean(watch)


@pytest.mark.parametrize("slug", ["arena", "shared_separate"])
def test_axe_finds_no_unexplained_critical_or_serious_violation_on_the_static_site(url, ctx, slug):
    with opened(ctx, f"{url}/{slug}.html", f"a11y-axe-{slug}") as (page, watch):
        page.wait_for_function(LABELLED, timeout=ACT_MS)
        page.wait_for_timeout(1500)  # the first updates from the worker have come in
        bad = unexplained(run_axe(page))
        assert bad == [], bad
        assert_clean(watch)
