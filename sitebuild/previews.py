"""Preview pictures: each page's build-time preview photographed in headless Chromium.

The interactive preview needs BokehJS (2.5 MB of script) parsed and run before anything is drawn: over a second on
2 cores. A picture of it needs nothing: the build photographs each page's preview at phone, tablet and desktop
widths (iframe widths for ?embed=1), and the page shows one while BokehJS and Pyodide load. A window gets the
widest picture not wider than itself, at its natural size (same text size as the live page, a little narrower at
worst); narrower windows than the first get it scaled down. 1440 >= the pages' max_width 1400 + margins: wider
windows show the same layout.
"""

from __future__ import annotations

import io
import os
import pathlib
import tempfile

from sitebuild.errors import BuildError, log
from sitebuild.serve import background_server

PREVIEW_WIDTHS = {"plain": (420, 800, 1024, 1280, 1440), "embed": (420, 640, 800)}
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def headless_chromium(pw, profile: str, executable: str, args, **options):
    """A persistent headless Chromium context on Debian's binary (Playwright's own download is not at hand here);
    the previews and the browser tests both launch it so."""
    return pw.chromium.launch_persistent_context(
        profile, executable_path=executable, headless=True, args=list(args), **options
    )


CARD = {"width": 640, "height": 400}  # the landing page's card picture: the top of the embedded page, half size


def card_path(slug: str) -> str:
    """Site-relative path of a page's card picture (written by :func:`photograph_previews`)."""
    return f"previews/{slug}-card.jpg"


def _shoot_card(browser, base: str, site: pathlib.Path, slug: str) -> None:
    """The landing page's picture of a page: the top of its embedded preview laid out at twice the card's width
    (plots beside the controls, as on a laptop), scaled down to the card (~20 KB)."""
    from PIL import Image  # bokeh's own dependency; build time only

    wide = {"width": 2 * CARD["width"], "height": 2 * CARD["height"]}
    page = browser.new_page()
    page.set_viewport_size({"width": wide["width"], "height": 900})
    page.goto(f"{base}/{slug}.html?embed=1")
    page.wait_for_function("() => window.mtlPlayground && window.mtlPlayground.previewShownAt", timeout=60_000)
    page.add_style_tag(content="#mtl-loading { display: none !important; } #mtl-preview { opacity: 1 !important; }")
    page.wait_for_timeout(250)
    shot = page.screenshot(clip={"x": 0, "y": 0, **wide}, type="png", animations="disabled")
    page.close()
    small = Image.open(io.BytesIO(shot)).convert("RGB").resize((CARD["width"], CARD["height"]), Image.LANCZOS)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=70, optimize=True)
    (site / card_path(slug)).write_bytes(out.getvalue())


def _shoot(browser, base: str, site: pathlib.Path, slug: str, variant: str, width: int) -> tuple[int, int, str]:
    """One picture of one page's preview at one width: (width, height, its site-relative URL)."""
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{base}/{slug}.html" + ("?embed=1" if variant == "embed" else ""))
    try:
        page.wait_for_function("() => window.mtlPlayground && window.mtlPlayground.previewShownAt", timeout=60_000)
    except Exception as exc:
        raise BuildError(
            f"the preview of {slug} ({variant}, {width} px) did not draw in Chromium: {exc}. "
            f"Rerun with --no-preview-images to skip the pictures."
        ) from exc
    page.add_style_tag(content="#mtl-loading { display: none !important; } #mtl-preview { opacity: 1 !important; }")
    page.wait_for_timeout(250)  # two frames for the last canvas paint
    data = page.screenshot(full_page=True, type="jpeg", quality=70, animations="disabled")
    height = page.evaluate("document.documentElement.scrollHeight")
    rel = f"previews/{slug}{'.embed' if variant == 'embed' else ''}-{width}.jpg"
    (site / rel).write_bytes(data)
    page.close()
    return width, height, rel


def photograph_previews(site: pathlib.Path, pages) -> dict:
    """{slug: {"plain"|"embed": [(width, height, "previews/<file>.jpg"), ...]}}; {} without a browser here.

    JPEG files are written into ``site/previews``. Needs the pip ``playwright`` package and a Chromium
    (``MTL_CHROMIUM``, default /usr/bin/chromium); without them the site keeps the interactive preview only.
    """
    chromium = os.environ.get("MTL_CHROMIUM", "/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        log(
            "no preview pictures: the playwright package is not installed (`bash scripts/setup.sh test` installs it);"
            " pages still show their interactive preview, a little later"
        )
        return {}
    if not os.path.exists(chromium):
        log(
            f"no preview pictures: no Chromium at {chromium} (apt-get install chromium, or set MTL_CHROMIUM); pages "
            f"still show their interactive preview, a little later"
        )
        return {}
    log("photographing the previews in headless Chromium")
    shots: dict = {}
    with background_server(site) as base, sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = headless_chromium(
            pw,
            profile,
            chromium,
            CHROMIUM_FLAGS,
            viewport={"width": 1420, "height": 900},
            device_scale_factor=1,
            service_workers="block",
        )
        browser.add_init_script("window.__mtlPreviewOnly = true;")
        for p in pages:
            for variant, widths in PREVIEW_WIDTHS.items():
                shots.setdefault(p.slug, {})[variant] = [
                    _shoot(browser, base, site, p.slug, variant, w) for w in widths
                ]
            _shoot_card(browser, base, site, p.slug)
        browser.close()
    return shots
