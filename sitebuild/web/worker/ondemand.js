// What a live page may still need, fetched only when Python asks for it (prelude.py's last finders on sys.meta_path):
// synchronous requests, allowed in a worker (this thread is Python's, and the import waits for the file anyway).
function fetchNow(url) {
  const xhr = new XMLHttpRequest();
  xhr.open("GET", url, false);
  xhr.responseType = "arraybuffer";
  xhr.send();
  if (xhr.status !== 200) throw new Error(`${url}: HTTP ${xhr.status}`);
  received += xhr.response.byteLength;
  report(true);
  return new Uint8Array(xhr.response);
}

// A page restored from the snapshot has an empty stdlib zip: the real one, mounted where the stub was, the first time
// Python imports a standard module the snapshot does not hold.
function stdlibOnDemand(pyodide, url) {
  self.mtlLoadStdlib = () => {
    pyodide.FS.writeFile("/lib/python312.zip", fetchNow(url));
    mark("stdlib-on-demand");
  };
}

// later.pack (sitebuild/packs.py): the site's modules no page imports before it is live. mtlLaterPack(name) gives
// the pack (gzip) the first time Python looks for one of them and null for any other name, so an optional import
// that fails (`try: import pandas`) stays a plain ImportError without a download.
function laterOnDemand(cfg) {
  const later = cfg.sitePackages.later;
  const modules = new Set(later ? later.modules : []);
  self.mtlLaterPack = (name) => {
    if (!modules.has(name)) return null;
    modules.clear();
    const bytes = fetchNow(new URL(later.url, cfg.siteURL).href);
    mark("later-on-demand");
    return bytes;
  };
  // Python could not unpack it: a damaged copy must not stay in Cache Storage
  self.mtlLaterFailed = () => { forget(later.url, cfg.siteURL); };
}
