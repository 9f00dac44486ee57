// MTL Playground page loader (main thread). Loaded first in <head> so the Pyodide worker starts downloading
// while the browser is still parsing BokehJS. It shows progress (runtime -> packages -> page), a pre-rendered
// preview when one matches the URL, a readable error if anything fails, then hands the page to the live
// Python app and keeps the two Bokeh documents in step. Build-time settings come from <script id="mtl-config">.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("mtl-config").textContent);
  const params = new URLSearchParams(location.search);
  const embed = ["1", "true", "yes"].includes((params.get("embed") || "").toLowerCase());
  const root = document.documentElement;
  root.dataset.mtlState = "loading";
  if (embed) root.classList.add("mtl-embed");

  const state = {phase: "runtime", received: 0, previewViews: null, previewDoc: null, failed: false};
  window.mtlPlayground = state;  // read by the end-to-end tests and the benchmark
  // build.py sets this while it photographs the interactive preview for the preview images: no Python then
  const previewOnly = window.__mtlPreviewOnly === true;

  // ------------------------------------------------------------ worker: start at once
  const siteURL = new URL(".", location.href).href;
  const here = (p) => new URL(p, siteURL).href;
  let worker = null;
  if (!previewOnly) {
    try {
      worker = new Worker(new URL(cfg.worker, siteURL).href);
    } catch (e) {
      whenReady(() => fail("This browser cannot start a web worker here.", String(e)));
      return;
    }
  }
  // The Python packages (one pack, see build.py) are fetched by the page, not the worker: see below.
  let workerReceived = 0, packReceived = 0;
  async function downloadPack(url) {
    const counted = (n) => {
      packReceived += n;
      state.received = workerReceived + packReceived;
      if (document.readyState !== "loading") showProgress();
    };
    // the same Cache Storage as the worker's downloads: a repeat visit reads it back, service worker or not
    // (the URL is content-addressed, so a cached copy is always the right one)
    const cache = self.caches ? await caches.open("mtl-playground").catch(() => null) : null;
    const hit = cache && await cache.match(url).catch(() => null);
    if (hit) {
      const blob = await hit.blob();
      counted(blob.size);
      return blob;
    }
    const resp = await fetch(url);
    if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status} ${resp.statusText}`);
    const chunks = [];
    const reader = resp.body.getReader();
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      chunks.push(value);
      counted(value.byteLength);
    }
    const blob = new Blob(chunks);
    if (cache) cache.put(url, new Response(blob, {headers: resp.headers})).catch(() => {});
    return blob;
  }
  if (worker) {
    worker.postMessage({type: "start", config: {
      indexURL: cfg.cdnIndexURL || here(cfg.pyodideDir),
      siteURL,
      panelCdnRoot: here(cfg.panelCdnRoot),
      lockPackages: cfg.lockPackages,
      prefetch: cfg.prefetch,
      pageOrigin: performance.timeOrigin,
      sitePackages: cfg.sitePackages,
      snapshot: cfg.snapshot || null,
      // the snapshot holds the page as built for these two URLs (build.py); any other settings: built anew
      prebuilt: {"": "plain", "?embed=1": "embed"}[location.search] || null,
      module: cfg.module,
      title: cfg.title,
      location: {
        href: location.href, search: location.search, hash: location.hash, pathname: location.pathname,
        protocol: location.protocol, hostname: location.hostname, port: location.port,
      },
    }});
    // the packages: downloaded and inflated here, transferred to the worker (which is busy booting meanwhile)
    (async () => {
      let blob = await downloadPack(here(cfg.sitePackages.url));
      const head = new Uint8Array(await blob.slice(0, 2).arrayBuffer());
      // a host may already have undone the gzip (Content-Encoding): only inflate what still starts like gzip
      if (head[0] === 0x1f && head[1] === 0x8b) {
        blob = await new Response(blob.stream().pipeThrough(new DecompressionStream("gzip"))).blob();
      }
      return await blob.arrayBuffer();
    })().then((buffer) => worker.postMessage({type: "pack", buffer}, [buffer]),
               (e) => worker.postMessage({type: "pack", error: `the Python packages did not load: ${e}`}));
    worker.onerror = (e) => {
      e.preventDefault();
      fail("The Python worker failed to load.", `${e.message || "worker error"} (${cfg.worker})`);
    };
  }

  // The preview is the page's initial state computed at build time: only valid for a URL without settings.
  // Two forms: pictures of it (taken by build.py, on screen as soon as they arrive, no script needed) or, where
  // the build had no browser to take them, the document itself drawn by BokehJS once BokehJS has loaded.
  const onlyEmbed = [...params.keys()].every((k) => k === "embed");
  const previewURL = cfg.preview && onlyEmbed ? cfg.preview[embed ? "embed" : "plain"] : null;
  const shots = previewURL && !previewOnly && cfg.previewImages ? cfg.previewImages[embed ? "embed" : "plain"] : null;
  const previewJSON = previewURL && !shots ? fetch(here(previewURL)).then((r) => (r.ok ? r.json() : null)).catch(() => null) : null;

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
    img.addEventListener("load", () => {
      if (state.live || state.failed) return;
      state.previewShownAt = performance.now();
      root.dataset.mtlState = "preview";
      postHeight();
    }, {once: true});
    pic.appendChild(img);
    box.appendChild(pic);
    root.classList.add("mtl-has-preview");
  };

  // ------------------------------------------------------------ DOM helpers
  function whenReady(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn, {once: true});
    else fn();
  }
  const $ = (id) => document.getElementById(id);
  const mb = (n) => (n / 1e6).toFixed(1);

  const STEPS = ["runtime", "packages", "app"];
  function showProgress() {
    const box = $("mtl-loading");
    if (!box || state.failed) return;
    const i = STEPS.indexOf(state.phase);
    for (const li of box.querySelectorAll("[data-step]")) {
      const j = STEPS.indexOf(li.dataset.step);
      li.className = j < i ? "done" : j === i ? "active" : "";
    }
    const frac = Math.min(1, state.received / Math.max(1, cfg.downloadBytes));
    const bar = $("mtl-progress");
    // downloads are ~90% of the wait; the last 10% is Python importing and building the page
    bar.value = state.phase === "app" ? 0.95 : 0.9 * frac;
    $("mtl-bytes").textContent = `${mb(Math.min(state.received, cfg.downloadBytes))} / ${mb(cfg.downloadBytes)} MB`;
  }

  function fail(message, details) {
    state.failed = true;
    root.dataset.mtlState = "error";
    whenReady(() => {
      const box = $("mtl-error");
      box.querySelector(".mtl-error-msg").textContent = message;
      box.querySelector("pre").textContent = details || message;
      box.hidden = false;
      const ld = $("mtl-loading");
      if (ld) ld.hidden = true;
      postHeight();
    });
  }

  // ------------------------------------------------------------ embedding: tell the parent our height
  function postHeight() {
    if (window.parent === window) return;
    const h = Math.ceil(document.body.getBoundingClientRect().height);
    window.parent.postMessage({type: "mtl-playground:resize", page: cfg.slug, height: h}, "*");
  }
  if (window.parent !== window) {
    whenReady(() => {
      new ResizeObserver(postHeight).observe(document.body);
      postHeight();
    });
  }

  // ------------------------------------------------------------ rendering Bokeh documents
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
  const nextFrame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));

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

  // ------------------------------------------------------------ live document and patch sync
  let jsdoc = null, busy = false, queued = [], patching = 0;
  function sendChange(event) {
    if ((event.setter_id != null && event.setter_id === "py") || patching > 0) return;
    if (busy && event.model && event.attr) {
      queued = queued.filter((o) => !(o.model === event.model && o.attr === event.attr));
      queued.push(event);
      return;
    }
    busy = true;
    worker.postMessage({type: "patch", patch: jsdoc.create_json_patch([event])});
  }

  async function render(msg) {
    state.phase = "app";
    await previewShown;
    const docs_json = JSON.parse(msg.docs_json);
    const render_items = JSON.parse(msg.render_items);
    const live = $("mtl-live");
    const views = await embedDoc(docs_json, render_items, live);
    jsdoc = firstDoc(views);
    // let the live layout settle under the preview before swapping, so the page does not flash
    await nextFrame();
    if (state.previewViews) {
      for (const v of [...state.previewViews.roots.values()]) v.remove();
      const i = Bokeh.documents.indexOf(state.previewDoc);
      if (i >= 0) Bokeh.documents.splice(i, 1);
      state.previewViews = state.previewDoc = null;
    }
    if ($("mtl-preview")) $("mtl-preview").remove();
    live.classList.remove("mtl-pending");
    $("mtl-loading").hidden = true;
    jsdoc.on_change(sendChange, false);
    state.doc = jsdoc;
    worker.postMessage({type: "rendered"});
  }

  if (worker) worker.onmessage = (event) => {
    const msg = event.data;
    if (msg.type === "bytes") {
      workerReceived = msg.received;
      state.received = workerReceived + packReceived;
      whenReady(showProgress);
    } else if (msg.type === "mark") {
      (state.marks = state.marks || {})[msg.name] = Math.round(msg.t);
    } else if (msg.type === "phase") {
      state.phase = msg.phase;
      (state.phases = state.phases || {})[msg.phase] = performance.now();
      whenReady(showProgress);
    } else if (msg.type === "render") {
      whenReady(() => render(msg).catch((e) => fail("The page could not be drawn.", String(e && e.stack || e))));
    } else if (msg.type === "live") {
      state.live = true;
      state.liveAt = performance.now();
      root.dataset.mtlState = "live";
      registerServiceWorker();
      postHeight();
    } else if (msg.type === "patches") {
      try {
        patching += 1;
        for (const {patch, buffers} of msg.patches) jsdoc.apply_json_patch(patch, buffers);
      } finally {
        patching -= 1;
      }
    } else if (msg.type === "idle") {
      if (queued.length) {
        const patch = jsdoc.create_json_patch(queued);
        queued = [];
        worker.postMessage({type: "patch", patch});
      } else {
        busy = false;
      }
    } else if (msg.type === "error") {
      if (state.live) {
        console.error("MTL Playground: " + msg.details);
        return;
      }
      fail(msg.message, msg.details);
    }
  };

  // Repeat visits: a service worker serves the content-addressed files from Cache Storage. Registered once the
  // page is live, so its precaching never competes with the first load.
  function registerServiceWorker() {
    if (!cfg.serviceWorker || !("serviceWorker" in navigator) || params.has("nosw")) return;
    // a few seconds after the page went live, when the browser is idle: precaching must not slow the first use
    const go = () => navigator.serviceWorker.register(here(cfg.serviceWorker))
      .catch((e) => console.warn("service worker: " + e));
    setTimeout(() => ("requestIdleCallback" in window ? requestIdleCallback(go, {timeout: 5000}) : go()), 3000);
  }

  whenReady(() => {
    state.domReadyAt = performance.now();
    if (typeof Bokeh === "undefined") fail("The plotting library (BokehJS) did not load.", "window.Bokeh is undefined");
    showProgress();
  });
})();
