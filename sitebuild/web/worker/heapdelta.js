// The other half of shared/heapdelta.js: a copy of the runtime's data segment as instantiating pyodide.asm.wasm wrote
// it into memory (before the runtime's constructors ran: wasm semantics, so the same bytes in every engine), to XOR
// back into the heap snapshot before it is copied in. Returns {kept: () => the copy or null, release: () => unwrap}.
function keepRuntimeData(region) {
  let kept = null;
  const keep = (imports) => {
    const memory = imports && imports.env && imports.env.memory;
    // the runtime is the first instance that writes into an imported memory of that size (the engine probe has none)
    if (kept || !(memory instanceof WebAssembly.Memory) || memory.buffer.byteLength < region.offset + region.length) return;
    kept = new Uint8Array(memory.buffer, region.offset, region.length).slice();
  };
  const originals = {instantiate: WebAssembly.instantiate, instantiateStreaming: WebAssembly.instantiateStreaming};
  for (const [name, original] of Object.entries(originals)) {
    WebAssembly[name] = async function (source, imports) {
      const result = await original.call(WebAssembly, source, imports);
      keep(imports);
      return result;
    };
  }
  return {kept: () => kept, release: () => Object.assign(WebAssembly, originals)};
}

// the heap as the build took it: a region's bytes, as this runtime holds them (`kept`), XORed back into it (a no-op
// without a recorded region). `what` names the region in errors.
function addKeptData(heap, region, kept, what) {
  if (!region) return;
  if (!kept) throw new Error(`${what} was not seen being instantiated`);
  const digest = fnv1a(kept);
  if (digest !== region.digest) throw new Error(`${what} (digest ${digest}) is not the snapshot's (${region.digest})`);
  xorInto(heap, snapshotMemoryStart(heap) + region.offset, kept);
}

// numpy's libraries' memory right after they were placed (restore.js), before Python has run: [{region, kept}]
const keepLibraryData = (M, libs) => libs.filter((lib) => lib.dataDigest).map((lib) => ({
  region: {offset: lib.memoryBase, length: lib.memorySize, digest: lib.dataDigest, path: lib.path},
  kept: M.HEAPU8.slice(lib.memoryBase, lib.memoryBase + lib.memorySize),
}));
