# Build-time only (run by snapshot.js under node, after prelude.py): imports every page and builds each, as a page's
# worker would for a URL without settings (a visit with ?embed=1 adopts the same build: boot.py). The interpreter's
# memory is then saved with all these documents in it: ONE snapshot serves every page of the site (a post that embeds
# two pages, a reader who moves on to the next page: the same cached file). A visit restores it and only sends the
# matching document to the page (boot.py). MTL_PAGE_SPECS = [{"module", "title", "slug"}, ...] comes from snapshot.js.
import gc
import importlib
import inspect
import weakref

import numpy as np
from panel.io.pyodide import _doc_json, init_doc
from panel.io.state import state
from panel.util import edit_readonly


def _create_paused(spec: dict, search: str = ""):
    """The page's ``create_page()`` in a new document at the URL ``<slug>.html<search>``, not playing yet: a running
    periodic callback would be a pending timer in the snapshot. The worker presses Play once the page is live, which
    is what create_page(autoplay=True) would have done. Returns (view, whether it plays)."""
    init_doc()
    with edit_readonly(state.location):
        state.location.param.update(search=search, pathname=f"/{spec['slug']}.html")
    create = importlib.import_module(spec["module"]).create_page
    plays = "autoplay" in inspect.signature(create).parameters
    return (create(autoplay=False) if plays else create()), plays


def _prebuild(spec: dict, search: str):
    view, plays = _create_paused(spec, search)
    view.servable(title=spec["title"])
    if state._periodic.get(state.curdoc):
        raise RuntimeError(f"{spec['module']}.create_page() started a periodic callback before the page was shown")
    # The document as write_doc would send it, serialised here: a visit to the plain URL sends this and skips
    # write_doc, Python's longest step after the restore (~1 s in a browser's first, unoptimised run of the wasm;
    # boot.py). What a visit changes before it is shown is its address, which the page's Location view takes from the
    # browser anyway.
    return {"doc": state.curdoc, "view": view, "play": plays, "json": _doc_json(state.curdoc)}


def _warm_up(spec: dict) -> None:
    """Build a throwaway copy of a page that plays and run two of its training ticks: the first tick in a fresh
    interpreter costs five times the next ones (0.29 s vs 0.06 s under node: imports inside functions, first
    calls), and in the browser it would hold up the reader's first slider move."""
    view, plays = _create_paused(spec)
    for _ in range(2 if plays else 0):
        view.state.tick()
    _forget(state.curdoc)
    _WARM_UP_DOCS.append(weakref.ref(state.curdoc))


def _forget(doc) -> None:
    """Let the throwaway document go. Panel keeps per-document objects in weak-keyed dicts on its state, but their
    values hold the document strongly (the page's Location is watched by the page's view, which holds the
    document), so a weak key never dies: every warm-up page would stay in the snapshot (~0.4 MB zstd for six)."""
    for registry in vars(type(state)).values():
        if isinstance(registry, weakref.WeakKeyDictionary):
            registry.pop(doc, None)


_WARM_UP_DOCS = []  # weak references: the snapshot must not hold a warm-up page (checked below)

# Arrays of at least this many bytes are left out of a prebuilt document's JSON (see _defer_arrays)
DEFERRED_ARRAY_BYTES = 2048


def _defer_arrays(built: dict) -> None:
    """Leave the page's large arrays out of its serialised document. Bokeh writes each array of a ColumnDataSource as
    base64 of its gzip-compressed bytes: noise to zstd, and a second copy of what the page's sources hold anyway (the
    arena's maps: 0.2 MB of the snapshot, zstd). Each such text becomes a marker; ``built["arrays"]`` lists (marker,
    array) for boot.py, which encodes the array again when a visit sends the document (a few ms). Run after every page
    is built: an array one page's build changed later no longer matches its text and simply stays inline."""
    from bokeh.core.serialization import Serializer
    from bokeh.models import ColumnDataSource

    docs_json, *rest = built["json"]
    arrays = []
    for source in built["doc"].models:
        if not isinstance(source, ColumnDataSource):
            continue
        for column in source.data.values():
            for array in column if isinstance(column, list) else [column]:
                if not isinstance(array, np.ndarray) or array.nbytes < DEFERRED_ARRAY_BYTES:
                    continue
                rep = Serializer(deferred=False).encode(array).get("array")
                text = f'"{rep["data"]}"' if isinstance(rep, dict) and rep.get("type") == "bytes" else None
                if text and text in docs_json:
                    marker = f"@mtl-array-{len(arrays)}@"
                    docs_json = docs_json.replace(text, f'"{marker}"')
                    arrays.append((marker, array))
    built["json"], built["arrays"] = (docs_json, *rest), arrays


def mtl_json_as_built(built: dict) -> tuple:
    """(docs_json, render_items, root_ids): the page's document as the build serialised it, its large arrays put
    back (_defer_arrays). boot.py sends it on a visit; the build also writes it beside the snapshot, where the page
    fetches it to draw the document while the heap is still on its way (snapshot.js, loader/main.js)."""
    from bokeh.core.serialization import Serializer

    docs_json, *rest = built["json"]
    for marker, array in built.get("arrays", ()):
        docs_json = docs_json.replace(marker, Serializer(deferred=False).encode(array)["array"]["data"])
    return (docs_json, *rest)


def _prebuild_all(specs: list) -> tuple[dict, dict]:
    """{slug: built}, {slug: error}. A page that fails here fails in the browser too: it
    is then built there (and shows its error box), not here."""
    built, errors = {}, {}
    for spec in specs:
        try:
            _warm_up(spec)
        except Exception:  # noqa: BLE001 - the page's own build below reports what is wrong
            pass
        # one build per page: an ?embed=1 copy of each would be ~0.4 MB more snapshot per page (zstd), for a
        # difference the worker makes in place (PageView.show_as_embed)
        try:
            built[spec["slug"]] = _prebuild(spec, "")
        except Exception as exc:  # noqa: BLE001 - reported by the build
            errors[spec["slug"]] = f"{type(exc).__name__}: {exc}"
            if any(state._periodic.values()):
                raise RuntimeError("a page that failed to build left a periodic callback running") from exc
    for page in built.values():
        _defer_arrays(page)
    return built, errors


MTL_PREBUILT, MTL_PREBUILD_ERRORS = _prebuild_all(MTL_PAGE_SPECS)  # noqa: F821 - set by snapshot.js
state.curdoc = None
# A restored visit starts with an empty stdlib zip (prelude.py): the snapshot must not remember the real one's layout.
mtl_forget_stdlib_directory()  # noqa: F821 - defined by prelude.py
del MTL_PAGE_SPECS, _create_paused, _prebuild, _warm_up, _forget, _prebuild_all, _defer_arrays  # noqa: F821
gc.collect()
if any(ref() is not None for ref in _WARM_UP_DOCS):
    raise RuntimeError("a warm-up page is still alive after its build: something new holds its document (_forget)")
del _WARM_UP_DOCS
