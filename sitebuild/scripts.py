"""Scripts: the site's JavaScript, bundled from the hand-written modules in ``web/``.

A browser file is several modules, one concern each (web/shared/ for what the worker, the page and the node
snapshot tool all use), concatenated in order inside one function scope: one request per script, no module
loader. The worker also carries the Python it runs (web/python/*.py) as the ``PY`` object of strings.
Contract: ``write_scripts`` writes ``mtl/worker.js``, ``mtl/loader.js``, ``mtl/site.css``, ``embed.js`` and, given
the verified zstddec module, ``mtl/zstddec.js`` (its classic-script form); the same sources give the same bytes.
"""

from __future__ import annotations

import json
import pathlib
import shutil

from sitebuild.errors import BuildError
from sitebuild.pins import WEB

SHARED = ("shared/relay.js", "shared/download.js")
WORKER = (
    *SHARED,
    "shared/pack.js",
    "shared/dlopen.js",
    "shared/tabledigest.js",
    "shared/heapdelta.js",
    "worker/messages.js",
    "worker/identity.js",
    "worker/docsync.js",
    "worker/fetch.js",
    "worker/zstd.js",
    "worker/heapdelta.js",
    "worker/ondemand.js",
    "worker/scratch.js",
    "worker/restore.js",
    "worker/main.js",
)
WORKER_PYTHON = ("prelude", "boot", "docsync", "link_docs", "apply_patch", "play")
LOADER = (*SHARED, "loader/page.js", "loader/preview.js", "loader/docsync.js", "loader/main.js")


def bundle(parts: tuple[str, ...], python: tuple[str, ...] = ()) -> str:
    """One script: ``parts`` (paths under web/) in order, in one strict-mode function scope, after ``PY``."""
    head = [
        "// MTL Playground: bundled by sitebuild/scripts.py from sitebuild/web/ (edit those files, not this one)",
        "(function () {",
        '"use strict";',
    ]
    if python:
        sources = {name: (WEB / "python" / f"{name}.py").read_text() for name in python}
        head.append(f"const PY = {json.dumps(sources, indent=1, sort_keys=True)};")
    body = [f"// ---- {part}\n{(WEB / part).read_text().rstrip()}" for part in parts]
    return "\n".join(head + body + ["})();", ""])


def classic_script(module_text: str, exported: str) -> str:
    """An ES module whose only module syntax is its last line ``export { X };`` as a classic script (a worker's
    importScripts) that sets ``self.X``. Stops the build when the line is not there exactly once."""
    line = f"export {{ {exported} }};"
    if module_text.count(line) != 1:
        raise BuildError(
            f"the zstd decoder's module does not end with `{line}` exactly once: was its version "
            f"changed? Re-check ZSTDDEC in sitebuild/pins.py."
        )
    return module_text.replace(line, f"self.{exported} = {exported};")


def write_scripts(site: pathlib.Path, zstddec: pathlib.Path | None = None) -> list[str]:
    (site / "mtl").mkdir(exist_ok=True)
    if zstddec is not None:
        (site / "mtl" / "zstddec.js").write_text(classic_script(zstddec.read_text(), "ZSTDDecoder"))
    (site / "mtl" / "worker.js").write_text(bundle(WORKER, WORKER_PYTHON))
    (site / "mtl" / "loader.js").write_text(bundle(LOADER))
    shutil.copyfile(WEB / "site.css", site / "mtl" / "site.css")
    shutil.copyfile(WEB / "embed.js", site / "embed.js")
    return ["mtl/worker.js", "mtl/loader.js", "mtl/site.css", "embed.js"]
