// Document sync, worker -> page. Python reports each document change on its own (a training tick changes ten
// sources and ranges at once): they travel to the page together, one message per turn of this thread's event
// loop, and the page applies them in one go.
let outbox = [];
function flushPatches() {
  if (!outbox.length) return;
  const patches = outbox;
  outbox = [];
  post("patches", {patches});
}
function sendPatch(patch, buffers) {
  if (!outbox.length) setTimeout(flushPatches, 0);
  outbox.push({patch, buffers});
}
