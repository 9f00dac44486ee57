"""Your own data (issue 14) on the static site, Pyodide in a web worker: Edit data clicks on a map add and remove
points and retrain in the worker, a CSV goes in through the real file input (set_input_files) and a bad one shows
its message with the points unchanged, the Lab and Sharing architectures train on an uploaded file, and a link with
data=custom falls back to the generated data with a notice (a fresh worker has no data of one's own) and loses
data=custom from the address bar, as under panel serve; a reload of the tab trains on the same data again (kept in
the tab's sessionStorage), another tab falls back. The site comes from tests/conftest.py
($MTL_STATIC_SITE to use one built already)."""

from __future__ import annotations

import numpy as np
import pytest

from browser import plot_point_js
import test_static_site
from app import common
from app.shared_separate_state import HOLDOUT
from test_static_site import ACT_MS, BOOT_MS, DOC, LIVE, SETTLED, assert_clean, column, model, opened, wait_steps

pytestmark = pytest.mark.static
ctx = test_static_site.ctx  # its Chromium fixture
N_POINTS = 200 + int(round(200 * HOLDOUT / (1 - HOLDOUT)))  # Edit data: the training points + a third held out
TO_PAGE = plot_point_js(DOC)
N_PTS = f"() => {DOC}.get_model_by_name('points_source').data.x0.length"
GOOD = (
    "x1,x2,label_a,label_b\n0.5,0.5,1,0\n-0.5,0.5,0,\n-0.5,-0.5,,1\n0.5,-0.5,0,1\n"
    "1.0,1.0,1,1\n-1.0,-1.0,0,0\n1.5,0.0,1,0\n0.0,1.5,0,1\n"
)


def csv_file(text: str | bytes, name: str = "points.csv") -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode() if isinstance(text, str) else text}


def points(page) -> list[tuple[float, float]]:
    return list(zip(column(page, "points_source", "x0"), column(page, "points_source", "x1")))


def near(pts, target, tol=0.1) -> list:
    return [p for p in pts if abs(p[0] - target[0]) < tol and abs(p[1] - target[1]) < tol]


def click_map(page, x: float, y: float, *, shift: bool = False, name: str = "boundary_shared_a") -> None:
    px, py = page.evaluate(TO_PAGE, [name, x, y])
    if shift:
        page.keyboard.down("Shift")
    try:
        page.mouse.click(px, py)
    finally:
        if shift:
            page.keyboard.up("Shift")


def wait_points(page, n: int) -> None:
    page.wait_for_function(f"(n) => ({N_PTS})() === n", arg=n, timeout=ACT_MS)


def test_edit_data_clicks_and_a_csv_upload_in_the_worker(url, ctx):
    with opened(ctx, f"{url}/shared_separate.html", "custom-edit") as (page, watch):
        wait_steps(page, "acc_source", 3)
        assert page.evaluate(N_PTS) == 200
        page.get_by_role("button", name="Edit data").click()
        wait_points(page, N_POINTS)
        page.wait_for_function("() => window.location.search.includes('data=custom')", timeout=ACT_MS)
        target = (1.8, -2.7)
        assert not near(points(page), target, 0.3), "pick an empty spot"
        click_map(page, *target)
        wait_points(page, N_POINTS + 1)
        assert len(near(points(page), target)) == 1
        # retrained on the new data in the worker: a new run (step 0 again), which trains
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_summary').text.includes('201 for training')", timeout=ACT_MS
        )
        wait_steps(page, "acc_source", 3)
        click_map(page, target[0] + 0.05, target[1] - 0.05, shift=True)  # shift-click removes the nearest point
        wait_points(page, N_POINTS)
        assert not near(points(page), target)
        # a CSV through the real file input: the points are the file's
        upload = page.locator("input[type=file]")
        upload.set_input_files(csv_file(GOOD))
        wait_points(page, 8)
        assert sorted(points(page)) == sorted(
            (float(r.split(",")[0]), float(r.split(",")[1])) for r in GOOD.splitlines()[1:]
        )
        wait_steps(page, "acc_source", 3)
        # a bad file: its message names the row and column, the points stay
        before = points(page)
        upload.set_input_files(csv_file(GOOD + "0.5,abc,1,0\n", "bad.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('row 10, column x2')", timeout=ACT_MS
        )
        assert "is not a number" in model(page, "data_error", "text")  # (the model holds it HTML-escaped)
        assert page.get_by_text("row 10, column x2: 'abc' is not a number").count() == 1  # as the reader sees it
        assert points(page) == before
        # a file over the limit: refused in the page before it is encoded and posted to the worker
        upload.set_input_files(csv_file(GOOD * 150_000, "huge.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('huge.csv is ')", timeout=ACT_MS
        )
        assert "Your data is unchanged" in model(page, "data_error", "text")
        assert points(page) == before
        assert_clean(watch)


def test_the_lab_trains_on_an_uploaded_csv_in_the_worker(url, ctx):
    rows = 40
    csv = "x1,x2,y_reg,y_cls\n" + "".join(
        f"{np.sin(i):.3f},{np.cos(i):.3f},{300 * np.sin(i):.2f},{int(np.sin(i) > 0)}\n" for i in range(rows)
    )
    with opened(ctx, f"{url}/weighting_lab.html", "custom-lab") as (page, watch):
        wait_steps(page, "curves_equal", 2)
        upload = page.locator("input[type=file]")
        upload.set_input_files(csv_file(bytes(range(256)) * 8, "picture.png"))  # a binary file first
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('not a text')", timeout=ACT_MS
        )
        assert model(page, "data", "active") == 0  # still the generated data
        upload.set_input_files(csv_file(csv, "mine.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_summary').text.includes('{rows} rows, 2 input columns')",
            timeout=ACT_MS,
        )
        assert model(page, "data", "active") == 2 and model(page, "data_error", "text") == ""
        page.wait_for_function(f"() => {DOC}.get_model_by_name('summary').text.includes('y_reg')", timeout=ACT_MS)
        wait_steps(page, "curves_equal", 3)  # every method trains on the file
        assert_clean(watch)


def test_a_link_with_data_custom_falls_back_to_the_generated_data_with_a_notice(url, ctx):
    with opened(ctx, f"{url}/shared_separate.html?data=custom&seed=7", "custom-fallback") as (page, watch):
        notice = page.locator(".mtl-notice", has_text="showing the generated data")
        notice.first.wait_for(timeout=ACT_MS)
        assert "in a link" in notice.first.inner_text()  # why: the points never travel in a link
        assert model(page, "data", "active") == 0 and model(page, "seed") == 7
        assert page.evaluate(N_PTS) == 200  # the generated training points
        # the address bar loses data=custom at once, as under panel serve (tests/test_serve_browser_custom_data.py):
        # the page reports the address it was opened with to the worker, which drops data=custom again
        page.wait_for_function("() => !window.location.search.includes('data=custom')", timeout=ACT_MS)
        assert "seed=7" in page.evaluate("window.location.search")  # the other settings stay in the link
        assert page.evaluate(f"() => {DOC}.get_model_by_name('seed').value") == 7
        wait_steps(page, "acc_source", 2)
        assert "data=custom" not in page.evaluate("window.location.search")  # and it does not come back
        assert_clean(watch)


def test_the_architectures_page_trains_on_an_uploaded_csv_in_the_worker(url, ctx):
    with opened(ctx, f"{url}/architectures.html?data=custom", "custom-arch") as (page, watch):
        page.locator(".mtl-notice", has_text="showing the generated data").first.wait_for(timeout=ACT_MS)
        page.wait_for_function("() => !window.location.search.includes('data=custom')", timeout=ACT_MS)
        wait_steps(page, "acc_source", 2)
        upload = page.locator("input[type=file]")
        upload.set_input_files(csv_file("x1,x2,label_a\n1,2,0\n", "short.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('missing column label_b')", timeout=ACT_MS
        )
        assert model(page, "data", "active") == 0  # still the generated data
        upload.set_input_files(csv_file(GOOD))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_summary').text.includes('8 points')", timeout=ACT_MS
        )
        assert model(page, "data", "active") == 1 and model(page, "data_error", "text") == ""
        page.wait_for_function("() => window.location.search.includes('data=custom')", timeout=ACT_MS)
        assert model(page, "noise", "disabled")  # the generated data's knobs wait
        wait_steps(page, "acc_source", 3)  # the three models train on the file in the worker
        assert_clean(watch)


def test_the_auxiliary_page_trains_on_unlabelled_main_rows_in_the_worker(url, ctx):
    rows = 60  # main labels on 12 rows, aux (yes/no) on every row
    csv = "x1,x2,main,aux\n" + "".join(
        f"{np.sin(i):.3f},{np.cos(i):.3f},{int(np.sin(i) * np.cos(i) > 0) if i < 12 else ''},{int(np.sin(i) > 0)}\n"
        for i in range(rows)
    )
    with opened(ctx, f"{url}/auxiliary.html", "custom-aux") as (page, watch):
        wait_steps(page, "curves_source", 2)
        page.locator("input[type=file]").set_input_files(csv_file(csv, "mine.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_summary').text.includes('{rows} rows')", timeout=ACT_MS
        )
        assert "9 with a main label" in model(page, "data_summary", "text")  # a quarter of 12 held out
        assert model(page, "data", "active") == 1 and model(page, "main_labels", "disabled")
        page.wait_for_function("() => window.location.search.includes('data=custom')", timeout=ACT_MS)
        wait_steps(page, "curves_source", 3)  # the three runs train on the file in the worker
        assert_clean(watch)


def reload(page) -> None:
    page.reload()
    page.wait_for_function(SETTLED, timeout=BOOT_MS)
    page.wait_for_function(LIVE, timeout=ACT_MS)


def test_a_reload_of_the_tab_trains_on_the_same_points_in_a_new_worker_and_another_tab_falls_back(url, ctx):
    key = common.own_data_key("shared_separate")
    with opened(ctx, f"{url}/shared_separate.html?seed=5", "custom-reload") as (page, watch):
        wait_steps(page, "acc_source", 2)
        page.locator("input[type=file]").set_input_files(csv_file(GOOD))
        wait_points(page, 8)
        page.wait_for_function("() => window.location.search.includes('data=custom')", timeout=ACT_MS)
        page.wait_for_function("(key) => window.sessionStorage.getItem(key) !== null", arg=key, timeout=ACT_MS)
        before, summary = sorted(points(page)), model(page, "data_summary", "text")
        address = page.url
        reload(page)  # a new worker: Python's own memory of the file is gone, the tab's copy is not
        wait_points(page, 8)
        assert sorted(points(page)) == before  # exactly the same floats
        assert model(page, "data_summary", "text") == summary and model(page, "data", "active") == 1
        wait_steps(page, "acc_source", 3)  # it trains on them in the worker
        assert "data=custom" in page.evaluate("window.location.search") and "seed=5" in page.url
        assert page.locator(".mtl-notice", has_text="showing the generated data").count() == 0
        # the same address in another tab: a sessionStorage of its own, so nothing comes back
        with opened(ctx, address, "custom-reload-elsewhere") as (other, w2):
            other.locator(".mtl-notice", has_text="showing the generated data").first.wait_for(timeout=ACT_MS)
            other.wait_for_function("() => !window.location.search.includes('data=custom')", timeout=ACT_MS)
            assert other.evaluate(N_PTS) == 200 and model(other, "data", "active") == 0
            assert_clean(w2)
        # back to the generated data: the tab forgets the file
        page.get_by_role("button", name="Reset to generated data").click()
        wait_points(page, 200)
        page.wait_for_function("(key) => window.sessionStorage.getItem(key) === null", arg=key, timeout=ACT_MS)
        assert_clean(watch)


def test_garbage_kept_in_the_tab_falls_back_with_the_notice_in_the_worker(url, ctx):
    key = common.own_data_key("architectures")
    with opened(ctx, f"{url}/architectures.html", "custom-garbage") as (page, watch):
        page.evaluate('(key) => window.sessionStorage.setItem(key, \'{"v": 1, "x": "garbage"}\')', key)
        page.goto(f"{url}/architectures.html?data=custom&seed=4")  # the same tab, so the same sessionStorage
        page.wait_for_function(SETTLED, timeout=BOOT_MS)
        page.locator(".mtl-notice", has_text="showing the generated data").first.wait_for(timeout=ACT_MS)
        page.wait_for_function("() => !window.location.search.includes('data=custom')", timeout=ACT_MS)
        assert model(page, "data", "active") == 0 and "seed=4" in page.url
        page.wait_for_function("(key) => window.sessionStorage.getItem(key) === null", arg=key, timeout=ACT_MS)
        wait_steps(page, "acc_source", 2)
        assert_clean(watch)
