// zstd downloads (sitebuild/pins.py ZSTDDEC: smaller than gzip, and zstddec's wasm decodes faster than the browser's
// own gzip), decoded as they arrive: the snapshot into one buffer of the size the build recorded (restore.js), the
// runtime's wasm into a stream that WebAssembly compiles as it comes (fetch.js).

// the decoder, loaded once (importScripts holds this thread: callers first put their requests on the line)
let zstdDecoder = null;
function loadZstdDecoder(url) {
  if (!zstdDecoder) {
    importScripts(url);
    const decoder = new self.ZSTDDecoder();
    zstdDecoder = decoder.init().then(() => decoder);
  }
  return zstdDecoder;
}

// `body`'s zstd stream decoded, each piece of output handed to onOutput(bytes) as soon as the decoder gives it.
// `what` names the file in errors (a damaged download, or a host that changed it, must say so, never hang).
async function decodeZstd(body, decoder, onOutput, what) {
  const queue = [];
  let ended = false;
  // the decoder pulls at most one chunk per step: step it only while a chunk waits, so it never sees the input
  // end before the download does
  const input = {[Symbol.iterator]() { return this; },
                 next: () => (queue.length ? {value: queue.shift(), done: false} : {value: undefined, done: true})};
  const frames = decoder.decodeStreaming(input);
  // Damaged input makes the decoder yield empty output forever without taking input: stop after a run of steps
  // that neither take a chunk nor give a byte (a real frame gives output or takes input at every step).
  let idle = 0;
  const pump = () => {
    while (queue.length || ended) {
      const waiting = queue.length;
      const step = frames.next();
      if (step.done) return;
      if (step.value.length) onOutput(step.value);
      idle = step.value.length || queue.length < waiting ? 0 : idle + 1;
      if (idle > 64) throw new Error(`${what} is not a zstd stream this decoder can read (damaged download?)`);
    }
  };
  const MAGIC = [0x28, 0xb5, 0x2f, 0xfd];   // a zstd frame starts with 0xFD2FB528, little-endian
  const head = [];   // the stream's first bytes, however the network cuts it into chunks
  const reader = body.getReader();
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    if (!value.length) continue;
    if (head.length < MAGIC.length) {
      head.push(...value.subarray(0, MAGIC.length - head.length));
      if (head.length === MAGIC.length && !MAGIC.every((b, i) => head[i] === b)) {
        throw new Error(`${what} is not zstd data (damaged download, or a host that changed it)`);
      }
    }
    queue.push(value);
    pump();
  }
  ended = true;
  pump();
}

// `body`'s zstd stream decoded into `out`, which it must fill exactly (its size is the build's record)
async function decodeZstdInto(body, decoder, out, what) {
  let offset = 0;
  await decodeZstd(body, decoder, (bytes) => {
    if (offset + bytes.length > out.length) throw new Error(`${what} decodes to more than ${out.length} bytes`);
    out.set(bytes, offset);
    offset += bytes.length;
  }, what);
  if (offset !== out.length) throw new Error(`${what} decoded to ${offset} bytes, not ${out.length}`);
}

// The snapshot, into `out` (its size is the build's record). `response`: the promise of the snapshot's response;
// `requested`: resolved once that request is on the line.
async function downloadZstd(response, requested, decoderURL, out) {
  response.catch(() => {});   // awaited below; a decoder that fails to load is the error to report then
  await requested;   // the decoder's script and wasm load while the snapshot's first bytes travel
  const decoder = await loadZstdDecoder(decoderURL);
  await decodeZstdInto(counted((await response).body), decoder, out, "the snapshot");
}

// The response a fetch of `url` (a .wasm) would give, made from its zstd copy `zstURL`: its body is the decoded stream
// (so it still compiles as it arrives), typed application/wasm, `size` bytes in all.
async function decodedWasmResponse(url, zstURL, decoderURL, size) {
  const compressed = await rawFetch(zstURL);
  if (!compressed.ok) throw new Error(`${zstURL}: HTTP ${compressed.status} ${compressed.statusText}`);
  const decoder = await loadZstdDecoder(decoderURL);
  let made = 0;
  const body = new ReadableStream({
    start(ctl) {
      decodeZstd(counted(compressed.body), decoder, (bytes) => {
        made += bytes.length;
        ctl.enqueue(bytes.slice());
      }, zstURL).then(() => {
        if (made !== size) throw new Error(`${zstURL} decoded to ${made} bytes, not ${size}`);
        ctl.close();
      }).catch((e) => ctl.error(e));
    },
  });
  return new Response(body, {status: 200, headers: {"Content-Type": "application/wasm", "Content-Length": String(size)}});
}

// The pack (sitebuild/packs.py), zstd-compressed, as the page downloaded it: {decoder, bytes, url} say how to read it.
// A pack that is not what the build made is "damaged" in the page's words (and dropped from Cache Storage).
async function decodedPack(packed, zstd) {
  const decoder = await loadZstdDecoder(zstd.decoder);
  const out = new Uint8Array(zstd.bytes);
  try {
    await decodeZstdInto(new Response(packed).body, decoder, out, "the pack");
  } catch (e) {
    forgetCached(zstd.url).catch(() => {});
    throw new Error(`the Python packages are damaged: ${e && e.message ? e.message : e}`);
  }
  return out;
}
