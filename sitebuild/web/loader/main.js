// The page loader's sequence (main thread). Loaded first in <head> so the Pyodide worker starts downloading while
// the browser is still parsing BokehJS: start the worker, fetch the pack for it, show the preview, draw the live
// document when Python sends it, then keep the two documents in step.
let worker = null;
if (!previewOnly) {
  try {
    worker = new Worker(new URL(cfg.worker, siteURL).href);
  } catch (e) {
    whenReady(() => fail("This browser cannot start a web worker here.", String(e)));
  }
}

function startMessage() {
  return {
    indexURL: cfg.cdnIndexURL || here(cfg.pyodideDir),
    siteURL,
    panelCdnRoot: here(cfg.panelCdnRoot),
    lockPackages: cfg.lockPackages,
    prefetch: cfg.prefetch,
    pageOrigin: performance.timeOrigin,
    sitePackages: cfg.sitePackages,
    snapshot: cfg.snapshot || null,
    runtimeWasm: cfg.runtimeWasm || null,
    // the snapshot holds the page as built for these two URLs (the build); any other settings: built anew
    prebuilt: {"": "plain", "?embed=1": "embed"}[location.search] || null,
    slug: cfg.slug,
    module: cfg.module,
    title: cfg.title,
    location: {
      href: location.href, search: location.search, hash: location.hash, pathname: location.pathname,
      protocol: location.protocol, hostname: location.hostname, port: location.port,
      // not a Panel location field (boot.py passes only those on): play.py reads it, a worker has no matchMedia
      reducedMotion: Boolean(window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)").matches),
    },
  };
}

// The Python packages (one pack, sitebuild/pack.py) are fetched and inflated here, not in the worker, and the
// buffer is transferred to it: the worker is busy booting meanwhile.
let workerReceived = 0, packReceived = 0;
function packBytes(n) {
  packReceived += n;
  state.received = workerReceived + packReceived;
  if (document.readyState !== "loading") showProgress();
}
// zstd-compressed where the site ships the zstd decoder: the worker decodes it (the decoder is loaded there anyway)
const packZst = cfg.sitePackages.zst || null;
const packURL = here(packZst ? packZst.url : cfg.sitePackages.url);
async function downloadPack(url) {
  const body = countedStream((await cachedFetch(url)).body, packBytes);
  return packZst ? new Response(body).arrayBuffer() : (await inflatedBytes(body)).buffer;
}

const nextFrame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
let sync = null;

// BokehJS is loaded with `defer`: it runs after the document is parsed (whenReady may already hold) and before
// DOMContentLoaded; `load` as well, for a page whose BokehJS failed (the draw then fails, and the page says why)
const bokehLoaded = new Promise((resolve) => {
  if (typeof Bokeh !== "undefined" || document.readyState === "complete") return resolve();
  document.addEventListener("DOMContentLoaded", resolve, {once: true});
  window.addEventListener("load", resolve, {once: true});
});

// A visit to a URL the snapshot holds the page for: the build wrote that document beside the snapshot. The page
// draws it, hidden, while the heap is still on its way (this thread is idle then), so that when the worker has
// restored the same document it is only linked and shown: drawing it took ~1 s after the restore. Resolves to
// {views, docsJson, renderItems}, or null (no such document, or not drawn: the worker's copy is drawn instead).
const prebuiltURL = ["", "?embed=1"].includes(location.search);
const asBuilt = {fetched: false, abandoned: false};
// the worker's word: it will restore the snapshot (true), or boot from scratch without it (an engine it does not fit)
let restoringResolve;
const workerRestores = new Promise((resolve) => { restoringResolve = resolve; });
const docAsBuilt = worker && prebuiltURL && cfg.snapshot && cfg.snapshot.doc
  ? drawAsBuilt(here(cfg.snapshot.doc)).catch((e) => {
    console.warn("MTL Playground: the document as built was not drawn ahead: " + (e && e.message || e));
    forgetCached(here(cfg.snapshot.doc)).catch(() => {});   // a damaged copy must not spoil the next visit too
    return null;
  })
  : Promise.resolve(null);

async function drawAsBuilt(url) {
  if (!await workerRestores) return null;
  const data = await (await cachedFetch(url)).json();   // on the line at once, drawn once BokehJS and the preview are
  if (asBuilt.abandoned) return null;
  asBuilt.fetched = true;
  await bokehLoaded;
  // the preview first: it is what the reader sees until the page is live (a picture that does not come: 1 s)
  await previewShown;
  await Promise.race([previewOnScreen, new Promise((resolve) => setTimeout(resolve, 1000))]);
  try {
    const views = await embedDoc(data.docs_json, data.render_items, $("mtl-live"));
    state.drawnAheadAt = performance.now();
    worker.postMessage({type: "drawn-ahead"});   // the worker need not send this document again
    return {views, docsJson: data.docs_json, renderItems: JSON.stringify(data.render_items)};
  } catch (e) {
    $("mtl-live").replaceChildren();
    throw e;
  }
}

// The worker's document is ready: the one drawn ahead (null: none, or still on the line: then the page no longer
// waits for it and draws the worker's copy)
function drawnAhead() {
  if (asBuilt.fetched) return docAsBuilt;
  asBuilt.abandoned = true;
  return Promise.resolve(null);
}

// the document the worker sends is the one drawn ahead: the same render items (document and root ids)
const sameDocument = (early, msg) => Boolean(early && msg.asBuilt) &&
  early.renderItems === JSON.stringify(JSON.parse(msg.render_items));

// the document drawn ahead leaves the page: the worker built another (it did not restore the snapshot)
function dropAsBuilt(early) {
  if (!early) return;
  const doc = firstDoc(early.views);
  for (const v of [...early.views.roots.values()]) v.remove();
  const i = Bokeh.documents.indexOf(doc);
  if (i >= 0) Bokeh.documents.splice(i, 1);
  $("mtl-live").replaceChildren();
}

async function render(msg) {
  state.phase = "app";
  await previewShown;
  const live = $("mtl-live");
  const early = await drawnAhead();
  let views, docsJson;
  state.drawnAheadUsed = sameDocument(early, msg);
  state.documentSent = Boolean(msg.docs_json);
  if (state.drawnAheadUsed) {
    ({views, docsJson} = early);
  } else {
    // the worker sends no document only after this page said it drew the one the worker holds
    if (!msg.docs_json) throw new Error("the document drawn ahead is not the worker's, and the worker sent none");
    dropAsBuilt(early);
    docsJson = JSON.parse(msg.docs_json);
    views = await embedDoc(docsJson, JSON.parse(msg.render_items), live);
  }
  const built = locationAsBuilt(docsJson);
  const jsdoc = firstDoc(views);
  if (msg.pending) {
    // the document as built for the plain URL: its first patches (an embed's) come once it is linked, and it is
    // shown when the worker says it is live, after them
    state.reveal = () => reveal(live);
  } else {
    await nextFrame();   // let the live layout settle under the preview before swapping, so the page does not flash
    reveal(live);
  }
  sync.attach(jsdoc);
  state.doc = jsdoc;
  worker.postMessage({type: "rendered"});
  reportLocation(jsdoc, built);
}

function reveal(live) {
  dropPreview();
  live.classList.remove("mtl-pending");
  $("mtl-loading").hidden = true;
}

// Panel's Location model, as Python built the page: {id, attributes} in the document it sent (null if none).
function locationAsBuilt(docsJson) {
  const stack = [docsJson];
  while (stack.length) {
    const v = stack.pop();
    if (v === null || typeof v !== "object") continue;
    if (v.name === "panel.models.location.Location" && v.id && v.attributes) return v;
    for (const k in v) stack.push(v[k]);
  }
  return null;
}

// Under panel serve the page reports the address it was opened with once its Location view is built, and Python
// answers (a data=custom that the page could not honour leaves the URL: app/custom_data.py show_fallback). Here the
// view sets it before the document is linked to the worker, so Python never heard of it and the address bar kept
// what Python had dropped. Report what differs from the build, after "rendered": Python then sends its answer.
function reportLocation(jsdoc, built) {
  const loc = built && jsdoc.get_model_by_id(built.id);
  if (!loc) return;
  const changed = ["pathname", "search", "hash"].filter((a) => (built.attributes[a] ?? "") !== loc[a]);
  sync.report(loc, changed);
}

function onWorkerMessage(event) {
  const msg = event.data;
  if (msg.type === "bytes") {
    workerReceived = msg.received;
    state.received = workerReceived + packReceived;
    whenReady(showProgress);
  } else if (msg.type === "mark") {
    (state.marks = state.marks || {})[msg.name] = Math.round(msg.t);
  } else if (msg.type === "restoring") {
    restoringResolve(msg.restoring);
  } else if (msg.type === "phase") {
    state.phase = msg.phase;
    (state.phases = state.phases || {})[msg.phase] = performance.now();
    whenReady(showProgress);
  } else if (msg.type === "render") {
    whenReady(() => render(msg).catch((e) => fail("The page could not be drawn.", String(e && e.stack || e))));
  } else if (msg.type === "live") {
    if (state.reveal) state.reveal();
    state.reveal = null;
    state.live = true;
    state.liveAt = performance.now();
    root.dataset.mtlState = "live";
    registerServiceWorker();
    postHeight();
  } else if (msg.type === "patches") {
    sync.apply(msg.patches);
  } else if (msg.type === "idle") {
    sync.idle();
  } else if (msg.type === "python-result") {
    const done = pythonRuns.get(msg.id);
    pythonRuns.delete(msg.id);
    if (done) done(msg.error === undefined ? msg.result : Promise.reject(new Error(msg.error)));
  } else if (msg.type === "error") {
    if (state.live) {
      console.error("MTL Playground: " + msg.details);
      return;
    }
    fail(msg.message, msg.details);
  }
}

// Repeat visits: a service worker serves the content-addressed files from Cache Storage. Registered a few seconds
// after the page went live, when the browser is idle: it must not compete with the first load or the first use.
function registerServiceWorker() {
  if (!cfg.serviceWorker || !("serviceWorker" in navigator) || params.has("nosw")) return;
  const go = () => navigator.serviceWorker.register(here(cfg.serviceWorker))
    .catch((e) => console.warn("service worker: " + e));
  setTimeout(() => ("requestIdleCallback" in window ? requestIdleCallback(go, {timeout: 5000}) : go()), 3000);
}

// Run Python in the page's worker (after the page is live): for tests, and for a curious reader's console.
const pythonRuns = new Map();
state.runPython = (code) => new Promise((resolve) => {
  const id = pythonRuns.size + Math.random();
  pythonRuns.set(id, resolve);
  worker.postMessage({type: "python", id, code});
});

if (worker) {
  worker.postMessage({type: "start", config: startMessage()});
  previewOnScreen.then(() => worker.postMessage({type: "preview-shown"}));
  const zstd = packZst && {decoder: here(packZst.decoder), bytes: packZst.bytes, url: packURL};
  downloadPack(packURL)
    .then((buffer) => worker.postMessage({type: "pack", buffer, zstd}, [buffer]),
          (e) => {
            // a damaged copy in Cache Storage must not fail every later visit too
            forgetCached(packURL).catch(() => {});
            worker.postMessage({type: "pack", error: `the Python packages did not load: ${e}`});
          });
  worker.onerror = (e) => {
    e.preventDefault();
    fail("The Python worker failed to load.", `${e.message || "worker error"} (${cfg.worker})`);
  };
  sync = docSync(worker);
  worker.onmessage = onWorkerMessage;
}

whenReady(() => {
  state.domReadyAt = performance.now();
  if (typeof Bokeh === "undefined") fail("The plotting library (BokehJS) did not load.", "window.Bokeh is undefined");
  showProgress();
});
