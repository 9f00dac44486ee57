"""A local static host behind a simulated network: one shared line, one RTT per response, gzip like real hosts.

    python bench/netsim.py DIR [--profile loopback|cable|4g] [--port 8000] [--host 127.0.0.1]

Serves DIR (stdlib only, one thread per connection, HTTP/1.1 keep-alive) the way a common static host would:

* one bandwidth budget for the whole server: every byte of every response (status line, headers, body) passes one
  shared line, a FIFO link that sends CHUNK bytes at a time (a token bucket of BURST_S), so parallel downloads
  split the rate between them;
* one round trip per response, waited before its first byte (request up + first byte down); the line is free for
  other responses meanwhile;
* gzip (level 6, the usual host default) for the types hosts compress (COMPRESSIBLE: html, css, js, json, wasm,
  svg, plain text) when the request's Accept-Encoding allows it, with Content-Encoding, Vary and the compressed
  Content-Length; files whose type is already compressed (.gz, .zip, .whl, .jpg, .png, .pack, ...) go as they are.
  Compressed bodies are cached by path + mtime + size (``NetSim.warm()`` compresses a whole tree up front), so a
  request never pays for compression;
* ETag / Last-Modified / ``Cache-Control: max-age=600`` (what GitHub Pages sends) and 304 answers;
* a path that leaves DIR (``..``, encoded or not, or a symlink pointing out) is refused with 403.

Every response is recorded in ``NetSim.requests`` (a list of dicts: path, status, encoding, wire bytes, times)
and every chunk put on the line in ``NetSim.chunks`` ((time, bytes, request id), ``time.perf_counter()`` clock),
so a benchmark in the same process can say how many bytes went out between two instants (``bytes_between``,
``bytes_by_request``).

Profiles: ``loopback`` (no limit, no RTT, still compressing), ``cable`` (50 Mbit/s, 20 ms), ``4g`` (12 Mbit/s,
70 ms). Not modelled: TCP/TLS handshakes, slow start, loss, upload bandwidth.
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import http.server
import mimetypes
import pathlib
import posixpath
import socket
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Profile:
    name: str
    mbit_s: float | None  # None: unlimited
    rtt_ms: float

    @property
    def bytes_per_s(self) -> float | None:
        return None if self.mbit_s is None else self.mbit_s * 1e6 / 8

    def transfer_s(self, nbytes: int, responses: int = 1) -> float:
        """The time `nbytes` need on this line, plus one RTT per response (responses in sequence: upper bound)."""
        rate = self.bytes_per_s
        return (0.0 if rate is None else nbytes / rate) + responses * self.rtt_ms / 1000


PROFILES = {
    "loopback": Profile("loopback", None, 0.0),
    "cable": Profile("cable", 50.0, 20.0),
    "4g": Profile("4g", 12.0, 70.0),
}

CHUNK = 16 * 1024  # bytes put on the line at a time: how finely parallel responses interleave
BURST_S = 0.05  # the line's bucket: up to 50 ms of line time can go out at once after an idle spell
GZIP_LEVEL = 6
CACHE_CONTROL = "max-age=600"
COMPRESSIBLE = {
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/x-javascript",
    "application/json",
    "application/manifest+json",
    "application/wasm",
    "image/svg+xml",
    "text/plain",
    "application/xml",
    "text/xml",
}
TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
    ".py": "text/plain",
    ".md": "text/plain",
    ".xml": "application/xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".zip": "application/zip",
    ".whl": "application/zip",
    ".br": "application/octet-stream",
    ".zst": "application/zstd",
    ".xz": "application/x-xz",
    ".bz2": "application/x-bzip2",
    ".tar": "application/x-tar",
    ".pack": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".data": "application/octet-stream",
}


def content_type(path: str) -> str:
    ext = posixpath.splitext(path)[1].lower()
    if ext in TYPES:
        return TYPES[ext]
    ctype, encoding = mimetypes.guess_type(path, strict=False)
    if encoding:  # e.g. a .tar.gz that slipped through: the bytes are compressed, send them untouched
        return "application/octet-stream"
    return ctype or "application/octet-stream"


def accepts_gzip(header: str | None) -> bool:
    """Does an Accept-Encoding header allow gzip (``gzip`` or ``*`` with a non-zero q)?"""
    if not header:
        return False
    star = None
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if name in ("gzip", "x-gzip"):
            return q > 0
        if name == "*":
            star = q > 0
    return bool(star)


class Link:
    """The shared line: a FIFO of CHUNK-sized slots at `rate` bytes/s, i.e. a token bucket of BURST_S seconds.

    Each writer books the next free slot for its chunk and sleeps until the slot has passed, so N parallel
    responses each get about 1/N of the rate, and the total never exceeds it (plus one bucket). Sleeps aim at
    absolute deadlines, and line time lost to a late wake-up (a loaded machine) is given back from the bucket,
    so the line keeps its rate instead of losing every oversleep.
    """

    def __init__(self, bytes_per_s: float | None):
        self.rate = bytes_per_s
        self._lock = threading.Lock()
        self._free_at = 0.0

    def pass_bytes(self, n: int) -> None:
        if not self.rate:
            return
        with self._lock:
            start = max(time.perf_counter() - BURST_S, self._free_at)
            self._free_at = done = start + n / self.rate
        delay = done - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


class _Wire:
    """The handler's wfile: everything written goes through the shared Link, chunk by chunk, and is counted."""

    def __init__(self, raw, handler: "Handler"):
        self.raw = raw
        self.handler = handler

    def write(self, data) -> int:
        sim = self.handler.server.sim
        rec = self.handler.rec
        view = memoryview(data)
        for i in range(0, len(view), CHUNK):
            piece = view[i : i + CHUNK]
            sim.link.pass_bytes(len(piece))
            self.raw.write(piece)
            t = time.perf_counter()
            with sim.lock:
                sim.chunks.append((t, len(piece), rec["id"] if rec is not None else -1))
                if rec is not None:
                    if rec["t_first"] is None:
                        rec["t_first"] = t
                    rec["wire_bytes"] += len(piece)
                    rec["t_end"] = t
        return len(view)

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return self.raw.closed


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "netsim"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this long

    def setup(self):
        super().setup()
        self.rec = None
        self.wfile = _Wire(self.wfile, self)
        self.server.sim._opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.sim._closed(self.connection)

    def log_message(self, *args):
        if self.server.sim.verbose:
            super().log_message(*args)

    def handle_one_request(self):
        self.rec = None
        try:
            super().handle_one_request()
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, socket.timeout):
            self.close_connection = True  # the client went away mid-response: nothing to tell it
            if self.rec is not None:
                self.rec["aborted"] = True
        finally:
            if self.rec is not None:
                self.rec["done"] = True

    # ------------------------------------------------------------------ requests
    def do_GET(self):
        self._serve(body=True)

    def do_HEAD(self):
        self._serve(body=False)

    def _begin(self, path: str) -> dict:
        sim = self.server.sim
        rec = {
            "id": None,
            "method": self.command,
            "path": path,
            "status": None,
            "encoding": None,
            "type": None,
            "file_bytes": None,
            "body_bytes": 0,
            "wire_bytes": 0,
            "t_request": time.perf_counter(),
            "t_first": None,
            "t_end": None,
            "conn": id(self.connection),
            "done": False,
            "aborted": False,
        }
        with sim.lock:
            rec["id"] = len(sim.requests)
            sim.requests.append(rec)
        self.rec = rec
        return rec

    def _serve(self, body: bool):
        sim = self.server.sim
        path = urlsplit(self.path).path
        rec = self._begin(self.path)
        if self.headers.get("Content-Length") not in (None, "0"):
            return self._error(400, "request bodies are not supported")
        if self.headers.get("Connection", "").lower() == "close":
            self.close_connection = True
        if sim.profile.rtt_ms:
            time.sleep(sim.profile.rtt_ms / 1000)
        target = sim.resolve(path)
        if target is None:
            return self._error(403, "outside the served directory")
        if isinstance(target, bytes):  # an extra in-memory file
            data, mtime, size = target, sim.started, len(target)
            fs_path = None
        else:
            if target.is_dir():
                if not path.endswith("/"):
                    self.send_response(301)
                    self.send_header("Location", path + "/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    rec["status"] = 301
                    return
                target = sim.resolve(path + "index.html")
            if target is None:
                return self._error(403, "outside the served directory")
            if not target.is_file():
                return self._error(404, "not found")
            st = target.stat()
            data, mtime, size, fs_path = None, st.st_mtime, st.st_size, target
        ctype = content_type(path if not path.endswith("/") else path + "index.html")
        gz = ctype in COMPRESSIBLE and accepts_gzip(self.headers.get("Accept-Encoding"))
        key = (str(fs_path) if fs_path else "mem:" + path, int(mtime * 1e9), size)
        etag = f'"{key[1]:x}-{size:x}{"-gz" if gz else ""}"'
        rec.update(type=ctype, encoding="gzip" if gz else None, file_bytes=size)
        if gz:
            payload = sim.compressed(key, lambda: data if data is not None else fs_path.read_bytes())
        else:
            payload = data
        length = len(payload) if payload is not None else size
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        not_modified = (inm is not None and etag in [t.strip() for t in inm.split(",")]) or (
            inm is None and ims is not None and _not_modified_since(ims, mtime)
        )
        self.send_response(304 if not_modified else 200)
        rec["status"] = 304 if not_modified else 200
        self.send_header("Content-Type", ctype + ("; charset=utf-8" if ctype == "text/html" else ""))
        if ctype in COMPRESSIBLE:
            self.send_header("Vary", "Accept-Encoding")
        if gz:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
        self.send_header("Cache-Control", sim.cache_control)
        if not_modified:
            self.send_header("Content-Length", "0")  # harmless for 304; keeps the connection framing explicit
            self.end_headers()
            return
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if not body:
            return
        if payload is not None:
            self.wfile.write(payload)
            rec["body_bytes"] = len(payload)
            return
        with open(fs_path, "rb") as f:
            sent = 0
            while sent < size:
                buf = f.read(min(CHUNK * 8, size - sent))
                if not buf:
                    break
                self.wfile.write(buf)
                sent += len(buf)
        rec["body_bytes"] = sent
        if sent != size:  # the file shrank under us: the length we announced is wrong, end the connection
            self.close_connection = True

    def _error(self, code: int, text: str):
        body = f"{code} {text}\n".encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if self.rec is not None:
            self.rec["status"] = code
            self.rec["body_bytes"] = len(body)

    def send_error(self, code, message=None, explain=None):
        # malformed requests (parse_request fails before do_*): record them too, then let the stdlib answer
        if self.rec is None:
            self._begin(getattr(self, "path", "") or "")
            self.rec["status"] = code
        super().send_error(code, message, explain)


def _not_modified_since(header: str, mtime: float) -> bool:
    try:
        t = email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return int(mtime) <= t


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True


class NetSim:
    """Serve `root` behind `profile`. ``with NetSim(dir, "cable") as sim: ... sim.url ...``

    `extra` maps URL paths (``/post.html``) to in-memory bodies served like files (typed by their extension).
    """

    def __init__(
        self,
        root,
        profile: str | Profile = "loopback",
        host: str = "127.0.0.1",
        port: int = 0,
        extra: dict[str, bytes] | None = None,
        cache_control: str = CACHE_CONTROL,
        verbose: bool = False,
    ):
        self.root = pathlib.Path(root).resolve()
        self.extra = dict(extra or {})
        self.cache_control = cache_control
        self.verbose = verbose
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.chunks: list[tuple[float, int, int]] = []  # (time, bytes, request id)
        self.started = time.time()
        self._gz: dict[tuple, bytes] = {}
        self._gz_locks: dict[tuple, threading.Lock] = {}
        self._conns: set = set()
        self.set_profile(profile)
        self.httpd = _Server((host, port), Handler)
        self.httpd.sim = self
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle
    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def set_profile(self, profile: str | Profile) -> None:
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        self.link = Link(self.profile.bytes_per_s)

    def start(self) -> "NetSim":
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="netsim"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:  # idle keep-alive connections would otherwise wait for their timeout
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "NetSim":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _opened(self, conn) -> None:
        with self.lock:
            self._conns.add(conn)

    def _closed(self, conn) -> None:
        with self.lock:
            self._conns.discard(conn)

    # ------------------------------------------------------------------ files
    def resolve(self, url_path: str):
        """URL path -> a Path under root (may not exist), the bytes of an extra file, or None when refused."""
        try:
            path = unquote(url_path, errors="strict") if "%" in url_path else url_path
        except UnicodeDecodeError:
            return None
        if path in self.extra:
            return self.extra[path]
        if "\x00" in path:
            return None
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            return None
        target = self.root.joinpath(*parts)
        try:
            real = target.resolve()
        except (OSError, RuntimeError):
            return None
        if real != self.root and self.root not in real.parents:
            return None
        return real

    def compressed(self, key: tuple, read) -> bytes:
        """The gzip body for (path, mtime_ns, size), compressed once (concurrent requests wait for the first)."""
        hit = self._gz.get(key)
        if hit is not None:
            return hit
        with self.lock:
            lk = self._gz_locks.setdefault(key, threading.Lock())
        with lk:
            hit = self._gz.get(key)
            if hit is None:
                hit = self._gz[key] = gzip.compress(read(), compresslevel=GZIP_LEVEL, mtime=0)
        return hit

    def warm(self) -> int:
        """Compress every compressible file under root now (so no measured request waits for zlib)."""
        n = 0
        for f in self.root.rglob("*"):
            if f.is_file() and content_type(f.name) in COMPRESSIBLE:
                st = f.stat()
                self.compressed((str(f.resolve()), int(st.st_mtime * 1e9), st.st_size), f.read_bytes)
                n += 1
        for p, data in self.extra.items():
            if content_type(p) in COMPRESSIBLE:
                self.compressed(("mem:" + p, int(self.started * 1e9), len(data)), lambda d=data: d)
                n += 1
        return n

    # ------------------------------------------------------------------ accounting
    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.chunks.clear()

    def bytes_between(self, t0: float = float("-inf"), t1: float = float("inf")) -> int:
        """Bytes put on the line in (t0, t1] (perf_counter clock)."""
        with self.lock:
            return sum(c[1] for c in self.chunks if t0 < c[0] <= t1)

    def peak_rate(self, window: float = 1.0) -> float:
        """The most bytes/s sent in any `window` seconds (a check that the server kept up with its line)."""
        with self.lock:
            chunks = sorted(c[:2] for c in self.chunks)
        best, lo, acc = 0, 0, 0
        for t, n in chunks:
            acc += n
            while chunks[lo][0] <= t - window:
                acc -= chunks[lo][1]
                lo += 1
            best = max(best, acc)
        return best / window

    def bytes_by_request(self, t0: float = float("-inf"), t1: float = float("inf")) -> dict[int, int]:
        """Request id -> its bytes put on the line in (t0, t1]."""
        out: dict[int, int] = {}
        with self.lock:
            for t, n, rid in self.chunks:
                if t0 < t <= t1:
                    out[rid] = out.get(rid, 0) + n
        return out

    def snapshot_requests(self) -> list[dict]:
        with self.lock:
            return [dict(r) for r in self.requests]


def gzip_size(path, level: int = GZIP_LEVEL) -> int:
    """What a compressing host sends for this file: its gzip size if its type is compressed, else its size."""
    p = pathlib.Path(path)
    if content_type(p.name) in COMPRESSIBLE:
        return len(gzip.compress(p.read_bytes(), compresslevel=level, mtime=0))
    return p.stat().st_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="the directory to serve (e.g. a built site)")
    ap.add_argument("--profile", default="cable", choices=sorted(PROFILES))
    ap.add_argument("--mbit", type=float, help="override the profile's rate (Mbit/s; 0 = unlimited)")
    ap.add_argument("--rtt", type=float, help="override the profile's RTT (ms)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--cache-control", default=CACHE_CONTROL)
    ap.add_argument("--quiet", action="store_true", help="no per-request log lines")
    a = ap.parse_args(argv)
    prof = PROFILES[a.profile]
    if a.mbit is not None or a.rtt is not None:
        prof = Profile(
            "custom",
            (a.mbit or None) if a.mbit is not None else prof.mbit_s,
            a.rtt if a.rtt is not None else prof.rtt_ms,
        )
    sim = NetSim(a.dir, prof, a.host, a.port, cache_control=a.cache_control).start()
    rate = "unlimited" if prof.mbit_s is None else f"{prof.mbit_s:g} Mbit/s"
    print(
        f"serving {sim.root} on {sim.url}/  ({prof.name}: {rate}, RTT {prof.rtt_ms:g} ms; Ctrl-C to stop)", flush=True
    )
    t = time.perf_counter()
    print(f"compressed {sim.warm()} files in {time.perf_counter() - t:.1f} s", flush=True)
    last = 0
    try:
        while True:
            time.sleep(0.5)
            if a.quiet:
                continue
            reqs = sim.snapshot_requests()
            for r in reqs[last:]:
                if not r["done"]:
                    break  # still waiting or sending: print it when done
                last += 1
                print(
                    f"{r['status']} {r['path'][:80]:80s} {r['wire_bytes'] / 1e3:10.1f} kB"
                    f"{' gz' if r['encoding'] else '   '}"
                    f"{(r['t_end'] - r['t_request']) if r['t_end'] else 0:7.2f} s",
                    flush=True,
                )
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        total = sim.bytes_between()
        print(f"\n{len(sim.requests)} responses, {total / 1e6:.2f} MB sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
