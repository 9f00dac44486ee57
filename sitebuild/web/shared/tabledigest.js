// A digest of a Pyodide runtime's function table, slots [start, end): FNV-1a over each slot's wasm function name
// (its index in the module that defines it). snapshot.js (node, build time) records it, the worker (bundled by
// sitebuild/scripts.py) checks it before trusting a snapshot's heap: one definition, so the two always agree.
function tableDigest(table, start, end) {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    const f = table.get(i);
    const s = f ? f.name : "-";
    for (let k = 0; k < s.length; k++) h = Math.imul(h ^ s.charCodeAt(k), 0x01000193) >>> 0;
    h = Math.imul(h ^ 0x2c, 0x01000193) >>> 0;
  }
  return h.toString(16);
}
if (typeof module !== "undefined") module.exports = {tableDigest};
