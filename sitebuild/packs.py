"""Packs and the snapshot: the site's Python packages as packs, and one memory snapshot for every page.

Contract: ``stage_packs`` writes ``wheels/<hash>/site-packages.pack`` (what every visit needs before it is live) and,
with a snapshot, two more: ``wheels/<hash>/imported.pack`` (the compiled modules the snapshot has already imported:
only a worker that boots from scratch downloads it) and ``wheels/<hash>/later.pack`` (the modules no page imports
before it is live: fetched the first time Python imports one of them, ``later_modules``), plus
``snapshot/<hash>/python-heap.zst`` (``.gz`` without a zstd decoder: ``decoder``). Returns a :class:`Packs`.
"""

from __future__ import annotations

import dataclasses
import gzip
import pathlib
import zipfile

from sitebuild.errors import BuildError, log
from sitebuild.hashing import place_addressed
from sitebuild.pack import write_pack
from sitebuild.patches import never_read
from sitebuild.snapshot import make_snapshot, zstd_copy
from sitebuild.zstd import zstd_cached


@dataclasses.dataclass
class Packs:
    url: str  # site-packages.pack
    imported_url: str | None  # imported.pack, or None
    dynlibs: list[str]  # the pack's .so files, for the worker to load
    snapshot: dict | None  # {url, bytes, libs, byHandle, table}: the one snapshot of every page
    later_url: str | None = None  # later.pack, or None
    later_modules: list[str] = dataclasses.field(default_factory=list)  # the dotted modules later.pack holds
    # site-packages.pack zstd-compressed (27% smaller than its gzip: numpy's .so files), for a site with the snapshot's
    # decoder: {url, bytes (decoded)}; the page downloads it and the worker decodes it (web/worker/zstd.js)
    zst: dict | None = None


# numpy's compiled modules that no page imports (numpy 2 imports numpy.fft and lapack_lite only when asked; the test
# modules never): the snapshot does not load them ahead, so a restored page does not download them before it is live.
# They travel in later.pack. The build checks the list against what the snapshot really imported.
DYNLIBS_LATER = (
    "numpy/fft/",
    "numpy/linalg/lapack_lite.",
    "numpy/_core/_simd.",
    "numpy/_core/_operand_flag_tests.",
    "numpy/_core/_rational_tests.",
    "numpy/_core/_struct_ufunc_tests.",
    "numpy/_core/_umath_tests.",
)


def shipped(name: str) -> bool:
    return not never_read(name)


def loaded_ahead(so: str) -> bool:
    return not so.startswith(DYNLIBS_LATER)


def module_name(path: str) -> str | None:
    """The dotted module a pack member is (``numpy/fft/__init__.pyc`` -> ``numpy.fft``), or None for data files."""
    for suffix in (".cpython-312-wasm32-emscripten.so", ".pyc", ".py"):
        if path.endswith(suffix):
            parts = path[: -len(suffix)].split("/")
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


def members(wheels: list[pathlib.Path]) -> list[str]:
    names = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            names += [info.filename for info in zf.infolist() if not info.is_dir()]
    return names


def later_members(names: list[str], imported: set) -> set[str]:
    """What no page needs before it is live: the modules the snapshot did not import (but the .so files it placed),
    and every file inside a package that is itself later (its folder arriving without its ``__init__`` would make
    Python import it as an empty namespace package)."""
    placed = {n for n in names if n.endswith(".so") and loaded_ahead(n)}
    modules = {n for n in names if module_name(n) is not None and n not in imported and n not in placed}
    packages = {module_name(n) for n in modules if n.rsplit("/", 1)[-1].startswith("__init__.")}

    def in_later_package(name: str) -> bool:
        folders = name.split("/")[:-1]
        return any(".".join(folders[: i + 1]) in packages for i in range(len(folders)))

    return modules | {n for n in names if in_later_package(n)}


def check_loaded_ahead(dynlibs: list[str], imported: set) -> None:
    """The snapshot can only restore compiled modules it loaded ahead (snapshot.js): one imported anyway was loaded
    where the restore cannot put it back."""
    late = sorted(so for so in dynlibs if so in imported and not loaded_ahead(so))
    if late:
        raise BuildError(
            f"{late[0]} was imported while making the snapshot, but DYNLIBS_LATER (sitebuild/packs.py) keeps it "
            f"from being loaded ahead: remove it from that list"
        )
    unused = sorted(so for so in dynlibs if loaded_ahead(so) and so not in imported)
    if unused:
        log(f"loaded ahead but never imported (add to DYNLIBS_LATER to ship them later): {', '.join(unused)}")


def _snapshot(
    stage: pathlib.Path,
    runtime_dir: str,
    pack: pathlib.Path,
    dynlibs: list[str],
    pages,
    cache: pathlib.Path,
    decoder: bool,
) -> tuple[dict | None, set, set]:
    """(the snapshot's config, the files it imported, the modules it failed to import)."""
    made = make_snapshot(stage / runtime_dir, pack, [so for so in dynlibs if loaded_ahead(so)], pages, cache)
    if not made:
        return None, set(), set()
    heap_gz, meta = made
    for what, error in meta.get("prebuildErrors", {}).items():
        log(f"{what} could not be built under node: {error}; the browser builds it (and shows this error)")
    heap_zst = zstd_copy(heap_gz) if decoder else None
    if heap_zst:
        url, codec = place_addressed(stage, heap_zst, "snapshot", "python-heap.zst"), "zstd"
    else:
        url, codec = place_addressed(stage, heap_gz, "snapshot", "python-heap.gz"), "gzip"
    return (
        {
            "url": url,
            "docs": _documents_as_built(stage, heap_gz.parent, meta.get("docs", {})),
            "bytes": (stage / url).stat().st_size,
            "codec": codec,
            "heapBytes": meta["heapBytes"],
            "libs": meta["libs"],
            "byHandle": meta["byHandle"],
            "table": meta["table"],
            "dataDelta": meta.get("dataDelta"),
        },
        set(meta["imported"]),
        set(meta.get("failedImports", ())),
    )


def _documents_as_built(stage: pathlib.Path, work: pathlib.Path, docs: dict) -> dict:
    """{slug: URL} of each prebuilt page's document as the snapshot holds it, ``{"docs_json", "render_items"}``: the
    page draws it while the heap downloads. Written from the JSON text as the worker would send it (no second
    serialisation: BokehJS needs each model defined before it is referenced, in the original order)."""
    urls = {}
    for slug, (docs_json, render_items) in sorted(docs.items()):
        out = work / f"{slug}.json"
        out.write_text(f'{{"docs_json": {docs_json}, "render_items": {render_items}}}')
        urls[slug] = place_addressed(stage, out, "snapshot")
    return urls


def stage_packs(
    stage: pathlib.Path,
    work: pathlib.Path,
    runtime_dir: str | None,
    wheels: list[pathlib.Path],
    pages,
    snapshot: bool,
    cache: pathlib.Path,
    decoder: bool = False,
) -> Packs:
    pack = work / "site-packages.pack"
    dynlibs = write_pack(pack, wheels, only=shipped)
    snap, imported, failed = (
        _snapshot(stage, runtime_dir, pack, dynlibs, pages, cache, decoder)
        if snapshot and runtime_dir
        else (None, set(), set())
    )
    if not snap:
        return Packs(place_addressed(stage, pack, "wheels"), None, dynlibs, None)
    check_loaded_ahead(dynlibs, imported)
    # Three packs. The compiled modules the snapshot has already imported are never read again when it is used: a
    # boot from scratch alone needs them (imported.pack). The modules no page imported are needed, if ever, after
    # the page is live (later.pack). What stays is what a restored page reads: the .so files the snapshot placed,
    # sources (the app's, for readable tracebacks), data files and package metadata.
    done_already = lambda n: n in imported and n.endswith(".pyc")  # noqa: E731
    later_set = later_members([n for n in members(wheels) if shipped(n)], imported)
    later = later_set.__contains__
    write_pack(work / "imported.pack", wheels, only=done_already)
    later_files = write_pack(work / "later.pack", wheels, only=later, names=True)
    live_dynlibs = write_pack(pack, wheels, only=lambda n: shipped(n) and not done_already(n) and not later(n))
    raw = gzip.decompress(pack.read_bytes()) if snap.get("codec") == "zstd" else b""
    zst = zstd_cached(lambda: raw, work / "site-packages.pack.zst", "the pack") if raw else None
    return Packs(
        place_addressed(stage, pack, "wheels"),
        place_addressed(stage, work / "imported.pack", "wheels"),
        live_dynlibs,
        snap,
        place_addressed(stage, work / "later.pack", "wheels"),
        # not one the snapshot's run failed to import (bokeh.server.contexts, without tornado): Panel tries it for
        # every new document, and it would fail here too, after fetching later.pack (2.4 MB) for nothing
        sorted({m for m in map(module_name, later_files) if m} - failed),
        {"url": place_addressed(stage, zst, "wheels"), "bytes": len(raw)} if zst else None,
    )
