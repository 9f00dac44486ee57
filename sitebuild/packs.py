"""Packs and the snapshot: the site's Python packages as packs, and one memory snapshot for every page.

Contract: ``stage_packs`` writes ``wheels/<hash>/site-packages.pack`` (what every visit needs) and, with a snapshot,
``wheels/<hash>/imported.pack`` (the compiled modules the snapshot has already imported: only a worker that boots
from scratch downloads it), plus ``snapshot/<hash>/python-heap.zst`` (``.gz`` without a zstd decoder: ``decoder``).
Returns a :class:`Packs` naming them.
"""

from __future__ import annotations

import dataclasses
import pathlib

from sitebuild.errors import log
from sitebuild.hashing import place_addressed
from sitebuild.pack import write_pack
from sitebuild.patches import never_read
from sitebuild.snapshot import make_snapshot, zstd_copy


@dataclasses.dataclass
class Packs:
    url: str  # site-packages.pack
    imported_url: str | None  # imported.pack, or None
    dynlibs: list[str]  # the pack's .so files, for the worker to load
    snapshot: dict | None  # {url, bytes, libs, byHandle, table}: the one snapshot of every page


def shipped(name: str) -> bool:
    return not never_read(name)


def _snapshot(
    stage: pathlib.Path,
    runtime_dir: str,
    pack: pathlib.Path,
    dynlibs: list[str],
    pages,
    cache: pathlib.Path,
    decoder: bool,
) -> tuple[dict | None, set]:
    made = make_snapshot(stage / runtime_dir, pack, dynlibs, pages, cache)
    if not made:
        return None, set()
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
            "bytes": (stage / url).stat().st_size,
            "codec": codec,
            "heapBytes": meta["heapBytes"],
            "libs": meta["libs"],
            "byHandle": meta["byHandle"],
            "table": meta["table"],
        },
        set(meta["imported"]),
    )


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
    snap, imported = (
        _snapshot(stage, runtime_dir, pack, dynlibs, pages, cache, decoder)
        if snapshot and runtime_dir
        else (None, set())
    )
    imported_url = None
    if snap:
        # The compiled modules the snapshot has already imported are never read again when it is used: they go into
        # a second pack. Sources (the app's, for readable tracebacks), data files and numpy's .so files stay.
        done_already = lambda n: n in imported and n.endswith(".pyc")  # noqa: E731
        write_pack(work / "imported.pack", wheels, only=done_already)
        write_pack(pack, wheels, only=lambda n: shipped(n) and not done_already(n))
        imported_url = place_addressed(stage, work / "imported.pack", "wheels")
    return Packs(place_addressed(stage, pack, "wheels"), imported_url, dynlibs, snap)
