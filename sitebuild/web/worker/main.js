// The page's worker: boots Pyodide (from the snapshot, else from scratch), runs one page (python/boot.py) and mirrors
// its Bokeh document to the main thread (loader.js). Everything it loads comes from URLs in the start message, so
// the same file serves the self-contained site and the --cdn variant. PY holds python/*.py (sitebuild/scripts.py).
let pyodide = null;
let applyPatch = null;  // python/apply_patch.py's mtl_apply_patch, once the first batch of the reader's changes came

// The site's Python packages: the page (loader.js) downloads and inflates the pack while this thread boots the
// runtime, and hands it over as a transferred buffer: this thread's event loop is held by the boot in long
// synchronous stretches, so work scheduled here would only finish after it. The message is taken at once.
// The page's preview is on screen (its "preview-shown"), or a second has passed: the runtime is compiled only then. On a
// fast line the wasm would arrive, and its compile take both cores, while the page is still drawing the preview.
let previewResolve;
const previewOnScreen = new Promise((resolve) => { previewResolve = resolve; });

// The page has drawn the document as built (the file beside the snapshot): a restored visit then sends it only the
// render items, not the same document once more (boot.py).
let drawnAheadOnPage = false;

let packResolve, packReject;
const packArrived = new Promise((resolve, reject) => { packResolve = resolve; packReject = reject; });
packArrived.catch(() => {});   // reported where the boot awaits it

async function readyInterpreter(cfg, wasmRequested) {
  // before pyodide.asm.js makes its first instance: on JavaScriptCore, exports made to be their table slots' objects,
  // so the runtime lays out its function table as node did for the snapshot (identity.js)
  const identity = oneObjectPerFunction();
  if (identity !== "native") mark(`wasm-identity-${identity}`);
  guardRuntimeInstantiation();   // fetch.js, around the engine's (or the shim's) instantiateStreaming
  const misfit = cfg.snapshot && snapshotMisfit(cfg.snapshot.table);
  // the page draws the document the snapshot holds while the heap downloads, only if the heap will be tried
  post("restoring", {restoring: Boolean(cfg.snapshot && !misfit)});
  if (misfit) {
    console.warn(`MTL worker: the memory snapshot does not fit this engine (${misfit}); booting Python from scratch ` +
                 "without downloading it");
    mark("snapshot-skipped");
  } else if (cfg.snapshot) {
    try {
      return await restoreSnapshot(cfg, packArrived, wasmRequested);
    } catch (e) {
      // the page still works, only slower: say why in the console
      console.warn(`MTL worker: the memory snapshot could not be used (${e && e.message ? e.message : e}); booting Python from scratch`);
      mark("snapshot-failed");
      await forget(cfg.snapshot.url, cfg.siteURL);   // a damaged copy must not fail the next visit too
    }
  }
  if (typeof loadPyodide !== "function") importScripts(cfg.indexURL + "pyodide.js");
  return bootFromScratch(cfg, packArrived);
}

// drop a site file from Cache Storage (it turned out unusable): the next visit downloads it again
const forget = (rel, siteURL) => forgetCached(new URL(rel, siteURL).href).catch(() => {});

async function boot(cfg) {
  pageOrigin = cfg.pageOrigin || 0;
  mark("worker-start");
  setTimeout(previewResolve, 1000);
  post("phase", {phase: "runtime"});
  prefetch(cfg.prefetch.map((u) => new URL(u, cfg.siteURL).href));
  const zst = cfg.runtimeWasm && {...cfg.runtimeWasm, url: new URL(cfg.runtimeWasm.url, cfg.siteURL).href,
                                   decoder: new URL(cfg.runtimeWasm.decoder, cfg.siteURL).href};
  const wasmRequested = prefetchStreamed(cfg.indexURL + "pyodide.asm.wasm", zst);
  pyodide = await readyInterpreter(cfg, wasmRequested);
  laterOnDemand(cfg);
  pyodide.globals.set("sendPatch", sendPatch);
  pyodide.globals.set("mtl_mark", mark);
  pyodide.globals.set("mtl_drawn_ahead", () => drawnAheadOnPage);
  pyodide.globals.set("MTL_PAGE", pyodide.toPy({
    slug: cfg.slug, module: cfg.module, title: cfg.title, location: cfg.location, prebuilt: cfg.prebuilt,
  }));
  const out = await pyodide.runPythonAsync(PY.boot);
  // asBuilt: the document of the snapshot, as the build wrote it beside the snapshot (the page may have drawn it)
  const [docs_json, render_items, root_ids, pending, asBuilt] = out.toJs();
  out.destroy();
  mark("document-ready");
  post("render", {docs_json, render_items, root_ids, pending, asBuilt});
}

// python/ files that only define: the snapshot already ran them (sitebuild/snapshot.py WORKER_DEFINITIONS), a
// boot from scratch runs them here, once
async function defined(name, ...sources) {
  if (pyodide.globals.has(name)) return;
  for (const source of sources) await pyodide.runPythonAsync(source);
  mark(`defined-${name}`);
}

async function handle(msg) {
  if (msg.type === "start") {
    try {
      await boot(msg.config);
    } catch (e) {
      // if the pack was what broke, the next visit recovers
      for (const pack of [msg.config.sitePackages, msg.config.sitePackages.zst]) if (pack) forget(pack.url, msg.config.siteURL);
      post("error", pyError(e));
    }
  } else if (msg.type === "rendered") {
    await defined("mtl_link_docs", PY.docsync, PY.link_docs);
    pyodide.globals.get("mtl_link_docs")();
    post("live");
    // what create_page(autoplay=True) does, now that the page is on screen (boot.py); after "live": the first tick
    // would otherwise run before this message is sent
    await pyodide.runPythonAsync(PY.play);
  } else if (msg.type === "python") {
    // the page's mtlPlayground.runPython(code): tests and debugging in the browser's console
    try {
      const out = await pyodide.runPythonAsync(msg.code);
      post("python-result", {id: msg.id, result: String(out)});
    } catch (e) {
      post("python-result", {id: msg.id, error: pyError(e).message});
    }
  } else if (msg.type === "patch") {
    try {
      if (applyPatch == null) {
        await defined("mtl_apply_patch", PY.apply_patch);
        applyPatch = pyodide.globals.get("mtl_apply_patch");
      }
      applyPatch(msg.patch);
    } finally {
      post("idle");
    }
  }
}

// Messages from the page are handled one at a time, in order; the pack is taken at once.
let queue = Promise.resolve();
self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "preview-shown") {
    previewResolve();
    return;
  }
  if (msg.type === "drawn-ahead") {
    drawnAheadOnPage = true;
    return;
  }
  if (msg.type === "pack") {
    if (msg.error) packReject(new Error(msg.error));
    else if (msg.zstd) packResolve(decodedPack(new Uint8Array(msg.buffer), msg.zstd));
    else packResolve(new Uint8Array(msg.buffer));
    return;
  }
  queue = queue.then(() => handle(msg)).catch((e) => {
    const err = pyError(e);
    console.error("MTL worker: " + err.details);
    post("error", err);
  });
};
