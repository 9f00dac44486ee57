"""Precompiled modules: the shipped zips (wheels, the stdlib) with every .py as a CPython 3.12 .pyc.

Contract: ``precompile`` returns a zip with the same members but each module compiled (``pyc_helper.py``, run by
a CPython 3.12 found here); the result is cached by the input's hash and the helper's own source.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pathlib
import shutil

from sitebuild.errors import BuildError, run
from sitebuild.hashing import sha256

HELPER = pathlib.Path(__file__).with_name("pyc_helper.py")
ZIP_WRITER = pathlib.Path(__file__).with_name("wheels_zip.py")


def find_python312() -> str | None:
    """A CPython 3.12 interpreter: $MTL_PY312, python3.12 on PATH, or a pyenv install."""
    candidates = [
        os.environ.get("MTL_PY312"),
        shutil.which("python3.12"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")), reverse=True),
        *sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12"), reverse=True),
    ]
    for c in candidates:
        if c and os.path.exists(c):
            res = run([c, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"])
            if res.returncode == 0 and res.stdout.strip() == "True":
                return c
    return None


def precompile(py312: str, src: pathlib.Path, prefix: str, cache: pathlib.Path, optimize: int = 0) -> pathlib.Path:
    """``src`` (a wheel or the stdlib zip) with its modules as .pyc; cached by content. ``optimize=2`` compiles
    without docstrings and asserts (``python -OO``)."""
    tool = HELPER.read_text() + ZIP_WRITER.read_text()
    key = hashlib.sha256((sha256(src) + prefix + tool + str(optimize)).encode()).hexdigest()[:20]
    dst = cache / "pyc" / key / src.name
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        res = run([py312, str(HELPER), str(src), str(tmp), prefix, str(optimize)])
        if res.returncode != 0:
            raise BuildError(
                f"precompiling {src.name} with {py312} failed:\n{res.stderr[-1500:]}\n"
                f"Rerun with --no-pyc to ship sources."
            )
        tmp.replace(dst)
    return dst
