// A ready interpreter, way 2 of 2, from the build's memory snapshot (snapshot.js): the interpreter as it was right
// after the prelude and the page's build. Pyodide restores the heap; numpy's compiled modules are loaded first, each
// at the data address and table slots it had when the snapshot was taken (shared/dlopen.js), so the heap's pointers
// into them hold. The snapshot comes through this thread, not the page: this thread has nothing else to do until
// it arrives (the runtime's memory is sized from it), while the page's thread is busy with BokehJS and the pack.

// Why this engine cannot use the snapshot, known before a byte of it is fetched (null: try it): its wasm functions are
// two objects each, and identity.js (installed first) could not make them one, or the snapshot was made where they
// are two. The table check after the runtime's boot (checkBootTable) stays the last word; this only spares a
// download it would throw away.
function snapshotMisfit(table) {
  if (table.exportIdentity === undefined || exportIdentity() === table.exportIdentity) return null;
  return (table.exportIdentity ? "this engine's wasm functions are two JS objects each (a table slot's and the " +
                                 "export's) and identity.js could not make them one"
                               : "the snapshot was made where wasm functions are two JS objects each") +
         ", so the two runtimes lay out the function table differently";
}

// the slots a boot makes must be the snapshot's; a few more are fine (numpy's modules start after a gap)
function checkBootTable(M, table) {
  const atBoot = M.wasmTable.length, bootDigest = tableDigest(M.wasmTable, 0, table.atBoot);
  if (atBoot < table.atBoot || atBoot > table.base || bootDigest !== table.bootDigest) {
    throw new Error(`the runtime's function table (${atBoot} slots at boot, digest ${bootDigest}) is not the ` +
                    `snapshot's (${table.atBoot} slots, ${table.bootDigest})`);
  }
  M.wasmTable.grow(table.base - atBoot);
}

async function placeLibraries(M, snap) {
  const handle = M._calloc(DSO.size, 1);   // scratch: the restored heap overwrites it
  for (const lib of snap.libs) {
    writePlacement(M, handle, lib);
    await loadAtHandle(M, lib.path, handle);
  }
  for (const [h, name] of Object.entries(snap.byHandle)) M.LDSO.loadedLibsByHandle[h] = M.LDSO.loadedLibsByName[name];
  const digest = tableDigest(M.wasmTable, snap.table.base, M.wasmTable.length);
  if (M.wasmTable.length !== snap.table.length || digest !== snap.table.digest) {
    throw new Error(`function table differs from the snapshot's (${M.wasmTable.length} slots, digest ${digest}; ` +
                    `expected ${snap.table.length}, ${snap.table.digest})`);
  }
}

// The heap's download, decoded into one buffer of the size the build recorded: the runtime is created from that size
// at once, and its wasm compiles and numpy's modules are placed while the heap is still on its way (pyodide.js reads
// the buffer's bytes only once the runtime is ready: see restoreSnapshot).
function downloadHeap(cfg) {
  const snap = cfg.snapshot;
  const url = new URL(snap.url, cfg.siteURL).href;
  const heap = new Uint8Array(snap.heapBytes);
  const {response, requested} = requestNow(url, rawFetch);
  // the other widget of a post downloading it too: its bytes relayed (shared/relay.js)
  response.then((r) => { if (r.mtlRelayed) mark("snapshot-relayed"); }, () => {});
  const filled = snap.codec === "zstd"
    ? downloadZstd(response, requested, new URL(snap.decoder, cfg.siteURL).href, heap)
    : response.then((r) => inflatedBytes(counted(r.body))).then((bytes) => {
      if (bytes.length !== heap.length) throw new Error(`the snapshot is ${bytes.length} bytes, not ${heap.length}`);
      heap.set(bytes);
    });
  const arrived = filled.then(() => mark("snapshot-downloaded"));
  arrived.catch(() => {});   // awaited before the heap is used
  return {heap, arrived, requested};
}

async function restoreSnapshot(cfg, packArrived, wasmRequested) {
  const snap = cfg.snapshot;
  const {heap, arrived, requested} = downloadHeap(cfg);
  // importScripts below holds this thread (and its event loop) until each script has come: the heap's and the wasm's
  // requests, the biggest of the visit, go on the line first
  await Promise.all([requested, wasmRequested]);
  await previewOnScreen;   // worker/main.js: the compile below would compete with the page drawing its preview
  const runtimeData = snap.dataDelta ? keepRuntimeData(snap.dataDelta) : {kept: () => null, release: () => {}};
  importScripts(cfg.indexURL + "pyodide.asm.js");
  const create = self._createPyodideModule;
  if (typeof create !== "function") throw new Error("pyodide.asm.js defined no _createPyodideModule");
  self._createPyodideModule = async (moduleConfig) => {
    self._createPyodideModule = create;   // one use: a fallback boot gets Pyodide's own
    const M = await create(moduleConfig);
    mark("runtime-ready");
    post("phase", {phase: "packages"});
    writePack(M.FS, readPack(await packArrived), cfg.sitePackages.dir);
    checkBootTable(M, snap.table);
    await placeLibraries(M, snap);
    const libraryData = keepLibraryData(M, snap.libs);
    mark("packages-ready");
    // pyodide.js copies the heap into the runtime's memory as soon as this returns
    await arrived;
    addKeptData(heap, snap.dataDelta, runtimeData.kept(), "the runtime's data segment");
    for (const {region, kept} of libraryData) addKeptData(heap, region, kept, `the memory of ${region.path}`);
    return M;
  };
  try {
    importScripts(cfg.indexURL + "pyodide.js");
    const pyodide = await loadPyodide({
      indexURL: cfg.indexURL, env: pythonEnv(cfg),
      // every module the pages use is in the snapshot: an empty stdlib zip, the real one on demand (stdlibOnDemand)
      stdLibURL: snap.stdlib ? new URL(snap.stdlib.stub, cfg.siteURL).href : undefined,
      // still filling: pyodide.js sizes the runtime's memory from it, and reads it after _createPyodideModule
      _loadSnapshot: heap,
      // JS functions Python held at snapshot time were kept as their source (snapshot.js)
      _snapshotDeserializer: (kept) => (0, eval)(`(${kept.source})`),
    });
    post("phase", {phase: "app"});
    mark("snapshot-restored");
    if (snap.stdlib) stdlibOnDemand(pyodide, new URL(snap.stdlib.full, cfg.siteURL).href);
    return pyodide;
  } finally {
    self._createPyodideModule = create;
    runtimeData.release();
  }
}
