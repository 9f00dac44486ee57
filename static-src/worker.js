// MTL Playground page worker: boots Pyodide, installs the site's packages, runs one page and mirrors its
// Bokeh document to the main thread (loader.js). Everything it loads comes from URLs in the start message,
// so the same file serves the self-contained site and the --cdn variant.
"use strict";

const BOOT_PY = __BOOT_PY__;  // static-src/boot.py, inlined by build.py

let pyodide = null;
const post = (type, data) => self.postMessage(Object.assign({type}, data || {}));
// timestamps on the page's clock (ms since its navigation started), for the progress log and the benchmark
let pageOrigin = 0;
const mark = (name) => post("mark", {name, t: performance.timeOrigin + performance.now() - pageOrigin});

// ---------------------------------------------------------------- downloads: progress + prefetch
// Pyodide fetches the wasm, the stdlib and every wheel through fetch(). The worker starts all of those
// downloads at once, before Pyodide asks (so they overlap the runtime's own boot), and answers Pyodide's
// fetch() from them; it also counts the bytes so the page can show real progress. Reports are throttled.
let received = 0, lastReport = 0;
const report = (force) => {
  const now = Date.now();
  if (force || now - lastReport > 150) { lastReport = now; post("bytes", {received}); }
};
const rawFetch = self.fetch.bind(self);

// Runtime and wheels have content-addressed URLs, so a cached copy is always the right one (repeat visits).
const CACHE = "mtl-playground";
const openCache = () => (self.caches ? caches.open(CACHE).catch(() => null) : Promise.resolve(null));

async function download(url) {
  const cache = await openCache();
  const hit = cache && await cache.match(url).catch(() => null);
  if (hit) {
    const body = await hit.blob();
    received += body.size;
    report(false);
    return {body, headers: hit.headers};
  }
  const resp = await rawFetch(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status} ${resp.statusText}`);
  const chunks = [];
  const reader = resp.body.getReader();
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.byteLength;
    report(false);
  }
  report(true);
  const body = new Blob(chunks);
  if (cache) cache.put(url, new Response(body, {headers: resp.headers})).catch(() => {});
  return {body, headers: resp.headers};
}

const prefetched = new Map();   // absolute URL -> Promise<{body, headers}>
function prefetch(urls) {
  for (const url of urls) {
    const p = download(url);
    p.catch(() => {});   // reported when Pyodide asks for it
    prefetched.set(url, p);
  }
}

async function checkIntegrity(blob, integrity, url) {
  // Pyodide passes the lock file's sha256 as subresource integrity; keep that check for prefetched files
  const m = /^sha256-(.+)$/.exec(integrity || "");
  if (!m) return;
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  const got = btoa(String.fromCharCode(...new Uint8Array(digest)));
  if (got !== m[1]) throw new Error(`integrity check failed for ${url}`);
}

self.fetch = async (input, init) => {
  // Pyodide passes strings, URL objects or Requests
  const url = new URL(input instanceof Request ? input.url : String(input), self.location.href).href;
  const early = prefetched.get(url);
  if (early) {
    prefetched.delete(url);
    const {body, headers} = await early;
    await checkIntegrity(body, init && init.integrity, url);
    // same headers: WebAssembly.instantiateStreaming needs the application/wasm content type
    return new Response(body, {status: 200, headers});
  }
  const cache = await openCache();
  const cached = cache && await cache.match(url).catch(() => null);
  if (cached) return cached;   // repeat visit (the URL is content-addressed, so the copy is the right one)
  const resp = await rawFetch(input, init);
  if (!resp.ok || !resp.body) return resp;
  if (cache) cache.put(url, resp.clone()).catch(() => {});
  // count a clone's bytes and hand Pyodide the original untouched: the wasm keeps streaming compilation and
  // the browser's code cache (repeat visits skip most of the compile)
  const reader = resp.clone().body.getReader();
  (async () => {
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      received += value.byteLength;
      report(false);
    }
    report(true);
  })().catch(() => {});
  return resp;
};

// ---------------------------------------------------------------- document sync (worker -> page)
function sendPatch(patch, buffers) {
  post("patch", {patch, buffers});
}

function pyError(e) {
  // A PythonError's message is the whole traceback; its last line names the exception.
  const text = String(e && e.message ? e.message : e);
  const lines = text.trim().split("\n");
  return {message: lines[lines.length - 1], details: text};
}

// ---------------------------------------------------------------- the site's Python packages (build.py's pack)
// The page (loader.js) downloads and inflates the pack while this thread boots the runtime, and hands it over as
// a transferred buffer: this thread's event loop is held by the boot in long synchronous stretches, so work
// scheduled here would only finish after it. The message is taken at once, not queued behind the boot.
let packResolve, packReject;
const packArrived = new Promise((resolve, reject) => { packResolve = resolve; packReject = reject; });
packArrived.catch(() => {});   // reported where the boot awaits it

function readPack(bytes) {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  const index = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + n)));
  return {bytes, index, start: 4 + n};
}

function writePack({bytes, index, start}, dir) {
  const made = new Set();
  let offset = start;
  for (const [path, size] of index) {
    if (path.startsWith("/") || path.split("/").includes("..")) throw new Error(`bad path in the pack: ${path}`);
    const parent = dir + path.slice(0, path.lastIndexOf("/") + 1);
    if (!made.has(parent)) {
      pyodide.FS.mkdirTree(parent);
      made.add(parent);
    }
    pyodide.FS.writeFile(dir + path, bytes.subarray(offset, offset + size));
    offset += size;
  }
  if (offset !== bytes.length) throw new Error(`the pack is ${bytes.length} bytes, its index says ${offset}`);
}

async function boot(cfg) {
  pageOrigin = cfg.pageOrigin || 0;
  mark("worker-start");
  post("phase", {phase: "runtime"});
  prefetch(cfg.prefetch.map((u) => new URL(u, cfg.siteURL).href));
  importScripts(cfg.indexURL + "pyodide.js");
  pyodide = await loadPyodide({
    indexURL: cfg.indexURL,
    // Panel builds its stylesheet URLs from PANEL_CDN_ROOT at import: point it at the site's own copy.
    env: {PANEL_CDN_ROOT: cfg.panelCdnRoot, HOME: "/home/pyodide"},
  });
  mark("runtime-ready");
  post("phase", {phase: "packages"});
  // --cdn builds: numpy from the Pyodide CDN through Pyodide's loader. Self-contained builds: numpy is in the pack
  const compiled = cfg.lockPackages.length ? pyodide.loadPackage(cfg.lockPackages, {
    messageCallback: () => {},
    errorCallback: (m) => console.error(m),
  }) : Promise.resolve();
  writePack(readPack(await packArrived), cfg.sitePackages.dir);
  if (cfg.sitePackages.dynlibs.length && !(pyodide._api && pyodide._api.loadDynlib)) {
    throw new Error("this Pyodide has no _api.loadDynlib: numpy's compiled modules cannot be loaded (build.py pins 0.27.7)");
  }
  for (const so of cfg.sitePackages.dynlibs) {
    // what loadPackage does for a package's extension modules: load each, symbols local to it
    await pyodide._api.loadDynlib(cfg.sitePackages.dir + so, false, []);
  }
  await compiled;
  mark("packages-ready");
  post("phase", {phase: "app"});
  pyodide.globals.set("sendPatch", sendPatch);
  pyodide.globals.set("mtl_mark", mark);
  pyodide.globals.set("MTL_PAGE", pyodide.toPy({
    module: cfg.module, title: cfg.title, location: cfg.location,
  }));
  const out = await pyodide.runPythonAsync(BOOT_PY);
  const [docs_json, render_items, root_ids] = out.toJs();
  out.destroy();
  mark("document-ready");
  post("render", {docs_json, render_items, root_ids});
}

// Messages from the page are handled one at a time, in order.
let queue = Promise.resolve();
self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "pack") {
    if (msg.error) packReject(new Error(msg.error));
    else packResolve(new Uint8Array(msg.buffer));
    return;
  }
  queue = queue.then(() => handle(msg)).catch((e) => {
    const err = pyError(e);
    console.error("MTL worker: " + err.details);
    post("error", err);
  });
};

async function handle(msg) {
  if (msg.type === "start") {
    try {
      await boot(msg.config);
    } catch (e) {
      post("error", pyError(e));
    }
  } else if (msg.type === "rendered") {
    await pyodide.runPythonAsync(`
from panel.io.pyodide import _link_docs_worker
from panel.io.state import state
_link_docs_worker(state.curdoc, sendPatch, setter="js")
`);
    post("live");
  } else if (msg.type === "patch") {
    pyodide.globals.set("patch", msg.patch);
    try {
      await pyodide.runPythonAsync(`
from panel.io.pyodide import _convert_json_patch
from panel.io.state import state
state.curdoc.apply_json_patch(_convert_json_patch(patch), setter="js")
`);
    } finally {
      post("idle");
    }
  }
}
