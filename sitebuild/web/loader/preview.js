// The preview: the page's initial state computed at build time, only valid for a URL without settings. Two forms:
// pictures of it (taken by the build, on screen as soon as they arrive, no script needed) or, where the build had no
// browser to take them, the document itself drawn by BokehJS once BokehJS has loaded.
const onlyEmbed = [...params.keys()].every((k) => k === "embed");
const previewURL = cfg.preview && onlyEmbed ? cfg.preview[embed ? "embed" : "plain"] : null;
const shots = previewURL && !previewOnly && cfg.previewImages ? cfg.previewImages[embed ? "embed" : "plain"] : null;
const previewJSON = previewURL && !shots ? fetch(here(previewURL)).then((r) => (r.ok ? r.json() : null)).catch(() => null) : null;
// Resolved once the reader sees the preview (or there is none to see): the worker waits for it before it compiles the
// runtime, which on a fast line would otherwise take the cores the preview needs (loader/main.js).
let previewOnScreenNow;
const previewOnScreen = new Promise((resolve) => { previewOnScreenNow = resolve; });
if (!previewURL) previewOnScreenNow();

// Called by an inline script right after <div id="mtl-preview">, while the page is still being parsed.
window.mtlPlaygroundPreviewImage = function () {
  const box = document.getElementById("mtl-preview");
  if (!shots || !shots.length || !box) return;
  const sorted = [...shots].sort((a, b) => a.w - b.w);
  const pic = document.createElement("picture");
  for (let i = 0; i < sorted.length - 1; i++) {
    // the widest picture that fits the window, at its natural size (the live page's text size)
    const source = document.createElement("source");
    source.media = `(max-width: ${sorted[i + 1].w - 1}px)`;
    source.srcset = here(sorted[i].url);
    source.width = sorted[i].w;
    source.height = sorted[i].h;   // the space is kept before the picture arrives: no jump
    pic.appendChild(source);
  }
  const img = document.createElement("img");
  const widest = sorted[sorted.length - 1];
  img.src = here(widest.url);
  img.width = widest.w;
  img.height = widest.h;
  img.alt = "";
  img.decoding = "async";
  img.fetchPriority = "high";
  img.addEventListener("error", previewOnScreenNow, {once: true});
  img.addEventListener("load", () => {
    previewOnScreenNow();
    if (state.live || state.failed) return;
    state.previewShownAt = performance.now();
    root.dataset.mtlState = "preview";
    postHeight();
  }, {once: true});
  pic.appendChild(img);
  box.appendChild(pic);
  root.classList.add("mtl-has-preview");
};

async function embedDoc(docs_json, render_items, container) {
  const item = render_items[0];
  for (const elId of Object.values(item.roots)) {
    const div = document.createElement("div");
    div.id = elId;
    container.appendChild(div);
  }
  const [views] = await Bokeh.embed.embed_items(docs_json, render_items);
  return views;
}
const firstDoc = (views) => [...views.roots.values()][0].model.document;

async function showPreview() {
  const data = await previewJSON;
  state.previewDataAt = performance.now();
  if (!data || state.live || state.failed) return;
  const box = $("mtl-preview");
  state.previewViews = await embedDoc(data.docs_json, data.render_items, box);
  state.previewDoc = firstDoc(state.previewViews);
  root.classList.add("mtl-has-preview");
  state.previewShownAt = performance.now();
  if (!state.live) root.dataset.mtlState = "preview";
  postHeight();
}
const previewShown = previewJSON ? new Promise((res) => whenReady(() => showPreview().catch((e) => console.error("MTL Playground preview: " + (e && e.stack || e))).then(res)))
                                 : Promise.resolve();
if (previewJSON) previewShown.then(previewOnScreenNow);

// the interactive preview leaves the page once the live document is drawn under it
function dropPreview() {
  if (state.previewViews) {
    for (const v of [...state.previewViews.roots.values()]) v.remove();
    const i = Bokeh.documents.indexOf(state.previewDoc);
    if (i >= 0) Bokeh.documents.splice(i, 1);
    state.previewViews = state.previewDoc = null;
  }
  if ($("mtl-preview")) $("mtl-preview").remove();
}
