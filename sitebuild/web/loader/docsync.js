// Document sync, page <-> worker. The reader's changes go to Python one batch at a time: while Python is busy with
// one, later changes wait here, the newest value of each property replacing older ones ("idle" sends the rest).
// Python's changes arrive as batches of patches, applied without echoing them back.
function docSync(worker) {
  let jsdoc = null, busy = false, queued = [], patching = 0;
  function sendChange(event) {
    if ((event.setter_id != null && event.setter_id === "py") || patching > 0) return;
    if (busy && event.model && event.attr) {
      queued = queued.filter((o) => !(o.model === event.model && o.attr === event.attr));
      queued.push(event);
      return;
    }
    busy = true;
    worker.postMessage({type: "patch", patch: jsdoc.create_json_patch([event])});
  }
  return {
    attach(doc) {
      jsdoc = doc;
      jsdoc.on_change(sendChange, false);
    },
    apply(patches) {
      try {
        patching += 1;
        for (const {patch, buffers} of patches) jsdoc.apply_json_patch(patch, buffers);
      } finally {
        patching -= 1;
      }
    },
    // Tell Python the values of ``attrs`` of ``model`` as the page has them now, as the page of a Bokeh server does
    // for changes made while its views were built: those came before attach() listened (loader/main.js: Panel's
    // Location view sets the address it was opened with, which Python may have changed while building the page).
    report(model, attrs) {
      if (!attrs.length) return;
      const events = attrs.map((attr) => ({kind: "ModelChanged", model: {id: model.id}, attr, new: model[attr]}));
      busy = true;
      worker.postMessage({type: "patch", patch: {events}});
    },
    idle() {
      if (queued.length) {
        const patch = jsdoc.create_json_patch(queued);
        queued = [];
        worker.postMessage({type: "patch", patch});
      } else {
        busy = false;
      }
    },
  };
}
