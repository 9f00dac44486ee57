// The snapshot zstd-compressed (sitebuild/pins.py ZSTDDEC: smaller than gzip, and zstddec's wasm decodes it faster
// than the browser's own gzip): decoded as the download arrives, into `out`, a buffer of the size the build recorded
// (the runtime is created from its size while it fills: restore.js). `response`: the promise of the snapshot's
// response; `requested`: resolved once that request is on the line.
async function downloadZstd(response, requested, decoderURL, out) {
  const size = out.length;
  response.catch(() => {});   // awaited below; a decoder that fails to load is the error to report then
  await requested;   // the decoder's script and wasm load while the snapshot's first bytes travel
  importScripts(decoderURL);
  const decoder = new self.ZSTDDecoder();
  await decoder.init();
  const queue = [];
  let offset = 0, ended = false;
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
      if (offset + step.value.length > size) throw new Error(`the snapshot decodes to more than ${size} bytes`);
      out.set(step.value, offset);
      offset += step.value.length;
      idle = step.value.length || queue.length < waiting ? 0 : idle + 1;
      if (idle > 64) throw new Error("the snapshot is not a zstd stream this decoder can read (damaged download?)");
    }
  };
  const MAGIC = [0x28, 0xb5, 0x2f, 0xfd];   // a zstd frame starts with 0xFD2FB528, little-endian
  const head = [];   // the stream's first bytes, however the network cuts it into chunks
  const reader = counted((await response).body).getReader();
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    if (!value.length) continue;
    if (head.length < MAGIC.length) {
      head.push(...value.subarray(0, MAGIC.length - head.length));
      if (head.length === MAGIC.length && !MAGIC.every((b, i) => head[i] === b)) {
        throw new Error("the snapshot is not zstd data (damaged download, or a host that changed it)");
      }
    }
    queue.push(value);
    pump();
  }
  ended = true;
  pump();
  if (offset !== size) throw new Error(`the snapshot decoded to ${offset} bytes, not ${size}`);
}
