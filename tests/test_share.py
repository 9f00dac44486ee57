"""The Share bar (app/share.py): "Copy link" puts the page's URL, settings included, on the clipboard; "Embed"
shows and copies the iframe snippet for this page and these settings. Logic without a browser, then Chromium
under `panel serve app` with the real clipboard."""

from __future__ import annotations

import html.parser

import panel as pn
import pytest

from app import arena, share
from browser import PageWatch, chromium, panel_served, screenshot_on_failure


def _names(query: str) -> set[str]:
    """The Bokeh model names of the arena page built for ``query``."""
    view = arena.create_page(query)
    root = pn.panel(view).get_root()
    view.animator.stop()
    return {m.name for m in root.references() if getattr(m, "name", None)}


def test_the_share_bar_is_on_the_full_page_and_not_in_an_embed():
    assert {"copy_link_button", "embed_button", "share_box", "share_note"} <= _names("x=1")
    names = _names("embed=1")
    assert "arena_plot" in names and "copy_link_button" not in names


@pytest.mark.parametrize("static_site", [True, False])
def test_the_embed_callback_gets_the_pages_title_the_readme_style_and_embed_js_on_the_static_site(static_site):
    root = share.share_bar("Gradient Conflict Arena", static_site=static_site).get_root()
    (callback,) = root.select_one({"name": "embed_button"}).js_event_callbacks["button_click"]
    assert callback.args["title"] == "Gradient Conflict Arena (MTL Playground)"
    assert callback.args["style"] == "width:100%;max-width:800px;height:900px;border:0"  # the README's snippet
    assert callback.args["embed_script"] is static_site
    assert callback.args["box"] is root.select_one({"name": "share_box"})


@pytest.fixture(scope="module")
def page_in_chromium():
    with panel_served("app", "serve_share", "app") as base, chromium() as ctx:
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base.split("/app")[0])
        yield base, ctx


class _Iframe(html.parser.HTMLParser):
    def handle_starttag(self, tag, attrs):
        if tag == "iframe":
            self.attrs = dict(attrs)


@pytest.mark.browser
def test_copy_link_and_embed_put_this_pages_settings_on_the_clipboard(page_in_chromium):
    base, ctx = page_in_chromium
    page = ctx.new_page()
    watch = PageWatch()
    watch.attach(page)
    try:
        page.goto(f"{base}?page=arena&surface=quadratics&angle=150&x=1&y=2")
        page.get_by_role("button", name="Copy link").wait_for(timeout=45_000)
        page.get_by_role("button", name="Copy link").click()
        page.get_by_text("Link copied.").wait_for(timeout=10_000)
        link = page.evaluate("navigator.clipboard.readText()")
        assert link == page.url and "angle=150" in link and "surface=quadratics" in link

        page.get_by_role("button", name="Embed").click()
        page.get_by_text("Embed snippet copied.").wait_for(timeout=10_000)
        snippet = page.evaluate("navigator.clipboard.readText()")
        parser = _Iframe()
        parser.feed(snippet)
        src = parser.attrs["src"]
        assert src.startswith(base) and "embed=1" in src and "angle=150" in src and "page=arena" in src
        assert parser.attrs["title"] == "Gradient Conflict Arena (MTL Playground)"
        assert parser.attrs["style"] == share.IFRAME_STYLE
        assert "embed.js" not in snippet  # panel serve has no embed.js; the static site's snippet adds it
        # the snippet is also shown, to copy by hand
        shown = page.evaluate("() => Bokeh.documents[0].get_model_by_name('share_box').value")
        assert shown == snippet
        # and the embedded page it points to loads, without the bar
        page.goto(src)
        page.wait_for_function(
            "() => window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].get_model_by_name('arena_plot')",
            timeout=45_000,
        )
        assert page.evaluate("() => Bokeh.documents[0].get_model_by_name('copy_link_button')") is None
        assert watch.problems() == []
    except BaseException:
        screenshot_on_failure(page, "share")
        raise
    finally:
        page.close()
