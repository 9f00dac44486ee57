"""A page in a document set up as the static site's Pyodide worker has it, for the tests/test_app_*.py modules.

The page is built as prebuild.py / boot.py build it (held, with a stand-in session: panel.io.pyodide.init_doc), then
the document is left without a session (as write_doc leaves it) and linked to the page (Panel counts it as
connected; the worker's one thread is Panel's). A hold on it ends in ``Document.unhold``, which runs the held
changes' Python callbacks then: a held change of a property the browser sets too (a widget's value or disabled, a
hidden box's placeholder, the Location's search) came back to Panel as if the browser had sent it
(``Syncable._process_events``). :func:`processed` counts those; :func:`from_the_browser` changes a model as the
worker applies the page's patches (sitebuild/web/python/apply_patch.py).
"""

from __future__ import annotations

import contextlib
import inspect
import threading


@contextlib.contextmanager
def page_in_a_worker_document(create_page, slug: str, search: str = ""):
    """Yields (view, document, the document's changes sent to the page) of the page ``create_page`` builds (paused,
    for a page that trains) at ``/<slug>.html<search>``."""
    from bokeh.document import Document
    from panel.io.document import MockSessionContext
    from panel.io.state import set_curdoc, state
    from panel.util import edit_readonly

    doc = Document()
    with set_curdoc(doc):
        doc.hold()
        doc._session_context = lambda: MockSessionContext(document=doc)  # noqa: SLF001 - as init_doc
        state._thread_id = threading.get_ident()
        with edit_readonly(state.location):
            state.location.param.update(search=search, pathname=f"/{slug}.html")
        plays = "autoplay" in inspect.signature(create_page).parameters
        view = create_page(autoplay=False) if plays else create_page()
        view.servable(title=slug)
        doc._session_context = None  # noqa: SLF001 - as write_doc leaves it
        sent = []
        doc.on_change(sent.append)  # the worker's pysync
        doc.unhold()
        state._connected[doc] = True  # the page said DocumentReady
        try:
            yield view, doc, sent
        finally:
            for animator in (getattr(view, "animator", None), getattr(view, "sweep_animator", None)):
                if animator is not None:
                    animator.stop()
            state._connected.pop(doc, None)


def processed(monkeypatch=None) -> list:
    """The list to which every ``Syncable._process_events`` from now on adds (widget class, sorted event names).
    Without ``monkeypatch`` (a benchmark's process) the counting stays for good."""
    from panel.reactive import Syncable

    seen = []
    process = Syncable._process_events

    def counted(self, events):
        seen.append((type(self).__name__, tuple(sorted(events))))
        return process(self, events)

    if monkeypatch is None:
        Syncable._process_events = counted
    else:
        monkeypatch.setattr(Syncable, "_process_events", counted)
    return seen


def for_a_benchmark(plain_hold: bool) -> list:
    """A benchmark's set-up: with ``plain_hold`` every hold of the pages is a plain ``pn.io.hold()`` (as before
    common.hold_except), to compare in one checkout. Returns :func:`processed`'s list."""
    if plain_hold:
        import panel as pn

        from app import common

        common.hold_except = lambda *linked: pn.io.hold()
    return processed()


def model(widget, doc):
    """The Bokeh model of Panel ``widget`` in ``doc``."""
    return next(m for m, _parent in widget._models.values() if m.document is doc)


def from_the_browser(bokeh_model, **props) -> None:
    """Change ``bokeh_model`` as the page's patch does in the worker (``apply_json_patch(setter="js")``)."""
    for name, value in props.items():
        bokeh_model.set_from_json(name, value, setter="js")


def drawn(view, doc) -> None:
    """The browser has drawn the last update it got (the Animator's receipt); the next tick does not wait."""
    animator = view.animator
    receipt = model(animator.receipt, doc)
    if receipt.placeholder not in ("", "0"):
        from_the_browser(receipt, value=receipt.placeholder)
    animator._idle_until = 0.0


def check_own_data_in_the_worker(create_page, slug: str, csv_text: str, monkeypatch) -> None:
    """One's own data on a page in the worker: an upload, Reset to generated data and the tab's data restored after a
    reload make Panel process only the browser's own changes (the file input's, the box's answer): the Data choice,
    the widgets one's own data disables, the Reset button and the URL change after the hold (common.page_hold). Before,
    each was processed again at the hold's end as if the browser had sent it (5 to 7 per event). The models and the
    URL show the new values."""
    import base64

    from panel.io.state import state
    from panel.models.location import Location as LocationModel

    from app.custom_data import to_json

    seen = processed(monkeypatch)

    def in_step(view, doc) -> None:
        """The page's models show what its widgets and URL say."""
        data = view.widgets["data"]
        assert model(data, doc).active == list(data.options.values()).index(view.state.data)
        for w in (*view.widgets.values(), view.reset_data):
            assert model(w, doc).disabled == w.disabled, w
        assert doc.select_one({"type": LocationModel}).search == state.location.search

    with page_in_a_worker_document(create_page, slug) as (view, doc, _sent):
        s = view.state
        seen.clear()
        raw = base64.b64encode(csv_text.encode()).decode()
        from_the_browser(model(view.upload, doc), mime_type="text/csv", filename="mine.csv", value=raw)
        assert {w for w, _ in seen} == {"FileInput"}, seen  # the browser's own changes, no more
        assert s.data == "custom" and s.data_error == "" and "data=custom" in state.location.search
        assert not view.reset_data.disabled
        in_step(view, doc)
        seen.clear()
        view.reset_data.clicks += 1
        assert seen == [], "Reset to generated data: Panel took its own held changes back"
        assert s.data != "custom" and "data=custom" not in state.location.search
        in_step(view, doc)

    kept = type(s)()
    assert kept.load_csv(csv_text)
    text = to_json(kept.custom)
    with page_in_a_worker_document(create_page, slug, "?data=custom") as (view, doc, _sent):
        s = view.state
        assert s.data != "custom" and s.fallback_notice  # waiting for the tab's answer
        seen.clear()
        from_the_browser(model(view.own_data_box, doc), value="kept:" + text)
        assert seen == [("TextInput", ("value",))], seen  # the tab's answer, no more
        assert s.data == "custom" and s.fallback_notice == "" and "data=custom" in state.location.search
        in_step(view, doc)
