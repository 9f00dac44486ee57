"""Wheels: the shipped wheels normalised (``repack``) and a wheel of this checkout (``build_app_wheel``).

Contract: every zip written here is deterministic (sorted members, fixed timestamps and permissions), so the same
inputs give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import zipfile

from sitebuild.hashing import sha256
from sitebuild.patches import DROP, PATCHES, patch_member
from sitebuild.pins import ROOT
from sitebuild.wheels_zip import write_zip


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
                    lines = [
                        (ln.split(",")[0] + ",," if ln.split(",")[0] in edited else ln)
                        for ln in data.decode().splitlines()
                        if ln.split(",")[0] in keep
                    ]
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
    members.append(
        (
            f"{dist_info}/METADATA",
            b"Metadata-Version: 2.1\nName: mtl-playground\nVersion: 0.1.0\n"
            b"Summary: mtl_core + the Panel app, for the static site\n",
        )
    )
    members.append(
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: mtl-build\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    )
    members.append((f"{dist_info}/top_level.txt", f"mtl_core\n{app_dir.name}\n".encode()))
    record = "".join(f"{n},,\n" for n, _ in members) + f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode()))
    write_zip(dst, members)
