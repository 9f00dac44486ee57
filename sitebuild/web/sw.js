// MTL Playground service worker: repeat visits load the runtime, wheels and scripts from Cache Storage.
// Only content-addressed URLs are cached (a hash in the path or in ?v=, or Panel's version folder), so a new
// build never meets a stale file: its changed files have new URLs. HTML pages always come from the network.
// On activation the cache is pruned to this build's files; nothing is downloaded ahead of use. Build __BUILD_ID__.
"use strict";
const CACHE = "mtl-playground";
const KEEP = __KEEP__;
const scope = () => self.registration.scope;
const keepSet = () => new Set(KEEP.map((u) => new URL(u, scope()).href));

function keptByThePage(url) {
  const rel = url.pathname.slice(new URL(scope()).pathname.length);
  // later.pack is the exception: the worker fetches it synchronously, which only this handler can keep
  return /^(wheels|snapshot)\/[0-9a-f]{12}\/(?!later\.pack$)/.test(rel) || /^pyodide\/[^/]+-[0-9a-f]{12}\/[^/]+\.(wasm|zip|json)$/.test(rel);
}

function cacheable(url) {
  if (url.origin !== self.location.origin) return false;
  const rel = url.href.slice(scope().length);
  return url.searchParams.has("v") || /^(pyodide\/[^/]+-[0-9a-f]{12}|(wheels|snapshot)\/[0-9a-f]{12}|_static\/panel)\//.test(rel);
}

self.addEventListener("install", (event) => {
  // Nothing is precached: a reader on a phone pays only for what this visit used (the page's worker already keeps
  // its downloads in Cache Storage, and the fetch handler below keeps the rest as it is fetched); other pages'
  // files come when the reader goes there.
  event.waitUntil(self.skipWaiting());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const keep = keepSet();
    for (const req of await cache.keys()) {
      if (!keep.has(req.url) && !new URL(req.url).pathname.includes("/_static/panel/")) await cache.delete(req);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (!cacheable(url)) return;   // HTML, build-info.json, embed.js: straight to the network
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(req, {ignoreVary: true});
    if (hit) return hit;
    const resp = await fetch(req);
    // the runtime, packs and snapshot are kept by the page's own code, which drops a copy that turns out damaged:
    // one writer per file, so a dropped copy stays dropped
    if (resp.ok && resp.type === "basic" && !keptByThePage(url)) cache.put(req, resp.clone()).catch(() => {});
    return resp;
  })());
});
