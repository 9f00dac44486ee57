# Every import the pages share, run once before a page (bundled into the worker by sitebuild/scripts.py). A
# self-contained build runs it at build time instead, under node, and ships the interpreter's memory right after it
# (snapshot.js): the worker then restores that memory and skips all of this. So: imports and shims only, nothing
# that depends on the page, its URL or the time (anything computed here is frozen into the snapshot and shared by
# every visit).
import importlib.machinery
import sys
import zlib  # noqa: F401 - in the snapshot: the later pack is unpacked with it (_LaterOnDemand)

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

# The standard library on demand. A page restored from the memory snapshot has already imported every module it
# uses, so its worker starts with an empty python312.zip instead of the 4 MB one (sitebuild/runtime.py; the snapshot
# forgets the zip's directory: mtl_forget_stdlib_directory in prebuild.py). Should a standard module still be
# imported later, this last finder on sys.meta_path fetches the real zip once (worker: mtlLoadStdlib) and retries.
import os  # noqa: E402

_STDLIB_ZIP = "/lib/python312.zip"


def mtl_forget_stdlib_directory():
    """Drop every cached reading of the stdlib zip's directory: the next import reads the zip as it is now."""
    import zipimport

    for key in [k for k in sys.path_importer_cache if k.startswith(_STDLIB_ZIP)]:
        del sys.path_importer_cache[key]
    zipimport._zip_directory_cache.clear()


class _StdlibOnDemand:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] not in sys.stdlib_module_names or os.path.getsize(_STDLIB_ZIP) > 4096:
            return None  # not a standard module, or the real zip is already here: a plain ImportError
        import js

        js.mtlLoadStdlib()
        mtl_forget_stdlib_directory()
        return importlib.machinery.PathFinder.find_spec(name, path, target)


def _forget_directory_listings():
    for finder in list(sys.path_importer_cache.values()):
        if isinstance(finder, importlib.machinery.FileFinder):
            finder.invalidate_caches()


def mtl_write_pack(packed: bytes, root: str) -> int:
    """Write a pack (sitebuild/pack.py's format, gzip) under ``root``; return how many files it held."""
    import json
    import struct

    raw = zlib.decompress(packed, wbits=31)
    (n,) = struct.unpack_from("<I", raw)
    offset = 4 + n
    index = json.loads(raw[4:offset])
    for rel, size in index:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(raw[offset : offset + size])
        offset += size
    if offset != len(raw):
        raise ValueError(f"the pack holds {len(raw) - offset} bytes its index does not name")
    return len(index)


class _LaterOnDemand:
    """The site's modules no page imports before it is live (sitebuild/packs.py: later.pack) come the first time
    one of them is imported: the worker fetches the pack (mtlLaterPack), this writes it into site-packages."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        import js

        fetch = getattr(js, "mtlLaterPack", None)  # not in the build's own run: its pack holds everything
        packed = fetch(name) if fetch is not None else None
        if packed is None:
            return None
        try:
            mtl_write_pack(packed.to_bytes(), next(p for p in sys.path if p.endswith("site-packages")))
        except Exception as exc:
            js.mtlLaterFailed()
            raise ImportError(f"{name}: the site's later.pack could not be installed ({exc}); reload the page") from exc
        _forget_directory_listings()
        return importlib.machinery.PathFinder.find_spec(name, path, target)


sys.meta_path.append(_LaterOnDemand)
sys.meta_path.append(_StdlibOnDemand)
