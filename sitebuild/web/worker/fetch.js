// Downloads: progress + prefetch. Pyodide fetches the wasm and the stdlib through fetch(). The worker starts those
// downloads at once, before Pyodide asks (so they overlap the runtime's own boot), and answers Pyodide's fetch()
// from them; it also counts the bytes so the page can show real progress. Reports are throttled.
let received = 0, lastReport = 0;
const report = (force) => {
  const now = Date.now();
  if (force || now - lastReport > 150) { lastReport = now; post("bytes", {received}); }
};
const rawFetch = self.fetch.bind(self);
const counted = (body) => countedStream(body, (n) => { received += n; report(false); }, () => report(true));

// A zip must start with a local header and end with its directory's end record (no comment: Pyodide's zips have
// none). One that does not (a damaged copy in Cache Storage, a cut-off download, a host's error page) is dropped
// and downloaded once more: mounted as the stdlib, it would fail much later, far from its cause.
async function isWholeZip(blob) {
  const head = new Uint8Array(await blob.slice(0, 2).arrayBuffer());
  const end = new Uint8Array(await blob.slice(-22, -18).arrayBuffer());
  return head[0] === 0x50 && head[1] === 0x4b && [0x50, 0x4b, 5, 6].every((b, i) => end[i] === b);
}

async function download(url, retry = true) {
  const resp = await cachedFetch(url, rawFetch);
  const body = await new Response(counted(resp.body)).blob();
  if (url.endsWith(".zip") && !(await isWholeZip(body))) {
    await forgetCached(url);
    if (retry) return download(url, false);
    throw new Error(`${url} is not a whole zip file (a damaged or cut-off download)`);
  }
  return {body, headers: resp.headers};
}

// a content-addressed gzip file, counted and inflated as it streams in
async function downloadInflated(url) {
  return inflatedBytes(counted((await cachedFetch(url, rawFetch)).body));
}

const prefetched = new Map();   // absolute URL -> Promise<{body, headers} | {response}>
function prefetch(urls) {
  for (const url of urls) {
    const p = download(url);
    p.catch(() => {});   // reported when Pyodide asks for it
    prefetched.set(url, p);
  }
}

// The runtime's wasm, requested now instead of when Pyodide gets to it (after pyodide.asm.js has loaded, and, with a
// snapshot, after pyodide.js has been handed the heap's buffer): Pyodide is given the response itself, unread, so
// the wasm still compiles as it streams in. With the snapshot's download beside it from the start, the runtime is
// compiled and numpy's modules placed well before the heap has arrived. `zst` ({url, decoder, bytes}, from the
// build): the wasm travels zstd-compressed (23% smaller than a host's gzip) and is decoded as it streams; what is
// kept in Cache Storage is the wasm itself, under its own URL, so a repeat visit compiles from there (and the
// browser's code cache for it works).
function prefetchStreamed(url, zst) {
  let decodedHere = false;   // then its compressed bytes were counted as they came (a copy in Cache Storage: not)
  const fetchImpl = zst ? () => { decodedHere = true; return decodedWasmResponse(url, zst.url, zst.decoder, zst.bytes); }
                        : rawFetch;
  const {response, requested} = requestNow(url, fetchImpl);
  const p = response.then((r) => {
    if (r.mtlRelayed) mark("wasm-relayed");
    return {response: r, counted: decodedHere};
  });
  p.catch(() => {});   // reported when Pyodide asks for it
  prefetched.set(url, p);
  return requested;
}

// cachedFetch(url, fetchImpl), and a promise resolved once the request is on the line (or the file came from Cache
// Storage): what to await before this thread blocks in importScripts, which holds its event loop and so the
// asynchronous steps before a request goes out (Cache Storage, the cross-page lock).
function requestNow(url, fetchImpl) {
  let onRequested;
  const requested = new Promise((resolve) => { onRequested = resolve; });
  const response = cachedFetch(url, (u) => {
    const answer = fetchImpl(u);
    onRequested();
    return answer;
  });
  response.then(onRequested, onRequested);
  return {response, requested};
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
  if (url.endsWith(".wasm")) runtimeWasmURL = url;
  const early = prefetched.get(url);
  if (early) {
    prefetched.delete(url);
    const {body, headers, response, counted: countedAlready} = await early;
    if (response) {
      if (response.body && !countedAlready) counted(response.clone().body).pipeTo(new WritableStream()).catch(() => {});
      return response;
    }
    await checkIntegrity(body, init && init.integrity, url);
    // same headers: WebAssembly.instantiateStreaming needs the application/wasm content type
    return new Response(body, {status: 200, headers});
  }
  // the wasm: from Cache Storage on a repeat visit (or after another page of this post fetched it), else from the
  // network. Counted on a clone: Pyodide gets the response untouched, so the wasm keeps streaming compilation and
  // the browser's code cache (repeat visits skip most of the compile)
  let resp;
  try {
    resp = await cachedFetch(url, (u) => rawFetch(u, init));
  } catch (e) {
    return rawFetch(input, init);   // Pyodide reports the failure in its own words
  }
  if (resp.body) counted(resp.clone().body).pipeTo(new WritableStream()).catch(() => {});
  return resp;
};

// Pyodide 0.27 only logs a failed compile of its runtime (pyodide.js: "wasm instantiation failed!") and then waits
// forever: a cut-off or garbled pyodide.asm.wasm would leave the page loading for good. Say so instead, and drop
// the copy kept in Cache Storage so that the next visit downloads it again.
let runtimeWasmURL = null;   // what self.fetch above last handed out for a *.wasm URL
// Installed once the engine's instantiateStreaming is settled (on JavaScriptCore identity.js replaces it): this
// wraps whichever it is.
function guardRuntimeInstantiation() {
  const instantiateStreaming = WebAssembly.instantiateStreaming;
  WebAssembly.instantiateStreaming = async (source, imports) => {
    try {
      return await instantiateStreaming.call(WebAssembly, source, imports);
    } catch (e) {
      const url = runtimeWasmURL || "pyodide.asm.wasm";
      if (runtimeWasmURL) forgetCached(runtimeWasmURL).catch(() => {});
      post("error", {message: "The Python runtime (WebAssembly) did not load: the download was damaged or cut off.",
                     details: `${url}: ${e && e.message ? e.message : e}`});
      throw e;
    }
  };
}
