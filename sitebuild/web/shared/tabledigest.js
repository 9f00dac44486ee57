// A digest of a Pyodide runtime's function table, slots [start, end): FNV-1a over each slot's wasm function name
// (its index in the module that defines it). snapshot.js (node, build time) records it, the worker (bundled by
// sitebuild/scripts.py) checks it before trusting a snapshot's heap: one definition, so the two always agree.
// exportIdentity below is the engine trait the boot's table depends on, recorded and checked the same way.
// A JS function's wasm wrapper is named "" by JavaScriptCore and by its index by V8 and SpiderMonkey: always 0 here
// (Emscripten's convertJsFunctionToWasm makes a module that imports it as function 0 and exports it), so "" reads "0"
// (measured in WebKitGTK: 167 such slots at boot; with it, WebKit's first 11,916 digest as node's).
function tableDigest(table, start, end) {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    const f = table.get(i);
    const s = f ? f.name || "0" : "-";
    for (let k = 0; k < s.length; k++) h = Math.imul(h ^ s.charCodeAt(k), 0x01000193) >>> 0;
    h = Math.imul(h ^ 0x2c, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

// Does this engine hand out ONE JS object per wasm function? The JS API says a table slot and the instance's export
// of the same function are the same object; JavaScriptCore (WebKit, Safari) gives two. Emscripten finds a function's
// table slot by that object (addFunction), so there every function whose address the runtime takes at boot gets a
// second slot (1,155 more in Pyodide 0.27.7: 13,071 instead of node's 11,916) and no snapshot made elsewhere fits.
// A 46-byte module answers it in microseconds, before anything is downloaded. The module: one function, exported
// as "f", in slot 0 of a table exported as "t".
const IDENTITY_PROBE = [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 4, 4, 1, 112, 0, 1,
                        7, 9, 2, 1, 102, 0, 0, 1, 116, 1, 0, 9, 7, 1, 0, 65, 0, 11, 1, 0, 10, 4, 1, 2, 0, 11];
function exportIdentity() {
  const {exports} = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(IDENTITY_PROBE)));
  return exports.t.get(0) === exports.f;
}
if (typeof module !== "undefined") module.exports = {tableDigest, exportIdentity};
