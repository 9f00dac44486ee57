"""Your own data (issue 14) under `panel serve app` in Chromium: Edit data clicks on a map add and remove points and
retrain (shift-click and the Remove mode), a CSV goes in through the real file input (Playwright's
set_input_files), a bad file shows its message and leaves the points alone, and a link with data=custom but no
session data falls back with a notice. Every round trip is browser event -> Python state -> data source ->
browser: the tests read the page's own Bokeh document."""

from __future__ import annotations

import numpy as np
import pytest

from browser import ANSWER_MS, plot_point_js
import test_serve_browser
from app import common
from app.shared_separate_state import HOLDOUT
from test_serve_browser import arm_replaced, assert_clean, column, model_value, opened, wait_steps

pytestmark = pytest.mark.browser
server, browser = test_serve_browser.server, test_serve_browser.browser  # its fixtures: a server of our own
DOC = "Bokeh.documents[0]"
N_POINTS = 200 + int(round(200 * HOLDOUT / (1 - HOLDOUT)))  # Edit data: the training points + a third held out
# page coordinates of a data point of a named figure (scrolled into view first): the plot's own scales
TO_PAGE = plot_point_js(DOC)
N_PTS = f"() => {DOC}.get_model_by_name('points_source').data.x0.length"
GOOD = "x1,x2,label_a,label_b\n" + "".join(
    f"{x},{y},{a},{b}\n"
    for x, y, a, b in [
        (0.5, 0.5, 1, 0),
        (-0.5, 0.5, 0, ""),
        (-0.5, -0.5, "", 1),
        (0.5, -0.5, 0, 1),
        (1.0, 1.0, 1, 1),
        (-1.0, -1.0, 0, 0),
        (1.5, 0.0, 1, 0),
        (0.0, 1.5, 0, 1),
    ]
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


def wait_points(page, n: int, timeout: float = 20_000) -> None:
    page.wait_for_function(f"(n) => ({N_PTS})() === n", arg=n, timeout=timeout)


def test_edit_data_clicks_add_and_remove_points_and_retrain(server, browser):
    with opened(browser, f"{server}?page=shared_separate", "custom-edit") as (page, watch, dialogs):
        wait_steps(page, "acc_source", 3)
        assert page.evaluate(N_PTS) == 200
        click_map(page, 2.0, 2.0)  # not in Edit data mode: a click does nothing
        page.get_by_role("button", name="Edit data").click()
        wait_points(page, N_POINTS)  # the generated points, plus some held out (hollow)
        page.wait_for_url("**data=custom*", timeout=ANSWER_MS)
        # a point of task A only, label 0, clicked on task B's map (any map takes the click)
        page.get_by_role("button", name="Task A").click()
        page.get_by_role("button", name="label 0").click()
        page.wait_for_function(f"() => {DOC}.get_model_by_name('edit_label').active === 0", timeout=ANSWER_MS)
        wait_steps(page, "acc_source", 3)
        arm_replaced(page, "acc_source")
        target = (1.8, -2.7)
        assert not near(points(page), target, 0.3), "pick an empty spot"
        click_map(page, *target, name="boundary_separate_b")
        wait_points(page, N_POINTS + 1)
        added = near(points(page), target)
        assert len(added) == 1, added  # where the mouse went, within a pixel or two
        i = points(page).index(added[0])
        assert column(page, "points_source", "color_a")[i] == "#3b6fb6"  # label 0 for task A
        assert column(page, "points_source", "color_b")[i] == "#b0b0b0"  # no label for task B
        # the page retrained on the new data: the curves were replaced and a new run trains
        page.wait_for_function(
            f"() => window.__mtlReplaced && {DOC}.get_model_by_name('acc_source').data.step.length >= 3",
            timeout=20_000,
        )
        assert "201 for training" in model_value(page, "data_summary", "text")
        # shift-click removes the nearest point: the one just added
        arm_replaced(page, "acc_source")
        click_map(page, target[0] + 0.05, target[1] - 0.05, shift=True)
        wait_points(page, N_POINTS)
        assert not near(points(page), target)
        page.wait_for_function("() => window.__mtlReplaced", timeout=20_000)
        # Remove mode (no shift key on a touch screen): a click removes the point under it
        page.get_by_role("button", name="Remove mode").click()
        page.wait_for_function(f"() => {DOC}.get_model_by_name('remove_mode').active === true", timeout=ANSWER_MS)
        # two quick clicks on one map: BokehJS reports the second (within 300 ms) as a DoubleTap, a click all the same
        victims = points(page)[:2]
        spots = [page.evaluate(TO_PAGE, ["boundary_shared_a", *v]) for v in victims]
        for px, py in spots:
            page.mouse.click(px, py)
        wait_points(page, N_POINTS - 2)
        assert not set(victims) & set(points(page))
        wait_steps(page, "acc_source", 3)
        assert_clean(page, watch, dialogs)


def test_upload_through_the_file_input_and_a_bad_file_shows_its_message(server, browser):
    with opened(browser, f"{server}?page=shared_separate", "custom-upload") as (page, watch, dialogs):
        wait_steps(page, "acc_source", 2)
        upload = page.locator("input[type=file]")
        assert upload.count() == 1
        upload.set_input_files(csv_file(GOOD))
        wait_points(page, 8)
        page.wait_for_url("**data=custom*", timeout=ANSWER_MS)
        assert sorted(points(page)) == sorted(
            (float(r.split(",")[0]), float(r.split(",")[1])) for r in GOOD.splitlines()[1:]
        )
        assert "8 points" in model_value(page, "data_summary", "text")
        wait_steps(page, "acc_source", 3)  # it trains on them
        before = points(page)
        # a bad file: its message, naming the row and column; the points stay
        upload.set_input_files(csv_file(GOOD + "0.5,0.5,2,0\n", "bad.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('row 10, column label_a')", timeout=20_000
        )
        assert "labels are 0 or 1" in model_value(page, "data_error", "text")
        assert page.get_by_text("row 10, column label_a").count() == 1  # on screen, not only in the model
        assert points(page) == before
        upload.set_input_files(csv_file(bytes(range(256)), "picture.png"))  # a binary file
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('not a text')", timeout=20_000
        )
        assert points(page) == before
        # a file over the limit is refused by the browser before it is sent (its base64 would be over the
        # websocket's 20 MB message limit and close the session): the message, the same points, still training
        steps = len(column(page, "acc_source", "step"))
        huge = GOOD + "0.5,0.5,1,0\n" * 2_000_000
        upload.set_input_files(csv_file(huge, "huge.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('huge.csv is {len(huge) / 1e6:.1f} MB')",
            timeout=20_000,
        )
        assert "Your data is unchanged" in model_value(page, "data_error", "text")
        assert points(page) == before
        wait_steps(page, "acc_source", steps + 3)  # the session is alive: it trains on
        # the same good file again (the input was cleared after each file, so it is sent once more)
        upload.set_input_files(csv_file(GOOD))
        page.wait_for_function(f"() => {DOC}.get_model_by_name('data_error').text === ''", timeout=20_000)
        assert len(points(page)) == 8
        page.get_by_role("button", name="Reset to generated data").click()
        wait_points(page, 200)
        page.wait_for_function("() => !window.location.search.includes('data=custom')", timeout=ANSWER_MS)
        assert_clean(page, watch, dialogs)


def test_the_lab_takes_a_csv_through_the_file_input(server, browser):
    rows = 50
    csv = "x1,x2,x3,y_reg,y_cls\n" + "".join(
        f"{np.sin(i):.3f},{np.cos(i):.3f},{i % 5},{500 * np.sin(i):.2f},{int(np.sin(i) > 0)}\n" for i in range(rows)
    )
    with opened(browser, f"{server}?page=weighting_lab", "custom-lab") as (page, watch, dialogs):
        wait_steps(page, "curves_equal", 2)
        upload = page.locator("input[type=file]")
        upload.set_input_files(csv_file("x1,y_reg\n1,2\n3,4\n5,6\n7,8\n", "short.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('missing column y_cls')", timeout=20_000
        )
        assert model_value(page, "data", "active") == 0  # still the generated scale-mismatch data
        upload.set_input_files(csv_file(csv, "mine.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_summary').text.includes('{rows} rows, 3 input columns')",
            timeout=20_000,
        )
        assert model_value(page, "data", "active") == 2  # Your own data
        assert model_value(page, "data_error", "text") == ""
        page.wait_for_url("**data=custom*", timeout=ANSWER_MS)
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('summary').text.includes('y_reg')", timeout=20_000
        )  # every method trains on the file's tasks
        wait_steps(page, "curves_equal", 3)
        assert_clean(page, watch, dialogs)


def test_the_architectures_page_trains_on_a_csv_through_the_file_input(server, browser):
    rows = 40
    csv = "x1,x2,label_a,label_b\n" + "".join(
        f"{np.sin(i):.3f},{np.cos(i):.3f},{int(np.sin(i) > 0)},{int(np.cos(i) > 0) if i % 4 else ''}\n"
        for i in range(rows)
    )
    with opened(browser, f"{server}?page=architectures&branch=1", "custom-arch") as (page, watch, dialogs):
        wait_steps(page, "acc_source", 2)
        assert "Generated data" in model_value(page, "data_summary", "text")
        upload = page.locator("input[type=file]")
        assert upload.count() == 1
        upload.set_input_files(csv_file(GOOD + "0.5,0.5,1,yes\n", "bad.csv"))  # a bad file first
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('row 10, column label_b')", timeout=20_000
        )
        assert page.get_by_text("row 10, column label_b: 'yes' is not a number").count() == 1  # as the reader sees it
        assert model_value(page, "data", "active") == 0  # still the generated data
        arm_replaced(page, "acc_source")
        upload.set_input_files(csv_file(csv, "mine.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_summary').text.includes('{rows} points')", timeout=20_000
        )
        assert model_value(page, "data", "active") == 1 and model_value(page, "data_error", "text") == ""
        assert "task B 30" in model_value(page, "data_summary", "text")  # the empty label_b cells: missing labels
        page.wait_for_url("**data=custom*", timeout=ANSWER_MS)
        assert "branch=1" in page.evaluate("window.location.search")  # the other settings stay in the link
        assert model_value(page, "relatedness", "disabled") and not model_value(page, "branch", "disabled")
        # the three models retrain on the file: the curves were replaced, then grow again
        page.wait_for_function(
            f"() => window.__mtlReplaced && {DOC}.get_model_by_name('acc_source').data.step.length >= 3",
            timeout=20_000,
        )
        page.get_by_role("button", name="Reset to generated data").click()
        page.wait_for_function("() => !window.location.search.includes('data=custom')", timeout=ANSWER_MS)
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_summary').text.includes('Generated data')", timeout=20_000
        )
        assert not model_value(page, "relatedness", "disabled")
        assert_clean(page, watch, dialogs)


def test_the_auxiliary_page_takes_unlabelled_main_rows_through_the_file_input(server, browser):
    rows = 80  # main labels on the first 16 rows only: the rest are unlabelled main rows, every row has aux
    csv = "x1,x2,main,aux\n" + "".join(
        f"{np.sin(i):.3f},{np.cos(i):.3f},{int(np.sin(i) * np.cos(i) > 0) if i < 16 else ''},{np.sin(i):.3f}\n"
        for i in range(rows)
    )
    with opened(browser, f"{server}?page=auxiliary", "custom-aux") as (page, watch, dialogs):
        wait_steps(page, "curves_source", 2)
        upload = page.locator("input[type=file]")
        upload.set_input_files(csv_file(csv, "scores.csv"))  # aux is a score, the auxiliary target a yes/no label
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_error').text.includes('Numeric score')", timeout=20_000
        )
        assert model_value(page, "data", "active") == 0  # still the generated data
        page.get_by_role("button", name="Numeric score").click()
        page.wait_for_url("**aux_kind=regression*", timeout=ANSWER_MS)
        upload.set_input_files(csv_file(csv, "scores.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_summary').text.includes('{rows} rows')", timeout=20_000
        )
        summary = model_value(page, "data_summary", "text")
        assert "12 with a main label" in summary and "4 with a main label" in summary  # 16 main labels: 12 train
        assert model_value(page, "data", "active") == 1 and model_value(page, "data_error", "text") == ""
        page.wait_for_url("**data=custom*", timeout=ANSWER_MS)
        assert model_value(page, "main_labels", "disabled") and not model_value(page, "aux_kind", "disabled")
        wait_steps(page, "curves_source", 3)  # the three runs train on the file
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('summary').text.includes('with the auxiliary task')", timeout=20_000
        )
        assert_clean(page, watch, dialogs)


@pytest.mark.parametrize("slug", ["shared_separate", "weighting_lab", "architectures", "auxiliary"])
def test_a_link_with_data_custom_without_session_data_falls_back_with_a_notice(server, browser, slug):
    with opened(browser, f"{server}?page={slug}&data=custom&seed=7", f"custom-fallback-{slug}") as (page, w, d):
        notice = page.locator(".mtl-notice", has_text="showing the generated data")
        notice.first.wait_for(timeout=ANSWER_MS)
        assert "in a link" in notice.first.inner_text()  # why: the points never travel in a link
        page.wait_for_function("() => !window.location.search.includes('data=custom')", timeout=ANSWER_MS)
        assert "seed=7" in page.evaluate("window.location.search")  # the other settings stay in the link
        assert model_value(page, "data", "active") == 0
        assert_clean(page, w, d)


def reload(page) -> None:
    page.reload()
    page.wait_for_function(test_serve_browser.READY, timeout=30_000)


def kept(page, slug: str):
    """What this tab's sessionStorage keeps for the page (None: nothing)."""
    return page.evaluate("(key) => window.sessionStorage.getItem(key)", common.own_data_key(slug))


def test_a_reload_of_the_tab_trains_on_the_same_points_and_another_tab_falls_back(server, browser):
    with opened(browser, f"{server}?page=shared_separate&seed=5", "custom-reload") as (page, watch, dialogs):
        wait_steps(page, "acc_source", 2)
        assert kept(page, "shared_separate") is None
        page.locator("input[type=file]").set_input_files(csv_file(GOOD))
        wait_points(page, 8)
        page.wait_for_url("**data=custom*", timeout=ANSWER_MS)
        page.wait_for_function(
            "(key) => window.sessionStorage.getItem(key) !== null", arg=common.own_data_key("shared_separate")
        )
        before, summary = sorted(points(page)), model_value(page, "data_summary", "text")
        address = page.url
        reload(page)
        wait_points(page, 8)  # the file's points, not the 200 generated ones
        assert sorted(points(page)) == before  # exactly: the JSON keeps every float as it was
        assert model_value(page, "data_summary", "text") == summary  # the same rows held out
        assert model_value(page, "data", "active") == 1
        wait_steps(page, "acc_source", 3)  # it trains on them
        assert "data=custom" in page.evaluate("window.location.search") and "seed=5" in page.url
        assert page.locator(".mtl-notice", has_text="showing the generated data").count() == 0  # no notice
        # the same address in another tab: its sessionStorage is its own, so nothing comes back
        with opened(browser, address, "custom-reload-elsewhere") as (other, w2, d2):
            notice = other.locator(".mtl-notice", has_text="showing the generated data")
            notice.first.wait_for(timeout=ANSWER_MS)
            other.wait_for_function("() => !window.location.search.includes('data=custom')", timeout=ANSWER_MS)
            assert other.evaluate(N_PTS) == 200 and model_value(other, "data", "active") == 0
            assert_clean(other, w2, d2)
        # back to the generated data: the tab forgets the file, and a reload stays on the generated data
        page.get_by_role("button", name="Reset to generated data").click()
        wait_points(page, 200)
        page.wait_for_function(
            "(key) => window.sessionStorage.getItem(key) === null", arg=common.own_data_key("shared_separate")
        )
        reload(page)
        wait_steps(page, "acc_source", 2)
        assert page.evaluate(N_PTS) == 200
        assert_clean(page, watch, dialogs)


def test_edited_points_come_back_after_a_reload(server, browser):
    with opened(browser, f"{server}?page=shared_separate", "custom-reload-edit") as (page, watch, dialogs):
        wait_steps(page, "acc_source", 2)
        page.get_by_role("button", name="Edit data").click()
        wait_points(page, N_POINTS)
        page.wait_for_url("**data=custom*", timeout=ANSWER_MS)
        target = (1.8, -2.7)
        click_map(page, *target)
        wait_points(page, N_POINTS + 1)
        page.wait_for_function(
            "(key) => (window.sessionStorage.getItem(key) || '').includes('1.8')",
            arg=common.own_data_key("shared_separate"),
            timeout=ANSWER_MS,
        )
        before = sorted(points(page))
        reload(page)
        wait_points(page, N_POINTS + 1)
        assert sorted(points(page)) == before and len(near(points(page), target)) == 1
        assert "data=custom" in page.evaluate("window.location.search")
        assert_clean(page, watch, dialogs)


@pytest.mark.parametrize("stored", ["{not json", '{"v": 1, "x": "garbage"}', "null"])
def test_garbage_kept_in_the_tab_falls_back_with_the_notice(server, browser, stored):
    with opened(browser, f"{server}?page=architectures", "custom-garbage") as (page, watch, dialogs):
        wait_steps(page, "acc_source", 2)
        key = common.own_data_key("architectures")
        page.evaluate("([key, text]) => window.sessionStorage.setItem(key, text)", [key, stored])
        page.goto(f"{server}?page=architectures&data=custom&seed=4")  # the same tab: its sessionStorage
        page.wait_for_function(test_serve_browser.READY, timeout=30_000)
        page.locator(".mtl-notice", has_text="showing the generated data").first.wait_for(timeout=ANSWER_MS)
        page.wait_for_function("() => !window.location.search.includes('data=custom')", timeout=ANSWER_MS)
        assert model_value(page, "data", "active") == 0 and "seed=4" in page.url
        page.wait_for_function("(key) => window.sessionStorage.getItem(key) === null", arg=key, timeout=ANSWER_MS)
        wait_steps(page, "acc_source", 2)  # and it trains on the generated data
        assert_clean(page, watch, dialogs)


@pytest.mark.parametrize(
    ("slug", "rows", "summary"),
    [
        (
            "weighting_lab",
            "x1,x2,x3,y_reg,y_cls\n"
            + "".join(
                f"{np.sin(i):.3f},{np.cos(i):.3f},{i % 5},{500 * np.sin(i):.2f},{int(i % 3 == 0)}\n" for i in range(30)
            ),
            "30 rows, 3 input columns",
        ),
        (
            "auxiliary",
            "x1,x2,main,aux\n"
            + "".join(
                f"{np.sin(i):.3f},{np.cos(i):.3f},{i % 2 if i < 12 else ''},{int(np.sin(i) > 0)}\n" for i in range(40)
            ),
            "40 rows",
        ),
    ],
)
def test_the_other_pages_keep_an_upload_over_a_reload(server, browser, slug, rows, summary):
    with opened(browser, f"{server}?page={slug}", f"custom-reload-{slug}") as (page, watch, dialogs):
        page.locator("input[type=file]").set_input_files(csv_file(rows, "mine.csv"))
        page.wait_for_function(
            f"() => {DOC}.get_model_by_name('data_summary').text.includes({summary!r})", timeout=20_000
        )
        page.wait_for_url("**data=custom*", timeout=ANSWER_MS)
        page.wait_for_function(
            "(key) => window.sessionStorage.getItem(key) !== null", arg=common.own_data_key(slug), timeout=ANSWER_MS
        )
        text = model_value(page, "data_summary", "text")
        reload(page)
        page.wait_for_function(
            f"(text) => {DOC}.get_model_by_name('data_summary').text === text", arg=text, timeout=20_000
        )
        assert "data=custom" in page.evaluate("window.location.search")
        assert page.locator(".mtl-notice", has_text="showing the generated data").count() == 0
        assert_clean(page, watch, dialogs)
