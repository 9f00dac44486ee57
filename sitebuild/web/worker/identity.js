// One JS object per wasm function, on an engine that hands out two (JavaScriptCore: WebKit, Safari). The JS API says
// a table slot and the instance's export of the same function are the same object, and Emscripten relies on it: its
// getFunctionAddress finds a function's slot by that object, so on JavaScriptCore every exported function the
// dynamic linker asks the address of (updateGOT, for Pyodide's main module and for numpy's .so files) misses and
// gets a second slot: 13,071 slots at boot instead of node's 11,916, and no snapshot made in node fits (restore.js).
//
// What JavaScriptCore does, measured (WebKitGTK 2.50.6): a slot an instance's element segment fills holds a new
// object of its own (two slots of one function: two objects); its `name` is the function's index, as the export's
// is; a slot set from JS holds the very object it was set to (get returns it); a slot holding an *imported* wasm
// function holds the import itself (so its name is its index in the other module: names alone may collide).
//
// So, once an instance is made, each slot it filled (empty before, for a table it imports; every slot of a table it
// defines) whose function this instance exports is set to the export object itself: Emscripten then finds the
// export in the table, as on V8 (where updateTableMap leaves the last slot of a function in its map; every slot of
// it now holds the export, so the last one wins here too). A slot holding a function already known as some
// instance's export (an import), a JS function's wrapper (name "") or a name two of the instance's exports share is
// left alone. Installed only where the probe says it is needed; if it cannot make the probe's own module right,
// nothing is trusted (snapshotMisfit then skips the snapshot) and the table checks stay the last word anyway.
function oneObjectPerFunction() {
  const WA = WebAssembly;
  if (WA.Instance.mtlIdentity) return exportIdentity() ? "shim" : "unfixed";   // installed already
  if (exportIdentity()) return "native";
  // every export of every instance made since (their slots are right already), and the slots an instance filled
  // with a function it does not export
  const known = new WeakSet();
  const {Instance, Module, instantiate} = WA;

  // The slots of `table` empty now. Looking at all of them for each of numpy's modules was 0.15 s of WebKit's boot
  // (a table of 12-18 k slots, 20 modules), so only the slots empty at the last look and those grown since are looked
  // at again. A slot JS empties in between (Emscripten's removeFunction) is missed: no element segment fills one
  // (a module's slots are always fresh ones, at the table's end), and if one did, the table checks would tell.
  const lastLook = new WeakMap();   // table -> {length, empty}
  function emptySlots(table, from = lastLook.get(table) || {length: 0, empty: []}) {
    const empty = from.empty.filter((i) => table.get(i) === null);
    for (let i = from.length, n = table.length; i < n; i++) if (table.get(i) === null) empty.push(i);
    return empty;
  }

  // the tables `module` imports and which of their slots are empty now
  function before(module, imports) {
    const tables = [];
    for (const d of Module.imports(module)) {
      if (d.kind !== "table") continue;
      const table = imports[d.module][d.name];
      const look = {length: table.length, empty: emptySlots(table)};
      lastLook.set(table, look);
      tables.push({table, empty: look.empty, look});
    }
    return tables;
  }

  function after(module, instance, tables) {
    const exports = instance.exports, described = Module.exports(module), byName = new Map(), shared = new Set();
    for (const d of described) {
      const f = exports[d.name];
      if (d.kind === "function" && !known.has(f) && f.name !== "") {
        if (byName.has(f.name) && byName.get(f.name) !== f) shared.add(f.name);
        byName.set(f.name, f);
      } else if (d.kind === "table") {
        tables.push({table: f, empty: null});   // its own table: every slot is this instance's
      }
    }
    for (const name of shared) byName.delete(name);
    for (const {table, empty, look} of tables) {
      const fix = (i) => {
        const f = table.get(i);
        if (!f || known.has(f)) return;
        const e = byName.get(f.name);
        if (e && e !== f) table.set(i, e);
        else known.add(f);   // this instance's, not exported: no later instance's export may claim its slot
      };
      if (empty) empty.forEach(fix);
      else for (let i = 0, n = table.length; i < n; i++) fix(i);
      if (look && lastLook.get(table) === look) lastLook.set(table, {length: table.length, empty: emptySlots(table, look)});
    }
    for (const d of described) if (d.kind === "function") known.add(exports[d.name]);
  }

  // a shim that fails must not fail the instantiation: the table checks (restore.js) say what came of it
  function guarded(step, ...args) {
    try {
      return step(...args);
    } catch (e) {
      console.warn(`MTL worker: wasm export identity shim: ${e && e.message ? e.message : e}`);
      return [];
    }
  }

  function ShimInstance(module, imports) {
    if (!new.target) throw new TypeError("WebAssembly.Instance must be called with new");
    const tables = guarded(before, module, imports);
    const instance = Reflect.construct(Instance, [module, imports], new.target === ShimInstance ? Instance : new.target);
    guarded(after, module, instance, tables);
    return instance;
  }
  ShimInstance.prototype = Instance.prototype;
  ShimInstance.mtlIdentity = true;

  const fromModule = (module, imports) => {
    const tables = guarded(before, module, imports);
    return instantiate.call(WA, module, imports).then((instance) => {
      guarded(after, module, instance, tables);
      return instance;
    });
  };
  const withModule = (module, imports) => fromModule(module, imports).then((instance) => ({module, instance}));
  // instantiate(bytes) is compile, then instantiate(module): the same, with the module in hand before the instance
  WA.instantiate = (source, imports) => source instanceof Module ? fromModule(source, imports)
                                                                 : WA.compile(source).then((m) => withModule(m, imports));
  if (typeof WA.instantiateStreaming === "function") {
    WA.instantiateStreaming = typeof WA.compileStreaming === "function"
      ? (source, imports) => WA.compileStreaming(source).then((m) => withModule(m, imports))
      : (source, imports) => Promise.resolve(source).then((r) => r.arrayBuffer()).then((b) => WA.instantiate(b, imports));
  }
  WA.Instance = ShimInstance;
  return exportIdentity() ? "shim" : "unfixed";
}
if (typeof module !== "undefined") module.exports = {oneObjectPerFunction};
