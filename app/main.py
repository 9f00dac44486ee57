"""`panel serve app` entry point: the landing page, or the page named by ?page=<slug>."""

import base64
import importlib
import pathlib
import sys
import traceback

# `panel serve app` runs this file as a script with app/, not the checkout, on sys.path: make the checkout
# importable as packages `app` and `mtl_core`.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import panel as pn  # noqa: E402

from app.common import CSS, a11y_when_shown, page_href, page_layout, page_query, render_notices  # noqa: E402
from app.pages import BY_SLUG, PAGES  # noqa: E402
from app.settings import escape  # noqa: E402


# the built site's card pictures (python build.py), shown on the landing page when they exist
BUILT_PREVIEWS = pathlib.Path(__file__).resolve().parent.parent / "static" / "previews"
CARD_CSS = """
.mtl-cards {list-style:none; padding:0; display:grid; gap:1em;
            grid-template-columns:repeat(auto-fill, minmax(15em, 1fr))}
.mtl-cards li {border:1px solid #ddd; border-radius:6px; padding:0 0 0.6em; overflow:hidden}
.mtl-cards a {display:block; color:#2a5db0; text-decoration:none; font-size:1.1em; padding:0 0.6em}
.mtl-cards a:focus-visible {outline:3px solid #2a5db0; outline-offset:2px}
.mtl-cards img {display:block; width:calc(100% + 1.2em); height:auto; margin:0 -0.6em 0.5em}
.mtl-cards p {margin:0.3em 0.6em 0}
"""


def card_picture(slug: str, title: str) -> str:
    """The page's card picture as an inline image when the site was built here, else nothing."""
    path = BUILT_PREVIEWS / f"{slug}-card.jpg"
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    alt = f"Preview of the page {escape(title)}"
    return f'<img src="data:image/jpeg;base64,{data}" width="640" height="400" alt="{alt}">'


def landing(notice: str | None = None, *, error: bool = False):
    cards = "".join(
        f'<li><a href="{page_href(p.slug)}">{card_picture(p.slug, p.title)}<b>{n}. {escape(p.title)}</b></a>'
        f"<p>{escape(p.summary)}</p></li>"
        for n, p in enumerate(PAGES, start=1)
    )
    intro = pn.pane.HTML(
        "<h1>MTL Playground</h1>"
        "<p>Multi-task learning trains one network on several jobs at once. These pages let you poke at it: every "
        "plot is a real NumPy network training as you watch. New here? The numbers are a suggested order for a "
        "first visit; every page also works alone, and every setting is in its link.</p>"
        f'<ul class="mtl-cards">{cards}</ul>',
        sizing_mode="stretch_width",
        stylesheets=[CARD_CSS],
    )
    parts = [intro]
    a11y_when_shown()  # the focus outline every page has, on the nav and the cards too
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
