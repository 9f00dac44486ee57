// A ready interpreter, way 1 of 2, from scratch: boot Pyodide, install the pack, load numpy's compiled modules,
// run the prelude (every import the pages share).
// Python's environment: Panel builds its stylesheet URLs from PANEL_CDN_ROOT at import (the site's own copy); -OO,
// as the site's modules are compiled (no docstrings in memory, numpy's C ones included: sitebuild/runtime.py); code
// without column ranges (tracebacks name file and line, without the ^^^ marks: sitebuild/snapshot.py SNAPSHOT_ENV).
const pythonEnv = (cfg) => ({PANEL_CDN_ROOT: cfg.panelCdnRoot, HOME: "/home/pyodide", PYTHONOPTIMIZE: "2",
                             PYTHONNODEBUGRANGES: "1"});

async function bootFromScratch(cfg, packArrived) {
  const pyodide = await loadPyodide({indexURL: cfg.indexURL, env: pythonEnv(cfg)});
  mark("runtime-ready");
  post("phase", {phase: "packages"});
  // --cdn builds: numpy from the Pyodide CDN through Pyodide's loader. Self-contained builds: numpy is in the pack
  const compiled = cfg.lockPackages.length ? pyodide.loadPackage(cfg.lockPackages, {
    messageCallback: () => {},
    errorCallback: (m) => console.error(m),
  }) : Promise.resolve();
  writePack(pyodide.FS, readPack(await packArrived), cfg.sitePackages.dir);
  if (cfg.sitePackages.imported) {
    // the modules the snapshot had already imported travel apart (sitebuild): booting from scratch needs them
    writePack(pyodide.FS, readPack(await downloadInflated(new URL(cfg.sitePackages.imported, cfg.siteURL).href)),
              cfg.sitePackages.dir);
  }
  if (cfg.sitePackages.dynlibs.length && !(pyodide._api && pyodide._api.loadDynlib)) {
    throw new Error("this Pyodide has no _api.loadDynlib: numpy's compiled modules cannot be loaded (the build pins 0.27.7)");
  }
  for (const so of cfg.sitePackages.dynlibs) {
    // what loadPackage does for a package's extension modules: load each, symbols local to it
    await pyodide._api.loadDynlib(cfg.sitePackages.dir + so, false, []);
  }
  await compiled;
  mark("packages-ready");
  post("phase", {phase: "app"});
  mark("python-start");
  await pyodide.runPythonAsync(PY.prelude);
  mark("panel-imported");
  return pyodide;
}
