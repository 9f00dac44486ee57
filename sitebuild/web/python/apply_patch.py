# Defines the handler of each batch of document changes the reader makes on the page: run at build time into the
# snapshot (sitebuild/snapshot.py), else once by the worker when the page goes live. A function, compiled once: the
# worker ran (and so compiled) this file for every batch, ~10 ms of each click's or slider's answer in Pyodide.
from panel.io.pyodide import _convert_json_patch
from panel.io.state import state


def mtl_apply_patch(patch):
    state.curdoc.apply_json_patch(_convert_json_patch(patch), setter="js")
