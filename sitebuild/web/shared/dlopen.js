// Loading a compiled extension module (.so) at a recorded place, for the memory snapshot (snapshot.js records,
// worker/restore.js replays). Emscripten's dlopen takes a handle: a `struct dso` in the heap (Pyodide 0.27.7's
// Emscripten 3.1.58). When its "allocated" flag is set, the loader takes the data and table bases written in it
// instead of allocating new ones; when not, it writes there where it put the library. These are its offsets.
const DSO = {size: 64, allocated: 8, memoryBase: 12, memorySize: 16, tableBase: 20, tableSize: 24};

function readPlacement(M, handle) {
  const u32 = (k) => M.HEAPU32[(handle + k) >> 2];
  return {memoryBase: u32(DSO.memoryBase), memorySize: u32(DSO.memorySize), tableBase: u32(DSO.tableBase),
          tableSize: u32(DSO.tableSize)};
}

function writePlacement(M, handle, lib) {
  M.HEAPU8.fill(0, handle, handle + DSO.size);
  M.HEAP8[handle + DSO.allocated] = 1;   // "already placed": take the bases below instead of allocating
  for (const k of ["memoryBase", "memorySize", "tableBase", "tableSize"]) M.HEAPU32[(handle + DSO[k]) >> 2] = lib[k];
}

// What Pyodide's loadDynlib does (symbols local to the library), through `handle`; the handle is scratch memory,
// so the loader's record of it is dropped and the library is found by its file name too, as Python's dlopen asks.
async function loadAtHandle(M, path, handle) {
  await M.loadDynamicLibrary(path, {loadAsync: true, nodelete: true, allowUndefined: true, global: false, fs: M.FS},
                             {}, handle);
  delete M.LDSO.loadedLibsByHandle[handle];
  M.LDSO.loadedLibsByName[path.split("/").pop()] = M.LDSO.loadedLibsByName[path];
}
if (typeof module !== "undefined") module.exports = {DSO, readPlacement, writePlacement, loadAtHandle};
