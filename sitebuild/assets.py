"""Assets: the BokehJS bundles the pages use and Panel's JS/CSS, copied from the verified wheels (so the JS
matches the Python exactly). Contract: every script a rendered page needs exists in the site afterwards."""

from __future__ import annotations

import pathlib
import re
import zipfile

from sitebuild.pins import PANEL_CDN_ROOT, PANEL_VERSION


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
            rel = name[len("panel/dist/") :]
            if name.startswith("panel/dist/") and rel.startswith(keep) and not name.endswith("/"):
                target = out / prefix / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
