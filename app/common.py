"""What every page shares: the URL, the page frame, the training clock and the live loop.

* URL: :func:`page_query` reads the query of the page's Panel location (the one parser of query strings is
  :func:`app.settings.query_pairs`); :func:`bind_url` restores a state from it and keeps the URL in step.
* Page: :func:`create_page` builds a page from its state class, view class and settings table;
  :class:`PageView` is the base of every view (URL notices, the frame with header and nav, hidden with ?embed=1),
  :class:`TrainingView` that of the training pages (settings widgets, transport buttons, status, Animator).
* Training: :class:`TrainingClock` (Play / Pause / Step / tick, the status line, the learning-rate and
  reset-setting handlers of the training pages) and :class:`Animator` (the periodic callback that runs it).
* Accessibility: every page's plots have a text alternative, ``describe()`` of its state (or view), shown in a
  visually hidden live region and as each figure's ``aria-label`` (:meth:`PageView.refresh_description`);
  ``A11Y_JS`` gives Bokeh's own widgets names and every control a visible focus outline in the browser.
* Your own data: :func:`keep_own_data` keeps the data a page trains on in the browser tab (``sessionStorage``), so
  that a reload of the tab trains on it again.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
import traceback
import weakref
from typing import Iterable

import panel as pn
import param
from bokeh.models import CustomJS, Div
from bokeh.plotting import figure

from app.custom_data import MAX_BYTES, too_large
from app.pages import PAGES
from app.share import share_bar
from app.settings import (
    CUSTOM,
    GLOBAL_KEYS,
    Setting,
    apply_values,
    bokeh_name,
    current_values,
    escape,
    parse_query,
    query_pairs,
    to_query,
)

IN_BROWSER = sys.platform == "emscripten"  # running inside Pyodide (static site)

CSS = """
.mtl-header {display:flex; flex-wrap:wrap; gap:0.4em 1em; align-items:baseline; border-bottom:1px solid #ddd;
             padding-bottom:0.3em; margin-bottom:0.3em; font-family:system-ui, sans-serif}
.mtl-header a {color:#2a5db0; text-decoration:none} .mtl-header a.current {font-weight:bold; color:#222}
.mtl-brand {font-weight:700; font-size:1.1em; margin-right:0.6em}
.mtl-notice {background:#fff4d6; border:1px solid #e8c66a; border-radius:4px; padding:0.3em 0.6em; margin:0.2em 0}
.mtl-error {background:#fde2e1; border:1px solid #d9534f; border-radius:4px; padding:0.3em 0.6em; margin:0.2em 0}
h1.mtl-title {font-size:1.5em; margin:0.4em 0 0.3em 0}
"""
# inline code in the explanations: Panel's markdown colours it #82aaff, 2.3:1 on white (WCAG asks 4.5:1)
EXPLANATION_CSS = """
code {color:#1f3f73; background:#f1f3f6; padding:0 0.2em; border-radius:3px}
h2 {font-size:1.17em}
"""


# ---------------------------------------------------------------------------------------------------------------
# URL and page
# ---------------------------------------------------------------------------------------------------------------


def page_query(query: str | dict | None = None) -> dict:
    """The URL query as {key: last value}: ``query`` if given, else the query of the page's Panel location.

    The raw text of the location's ``search``, not ``pn.state.location.query_params``: that one turns values into
    numbers (a notice would then echo ``inf`` where the reader typed ``1e999``) and drops empty values without a
    notice.
    """
    if query is None:
        loc = pn.state.location
        query = (loc.search or "") if loc is not None else ""
    return query_pairs(query)


def is_embed(query: str | dict | None = None) -> bool:
    """True when ?embed=1 asks for the bare page (no header, no nav) for iframes."""
    return str(page_query(query).get("embed", "")).strip().lower() in ("1", "true", "yes")


def bind_url(state, settings: tuple[Setting, ...], query: str | dict | None = None) -> list[str]:
    """Restore ``state`` from the URL query (or ``query``), then keep the URL in step with it.

    Returns the plain-text notices about values that were clamped or ignored (show them with render_notices).
    """
    values, notices = parse_query(settings, page_query(query))
    apply_values(state, values)
    loc = pn.state.location
    if loc is None:
        return notices
    here = page_query()
    keep = {key: here[key] for key in GLOBAL_KEYS if here.get(key) in tuple(p.slug for p in PAGES)}
    if is_embed(here):  # every spelling is_embed accepts (embed=true, =yes) stays an embed, written as embed=1
        keep["embed"] = "1"

    def push(*_events):
        qs = to_query(settings, current_values(state, settings), extra=keep)
        loc.search = f"?{qs}" if qs else ""

    state.param.watch(push, [s.name for s in settings])
    state._mtl_url_keep = keep  # PageView.show_as_embed adds embed=1 to what the URL keeps
    return notices


def create_page(
    state_class: type,
    view_class: type,
    settings: tuple[Setting, ...],
    query: str | dict | None = None,
    *,
    autoplay: bool | None = None,
):
    """Build a page: its state restored from the URL query (or ``query``), its view, and the live loop.

    ``autoplay`` (the training pages) sets ``state.running``; None leaves it alone (the arena runs on demand).
    ``view_class`` takes ``(state, notices=, query=)`` and has an ``animator``.
    """
    state = state_class()
    notices = bind_url(state, settings, query)
    view = view_class(state, notices=notices, query=query)
    if autoplay is not None:
        state.running = autoplay
    view.animator.start()
    return view


# ---------------------------------------------------------------------------------------------------------------
# page frame and panes
# ---------------------------------------------------------------------------------------------------------------


def page_href(slug: str) -> str:
    """Relative link to a page: <slug>.html in the static site, ?page=<slug> under `panel serve app`."""
    return f"{slug}.html" if IN_BROWSER else f"?page={slug}"


def home_href() -> str:
    return "index.html" if IN_BROWSER else "?"


def header(current: str | None) -> pn.pane.HTML:
    links = [f'<a class="mtl-brand" href="{home_href()}">MTL Playground</a>']
    for p in PAGES:
        cls = ' class="current"' if p.slug == current else ""
        links.append(f'<a{cls} href="{page_href(p.slug)}">{escape(p.title)}</a>')
    return pn.pane.HTML(
        f'<nav class="mtl-header">{"".join(links)}</nav>', sizing_mode="stretch_width", stylesheets=[CSS]
    )


def notices_pane(notices: Iterable[str] = ()) -> pn.pane.HTML:
    """The ``notices`` pane, showing plain-text notices (escaped by :func:`render_notices`)."""
    pane = pn.pane.HTML(render_notices(notices), sizing_mode="stretch_width", stylesheets=[CSS], name="notices")
    return bokeh_name(pane, "notices")


def render_notices(notices: Iterable[str], *, error: bool = False) -> str:
    cls = "mtl-error" if error else "mtl-notice"
    return "".join(f'<div class="{cls}">{escape(n)}</div>' for n in notices)


def page_layout(slug: str | None, *body, query=None) -> pn.Column:
    """The page frame: header + body, stretching to the container (800-px iframes, phones)."""
    parts = [] if is_embed(query) else [header(slug)]
    page = pn.Column(*parts, *body, sizing_mode="stretch_width", max_width=1400, margin=(5, 10))
    # the page is the document's main landmark (the site's nav inside it): screen readers jump to it
    return with_html_attributes(page, {"role": "main"})


# Panel's Location view records every change of a page's settings with history.pushState: the Back button then walked
# through each click and slider move while the page stayed as it was (Panel does not follow the address back), and in
# a blog post through the widget's changes instead of leaving the post. The address is replaced instead: the page's
# settings are in it for a link, and Back leaves the page. Under panel serve at document_ready (PageView.frame); the
# static site's loader does the same (sitebuild/web/loader/page.js).
ONE_HISTORY_ENTRY_JS = "history.pushState = function (state, title, url) { history.replaceState(state, title, url); };"

REDUCED_MOTION_NOTICE = "Your system asks for reduced motion, so this page waits: press ▶ Train to start it."
# under panel serve: the browser tells the page its motion preference once the document is shown
MOTION_JS = """
const reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
for (const doc of reduce ? Bokeh.documents : []) {
  const box = doc.get_model_by_name("motion_preference");
  if (box) box.value = "reduce";
}
"""


def motion_preference(view) -> pn.widgets.TextInput:
    """The hidden widget the browser writes "reduce" into (``MOTION_JS``, at document ready, under a Bokeh server);
    the page then calls ``view.respect_reduced_motion()``. The static site asks the browser itself (play.py)."""
    box = bokeh_name(pn.widgets.TextInput(value="", visible=False, width=0, margin=0), "motion_preference")
    box.param.watch(lambda event: view.respect_reduced_motion() if event.new == "reduce" else None, "value")
    doc = pn.state.curdoc
    if doc is not None and getattr(doc, "session_context", None) is not None:
        from bokeh.models import CustomJS

        doc.js_on_event("document_ready", CustomJS(code=MOTION_JS))
    return box


# ---------------------------------------------------------------------------------------------------------------
# accessibility: text alternatives for the plots, names for Bokeh's widgets, visible focus
# ---------------------------------------------------------------------------------------------------------------

DESCRIBE_EVERY = 2.0  # s between two descriptions while training: a screen reader would otherwise never stop talking
# visually hidden but read by screen readers (the usual "sr-only" recipe), on the live region's own element
SR_ONLY = {
    "position": "absolute",
    "width": "1px",
    "height": "1px",
    "padding": "0",
    "margin": "-1px",
    "overflow": "hidden",
    "clip": "rect(0 0 0 0)",
    "clip-path": "inset(50%)",
    "white-space": "nowrap",
    "border": "0",
}
FOCUS_CSS = (
    ":focus-visible, .noUi-handle:focus, .bk-input:focus-visible "
    "{outline: 3px solid #1a5fb4 !important; outline-offset: 2px !important}"
)
# Runs in the browser once the document is shown and whenever the description changes (after a re-render a widget
# has new elements). Bokeh's widgets live in shadow roots our page CSS cannot reach: one shared constructed
# stylesheet is adopted by every shadow root (the focus outline), slider handles and the spinners' arrow buttons get
# names from their widget's title (axe: aria-input-field-name, button-name), the figures' event layers leave the Tab
# order (no keyboard tool is used; the figure itself carries the text alternative) and the document gets a language.
A11Y_JS = """
const css = %s;
let sheet = window.__mtlFocusSheet;
if (!sheet) { sheet = window.__mtlFocusSheet = new CSSStyleSheet(); sheet.replaceSync(css); }
const adopt = (root) => {
  if (!root.adoptedStyleSheets.includes(sheet)) root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
};
if (!document.documentElement.lang) document.documentElement.lang = "en";
adopt(document);
const titleOf = (root) => {
  const t = root.querySelector(".bk-slider-title, label");
  if (!t) return "";
  const first = [...t.childNodes].find((n) => n.nodeType === 3 && n.textContent.trim());
  return (first ? first.textContent : t.textContent).trim().replace(/:$/, "");
};
const label = (root) => {
  for (const h of root.querySelectorAll(".noUi-handle[role=slider]:not([aria-label])")) {
    const t = titleOf(root); if (t) h.setAttribute("aria-label", t);
  }
  // the verb alone: the input beside them carries the title (and a name "Increase θ x" would also answer to "θ x")
  for (const [cls, verb] of [[".bk-spin-btn-up", "Increase"], [".bk-spin-btn-down", "Decrease"]]) {
    for (const b of root.querySelectorAll(cls + ":not([aria-label])")) {
      b.setAttribute("aria-label", verb);
    }
  }
  for (const e of root.querySelectorAll(".bk-events[tabindex='0']")) e.setAttribute("tabindex", "-1");
};
const visit = (root) => {
  for (const el of root.querySelectorAll("*")) {
    const sr = el.shadowRoot;
    if (!sr) continue;
    adopt(sr); label(sr); visit(sr);
  }
};
visit(document);
if (window.Bokeh && Bokeh.index.find_one && !document.querySelector("main, [role=main]")) {
  for (const doc of Bokeh.documents) {
    const root = doc.roots().find((r) => r.name === "mtl_page");
    const view = root ? Bokeh.index.find_one(root) : null;
    if (view && view.el) { view.el.setAttribute("role", "main"); break; }
  }
}
""" % repr(FOCUS_CSS)


def live_region() -> Div:
    """The page's text alternative: a visually hidden polite live region (a Bokeh ``Div`` named ``description``:
    its own element carries ``aria-live``, so it stays in place while its text changes and screen readers announce
    the new text). A change of its text re-runs ``A11Y_JS``."""
    div = Div(
        text="",
        name="description",
        html_attributes={"role": "status", "aria-live": "polite", "aria-label": "What the plots show"},
        styles=SR_ONLY,
        sizing_mode="stretch_width",
        margin=0,
    )
    div.js_on_change("text", CustomJS(code=A11Y_JS))
    a11y_when_shown()
    return div


def shown_document():
    """The current document if a browser will show it: under a Bokeh server or in the Pyodide worker (the static
    site embeds the same document); None in plain Python, where the current document is a global one that would
    collect a callback per page built."""
    doc = pn.state.curdoc
    if doc is not None and (IN_BROWSER or getattr(doc, "session_context", None) is not None):
        return doc
    return None


def a11y_when_shown() -> None:
    """Run ``A11Y_JS`` in the browser once the current document is shown (every page does, through its
    :func:`live_region`; the landing page, which has none, calls this itself): the focus outline, names for Bokeh's
    widgets, the document's language."""
    doc = shown_document()
    if doc is not None:
        doc.js_on_event("document_ready", CustomJS(code=A11Y_JS))


# ---------------------------------------------------------------------------------------------------------------
# drawing only what the reader can see (issue 15: a Pause must be answered within 300 ms on a 4x-slowed CPU)
# ---------------------------------------------------------------------------------------------------------------

# Runs in the browser once the document is shown; edits BokehJS's classes once per page (every document of it).
# Measured on Shared vs Separate training at 4x CPU slowdown under panel serve, the page thread was busy ~70 % of
# the time, half of it repainting figures, so a click often waited for a 300-600 ms task. Three causes:
# * every figure repaints on every update, also those scrolled out of view: a figure off screen (with a margin)
#   now only notes that it owes a paint and pays it when it scrolls in (an IntersectionObserver); an export draws
#   into a canvas of its own and brings the ranges up to date first, so a PNG is never stale;
# * every read of a visual property asks the CSS cascade for a `--bk-*` override (getComputedStyle: ~20 % of the
#   page thread; bokeh/bokeh#15286); nothing in the page defines one, so the answer is always "" (the static
#   site's BokehJS has the same edit built in: sitebuild/assets.py JS_PATCHES);
# * a new text in the visually hidden live region (a Bokeh Div) re-measured the whole page's layout (~150 ms at
#   4x); its box is 1 px, absolutely placed, so its new text is drawn without a layout pass.
# And a plot asks the cascade for its font size for every tick label it measures: asked once a second instead.
# A legend rebuilt its entries (a canvas each, new DOM) on every change of any model its items reach, data sources
# included: a new run replaces each curve's data, and every legend rebuilt itself once per source (the Lab: 64
# canvases, ~130 ms of the 300 ms a slider's answer took to apply at 4x). It now rebuilds only when its entries
# (items, labels) differ, and otherwise only brings their shown / inactive marks up to date.
# An axis measured its tick labels on every paint (~50 ms of each paint of the arena's maps at 4x, whose fixed
# ranges never move): it measures them again only when its range moved. And an auto-ranged axis whose labels changed
# width (a new run's first point: another range, "0.2" becomes "10^-1") made its plot lay itself out again on the
# next paint (~130 ms at 4x for one plot): an axis keeps the largest size it needed, a vertical auto-ranged one at
# least 40 px (five characters), so only a label wider than any before lays the plot out again.
LEAN_PAINT_JS = """
if (window.Bokeh && !window.__mtlLeanPaint) {
  const protoWith = (obj, name) => {
    for (let p = obj; p != null; p = Object.getPrototypeOf(p)) if (Object.hasOwn(p, name)) return p;
    return null;
  };
  let div = null, legend = null, axis = null;
  const plots = [];
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    const view = Bokeh.index.find_one(m);
    if (!axis && view && typeof view._tick_label_extents === "function" && view.get_size) axis = view;
    if (view && typeof view._actual_paint === "function") plots.push(view);
    if (!legend && view && typeof view._render_items === "function" && m.type === "Legend") legend = view;
    if (!div && view && m.type === "Div" && m.name === "description") div = view;
  }
  const plot = plots[0];
  if (plot) {
    window.__mtlLeanPaint = true;
    const PlotView = protoWith(plot, "_actual_paint");
    const seen = new WeakMap();  // a plot's element -> [its view, on screen?]
    const io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const got = seen.get(e.target);
        if (!got) continue;
        got[1] = e.isIntersecting;
        if (got[1] && got[0].__mtlOwed) { got[0].__mtlOwed = false; got[0].request_paint(); }
      }
    });
    const paint = PlotView.paint;
    PlotView.paint = function () {
      let got = seen.get(this.el);
      if (!got) { got = [this, true]; seen.set(this.el, got); io.observe(this.el); }
      if (got[1] || this.__mtlForce || this.is_paused || this.model.hold_render) return paint.call(this);
      this.__mtlOwed = true;  // off screen: what BokehJS does for a plot that is not displayed, and a debt
      for (const r of this.computed_renderer_views) r.force_finished();
      if (this._needs_notify) { this._needs_notify = false; this.notify_finished(); }
    };
    const exp = PlotView.export;
    PlotView.export = function (...args) {
      if (this.__mtlOwed) { this._range_manager.update_dataranges(); this._invalidate_layout_if_needed(); }
      return exp.apply(this, args);
    };
    // the plot's font size, asked of the CSS cascade for every tick label on every paint: kept for a second
    const Font = protoWith(plot, "base_font_size");
    const font = Font && Object.getOwnPropertyDescriptor(Font, "base_font_size").get;
    if (font) Object.defineProperty(Font, "base_font_size", {configurable: true, get() {
      const now = performance.now();
      if (!(now - this.__mtlFontAt < 1000)) { this.__mtlFont = font.call(this); this.__mtlFontAt = now; }
      return this.__mtlFont;
    }});
    const visual = plot.visuals && Object.values(plot.visuals).find((v) => v && v._get_css_value);
    const Visual = visual ? protoWith(visual, "_get_css_value") : null;
    if (Visual) Visual._get_css_value = () => "";
    // a figure's text alternative (its aria-label, in html_attributes) follows what it shows, and BokehJS repainted
    // the whole figure for it (a PlotView repaints on any change of its model): each click in the arena repainted
    // its four maps in full. A change of html_attributes alone now skips that one repaint (the attribute is set).
    const repaint = PlotView.request_repaint;
    PlotView.request_repaint = function () {
      if (this.__mtlLabelOnly) { this.__mtlLabelOnly = false; return; }
      return repaint.call(this);
    };
    for (const view of plots) {
      // the property's own signal comes just before the model's change signal, in the same setv
      view.connect(view.model.properties.html_attributes.change, () => {
        view.__mtlLabelOnly = true;
        queueMicrotask(() => { view.__mtlLabelOnly = false; });
      });
    }
  }
  if (axis && !window.__mtlLeanAxis) {
    window.__mtlLeanAxis = true;
    const Axis = protoWith(axis, "get_size"), getSize = Axis.get_size;
    Axis.get_size = function () {
      // a range that did not move has the same ticks and labels (nothing here changes an axis's formatter or font)
      const [range] = this.ranges, side = this.panel != null ? this.panel.side : "";
      const factors = range != null && Array.isArray(range.factors) ? range.factors.join("|") : "";
      const {visible, axis_label} = this.model;
      const key = range == null ? null : `${range.start} ${range.end} ${factors} ${visible} ${axis_label}`;
      if (key == null || key !== this.__mtlKey) { this.__mtlKey = key; this.__mtlMeasured = getSize.call(this); }
      const size = this.__mtlMeasured;  // {width: 0, height: the extent across the axis}, 0 when not drawn
      if (!(size.height > 0)) return size;
      const floor = range != null && range.type === "DataRange1d" && (side === "left" || side === "right") ? 40 : 0;
      const kept = Math.max(this.__mtlKept || 0, floor);
      if (size.height < kept) return {width: size.width, height: kept};
      this.__mtlKept = size.height;
      return size;
    };
  }
  if (legend && !window.__mtlLeanLegend) {
    window.__mtlLeanLegend = true;
    const Legend = protoWith(legend, "_render_items"), renderItems = Legend._render_items;
    Legend._render_items = function () {
      const built = this.entries != null && this.entries.length > 0 && this.grid_el != null &&
        this.grid_el.childElementCount === this.entries.length;
      if (!built || this._should_rerender_items) return renderItems.call(this);
      for (const entry of this.entries) {
        entry.el.classList.toggle("bk-hidden", !entry.item.visible);
        this._toggle_inactive(entry);
      }
    };
  }
  if (div && !window.__mtlLeanDiv) {
    window.__mtlLeanDiv = true;
    const Div = protoWith(div, "rerender"), rerender = Div.rerender;
    Div.rerender = function () {
      if (this.model.name !== "description") return rerender.call(this);
      this.render(); this.r_after_render();  // the element's new text, no layout of the page
    };
  }
}
"""


def lean_paint_when_shown() -> None:
    """Install ``LEAN_PAINT_JS`` in the browser once the current document is shown (every page's view does)."""
    doc = shown_document()
    if doc is not None:
        doc.js_on_event("document_ready", CustomJS(code=LEAN_PAINT_JS))


def with_html_attributes(obj, attributes: dict[str, str]):
    """Set HTML attributes (``role``, ``aria-*``) on the element of every Bokeh model Panel creates for ``obj``
    (Panel has no parameter for them; Bokeh's ``html_attributes`` puts them on the model's own element)."""
    make = obj._get_model

    def _get_model(doc, root=None, parent=None, comm=None):
        model = make(doc, root, parent, comm)
        model.html_attributes = {**model.html_attributes, **attributes}
        return model

    obj._get_model = _get_model
    return obj


def figure_label(fig, texts: dict[str, str]) -> str:
    """The ``aria-label`` of ``fig``: its title, then the sentence of ``texts`` whose key is the longest prefix of
    the figure's name (``"acc"`` for ``acc_figure_a``), else every sentence."""
    name = fig.name or ""
    keys = sorted((k for k in texts if k and name.startswith(k)), key=len, reverse=True)
    text = texts[keys[0]] if keys else " ".join(t for t in texts.values() if t)
    title = getattr(getattr(fig, "title", None), "text", "") or ""
    return f"{title}. {text}".strip(". ") if title else text


class PageView(pn.viewable.Viewer):
    """What every page's view has: its state, the pane of URL notices and the page frame.

    A subclass sets ``slug`` and ``heading``, builds its widgets in ``__init__`` (ending with ``self.animator``)
    and returns ``self.frame(body)`` from ``__panel__``.
    """

    state = param.ClassSelector(class_=param.Parameterized)
    slug = ""  # the page's PAGES slug: the nav marks it as the current page
    heading = ""  # the title above the page's body

    def __init__(self, state, notices: Iterable[str] = (), query: str | dict | None = None, **params):
        super().__init__(state=state, **params)
        self.query = query
        self._notices = list(notices)
        self.notices = notices_pane(self._notices)
        self.description = live_region()
        lean_paint_when_shown()
        self._figures: list = []  # the figures whose aria-label follows the description (frame() finds them)
        self._described_at = -1e9  # time.monotonic() of the last description

    # ------------------------------------------------------------------ text alternative of the plots
    def describe(self) -> dict[str, str]:
        """What the plots show now, in plain sentences: ``{key: sentence}`` in reading order. A figure's
        ``aria-label`` is its title and the sentence whose key starts its name (:func:`figure_label`); the live
        region reads them all. By default the state's ``describe()``."""
        describe = getattr(self.state, "describe", None)
        return describe() if describe is not None else {}

    def describe_on(self, obj: param.Parameterized, names: list[str], *, paced: tuple[str, ...] = ()) -> None:
        """Refresh the description when any of ``obj``'s parameters ``names`` changes: at once, except for a
        change of only ``paced`` ones while ``obj`` runs (a training step), which waits until ``DESCRIBE_EVERY``
        seconds have passed since the last description (a reset, seen as fewer ``obj.steps``, does not wait)."""
        last_steps = [-1]

        def on_change(*events):
            steps = int(getattr(obj, "steps", 0) or 0)
            routine = getattr(obj, "running", False) and steps >= last_steps[0]
            if routine and all(e.name in paced for e in events):
                if time.monotonic() - self._described_at < DESCRIBE_EVERY:
                    return
            last_steps[0] = steps
            self.refresh_description()

        obj.param.watch(on_change, names)

    def refresh_description(self) -> None:
        """Write the current description into the live region and the figures' ``aria-label``s."""
        try:
            texts = self.describe()
        except Exception as exc:  # noqa: BLE001 - a text alternative must never stop a page that works
            texts = {"summary": f"(no description: {type(exc).__name__})"}
        self._described_at = time.monotonic()
        # a sentence shared by two figures is read once
        self.description.text = escape(" ".join(dict.fromkeys(t for t in texts.values() if t)))
        for fig in self._figures:
            fig.html_attributes = {"role": "img", "aria-label": figure_label(fig, texts)}

    def add_notice(self, text: str) -> None:
        """Show one more plain-text notice above the page (after the URL's)."""
        self._notices.append(text)
        self.notices.object = render_notices(self._notices)

    def respect_reduced_motion(self) -> None:
        """The reader's system asks for reduced motion (``prefers-reduced-motion: reduce``): a page that trains
        by itself starts paused instead, at step 0, and says so; Train still works."""
        state = self.state
        if not isinstance(state, TrainingClock):
            return
        with page_hold():
            if state.running or state.steps:
                state.stop_and_reset()
            self.add_notice(REDUCED_MOTION_NOTICE)

    def frame(self, body) -> pn.Column:
        """``body`` under the page's heading, in the page frame (no header or nav with ?embed=1)."""
        title = pn.pane.HTML(
            f'<h1 class="mtl-title">{escape(self.heading)}</h1>', sizing_mode="stretch_width", stylesheets=[CSS]
        )
        # a shared or embedded copy has no Share bar: in an iframe the link would be the bare embed
        share = (
            []
            if is_embed(self.query)
            else [share_bar(self.heading, static_site=IN_BROWSER, state=self.state, slug=self.slug)]
        )
        animator = getattr(self, "animator", None)
        receipt = [animator.receipt] if animator is not None else []  # the browser's "drawn" answers
        motion = getattr(self, "motion", None)  # a training page's reduced-motion answer (TrainingView)
        own_data = getattr(self, "own_data_box", None)  # the tab's copy of one's own data (keep_own_data)
        hidden = [*receipt, *(w for w in (motion, own_data) if w is not None)]
        self._figures = [pane.object for pane in body.select(pn.pane.Bokeh) if hasattr(pane.object, "renderers")]
        self.refresh_description()
        self._layout = page_layout(self.slug, title, self.description, *share, body, *hidden, query=self.query)
        register_page_widgets(self._layout.select(pn.widgets.Widget))  # page_hold changes them after a hold
        self._chrome = [*self._layout.objects[: 0 if is_embed(self.query) else 1], *share]  # header, Share bar
        doc = pn.state.curdoc
        if not IN_BROWSER and doc is not None and getattr(doc, "session_context", None) is not None:
            # under a Bokeh server only: the static site's loader already did it, before any of Panel's code ran
            doc.js_on_event("document_ready", CustomJS(code=ONE_HISTORY_ENTRY_JS))
        return self._layout

    def show_as_embed(self) -> None:
        """Turn the page, built for its plain URL, into its ?embed=1 form in place (no header, nav or Share bar;
        the URL keeps embed=1): the static site's snapshot holds each page built once, and a visit from an iframe
        adopts that build (sitebuild/web/python/boot.py). They are hidden, not taken out of the layout: one small
        change each (taking them out made Panel redo the whole layout: 50 ms in CPython, 0.3-0.5 s of the restored
        worker's first run, on the way to live)."""
        for part in getattr(self, "_chrome", []):
            part.visible = False
        self._chrome = []
        keep = getattr(self.state, "_mtl_url_keep", None)
        if keep is not None:
            keep["embed"] = "1"


class TrainingView(PageView):
    """PageView of a page that trains live (its state a :class:`TrainingClock`).

    It makes one widget per entry of ``settings`` (``self.widgets``, in table order), the transport buttons
    (``self.buttons``), the ``status`` line and ``error`` box, and an :class:`Animator` that adapts the steps per
    tick, starting from ``state.steps_per_tick``. A subclass sets ``settings`` (and ``throttled`` when every
    setting change retrains, so that sliders send their value only when let go) and adds its own panes in
    ``_add_panes()``.
    """

    settings: tuple[Setting, ...] = ()
    throttled = False
    pause_width = 80

    def __init__(self, state, notices: Iterable[str] = (), query: str | dict | None = None, **params):
        super().__init__(state, notices, query, **params)
        self.widgets = {
            s.name: s.widget(state, throttled=self.throttled, sizing_mode="stretch_width") for s in self.settings
        }
        self.buttons = transport_buttons(state, pause_width=self.pause_width)
        self.status, self.error = status_panes(state)
        self.motion = motion_preference(self)  # once per view: the document_ready callback is registered here
        self._add_panes()
        self.animator = Animator(state, steps=state.steps_per_tick)
        # a step changes the status line: paced; Pause, Reset, the end of a run and any setting: at once
        self.describe_on(state, ["status", "running", *(s.name for s in self.settings)], paced=("status",))

    def _add_panes(self) -> None:
        """Make the page's own panes and keep them in step with the state."""

    def controls(self, *widgets) -> pn.Column:
        """The controls column: transport buttons, status line, then ``widgets`` (default: every setting's)."""
        return flex_item(
            pn.Column(
                pn.FlexBox(*self.buttons.values(), gap="4px"),
                self.status,
                *(widgets or self.widgets.values()),
                sizing_mode="stretch_width",
            ),
            basis="250px",
            min_width=220,
            max_width=340,
        )

    def training_body(self, main: list, *below, explanation_text: str) -> pn.Column:
        """The page under its heading: notices, the error box, the controls beside ``main`` (a list of panes;
        below them on a phone), then ``below`` and the explanation, all in the page frame."""
        beside = flex_item(pn.Column(*main, sizing_mode="stretch_width"), basis="420px", min_width=280, grow=3)
        body = pn.Column(
            self.notices,
            self.error,
            flex_row(self.controls(), beside, gap="16px"),
            *below,
            explanation(explanation_text),
            sizing_mode="stretch_width",
        )
        return self.frame(body)


def named_html(name: str, **params) -> pn.pane.HTML:
    """An empty HTML pane whose Bokeh model carries ``name`` (tests and the static site find it by name)."""
    params.setdefault("sizing_mode", "stretch_width")
    return bokeh_name(pn.pane.HTML("", **params), name)


def csv_upload(label: str, on_upload, on_refused) -> pn.widgets.FileInput:
    """The "Your own data" file input of a page (its Bokeh model named ``data_upload``).

    Parameters
    ----------
    label : str
        The input's visible label, e.g. "CSV file: x1,x2,label_a,label_b" (axe asks for a label; it says what
        the page reads).
    on_upload : callable
        ``on_upload(raw)`` gets the file's bytes (a state's ``load_csv``), with the document held so that the new
        run reaches the browser as one update. The input is cleared afterwards, so that the same file, fixed or
        not, can be chosen again.
    on_refused : callable
        ``on_refused(message)`` when the browser refused a file over ``custom_data.MAX_BYTES`` without sending it
        (the message names the file and its size; e.g. setting a state's ``data_error``).
    """
    upload = bokeh_name(
        pn.widgets.FileInput(
            accept=".csv,text/csv,text/plain", multiple=False, sizing_mode="stretch_width", label=label
        ),
        "data_upload",
    )

    def uploaded(event) -> None:
        if not event.new:
            return  # the input was cleared
        with page_hold():
            on_upload(event.new)
        try:
            upload.clear()
        except Exception:  # noqa: BLE001 - not shown yet (no document): nothing to clear in a browser
            pass

    def refused(event) -> None:
        name, nbytes = refused_upload(event.new)
        if nbytes is None:
            return
        with page_hold():
            on_refused(too_large(nbytes, name))
            upload.mime_type = ""

    upload.param.watch(uploaded, ["value"])
    upload.param.watch(refused, ["mime_type"])
    doc = shown_document()
    if doc is not None:
        doc.js_on_event("document_ready", CustomJS(code=UPLOAD_GUARD_JS))
    return upload


# A file over MAX_BYTES never leaves the browser: under panel serve its base64 would exceed the websocket's message
# limit (20 MB) and close the session, and in any case it is read, encoded and sent only to be refused. BokehJS's
# FileInputView (one class for every document of the page) checks the sizes first; a refusal travels to Python as
# the input's mime_type "x-mtl-refused;<bytes>;<time>;<file name>" (refused_upload), and Python says why as for any
# bad file.
UPLOAD_GUARD_JS = (
    """
const model = Bokeh.documents.map((d) => d.get_model_by_name("data_upload")).find((m) => m);
const View = model && model.default_view;
if (View && !View.prototype.__mtlSizeGuard) {
  const load = View.prototype.load_files;
  View.prototype.load_files = async function (files) {
    const big = [...files].find((f) => f.size > %d);
    if (!big || this.model.name !== "data_upload") return load.call(this, files);
    this.input_el.value = "";
    this.model.mime_type = `x-mtl-refused;${big.size};${Date.now()};${big.name}`;
  };
  View.prototype.__mtlSizeGuard = true;
}
"""
    % MAX_BYTES
)


def refused_upload(mime_type: str) -> tuple[str, int | None]:
    """(file name, size in bytes) of a file the browser refused (UPLOAD_GUARD_JS), or ("", None) for a real
    MIME type."""
    parts = (mime_type or "").split(";", 3)
    if len(parts) != 4 or parts[0] != "x-mtl-refused" or not parts[1].isdigit():
        return "", None
    return parts[3][:200], int(parts[1])


# The browser's side of keep_own_data, run whenever Python writes a message into the hidden box's placeholder:
# "ask" -> the box's value becomes "kept:<the text this tab keeps>" or "none" (a moment later: a change made while
# the page applies Python's changes would not travel back on the static site, as with Animator.RECEIPT_JS);
# "keep:<text>" -> kept in this tab's sessionStorage ("drop" removes it). Storage that is blocked (a sandboxed
# iframe, privacy settings) or full (the quota) keeps nothing, and an older copy is removed rather than left behind.
OWN_DATA_JS = """
const key = %s;
const msg = source.placeholder;
let store = null;
try { store = window.sessionStorage; } catch (e) { store = null; }
if (msg === "ask") {
  let kept = null;
  try { kept = store ? store.getItem(key) : null; } catch (e) { kept = null; }
  const answer = kept ? "kept:" + kept : "none";
  setTimeout(() => { source.value = answer; }, 0);
} else if (msg.startsWith("keep:")) {
  try { store.setItem(key, msg.slice(5)); } catch (e) {
    try { if (store) store.removeItem(key); } catch (e2) { /* nothing kept */ }
  }
} else if (msg === "drop") {
  try { if (store) store.removeItem(key); } catch (e) { /* nothing kept */ }
}
"""
OWN_DATA_TIMEOUT_MS = 5000  # a browser that has not answered "ask" by then gets the fallback notice


def call_later(ms: int, action) -> None:
    """Run ``action()`` once, ``ms`` milliseconds from now, in the current document (under a Bokeh server: its
    timeout callback; in the Pyodide worker: the event loop's; without either, never). Not Panel's periodic callback
    with ``count=1``: in Pyodide that calls at once, then waits."""
    doc = pn.state.curdoc

    def run() -> None:
        from panel.io.state import set_curdoc

        with set_curdoc(doc):
            action()

    if doc is not None and getattr(doc, "session_context", None) is not None:
        doc.add_timeout_callback(action, ms)
        return
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop() if sys.platform == "emscripten" else None  # Pyodide's WebLoop
    if loop is not None:
        loop.call_later(ms / 1000.0, run)


def own_data_key(slug: str) -> str:
    """The ``sessionStorage`` key of a page's own data (one per page: each page reads its own layout)."""
    return f"mtl-playground:own-data:{slug}"


def keep_own_data(view, labels: dict, x_columns: tuple | None = None) -> pn.widgets.TextInput:
    """Keep the data of one's own that ``view``'s page trains on in the browser tab, and train on it again after a
    reload of the tab; show the data=custom fallback (``custom_data.show_fallback``) otherwise.

    The state (``view.state``) has the ``custom`` parameter (a CustomData or None), the ``data`` setting,
    ``data_error``, ``fallback_notice`` and ``reset_to_generated()``, as the four pages with one's own data do.
    Whenever ``custom`` or ``data`` changes, the browser keeps ``custom_data.to_json(state.custom)`` in the tab's
    ``sessionStorage`` under ``own_data_key(view.slug)`` while ``data`` is ``custom``, and removes it otherwise
    (data longer than ``MAX_STORED_CHARS`` is not kept). A page opened with ``data=custom`` but no data (the state
    has fallen back to its generated data) asks the browser once the document is shown, under ``panel serve`` and in
    the static site's worker alike (Python's ``document_ready``: the browser is listening then): data the tab kept
    that ``custom_data.from_json(text, labels=labels, x_columns=x_columns)`` accepts is trained on again and
    ``data=custom`` stays in the URL; nothing kept, data refused (stale, tampered with) or no answer within
    ``OWN_DATA_TIMEOUT_MS`` shows the fallback notice and drops ``data=custom`` -- only then, so a restored page
    does not flash the notice. In plain Python (no browser) the notice is shown at once.

    Returns the hidden widget (``view.own_data_box``, placed by ``PageView.frame``; its Bokeh model is named
    ``own_data_store``): Python writes its ``placeholder`` (``OWN_DATA_JS``), the browser its ``value``.
    """
    from app import custom_data
    from app.custom_data import from_json, show_fallback, to_json, train_on

    state = view.state
    box = bokeh_name(pn.widgets.TextInput(value="", placeholder="", visible=False, width=0, margin=0), "own_data_store")
    box.jscallback(placeholder=OWN_DATA_JS % json.dumps(own_data_key(view.slug)))
    view.own_data_box = box
    doc = shown_document()
    waiting = [doc is not None and bool(state.fallback_notice)]  # data=custom without data: the browser may have it
    settle = show_fallback(view, pn.state.location, wait=waiting[0])
    kept = [None]  # the text the tab keeps, as far as Python knows (None: not known)
    restoring = [False]

    def send(text: str) -> None:
        if text != kept[0]:
            kept[0] = text
            box.placeholder = f"keep:{text}" if text else "drop"

    def store(*_events) -> None:
        if restoring[0]:
            return
        text = to_json(state.custom) if state.data == CUSTOM and state.custom is not None else ""
        send(text if len(text) <= custom_data.MAX_STORED_CHARS else "")

    state.param.watch(store, ["custom", "data"])
    if not waiting[0]:
        return box

    def restore(text: str) -> bool:
        try:
            data = from_json(text, labels=labels, x_columns=x_columns)
        except ValueError:
            return False
        kept[0] = text
        restoring[0] = True
        try:
            with page_hold():
                train_on(state, data)
        except Exception:  # noqa: BLE001 - data the page cannot train on: the generated data, with the notice
            restoring[0] = False
            state.reset_to_generated()
            return False
        finally:
            restoring[0] = False
        if state.data != CUSTOM:  # refused by the page itself
            return False
        state.fallback_notice = ""
        store()  # the same text: nothing to send, unless the kept text was not in to_json's own form
        return True

    def answered(event) -> None:
        if not waiting[0]:
            return
        waiting[0] = False
        text = event.new or ""
        restored = text.startswith("kept:") and restore(text[len("kept:") :])
        if not restored and text.startswith("kept:"):
            kept[0] = None
            store()  # what was kept cannot be used: it goes
        settle(restored)

    def timed_out() -> None:
        if waiting[0]:
            waiting[0] = False
            settle(False)

    def ask(_event) -> None:
        if not waiting[0] or box.placeholder == "ask":
            return
        box.placeholder = "ask"
        call_later(OWN_DATA_TIMEOUT_MS, timed_out)

    box.param.watch(answered, ["value"])
    doc.on_event("document_ready", ask)
    return box


def explanation(markdown: str, *, name: str = "explanation") -> pn.pane.Markdown:
    """A short explanation pane (plain Markdown + unicode formulas: no MathJax, the site works offline)."""
    # the page's title is its h1: the explanation's ### sections become h2 (styled as before), no level skipped
    markdown = ("\n" + markdown).replace("\n### ", "\n## ")[1:]
    return pn.pane.Markdown(
        markdown,
        sizing_mode="stretch_width",
        name=name,
        styles={"font-size": "0.95em", "max-width": "60em"},
        stylesheets=[EXPLANATION_CSS],
    )


def status_panes(state: TrainingClock) -> tuple[pn.pane.HTML, pn.pane.HTML]:
    """The ``status`` line and the ``error`` box of a training page, kept in step with its state."""
    status = named_html("status")
    error = named_html("error", stylesheets=[CSS])

    def refresh(*_events):
        status.object = f"<b>{escape(state.status)}</b>"
        error.object = render_notices([state.error], error=True) if state.error else ""

    state.param.watch(refresh, ["status", "error"])
    refresh()
    return status, error


def transport_buttons(state: TrainingClock, *, pause_width: int = 80) -> dict:
    """Train / Pause / Step / Reset buttons wired to the state's play / pause / step_once / stop_and_reset,
    named ``<x>_button``."""
    buttons = {
        "train": pn.widgets.Button(label="\u25b6 Train", color="primary", width=90),
        "pause": pn.widgets.Button(label="Pause", width=pause_width),
        "step": pn.widgets.Button(label="Step", width=70),
        "reset": pn.widgets.Button(label="\u21ba Reset", width=80),
    }
    actions = {
        "train": (state.play, None),
        # "paused" first, in a message of its own: a page's readouts (tables, bar charts) follow in the next one
        "pause": (state.show_paused, state.paused_at_once),
        "step": (state.step_once, None),
        # the stop and the status line first, in a message of their own: the new run redraws every figure, on a
        # slow browser a long task, and the reader must see at once that the click was heard
        "reset": (state.stop_and_reset, state.stop_at_zero),
    }
    for name, button in buttons.items():
        bokeh_name(button, f"{name}_button")
        button.on_click(lambda _event, act=actions[name]: _held(act[0], first=act[1]))
    return buttons


@contextlib.contextmanager
def hold_except(*linked):
    """``pn.io.hold()``, but the models of ``linked`` (widgets bound to the state with ``from_param``, the page's
    Location) take their new values after the hold, not held.

    Their models' properties are ones the browser sets too, and a held change of one comes back to Panel when the
    hold ends as if the browser had sent it: the document runs a change's Python callbacks (Panel's
    ``Syncable._server_change``) only then, after Panel's guard against its own changes (``_changing``) is down.
    In the Pyodide worker (a document without a session: ``hold`` ends in ``Document.unhold``) each such echo was a
    whole ``_process_events`` (busy counter, ``edit_readonly``): a third to a half of an arena click's Python
    time. With their watchers batched until the hold is over, the models change with the guard up and nothing comes
    back; the worker still sends every change of the call in one message (docsync.js). Under a Bokeh server (a
    session) Panel writes a hold's changes to the page itself and runs no callbacks: nothing comes back, and
    ``linked`` stay held (changed after the hold, each would be a message of its own).
    """
    doc = pn.state.curdoc
    echoes = doc is not None and doc.session_context is None
    with contextlib.ExitStack() as batched:
        for obj in linked if echoes else ():
            if obj is not None:
                batched.enter_context(param.parameterized.batch_call_watchers(obj))
        with pn.io.hold():
            yield


# the widgets of the page each document shows (PageView.frame), held weakly: page_hold changes them after the hold
_PAGE_WIDGETS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def register_page_widgets(widgets: Iterable) -> None:
    """Note ``widgets`` as the widgets of the page the current document shows (for :func:`page_hold`)."""
    doc = pn.state.curdoc
    if doc is not None:
        _PAGE_WIDGETS.setdefault(doc, weakref.WeakSet()).update(widgets)


@contextlib.contextmanager
def page_hold():
    """:func:`hold_except` every widget of the current document's page (:func:`register_page_widgets`) and its
    Location: the hold of a page's own change (a new run from a setting or a Reset, a tick, one's own data).

    Besides the settings' widgets (``from_param``: Reset to generated data sets ``data`` back) and the URL, a held
    change can touch a widget's ``disabled`` (the settings one's own data overrides, the Reset button) or a hidden
    box's ``placeholder`` (the Animator's receipt, keep_own_data's messages): all properties the browser sets too,
    which a plain ``pn.io.hold()`` in the Pyodide worker had Panel take back, one ``_process_events`` each (a tick:
    one; Reset to generated data: seven)."""
    doc = pn.state.curdoc
    widgets = tuple(_PAGE_WIDGETS.get(doc, ())) if doc is not None else ()
    with hold_except(*widgets, pn.state.location):
        yield


def _held(action, *, first=None) -> None:
    """Run ``action`` with the document held (:func:`page_hold`): a Reset (new data, every source cleared, the
    texts) or a Step reaches the browser as one message and one redraw per figure, not a message per change.
    ``first`` (held too) goes out before ``action`` runs, as a message of its own."""
    if first is not None:
        with page_hold():
            first()
        send_now()
        doc = shown_document()
        if doc is not None and not IN_BROWSER:
            # a Bokeh server writes a callback's messages once the callback returns: ``first`` would wait for the
            # new run to be built (0.1-0.4 s on a busy machine); ``action`` runs in a callback of its own instead
            doc.add_next_tick_callback(functools.partial(_run_held, doc, action))
            return
    with page_hold():
        action()


def _run_held(doc, action) -> None:
    from panel.io.state import set_curdoc

    with set_curdoc(doc), pn.io.hold(doc):
        action()


def send_now() -> None:
    """Send the document's changes so far to the page now, not when Python hands the thread back.

    Under a Bokeh server a hold's changes leave when the callback ends (``_held`` runs the rest in a callback of
    its own); the Pyodide worker (sitebuild/web/worker/docsync.js) collects them until Python returns, and would
    send them with the next hold's in one message.
    """
    if IN_BROWSER:
        import js  # the worker's global scope

        flush = getattr(js, "mtlFlushPatches", None)
        if flush is not None:
            flush()


def after_pending_changes(action) -> None:
    """Run ``action`` once the widget changes the page sent before this event have reached Python.

    Under a Bokeh server Panel applies a widget's change a debounce (50 ms) after it arrives, while a Bokeh event
    such as a Tap runs at once: a click right after switching a mode (Remove mode) would be handled in the old
    mode. Scheduled with the same delay, ``action`` runs after every change already waiting (tornado runs timeouts
    in deadline order). The Pyodide worker's document has a session of Panel's making and goes the same way; a
    document with none (plain Python) has no debounce either, and ``action`` runs at once.
    """
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        action()
        return
    doc.add_timeout_callback(action, pn.reactive.Syncable._debounce)


def append_rows(source, rows: dict) -> None:
    """Add ``rows`` ({column: list}) to the end of ``source``: streamed, or set as its data when it has none.

    Within a hold (a Reset: the sources cleared, then the run's first point recorded), Bokeh sends the cleared
    ``data`` as it is when the hold ends, the streamed row already in it, and then the stream too: the browser
    would get the row twice (two step-0 points). Setting the data of an empty source sends it once.
    """
    if any(len(column) for column in source.data.values()):
        source.stream(rows)
    else:
        source.data = {name: list(values) for name, values in rows.items()}


# ---------------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------------

# How the pages configure each weighting method beyond its defaults (one place, so every page agrees).
# Uncertainty starts its log-variances at log L_k of the first batch: with a 10,000x loss-scale mismatch the
# default start (s = 0) sweeps the weights over four orders of magnitude in the first steps, and that transient
# stalls the down-weighted task under Adam (see mtl_core/weighting/uncertainty.py).
WEIGHTING_KWARGS = {"uncertainty": {"init_from_loss": True}}


class TrainingClock(param.Parameterized):
    """Play / Pause / Step / tick for a page state that trains in steps (the three training pages share them).

    A subclass sets ``max_steps``, ``steps_per_tick`` and ``reset_on`` and defines ``reset()`` (a new run from
    the settings), ``_train(n)`` (run up to ``n`` steps and redraw) and ``optimizers()``; it may extend
    ``_update_text()`` (what it shows besides the status line) and ``can_train()`` (default: no error).
    A change of a ``reset_on`` setting starts a new run and trains it at once; a change of ``lr`` reaches the
    optimizers without a reset.
    """

    running = param.Boolean(False, doc="True while the periodic callback should keep training.")
    steps = param.Integer(0, bounds=(0, None), doc="Training steps done since the last reset.")
    status = param.String("", doc="One line of plain text: step count and what is happening.")
    error = param.String("", doc="Why training stopped (divergence), plain text; empty when fine.")

    max_steps = 1000
    steps_per_tick = 5  # to start with; Animator adapts it to keep ticks short
    reset_on: tuple[str, ...] = ()  # the settings whose change means a new experiment

    def __init__(self, **params):
        super().__init__(**params)
        if self.reset_on:
            self.param.watch(self._reset_setting_held, list(self.reset_on))
        if "lr" in self.param:
            self.param.watch(self._on_lr, "lr")

    def reset(self) -> None:
        raise NotImplementedError

    def _train(self, n: int) -> None:
        raise NotImplementedError

    def optimizers(self) -> list:
        """The optimizers that the ``lr`` setting drives."""
        return []

    def can_train(self) -> bool:
        return not self.error  # a diverged run stays stopped until Reset

    def play(self) -> None:
        if self.steps < self.max_steps and self.can_train():
            self.running = True

    def pause(self) -> None:
        self.running = False

    def show_paused(self) -> None:
        """The Pause button's whole answer: stopped, with every word and readout of now (after
        ``paused_at_once``, which already stopped; its status line came first)."""
        if self.running:
            self.pause()  # _on_running redraws the words
        else:
            self._update_text()

    def paused_at_once(self) -> None:
        """What a Pause says at once (the Pause button sends it ahead, in a message of its own): stopped, and the
        status line; ``show_paused()`` follows with the rest of the page's words and readouts."""
        with self._only_the_status():
            self.pause()  # a page's pause() may stop more (Auxiliary: its sweep)
        self.status = self.status_line()

    @contextlib.contextmanager
    def _only_the_status(self):
        """Stopping inside says nothing but the status line: ``_on_running`` would redraw every word and readout in
        a first message that must stay light."""
        self._status_only = True
        try:
            yield
        finally:
            self._status_only = False

    def step_once(self) -> None:
        """Exactly one training step (the Step button); pauses live training."""
        self.running = False
        self._train(1)

    def stop_and_reset(self) -> None:
        """The Reset button: stop training and start a new run from the settings."""
        self.running = False
        self.reset()

    def stop_at_zero(self) -> None:
        """What a Reset says at once, before the new run is built (the Reset button sends it ahead): stopped, and
        the status line at step 0 ("Step 0 / 1000 - ready"); ``stop_and_reset()`` follows."""
        with self._only_the_status():
            self.running = False
        self.steps = 0
        self.status = self.status_line()

    def tick(self, n: int | None = None) -> None:
        """A few steps, as one periodic callback does; stops at ``max_steps`` or when training cannot go on."""
        self._train(self.steps_per_tick if n is None else n)
        if self.steps >= self.max_steps or not self.can_train():
            self.running = False

    def status_line(self) -> str:
        """'Step 120 / 1000 - training' (or diverged, finished, paused, ready)."""
        state = (
            "diverged"
            if not self.can_train()
            else "training"
            if self.running
            else "finished"
            if self.steps >= self.max_steps
            else "paused"
            if self.steps
            else "ready"
        )
        return f"Step {self.steps} / {self.max_steps} - {state}"

    def _update_text(self) -> None:
        self.status = self.status_line()

    _status_only = False

    @param.depends("running", watch=True)
    def _on_running(self) -> None:
        if self._status_only:
            return
        self._update_text()

    def _reset_setting_held(self, *events) -> None:
        # held: under a Bokeh server a change from the browser is handled without a hold, and the new run (data,
        # cleared curves, maps, texts) went out as a message per change, each a redraw on the reader's side (the
        # Pyodide worker sends what Python changed as one message anyway). page_hold: the
        # URL and the widgets it changes follow after the hold in the worker
        with page_hold():
            self._on_reset_setting(*events)

    def _on_reset_setting(self, *_events) -> None:
        self.reset()
        self.play()  # a new setting means a new experiment: train it at once

    def _on_lr(self, event) -> None:
        opts = self.optimizers()
        for opt in opts:
            opt.lr = event.new
        # kept so that an exported script (app/export.py) sets the same rate after the same step; a change that
        # finds other optimizers than the last one belongs to a new run (a reset built them), which starts afresh
        log = getattr(self, "_lr_log", None)
        if log is None or not _same_objects(log[0], opts):
            log = self._lr_log = (opts, [])
        log[1].append((self.steps, float(event.old), float(event.new)))

    def lr_changes(self) -> list[tuple[int, float, float]]:
        """(steps done, old rate, new rate) of each change of ``lr`` during the current run, in order."""
        log = getattr(self, "_lr_log", None)
        return list(log[1]) if log is not None and _same_objects(log[0], self.optimizers()) else []


def _same_objects(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


class Animator:
    """Run ``state.tick()`` from a Panel periodic callback while ``state.running`` is True.

    Live training without threads (Pyodide has none): every ``period`` ms one tick does a few steps. The
    callback is stopped when the state pauses (Pause, max steps, divergence) and when the browser session
    ends, so no orphan callback keeps computing for a closed tab.

    The state needs a ``running`` Boolean parameter and a ``tick()`` method that sets ``running = False``
    itself when it is done. With ``steps=k`` the animator calls ``tick(n)`` instead, starting at n = k, and
    adapts n (1..max_steps) so one tick stays near ``budget_ms`` whatever the settings and the machine (a phone
    running Pyodide is many times slower than a laptop). Without ``steps`` ``tick()`` gets no argument.

    The ticks also follow what the browser can draw. A tick's changes are held and go out as one document update
    (one message, one redraw of each figure), at most one per ``period`` (so ~10 a second, however many steps a
    tick runs), and the next tick waits until the browser has drawn the last update: ``receipt`` (a hidden widget
    the view puts in its page) carries the update's number to the browser, which writes it back after its next
    animation frame. A page whose browser is slow (a phone, a 4x-throttled CPU) therefore trains in fewer, larger
    redraws instead of queueing updates it cannot paint, and its main thread stays free to deliver a Pause
    click; a hidden tab (no animation frames) gets an update only every ``RECEIPT_TIMEOUT`` seconds. Ticks skipped
    while waiting do no steps, so the training itself (steps, results) is the same, only paced.

    A receipt alone would keep a slow browser busy all the time: the next update would arrive as soon as the last
    one was painted, and a click would wait for the update being drawn, then for the one already on its way. So the
    next tick also waits, after the receipt, ``IDLE_SHARE`` times as long as the browser took to answer it (from
    sending to receipt, less ``ANSWER_OVERHEAD``): at 4x throttling, where an update costs the page's thread a few
    hundred milliseconds, the page is idle at least half the time and an event finds it free, or free soon. A fast
    browser answers within the overhead and is paced by ``period`` alone, as before.

    A Train, or a new run started by a setting, is an update of its own (cleared curves, texts): once the browser
    has drawn anything, it is numbered too, and the first tick waits for it as for a tick's.
    """

    RECEIPT_TIMEOUT = 1.0  # s: send the next update anyway (a browser that never answers is not stopped)
    IDLE_SHARE = 1.0  # the browser's idle time after an update, in units of the time it spent drawing it
    # s of an answer that is not drawing: the wait for the next animation frame (up to 16 ms) and the round trip
    ANSWER_OVERHEAD = 0.05
    # the browser's side: once the update carrying number ``placeholder`` is applied and painted, write it back
    RECEIPT_JS = (
        "const seq = source.placeholder; requestAnimationFrame(() => setTimeout(() => { source.value = seq; }, 0));"
    )

    def __init__(
        self, state, *, period: int = 100, steps: int | None = None, max_steps: int = 12, budget_ms: float = 40.0
    ):
        self.state = state
        self.period = period
        self.steps, self.max_steps, self.budget = steps, max_steps, budget_ms / 1000.0
        self.callback = None
        self._seen_client = False
        self._sent, self._drawn, self._sent_at = 0, None, 0.0  # update numbers: last sent, last drawn
        self._idle_until = 0.0  # monotonic time before which the browser is left alone (IDLE_SHARE)
        self.receipt = bokeh_name(
            pn.widgets.TextInput(placeholder="0", value="", visible=False, width=0, margin=0), "redraw_receipt"
        )
        self.receipt.jscallback(placeholder=self.RECEIPT_JS)
        self.receipt.param.watch(self._on_receipt, "value")
        state.param.watch(self._on_running, "running")
        doc = self._doc = pn.state.curdoc
        if doc is not None and getattr(doc, "session_context", None) is not None:
            # only inside a real session: outside one Panel would queue the hook globally (a leak in tests)
            doc.on_session_destroyed(self._on_destroyed)

    def start(self) -> None:
        """Start ticking if the state is running (call once the page is built)."""
        self._on_running()

    def _on_running(self, *events) -> None:
        if self.state.running and self.callback is None:
            if events and self._drawn is not None:
                # a reader's Train, or a new run from a setting: its message (a new run's cleared curves, maps,
                # texts) is an update to draw too, and the first tick waits for it, or the page would get the
                # tick before it could paint the answer (at 4x: ~120 ms more before the new run shows)
                self._note_sent()
            try:
                self.callback = pn.state.add_periodic_callback(self._tick, period=self.period)
            except Exception:  # noqa: BLE001 - no event loop (plain Python): stepping stays manual
                self.callback = None
        elif not self.state.running and self.callback is not None:
            self.stop()

    def _note_sent(self) -> None:
        """Number the update now being built; the browser writes the number back once it has drawn it."""
        self._sent += 1
        self._sent_at = time.monotonic()
        self.receipt.placeholder = str(self._sent)

    def _tick(self) -> None:
        if self._client_gone():
            self._on_destroyed(None)
            return
        if not self.state.running:
            self.stop()
            return
        if self._browser_busy():
            return  # the browser is still drawing the last update: this tick would only queue another
        start = time.perf_counter()
        try:
            # the tick's changes go out as one message: one redraw per figure (page_hold: the receipt's number after
            # the hold in the worker, which took it back as if the browser had sent it)
            with page_hold():
                if self.steps is None:
                    self.state.tick()
                else:
                    self.state.tick(self.steps)
                self._note_sent()
        except Exception as exc:  # noqa: BLE001 - a bug must stop the loop visibly, not re-raise every tick
            self._fail(exc)
            return
        if self.steps is None:
            return
        took = time.perf_counter() - start
        if took > self.budget:
            self.steps = max(1, self.steps // 2)
        elif took < self.budget / 3:
            self.steps = min(self.max_steps, self.steps + 1)

    def _on_receipt(self, event) -> None:
        try:
            drawn = int(event.new)
        except (TypeError, ValueError):
            return  # not a number we sent: ignore
        if drawn == self._sent and drawn != self._drawn:
            now = time.monotonic()
            drawing = max(0.0, now - self._sent_at - self.ANSWER_OVERHEAD)
            self._idle_until = now + min(self.RECEIPT_TIMEOUT, self.IDLE_SHARE * drawing)
        self._drawn = drawn

    def _browser_busy(self) -> bool:
        """True while the last update sent has not been drawn yet (for at most ``RECEIPT_TIMEOUT``), and then
        for the idle time it earned (``IDLE_SHARE``).

        A browser answers under a Bokeh server (once connected) and in Pyodide (the page is the browser); in plain
        Python only a receipt shows that something draws at all.
        """
        if self._sent == 0:
            return False
        if self._drawn is not None and self._drawn >= self._sent:
            return time.monotonic() < self._idle_until
        if self._drawn is None and not (IN_BROWSER or self._connected()):
            return False
        return time.monotonic() - self._sent_at < self.RECEIPT_TIMEOUT

    def _connected(self) -> bool:
        ctx = getattr(self._doc, "session_context", None)
        return (getattr(getattr(ctx, "session", None), "connection_count", None) or 0) > 0

    def _fail(self, exc: Exception) -> None:
        traceback.print_exc()
        self.stop()
        self.state.running = False
        if "error" in self.state.param:  # pages show state.error (plain text) in their error box
            self.state.error = f"Training stopped by an internal error: {type(exc).__name__}: {exc}"

    def _client_gone(self) -> bool:
        """True once the browser tab that was connected has gone away.

        Bokeh destroys a session only after ``--unused-session-lifetime`` (15 s by default), and until then a
        closed tab would keep training on the server; this notices the closed websocket at the next tick.
        (The callback starts before the browser connects, so "no connection yet" is not "gone".)
        """
        ctx = getattr(self._doc, "session_context", None)
        count = getattr(getattr(ctx, "session", None), "connection_count", None)
        if count is None:  # not under a Bokeh server (Pyodide, plain Python)
            return False
        if count > 0:
            self._seen_client = True
            return False
        return self._seen_client

    def stop(self) -> None:
        cb, self.callback = self.callback, None
        if cb is not None:
            try:
                cb.stop()
            except Exception:  # noqa: BLE001 - stopping an already-dead callback is fine
                pass

    def _on_destroyed(self, session_context) -> None:  # Bokeh checks this exact signature
        self.stop()
        try:
            self.state.running = False
        except Exception:  # noqa: BLE001
            pass


# ---------------------------------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------------------------------


def flex_item(*objs, basis: str = "400px", min_width: int = 250, grow: int = 1, **params) -> pn.Column:
    """Wrap ``objs`` (one column) as a flex item that is ``basis`` wide, grows to fill the row and wraps below
    ``min_width``.

    Panel gives stretch-width panes ``width: 100%`` inside a FlexBox, so they never share a row; a wrapping
    Column with a CSS ``flex`` shorthand does.
    """
    flex = {"flex": f"{grow} 1 {basis}"}
    return pn.Column(*objs, sizing_mode="stretch_width", min_width=min_width, styles=flex, margin=0, **params)


def flex_row(*items, gap: str = "8px", **params) -> pn.FlexBox:
    """A wrapping row: on a wide screen items sit side by side, on a phone they stack."""
    return pn.FlexBox(*items, sizing_mode="stretch_width", flex_wrap="wrap", gap=gap, **params)


def plot_grid(*figs, basis: str = "45%", min_width: int = 260, **params) -> pn.FlexBox:
    """Figures side by side, each ``basis`` of the row (two a row by default), stacked on a phone."""
    items = [flex_item(pn.pane.Bokeh(f, sizing_mode="stretch_width"), basis=basis, min_width=min_width) for f in figs]
    return flex_row(*items, **params)


def step_figure(name: str, title: str, *, height: int = 220, tools: str = "pan,wheel_zoom,reset", **kw):
    """A figure over training steps (x axis "step") that fills the width, no toolbar, a small title."""
    fig = figure(
        name=name,
        title=title,
        height=height,
        min_width=260,
        sizing_mode="stretch_width",
        tools=tools,
        toolbar_location=None,
        x_axis_label="step",
        **kw,
    )
    fig.title.text_font_size = "11px"
    return fig


def square_figure(name: str, title: str, extent: float, size: int, **kw):
    """A square map of [-extent, extent]^2 with no tools (clicks are the page's own), ``size`` px a side."""
    return figure(
        name=name,
        title=title,
        width=size,
        height=size,
        x_range=(-extent, extent),
        y_range=(-extent, extent),
        tools="",
        toolbar_location=None,
        match_aspect=True,
        **kw,
    )


def legend_above(fig) -> None:
    """Move a Bokeh figure's legend above the plot, in one row, so it never hides the latest data."""
    legend = fig.legend[0]
    legend.orientation = "horizontal"
    legend.location = "top_left"
    legend.label_text_font_size = "9px"
    legend.padding = 2
    legend.margin = 0
    legend.border_line_alpha = 0
    fig.add_layout(legend, "above")
