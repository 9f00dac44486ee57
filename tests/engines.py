"""Firefox ESR and WebKitGTK for the engines tests: two small WebDriver clients with one interface, and a site server
that records every request and every page-side error.

Neither engine's driver comes from a registry here: Playwright's Firefox and WebKit builds cannot be downloaded.
Firefox ESR (Debian ``firefox-esr``) speaks WebDriver BiDi itself (``--remote-debugging-port``), over a websocket
(``websocket-client``); WebKitGTK's ``WebKitWebDriver`` (Debian ``webkit2gtk-driver``) speaks classic WebDriver over
HTTP and drives MiniBrowser, which needs a display (``xvfb-run``). Both get the same calls: ``goto``, ``js`` (the
body of an async function; its value comes back through JSON), ``wait`` and real pointer input (``click``, ``drag``).

Console errors: classic WebDriver has no console, so the server puts a small recorder first in every HTML page it
serves (``console.error``, uncaught errors, failed resource loads, unhandled rejections -> ``window.mtlErrors``);
both engines are read the same way. The request log says which files a visit downloaded (the snapshot or not).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

from browser import free_port, start_process, stop_process, wait_http

FIREFOX = os.environ.get("MTL_FIREFOX", "/usr/bin/firefox-esr")
WEBKIT_DRIVER = os.environ.get("MTL_WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver")
MINIBROWSER = os.environ.get("MTL_MINIBROWSER", "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
WINDOW = (1200, 900)

RECORDER = b"""<script>(() => {
  const errors = window.mtlErrors = [];
  const error = console.error.bind(console);
  console.error = (...a) => { errors.push(a.map(String).join(" ").slice(0, 600)); error(...a); };
  addEventListener("error", (e) => errors.push("[error] " + (e.message ||
    (e.target && (e.target.src || e.target.href)) || e)), true);
  addEventListener("unhandledrejection", (e) => errors.push("[unhandledrejection] " +
    (e.reason && e.reason.message || e.reason)));
})();</script>"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args) -> None:  # the request log is kept, not printed
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        path = pathlib.Path(self.translate_path(self.path))
        if path.suffix != ".html" or not path.is_file():
            return super().do_GET()
        body = re.sub(rb"<head>", b"<head>" + RECORDER, path.read_bytes(), count=1)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def recorded_site(directory: pathlib.Path):
    """Serve ``directory`` on a free 127.0.0.1 port; yield (base URL, the list of request paths, filled live)."""
    requests: list[str] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _wrap(body: str) -> str:
    """An async function around ``body`` whose value travels as JSON (both protocols carry strings plainly)."""
    return f"(async (...args) => {{ {body} }})"


class Session:
    """What a test does in a browser tab; the subclasses carry it over their protocol."""

    name = "?"

    def goto(self, url: str) -> None:
        raise NotImplementedError

    def _call(self, source: str, args: list) -> str:
        raise NotImplementedError

    def _pointer(self, actions: list[dict]) -> None:
        raise NotImplementedError

    def js(self, body: str, *args):
        """Run ``body`` (the body of an async function of ``args``) in the page; its value, through JSON."""
        out = self._call(f"(...a) => {_wrap(body)}(...a).then((v) => JSON.stringify(v === undefined ? null : v))", args)
        return json.loads(out)

    def wait(self, body: str, timeout: float, *args, what: str = ""):
        """Poll ``body`` until it returns something truthy; that value (TimeoutError after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(body, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {what or body} not true within {timeout:.0f} s")
            time.sleep(0.25)

    def click(self, x: float, y: float) -> None:
        self._pointer([_move(x, y), {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}])

    def drag(self, x0: float, y0: float, x1: float, y1: float, steps: int = 6) -> None:
        moves = [_move(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps, 50) for k in range(1, steps + 1)]
        self._pointer([_move(x0, y0), {"type": "pointerDown", "button": 0}, *moves, {"type": "pointerUp", "button": 0}])


def _move(x: float, y: float, duration: int = 0) -> dict:
    return {"type": "pointerMove", "x": round(x), "y": round(y), "origin": "viewport", "duration": duration}


def _pointer_source(actions: list[dict]) -> list[dict]:
    return [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": actions}]


class BiDiSession(Session):
    """Firefox over WebDriver BiDi: one websocket, commands answered by id."""

    name = "firefox"

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=300, suppress_origin=True)
        self.next_id = 0
        self.send("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})
        self.context = self.send("browsingContext.getTree", {})["contexts"][0]["context"]
        self.send(
            "browsingContext.setViewport", {"context": self.context, "viewport": dict(zip(("width", "height"), WINDOW))}
        )

    def send(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") != self.next_id:
                continue  # an event: nothing subscribed reaches here but what the session sends by default
            if msg.get("type") == "error" or "error" in msg:
                raise RuntimeError(f"firefox: {method}: {msg.get('error')}: {msg.get('message', '')[:2000]}")
            return msg["result"]

    def goto(self, url: str) -> None:
        self.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def _call(self, source: str, args: list) -> str:
        res = self.send(
            "script.callFunction",
            {
                "functionDeclaration": source,
                "arguments": [{"type": "string", "value": json.dumps(a)} for a in args],
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
            },
        )
        if res.get("type") == "exception":
            raise RuntimeError(f"firefox: script failed: {res['exceptionDetails'].get('text', res)}")
        return res["result"]["value"]

    def js(self, body: str, *args):  # BiDi hands arguments over as strings: parse them on the page's side
        parsed = "args = args.map((a) => JSON.parse(a));\n" + body
        return super().js(parsed, *args)

    def _pointer(self, actions: list[dict]) -> None:
        self.send("input.performActions", {"context": self.context, "actions": _pointer_source(actions)})


class ClassicSession(Session):
    """WebKitGTK over classic WebDriver (HTTP + JSON)."""

    name = "webkit"

    def __init__(self, base: str):
        self.base = base
        caps = {"webkitgtk:browserOptions": {"binary": MINIBROWSER, "args": ["--automation"]}}
        self.id = self.send("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        self.send("POST", f"/session/{self.id}/timeouts", {"script": 300_000, "pageLoad": 300_000})
        self.send("POST", f"/session/{self.id}/window/rect", dict(zip(("width", "height"), WINDOW)))

    def send(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=330) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"webkit: {method} {path}: {e.read()[:2000]!r}") from None

    def goto(self, url: str) -> None:
        self.send("POST", f"/session/{self.id}/url", {"url": url})

    def _call(self, source: str, args: list) -> str:
        script = (
            "const done = arguments[arguments.length - 1];"
            f"({source})(...Array.from(arguments).slice(0, -1)).then(done, (e) => done({{mtlError: String(e)}}));"
        )
        out = self.send("POST", f"/session/{self.id}/execute/async", {"script": script, "args": list(args)})
        if isinstance(out, dict) and "mtlError" in out:
            raise RuntimeError(f"webkit: script failed: {out['mtlError']}")
        return out

    def _pointer(self, actions: list[dict]) -> None:
        self.send("POST", f"/session/{self.id}/actions", {"actions": _pointer_source(actions)})
        self.send("DELETE", f"/session/{self.id}/actions")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("DELETE", f"/session/{self.id}")


FIREFOX_PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "browser.safebrowsing.update.enabled": False,
    "network.dns.disableIPv6": True,
}


@contextlib.contextmanager
def firefox():
    """A BiDiSession in headless Firefox ESR with a fresh profile."""
    if not pathlib.Path(FIREFOX).exists():
        raise RuntimeError(f"{FIREFOX} not found: run scripts/setup.sh test (apt-get install firefox-esr)")
    profile = pathlib.Path(tempfile.mkdtemp(prefix="mtl-firefox-"))
    (profile / "user.js").write_text("".join(f"user_pref({k!r}, {json.dumps(v)});\n" for k, v in FIREFOX_PREFS.items()))
    port = free_port()
    args = [FIREFOX, "--headless", "--no-remote", "--profile", str(profile), f"--remote-debugging-port={port}"]
    proc = start_process(
        [*args, "about:blank"], cwd=profile, log_name="engine-firefox", env={"MOZ_CRASHREPORTER_DISABLE": "1"}
    )
    try:
        _wait_port(port, proc, 90)
        session = BiDiSession(f"ws://127.0.0.1:{port}/session")
        try:
            yield session
        finally:
            with contextlib.suppress(Exception):
                session.send("session.end", {})
    finally:
        stop_process(proc)
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def webkit():
    """A ClassicSession in WebKitGTK's MiniBrowser, on a virtual display of its own (xvfb-run)."""
    for tool in (WEBKIT_DRIVER, MINIBROWSER, shutil.which("xvfb-run") or "/usr/bin/xvfb-run"):
        if not pathlib.Path(tool).exists():
            raise RuntimeError(f"{tool} not found: run scripts/setup.sh test (apt-get install webkit2gtk-driver xvfb)")
    port = free_port()
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", WEBKIT_DRIVER, f"--port={port}"]
    proc = start_process(cmd, cwd=tempfile.gettempdir(), log_name="engine-webkit")
    try:
        wait_http(f"http://127.0.0.1:{port}/status", timeout=60, proc=proc)
        session = ClassicSession(f"http://127.0.0.1:{port}")
        try:
            yield session
        finally:
            session.close()
    finally:
        _stop_group(proc)


def _wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the browser exited early with code {proc.returncode} (test-artifacts/engine-*.log)")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


def _stop_group(proc: subprocess.Popen) -> None:
    """xvfb-run starts Xvfb and the driver beside it: end the whole session it was started in (ours alone)."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    stop_process(proc)


ENGINES = {"firefox": firefox, "webkit": webkit}
