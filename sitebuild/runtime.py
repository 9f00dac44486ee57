"""Runtime: the Pyodide files the site ships (or, with --cdn, the CDN URLs it uses instead).

Contract: ``stage_runtime`` copies the verified runtime into ``pyodide/<version>-<hash>/`` (content-addressed) and
returns a :class:`Runtime`: that folder, the compiled Pyodide wheels that go into the pack, the URLs the worker
prefetches, and the bytes a cold visit downloads for them. Pyodide's loadPackage is not used by a self-contained
site (the pack carries every package), so the site's lock lists none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import shutil

from sitebuild.hashing import sha256
from sitebuild.pins import PYODIDE_CDN, PYODIDE_VERSION, SITE_PACKAGES
from sitebuild.pyc import precompile
from sitebuild.wheels_zip import write_zip
from sitebuild.zstd import zstd_cached

SHIPPED = ("pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip")
# An empty zip: what a worker restored from the snapshot mounts as its standard library (web/python/prelude.py
# fetches the real one if a module is still imported after all). 22 bytes instead of 4 MB before the page is live.
STDLIB_STUB = "python_stdlib.stub.zip"
# The runtime's wasm zstd-compressed (2.44 MB against 3.16 MB as a host gzips it): a site with the zstd decoder (the
# snapshot's) streams it through that (web/worker/zstd.js decodedWasmResponse); the plain file stays for the others.
WASM_ZST = "pyodide.asm.wasm.zst"


@dataclasses.dataclass
class Runtime:
    dir: str | None  # site-relative folder, None with --cdn
    lock_wheels: list  # compiled Pyodide wheels (numpy & co.) that travel in the pack
    prefetch: list[str]  # URLs the worker starts downloading at once
    download_bytes: int  # what a cold visit downloads of these (the pack and snapshot come on top)
    wasm_zst: str | None = None  # site-relative URL of WASM_ZST, or None (no zstandard package, or --cdn)


def stage_runtime(
    stage: pathlib.Path,
    work: pathlib.Path,
    core: dict,
    lock: dict,
    lock_files: dict,
    py312: str | None,
    cdn: bool,
    cache: pathlib.Path,
) -> Runtime:
    if cdn:
        prefetch = [PYODIDE_CDN + n for n in ("python_stdlib.zip", "pyodide-lock.json", *lock_files)]
        nbytes = sum(core[n].stat().st_size for n in ("pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"))
        return Runtime(None, [], prefetch, nbytes + sum(p.stat().st_size for p in lock_files.values()))
    files = {name: core[name] for name in SHIPPED}
    # -OO, like the site's own wheels (sitebuild/pipeline.py): no docstrings or asserts in memory; the interpreter
    # runs with PYTHONOPTIMIZE=2 (PYTHON_ENV), so numpy does not attach its C functions' docstrings either
    if py312:
        stdlib = precompile(py312, core["python_stdlib.zip"], "/lib/python312.zip/", cache, optimize=2)
        files["python_stdlib.zip"] = stdlib
    lock_wheels = [
        precompile(py312, path, SITE_PACKAGES, cache, optimize=2) if py312 else path for path in lock_files.values()
    ]
    (work / "pyodide-lock.json").write_text(
        json.dumps({"info": lock["info"], "packages": {}}, indent=1, sort_keys=True)
    )
    files["pyodide-lock.json"] = work / "pyodide-lock.json"
    write_zip(work / STDLIB_STUB, [])
    files[STDLIB_STUB] = work / STDLIB_STUB
    wasm = core["pyodide.asm.wasm"]
    zst = zstd_cached(wasm.read_bytes, cache / "zstd" / f"{sha256(wasm)[:20]}.wasm.zst", "the Pyodide runtime's wasm")
    if zst:
        files[WASM_ZST] = zst
    digest = hashlib.sha256("".join(f"{n}:{sha256(p)}" for n, p in sorted(files.items())).encode()).hexdigest()[:12]
    rt_dir = f"pyodide/{PYODIDE_VERSION}-{digest}/"
    (stage / rt_dir).mkdir(parents=True)
    for name, path in files.items():
        shutil.copyfile(path, stage / rt_dir / name)
    # the wasm is left to Pyodide: streamed, it compiles while it downloads (and the code cache keeps it)
    prefetch = [rt_dir + n for n in ("python_stdlib.zip", "pyodide-lock.json")]
    nbytes = sum((stage / u).stat().st_size for u in prefetch + [rt_dir + "pyodide.asm.wasm"])
    return Runtime(rt_dir, lock_wheels, prefetch, nbytes, rt_dir + WASM_ZST if zst else None)
