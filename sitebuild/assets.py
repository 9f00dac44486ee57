"""Assets: the BokehJS bundles the pages use and Panel's JS/CSS, copied from the verified wheels (so the JS
matches the Python exactly). Contract: every script a rendered page needs exists in the site afterwards."""

from __future__ import annotations

import pathlib
import re
import zipfile

from sitebuild.errors import BuildError
from sitebuild.pins import PANEL_CDN_ROOT, PANEL_VERSION

# Edits to the BokehJS the site ships, as sitebuild/patches.py's to the Python: each text must be there exactly once.
JS_PATCHES = {
    # Every read of a visual property (a line's colour, a tick label's font...) asks the CSS cascade for a `--bk-*`
    # override: getComputedStyle on each paint, which makes Chromium recompute styles while four figures redraw per
    # tick (bokeh/bokeh#15286). Nothing in the site defines a `--bk-*` variable (Panel's CSS neither) and a host's
    # CSS cannot reach into the iframe, so the answer is always "". Measured on Shared vs Separate training with
    # the CPU slowed 4x: getPropertyValue was 7-9 % of the page thread's time, 0 after.
    "bokeh.min.js": [
        (
            "_get_css_value(t){return getComputedStyle(this.obj.el).getPropertyValue(`${this.css_prefix}${t}`)}",
            '_get_css_value(t){return""}',
        )
    ],
}


def patch_js(name: str, text: str) -> str:
    """``text`` of the bundle ``name`` with its :data:`JS_PATCHES` applied (a missing anchor stops the build)."""
    for old, new in JS_PATCHES.get(name, ()):
        if text.count(old) != 1:
            raise BuildError(
                f"the build cannot apply its edit to {name} (the text to replace is not there exactly once): was "
                f"BokehJS's version changed? Re-check JS_PATCHES in sitebuild/assets.py."
            )
        text = text.replace(old, new)
    return text


def copy_js_assets(out: pathlib.Path, wheels: dict[str, pathlib.Path], bundles: set[str]) -> None:
    """BokehJS bundles the pages use and Panel's JS/CSS, from the verified wheels (JS matches the Python exactly)."""
    with zipfile.ZipFile(wheels["bokeh"]) as zf:
        for name in zf.namelist():
            m = re.fullmatch(r"bokeh/server/static/js/(bokeh(?:-[a-z]+)?\.min\.js)", name)
            if m and f"_static/bokeh/{m.group(1)}" in bundles:
                target = out / "_static" / "bokeh" / m.group(1)
                target.parent.mkdir(parents=True, exist_ok=True)
                data = zf.read(name)
                if m.group(1) in JS_PATCHES:
                    data = patch_js(m.group(1), data.decode()).encode()
                target.write_bytes(data)
    prefix = f"{PANEL_CDN_ROOT}{PANEL_VERSION}/dist/"
    keep = ("panel.min.js", "css/", "assets/", "bundled/reactiveesm/", "bundled/theme/")
    with zipfile.ZipFile(wheels["panel"]) as zf:
        for name in zf.namelist():
            rel = name[len("panel/dist/") :]
            if name.startswith("panel/dist/") and rel.startswith(keep) and not name.endswith("/"):
                target = out / prefix / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
