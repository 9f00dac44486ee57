// Content-addressed downloads, for the worker and the page alike: Cache Storage first, else the network (and then
// kept there), with the bytes counted as they pass (the page's progress bar). Every URL fetched this way has its
// content's hash in it, so a cached copy is always the right one (repeat visits, with or without the service worker).
const MTL_CACHE = "mtl-playground";
const openMtlCache = () => (self.caches ? caches.open(MTL_CACHE).catch(() => null) : Promise.resolve(null));

const beingKept = new Map();   // url -> the promise of its copy in Cache Storage, while it is being written

async function fetchOk(url, fetchImpl) {
  const resp = await (fetchImpl || fetch)(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status} ${resp.statusText}`);
  return resp;
}

async function fetchAndKeep(url, fetchImpl, cache, relay) {
  let resp = await fetchOk(url, fetchImpl);
  if (relay) resp = relay.start(resp);
  const kept = cache ? cache.put(url, resp.clone()).catch(() => {}) : Promise.resolve();
  beingKept.set(url, kept);
  kept.then(() => beingKept.delete(url));
  return {resp, kept};
}

// Drop a copy that turned out unusable (damaged, cut off): the next visit downloads the file again. Waits for a
// copy still being written, which would otherwise land after the delete.
async function forgetCached(url) {
  await beingKept.get(url);
  const cache = await openMtlCache();
  if (cache) await cache.delete(url).catch(() => {});
}

// Two pages of one post (two iframes) ask for the same files at the same time: the first to ask downloads a file
// while holding a lock named after it, and relays its bytes as they arrive to the other page, which asked meanwhile
// (relay.js); a page that asks once the copy is kept reads it from Cache Storage. The caller gets the response at
// once; the lock is held until the copy is stored. Without the Web Locks API (or Cache Storage) every page downloads
// for itself. A relayed response says so (`mtlRelayed`).
async function cachedFetch(url, fetchImpl) {
  const cache = await openMtlCache();
  const hit = cache && await cache.match(url).catch(() => null);
  if (hit) return hit;
  if (!cache || !(self.navigator && navigator.locks)) return (await fetchAndKeep(url, fetchImpl, cache)).resp;
  const lock = `mtl-playground ${url}`;
  return new Promise((resolve, reject) => {
    navigator.locks.request(lock, {ifAvailable: true}, (held) => (held ? lead(url, fetchImpl, cache, resolve, reject)
                                                                        : follow(url, lock, fetchImpl, cache, resolve, reject)))
      .catch(reject);
  });
}

// with the file's lock held (until the copy is stored and the relay has sent the last byte)
async function lead(url, fetchImpl, cache, resolve, reject) {
  const relay = offerRelay(url);
  try {
    const again = await cache.match(url).catch(() => null);
    if (again) return resolve(again);
    const {resp, kept} = await fetchAndKeep(url, fetchImpl, cache, relay);
    resolve(resp);
    await Promise.all([kept, relay.done]);
  } catch (e) {
    relay.fail(e);
    reject(e);
  } finally {
    relay.close();
  }
}

// another page holds the file's lock: its download, relayed; else (it offers none) the file once the lock is free
function follow(url, lock, fetchImpl, cache, resolve, reject) {
  let settled = false, lockFree;
  const freed = new Promise((r) => { lockFree = r; });
  const resume = async () => (await fetchOk(url, fetchImpl)).body;   // the relaying page went away halfway
  joinRelay(url, freed, resume).then((relayed) => {
    if (!relayed || settled) return;
    settled = true;
    relayed.mtlRelayed = true;
    resolve(relayed);
  });
  navigator.locks.request(lock, () => {
    lockFree();
    if (!settled) {
      settled = true;
      return lead(url, fetchImpl, cache, resolve, reject);
    }
    return null;
  }).catch((e) => { if (!settled) reject(e); });
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
