"""Share a page: "Copy link" (the page's URL with every setting in it) and "Embed" (the iframe snippet for this
page and these settings, the README's snippet filled in).

Both run in the reader's browser (Bokeh callbacks, no round trip to Python): the URL they read is the page's own
``window.location``, which the page keeps in step with its settings (common.bind_url), under ``panel serve`` and on
the static site alike. The clipboard needs a secure context (https or localhost); where it is refused, the link or
the snippet is shown selected in a text box to copy by hand.

Beside them, the Download buttons of a page with a state (:func:`download_buttons`): "Plots PNG" is drawn by
BokehJS in the browser (every figure on the page exported to a canvas and laid out as on screen: no server-side
export, no selenium); "History CSV" and "Weights .npz" are Panel FileDownload buttons whose click asks Python
(the Bokeh server, or the page's Pyodide worker on the static site) for the file (app/export.py); "Copy as Python"
shows the script that reproduces the run and copies it. A state with nothing to export yet says so in the note.
"""

from __future__ import annotations

import io
import traceback

import panel as pn

from app import export
from app.settings import bokeh_name, escape

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


# "Plots PNG": every figure the page shows, exported by BokehJS (what a figure's SaveTool does) and drawn onto one
# canvas where it sits on the screen, so the picture reads like the page; then saved through a download link
PNG_JS = """
const plots = [...Bokeh.index.query((v) => v.renderer_views instanceof Map && typeof v.export === "function")]
  .map((view) => ({view, box: view.el.getBoundingClientRect()}))
  .filter(({box}) => box.width > 0 && box.height > 0);
if (!plots.length) {
  note.text = "No plots to save on this page yet.";
} else {
  const ratio = window.devicePixelRatio || 1;
  const left = Math.min(...plots.map((p) => p.box.left)), top = Math.min(...plots.map((p) => p.box.top));
  const right = Math.max(...plots.map((p) => p.box.right)), bottom = Math.max(...plots.map((p) => p.box.bottom));
  const canvas = document.createElement("canvas");
  canvas.width = Math.ceil((right - left) * ratio);
  canvas.height = Math.ceil((bottom - top) * ratio);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (const {view, box} of plots) {
    const layer = view.export("png", true);  // the figure drawn at the screen's pixel ratio
    ctx.drawImage(layer.canvas, Math.round((box.left - left) * ratio), Math.round((box.top - top) * ratio));
  }
  canvas.toBlob((blob) => {
    if (!blob) { note.text = "This browser could not make the picture."; return; }
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    note.text = `Saved ${plots.length} plot${plots.length > 1 ? "s" : ""} as ${filename}.`;
  }, "image/png");
}
"""

# "Copy as Python": Python puts the script in the box; the browser copies it (or leaves it shown to copy by hand)
SCRIPT_JS = (
    _COPY_JS
    + """
if (source.value) {
  mtlCopy(source.value, source, note, "Python script");
}
"""
)

BUTTON = {"width": 118, "margin": (2, 4)}


def share_bar(title: str, *, static_site: bool, state=None, slug: str = "") -> pn.Column:
    """The "Copy link" and "Embed" buttons with their note and text box (named ``copy_link_button``,
    ``embed_button``, ``share_note``, ``share_box`` in Bokeh). ``title`` is the page's; ``static_site`` adds
    the site's ``embed.js`` (it resizes iframes) to the snippet. With a page ``state`` the Download buttons follow
    (:func:`download_buttons`; ``slug`` names the files)."""
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
    downloads, boxes = download_buttons(state, note, slug=slug) if state is not None else ([], [])
    buttons = pn.FlexBox(
        link, embed, *downloads, note, flex_wrap="wrap", align_items="center", sizing_mode="stretch_width"
    )
    return pn.Column(buttons, box, *boxes, sizing_mode="stretch_width")


def download_buttons(state, note: pn.pane.HTML, *, slug: str = "") -> tuple[list, list]:
    """The Download buttons for a page ``state`` (what app/export.py can make of it) and the boxes they show.

    Returns (buttons, boxes). Bokeh names: ``download_png``, ``download_csv``, ``download_npz``,
    ``copy_python_button`` and ``python_box`` (the script, shown once asked for). ``note`` gets the outcome in
    plain words: what a file holds, or why there is nothing to download yet.
    """
    stem = slug or export.page_name(state)
    formats = export.formats(state)
    png = bokeh_name(pn.widgets.Button(label="Plots PNG", **BUTTON), "download_png")
    png.js_on_click(args={"note": note, "filename": f"{stem}-plots.png"}, code=PNG_JS)
    label = pn.pane.HTML("Download:", margin=(6, 2, 6, 12), styles={"font-size": "0.9em", "color": "#555"})
    buttons, boxes = [label, png], []
    said = [0]  # a counter in the note's markup: the same message twice is still a change the browser shows

    def say(text: str, *, error: bool = False) -> None:
        said[0] += 1
        color = "#a12622" if error else "inherit"
        note.object = f'<span data-n="{said[0]}" style="color:{color}">{escape(text)}</span>'

    def provide(widget, make):
        def on_click(_event):
            try:
                exp = make(state)
            except export.ExportError as exc:
                say(str(exc), error=True)
                return
            except Exception as exc:  # noqa: BLE001 - a bug in an export must not break the page, only say so
                traceback.print_exc()
                say(f"Export failed: {type(exc).__name__}: {exc}", error=True)
                return
            widget.filename = exp.filename
            widget._sync_data(io.BytesIO(exp.data))  # Panel's own transfer: data + filename, then the download
            say(exp.note)

        # the click counter, not FileDownload's callback: a state with nothing to export answers with a message
        widget.param.watch(on_click, "_clicks")
        return widget

    for fmt, label, make in (
        ("csv", "History CSV" if "npz" in formats else "Paths CSV", export.history_csv),
        ("npz", "Weights .npz", export.weights_npz),
    ):
        if fmt in formats:
            widget = pn.widgets.FileDownload(label=label, filename=f"{stem}.{fmt}", **BUTTON)
            buttons.append(bokeh_name(provide(widget, make), f"download_{fmt}"))
    if "py" in formats:
        script_box = bokeh_name(
            pn.widgets.TextAreaInput(value="", visible=False, rows=14, sizing_mode="stretch_width", margin=(2, 4)),
            "python_box",
        )
        script_box.jscallback(args={"note": note}, value=SCRIPT_JS)
        copy = bokeh_name(pn.widgets.Button(label="Copy as Python", **BUTTON), "copy_python_button")

        def show_script(_event):
            try:
                exp = export.python_script(state)
            except export.ExportError as exc:
                say(str(exc), error=True)
                return
            say(exp.note)  # first: the browser's "copied" (after the value below arrives) must come after it
            script_box.value = ""  # the same script twice is still a change: the browser copies it again
            script_box.visible = True
            script_box.value = exp.data.decode("utf-8")

        copy.on_click(show_script)
        buttons.append(copy)
        boxes.append(script_box)
    return buttons, boxes
