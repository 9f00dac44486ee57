"""sitebuild/web/python/docsync.py: the worker's serializer of document changes says exactly what Panel's did (the
page applies the same patches), without first making a reference of every model of the document."""

from __future__ import annotations

import json
import pathlib
import runpy

import pytest
from bokeh.core.serialization import Serializer
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Div
from panel.io.state import set_curdoc

from app.arena import ArenaView
from app.arena_state import ArenaState

# a script of the worker's (run in its globals before link_docs.py): its names, as the worker has them
DocumentSerializer = runpy.run_path(
    str(pathlib.Path(__file__).resolve().parent.parent / "sitebuild" / "web" / "python" / "docsync.py")
)["DocumentSerializer"]


@pytest.fixture
def doc():
    document = Document()
    with set_curdoc(document):
        state = ArenaState()
        ArenaView(state).__panel__().server_doc(document)
    document.models.flush_synced()  # as after the page went live: every model is known to the page
    document._mtl_state = state
    return document


def changes_of(doc, act) -> list:
    events = []
    doc.on_change(events.append)
    act()
    doc.remove_on_change(events.append)
    return events


def encoded(serializer, events) -> str:
    return json.dumps(serializer.encode(events), sort_keys=True, default=repr)


def test_a_click_is_encoded_exactly_as_panel_did(doc):
    events = changes_of(doc, lambda: doc._mtl_state.tap(-1.0, 7.0))
    assert len(events) >= 3  # the arrows, the point, the readout, ...
    for event in events:  # Panel's worker encodes each event on its own
        ours, panels = DocumentSerializer(doc), Serializer(references=doc.models.synced_references)
        assert encoded(ours, [event]) == encoded(panels, [event])
        assert [b.id for b in ours.buffers] == [b.id for b in panels.buffers]


def test_a_new_model_is_sent_whole_and_then_by_reference(doc):
    """A model new since the last flush goes out in full, as Panel's serializer sends it; after the flush the
    page knows it, and it goes by reference."""
    box = doc.get_model_by_name("readout")
    new = Div(text="new", name="docsync_new")
    source = ColumnDataSource({"x": [1]})
    events = changes_of(doc, lambda: doc.add_root(new))
    ours, panels = DocumentSerializer(doc), Serializer(references=doc.models.synced_references)
    sent = encoded(ours, events)
    assert sent == encoded(panels, events)
    assert '"docsync_new"' in sent  # sent whole: its properties, not a bare id
    for serializer in (ours, panels):
        doc.models.flush_synced(lambda model, s=serializer: not s.has_ref(model))
    assert new not in doc.models._new_models
    events = changes_of(doc, lambda: setattr(new, "text", "newer"))
    ours = DocumentSerializer(doc)
    assert encoded(ours, events) == encoded(Serializer(references=doc.models.synced_references), events)
    assert ours.has_ref(new) and ours.has_ref(box) and not ours.has_ref(source)  # not in the document
