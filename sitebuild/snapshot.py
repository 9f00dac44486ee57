"""Memory snapshot: the interpreter after its imports, with every page already built in it, made at build time.

Booting Python, importing Panel, Bokeh and numpy and building the page is most of a page's wait (3 s of CPU in the
browser, on every visit). A self-contained build does it once, here, under node, in the site's own runtime with the
site's own pack, and ships the interpreter's memory with every page built in it (plain and ?embed=1): one file for
the whole site, so two embedded pages or a second page cost no second download (web/snapshot.js explains how
numpy's compiled modules are put back). A snapshot holds times and random
state of that run, so it is cached by its inputs: the same inputs give the same file, and the build stays
reproducible.

Contract: ``make_snapshot`` returns (heap.gz, meta) where meta = {libs, byHandle, table, heapBytes, dataDelta,
prebuildErrors, imported, failedImports} (web/snapshot.js writes it; web/worker/restore.js and sitebuild/packs.py
read it), or None without node.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import pathlib
import shutil
import subprocess

from sitebuild.errors import BuildError, log, run
from sitebuild.hashing import sha256
from sitebuild.pins import PANEL_CDN_ROOT, SITE_PACKAGES, WEB
from sitebuild.zstd import zstd_cached

# the worker's Python environment (web/worker/scratch.js pythonEnv) as the build's run sees it. PYTHONNODEBUGRANGES:
# every code object Python makes (unmarshalled or compiled) keeps its line numbers but not the column ranges of each
# instruction, which only draw the ^^^ under a traceback's line; they were 0.4 MB of the snapshot (zstd)
SNAPSHOT_ENV = {
    "PANEL_CDN_ROOT": "./" + PANEL_CDN_ROOT,
    "HOME": "/home/pyodide",
    "PYTHONOPTIMIZE": "2",
    "PYTHONNODEBUGRANGES": "1",
}
TOOL = WEB / "snapshot.js"
# python/ files that only define (functions, a class, Panel's document encoder swapped): the worker runs those the
# restored interpreter does not hold (worker/main.js)
WORKER_DEFINITIONS = ("docsync", "link_docs", "apply_patch")
# what the node tool reads besides its arguments: part of the cache key
TOOL_SOURCES = tuple([TOOL] + [WEB / "shared" / f for f in ("tabledigest.js", "pack.js", "dlopen.js", "heapdelta.js")])


def _settings(pages, dynlibs: list[str]) -> dict:
    return {
        "dir": SITE_PACKAGES,
        "dynlibs": dynlibs,
        "env": SNAPSHOT_ENV,
        "pages": [{"module": p.module, "title": p.title, "slug": p.slug} for p in pages],
        "prelude": (WEB / "python" / "prelude.py").read_text(),
        "prebuild": (WEB / "python" / "prebuild.py").read_text(),
        # the worker's definitions for a live page, compiled and run here once rather than on every visit
        "definitions": [(WEB / "python" / f"{name}.py").read_text() for name in WORKER_DEFINITIONS],
    }


def _cache_key(settings: dict, node_version: str, runtime_dir: pathlib.Path, pack: pathlib.Path) -> str:
    runtime_files = sorted(f for f in runtime_dir.iterdir() if f.is_file())
    return hashlib.sha256(
        json.dumps(
            [
                settings,
                node_version,
                [f.read_text() for f in TOOL_SOURCES],
                sha256(pack),
                [(f.name, sha256(f)) for f in runtime_files],
            ]
        ).encode()
    ).hexdigest()[:20]


def _run_tool(
    node: str, runtime_dir: pathlib.Path, pack: pathlib.Path, tmp: pathlib.Path, settings: dict, what: str, version: str
) -> None:
    cmd = [
        node,
        str(TOOL),
        str(runtime_dir),
        str(pack),
        str(tmp / "heap"),
        str(tmp / "meta.json"),
        json.dumps(settings),
    ]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise BuildError(
            "making the memory snapshot did not finish in 10 minutes (a page module that starts work "
            "at import?). Rerun with --no-snapshot to build without one."
        ) from None
    if res.returncode != 0:
        raise BuildError(
            f"making the memory snapshot of {what} failed (node {version}):\n"
            f"{(res.stdout + res.stderr)[-3000:]}\n"
            f"Rerun with --no-snapshot to build without one (pages then boot Python from scratch)."
        )


def make_snapshot(
    runtime_dir: pathlib.Path, pack: pathlib.Path, dynlibs: list[str], pages, cache: pathlib.Path
) -> tuple[pathlib.Path, dict] | None:
    """Snapshot of the interpreter after ``prelude.py`` and ``prebuild.py`` built every page of ``pages``:
    (heap.gz, meta), or None without node."""
    node = shutil.which("node")
    if node is None:
        log("no memory snapshot: node is not installed (it runs Pyodide at build time); pages boot Python from scratch")
        return None
    version = run([node, "--version"]).stdout.strip()
    settings = _settings(pages, dynlibs)
    key = _cache_key(settings, version, runtime_dir, pack)
    done = cache / "snapshots" / key
    if not (done / "meta.json").exists():
        what = ", ".join(p.slug for p in pages)
        log(f"making the memory snapshot of {what} (node {version})")
        tmp = cache / "snapshots" / f"{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _run_tool(node, runtime_dir, pack, tmp, settings, what, version)
        (tmp / "heap.gz").write_bytes(gzip.compress((tmp / "heap").read_bytes(), compresslevel=6, mtime=0))
        (tmp / "heap").unlink()
        shutil.rmtree(done, ignore_errors=True)
        tmp.rename(done)
    return done / "heap.gz", json.loads((done / "meta.json").read_text())


def zstd_copy(heap_gz: pathlib.Path) -> pathlib.Path | None:
    """The snapshot zstd-compressed beside its gzip file (made once, cached), or None without the zstandard package
    (the site then ships the gzip file)."""
    out = heap_gz.with_name("heap.zst")
    return zstd_cached(lambda: gzip.decompress(heap_gz.read_bytes()), out, "the memory snapshot")
