"""Static-site loads over simulated networks (issue 11): our build against the stock-style build, in one run.

    .venv/bin/python bench/bench_network.py --ours DIR [--stock DIR] [--profiles loopback,cable,4g]
        [--pages arena,shared_separate] [--loads 3] [--after 30] [--no-post] [--top 10] [--json out.json]

DIR is a built site (`python build.py --out DIR`; the stock one as bench/bench_static.py's build_stock makes it).
Each site is served by bench/netsim.py (one shared bandwidth budget, one RTT per response, gzip for the types
common hosts compress); every load is a new headless Debian Chromium with a user-data-dir of its own (fresh
HTTP cache, Cache Storage and service workers; service workers allowed; every host but 127.0.0.1 unresolvable).
Per page and profile, medians over --loads of:

* preview: navigation -> the page's preview is shown (ours: ``mtlPlayground.previewShownAt``; stock: a Bokeh
  figure is on screen, which is Panel's prerendered page);
* live: the page says it is live (ours: ``data-mtl-state="live"``; stock: Panel took its loading spinner off);
* interactive: a real user action answered by Python after live (a slider key press or an arena click that the
  app writes into ``location.search``);
* MB until interactive: bytes the server put on the line (compressed, headers included) up to interactive;
* MB after: bytes sent in the --after seconds that follow interactive, with no further reader action (what a
  visit downloads beyond what it needed: precaching, prefetching). The two windows do not overlap.

Then the two-widget post: a page served by the same server that embeds ``shared_separate.html?embed=1`` and
``arena.html?embed=1`` in two iframes, as the README's snippet does; time until BOTH are live, MB until then and
MB in the --after seconds after. And the physical floor: the compressed bytes of the Pyodide runtime files the
page uses (pyodide.asm.wasm, pyodide.asm.js, pyodide.js, python_stdlib.zip, as a gzip host sends them) and their
transfer time on each profile (bytes / rate + one RTT). Targets from issue 11 are printed beside the medians.
Timing is noisy on a shared machine: compare ours with stock within one run.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import netsim  # noqa: E402
from browser import CHROMIUM, CHROMIUM_ARGS, headless_chromium  # noqa: E402

from bench_static import DOC, LIVE, PREVIEW, answered_at  # noqa: E402,F401 - the same probes and action as bench_static

RUNTIME_FILES = ("pyodide.asm.wasm", "pyodide.asm.js", "pyodide.js", "python_stdlib.zip")
POST_PAGES = ("shared_separate", "arena")
POST_PATH = "/__post.html"
TARGETS = {
    "mb_until_interactive": 10.0,
    "mb_after": 1.0,
    "post_bytes_x": 1.15,
    "post_live_x": 1.5,
    "interactive_s": {"cable": 3.5, "4g": 10.0, "loopback": 3.0},
    "loopback_ratio": 0.35,
}
MB = 1e6


# ---------------------------------------------------------------------------------------------- the site
def page_config(site: pathlib.Path, slug: str) -> dict | None:
    """The build's config JSON embedded in <slug>.html (ours), or None (stock)."""
    m = re.search(
        r'<script type="application/json" id="mtl-config">(.*?)</script>', (site / f"{slug}.html").read_text(), re.S
    )
    return json.loads(m.group(1).replace("<\\/", "</")) if m else None


def runtime_dir(site: pathlib.Path, slug: str) -> pathlib.Path:
    cfg = page_config(site, slug)
    if cfg and cfg.get("pyodideDir"):
        return site / cfg["pyodideDir"]
    return site / "pyodide"


def floor(site: pathlib.Path, slug: str) -> dict:
    """The runtime files this page downloads (a page restored from our snapshot mounts the empty stdlib stub)."""
    d = runtime_dir(site, slug)
    names = list(RUNTIME_FILES)
    html = (site / f"{slug}.html").read_text()
    m = re.search(r'id="mtl-config">(.*?)</script>', html, re.S)
    cfg = json.loads(m.group(1).replace("<\\/", "</")) if m else {}
    snap = cfg.get("snapshot")
    if snap and snap.get("stdlib"):
        names = [snap["stdlib"]["stub"].rsplit("/", 1)[1] if n == "python_stdlib.zip" else n for n in names]
    # the wasm zstd-compressed where the build ships it so (sent as it is: a host does not compress it again)
    zst = (cfg.get("runtimeWasm") or {}).get("url")
    files = {n: netsim.gzip_size(d / n) for n in names if (d / n).exists()}
    if zst and (site / zst).exists():
        del files["pyodide.asm.wasm"]
        files[zst.rsplit("/", 1)[1]] = (site / zst).stat().st_size
    return {"dir": str(d.relative_to(site)), "files": files, "bytes": sum(files.values())}


def post_html(site: pathlib.Path) -> bytes:
    """A blog post with two widgets: the README's iframe snippet (relative URLs: the post sits in the site)."""
    frames = {
        "shared_separate": "Shared vs Separate (MTL Playground)",
        "arena": "Gradient Conflict Arena (MTL Playground)",
    }
    body = "\n".join(
        f'<p>Some prose before the widget.</p>\n<iframe src="{slug}.html?embed=1" title="{title}"\n'
        f'        style="width:100%;max-width:800px;height:900px;border:0" loading="lazy"></iframe>'
        for slug, title in frames.items()
    )
    embed = '\n<script src="embed.js" async></script>' if (site / "embed.js").exists() else ""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>A post with two widgets</title>'
        f"</head>\n<body>\n<h1>A post with two widgets</h1>\n{body}{embed}\n</body></html>\n"
    ).encode()


# ---------------------------------------------------------------------------------------------- a browser
def launch(p, profile_dir: str):
    viewport = {"width": 1200, "height": 900}
    return headless_chromium(p, profile_dir, CHROMIUM, CHROMIUM_ARGS, service_workers="allow", viewport=viewport)


def settle(sim: netsim.NetSim) -> None:
    """Wait until nothing is being sent (the last browser's connections are gone), then clear the counts."""
    deadline = time.perf_counter() + 5
    while time.perf_counter() < deadline:
        if not any(not r["done"] for r in sim.snapshot_requests()):
            break
        time.sleep(0.1)
    sim.reset()


def top_urls(sim: netsim.NetSim, t0: float, t_split: float | None, n: int) -> list[dict]:
    reqs = {r["id"]: r for r in sim.snapshot_requests()}
    before = sim.bytes_by_request(t1=t_split) if t_split else {}
    total = sim.bytes_by_request()
    rows = []
    for rid, b in total.items():
        r = reqs.get(rid, {})
        rows.append(
            {
                "path": r.get("path", "?"),
                "status": r.get("status"),
                "encoding": r.get("encoding"),
                "file_bytes": r.get("file_bytes"),
                "wire_bytes": b,
                "before_interactive": before.get(rid, 0),
                # seconds since navigation: asked (request parsed), first byte, last byte
                "asked_s": round(r["t_request"] - t0, 2) if r.get("t_request") else None,
                "end_s": round(r["t_end"] - t0, 2) if r.get("t_end") else None,
            }
        )
    rows.sort(key=lambda x: -x["wire_bytes"])
    return rows[:n] if n else rows


def traffic_after(out: dict, sim: netsim.NetSim, t0: float, t_split: float, after: float, top: int) -> dict:
    """``out`` with what the server sent in the ``after`` s after ``t_split``, the request count, the 404s, the
    peak rate (~ the profile's when the server kept up) and the largest responses; errors cut to five."""
    out["mb_after"] = round(sim.bytes_between(t0=t_split, t1=t_split + after) / MB, 2)
    out["requests"] = len(sim.snapshot_requests())
    out["not_found"] = sorted({r["path"] for r in sim.snapshot_requests() if r["status"] == 404})[:10]
    out["peak_mb_s"] = round(sim.peak_rate() / MB, 2)
    out["top"] = top_urls(sim, t0, t_split, top)
    out["errors"] = out["errors"][:5]
    return out


def one_load(p, sim: netsim.NetSim, kind: str, slug: str, after: float, top: int) -> dict:
    settle(sim)
    profile_dir = tempfile.mkdtemp(prefix="mtl-bench-net-")
    ctx = launch(p, profile_dir)
    out = {
        "preview_s": None,
        "live_s": None,
        "interactive_s": None,
        "mb_until_interactive": None,
        "mb_until_live": None,
        "mb_after": None,
        "requests": None,
        "errors": [],
    }
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.on("pageerror", lambda e: out["errors"].append(str(e)[:200]))
        page.on("console", lambda m: out["errors"].append(m.text[:300]) if m.type == "error" else None)
        t0 = time.perf_counter()
        page.goto(f"{sim.url}/{slug}.html", wait_until="commit")
        try:
            page.wait_for_function(PREVIEW[kind], timeout=240_000, polling=20)
            out["preview_s"] = round(time.perf_counter() - t0, 2)
            page.wait_for_function(LIVE[kind], timeout=300_000, polling=20)
            t_live = time.perf_counter()
            out["live_s"] = round(t_live - t0, 2)
        except Exception as exc:  # noqa: BLE001 - report the failed load, keep benchmarking
            out["errors"].insert(0, str(exc)[:200])
            out["mb_so_far"] = round(sim.bytes_between() / MB, 2)
            return out
        t_int = answered_at(page, slug)
        if t_int is not None:
            out["interactive_s"] = round(t_int - t0, 2)
        t_split = t_int if t_int is not None else t_live
        out["mb_until_live"] = round(sim.bytes_between(t1=t_live) / MB, 2)
        out["mb_until_interactive"] = round(sim.bytes_between(t1=t_split) / MB, 2) if t_int else None
        # the worker's and the page's phases (ms since navigation): where a load's time went
        out["marks"] = page.evaluate("() => (window.mtlPlayground && window.mtlPlayground.marks) || null")
        page.wait_for_timeout(after * 1000)
        return traffic_after(out, sim, t0, t_split, after, top)
    finally:
        ctx.close()
        shutil.rmtree(profile_dir, ignore_errors=True)


def frames_live(page, kind: str) -> dict:
    got = {}
    for f in page.frames:
        for slug in POST_PAGES:
            if f"/{slug}.html" in f.url:
                try:
                    if f.evaluate(LIVE[kind]):
                        got[slug] = True
                except Exception:  # noqa: BLE001 - frame navigating or detached: not live yet
                    pass
    return got


def post_load(p, sim: netsim.NetSim, kind: str, after: float, top: int) -> dict:
    settle(sim)
    profile_dir = tempfile.mkdtemp(prefix="mtl-bench-net-")
    ctx = launch(p, profile_dir)
    out = {"live_s": {}, "both_live_s": None, "mb_until_live": None, "mb_after": None, "errors": []}
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.on("pageerror", lambda e: out["errors"].append(str(e)[:200]))
        t0 = time.perf_counter()
        page.goto(sim.url + POST_PATH, wait_until="commit")
        deadline = t0 + 300
        while len(out["live_s"]) < len(POST_PAGES) and time.perf_counter() < deadline:
            for slug in frames_live(page, kind):
                out["live_s"].setdefault(slug, round(time.perf_counter() - t0, 2))
            page.wait_for_timeout(50)  # not time.sleep: Playwright learns of the iframes only while it runs
        t_live = time.perf_counter()
        if len(out["live_s"]) < len(POST_PAGES):
            out["errors"].insert(0, f"not live after 300 s: {sorted(set(POST_PAGES) - set(out['live_s']))}")
            out["mb_so_far"] = round(sim.bytes_between() / MB, 2)
            out["frames"] = []
            for f in page.frames:  # what each frame says it is doing (mtlState, the loader's last phase)
                try:
                    out["frames"].append(
                        [
                            f.url,
                            f.evaluate(
                                "() => [document.documentElement.dataset.mtlState, window.mtlPlayground && "
                                "window.mtlPlayground.phase, document.querySelector('#mtl-error .mtl-error-msg') && "
                                "document.querySelector('#mtl-error .mtl-error-msg').textContent]"
                            ),
                        ]
                    )
                except Exception as exc:  # noqa: BLE001
                    out["frames"].append([f.url, str(exc)[:200]])
            return out
        out["both_live_s"] = round(t_live - t0, 2)
        out["mb_until_live"] = round(sim.bytes_between(t1=t_live) / MB, 2)
        page.wait_for_timeout(after * 1000)
        return traffic_after(out, sim, t0, t_live, after, top)
    finally:
        ctx.close()
        shutil.rmtree(profile_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- report
def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 2) if xs else None


def fmt(v, unit=""):
    return f"{v:8.2f}{unit}" if isinstance(v, (int, float)) else f"{'n/a':>8s}{unit}"


def ratio(o, s):
    return round(o / s, 2) if isinstance(o, (int, float)) and isinstance(s, (int, float)) and s else None


def verdict(v, limit):
    if v is None or limit is None:
        return ""
    return "ok" if v <= limit else "MISS"


def print_top(rows: list[dict], title: str) -> None:
    print(f"  top URLs by bytes sent, {title} (times: seconds since navigation):")
    for r in rows:
        enc = "gz" if r["encoding"] else "  "
        raw = f"{r['file_bytes'] / MB:6.2f}" if r["file_bytes"] else "     -"
        print(
            f"    {r['wire_bytes'] / MB:6.2f} MB {enc} (file {raw} MB, before interactive "
            f"{r['before_interactive'] / MB:6.2f}; asked {fmt(r['asked_s'])} s, done {fmt(r['end_s'])} s) "
            f"{r['status']} {r['path'][:100]}"
        )


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", required=True, help="our built site")
    ap.add_argument("--stock", help="the stock-style built site (skipped when absent)")
    ap.add_argument(
        "--base",
        help="instead of --stock: another build of ours (an earlier commit), probed as ours and shown in the stock "
        "column, so a change is measured against its base in one interleaved run",
    )
    ap.add_argument("--profiles", default="loopback,cable,4g")
    ap.add_argument("--pages", default="arena,shared_separate")
    ap.add_argument("--loads", type=int, default=3)
    ap.add_argument("--after", type=float, default=30.0, help="seconds watched after interactive (default 30)")
    ap.add_argument("--no-post", action="store_true", help="skip the two-widget post")
    ap.add_argument("--post-only", action="store_true", help="only the two-widget post (no single-page loads)")
    ap.add_argument("--post-stock", action="store_true", help="also load the post built from the stock site")
    ap.add_argument("--top", type=int, default=10, help="print the top N URLs by bytes of each first load (0: off)")
    ap.add_argument("--json", help="also write the raw results here")
    return ap.parse_args()


def sites_of(a: argparse.Namespace, slugs: list[str]) -> dict:
    sites = {"ours": pathlib.Path(a.ours).resolve()}
    if a.base:
        sites["stock"] = pathlib.Path(a.base).resolve()
        PREVIEW["stock"], LIVE["stock"] = PREVIEW["ours"], LIVE["ours"]  # an earlier build of ours: our probes
        print(f"[bench] the 'stock' column is our base build {a.base}", flush=True)
    elif a.stock and all((pathlib.Path(a.stock) / f"{s}.html").exists() for s in slugs):
        sites["stock"] = pathlib.Path(a.stock).resolve()
    elif a.stock:
        print(f"[bench] no stock build of {a.pages} in {a.stock}: measuring ours only", flush=True)
    for site in sites.values():
        for slug in slugs:
            if not (site / f"{slug}.html").exists():
                raise SystemExit(f"{site / (slug + '.html')} does not exist")
    return sites


def start_sims(sites: dict) -> dict:
    sims = {}
    for kind, site in sites.items():
        sims[kind] = netsim.NetSim(site, "loopback", extra={POST_PATH: post_html(site)}).start()
        t = time.perf_counter()
        n = sims[kind].warm()
        print(
            f"[bench] {kind}: serving {site} at {sims[kind].url} ({n} files compressed in "
            f"{time.perf_counter() - t:.1f} s)",
            flush=True,
        )
    return sims


def report_load(prof, kind: str, what: str, i: int, r: dict, top: int) -> None:
    brief = {k: v for k, v in r.items() if k != "top"}
    print(f"[bench] {prof.name:8s} {kind:5s} {what:16s} load {i + 1}: {json.dumps(brief)}", flush=True)
    if i == 0 and top and r.get("top"):
        print_top(r["top"], f"{prof.name} {kind} {what} load 1")


def run_loads(a, profiles, sims: dict, slugs: list[str], post_kinds: list[str]) -> tuple[dict, dict]:
    """Every single-page load and every post load, per profile: (results, posts)."""
    from playwright.sync_api import sync_playwright

    results: dict = {k: {} for k in sims}
    posts: dict = {k: {} for k in post_kinds}
    with sync_playwright() as p:
        for prof in profiles:
            for sim in sims.values():
                sim.set_profile(prof)
            for slug in [] if a.post_only else slugs:
                for i in range(a.loads):
                    for kind in sims:  # interleaved: machine load hits both alike
                        r = one_load(p, sims[kind], kind, slug, a.after, a.top)
                        results[kind].setdefault(prof.name, {}).setdefault(slug, []).append(r)
                        report_load(prof, kind, slug, i, r, a.top)
            for kind in post_kinds:
                for i in range(a.loads):
                    r = post_load(p, sims[kind], kind, a.after, a.top)
                    posts[kind].setdefault(prof.name, []).append(r)
                    report_load(prof, kind, "post", i, r, a.top)
    return results, posts


def page_target(tgt: str | None, prof, o, rt) -> str:
    if tgt == "tti" and prof.name in TARGETS["interactive_s"]:
        lim = TARGETS["interactive_s"][prof.name]
        target = f"<= {lim:g} s {verdict(o, lim)}"
        if prof.name == "loopback":
            target += f"; ratio <= {TARGETS['loopback_ratio']} {verdict(rt, TARGETS['loopback_ratio'])}"
        return target
    if tgt == "mb":
        return f"<= {TARGETS['mb_until_interactive']:g} {verdict(o, TARGETS['mb_until_interactive'])}"
    if tgt == "after":
        return f"<= {TARGETS['mb_after']:g} {verdict(o, TARGETS['mb_after'])}"
    return ""


def summarise_pages(a, prof, results: dict, slugs: list[str], summary: dict) -> None:
    metrics = [
        ("preview_s", "preview s", None),
        ("live_s", "live s", None),
        ("interactive_s", "interactive s", "tti"),
        ("mb_until_interactive", "MB until inter.", "mb"),
        ("mb_after", f"MB after {a.after:g} s", "after"),
    ]
    for slug in [] if a.post_only else slugs:
        for key, label, tgt in metrics:
            o = med([r[key] for r in results["ours"].get(prof.name, {}).get(slug, [])])
            s = med([r[key] for r in results["stock"].get(prof.name, {}).get(slug, [])]) if "stock" in results else None
            rt = ratio(o, s)
            summary[f"{prof.name}.{slug}.{key}"] = {"ours": o, "stock": s, "ratio": rt}
            print(
                f"{slug:16s} {label:16s} {fmt(o)} {fmt(s)} {rt if rt is not None else 'n/a':>7}  "
                f"{page_target(tgt, prof, o, rt)}"
            )


def one_page(results: dict, kind: str, prof, slugs: list[str], key: str):
    """The heavier / slower of the two embedded pages loaded alone, same profile, same run."""
    values = [med([r[key] for r in results[kind].get(prof.name, {}).get(sl, [])]) for sl in POST_PAGES if sl in slugs]
    return max([v for v in values if v] or [0]) or None


def summarise_post(a, prof, kind: str, results: dict, posts: dict, slugs: list[str], summary: dict) -> None:
    runs = posts[kind].get(prof.name, [])
    live = med([r["both_live_s"] for r in runs])
    mb = med([r["mb_until_live"] for r in runs])
    after = med([r["mb_after"] for r in runs])
    one_mb = one_page(results, kind, prof, slugs, "mb_until_live")
    one_live = one_page(results, kind, prof, slugs, "live_s")
    bx, lx = ratio(mb, one_mb), ratio(live, one_live)
    summary[f"{prof.name}.post.{kind}"] = {
        "both_live_s": live,
        "mb_until_live": mb,
        "mb_after": after,
        "one_page_mb_until_live": one_mb,
        "one_page_live_s": one_live,
        "bytes_x": bx,
        "live_x": lx,
    }
    name = f"post ({kind})"
    print(
        f"{name:16s} {'both live s':16s} {fmt(live)}   one page {fmt(one_live)} s  "
        f"x{lx if lx is not None else 'n/a'}  target <= {TARGETS['post_live_x']}x {verdict(lx, TARGETS['post_live_x'])}"
    )
    print(
        f"{name:16s} {'MB until live':16s} {fmt(mb)}   one page {fmt(one_mb)} MB "
        f"x{bx if bx is not None else 'n/a'}  target <= {TARGETS['post_bytes_x']}x "
        f"{verdict(bx, TARGETS['post_bytes_x'])}"
    )
    print(f"{name:16s} {f'MB after {a.after:g} s':16s} {fmt(after)}")


def summarise_floors(prof, floors: dict, slugs: list[str], summary: dict) -> None:
    for kind, per_page in floors.items():
        shown = set()
        for slug in slugs:
            fl = per_page[slug]
            if fl["dir"] in shown:
                continue
            shown.add(fl["dir"])
            print(
                f"floor ({kind}, {slug}): Pyodide runtime {fl['bytes'] / MB:.2f} MB as sent "
                f"({', '.join(f'{n} {b / MB:.2f}' for n, b in fl['files'].items())}) -> "
                f"{prof.transfer_s(fl['bytes']):.2f} s on {prof.name}"
            )
            summary[f"{prof.name}.floor.{kind}.{slug}"] = {
                "bytes": fl["bytes"],
                "s": round(prof.transfer_s(fl["bytes"]), 2),
            }


def main() -> int:
    a = parse_args()
    profiles = [netsim.PROFILES[n] for n in a.profiles.split(",")]
    slugs = a.pages.split(",")
    sites = sites_of(a, slugs)
    floors = {kind: {slug: floor(site, slug) for slug in slugs} for kind, site in sites.items()}
    do_post = not a.no_post and all((sites["ours"] / f"{s}.html").exists() for s in POST_PAGES)
    post_kinds = [k for k in sites if k == "ours" or a.post_stock] if do_post else []
    sims = start_sims(sites)
    try:
        results, posts = run_loads(a, profiles, sims, slugs, post_kinds)
    finally:
        for sim in sims.values():
            sim.stop()
    summary: dict = {}
    for prof in profiles:
        rate = "unlimited" if prof.mbit_s is None else f"{prof.mbit_s:g} Mbit/s"
        print(f"\n== {prof.name}: {rate}, RTT {prof.rtt_ms:g} ms; medians over {a.loads} fresh-cache loads ==")
        print(f"{'page':16s} {'metric':16s} {'ours':>8s} {'stock':>8s} {'ratio':>7s}  target")
        summarise_pages(a, prof, results, slugs, summary)
        for kind in post_kinds:
            summarise_post(a, prof, kind, results, posts, slugs, summary)
        summarise_floors(prof, floors, slugs, summary)
    print(
        "\nMB = 1e6 bytes put on the line by the server (compressed bodies + headers). 'MB until inter.' counts "
        "up to the answered action; 'MB after' the window after it. Post: 'one page' is the heavier/slower of "
        "the two pages loaded alone (MB until live, live s) in this run."
    )
    if a.json:
        pathlib.Path(a.json).write_text(
            json.dumps(
                {"results": results, "posts": posts, "floors": floors, "summary": summary, "args": vars(a)}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
