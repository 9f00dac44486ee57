# Defines mtl_link_docs(), which the worker calls once the page shows the live document: from then on, Python's
# document changes go to the page. Run at build time into the snapshot (sitebuild/snapshot.py), else by the worker.
import panel.io.pyodide as panel_pyodide
from panel.io.state import state


def _process_document_events(doc, events):
    # Panel's own (panel.io.pyodide), with a serializer that does not first make a reference of every model of the
    # document for each event (docsync.py, run just before this file)
    serializer = DocumentSerializer(doc)  # noqa: F821
    patch_json = panel_pyodide.PatchJson(events=serializer.encode(events))
    doc.models.flush_synced(lambda model: not serializer.has_ref(model))
    to_js = panel_pyodide.pyodide.ffi.to_js
    buffer_map = {buffer.id: to_js(buffer.to_bytes()).buffer for buffer in serializer.buffers}
    return panel_pyodide._serialize_buffers(patch_json, buffers=buffer_map), buffer_map


panel_pyodide._process_document_events = _process_document_events


def mtl_link_docs():
    panel_pyodide._link_docs_worker(state.curdoc, sendPatch, setter="js")  # noqa: F821 - sendPatch: set by the worker
