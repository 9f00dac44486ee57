# Runs inside the page's Pyodide worker (inlined into worker.js by build.py). MTL_PAGE comes from the worker:
# {"module": "app.arena", "title": "...", "location": {href, search, hash, pathname, protocol, hostname, port}}.
# The last expression is the (docs_json, render_items, root_ids) triple the page renders.
import importlib
import importlib.machinery
import sys

import pyodide.ffi

# site-packages was just filled by worker.js, behind the import system's back: forget cached directory listings.
# (Not importlib.invalidate_caches(): in 3.12 it imports importlib.metadata, 0.12-0.16 s here.)
for _finder in list(sys.path_importer_cache.values()):
    if isinstance(_finder, importlib.machinery.FileFinder):
        _finder.invalidate_caches()

mtl_mark("python-start")  # noqa: F821 - set by worker.js: timestamps for the progress log and the benchmark

# Panel >= 1.8 compares values with pyodide.ffi.jsnull, which appeared in Pyodide 0.28. Pyodide 0.27 already
# turns JS null into None, so a sentinel that never matches keeps Panel's behaviour exact.
if not hasattr(pyodide.ffi, "jsnull"):
    pyodide.ffi.jsnull = object()

import html  # noqa: E402

import panel.util  # noqa: E402
from panel.io.pyodide import init_doc, write_doc  # noqa: E402
from panel.io.state import state  # noqa: E402
from panel.util import edit_readonly  # noqa: E402

# Panel sanitises the string parameters of ReactiveHTML components (pn.FlexBox: gap, flex_wrap, ...) with nh3,
# a Rust extension with no Pyodide 0.27 wheel outside the Pyodide CDN. Escaping is stricter than nh3's clean
# (it removes no markup, it neutralises all of it) and leaves the CSS-like values these components take as they are.
try:
    import nh3  # noqa: F401
except ImportError:
    panel.util.HTML_SANITIZER._sanitize = lambda text: html.escape(text, quote=True)

mtl_mark("panel-imported")  # noqa: F821
init_doc()
# The worker has no window.location: hand the page's URL to Panel before the page reads its query (deep links).
_loc = MTL_PAGE["location"]  # noqa: F821 - set by worker.js
with edit_readonly(state.location):
    state.location.param.update({k: v for k, v in _loc.items() if k in state.location.param})
_module = importlib.import_module(MTL_PAGE["module"])  # noqa: F821
mtl_mark("page-imported")  # noqa: F821
_module.create_page().servable(title=MTL_PAGE["title"])  # noqa: F821
mtl_mark("page-created")  # noqa: F821
await write_doc()  # noqa: F704 - top-level await is fine in runPythonAsync
