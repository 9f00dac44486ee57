# Run by the worker once the page shows the live document: from now on, Python's document changes go to the page.
from panel.io.pyodide import _link_docs_worker
from panel.io.state import state

_link_docs_worker(state.curdoc, sendPatch, setter="js")  # noqa: F821 - sendPatch is set by the worker
