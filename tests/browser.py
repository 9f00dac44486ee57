"""Shared real-browser harness: Debian Chromium driven by the pip ``playwright`` package.

Every host but localhost is unresolvable, so a page that tries to reach a CDN shows up as a failed request
(recorded here) instead of leaving the machine. Used by the panel-serve tests and the static-site tests.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlparse

_ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # the benchmarks import this module from bench/ too
    sys.path.insert(0, _ROOT)
from sitebuild.previews import CHROMIUM_FLAGS, headless_chromium  # noqa: E402

CHROMIUM = os.environ.get("MTL_CHROMIUM", "/usr/bin/chromium")
# the build's own flags (sitebuild/previews.py: no network but localhost, no background services), and no QUIC
CHROMIUM_ARGS = [*CHROMIUM_FLAGS, "--disable-quic"]
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "test-artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# how long a test waits for one answer of the app (a slider, a click, the URL): generous, as the machine may be busy
# (two CPU-bound processes beside the suite made 10 s run out); a wait ends as soon as the answer is there, and the
# benchmarks in bench/ measure how fast it comes
ANSWER_MS = 30_000


def plot_point_js(doc: str) -> str:
    """A page function ``([name, x, y]) => [px, py]``: where data point (x, y) of plot ``name`` is in the viewport.

    It scrolls the plot into view, then measures until two frames in a row agree: a control that appears
    above the plot (Edit data's buttons, a status line) moves it after the data changed, and a click measured
    before that move lands a row of pixels off.
    """
    return f"""async ([name, x, y]) => {{
  const view = Bokeh.index.find_one({doc}.get_model_by_name(name));
  const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const where = () => {{
    const r = view.canvas_view.el.getBoundingClientRect();
    return [r.left + view.frame.x_scale.compute(x), r.top + view.frame.y_scale.compute(y)];
  }};
  let last = null;
  for (let i = 0; i < 100; i++) {{
    view.canvas_view.el.scrollIntoView({{block: "center"}});
    await frame();
    const now = where();
    if (last && now[0] === last[0] && now[1] === last[1]) return now;
    last = now;
  }}
  return last;
}}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200 (or fail with the server's output)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except Exception as exc:  # noqa: BLE001 - any failure means "not up yet"
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


@dataclass
class PageWatch:
    """Collects what a page did that a test must fail on."""

    console_errors: list[str] = field(default_factory=list)
    offsite_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        def on_console(msg):
            line = f"[{msg.type}] {msg.text}"[:600]
            self.console.append(line)
            if msg.type == "error":
                self.console_errors.append(line)

        def on_request(req):
            host = urlparse(req.url).hostname
            if req.url.startswith(("data:", "blob:", "about:")):
                return
            if host not in LOCAL_HOSTS:
                self.offsite_requests.append(req.url)

        page.on("console", on_console)
        page.on("pageerror", lambda e: self.console_errors.append(f"[pageerror] {e}"[:600]))
        page.on("request", on_request)
        page.on("requestfailed", lambda r: self.failed_requests.append(f"{r.url} {r.failure}"))

    def problems(self, ignore_console: tuple[str, ...] = ()) -> list[str]:
        errs = [e for e in self.console_errors if not any(s in e for s in ignore_console)]
        return errs + [f"off-site request: {u}" for u in self.offsite_requests]


@contextlib.contextmanager
def chromium():
    """Yield a Playwright Browser: headless Debian Chromium with a fresh user-data dir."""
    from playwright.sync_api import sync_playwright

    if not pathlib.Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} not found: run scripts/setup.sh test (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="mtl-chromium-")
    try:
        with sync_playwright() as p:
            ctx = headless_chromium(p, profile, CHROMIUM, CHROMIUM_ARGS, viewport={"width": 1200, "height": 900})
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def throttle_cpu(page, rate: float):
    """Slow ``page``'s CPU ``rate`` times (Chromium's CPU throttling over CDP); return the CDP session.

    What a phone or a busy laptop feels like: rate 4 makes every script, layout and paint take four times as long.
    """
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    return cdp


def screenshot_on_failure(page, name: str) -> pathlib.Path | None:
    """Keep a screenshot under test-artifacts/ (called by tests when they fail)."""
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
    except Exception:  # noqa: BLE001 - a failed screenshot must not hide the real failure
        return None


def start_process(args: list[str], cwd: str | os.PathLike, log_name: str, env: dict | None = None) -> subprocess.Popen:
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"{log_name}.log", "w")
    return subprocess.Popen(
        args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
    )


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


PYTHON = sys.executable


@contextlib.contextmanager
def panel_served(target: str, log_name: str, path: str, timeout: float = 60.0):
    """``panel serve <target>`` (the app folder or one page file) on a free 127.0.0.1 port, as the README runs it;
    yields the page's base URL ``http://127.0.0.1:<port>/<path>`` once it answers, and stops the server after."""
    port = free_port()
    panel = os.path.join(os.path.dirname(PYTHON), "panel")
    cmd = [
        panel,
        "serve",
        target,
        "--address",
        "127.0.0.1",
        "--port",
        str(port),
        f"--allow-websocket-origin=127.0.0.1:{port}",
    ]
    proc = start_process(cmd, cwd=pathlib.Path(__file__).resolve().parent.parent, log_name=log_name)
    try:
        base = f"http://127.0.0.1:{port}/{path}"
        wait_http(base, proc=proc, timeout=timeout)
        yield base
    finally:
        stop_process(proc)


def run_build(out: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    """``build.py --out out [args]`` in the checkout (the static-site tests' builds)."""
    return subprocess.run(
        [PYTHON, os.path.join(_ROOT, "build.py"), "--out", str(out), *args],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def serve_dir(directory: pathlib.Path, name: str) -> tuple[subprocess.Popen, str]:
    """``python -m http.server`` over ``directory`` on a free 127.0.0.1 port: (process, base URL)."""
    port = free_port()
    proc = start_process(
        [PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(directory)],
        cwd=_ROOT,
        log_name=name,
    )
    wait_http(f"http://127.0.0.1:{port}/index.html", proc=proc, timeout=30)
    return proc, f"http://127.0.0.1:{port}"
