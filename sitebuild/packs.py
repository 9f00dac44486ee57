"""Packs and snapshots: the site's Python packages as packs, and one memory snapshot per page.

Contract: ``stage_packs`` writes ``wheels/<hash>/site-packages.pack`` (what every visit needs) and, when every page
has a snapshot, ``wheels/<hash>/imported.pack`` (the compiled modules every snapshot has already imported: only a
worker that boots from scratch downloads it), plus ``snapshot/<hash>/python-heap.gz`` per page. Returns a
:class:`Packs` naming them.
"""
from __future__ import annotations

import dataclasses
import pathlib

from sitebuild.errors import log
from sitebuild.hashing import place_addressed
from sitebuild.pack import write_pack
from sitebuild.snapshot import make_snapshot


@dataclasses.dataclass
class Packs:
    url: str                   # site-packages.pack
    imported_url: str | None   # imported.pack, or None
    dynlibs: list[str]         # the pack's .so files, for the worker to load
    snapshots: dict            # slug -> {url, bytes, libs, byHandle, table}


def _snapshots(stage: pathlib.Path, runtime_dir: str, pack: pathlib.Path, dynlibs: list[str], pages,
               cache: pathlib.Path) -> tuple[dict, dict]:
    snaps, imported_by = {}, {}
    for p in pages:
        made = make_snapshot(stage / runtime_dir, pack, dynlibs, p, cache)
        if not made:
            break
        heap_gz, meta = made
        for variant, error in meta.get("prebuildErrors", {}).items():
            log(f"{p.slug} ({variant}) could not be built under node: {error}; the browser builds it (and shows "
                f"this error)")
        url = place_addressed(stage, heap_gz, "snapshot", "python-heap.gz")
        snaps[p.slug] = {"url": url, "bytes": (stage / url).stat().st_size, "libs": meta["libs"],
                         "byHandle": meta["byHandle"], "table": meta["table"]}
        imported_by[p.slug] = set(meta["imported"])
    return snaps, imported_by


def stage_packs(stage: pathlib.Path, work: pathlib.Path, runtime_dir: str | None, wheels: list[pathlib.Path],
                pages, snapshot: bool, cache: pathlib.Path) -> Packs:
    pack = work / "site-packages.pack"
    dynlibs = write_pack(pack, wheels)
    snaps, imported_by = (_snapshots(stage, runtime_dir, pack, dynlibs, pages, cache) if snapshot and runtime_dir
                          else ({}, {}))
    imported_url = None
    if snaps and len(snaps) == len(pages):
        # The compiled modules every snapshot has already imported are never read again when a snapshot is used:
        # they go into a second pack. Sources (the app's, for readable tracebacks), data files and numpy's .so
        # files stay in the first.
        imported = set.intersection(*imported_by.values())
        done_already = lambda n: n in imported and n.endswith(".pyc")  # noqa: E731
        write_pack(work / "imported.pack", wheels, only=done_already)
        write_pack(pack, wheels, only=lambda n: not done_already(n))
        imported_url = place_addressed(stage, work / "imported.pack", "wheels")
    return Packs(place_addressed(stage, pack, "wheels"), imported_url, dynlibs, snaps)
