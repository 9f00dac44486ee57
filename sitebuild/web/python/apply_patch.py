# Run by the worker for each batch of document changes the reader made on the page (`patch`, set by the worker).
from panel.io.pyodide import _convert_json_patch
from panel.io.state import state

state.curdoc.apply_json_patch(_convert_json_patch(patch), setter="js")  # noqa: F821
