"""THE pack format: every file of the site's Python packages in one gzip stream.

Pyodide installs a wheel by unzipping it with Python's zipfile inside the wasm runtime, one wheel at a time: for
the 17 pure wheels (~1,500 files) that took 0.4 s of every page load, after the runtime was up. Instead the build
writes every file of those wheels into one gzip-compressed pack; the page downloads and inflates it (natively,
DecompressionStream) while the worker boots the runtime, transfers it to the worker, and the worker writes the
files into site-packages with FS.writeFile (web/shared/pack.js reads it; snapshot.js uses the same reader).
numpy (a Pyodide wheel with compiled extension modules) comes in the same pack: the worker then loads its .so
files through Pyodide's own dynamic-library loader, which is what loadPackage does after unzipping.

Format, before gzip::

    uint32 little-endian n | n bytes of UTF-8 JSON [[relative path, size], ...] | the files' bytes in that order

Paths are relative to site-packages, never absolute and never with ``..``; dist-info folders come along, so
importlib.metadata still finds every package.
"""

from __future__ import annotations

import gzip
import json
import pathlib
import struct
import zipfile

from sitebuild.errors import BuildError


def write_pack(dst: pathlib.Path, wheels: list[pathlib.Path], only=None, names: bool = False) -> list[str]:
    """Write the pack of every file of ``wheels`` (those ``only(name)`` accepts, if given); return its compiled
    extension modules (.so), for the worker to load (every file it holds, with ``names``)."""
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
    dst.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))  # mtime=0: reproducible
    return [n for n, _ in files if names or n.endswith(".so")]


def read_pack(path: pathlib.Path) -> tuple[list, dict, int]:
    """(index [[path, size], ...], {path: bytes}, bytes left over after the indexed files): the reader's contract."""
    raw = gzip.decompress(path.read_bytes())
    (n,) = struct.unpack("<I", raw[:4])
    index = json.loads(raw[4 : 4 + n])
    files, offset = {}, 4 + n
    for name, size in index:
        files[name] = raw[offset : offset + size]
        offset += size
    return index, files, len(raw) - offset
