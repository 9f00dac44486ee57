// A download another page of this browser is making right now (the other widget of a post), relayed to this page as
// its bytes arrive, over a BroadcastChannel named after the URL (content-addressed: the same bytes for every page).
// Without it the second widget waited until the first had the whole file in Cache Storage before it could even start
// on it: its runtime and its heap came ~1 s after the first's (download.js has the lock that decides who downloads).
const RELAY_CHANNEL = "mtl-playground relay ";
const canRelay = typeof BroadcastChannel === "function";

// The downloading page's side, opened as soon as it holds the file's lock (a page that asks meanwhile is noted and
// answered once the response is there). start(resp) returns the response to use instead of `resp`: the same bytes,
// also offered to every page that asks, from the first chunk. `done` resolves once the last of it is sent (or the
// download failed); close() when the lock is let go, after `done`.
function offerRelay(url) {
  if (!canRelay) return {start: (resp) => resp, fail: () => {}, close: () => {}, done: Promise.resolve()};
  const channel = new BroadcastChannel(RELAY_CHANNEL + url);
  const chunks = [], asked = [], answered = new Set();
  let head = null, end = null;   // end: {} once whole, {error} if the download broke
  const answer = (id) => {
    if (answered.has(id)) return;   // a page asks again until answered: once only, or it would get the bytes twice
    answered.add(id);
    channel.postMessage({to: id, head, chunks, seq: chunks.length, end});
  };
  channel.onmessage = (e) => {
    const id = e.data && e.data.join;
    if (!id) return;
    if (head || end) answer(id);
    else asked.push(id);
  };
  let passed;
  const allSent = new Promise((resolve) => { passed = resolve; });
  const finish = (how) => {
    end = how;
    channel.postMessage({end, seq: chunks.length});
    passed();
  };
  async function pass(body) {
    const reader = body.getReader();
    try {
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        chunks.push(value);
        // a page that asks later gets what came so far in its answer: nobody asked yet, no copy to make
        if (answered.size) channel.postMessage({chunk: value, seq: chunks.length - 1});
      }
      finish({});
    } catch (e) {
      finish({error: String(e && e.message ? e.message : e)});
    }
  }
  return {
    done: allSent,
    start(resp) {
      if (!resp.body) {
        finish({error: "no body"});
        return resp;
      }
      head = {status: resp.status, statusText: resp.statusText, headers: [...resp.headers]};
      const [mine, theirs] = resp.body.tee();
      for (const id of asked.splice(0)) answer(id);
      pass(theirs);
      return new Response(mine, {status: resp.status, statusText: resp.statusText, headers: resp.headers});
    },
    fail(e) {
      if (!end) finish({error: String(e && e.message ? e.message : e)});
      for (const id of asked.splice(0)) answer(id);
    },
    close() {
      if (!end) finish({error: "not downloaded here"});
      channel.close();
      chunks.length = 0;
    },
  };
}

// The asking page's side: the response the downloading page is getting, streamed as it relays it; null if it offers
// none (it broke, found the file already kept, or is not answering) before `lockFreed` resolves, i.e. before the
// downloading page let the lock go. If that page goes away halfway (its frame removed), the rest comes from
// `resume()`, the body of a download of the whole file made here, less what was already relayed.
function joinRelay(url, lockFreed, resume) {
  if (!canRelay) return Promise.resolve(null);
  return new Promise((resolve) => {
    const channel = new BroadcastChannel(RELAY_CHANNEL + url);
    const me = `${Date.now()}-${Math.random()}`;
    let ctl = null, next = 0, relayed = 0, started = false, ended = false, cancelled = false;
    const leave = () => {   // no more from the channel
      ended = true;
      clearInterval(asking);
      channel.close();
    };
    const body = new ReadableStream({
      start(c) { ctl = c; },
      cancel() {   // the reader gave up on it (a decoder that found it damaged): nothing more goes in
        cancelled = true;
        leave();
      },
    });
    const put = (chunk) => {
      relayed += chunk.byteLength;
      ctl.enqueue(chunk);
    };
    const stop = (error) => {
      leave();
      if (error) ctl.error(new Error(`${url}: ${error}`));
      else ctl.close();
    };
    channel.onmessage = (e) => {
      const m = e.data || {};
      if (!started) {
        if (m.to !== me) return;   // the broadcast chunks before this answer are in it
        started = true;
        clearInterval(asking);
        if (m.end && m.end.error) {
          channel.close();
          return resolve(null);
        }
        for (const chunk of m.chunks) put(chunk);
        next = m.seq;
        if (m.end) stop();
        return resolve(new Response(body, {status: m.head.status, statusText: m.head.statusText,
                                           headers: m.head.headers}));
      }
      if (ended || m.seq === undefined || m.to) return;
      if (m.seq !== next) return stop("a relayed piece is missing");
      if (m.chunk) {
        put(m.chunk);
        next += 1;
      } else if (m.end) {
        stop(m.end.error);
      }
    };
    const ask = () => channel.postMessage({join: me});
    const asking = setInterval(ask, 250);   // the downloading page may not have opened its channel yet
    ask();
    lockFreed.then(() => {
      if (!started) {
        clearInterval(asking);
        channel.close();
        resolve(null);
      } else if (!ended) {
        // its last pieces may still be on their way (sent before it let the lock go): a little time for them
        setTimeout(() => {
          if (ended) return;
          leave();
          carryOn(ctl, relayed, resume, () => cancelled).catch((e) => {
            if (!cancelled) ctl.error(new Error(`${url}: ${e && e.message ? e.message : e}`));
          });
        }, 1000);
      }
    });
  });
}

// the rest of a relay cut off after `relayed` bytes, from a download of the whole file (`resume()`: its body), until
// the reader gives up on it (`cancelled()`)
async function carryOn(ctl, relayed, resume, cancelled) {
  const reader = (await resume()).getReader();
  let skip = relayed;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    if (cancelled()) return reader.cancel();
    const n = Math.min(skip, value.byteLength);
    skip -= n;
    if (n < value.byteLength) ctl.enqueue(value.subarray(n));
  }
  if (skip) throw new Error("the file is shorter than what was relayed of it");
  if (!cancelled()) ctl.close();
}

if (typeof module !== "undefined") module.exports = {offerRelay, joinRelay};
