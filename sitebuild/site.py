"""Site: the HTML pages, the landing page, the service worker's keep-list, build-info and the swap-in.

Contract: the site is written into a staging directory beside ``out`` and renamed into place at the end
(``staged``), so a failed build never leaves half a site; a hand-written ``README.md`` of ``out`` is kept.
``is_fresh`` tells whether ``out`` holds a default build of the current sources (tests reuse it).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import pathlib
import shutil
import string

from sitebuild.hashing import sha256, versioned
from sitebuild.previews import CARD, card_path
from sitebuild.pins import BOKEH_VERSION, PANEL_CDN_ROOT, PANEL_VERSION, PYODIDE_VERSION, ROOT, WEB


def render_template(name: str, **values) -> str:
    return string.Template((WEB / name).read_text()).substitute(values)


def html_escape(s: str) -> str:
    return html.escape(s, quote=True)


def write_page(site: pathlib.Path, page, config: dict, scripts: list[str]) -> None:
    """``<slug>.html``: the loader, the page's BokehJS bundles (deferred: the HTML and its preview picture are shown
    while they download and run) and the page's build-time settings."""
    tags = "\n".join(f'<script defer src="{versioned(site, s)}"></script>' for s in scripts)
    text = render_template(
        "page.html",
        title=html_escape(page.title),
        summary=html_escape(page.summary),
        config=json.dumps(config, sort_keys=True).replace("</", "<\\/"),
        bokeh_js=tags,
        loader_js=versioned(site, "mtl/loader.js"),
        site_css=versioned(site, "mtl/site.css"),
    )
    (site / f"{page.slug}.html").write_text(text)


def build_id_of(site: pathlib.Path) -> str:
    """Hash of every file written so far (index.html shows it; the service worker keys its cache on it)."""
    digest = hashlib.sha256()
    for f in sorted(f for f in site.rglob("*") if f.is_file()):
        digest.update(f.relative_to(site).as_posix().encode() + b"\0" + sha256(f).encode())
    return digest.hexdigest()[:16]


def index_card(site: pathlib.Path, n: int, page) -> str:
    """One page's card on the landing page: its number in the suggested order, picture (when the build took one),
    title and what you will see there."""
    card = site / card_path(page.slug)
    picture = (
        f'<img src="{versioned(site, card_path(page.slug))}" width="{CARD["width"]}" height="{CARD["height"]}" '
        f'alt="Preview of the page {html_escape(page.title)}" loading="lazy">'
        if card.exists()
        else ""
    )
    return (
        f'<li><a href="{page.slug}.html">{picture}<span class="n">{n}</span> <b>{html_escape(page.title)}</b></a>'
        f"<p>{html_escape(page.summary)}</p></li>"
    )


def write_index(site: pathlib.Path, pages, build_id: str) -> None:
    items = "\n".join(index_card(site, n, p) for n, p in enumerate(pages, start=1))
    (site / "index.html").write_text(
        render_template(
            "index.html",
            items=items,
            build_id=build_id,
            pyodide_version=PYODIDE_VERSION,
            panel_version=PANEL_VERSION,
            bokeh_version=BOKEH_VERSION,
            site_css=versioned(site, "mtl/site.css"),
        )
    )


def keep_list(site: pathlib.Path, addressed: set[str]) -> list[str]:
    """The URLs this build uses (the service worker drops cached files of older builds): the content-addressed
    files, Panel's files (asked for by plain URL: its version is in the path) and the versioned scripts. Previews
    are left out: a visit needs one picture at most, and the service worker caches what is fetched."""
    keep = set(addressed)
    for f in site.rglob("*"):
        rel = f.relative_to(site).as_posix()
        if not f.is_file() or rel in ("sw.js", "index.html", "build-info.json"):
            continue
        if rel.startswith(PANEL_CDN_ROOT):
            keep.add(rel)
        elif rel.startswith(("mtl/", "_static/")):
            keep.add(versioned(site, rel))
    return sorted(keep)


def write_service_worker(site: pathlib.Path, build_id: str, keep: list[str]) -> None:
    (site / "sw.js").write_text(
        (WEB / "sw.js").read_text().replace("__BUILD_ID__", build_id).replace("__KEEP__", json.dumps(keep, indent=0))
    )


@contextlib.contextmanager
def staged(out: pathlib.Path):
    """A fresh directory to write the site into; on success it replaces ``out`` (keeping out/README.md)."""
    stage = out.parent / f".{out.name}.building"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    yield stage
    readme = out / "README.md"
    kept = readme.read_bytes() if readme.exists() else None
    if out.exists():
        shutil.rmtree(out)
    stage.rename(out)
    if kept is not None:
        (out / "README.md").write_bytes(kept)


def input_hash(app_dir: pathlib.Path, options: dict) -> str:
    """Hash of everything a build depends on (sources, templates, options): tells tests whether static/ is fresh."""
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    files = [
        ROOT / "build.py",
        *sorted((ROOT / "sitebuild").rglob("*")),
        *sorted((ROOT / "mtl_core").rglob("*.py")),
        *sorted(app_dir.rglob("*.py")),
    ]
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def default_options(app_dir: pathlib.Path) -> dict:
    from sitebuild.render import load_pages

    return {
        "pages": [p.slug for p in load_pages(app_dir.resolve())],
        "cdn": False,
        "preview": True,
        "pyc": True,
        "preview_images": True,
        "snapshot": True,
    }


def is_fresh(out: pathlib.Path, app_dir: pathlib.Path = ROOT / "app") -> bool:
    """True when ``out`` holds a default build of the current sources (tests reuse it instead of rebuilding)."""
    try:
        info = json.loads((out / "build-info.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("input_hash") == input_hash(app_dir.resolve(), default_options(app_dir))
