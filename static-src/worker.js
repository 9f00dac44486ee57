// MTL Playground page worker: boots Pyodide, installs the site's packages, runs one page and mirrors its
// Bokeh document to the main thread (loader.js). Everything it loads comes from URLs in the start message,
// so the same file serves the self-contained site and the --cdn variant.
"use strict";

const BOOT_PY = __BOOT_PY__;  // static-src/boot.py, inlined by build.py

let pyodide = null;
const post = (type, data) => self.postMessage(Object.assign({type}, data || {}));

// ---------------------------------------------------------------- download progress
// Pyodide fetches the wasm, the stdlib and every wheel through fetch(); wrapping it lets the page show real
// bytes received instead of a spinner. Reports are throttled to a few per second.
let received = 0, lastReport = 0;
const report = (force) => {
  const now = Date.now();
  if (force || now - lastReport > 150) { lastReport = now; post("bytes", {received}); }
};
const rawFetch = self.fetch.bind(self);
self.fetch = async (input, init) => {
  const resp = await rawFetch(input, init);
  if (!resp.ok || !resp.body) return resp;
  const reader = resp.body.getReader();
  const counted = new ReadableStream({
    async pull(ctrl) {
      const {done, value} = await reader.read();
      if (done) { report(true); ctrl.close(); return; }
      received += value.byteLength;
      report(false);
      ctrl.enqueue(value);
    },
    cancel(reason) { return reader.cancel(reason); },
  });
  // same status and headers: WebAssembly.instantiateStreaming needs the application/wasm content type
  return new Response(counted, {status: resp.status, statusText: resp.statusText, headers: resp.headers});
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

async function boot(cfg) {
  post("phase", {phase: "runtime"});
  importScripts(cfg.indexURL + "pyodide.js");
  pyodide = await loadPyodide({
    indexURL: cfg.indexURL,
    // Panel builds its stylesheet URLs from PANEL_CDN_ROOT at import: point it at the site's own copy.
    env: {PANEL_CDN_ROOT: cfg.panelCdnRoot, HOME: "/home/pyodide"},
  });
  post("phase", {phase: "packages"});
  const wheels = cfg.wheels.map((w) => new URL(w, cfg.siteURL).href);
  await pyodide.loadPackage(cfg.lockPackages.concat(wheels), {
    messageCallback: () => {},
    errorCallback: (m) => console.error(m),
  });
  post("phase", {phase: "app"});
  pyodide.globals.set("sendPatch", sendPatch);
  pyodide.globals.set("MTL_PAGE", pyodide.toPy({
    module: cfg.module, title: cfg.title, location: cfg.location,
  }));
  const out = await pyodide.runPythonAsync(BOOT_PY);
  const [docs_json, render_items, root_ids] = out.toJs();
  out.destroy();
  post("render", {docs_json, render_items, root_ids});
}

// Messages from the page are handled one at a time, in order.
let queue = Promise.resolve();
self.onmessage = (event) => {
  const msg = event.data;
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
