# Runs inside the page's Pyodide worker (bundled into it by sitebuild/scripts.py), after prelude.py (run just before,
# or restored from the build's memory snapshot, which may also hold this page already built: prebuild.py).
# MTL_PAGE comes from the worker: {"slug": "arena", "module": "app.arena", "title": "...",
# "prebuilt": "plain" | "embed" | None, "location": {href, search, hash, pathname, protocol, hostname, port}}.
# The last expression is (docs_json, render_items, root_ids, pending): what the page renders, and whether the
# document's first patches are still to come before the page should show it.
import importlib
import inspect
import random

from bokeh.io.doc import set_curdoc
from panel.io.pyodide import init_doc, write_doc
from panel.io.state import state
from panel.util import edit_readonly

# A restored snapshot carries the random state of the build's interpreter: every visit would draw the same numbers.
random.seed()

# The snapshot holds every page built for its plain URL (prebuild.py): this page's, or None. The others go.
_built = (globals().pop("MTL_PREBUILT", None) or {}).get(MTL_PAGE["slug"]) if MTL_PAGE["prebuilt"] else None  # noqa: F821
if _built is not None:
    # the page as create_page() builds it for this URL, made at build time: adopt its document
    set_curdoc(_built["doc"])
    state.curdoc = _built["doc"]
else:
    init_doc()
# The worker has no window.location: hand the page's URL to Panel before the page reads its query (deep links).
_loc = MTL_PAGE["location"]  # noqa: F821
with edit_readonly(state.location):
    state.location.param.update({k: v for k, v in _loc.items() if k in state.location.param})
# A page that plays (trains live) starts playing once the page shows it (the worker, MTL_PLAY): ticks before that
# would only compete with drawing the page, and their changes would all be sent at once when it goes live.
if _built is not None:
    mtl_mark("page-created")  # noqa: F821 - set by the worker: timestamps for the progress log and the benchmark
    _view = _built["view"]
    if MTL_PAGE["prebuilt"] == "embed":  # noqa: F821 - the same build, without header and Share bar
        _view.show_as_embed()
    MTL_PLAY = _view.state if _built["play"] else None
else:
    _create = importlib.import_module(MTL_PAGE["module"]).create_page  # noqa: F821
    mtl_mark("page-imported")  # noqa: F821
    _plays = "autoplay" in inspect.signature(_create).parameters
    _view = _create(autoplay=False) if _plays else _create()
    _view.servable(title=MTL_PAGE["title"])  # noqa: F821
    MTL_PLAY = _view.state if _plays else None
    mtl_mark("page-created")  # noqa: F821
# A visit to a prebuilt page sends the document as the build serialised it (prebuild.py), not write_doc's. What the
# visit changed since (its address; an embed's show_as_embed) the document holds back (init_doc held it) and sends as
# its first patches once the worker links the two documents: so an embed's page is "pending" until then (loader.js
# shows it when it is live).
# When the page already drew this very document (the build wrote it beside the snapshot: loader/main.js drawAsBuilt),
# it needs only the render items: putting the large arrays back into the text and sending it cost 40-80 ms here.
_json = None
if _built is not None and "json" in _built:
    _json = (None, *_built["json"][1:]) if mtl_drawn_ahead() else mtl_json_as_built(_built)  # noqa: F821 - worker, prebuild.py
if _built is not None:  # the worker needs neither copy once the page has the document
    _built.pop("json", None)
    _built.pop("arrays", None)
if _json is not None:
    state.curdoc._session_context = None  # as write_doc leaves the document
    mtl_mark("document-as-built")  # noqa: F821
    # pending: an embed's first patches are still to come; as built: the page may already have drawn this document
    _json = (*_json, MTL_PAGE["prebuilt"] == "embed", True)  # noqa: F821
_json if _json is not None else (*(await write_doc()), False, False)  # noqa: F704 - top-level await is fine here
