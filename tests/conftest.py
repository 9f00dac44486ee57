import os
import pathlib
import sys

import pytest

# tests import the shared harness as `browser` and the project packages from the checkout
ROOT = pathlib.Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> pathlib.Path:
    """The built static site, one per session for every static test module: $MTL_STATIC_SITE when set (a site you
    built yourself), static/ when it is a fresh default build, else a new build in a temp dir."""
    from browser import run_build
    from sitebuild.site import is_fresh

    if os.environ.get("MTL_STATIC_SITE"):
        return pathlib.Path(os.environ["MTL_STATIC_SITE"])
    static = ROOT / "static"
    if os.environ.get("MTL_STATIC_REBUILD") != "1" and is_fresh(static):
        return static
    out = tmp_path_factory.mktemp("site") / "static"
    res = run_build(out)
    assert res.returncode == 0, f"build.py failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return out


@pytest.fixture(scope="session")
def url(site):
    """The built site served on 127.0.0.1 (base URL, no trailing slash)."""
    from browser import serve_dir, stop_process

    proc, base = serve_dir(site, "static_server")
    try:
        yield base
    finally:
        stop_process(proc)
