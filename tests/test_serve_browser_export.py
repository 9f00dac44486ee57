"""Download under `panel serve app` in Chromium (app/share.py, app/export.py): "Plots PNG" saves a real PNG drawn
by BokehJS, "History CSV" one row per step that parses, "Weights .npz" loads, "Copy as Python" puts a script on the
clipboard that, run as printed, ends with the losses of the CSV's last row; with no step yet the CSV button says
so and nothing downloads."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import struct

import numpy as np
import pytest

from browser import PageWatch, chromium, panel_served, screenshot_on_failure
from test_export import run_script

pytestmark = pytest.mark.browser

DOC = "Bokeh.documents[0]"
LOAD_MS = 45_000
ACT_MS = 20_000


@pytest.fixture(scope="module")
def served():
    with panel_served("app", "serve_export", "app") as base, chromium() as ctx:
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base.split("/app")[0])
        yield base, ctx


@contextlib.contextmanager
def opened(ctx, url: str, name: str):
    page = ctx.new_page()
    watch = PageWatch()
    watch.attach(page)
    try:
        page.goto(url)
        page.get_by_role("button", name="Copy link").wait_for(timeout=LOAD_MS)
        yield page, watch
        assert watch.problems() == []
    except BaseException:
        screenshot_on_failure(page, f"export-{name}")
        raise
    finally:
        page.close()


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails on anything that is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def note(page) -> str:
    return page.evaluate(f"() => {DOC}.get_model_by_name('share_note').text")


def steps_shown(page) -> int:
    text = page.evaluate(f"() => {DOC}.get_model_by_name('status').text")
    return int(re.search(r"Step (\d+) /", text).group(1))


def download(page, button: str, tmp_path) -> bytes:
    with page.expect_download(timeout=ACT_MS) as info:
        page.get_by_role("button", name=button).click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path.read_bytes()


def pause_after_some_steps(page, at_least: int = 12) -> int:
    """Let the page train (it starts by itself), pause it, and return the step count it shows then."""
    page.wait_for_function(
        f"() => /Step ([1-9]\\d+) \\//.test({DOC}.get_model_by_name('status').text)", timeout=LOAD_MS
    )
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function(f"() => / - paused/.test({DOC}.get_model_by_name('status').text)", timeout=ACT_MS)
    steps = steps_shown(page)
    assert steps >= at_least - 2
    return steps


def test_shared_separate_downloads_a_png_a_csv_weights_and_a_script_that_reproduces_it(served, tmp_path):
    base, ctx = served
    with opened(ctx, f"{base}?page=shared_separate&hidden=6&seed=4", "shared_separate") as (page, _watch):
        steps = pause_after_some_steps(page)

        png = download(page, "Plots PNG", tmp_path)
        width, height = png_size(png)
        assert len(png) > 10_000 and width > 300 and height > 300  # nine figures laid out as on the page
        page.get_by_text(re.compile(r"Saved 9 plots as shared_separate-plots\.png")).wait_for(timeout=ACT_MS)

        data = download(page, "History CSV", tmp_path)
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
        assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))  # one row per step the page shows
        for row in rows:
            assert float(row["shared_loss_a"]) > 0 and -1 <= float(row["shared_cosine"]) <= 1
        page.get_by_text(f"History: {steps} steps").wait_for(timeout=ACT_MS)

        weights = download(page, "Weights .npz", tmp_path)
        with np.load(io.BytesIO(weights), allow_pickle=False) as f:
            assert list(f["models"]) == ["shared", "separate"]
            assert int(f["shared/steps"]) == steps and f["shared/params"].ndim == 1
            assert f["shared/trunk.0.W"].shape == (2, 6)

        page.get_by_role("button", name="Copy as Python").click()
        page.get_by_text("Python script copied.").wait_for(timeout=ACT_MS)
        script = page.evaluate("navigator.clipboard.readText()")
        assert script == page.evaluate(f"() => {DOC}.get_model_by_name('python_box').value")
        printed = run_script(script, tmp_path)
        last = rows[-1]
        for model in ("shared", "separate"):
            got_steps, losses = printed[model]
            assert got_steps == steps
            for task, value in losses.items():
                assert value == pytest.approx(float(last[f"{model}_loss_{task}"]), rel=1e-9, abs=1e-9)


def test_with_no_step_yet_the_csv_says_so_and_nothing_downloads(served, tmp_path):
    base, ctx = served
    with opened(ctx, f"{base}?page=training_loop", "training_loop") as (page, _watch):
        page.get_by_role("button", name="↺ Reset").click()
        page.wait_for_function(f"() => / - ready/.test({DOC}.get_model_by_name('status').text)", timeout=ACT_MS)
        downloads = []
        page.on("download", lambda d: downloads.append(d))
        page.get_by_role("button", name="History CSV").click()
        page.get_by_text("No training steps yet: press Train or Step first").wait_for(timeout=ACT_MS)
        assert downloads == []
        # Step once: now there is one row
        page.get_by_role("button", name="Step").click()
        page.wait_for_function(f"() => /Step 1 \\//.test({DOC}.get_model_by_name('status').text)", timeout=ACT_MS)
        rows = list(csv.DictReader(io.StringIO(download(page, "History CSV", tmp_path).decode("utf-8"))))
        assert len(rows) == 1 and rows[0]["step"] == "1" and float(rows[0]["loss_a"]) > 0


@pytest.mark.parametrize("slug", ["architectures", "weighting_lab", "auxiliary"])
def test_every_training_page_downloads_its_plots_and_history(served, tmp_path, slug):
    base, ctx = served
    with opened(ctx, f"{base}?page={slug}", slug) as (page, _watch):
        page.get_by_role("button", name="Step").click()  # pauses the page and trains one more step
        page.wait_for_function(f"() => / - paused/.test({DOC}.get_model_by_name('status').text)", timeout=ACT_MS)
        steps = steps_shown(page)
        width, height = png_size(download(page, "Plots PNG", tmp_path))
        assert width > 200 and height > 100
        rows = list(csv.DictReader(io.StringIO(download(page, "History CSV", tmp_path).decode("utf-8"))))
        assert len(rows) == steps >= 1 and rows[-1]["step"] == str(steps)
        with np.load(io.BytesIO(download(page, "Weights .npz", tmp_path)), allow_pickle=False) as f:
            assert len(f["models"]) >= 2


def test_the_arena_saves_its_plots_and_its_paths(served, tmp_path):
    base, ctx = served
    with opened(ctx, f"{base}?page=arena&x=2&y=3", "arena") as (page, _watch):
        assert page.get_by_role("button", name="Weights .npz").count() == 0  # no network on this page
        width, height = png_size(download(page, "Plots PNG", tmp_path))
        assert width > 200 and height > 200
        page.get_by_role("button", name="Paths CSV").click()
        page.get_by_text("Nothing to export yet: this page has no run").wait_for(timeout=ACT_MS)  # the export note only
        page.get_by_role("button", name="▶ Run").click()
        page.wait_for_function(f"() => /Done: /.test({DOC}.get_model_by_name('status').text)", timeout=ACT_MS)
        rows = list(csv.DictReader(io.StringIO(download(page, "Paths CSV", tmp_path).decode("utf-8"))))
        assert rows[0]["step"] == "0" and float(rows[0]["sum_x"]) == pytest.approx(2.0)
