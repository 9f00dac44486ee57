"""Serving a built site on 127.0.0.1: ``--serve``, the preview photographs and the benchmarks use the same handler
(the MIME types Pyodide needs: ``application/wasm`` for streaming compilation)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import pathlib
import threading


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".whl": "application/octet-stream",
        ".zip": "application/zip",
    }

    def log_message(self, *args):  # quiet: one line per request is noise here
        pass


def make_server(directory: pathlib.Path, port: int = 0, handler=Handler) -> http.server.ThreadingHTTPServer:
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(directory)))


@contextlib.contextmanager
def background_server(directory: pathlib.Path, handler=Handler):
    """Serve ``directory`` on a free port in a thread; yields its base URL (no trailing slash)."""
    srv = make_server(directory, 0, handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def serve(out: pathlib.Path, port: int) -> None:
    srv = make_server(out, port)
    print(f"serving {out} on http://127.0.0.1:{srv.server_address[1]}/  (Ctrl-C to stop)", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
