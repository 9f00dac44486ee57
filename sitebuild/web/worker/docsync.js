// Document sync, worker -> page. Python reports each document change on its own (a training tick changes ten
// sources and ranges at once): they travel to the page together, in one message sent as soon as Python hands this
// thread back, and the page applies them in one go. A microtask, not a timer: when ticks take longer than their
// period, the next tick's timer is already due and would run first, and the page would see no change for minutes.
let outbox = [];
function flushPatches() {
  if (!outbox.length) return;
  const patches = outbox;
  outbox = [];
  post("patches", {patches});
}
function sendPatch(patch, buffers) {
  if (!outbox.length) queueMicrotask(flushPatches);
  outbox.push({patch, buffers});
}
// Python sends what it has so far at once, in a message of its own, when the page should show it before the rest
// (app/common.py send_now: a Reset's status line before the new run's redraw, a long task on a slow page)
self.mtlFlushPatches = flushPatches;
