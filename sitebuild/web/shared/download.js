// Content-addressed downloads, for the worker and the page alike: Cache Storage first, else the network (and then
// kept there), with the bytes counted as they pass (the page's progress bar). Every URL fetched this way has its
// content's hash in it, so a cached copy is always the right one (repeat visits, with or without the service worker).
const MTL_CACHE = "mtl-playground";
const openMtlCache = () => (self.caches ? caches.open(MTL_CACHE).catch(() => null) : Promise.resolve(null));

async function cachedFetch(url, fetchImpl) {
  const cache = await openMtlCache();
  const hit = cache && await cache.match(url).catch(() => null);
  if (hit) return hit;
  const resp = await (fetchImpl || fetch)(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status} ${resp.statusText}`);
  if (cache) cache.put(url, resp.clone()).catch(() => {});
  return resp;
}

// a body stream that reports each chunk's size to onBytes(n) as it passes
function countedStream(body, onBytes, onDone) {
  return body.pipeThrough(new TransformStream({
    transform(chunk, ctl) {
      onBytes(chunk.byteLength);
      ctl.enqueue(chunk);
    },
    flush() { if (onDone) onDone(); },
  }));
}

// A gzip body inflated as it streams in. A host may already have undone the gzip (Content-Encoding): only what
// still starts like gzip is inflated.
async function inflatedBytes(stream) {
  const reader = stream.getReader();
  const first = await reader.read();
  const rest = new ReadableStream({
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
  const gzipped = !first.done && first.value[0] === 0x1f && first.value[1] === 0x8b;
  const body = gzipped ? rest.pipeThrough(new DecompressionStream("gzip")) : rest;
  return new Uint8Array(await new Response(body).arrayBuffer());
}
