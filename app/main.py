"""`panel serve app` entry point: the landing page, or the page named by ?page=<slug>."""

import importlib
import pathlib
import sys
import traceback

# `panel serve app` runs this file as a script with app/, not the checkout, on sys.path: make the checkout
# importable as packages `app` and `mtl_core`.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import panel as pn  # noqa: E402

from app.common import CSS, page_href, page_layout, page_query, render_notices  # noqa: E402
from app.pages import BY_SLUG, PAGES  # noqa: E402
from app.settings import escape  # noqa: E402


def landing(notice: str | None = None, *, error: bool = False):
    cards = "".join(
        f'<li><a href="{page_href(p.slug)}"><b>{escape(p.title)}</b></a> — {escape(p.summary)}</li>' for p in PAGES
    )
    intro = pn.pane.HTML(
        "<h1>MTL Playground</h1>"
        "<p>Multi-task learning trains one network on several jobs at once. These pages let you poke at it: every "
        "plot is a real NumPy network training as you watch.</p>"
        f"<ul>{cards}</ul>",
        sizing_mode="stretch_width",
    )
    parts = [intro]
    if notice:
        parts.insert(
            0, pn.pane.HTML(render_notices([notice[:400]], error=error), sizing_mode="stretch_width", stylesheets=[CSS])
        )
    return page_layout(None, *parts)


def create_app():
    slug = page_query().get("page", "")
    if not slug:
        return landing()
    if slug not in BY_SLUG:
        return landing(f"There is no page called '{slug[:40]}'. Pick one below.")
    try:
        module = importlib.import_module(BY_SLUG[slug].module)
        return module.create_page()
    except Exception as exc:  # noqa: BLE001 - one broken page must not blank the whole app
        traceback.print_exc()  # the full story goes to the server log
        return landing(
            f"The page '{BY_SLUG[slug].title}' failed to load ({type(exc).__name__}: {exc}). "
            "The other pages still work.",
            error=True,
        )


create_app().servable(title="MTL Playground")
