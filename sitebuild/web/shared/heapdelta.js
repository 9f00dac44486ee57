// The heap snapshot travels as its difference from the runtime's data segment: the static data (4.6 MB: type
// objects, strings, Python's frozen modules) that instantiating pyodide.asm.wasm writes into memory, most of it
// unchanged when the snapshot is taken. snapshot.js XORs that region of the heap with the segment, so the unchanged
// bytes become zeros and compress to almost nothing (1.1 MB less to download); the worker, which instantiates the
// same wasm before it restores the heap, keeps a copy of the segment as instantiation wrote it and XORs it back
// (worker/heapdelta.js). A digest of the segment checks both sides hold the same bytes.

// FNV-1a, 32 bits: a check that two copies of the same bytes are the same, not a defence against tampering (the
// files are content-addressed and come from one build)
function fnv1a(bytes) {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16);
}

// heap[at + i] ^= data[i]: applied once it makes the difference, applied again it undoes it
function xorInto(heap, at, data) {
  if ((heap.byteOffset + at) % 4 === 0 && data.byteOffset % 4 === 0 && data.length % 4 === 0) {
    const h = new Uint32Array(heap.buffer, heap.byteOffset + at, data.length / 4);
    const d = new Uint32Array(data.buffer, data.byteOffset, data.length / 4);
    for (let i = 0; i < d.length; i++) h[i] ^= d[i];
  } else {
    for (let i = 0; i < data.length; i++) heap[at + i] ^= data[i];
  }
}

// Pyodide's snapshot: a header, then the memory from byte `heapStart` on (its second u32: pyodide.js makeSnapshot)
const snapshotMemoryStart = (snapshot) => new DataView(snapshot.buffer, snapshot.byteOffset, 8).getUint32(4, true);

if (typeof module !== "undefined") module.exports = {fnv1a, xorInto, snapshotMemoryStart};
