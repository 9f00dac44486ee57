// Messages to the page (loader.js), in order: a queued document change always goes out before the next message.
// Timestamps are on the page's clock (ms since its navigation started), for the progress log and the benchmark.
let pageOrigin = 0;
const post = (type, data) => {
  if (type !== "patches") flushPatches();   // messages keep their order
  self.postMessage(Object.assign({type}, data || {}));
};
const mark = (name) => post("mark", {name, t: performance.timeOrigin + performance.now() - pageOrigin});

function pyError(e) {
  // A PythonError's message is the whole traceback; its last line names the exception.
  const text = String(e && e.message ? e.message : e);
  const lines = text.trim().split("\n");
  return {message: lines[lines.length - 1], details: text};
}
