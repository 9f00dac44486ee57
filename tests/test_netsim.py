"""bench/netsim.py: the simulated static host used by bench/bench_network.py (no browser; a few seconds).

Timing checks are one-sided or generous: the line can never be faster than its rate, so "total bytes / elapsed
<= 1.3x the rate" and "a response waits at least ~one RTT" hold on a loaded machine too.
"""

from __future__ import annotations

import gzip
import http.client
import os
import pathlib
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bench"))
import netsim  # noqa: E402
from netsim import NetSim, Profile  # noqa: E402

TEXT = ("<!doctype html><title>t</title>" + "multi-task learning " * 4000).encode()


@pytest.fixture()
def site(tmp_path):
    root = tmp_path / "site"
    (root / "pyodide").mkdir(parents=True)
    (root / "index.html").write_bytes(TEXT)
    (root / "page.html").write_bytes(TEXT)
    (root / "app.js").write_bytes(b"const x = 1;\n" * 5000)
    (root / "mod.mjs").write_bytes(b"export const y = 2;\n" * 5000)
    (root / "data.json").write_bytes(b'{"a": [1, 2, 3]}\n' * 5000)
    (root / "site.css").write_bytes(b"body { margin: 0 }\n" * 5000)
    (root / "pic.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>\n" * 2000)
    (root / "pyodide" / "pyodide.asm.wasm").write_bytes(b"\0asm\1\0\0\0" + bytes(200_000))
    rnd = os.urandom(300_000)
    for name in ("photo.jpg", "snap.gz", "lib.whl", "site-packages.pack", "stdlib.zip", "shot.png"):
        (root / name).write_bytes(rnd)
    (root / "big.bin").write_bytes(os.urandom(1_000_000))
    (tmp_path / "secret.txt").write_bytes(b"do not serve")
    os.symlink(tmp_path / "secret.txt", root / "link-out.txt")
    return root


def get(sim, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", sim.httpd.server_address[1], timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r, body


GZ = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what Chromium sends


@pytest.mark.parametrize(
    "name,ctype",
    [
        ("index.html", "text/html"),
        ("app.js", "text/javascript"),
        ("mod.mjs", "text/javascript"),
        ("data.json", "application/json"),
        ("site.css", "text/css"),
        ("pic.svg", "image/svg+xml"),
        ("pyodide/pyodide.asm.wasm", "application/wasm"),
    ],
)
def test_compressible_types_are_gzipped(site, name, ctype):
    with NetSim(site) as sim:
        r, body = get(sim, "/" + name, GZ)
        assert r.status == 200
        assert r.getheader("Content-Type").split(";")[0] == ctype
        assert r.getheader("Content-Encoding") == "gzip"
        assert int(r.getheader("Content-Length")) == len(body)
        assert len(body) < (site / name).stat().st_size
        assert gzip.decompress(body) == (site / name).read_bytes()
        assert "Accept-Encoding" in r.getheader("Vary")
        # without Accept-Encoding (or with gzip refused) the same URL comes as is
        for headers in ({}, {"Accept-Encoding": "br, gzip;q=0"}, {"Accept-Encoding": "identity"}):
            r, body = get(sim, "/" + name, headers)
            assert r.getheader("Content-Encoding") is None
            assert body == (site / name).read_bytes()
            assert int(r.getheader("Content-Length")) == len(body)


@pytest.mark.parametrize(
    "name", ["photo.jpg", "snap.gz", "lib.whl", "site-packages.pack", "stdlib.zip", "shot.png", "big.bin"]
)
def test_compressed_content_is_sent_as_is(site, name):
    with NetSim(site) as sim:
        r, body = get(sim, "/" + name, GZ)
        assert r.status == 200
        assert r.getheader("Content-Encoding") is None
        assert body == (site / name).read_bytes()
        assert int(r.getheader("Content-Length")) == len(body)
    assert netsim.content_type("x.gz") == "application/gzip"


def test_accept_encoding_parsing():
    assert netsim.accepts_gzip("gzip, deflate, br, zstd")
    assert netsim.accepts_gzip("br;q=1.0, gzip;q=0.5")
    assert netsim.accepts_gzip("*")
    assert not netsim.accepts_gzip("gzip;q=0")
    assert not netsim.accepts_gzip("br, *;q=0")
    assert not netsim.accepts_gzip("")
    assert not netsim.accepts_gzip(None)


def test_compression_is_cached_by_path_and_mtime(site):
    with NetSim(site) as sim:
        assert sim.warm() >= 7
        n = len(sim._gz)
        get(sim, "/app.js", GZ)
        get(sim, "/app.js", GZ)
        assert len(sim._gz) == n  # served from the cache built by warm()
        (site / "app.js").write_bytes(b"let changed = true;\n" * 100)
        os.utime(site / "app.js", (time.time() + 5, time.time() + 5))
        r, body = get(sim, "/app.js", GZ)
        assert gzip.decompress(body) == (site / "app.js").read_bytes()  # a changed file is recompressed


def test_shared_budget_is_shared_by_parallel_downloads(site):
    prof = Profile("test", 8.0, 0.0)  # 1 MB/s: one 1 MB download ~1 s, two in parallel ~2 s
    rate = prof.bytes_per_s
    size = (site / "big.bin").stat().st_size
    with NetSim(site, prof) as sim:
        t0 = time.perf_counter()
        r, body = get(sim, "/big.bin", GZ)
        one = time.perf_counter() - t0
        assert len(body) == size
        assert size / one <= 1.3 * rate

        done = {}

        def fetch(i):
            r, body = get(sim, "/big.bin", GZ)
            assert len(body) == size
            done[i] = time.perf_counter()

        t0 = time.perf_counter()
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        elapsed = time.perf_counter() - t0
        assert len(done) == 2
        assert 2 * size / elapsed <= 1.3 * rate  # the two together never beat the one line
        assert elapsed >= 1.5 * size / rate  # i.e. about twice one download, not the same time
        # and they split the line rather than queueing: the first one finishes late too (serial: at ~half)
        first = min(done.values()) - t0
        assert first >= 0.7 * elapsed
        assert sim.peak_rate(0.5) <= 1.3 * rate


def test_rtt_is_added_per_response(site):
    with NetSim(site, Profile("slow-rtt", None, 300.0)) as sim:
        conn = http.client.HTTPConnection("127.0.0.1", sim.httpd.server_address[1], timeout=30)
        times = []
        for _ in range(3):  # three responses on one keep-alive connection: each waits its RTT
            t0 = time.perf_counter()
            conn.request("GET", "/data.json", headers=GZ)
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            times.append(time.perf_counter() - t0)
        conn.close()
        assert min(times) >= 0.28
        reqs = sim.snapshot_requests()
        assert len(reqs) == 3
        assert all(r["t_first"] - r["t_request"] >= 0.29 for r in reqs)
        assert len({r["conn"] for r in reqs}) == 1  # keep-alive: one connection served all three


def raw_exchange(sim, request: bytes) -> bytes:
    """Send a raw request with Connection: close and return every byte the server sent until it closed."""
    with socket.create_connection(("127.0.0.1", sim.httpd.server_address[1]), timeout=30) as s:
        s.sendall(request)
        out = bytearray()
        while True:
            buf = s.recv(65536)
            if not buf:
                return bytes(out)
            out += buf


@pytest.mark.parametrize("path,gz", [("/index.html", True), ("/photo.jpg", False), ("/nope.html", False)])
def test_byte_counts_equal_what_the_client_received(site, path, gz):
    with NetSim(site, Profile("test", 40.0, 5.0)) as sim:
        req = (f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n").encode()
        got = raw_exchange(sim, req)
        time.sleep(0.1)
        reqs = sim.snapshot_requests()
        assert len(reqs) == 1
        assert reqs[0]["wire_bytes"] == len(got) == sim.bytes_between()
        assert reqs[0]["done"]
        head, _, body = got.partition(b"\r\n\r\n")
        assert (b"Content-Encoding: gzip" in head) == gz
        assert f"Content-Length: {len(body)}".encode() in head
        assert reqs[0]["body_bytes"] == len(body)
        t = reqs[0]["t_end"]
        assert sim.bytes_between(t0=t) == 0 and sim.bytes_between(t1=t) == len(got)
        assert sim.bytes_by_request() == {reqs[0]["id"]: len(got)}


def test_missing_file_is_404_and_keeps_the_connection(site):
    with NetSim(site) as sim:
        conn = http.client.HTTPConnection("127.0.0.1", sim.httpd.server_address[1], timeout=30)
        conn.request("GET", "/missing.js")
        r = conn.getresponse()
        r.read()
        assert r.status == 404
        conn.request("GET", "/app.js")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == (site / "app.js").read_bytes()
        conn.close()
        assert len({q["conn"] for q in sim.snapshot_requests()}) == 1


@pytest.mark.parametrize(
    "path",
    ["/../secret.txt", "/%2e%2e/secret.txt", "/pyodide/../../secret.txt", "/%2E%2E%2Fsecret.txt", "/link-out.txt"],
)
def test_paths_outside_the_directory_are_refused(site, path):
    with NetSim(site) as sim:
        got = raw_exchange(sim, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert got.startswith(b"HTTP/1.1 403")
        assert b"do not serve" not in got


def test_directories_head_and_conditional_requests(site):
    with NetSim(site) as sim:
        r, body = get(sim, "/", GZ)
        assert r.status == 200 and gzip.decompress(body) == TEXT
        r, _ = get(sim, "/pyodide")
        assert r.status == 301 and r.getheader("Location") == "/pyodide/"
        r, body = get(sim, "/page.html?embed=1", GZ)
        assert r.status == 200 and gzip.decompress(body) == TEXT
        r_get, body = get(sim, "/app.js", GZ)
        r_head, nothing = get(sim, "/app.js", GZ, method="HEAD")
        assert nothing == b"" and r_head.getheader("Content-Length") == r_get.getheader("Content-Length")
        r, body = get(sim, "/app.js", {**GZ, "If-None-Match": r_get.getheader("ETag")})
        assert r.status == 304 and body == b""
        r, body = get(sim, "/app.js", {"If-None-Match": r_get.getheader("ETag")})  # other encoding: other ETag
        assert r.status == 200 and body == (site / "app.js").read_bytes()


def test_extra_in_memory_files(site):
    page = b"<!doctype html><iframe src='page.html?embed=1'></iframe>" * 50
    with NetSim(site, extra={"/__post.html": page}) as sim:
        r, body = get(sim, "/__post.html", GZ)
        assert r.status == 200 and r.getheader("Content-Type").startswith("text/html")
        assert gzip.decompress(body) == page


def test_profiles():
    assert netsim.PROFILES["cable"].mbit_s == 50 and netsim.PROFILES["cable"].rtt_ms == 20
    assert netsim.PROFILES["4g"].mbit_s == 12 and netsim.PROFILES["4g"].rtt_ms == 70
    assert netsim.PROFILES["loopback"].bytes_per_s is None and netsim.PROFILES["loopback"].rtt_ms == 0
    assert netsim.PROFILES["cable"].transfer_s(6_250_000) == pytest.approx(1.02)
