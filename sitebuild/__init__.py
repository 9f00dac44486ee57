"""The static site's builder (build time only: never shipped, not part of the mtl-core wheel).

``build.py`` is its command line; ``sitebuild.pipeline.build`` runs the stages, one module each:

========== =====================================================================================
pins       versions and sha256 pins (data only)
errors     BuildError, log, subprocess helpers
hashing    sha256, hash checks, content-addressed URLs
sources    fetch + verify: Pyodide core files, lock wheels, pure wheels (every returned path verified)
patches    source edits to shipped wheels; members dropped
wheels     repack (deterministic), the app wheel; wheels_zip: the one zip writer
pyc        precompile with CPython 3.12 (pyc_helper.py is the program it runs)
pack       THE pack format (web/shared/pack.js is its reader)
runtime    the Pyodide runtime folder and what the worker prefetches
snapshot   one memory snapshot, made under node (web/snapshot.js)
zstd       the one zstd writer: snapshot, the runtime's wasm, the pack (web/worker/zstd.js decodes them)
packs      the packs and the one snapshot of every page
render     prerender: each page's document at build time, and the scripts it needs
assets     BokehJS and Panel's JS/CSS from the wheels
scripts    web/ bundled into mtl/worker.js and mtl/loader.js
previews   preview pictures (headless Chromium)
site       pages, index, service-worker keep-list, build-info, swap-in, freshness
serve      the local server (--serve, previews, benchmarks)
========== =====================================================================================
"""
