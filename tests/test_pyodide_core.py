"""mtl_core runs unchanged in the real Pyodide 0.27.7 runtime (wasm32, numpy 2.0.2), under node.

The runtime files are the verified ones sitebuild.sources fetches (npm pyodide@0.27.7 + the lock's numpy wheel, or the
shared fallback copy). 32-bit WebAssembly is where int64-vs-intp mistakes show up (np.bincount, indexing), so this
catches what CPython cannot.
"""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
HERE = pathlib.Path(__file__).resolve().parent / "pyodide"


@pytest.fixture(scope="module")
def pyodide_index(tmp_path_factory):
    import json
    import sys

    sys.path.insert(0, str(ROOT))
    from sitebuild.pins import CACHE
    from sitebuild.sources import fetch_core, fetch_lock_wheels

    if shutil.which("node") is None:
        pytest.fail("node is required to run Pyodide outside a browser (it ships with these machines)")
    core = fetch_core(CACHE)
    lock = json.loads(core["pyodide-lock.json"].read_text())
    wheel = lock["packages"]["numpy"]["file_name"]
    wheels = fetch_lock_wheels(CACHE, [wheel], lock)
    index = tmp_path_factory.mktemp("pyodide-index")
    for name, path in {**core, **wheels}.items():
        shutil.copyfile(path, index / name)
    return index


def test_mtl_core_runs_in_pyodide(pyodide_index):
    res = subprocess.run(
        ["node", str(HERE / "run.js"), str(pyodide_index), str(ROOT), str(HERE / "smoke.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "PYODIDE-OK" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
