"""The static site in the two other engines (issue 15, item 2): Firefox ESR over WebDriver BiDi and WebKitGTK (the
engine of Safari and of every iOS browser) over classic WebDriver; Chromium runs the full suite (test_static_site).

One browser session per engine visits every page once (a visit is a cold boot: 5-30 s in Firefox, 10-60 s in
WebKit): it must go live with no error and draw its figures; the shared-vs-separate visit is a deep link and its
relatedness slider, dragged with the engine's own pointer input, retrains and redraws; an arena click moves the
arrows to what CPython computes for that point; the training pages train. Every engine must boot from the memory
snapshot made in node: WebKit too, whose wasm functions are two JS objects each until worker/identity.js makes them
one (the visit's marks say the shim did it). Each visit records its snapshot outcome and when it went live
(test-artifacts/engines.jsonl, and printed). An engine whose runtime cannot use the snapshot must find that out before
the download (worker/restore.js snapshotMisfit): the Chromium test at the end checks that against the request log.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from app.pages import PAGES
from browser import ARTIFACTS, PageWatch, chromium, screenshot_on_failure
from engines import ENGINES, recorded_site

pytestmark = [pytest.mark.static, pytest.mark.engines]
BOOT_S = 300  # a cold boot in WebKit on 2 loaded cores (from scratch, should the snapshot fail)
ACT_S = 180  # one interaction answered by Python in the worker (a first one in WebKit: 10-20 s, more under load)
DOC = "window.mtlPlayground.doc"
STATE = "return document.documentElement.dataset.mtlState"
SETTLED = "const s = document.documentElement.dataset.mtlState; return ['live', 'error'].includes(s) && s"
N_FIGURES = f"return [...{DOC}.all_models].filter((m) => m.constructor.__name__ === 'Figure').length"
STEPS = f"return ({DOC}.get_model_by_name(args[0]) || {{data: {{step: []}}}}).data.step.length"
MODEL = f"const m = {DOC}.get_model_by_name(args[0]); return m ? m[args[1]] : null"
# the viewport point of a model's element (scrolled into view first: pointer input goes to what is on screen)
SLIDER_POINTS = f"""const v = Bokeh.index.find_one({DOC}.get_model_by_name(args[0]));
  v.el.scrollIntoView({{block: "center"}});
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const root = v.shadow_el || v.el.shadowRoot || v.el;
  const h = root.querySelector(".noUi-handle").getBoundingClientRect();
  const b = root.querySelector(".noUi-base").getBoundingClientRect();
  return [h.x + h.width / 2, h.y + h.height / 2, b.x + args[1] * b.width];"""
PLOT_POINT = f"""const v = Bokeh.index.find_one({DOC}.get_model_by_name(args[0]));
  v.el.scrollIntoView({{block: "center"}});
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const r = v.canvas_view.el.getBoundingClientRect();
  return [r.left + v.frame.x_scale.compute(args[1]), r.top + v.frame.y_scale.compute(args[2])];"""
ARROWS = f"""const d = {DOC}.get_model_by_name('arrow_source').data;
  return {{gx: [...d.gx], gy: [...d.gy], x0: [...d.x0], y0: [...d.y0]}};"""
DEEP_LINK = "?relatedness=0.3&seed=5"


@pytest.fixture(scope="module", params=sorted(ENGINES))
def engine(request, site):
    """(session, base URL, request log) of one engine: one browser for all its pages."""
    with recorded_site(site) as (base, requests), ENGINES[request.param]() as session:
        yield session, base, requests


def boot(session, address: str, requests: list[str]) -> dict:
    """Open ``address``, wait until the page settles; what the visit did (outcome, times, snapshot request)."""
    before = len(requests)
    session.goto(address)
    state = session.wait(SETTLED, BOOT_S, what="the page going live (or showing its error)")
    if state == "error":
        raise AssertionError(
            f"{session.name}: the page showed its error box: "
            + session.js("return document.getElementById('mtl-error').innerText")[:2000]
        )
    marks = session.js("return window.mtlPlayground.marks || {}")
    outcome = next((o for o in ("restored", "skipped", "failed") if f"snapshot-{o}" in marks), "none")
    return {
        "engine": session.name,
        "address": address.split("/", 3)[-1],
        "snapshot": outcome,
        "snapshot_requested": any("python-heap" in r for r in requests[before:]),
        "live_ms": round(session.js("return window.mtlPlayground.liveAt")),
        "marks": marks,
    }


def record(visit: dict) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "engines.jsonl", "a") as f:
        f.write(json.dumps(visit) + "\n")
    print(json.dumps({k: v for k, v in visit.items() if k != "marks"}))


def check_shared_separate(session) -> None:
    assert session.js(MODEL, "relatedness", "value") == 0.3 and session.js(MODEL, "seed", "value") == 5
    session.wait(f"{STEPS} >= 15", ACT_S, "acc_source", what="15 steps of live training")
    retrain_after_slider(session)


def retrain_after_slider(session) -> None:
    curve = f"return [...{DOC}.get_model_by_name('acc_source').data.shared_test_b].slice(0, 15)"
    before = session.js(curve)
    x, y, to = session.js(SLIDER_POINTS, "relatedness", 0.05)
    session.drag(x, y, to, y)
    session.wait(f"return {DOC}.get_model_by_name('relatedness').value < 0.2", ACT_S, what="the slider moved")
    # Python restarted the run and redrew with the new data, and wrote the setting back into the URL
    session.wait(
        f"const d = {DOC}.get_model_by_name('acc_source').data;"
        "return d.step.length >= 15 && [...d.shared_test_b].slice(0, 15).some((v, i) => v !== args[0][i]);",
        ACT_S,
        before,
        what="the curve retrained after the slider move",
    )
    session.wait("return !location.search.includes('relatedness=0.3')", ACT_S, what="the new setting in the URL")


def check_arena(session) -> None:
    from mtl_core.arena import CAGradToy

    before = session.js(ARROWS)
    target = (-1.0, 7.0)
    session.click(*session.js(PLOT_POINT, "arena_plot", *target))
    session.wait(
        f"const a = (() => {{ {ARROWS} }})(); return a.x0[0] !== args[0].x0[0]",
        ACT_S,
        before,
        what="the arrows moved to the click",
    )
    after = session.js(ARROWS)
    clicked = np.array([after["x0"][0], after["y0"][0]])
    assert np.allclose(clicked, target, atol=0.3), clicked
    G = CAGradToy().grads(clicked)  # CPython here; the page's came from Pyodide in the worker
    assert np.allclose([after["gx"][0], after["gy"][0]], G[0], rtol=1e-6, atol=1e-9)
    assert np.allclose([after["gx"][2], after["gy"][2]], G.sum(axis=0), rtol=1e-6)


CHECKS = {
    "shared_separate": check_shared_separate,
    "arena": check_arena,
    "weighting_lab": lambda s: s.wait(f"{STEPS} > 3", ACT_S, "curves_equal", what="the lab training"),
    "training_loop": lambda s: s.wait(f"{STEPS} > 3", ACT_S, "log_source", what="the loop training"),
}


@pytest.mark.parametrize("slug", [p.slug for p in PAGES])
def test_every_page_works_in_every_engine(engine, slug):
    session, base, requests = engine
    address = f"{base}/{slug}.html" + (DEEP_LINK if slug == "shared_separate" else "")
    try:
        visit = boot(session, address, requests)
        record(visit)
        # every engine restores the snapshot node made; WebKit through the identity shim, the others without it
        assert visit["snapshot"] == "restored", visit
        shimmed = {m for m in visit["marks"] if m.startswith("wasm-identity-")}
        assert shimmed == ({"wasm-identity-shim"} if session.name == "webkit" else set()), visit["marks"]
        assert "panel-imported" not in visit["marks"]  # Python's imports came with the snapshot, not run again
        assert sum("python-heap" in r for r in requests) == 1  # a second page reads it from Cache Storage
        assert session.js(N_FIGURES) > 0
        assert session.js("return document.getElementById('mtl-loading').offsetParent") is None
        assert session.js("return window.mtlErrors") == []
        CHECKS.get(slug, lambda s: None)(session)
        session.js("await new Promise((r) => setTimeout(r, 1500))")  # errors of the first ticks show up too
        assert session.js("return window.mtlErrors") == []
    except (Exception, KeyboardInterrupt):
        record({"engine": session.name, "address": address, "failed": True})
        raise


def test_an_engine_the_snapshot_does_not_fit_is_told_before_the_download(site, url):
    """Chromium, given a snapshot whose runtime was made where wasm functions are two objects each (JavaScriptCore
    without worker/identity.js: the page's config says so) — or, equally, an engine where they are two and the shim
    cannot make them one: the worker must not request the snapshot at all, and boots from scratch."""
    config = (site / "arena.html").read_text()
    assert '"exportIdentity": true' in config  # what node, where the snapshot is made, does

    def other_engine(route):
        resp = route.fetch()
        route.fulfill(response=resp, body=resp.text().replace('"exportIdentity": true', '"exportIdentity": false'))

    with chromium() as ctx:
        page = ctx.new_page()
        watch = PageWatch()
        watch.attach(page)
        requested = []
        page.on("request", lambda r: requested.append(r.url))
        try:
            page.route("**/arena.html", other_engine)
            page.goto(f"{url}/arena.html")
            page.wait_for_function(f"() => {{ {SETTLED} }}", timeout=BOOT_S * 1000)
            assert page.evaluate(f"() => {{ {STATE} }}") == "live"
            marks = page.evaluate("() => window.mtlPlayground.marks")
            assert "snapshot-skipped" in marks and not {"snapshot-restored", "snapshot-failed"} & set(marks), marks
            assert marks["snapshot-skipped"] < marks["panel-imported"] < marks["page-created"]
            assert not [u for u in requested if "python-heap" in u], requested
            # nor the document the snapshot holds, which the page draws ahead only for a worker that restores
            assert not [u for u in requested if re.search(r"/snapshot/[0-9a-f]+/arena\.json", u)], requested
            assert page.evaluate("() => window.mtlPlayground.drawnAheadAt") is None
            assert any(re.search(r"imported\.pack", u) for u in requested)  # the scratch boot's modules came
            assert any("does not fit this engine" in line for line in watch.console), watch.console
            assert watch.problems() == []
        except BaseException:
            screenshot_on_failure(page, "engines-misfit")
            raise
