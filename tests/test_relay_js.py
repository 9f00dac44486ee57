"""The relay between two widgets of a post (sitebuild/web/shared/relay.js), run under node: BroadcastChannel,
streams and Response as the browser has them. The browser tests (test_static_site.py, the post tests) show it in
Chromium; these cover what a browser test cannot set up on purpose: a page that asks before the response is there,
one that asks late, a download that breaks, a relaying page that goes away halfway, a piece lost on the way."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from sitebuild.pins import WEB

SCRIPT = r"""
const {offerRelay, joinRelay} = require(process.argv[1]);
const bytes = (n, seed) => Uint8Array.from({length: n}, (_, i) => (i * 7 + seed) % 251);
const chunks = [bytes(1000, 1), bytes(3, 2), bytes(5000, 3), bytes(17, 4)];
const whole = Uint8Array.from(chunks.flatMap((c) => [...c]));
const text = async (body) => Array.from(new Uint8Array(await new Response(body).arrayBuffer())).join(",");
const same = async (body) => (await text(body)) === whole.join(",");
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));
const never = new Promise(() => {});
let n = 0;

async function source() {   // a download whose chunks the test hands out one by one
  let ctl;
  const body = new ReadableStream({start(c) { ctl = c; }});
  return {ctl, resp: new Response(body, {status: 200, headers: {"content-type": "application/octet-stream"}})};
}

async function wholeRelay() {
  const url = `u${n++}`;
  const offer = offerRelay(url);
  const early = joinRelay(url, never);   // asks before the response is there
  await tick();
  const {ctl, resp} = await source();
  const mine = offer.start(resp);
  const own = same(mine.body);   // the downloading page reads its own copy
  ctl.enqueue(chunks[0]);
  ctl.enqueue(chunks[1]);
  await tick();
  const middle = joinRelay(url, never);   // asks after two pieces
  await tick();
  ctl.enqueue(chunks[2]);
  ctl.enqueue(chunks[3]);
  ctl.close();
  await offer.done;
  const late = joinRelay(url, never);   // asks once it is whole, before the lock is let go
  const got = await Promise.all([early, middle, late]);
  const result = {own: await own, status: got.map((r) => r && r.status),
                  type: got.map((r) => r && r.headers.get("content-type")),
                  same: await Promise.all(got.map((r) => same(r.body)))};
  offer.close();
  return result;
}

async function brokenBeforeItCame() {
  const url = `u${n++}`;
  const offer = offerRelay(url);
  const asking = joinRelay(url, never);
  await tick();
  offer.fail(new Error("HTTP 404"));
  const got = await asking;
  offer.close();
  return got;   // null: the asking page then waits for the lock and downloads itself
}

async function breaksHalfway() {
  const url = `u${n++}`;
  const offer = offerRelay(url);
  const {ctl, resp} = await source();
  offer.start(resp);
  ctl.enqueue(chunks[0]);
  await tick();
  const got = await joinRelay(url, never);
  ctl.error(new Error("connection reset"));
  try { await new Response(got.body).arrayBuffer(); return "read"; } catch (e) { return String(e.message); }
}

// a relaying page that is gone after two pieces (its frame removed: it sends nothing more and its lock is let go)
async function goneHalfway(lost) {
  const url = `u${n++}`;
  const page = new BroadcastChannel("mtl-playground relay " + url);
  page.onmessage = (e) => {
    if (!e.data.join) return;
    page.postMessage({to: e.data.join, head: {status: 200, statusText: "OK", headers: []}, chunks: [chunks[0]],
                      seq: 1, end: null});
    page.postMessage({chunk: chunks[1], seq: lost ? 2 : 1});
    page.onmessage = null;
  };
  let free;
  const freed = new Promise((r) => { free = r; });
  let resumed = 0;
  const got = await joinRelay(url, freed, async () => { resumed += 1; return new Response(whole).body; });
  free();
  page.close();
  try {
    return {same: await same(got.body), resumed};
  } catch (e) {
    return {error: String(e.message), resumed};
  }
}

(async () => {
  const out = {whole: await wholeRelay(), broken: await brokenBeforeItCame(), halfway: await breaksHalfway(),
               gone: await goneHalfway(false), lost: await goneHalfway(true)};
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
"""


@pytest.fixture(scope="module")
def relay() -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/setup.sh installs it; the build needs it for the snapshot)")
    res = subprocess.run(
        [node, "-e", SCRIPT, str(WEB / "shared" / "relay.js")], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_every_page_that_asks_gets_the_whole_file_whenever_it_asks(relay):
    whole = relay["whole"]
    assert whole["own"] is True  # the downloading page's own copy is untouched
    assert whole["status"] == [200, 200, 200]
    assert whole["type"] == ["application/octet-stream"] * 3
    assert whole["same"] == [True, True, True]  # before the response, after two pieces, once it was whole


def test_a_download_that_breaks_before_its_response_offers_nothing(relay):
    assert relay["broken"] is None


def test_a_download_that_breaks_halfway_fails_the_relayed_copy_too(relay):
    assert "connection reset" in relay["halfway"]


def test_a_relaying_page_gone_halfway_leaves_the_rest_to_a_download_of_ones_own(relay):
    assert relay["gone"] == {"same": True, "resumed": 1}


def test_a_piece_lost_on_the_way_fails_the_copy_rather_than_corrupting_it(relay):
    assert relay["lost"]["resumed"] == 0 and "missing" in relay["lost"]["error"], relay["lost"]
