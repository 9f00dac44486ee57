"""The build, as its list of stages: select -> sources -> render -> runtime -> wheels -> packs + snapshot ->
assets + scripts -> pages (+ preview pictures) -> index, service worker, build-info -> swap in.

Each stage is a function of its own module with a contract in its docstring; ``build`` only wires them.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import time
import traceback

from sitebuild.assets import copy_js_assets
from sitebuild.errors import BuildError, log
from sitebuild.packs import Packs, stage_packs
from sitebuild.pins import (
    APP_WHEEL,
    BOKEH_VERSION,
    CACHE,
    PANEL_CDN_ROOT,
    PANEL_VERSION,
    PYODIDE_CDN,
    PYODIDE_VERSION,
    ROOT,
    SITE_PACKAGES,
)
from sitebuild.previews import photograph_previews
from sitebuild.pyc import find_python312, precompile
from sitebuild.render import import_panel, load_pages, local_script, prerender
from sitebuild.runtime import STDLIB_STUB, WASM_ZST, Runtime, stage_runtime
from sitebuild.scripts import write_scripts
from sitebuild.site import build_id_of, input_hash, keep_list, staged, write_index, write_page, write_service_worker
from sitebuild.sources import fetch_core, fetch_lock_wheels, fetch_pure_wheels, fetch_zstddec, lock_closure
from sitebuild.wheels import build_app_wheel, repack
from sitebuild.hashing import versioned


def select_pages(app_dir: pathlib.Path, slugs: list[str] | None) -> list:
    all_pages = load_pages(app_dir)
    if not slugs:
        return list(all_pages)
    unknown = sorted(set(slugs) - {p.slug for p in all_pages})
    if unknown:
        raise BuildError(
            f"--pages: unknown page(s) {', '.join(unknown)}; known: {', '.join(p.slug for p in all_pages)}"
        )
    return [p for p in all_pages if p.slug in slugs]


def check_local_panel() -> None:
    import bokeh

    panel = import_panel()
    if (panel.__version__, bokeh.__version__) != (PANEL_VERSION, BOKEH_VERSION):
        raise BuildError(
            f"the build renders pages with the local panel/bokeh, which must match the wheels it ships: "
            f"need panel {PANEL_VERSION} + bokeh {BOKEH_VERSION}, found {panel.__version__} + "
            f"{bokeh.__version__}. Run `bash scripts/setup.sh` and use .venv/bin/python."
        )


def render_pages(pages, app_dir: pathlib.Path) -> dict:
    """slug -> (preview document, preview document with ?embed=1, the site-relative scripts the page needs)."""
    rendered = {}
    for p in pages:
        log(f"rendering {p.slug}")
        try:
            plain, scripts = prerender(p, False, app_dir)
            emb, _ = prerender(p, True, app_dir)
        except Exception as exc:
            raise BuildError(
                f"page {p.slug!r} ({p.module}.create_page) failed while rendering at build time:\n"
                f"{traceback.format_exc()}"
            ) from exc
        rendered[p.slug] = (plain, emb, [local_script(s) for s in scripts])
    return rendered


def stage_wheels(work: pathlib.Path, pure: list, app_dir: pathlib.Path, py312, cache: pathlib.Path) -> list:
    """The pure wheels normalised (and precompiled) plus this checkout's wheel, kept as source: readable
    tracebacks in the error box. Returns [(wheel name, shipped file)]."""
    wheels = []
    for src in pure:
        repack(src, work / src.name, cache)
        # the packages' docstrings and asserts left out (-OO): 10% of the imports' memory, so of the snapshot; no
        # page reads a library docstring (every page builds and trains under `python -OO`)
        shipped = precompile(py312, work / src.name, SITE_PACKAGES, cache, optimize=2) if py312 else work / src.name
        wheels.append((src.name, shipped))
    build_app_wheel(app_dir, work / APP_WHEEL)
    wheels.append((APP_WHEEL, work / APP_WHEEL))
    return wheels


def page_config(p, rt: Runtime, packs: Packs, cdn: bool, lock_pkgs: list, preview: bool, site) -> dict:
    """The build-time settings a page hands its loader (<script id="mtl-config">)."""
    snap = packs.snapshot
    prefetch, runtime_bytes = rt.prefetch, rt.download_bytes
    if snap:
        # restored from the snapshot, the worker mounts an empty stdlib zip (the real one only on demand)
        full, stub = rt.dir + "python_stdlib.zip", rt.dir + STDLIB_STUB
        # of the documents as built, this page's own (loader/main.js draws it while the heap downloads)
        docs = snap.get("docs") or {}
        snap = {k: v for k, v in snap.items() if k != "docs"} | {"stdlib": {"stub": stub, "full": full}}
        snap["doc"] = docs.get(p.slug)
        if snap["codec"] == "zstd":
            snap["decoder"] = versioned(site, "mtl/zstddec.js")
        prefetch = [stub if u == full else u for u in prefetch]
        runtime_bytes += (site / stub).stat().st_size - (site / full).stat().st_size
    # the runtime's wasm and the pack zstd-compressed, through the snapshot's decoder (a site that ships one); the pack
    # is fetched by the page itself (loader.js), not the worker
    wasm_zst = rt.wasm_zst if snap and snap.get("decoder") else None
    pack_zst = packs.zst if snap and snap.get("decoder") else None
    pack_bytes = (site / (pack_zst["url"] if pack_zst else packs.url)).stat().st_size
    if wasm_zst:
        runtime_bytes += (site / wasm_zst).stat().st_size - (site / rt.dir / "pyodide.asm.wasm").stat().st_size
    return {
        "slug": p.slug,
        "title": p.title,
        "module": p.module,
        "worker": versioned(site, "mtl/worker.js"),
        "pyodideDir": rt.dir,
        "cdnIndexURL": PYODIDE_CDN if cdn else None,
        "panelCdnRoot": PANEL_CDN_ROOT,
        "lockPackages": sorted(lock_pkgs) if cdn else [],
        "sitePackages": {
            "url": packs.url,
            "imported": packs.imported_url,
            "later": {"url": packs.later_url, "modules": packs.later_modules} if packs.later_url else None,
            "dir": SITE_PACKAGES,
            "dynlibs": packs.dynlibs,
            "zst": {**pack_zst, "decoder": snap["decoder"]} if pack_zst else None,
        },
        "snapshot": snap,
        "runtimeWasm": {
            "url": wasm_zst,
            "decoder": snap["decoder"],
            "bytes": (site / rt.dir / "pyodide.asm.wasm").stat().st_size,
        }
        if wasm_zst
        else None,
        "prefetch": prefetch,
        "serviceWorker": "sw.js",
        "downloadBytes": runtime_bytes + pack_bytes + (snap["bytes"] if snap else 0),
        "preview": {
            "plain": versioned(site, f"previews/{p.slug}.json"),
            "embed": versioned(site, f"previews/{p.slug}.embed.json"),
        }
        if preview
        else None,
        "previewImages": None,
    }


def write_pages(stage, pages, rendered: dict, configs: dict, preview: bool, preview_images: bool) -> None:
    """Each page's HTML and preview documents; then, where a browser is at hand, its preview pictures, which the
    page's HTML names (so it is written again)."""
    for p in pages:
        plain, emb, scripts = rendered[p.slug]
        missing = [s for s in scripts if not (stage / s).exists()]
        if missing:
            raise BuildError(f"page {p.slug} needs {missing[0]}, which is not in the site (copy_js_assets)")
        write_page(stage, p, configs[p.slug], scripts)
    if not (preview and preview_images):
        return
    shots = photograph_previews(stage, pages)
    for p in pages:
        if p.slug in shots:
            configs[p.slug]["previewImages"] = {
                variant: [{"w": w, "h": h, "url": versioned(stage, rel)} for w, h, rel in taken]
                for variant, taken in shots[p.slug].items()
            }
            write_page(stage, p, configs[p.slug], rendered[p.slug][2])


def write_previews(stage, pages, rendered: dict, preview: bool) -> None:
    """``previews/<slug>[.embed].json``: the build-time documents (the pictures are taken of them)."""
    (stage / "previews").mkdir()
    for p in pages if preview else ():
        plain, emb, _ = rendered[p.slug]
        for suffix, data in (("", plain), (".embed", emb)):
            # no sort_keys: BokehJS needs each model defined before it is referenced, in the original order
            (stage / "previews" / f"{p.slug}{suffix}.json").write_text(json.dumps(data))


def addressed_urls(rt: Runtime, packs: Packs) -> set[str]:
    """The content-addressed files of this build (the service worker keeps them, drops older builds' copies)."""
    urls = {u for u in rt.prefetch if "://" not in u} | {packs.url}
    urls |= {packs.snapshot["url"], *packs.snapshot.get("docs", {}).values()} if packs.snapshot else set()
    urls |= {packs.imported_url} if packs.imported_url else set()
    urls |= {packs.later_url} if packs.later_url else set()
    urls |= {packs.zst["url"]} if packs.zst else set()
    if rt.dir:
        names = ("pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", STDLIB_STUB)
        names += (WASM_ZST,) if rt.wasm_zst else ()
        urls |= {rt.dir + n for n in names}
    return urls


def build_info(build_id, ihash, options, pages, lock_pkgs, cdn, wheels, configs, py312, packs) -> dict:
    """build-info.json: what this build shipped (and the input hash that tells tests whether it is fresh)."""
    return {
        "build_id": build_id,
        "input_hash": ihash,
        "options": options,
        "pages": [p.slug for p in pages],
        "pyodide": PYODIDE_VERSION,
        "lock_packages": sorted(lock_pkgs),
        "lock_packages_in_pack": not cdn,
        "wheels": [n for n, _ in wheels],
        "download_bytes": max(c["downloadBytes"] for c in configs.values()),
        "precompiled": bool(py312),
        "snapshot": bool(packs.snapshot),
    }


def build(
    out: pathlib.Path,
    *,
    pages: list[str] | None = None,
    cdn: bool = False,
    app_dir: pathlib.Path = ROOT / "app",
    preview: bool = True,
    pyc: bool = True,
    preview_images: bool = True,
    snapshot: bool = True,
    cache: pathlib.Path = CACHE,
) -> dict:
    """Write the static site into ``out``; return its build-info (also written to ``out/build-info.json``)."""
    t0 = time.perf_counter()
    app_dir = app_dir.resolve()
    selected = select_pages(app_dir, pages)
    options = {
        "pages": [p.slug for p in selected],
        "cdn": cdn,
        "preview": preview,
        "pyc": pyc,
        "preview_images": preview_images,
        "snapshot": snapshot,
    }
    check_local_panel()
    core, pure = fetch_core(cache), fetch_pure_wheels(cache)
    lock = json.loads(core["pyodide-lock.json"].read_text())
    rendered = render_pages(selected, app_dir)
    lock_pkgs = lock_closure(lock)  # after rendering: a page's imports decide the optional packages
    lock_files = fetch_lock_wheels(cache, [lock["packages"][n]["file_name"] for n in lock_pkgs], lock)
    py312 = find_python312() if pyc else None
    if pyc and py312 is None:
        log("no CPython 3.12 found (set MTL_PY312): shipping Python sources, the first load will be slower")
    out = out.resolve()
    with staged(out) as stage:
        work = stage / ".work"
        work.mkdir()
        rt = stage_runtime(stage, work, core, lock, lock_files, py312, cdn, cache)
        wheels = stage_wheels(work, pure, app_dir, py312, cache)
        zstddec = fetch_zstddec(cache) if snapshot and not cdn else None
        shipped = [*rt.lock_wheels, *(path for _, path in wheels)]
        packs = stage_packs(stage, work, rt.dir, shipped, selected, snapshot and not cdn, cache, decoder=bool(zstddec))
        copy_js_assets(stage, {s.name.split("-")[0]: s for s in pure}, {s for *_, ss in rendered.values() for s in ss})
        write_scripts(stage, zstddec if packs.snapshot and packs.snapshot["codec"] == "zstd" else None)
        write_previews(stage, selected, rendered, preview)
        configs = {p.slug: page_config(p, rt, packs, cdn, lock_pkgs, preview, stage) for p in selected}
        write_pages(stage, selected, rendered, configs, preview, preview_images)
        shutil.rmtree(work)
        build_id = build_id_of(stage)
        write_index(stage, selected, build_id)
        write_service_worker(stage, build_id, keep_list(stage, addressed_urls(rt, packs)))
        info = build_info(
            build_id, input_hash(app_dir, options), options, selected, lock_pkgs, cdn, wheels, configs, py312, packs
        )
        (stage / "build-info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(
        f"wrote {out} ({len(selected)} pages, {total / 1e6:.1f} MB, {info['download_bytes'] / 1e6:.1f} MB per cold "
        f"page load at most) in {time.perf_counter() - t0:.1f} s; build {build_id}"
    )
    return info
