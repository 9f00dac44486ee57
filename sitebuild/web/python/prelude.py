# Every import the pages share, run once before a page (bundled into the worker by sitebuild/scripts.py). A
# self-contained build runs it at build time instead, under node, and ships the interpreter's memory right after it
# (snapshot.js): the worker then restores that memory and skips all of this. So: imports and shims only, nothing that depends on the
# page, its URL or the time (anything computed here is frozen into the snapshot and shared by every visit).
import importlib.machinery
import sys

import pyodide.ffi

# site-packages was just filled by the worker, behind the import system's back: forget cached directory listings.
# (Not importlib.invalidate_caches(): in 3.12 it imports importlib.metadata, 0.12-0.16 s here.)
for _finder in list(sys.path_importer_cache.values()):
    if isinstance(_finder, importlib.machinery.FileFinder):
        _finder.invalidate_caches()

# Panel >= 1.8 compares values with pyodide.ffi.jsnull, which appeared in Pyodide 0.28. Pyodide 0.27 already
# turns JS null into None, so a sentinel that never matches keeps Panel's behaviour exact.
if not hasattr(pyodide.ffi, "jsnull"):
    pyodide.ffi.jsnull = object()

import html  # noqa: E402

import panel.util  # noqa: E402
import panel.io.pyodide  # noqa: E402,F401 - what boot.py uses: init_doc, write_doc, the document link

# Panel sanitises the string parameters of ReactiveHTML components (pn.FlexBox: gap, flex_wrap, ...) with nh3,
# a Rust extension with no Pyodide 0.27 wheel outside the Pyodide CDN. Escaping is stricter than nh3's clean
# (it removes no markup, it neutralises all of it) and leaves the CSS-like values these components take as they are.
try:
    import nh3  # noqa: F401
except ImportError:
    panel.util.HTML_SANITIZER._sanitize = lambda text: html.escape(text, quote=True)
