// Build-time tool (run by sitebuild/snapshot.py under node, never shipped): boots the site's own Pyodide runtime, installs the
// site's pack, runs the prelude (every import the pages need) and writes a memory snapshot of the interpreter.
// A page's worker restores it instead of booting Python and importing Panel again (worker/restore.js).
//
// Pyodide 0.27.7 snapshots the wasm heap and the JS objects Python holds, but not the compiled extension modules
// (numpy's .so files) loaded after boot: their code and table slots live outside the heap. So each one is loaded
// here through a handle that records where its data and table slots went; the worker loads them again at exactly
// those places before the heap is restored (Emscripten's dlopen honours a handle's recorded bases). A hash of the
// function table lets the worker check that the layout really is the same before trusting the heap.
//
// usage: node snapshot.js <runtime dir> <pack file (gzip)> <heap out> <meta out>
//                          <json: {dir, dynlibs, env, prelude, prebuild, pages: [{module, title, slug}, ...]}>
"use strict";
const fs = require("fs");
const zlib = require("zlib");

const [runtimeDir, packFile, heapOut, metaOut, settingsJson] = process.argv.slice(2);
const settings = JSON.parse(settingsJson);
const TABLE_GAP = 64;

// What Panel imports from `js` at import time. Only the names matter here: Pyodide records the path by which Python
// reached a global object, and the worker resolves the same path against its own globals.
globalThis.XMLHttpRequest = class XMLHttpRequest {};
delete globalThis.document;   // a worker has none: Panel's import decides it runs in a worker by its absence

const {tableDigest, exportIdentity} = require("./shared/tabledigest.js");
const {readPack, writePack} = require("./shared/pack.js");
const {DSO, readPlacement, loadAtHandle} = require("./shared/dlopen.js");
const {fnv1a, xorInto, snapshotMemoryStart} = require("./shared/heapdelta.js");

// The runtime's one active data segment: where instantiation writes it and its bytes, or null when the wasm is laid out
// otherwise (the snapshot then travels whole). Its offset is `i32.const C` or `global.get` of the imported
// __memory_base (Emscripten's main module: 1024).
function dataSegment(wasm, memoryBase) {
  let i = 8;
  const leb = () => {
    let value = 0, shift = 0, byte;
    do { byte = wasm[i++]; value += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
    return value;
  };
  while (i < wasm.length) {
    const id = wasm[i++], size = leb(), end = i + size;
    if (id !== 11) { i = end; continue; }
    if (leb() !== 1 || leb() !== 0) return null;   // one segment, active, memory 0
    const op = wasm[i++];
    const offset = op === 0x41 ? leb() : op === 0x23 && leb() === 0 ? memoryBase : null;
    if (offset === null || wasm[i++] !== 0x0b) return null;
    const length = leb();
    return {offset, bytes: wasm.subarray(i, i + length)};
  }
  return null;
}

// the heap's difference from the runtime's data segment (shared/heapdelta.js), in place; what the worker needs to undo it
function subtractDataSegment(heap, M) {
  const segment = dataSegment(new Uint8Array(fs.readFileSync(runtimeDir + "/pyodide.asm.wasm")), M.___memory_base.value);
  if (!segment) return null;
  xorInto(heap, snapshotMemoryStart(heap) + segment.offset, segment.bytes);
  return {offset: segment.offset, length: segment.bytes.length, digest: fnv1a(segment.bytes)};
}

// the same for numpy's libraries: each one's memory as loading it left it; the digest goes into its record
function subtractLibraryData(heap, libs, libData) {
  libs.forEach((lib, i) => {
    if (!lib.memorySize) return;
    xorInto(heap, snapshotMemoryStart(heap) + lib.memoryBase, libData[i]);
    lib.dataDigest = fnv1a(libData[i]);
  });
}

// Freed memory still holds whatever was there (the bytes of every .pyc read during the imports, for one): zero
// it, so the snapshot compresses better. calloc hands out free blocks zeroed; those taken without moving the
// program break are free memory, given back at once. Above the break nothing is in use.
function zeroFreeMemory(M) {
  const taken = [];
  for (let size = 1 << 20; size >= 16; size >>= 2) {
    for (;;) {
      const brk = M._sbrk(0);
      const p = M._calloc(size, 1);
      if (!p) break;
      taken.push(p);
      if (M._sbrk(0) !== brk) break;
    }
  }
  for (const p of taken) M._free(p);
  const brk = M._sbrk(0);
  M.HEAPU8.fill(0, brk, M.HEAPU8.length);
}

// Each prebuilt page's document as a visit's worker sends it (python/boot.py): {slug: [docs_json, render_items]}, both
// JSON text. The build ships them beside the snapshot; the page draws its own while the heap is on its way.
function documentsAsBuilt(py) {
  const proxy = py.runPython(`{_slug: list(mtl_json_as_built(_built)[:2]) for _slug, _built in MTL_PREBUILT.items()}`);
  const docs = proxy.toJs({dict_converter: Object.fromEntries});
  proxy.destroy();
  return docs;
}

(async () => {
  const {loadPyodide} = require(runtimeDir + "/pyodide.js");
  const py = await loadPyodide({indexURL: runtimeDir + "/", _makeSnapshot: true, env: settings.env});
  const M = py._module;
  // A browser's boot may add a slot or two more than node's (seen: one, in Chromium): numpy's modules go after a gap
  const tableAtBoot = M.wasmTable.length;
  const bootDigest = tableDigest(M.wasmTable, 0, tableAtBoot);
  M.wasmTable.grow(TABLE_GAP);
  const tableBase = M.wasmTable.length;
  writePack(M.FS, readPack(new Uint8Array(zlib.gunzipSync(fs.readFileSync(packFile)))), settings.dir);
  const handle = M._calloc(DSO.size, 1);
  const libs = [];
  for (const so of settings.dynlibs) {
    const path = settings.dir + so;
    M.HEAPU8.fill(0, handle, handle + DSO.size);   // not placed yet: the loader records where it puts the library
    await loadAtHandle(M, path, handle);
    libs.push({path, ...readPlacement(M, handle)});
  }
  M._free(handle);
  // each library's memory as loading it left it, before Python ran: the worker has the same after placing it
  const libData = libs.map((lib) => M.HEAPU8.slice(lib.memoryBase, lib.memoryBase + lib.memorySize));
  // every module name Python looks for from here on: those it then does not hold failed to import (bokeh.server's,
  // without tornado) and will fail the same way in the browser, where they must not fetch later.pack first
  py.runPython(`
import sys
class MtlImportAttempts:
    names = set()
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        cls.names.add(name)
sys.meta_path.insert(0, MtlImportAttempts)`);
  py.runPython(settings.prelude);
  py.globals.set("MTL_PAGE_SPECS", py.toPy(settings.pages));
  py.runPython(settings.prebuild);
  for (const source of settings.definitions) py.runPython(source);
  const errorsProxy = py.globals.get("MTL_PREBUILD_ERRORS");
  const prebuildErrors = errorsProxy.toJs({dict_converter: Object.fromEntries});
  errorsProxy.destroy();
  const failedProxy = py.runPython(`sys.meta_path.remove(MtlImportAttempts)
sorted(n for n in MtlImportAttempts.names if n not in sys.modules)`);
  const failedImports = failedProxy.toJs();
  failedProxy.destroy();
  py.runPython("del MtlImportAttempts");
  py.runPython("del MTL_PREBUILD_ERRORS");
  // the compiled modules already imported (the build leaves them out of the pack a restored page downloads)
  const importedProxy = py.runPython(`sorted({getattr(_m, "__file__", None) or "" for _m in list(__import__("sys").modules.values())})`);
  const imported = importedProxy.toJs().filter((f) => f.startsWith(settings.dir)).map((f) => f.slice(settings.dir.length));
  importedProxy.destroy();
  // Python's own dlopen handles (numpy's modules imported above) -> library, for dlsym after the restore
  const byHandle = {};
  for (const [h, dso] of Object.entries(M.LDSO.loadedLibsByHandle)) if (h !== "0") byHandle[h] = dso.name;
  const table = {atBoot: tableAtBoot, bootDigest, base: tableBase, length: M.wasmTable.length,
                 digest: tableDigest(M.wasmTable, tableBase, M.wasmTable.length),
                 // the trait the boot's layout depends on: a worker whose engine differs skips the download
                 exportIdentity: exportIdentity()};
  // JS functions Python holds (Panel makes one with run_js at import): kept as source, evaluated again on restore
  const serializer = (value) => {
    const src = String(value);
    if (typeof value === "function" && !/\[native code\]/.test(src)) return {source: src};
    throw new Error(`the snapshot cannot keep this JS object: ${src.slice(0, 80)}`);
  };
  zeroFreeMemory(M);   // 3% smaller compressed (14.2 -> 13.7 MB measured)
  const heap = py.makeMemorySnapshot({serializer});
  const docs = documentsAsBuilt(py);   // after the snapshot: the strings made here are not in it
  const dataDelta = subtractDataSegment(heap, M);
  subtractLibraryData(heap, libs, libData);
  fs.writeFileSync(heapOut, heap);
  fs.writeFileSync(metaOut, JSON.stringify({libs, byHandle, table, heapBytes: heap.length, dataDelta, prebuildErrors,
                                            imported, failedImports, docs}));
  console.log(`snapshot: ${heap.length} bytes, ${libs.length} libraries, table ${table.length}`);
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
