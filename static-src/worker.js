// MTL Playground page worker: boots Pyodide, installs the site's packages, runs one page and mirrors its
// Bokeh document to the main thread (loader.js). Everything it loads comes from URLs in the start message,
// so the same file serves the self-contained site and the --cdn variant.
"use strict";

const PRELUDE_PY = __PRELUDE_PY__;  // static-src/prelude.py, inlined by build.py
const BOOT_PY = __BOOT_PY__;  // static-src/boot.py, inlined by build.py

let pyodide = null;
const post = (type, data) => {
  if (type !== "patches") flushPatches();   // messages keep their order
  self.postMessage(Object.assign({type}, data || {}));
};
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

// a body stream that counts its bytes into `received` as they pass (the page's progress bar)
function counted(body) {
  return body.pipeThrough(new TransformStream({
    transform(chunk, ctl) {
      received += chunk.byteLength;
      report(false);
      ctl.enqueue(chunk);
    },
    flush() { report(true); },
  }));
}

// a content-addressed URL's response: from Cache Storage, else from the network (and then kept there)
async function cachedFetch(url) {
  const cache = await openCache();
  const hit = cache && await cache.match(url).catch(() => null);
  if (hit) return hit;
  const resp = await rawFetch(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status} ${resp.statusText}`);
  if (cache) cache.put(url, resp.clone()).catch(() => {});
  return resp;
}

async function download(url) {
  const resp = await cachedFetch(url);
  return {body: await new Response(counted(resp.body)).blob(), headers: resp.headers};
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
  counted(resp.clone().body).pipeTo(new WritableStream()).catch(() => {});
  return resp;
};

// ---------------------------------------------------------------- document sync (worker -> page)
// Python reports each document change on its own (a training tick changes ten sources and ranges at once): they
// travel to the page together, one message per turn of this thread's event loop, and the page applies them in one go.
let outbox = [];
function flushPatches() {
  if (!outbox.length) return;
  const patches = outbox;
  outbox = [];
  post("patches", {patches});
}
function sendPatch(patch, buffers) {
  if (!outbox.length) setTimeout(flushPatches, 0);
  outbox.push({patch, buffers});
}

function pyError(e) {
  // A PythonError's message is the whole traceback; its last line names the exception.
  const text = String(e && e.message ? e.message : e);
  const lines = text.trim().split("\n");
  return {message: lines[lines.length - 1], details: text};
}

// ---------------------------------------------------------------- the site's Python packages (build.py's pack)
// The page (loader.js) downloads and inflates the pack while this thread boots the runtime, and hands it over as a
// transferred buffer: this thread's event loop is held by the boot in long synchronous stretches, so work
// scheduled here would only finish after it. The message is taken at once, not queued behind the boot.
let packResolve, packReject;
const packArrived = new Promise((resolve, reject) => { packResolve = resolve; packReject = reject; });
packArrived.catch(() => {});   // reported where the boot awaits it

function readPack(bytes) {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  const index = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + n)));
  return {bytes, index, start: 4 + n};
}

function writePack(FS, {bytes, index, start}, dir) {
  const made = new Set();
  let offset = start;
  for (const [path, size] of index) {
    if (path.startsWith("/") || path.split("/").includes("..")) throw new Error(`bad path in the pack: ${path}`);
    const parent = dir + path.slice(0, path.lastIndexOf("/") + 1);
    if (!made.has(parent)) {
      FS.mkdirTree(parent);
      made.add(parent);
    }
    FS.writeFile(dir + path, bytes.subarray(offset, offset + size));
    offset += size;
  }
  if (offset !== bytes.length) throw new Error(`the pack is ${bytes.length} bytes, its index says ${offset}`);
}

// ---------------------------------------------------------------- two ways to a ready interpreter
// Python's environment: Panel builds its stylesheet URLs from PANEL_CDN_ROOT at import (the site's own copy).
const pythonEnv = (cfg) => ({PANEL_CDN_ROOT: cfg.panelCdnRoot, HOME: "/home/pyodide"});

// 1. From scratch: boot Pyodide, install the pack, load numpy's compiled modules, run the prelude (imports).
async function bootFromScratch(cfg) {
  pyodide = await loadPyodide({indexURL: cfg.indexURL, env: pythonEnv(cfg)});
  mark("runtime-ready");
  post("phase", {phase: "packages"});
  // --cdn builds: numpy from the Pyodide CDN through Pyodide's loader. Self-contained builds: numpy is in the pack
  const compiled = cfg.lockPackages.length ? pyodide.loadPackage(cfg.lockPackages, {
    messageCallback: () => {},
    errorCallback: (m) => console.error(m),
  }) : Promise.resolve();
  writePack(pyodide.FS, readPack(await packArrived), cfg.sitePackages.dir);
  if (cfg.sitePackages.imported) {
    // the modules the snapshot had already imported travel apart (build.py): booting from scratch needs them
    writePack(pyodide.FS, readPack(await downloadInflated(new URL(cfg.sitePackages.imported, cfg.siteURL).href)),
              cfg.sitePackages.dir);
  }
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
  mark("python-start");
  await pyodide.runPythonAsync(PRELUDE_PY);
  mark("panel-imported");
}

__TABLE_DIGEST_JS__  // static-src/tabledigest.js, inlined by build.py: tableDigest(table, start, end)

// A gzip file inflated as it streams in. The snapshot comes this way, not through the page: this thread has nothing
// else to do until it arrives (the runtime's memory is sized from it), while the page's thread is busy with BokehJS
// and the pack.
async function downloadInflated(url) {
  const reader = counted((await cachedFetch(url)).body).getReader();
  const first = await reader.read();
  const stream = new ReadableStream({
    start(ctl) {
      if (first.done) ctl.close();
      else ctl.enqueue(first.value);
    },
    async pull(ctl) {
      const {done, value} = await reader.read();
      if (done) ctl.close();
      else ctl.enqueue(value);
    },
  });
  // a host may already have undone the gzip (Content-Encoding): only inflate what still starts like gzip
  const gzipped = !first.done && first.value[0] === 0x1f && first.value[1] === 0x8b;
  const body = gzipped ? stream.pipeThrough(new DecompressionStream("gzip")) : stream;
  return new Uint8Array(await new Response(body).arrayBuffer());
}

// 2. From the build's memory snapshot (snapshot.js): the interpreter as it was right after the prelude.
// Pyodide restores the heap; numpy's compiled modules are loaded first, each at the data address and table slots it
// had when the snapshot was taken (a dlopen handle with recorded bases), so the heap's pointers into them hold.
async function restoreSnapshot(cfg) {
  const snap = cfg.snapshot;
  const heap = downloadInflated(new URL(snap.url, cfg.siteURL).href).then((bytes) => {
    mark("snapshot-downloaded");
    return bytes;
  });
  heap.catch(() => {});   // reported by loadPyodide, which awaits it
  importScripts(cfg.indexURL + "pyodide.asm.js");
  const create = self._createPyodideModule;
  if (typeof create !== "function") throw new Error("pyodide.asm.js defined no _createPyodideModule");
  self._createPyodideModule = async (moduleConfig) => {
    self._createPyodideModule = create;   // one use: a fallback boot gets Pyodide's own
    const M = await create(moduleConfig);
    mark("runtime-ready");
    post("phase", {phase: "packages"});
    writePack(M.FS, readPack(await packArrived), cfg.sitePackages.dir);
    // the slots a boot makes must be the snapshot's; a few more are fine (numpy's modules start after a gap)
    const atBoot = M.wasmTable.length, bootDigest = tableDigest(M.wasmTable, 0, snap.table.atBoot);
    if (atBoot < snap.table.atBoot || atBoot > snap.table.base || bootDigest !== snap.table.bootDigest) {
      throw new Error(`the runtime's function table (${atBoot} slots at boot, digest ${bootDigest}) is not the ` +
                      `snapshot's (${snap.table.atBoot} slots, ${snap.table.bootDigest})`);
    }
    M.wasmTable.grow(snap.table.base - atBoot);
    const handle = M._calloc(64, 1);   // scratch: the restored heap overwrites it
    for (const lib of snap.libs) {
      M.HEAPU8.fill(0, handle, handle + 64);
      M.HEAP8[handle + 8] = 1;   // "already placed": take the bases below instead of allocating
      M.HEAPU32[(handle + 12) >> 2] = lib.memoryBase;
      M.HEAPU32[(handle + 16) >> 2] = lib.memorySize;
      M.HEAPU32[(handle + 20) >> 2] = lib.tableBase;
      M.HEAPU32[(handle + 24) >> 2] = lib.tableSize;
      await M.loadDynamicLibrary(lib.path, {loadAsync: true, nodelete: true, allowUndefined: true, global: false,
                                            fs: M.FS}, {}, handle);
      delete M.LDSO.loadedLibsByHandle[handle];
      M.LDSO.loadedLibsByName[lib.path.split("/").pop()] = M.LDSO.loadedLibsByName[lib.path];
    }
    for (const [h, name] of Object.entries(snap.byHandle)) M.LDSO.loadedLibsByHandle[h] = M.LDSO.loadedLibsByName[name];
    const digest = tableDigest(M.wasmTable, snap.table.base, M.wasmTable.length);
    if (M.wasmTable.length !== snap.table.length || digest !== snap.table.digest) {
      throw new Error(`function table differs from the snapshot's (${M.wasmTable.length} slots, digest ${digest}; ` +
                      `expected ${snap.table.length}, ${snap.table.digest})`);
    }
    mark("packages-ready");
    return M;
  };
  try {
    importScripts(cfg.indexURL + "pyodide.js");
    pyodide = await loadPyodide({
      indexURL: cfg.indexURL, env: pythonEnv(cfg),
      _loadSnapshot: heap,
      // JS functions Python held at snapshot time were kept as their source (snapshot.js)
      _snapshotDeserializer: (kept) => (0, eval)(`(${kept.source})`),
    });
  } finally {
    self._createPyodideModule = create;
  }
  post("phase", {phase: "app"});
  mark("snapshot-restored");
}

async function boot(cfg) {
  pageOrigin = cfg.pageOrigin || 0;
  mark("worker-start");
  post("phase", {phase: "runtime"});
  prefetch(cfg.prefetch.map((u) => new URL(u, cfg.siteURL).href));
  let restored = false;
  if (cfg.snapshot) {
    try {
      await restoreSnapshot(cfg);
      restored = true;
    } catch (e) {
      // the page still works, only slower: say why in the console
      console.warn(`MTL worker: the memory snapshot could not be used (${e && e.message ? e.message : e}); booting Python from scratch`);
      mark("snapshot-failed");
      pyodide = null;
    }
  }
  if (!restored) {
    if (typeof loadPyodide !== "function") importScripts(cfg.indexURL + "pyodide.js");
    await bootFromScratch(cfg);
  }
  pyodide.globals.set("sendPatch", sendPatch);
  pyodide.globals.set("mtl_mark", mark);
  pyodide.globals.set("MTL_PAGE", pyodide.toPy({
    module: cfg.module, title: cfg.title, location: cfg.location, prebuilt: cfg.prebuilt,
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
    // what create_page(autoplay=True) does, now that the page is on screen (boot.py); after "live": the first tick
    // would otherwise run before this message is sent
    await pyodide.runPythonAsync("if MTL_PLAY is not None:\n    MTL_PLAY.running = True\n");
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
