// Reader of the site's pack (sitebuild/pack.py is the format's one definition): uint32 LE n, n bytes of JSON
// [[path, size], ...], then the files' bytes in that order. Used by the worker and by snapshot.js (node).
function readPack(bytes) {
  try {
    const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
    const index = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + n)));
    return {bytes, index, start: 4 + n};
  } catch (e) {   // a garbled download: say what it was (JSON.parse's message quotes the garbage, lines and all)
    throw new Error(`the Python packages are damaged: ${bytes.length} bytes that are not a pack (${e.name})`);
  }
}

// write every file of a read pack under dir (site-packages) in Emscripten's FS
function writePack(FS, {bytes, index, start}, dir) {
  const made = new Set();
  let offset = start;
  for (const [path, size] of index) {
    if (path.startsWith("/") || path.split("/").includes("..")) throw new Error(`bad path in the pack: ${path}`);
    const parent = dir + path.slice(0, path.lastIndexOf("/") + 1);
    if (!made.has(parent)) {
      FS.mkdirTree(parent);
      made.add(parent);
    }
    FS.writeFile(dir + path, bytes.subarray(offset, offset + size));
    offset += size;
  }
  if (offset !== bytes.length) throw new Error(`the pack is ${bytes.length} bytes, its index says ${offset}`);
}
if (typeof module !== "undefined") module.exports = {readPack, writePack};
