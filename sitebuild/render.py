"""Render: each page run once in CPython at build time, as the browser would run it.

Contract: ``prerender`` returns the page's serialised Bokeh document (the preview shown while Pyodide loads, with
deterministic ids) and the BokehJS/Panel scripts it needs (CDN URLs; ``local_script`` maps them onto the site).
"""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import sys

from sitebuild.errors import BuildError
from sitebuild.pins import PANEL_CDN_ROOT, ROOT


def load_pages(app_dir: pathlib.Path):
    """PAGES of ``<app_dir>/pages.py`` (importing it needs no panel)."""
    if not (app_dir / "pages.py").exists():
        raise BuildError(
            f"{app_dir / 'pages.py'} not found: the build makes one page per PAGES entry of the app's "
            f"pages.py (slug, title, module, summary). Write the app first, or point --app-dir at "
            f"another app package."
        )
    if str(app_dir.parent) not in sys.path:
        sys.path.insert(0, str(app_dir.parent))
    if str(ROOT) not in sys.path:
        sys.path.insert(1, str(ROOT))
    return importlib.import_module(f"{app_dir.name}.pages").PAGES


def import_panel():
    """Import panel with its CSS URLs pointing into the site (Panel reads PANEL_CDN_ROOT once, at import)."""
    if "panel" not in sys.modules:
        os.environ["PANEL_CDN_ROOT"] = "./" + PANEL_CDN_ROOT
    import panel
    from panel.io.resources import CDN_DIST

    if not CDN_DIST.startswith("./" + PANEL_CDN_ROOT):
        raise BuildError(
            f"panel was imported before the build could set PANEL_CDN_ROOT (CDN_DIST={CDN_DIST}): "
            f"run build.py as a script, or call build() before importing panel."
        )
    return panel


def prerender(page, embed: bool, app_dir: pathlib.Path) -> tuple[dict, list[str]]:
    """Run the page once in CPython as the browser would; return its serialised document and its JS bundles."""
    pn = import_panel()
    from bokeh.document import Document
    from bokeh.embed.util import standalone_docs_json_and_render_items
    from bokeh.settings import settings as bk_settings
    from panel.io.document import MockSessionContext
    from panel.io.resources import Resources, bundle_resources
    from panel.io.state import set_curdoc, state
    from panel.util import edit_readonly

    common = sys.modules.get(f"{app_dir.name}.common")
    if common is None:
        try:
            common = importlib.import_module(f"{app_dir.name}.common")
        except ImportError:
            common = None
    if common is not None and hasattr(common, "IN_BROWSER"):
        common.IN_BROWSER = True  # links in the preview must be the static site's (<slug>.html)
    bk_settings.simple_ids.set_value(True)
    doc = Document()
    doc._session_context = lambda: MockSessionContext(document=doc)
    with set_curdoc(doc):
        with edit_readonly(state.location):
            state.location.param.update(search="?embed=1" if embed else "", pathname=f"/{page.slug}.html")
        module = importlib.import_module(page.module)
        pn.panel(module.create_page()).server_doc(doc, title=page.title, location=True)
        state._on_load(None)
        docs_json, render_items = standalone_docs_json_and_render_items(doc.roots, suppress_callback_warning=True)
        bundle_js, _ = bundle_resources(doc.roots, Resources(mode="cdn"))
    for cb in list(state._periodic.get(doc, [])):  # live training must not keep running in the build process
        cb.stop()
    # deterministic ids for the document and its root elements (bokeh draws random ones)
    items = [item.to_json() for item in render_items]
    (old_docid,) = docs_json.keys()
    docid = f"mtl-{page.slug}{'-embed' if embed else ''}"
    docs_json = {docid: docs_json[old_docid]}
    items[0]["docid"] = docid
    items[0]["roots"] = {rid: f"{docid}-root{i}" for i, rid in enumerate(items[0]["roots"])}
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', bundle_js)
    # Panel lists BokehJS's WebGL bundle for every page; BokehJS only asks for it to draw a plot whose output_backend
    # is "webgl": a page with none of those does without it (0.06 MB before the page is live)
    from bokeh.models import Plot

    if not any(isinstance(m, Plot) and m.output_backend == "webgl" for m in doc.models):
        scripts = [s for s in scripts if not re.search(r"/bokeh-gl-[^/]*\.min\.js$", s)]
    return {"docs_json": docs_json, "render_items": items}, scripts


def local_script(url: str) -> str:
    """Map a BokehJS CDN URL (or Panel's local dist URL) onto the site's own copy."""
    m = re.fullmatch(r"https://cdn\.bokeh\.org/bokeh/(?:release|dev)/(bokeh(?:-[a-z]+)?)-[0-9][^/]*?\.min\.js", url)
    if m:
        return f"_static/bokeh/{m.group(1)}.min.js"
    if url.startswith("./" + PANEL_CDN_ROOT):
        return url[2:]
    raise BuildError(f"a page needs the script {url}, which the build cannot serve locally: extend local_script().")
