// Run a Python file inside the real Pyodide runtime under node, with a source tree copied into its FS.
// usage: node run.js INDEX_DIR SRC_DIR SCRIPT.py   (INDEX_DIR holds pyodide.js, the lock and the numpy wheel)
const fs = require("fs");
const path = require("path");
const [indexDir, srcDir, script] = process.argv.slice(2);
const { loadPyodide } = require(path.resolve(indexDir, "pyodide.js"));

function copyTree(py, src, dst) {
  py.FS.mkdirTree(dst);
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name);
    if (fs.statSync(s).isDirectory()) {
      if (name !== "__pycache__") copyTree(py, s, `${dst}/${name}`);
    } else if (name.endsWith(".py")) {
      py.FS.writeFile(`${dst}/${name}`, fs.readFileSync(s));
    }
  }
}

(async () => {
  const py = await loadPyodide({ indexURL: path.resolve(indexDir) + "/" });
  await py.loadPackage("numpy");
  copyTree(py, path.join(srcDir, "mtl_core"), "/src/mtl_core");
  py.runPython("import sys; sys.path.insert(0, '/src')");
  try {
    py.runPython(fs.readFileSync(script, "utf8"));
  } catch (e) {
    console.log(String(e));
    process.exit(1);
  }
})();
