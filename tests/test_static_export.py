"""Download on the static site (Pyodide in a web worker): "Plots PNG" is drawn by BokehJS in the page, "History
CSV" and "Weights .npz" come from Python in the worker through Panel's FileDownload, and "Copy as Python" puts a
script on the clipboard that CPython runs as printed to the losses of the CSV's last row; with no step yet the CSV
button says so and nothing downloads."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest

import test_static_site
from test_export import run_script
from test_serve_browser_export import png_size
from test_static_site import ACT_MS, BOOT_MS, DOC, assert_clean, model, opened

pytestmark = pytest.mark.static
ctx = test_static_site.ctx  # its Chromium fixture


def download(page, button: str, tmp_path) -> bytes:
    with page.expect_download(timeout=ACT_MS) as info:
        page.get_by_role("button", name=button).click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path.read_bytes()


def steps_shown(page) -> int:
    return int(re.search(r"Step (\d+) /", model(page, "status", "text")).group(1))


def test_downloads_and_copy_as_python_work_in_the_worker(url, ctx, tmp_path):
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    with opened(ctx, f"{url}/training_loop.html?seed=3&hidden=8", "export") as (page, watch):
        page.wait_for_function(
            f"() => /Step ([1-9]\\d+) \\//.test({DOC}.get_model_by_name('status').text)", timeout=BOOT_MS
        )
        page.get_by_role("button", name="Pause").click()
        page.wait_for_function(f"() => / - paused/.test({DOC}.get_model_by_name('status').text)", timeout=ACT_MS)
        steps = steps_shown(page)

        png = download(page, "Plots PNG", tmp_path)
        width, height = png_size(png)
        assert len(png) > 5_000 and width > 200 and height > 200

        rows = list(csv.DictReader(io.StringIO(download(page, "History CSV", tmp_path).decode("utf-8"))))
        assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))
        assert all(float(r["loss_a"]) > 0 for r in rows)

        with np.load(io.BytesIO(download(page, "Weights .npz", tmp_path)), allow_pickle=False) as f:
            assert list(f["models"]) == ["net"] and int(f["net/steps"]) == steps
            assert f["net/trunk.0.W"].shape == (2, 8)

        page.get_by_role("button", name="Copy as Python").click()
        page.get_by_text("Python script copied.").wait_for(timeout=ACT_MS)
        printed = run_script(page.evaluate("navigator.clipboard.readText()"), tmp_path)
        got_steps, losses = printed["net"]
        assert got_steps == steps
        for task, value in losses.items():
            # CPython's numpy against the worker's wasm build: the same operations in the same order (measured:
            # the same bits here); 1e-9 as for the script in CPython, room for a BLAS that sums in another order
            assert value == pytest.approx(float(rows[-1][f"loss_{task}"]), rel=1e-9, abs=1e-9)
        assert_clean(watch)


def test_with_no_step_yet_the_csv_says_so_in_the_worker(url, ctx, tmp_path):
    with opened(ctx, f"{url}/weighting_lab.html", "export-empty") as (page, watch):
        page.get_by_role("button", name="↺ Reset").click()
        page.wait_for_function(f"() => / - ready/.test({DOC}.get_model_by_name('status').text)", timeout=ACT_MS)
        downloads = []
        page.on("download", lambda d: downloads.append(d))
        page.get_by_role("button", name="History CSV").click()
        page.get_by_text("No training steps yet: press Train or Step first").wait_for(timeout=ACT_MS)
        assert downloads == []
        page.get_by_role("button", name="Step").click()
        page.wait_for_function(f"() => /Step 1 \\//.test({DOC}.get_model_by_name('status').text)", timeout=ACT_MS)
        rows = list(csv.DictReader(io.StringIO(download(page, "History CSV", tmp_path).decode("utf-8"))))
        assert len(rows) == 1 and rows[0]["step"] == "1"
        assert_clean(watch)


def test_the_arena_saves_its_plots_and_paths_in_the_worker(url, ctx, tmp_path):
    with opened(ctx, f"{url}/arena.html?x=2&y=3", "export-arena") as (page, watch):
        assert page.get_by_role("button", name="Weights .npz").count() == 0  # no network on this page
        width, height = png_size(download(page, "Plots PNG", tmp_path))
        assert width > 200 and height > 200
        page.get_by_role("button", name="Paths CSV").click()
        page.get_by_text("Nothing to export yet: this page has no run").wait_for(timeout=ACT_MS)  # the export note only
        page.get_by_role("button", name="▶ Run").click()
        page.wait_for_function(f"() => /Done: /.test({DOC}.get_model_by_name('status').text)", timeout=ACT_MS)
        rows = list(csv.DictReader(io.StringIO(download(page, "Paths CSV", tmp_path).decode("utf-8"))))
        assert rows[0]["step"] == "0" and float(rows[0]["sum_x"]) == pytest.approx(2.0)
        assert_clean(watch)
