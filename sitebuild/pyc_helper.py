"""Runs under CPython 3.12, never imported by the build:
``python3.12 pyc_helper.py <src zip> <dst zip> <prefix> [<optimize>]``.

Rewrites a zip with every .py compiled to a sourceless .pyc (Pyodide 0.27 is CPython 3.12.7; .pyc files are
specific to the minor version), deterministically. Importing a .pyc skips parsing and compiling in the browser,
which is most of Python's import time there. ``prefix`` is where the zip's files live in the browser (tracebacks).
"""

import importlib._bootstrap_external as be
import sys
import zipfile

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from wheels_zip import write_zip  # noqa: E402 - the one deterministic zip writer, shared with the build

if sys.version_info[:2] != (3, 12):
    raise SystemExit(f"pyc_helper.py needs CPython 3.12, this is {sys.version}")


def compiled(src: str, prefix: str, optimize: int = 0) -> list[tuple[str, bytes]]:
    out = []
    with zipfile.ZipFile(src) as zin:
        for info in zin.infolist():
            if info.is_dir():
                continue
            name, data = info.filename, zin.read(info.filename)
            if name.endswith(".py") and ".dist-info/" not in name:
                try:
                    code = compile(data, prefix + name, "exec", dont_inherit=True, optimize=optimize)
                except SyntaxError:  # e.g. py2-only fixtures in tests folders: ship as they are
                    out.append((name, data))
                    continue
                out.append((name[:-3] + ".pyc", bytes(be._code_to_timestamp_pyc(code, 0, 0))))
            elif name.endswith(".dist-info/RECORD"):
                files = [line.split(",")[0] for line in data.decode().splitlines() if line]
                files = [(f[:-3] + ".pyc" if f.endswith(".py") and ".dist-info/" not in f else f) + ",," for f in files]
                out.append((name, ("\n".join(files) + "\n").encode()))
            else:
                out.append((name, data))
    return out


if __name__ == "__main__":
    src, dst, prefix = sys.argv[1:4]
    write_zip(dst, compiled(src, prefix, int(sys.argv[4]) if len(sys.argv) > 4 else 0))
