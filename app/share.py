"""Share a page: "Copy link" (the page's URL with every setting in it) and "Embed" (the iframe snippet for this
page and these settings, the README's snippet filled in).

Both run in the reader's browser (Bokeh callbacks, no round trip to Python): the URL they read is the page's own
``window.location``, which the page keeps in step with its settings (common.bind_url), under ``panel serve`` and on
the static site alike. The clipboard needs a secure context (https or localhost); where it is refused, the link or
the snippet is shown selected in a text box to copy by hand.
"""

from __future__ import annotations

import panel as pn

from app.settings import bokeh_name

# the README's iframe style: full width up to 800 px; embed.js (static site) resizes it to its content
IFRAME_STYLE = "width:100%;max-width:800px;height:900px;border:0"

# shared by both buttons: put ``text`` on the clipboard, else show it selected in ``box`` for a manual copy
_COPY_JS = """
function mtlCopy(text, box, note, what) {
  const manual = () => {
    box.value = text; box.visible = true;
    note.text = `Select and copy the ${what} below (this browser did not allow the clipboard).`;
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(() => { note.text = `${what[0].toUpperCase() + what.slice(1)} copied.`; },
                                             manual);
  } else {
    manual();
  }
}
"""

LINK_JS = (
    _COPY_JS
    + """
box.visible = false;
mtlCopy(window.location.href, box, note, "link");
"""
)

EMBED_JS = (
    _COPY_JS
    + """
const url = new URL(window.location.href);
url.searchParams.set("embed", "1");
const attr = (s) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
let snippet = `<iframe src="${attr(url.href)}" title="${attr(title)}"\\n`;
snippet += `        style="${style}" loading="lazy"></iframe>`;
if (embed_script) {
  snippet += `\\n<script src="${attr(new URL("embed.js", url).href)}" async></script>`;
}
box.value = snippet;
box.visible = true;
mtlCopy(snippet, box, note, "embed snippet");
"""
)


def share_bar(title: str, *, static_site: bool) -> pn.Row:
    """The "Copy link" and "Embed" buttons with their note and text box (named ``copy_link_button``,
    ``embed_button``, ``share_note``, ``share_box`` in Bokeh). ``title`` is the page's; ``static_site`` adds
    the site's ``embed.js`` (it resizes iframes) to the snippet."""
    link = bokeh_name(pn.widgets.Button(label="Copy link", width=110, margin=(2, 4)), "copy_link_button")
    embed = bokeh_name(pn.widgets.Button(label="Embed", width=100, margin=(2, 4)), "embed_button")
    note = bokeh_name(pn.pane.HTML("", margin=(6, 4), styles={"font-size": "0.85em"}), "share_note")
    box = bokeh_name(
        pn.widgets.TextAreaInput(value="", visible=False, rows=3, sizing_mode="stretch_width", margin=(2, 4)),
        "share_box",
    )
    link.js_on_click(args={"box": box, "note": note}, code=LINK_JS)
    embed.js_on_click(
        args={
            "box": box,
            "note": note,
            "title": f"{title} (MTL Playground)",
            "style": IFRAME_STYLE,
            "embed_script": static_site,
        },
        code=EMBED_JS,
    )
    return pn.Column(pn.Row(link, embed, note, sizing_mode="stretch_width"), box, sizing_mode="stretch_width")
