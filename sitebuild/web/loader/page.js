// The page around the app: its settings (<script id="mtl-config">, written by the build), the loading box and its
// progress, the error box, and the height an embedding parent is told about.
const cfg = JSON.parse(document.getElementById("mtl-config").textContent);
const params = new URLSearchParams(location.search);
const embed = ["1", "true", "yes"].includes((params.get("embed") || "").toLowerCase());
const root = document.documentElement;
root.dataset.mtlState = "loading";
if (embed) root.classList.add("mtl-embed");

// a change of the page's settings replaces the address rather than adding a history entry: Back leaves the page (or,
// in a blog post, the post) instead of walking through every click (app/common.py ONE_HISTORY_ENTRY_JS)
history.pushState = function (state, title, url) { history.replaceState(state, title, url); };

const state = {phase: "runtime", received: 0, previewViews: null, previewDoc: null, failed: false};
window.mtlPlayground = state;  // read by the end-to-end tests and the benchmark
// the build sets this while it photographs the interactive preview for the preview images: no Python then
const previewOnly = window.__mtlPreviewOnly === true;
const siteURL = new URL(".", location.href).href;
const here = (p) => new URL(p, siteURL).href;

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

// A start that failed must not fail the next visit too: drop every file of this page kept in Cache Storage (a
// damaged copy of any of them may be the cause; the service worker keeps the scripts), so a reload fetches them anew.
function forgetPageFiles() {
  const urls = [...document.querySelectorAll("script[src], link[rel=stylesheet][href]")].map((e) => e.src || e.href);
  urls.push(...["pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm"].map((n) => here(cfg.pyodideDir + n)));
  if (cfg.runtimeWasm) urls.push(here(cfg.runtimeWasm.url));
  if (cfg.sitePackages.zst) urls.push(here(cfg.sitePackages.zst.url));
  urls.push(...[...cfg.prefetch, cfg.worker, cfg.sitePackages.url, cfg.sitePackages.imported,
             cfg.sitePackages.later && cfg.sitePackages.later.url].filter(Boolean).map(here));
  if (cfg.snapshot) urls.push(...[cfg.snapshot.url, cfg.snapshot.doc, cfg.snapshot.decoder, cfg.snapshot.stdlib && cfg.snapshot.stdlib.full]
    .filter(Boolean).map(here));
  for (const url of urls) forgetCached(url).catch(() => {});
}

function fail(message, details) {
  if (!state.failed) forgetPageFiles();
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

// embedded: tell the parent our height (embed.js resizes the iframe)
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
