"""Layout pieces every page shares: header and nav (hidden with ?embed=1), notices, URL binding.

Pages call :func:`page_layout` with their body and :func:`bind_url` with their state and settings table.
"""
from __future__ import annotations

import sys
import time
import traceback
from typing import Iterable

import panel as pn
import param

from app.pages import PAGES
from app.settings import Setting, apply_values, current_values, escape, parse_query, to_query

IN_BROWSER = sys.platform == "emscripten"  # running inside Pyodide (static site)

CSS = """
.mtl-header {display:flex; flex-wrap:wrap; gap:0.4em 1em; align-items:baseline; border-bottom:1px solid #ddd;
             padding-bottom:0.3em; margin-bottom:0.3em; font-family:system-ui, sans-serif}
.mtl-header a {color:#2a5db0; text-decoration:none} .mtl-header a.current {font-weight:bold; color:#222}
.mtl-brand {font-weight:700; font-size:1.1em; margin-right:0.6em}
.mtl-notice {background:#fff4d6; border:1px solid #e8c66a; border-radius:4px; padding:0.3em 0.6em; margin:0.2em 0}
.mtl-error {background:#fde2e1; border:1px solid #d9534f; border-radius:4px; padding:0.3em 0.6em; margin:0.2em 0}
"""


def query_string() -> str:
    """The page's raw query string ('' outside a browser session)."""
    loc = pn.state.location
    return (loc.search or "") if loc is not None else ""


def is_embed(query: str | dict | None = None) -> bool:
    """True when ?embed=1 asks for the bare page (no header, no nav) for iframes."""
    q = query if query is not None else query_string()
    if isinstance(q, dict):
        raw = q.get("embed", "")
        raw = raw[-1] if isinstance(raw, (list, tuple)) and raw else raw
    else:
        from urllib.parse import parse_qs
        raw = parse_qs(str(q).lstrip("?")).get("embed", [""])[-1]
    return str(raw).strip().lower() in ("1", "true", "yes")


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
    return pn.pane.HTML(f'<nav class="mtl-header">{"".join(links)}</nav>', sizing_mode="stretch_width",
                        stylesheets=[CSS])


def notices_pane() -> pn.pane.HTML:
    """An HTML pane for notices; fill it with :func:`render_notices` (escapes everything)."""
    return pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[CSS], name="notices")


def render_notices(notices: Iterable[str], *, error: bool = False) -> str:
    cls = "mtl-error" if error else "mtl-notice"
    return "".join(f'<div class="{cls}">{escape(n)}</div>' for n in notices)


def bind_url(state, settings: tuple[Setting, ...], query: str | dict | None = None) -> list[str]:
    """Restore ``state`` from the URL query, then keep the URL in step with it.

    Returns the plain-text notices about values that were clamped or ignored (show them with render_notices).
    """
    q = query if query is not None else query_string()
    values, notices = parse_query(settings, q)
    apply_values(state, values)
    loc = pn.state.location
    if loc is None:
        return notices
    keep = {}
    from urllib.parse import parse_qs
    raw = parse_qs(str(loc.search or "").lstrip("?"))
    for key in ("page", "embed"):
        if key in raw and raw[key][-1] in ("1",) + tuple(p.slug for p in PAGES):
            keep[key] = raw[key][-1]

    def push(*_events):
        qs = to_query(settings, current_values(state, settings), extra=keep)
        loc.search = f"?{qs}" if qs else ""

    state.param.watch(push, [s.name for s in settings])
    return notices


def page_layout(slug: str | None, *body, query=None) -> pn.Column:
    """The page frame: header + body, stretching to the container (800-px iframes, phones)."""
    parts = [] if is_embed(query) else [header(slug)]
    return pn.Column(*parts, *body, sizing_mode="stretch_width", max_width=1400, margin=(5, 10))


def bokeh_name(obj, name: str):
    """Give the Bokeh model behind a Panel widget/pane a stable ``name`` (returns ``obj``).

    Panel uses a widget's ``name`` as its label and never forwards it to Bokeh, but the static-site tests find
    models with ``Bokeh.documents[0].get_model_by_name(name)``; so we stamp the name on every model Panel
    creates for ``obj``. Bokeh objects (figures, sources) just get ``.name`` set.
    """
    if not hasattr(obj, "_get_model"):
        obj.name = name
        return obj
    make = obj._get_model

    def _get_model(doc, root=None, parent=None, comm=None):
        model = make(doc, root, parent, comm)
        model.name = name
        return model

    obj._get_model = _get_model
    return obj


# How the pages configure each weighting method beyond its defaults (one place, so every page agrees).
# Uncertainty starts its log-variances at log L_k of the first batch: with a 10,000x loss-scale mismatch the
# default start (s = 0) sweeps the weights over four orders of magnitude in the first steps, and that transient
# stalls the down-weighted task under Adam (see mtl_core/weighting/uncertainty.py).
WEIGHTING_KWARGS = {"uncertainty": {"init_from_loss": True}}


def transport_buttons(state, *, on_reset=None, pause_width: int = 80) -> dict:
    """Train / Pause / Step / Reset buttons wired to ``state.play/pause/step_once/reset``, named ``<x>_button``."""
    buttons = {
        "train": pn.widgets.Button(label="\u25b6 Train", color="primary", width=90),
        "pause": pn.widgets.Button(label="Pause", width=pause_width),
        "step": pn.widgets.Button(label="Step", width=70),
        "reset": pn.widgets.Button(label="\u21ba Reset", width=80),
    }
    actions = {"train": state.play, "pause": state.pause, "step": state.step_once,
               "reset": on_reset or state.reset}
    for name, button in buttons.items():
        bokeh_name(button, f"{name}_button")
        button.on_click(lambda _event, act=actions[name]: act())
    return buttons


def named_html(name: str, **params) -> pn.pane.HTML:
    """An empty HTML pane whose Bokeh model carries ``name`` (tests and the static site find it by name)."""
    params.setdefault("sizing_mode", "stretch_width")
    return bokeh_name(pn.pane.HTML("", **params), name)


def explanation(markdown: str, *, name: str = "explanation") -> pn.pane.Markdown:
    """A short explanation pane (plain Markdown + unicode formulas: no MathJax, the site works offline)."""
    return pn.pane.Markdown(markdown, sizing_mode="stretch_width", name=name,
                            styles={"font-size": "0.95em", "max-width": "60em"})


class TrainingClock(param.Parameterized):
    """Play / Pause / Step / tick for a page state that trains in steps (the three training pages share them).

    A subclass sets ``max_steps`` and ``steps_per_tick`` and defines ``_train(n)`` (run up to ``n`` steps and
    redraw) and, if training can stop early (divergence), ``can_train()``.
    """

    running = param.Boolean(False, doc="True while the periodic callback should keep training.")
    steps = param.Integer(0, bounds=(0, None), doc="Training steps done since the last reset.")

    max_steps = 1000
    steps_per_tick = 5   # to start with; Animator adapts it to keep ticks short

    def can_train(self) -> bool:
        return True

    def _train(self, n: int) -> None:
        raise NotImplementedError

    def play(self) -> None:
        if self.steps < self.max_steps and self.can_train():
            self.running = True

    def pause(self) -> None:
        self.running = False

    def step_once(self) -> None:
        """Exactly one training step (the Step button); pauses live training."""
        self.running = False
        self._train(1)

    def tick(self, n: int | None = None) -> None:
        """A few steps, as one periodic callback does; stops at ``max_steps`` or when training cannot go on."""
        self._train(self.steps_per_tick if n is None else n)
        if self.steps >= self.max_steps or not self.can_train():
            self.running = False


class Animator:
    """Run ``state.tick()`` from a Panel periodic callback while ``state.running`` is True.

    Live training without threads (Pyodide has none): every ``period`` ms one tick does a few steps. The
    callback is stopped when the state pauses (Pause, max steps, divergence) and when the browser session
    ends, so no orphan callback keeps computing for a closed tab.

    The state needs a ``running`` Boolean parameter and a ``tick()`` method that sets ``running = False``
    itself when it is done. With ``steps=k`` the animator calls ``tick(n)`` instead, starting at n = k, and
    adapts n (1..max_steps) so one tick stays near ``budget_ms`` whatever the settings and the machine (a phone
    running Pyodide is many times slower than a laptop). Without ``steps`` ``tick()`` gets no argument.
    """

    def __init__(self, state, *, period: int = 100, steps: int | None = None, max_steps: int = 12,
                 budget_ms: float = 40.0):
        self.state = state
        self.period = period
        self.steps, self.max_steps, self.budget = steps, max_steps, budget_ms / 1000.0
        self.callback = None
        self._seen_client = False
        state.param.watch(self._on_running, "running")
        doc = self._doc = pn.state.curdoc
        if doc is not None and getattr(doc, "session_context", None) is not None:
            # only inside a real session: outside one Panel would queue the hook globally (a leak in tests)
            doc.on_session_destroyed(self._on_destroyed)

    def start(self) -> None:
        """Start ticking if the state is running (call once the page is built)."""
        self._on_running()

    def _on_running(self, *_events) -> None:
        if self.state.running and self.callback is None:
            try:
                self.callback = pn.state.add_periodic_callback(self._tick, period=self.period)
            except Exception:  # noqa: BLE001 - no event loop (plain Python): stepping stays manual
                self.callback = None
        elif not self.state.running and self.callback is not None:
            self.stop()

    def _tick(self) -> None:
        if self._client_gone():
            self._on_destroyed(None)
            return
        if not self.state.running:
            self.stop()
            return
        start = time.perf_counter()
        try:
            if self.steps is None:
                self.state.tick()
                return
            self.state.tick(self.steps)
        except Exception as exc:  # noqa: BLE001 - a bug must stop the loop visibly, not re-raise every tick
            self._fail(exc)
            return
        took = time.perf_counter() - start
        if took > self.budget:
            self.steps = max(1, self.steps // 2)
        elif took < self.budget / 3:
            self.steps = min(self.max_steps, self.steps + 1)

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


def flex_item(obj, *, basis: str = "400px", min_width: int = 250, grow: int = 1, **params) -> pn.Column:
    """Wrap ``obj`` as a flex item that is ``basis`` wide, grows to fill the row and wraps below ``min_width``.

    Panel gives stretch-width panes ``width: 100%`` inside a FlexBox, so they never share a row; a wrapping
    Column with a CSS ``flex`` shorthand does.
    """
    return pn.Column(obj, sizing_mode="stretch_width", min_width=min_width,
                     styles={"flex": f"{grow} 1 {basis}"}, margin=0, **params)


def flex_row(*items, gap: str = "8px", **params) -> pn.FlexBox:
    """A wrapping row: on a wide screen items sit side by side, on a phone they stack."""
    return pn.FlexBox(*items, sizing_mode="stretch_width", flex_wrap="wrap", gap=gap, **params)


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
