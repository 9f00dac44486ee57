"""Your own data (issue 14) without a browser: the CSV parser's message for every kind of bad file, a page that keeps
its data when a file is refused, an upload that fills the plot sources, Edit data clicks that add / remove a point
and retrain, data=custom in a link without session data falling back with a notice, and the JSON the browser tab
keeps the data in (an exact round trip, garbage refused) with the page's side of keeping and restoring it."""

from __future__ import annotations

import numpy as np
import pytest

from app import common
from app.custom_data import (
    MAIN_AUX_LABELS,
    MAX_ROWS,
    REG_CLS_LABELS,
    TWO_TASK_LABELS,
    CustomData,
    CustomDataError,
    fit_inputs,
    hold_out,
    hold_out_stratified,
    parse_main_aux,
    parse_regression_classification,
    parse_two_tasks,
    from_json,
    show_fallback,
    to_json,
)
from app.shared_separate import create_page as create_shared
from app.shared_separate_state import EXTENT, FALLBACK_NOTICE, HOLDOUT, SharedSeparateState
from app.shared_separate_state import SETTINGS as SHARED_SETTINGS
from app.weighting_lab import create_page as create_lab
from app.weighting_lab_state import FALLBACK_NOTICE as LAB_FALLBACK
from app.weighting_lab_state import METHODS, WeightingLabState
from app.weighting_lab_state import SETTINGS as LAB_SETTINGS

HEADER = "x1,x2,label_a,label_b\n"
GOOD_ROWS = (
    "0.5,0.5,1,0\n-0.5,0.5,0,\n-0.5,-0.5,,1\n0.5,-0.5,0,1\n1.0,1.0,1,1\n-1.0,-1.0,0,0\n1.5,0.0,1,0\n0.0,1.5,0,1\n"
)
GOOD = HEADER + GOOD_ROWS

# (what is wrong, the file, words the message must contain: where and why)
BAD_TWO_TASK_FILES = [
    ("empty file", b"", ["empty"]),
    ("only blank lines", b"\n\n  \n", ["empty"]),
    ("binary file", bytes(range(256)) * 4, ["not a text", "UTF-8"]),
    ("NUL bytes", b"x1,x2,label_a,label_b\n0,0\x00,1,1\n", ["NUL"]),
    ("header only", HEADER.encode(), ["no data rows"]),
    ("too few rows", (HEADER + "0,0,1,1\n1,1,0,0\n").encode(), ["only 2 data rows", "at least 4"]),
    ("missing column", ("x1,x2,label_a\n" + "0,0,1\n" * 5).encode(), ["missing column label_b"]),
    ("unknown column", ("x1,x2,label_a,label_b,colour\n" + "0,0,1,1,red\n" * 5).encode(), ["unknown column 'colour'"]),
    ("wrong names", ("a,b,c,d\n" + "0,0,1,1\n" * 5).encode(), ["missing columns x1, x2, label_a, label_b"]),
    ("no header", ("0,0,1,1\n" * 5).encode(), ["first row must be the header"]),
    ("semicolons", ("x1;x2;label_a;label_b\n" + "0;0;1;1\n" * 5).encode(), ["';'"]),
    ("duplicate column", ("x1,x1,label_a,label_b\n" + "0,0,1,1\n" * 5).encode(), ["x1 twice"]),
    ("empty header cell", ("x1,,label_a,label_b\n" + "0,0,1,1\n" * 5).encode(), ["Column 2 of the header"]),
    ("not a number", (GOOD + "0.5,abc,1,0\n").encode(), ["row 10, column x2", "'abc' is not a number"]),
    ("decimal comma", (GOOD + '"0,5",0.5,1,0\n').encode(), ["row 10, column x1", "use a dot"]),
    ("NaN", (GOOD + "nan,0.5,1,0\n").encode(), ["row 10, column x1", "not a finite number"]),
    ("Inf", (GOOD + "0.5,-inf,1,0\n").encode(), ["row 10, column x2", "not a finite number"]),
    ("overflow", (GOOD + "1e999,0.5,1,0\n").encode(), ["row 10, column x1", "too large"]),
    ("NaN label", (GOOD + "0.5,0.5,NaN,0\n").encode(), ["row 10, column label_a", "empty for a missing label"]),
    ("label 2", (GOOD + "0.5,0.5,2,0\n").encode(), ["row 10, column label_a", "labels are 0 or 1"]),
    ("label 0.5", (GOOD + "0.5,0.5,1,0.5\n").encode(), ["row 10, column label_b", "labels are 0 or 1"]),
    ("label yes", (GOOD + "0.5,0.5,yes,0\n").encode(), ["row 10, column label_a", "'yes' is not a number"]),
    ("empty x", (GOOD + ",0.5,1,0\n").encode(), ["row 10, column x1", "empty"]),
    ("too few cells", (GOOD + "0.5,0.5,1\n").encode(), ["row 10 has 3 cells", "4 columns"]),
    ("too many cells", (GOOD + "0.5,0.5,1,0,7\n").encode(), ["row 10 has 5 cells", "4 columns"]),
    ("a task without labels", (HEADER + "0,0,1,\n1,1,0,\n2,2,1,\n3,3,0,\n").encode(), ["label_b has no labels"]),
    ("too many rows", (HEADER + "0,0,1,1\n" * (MAX_ROWS + 1)).encode(), ["more than 5,000", "row 5002"]),
    ("too big", b"x" * 2_000_000, ["MB"]),
]


@pytest.mark.parametrize("what,raw,words", BAD_TWO_TASK_FILES, ids=[b[0] for b in BAD_TWO_TASK_FILES])
def test_every_bad_two_task_file_gets_a_message_naming_where(what, raw, words):
    with pytest.raises(CustomDataError) as err:
        parse_two_tasks(raw)
    for w in words:
        assert w in str(err.value), (what, str(err.value))


def test_many_problems_are_listed_with_a_count():
    raw = HEADER + "".join(f"{i},x,1,1\n" for i in range(10))
    msg = str(pytest.raises(CustomDataError, parse_two_tasks, raw).value)
    assert msg.startswith("row 2, column x2") and "row 3, column x2" in msg and "and 7 more" in msg


def test_a_good_two_task_file_parses_with_missing_labels():
    data = parse_two_tasks(("\ufeff" + GOOD.upper().replace("X1", "X1 ")).encode())  # BOM, any case, spaces
    assert data.n_rows == 8 and data.x_columns == ("x1", "x2")
    assert data.x[0].tolist() == [0.5, 0.5]
    assert np.isnan(data.labels["label_b"][1]) and np.isnan(data.labels["label_a"][2])
    assert data.n_labelled() == {"label_a": 7, "label_b": 7}
    assert not data.held_out.any()
    # columns in another order, CRLF line ends and a trailing blank row (what spreadsheets write)
    other = "label_b,label_a,x2,x1\r\n" + "".join(f"{b},{a},{y},{x}\r\n" for x, y, a, b in _rows(GOOD_ROWS)) + ",,,\r\n"
    again = parse_two_tasks(other)
    assert np.array_equal(again.x, data.x)
    for k in data.labels:
        assert np.array_equal(again.labels[k], data.labels[k], equal_nan=True)


def _rows(text):
    return [line.split(",") for line in text.strip().splitlines()]


REG_GOOD = "x1,x2,x3,y_reg,y_cls\n" + "".join(f"{i},{i % 3},{-i},{100.0 * i},{i % 2}\n" for i in range(10))
BAD_REG_FILES = [
    ("no targets", "x1,x2\n" + "0,0\n" * 5, ["missing columns y_reg, y_cls"]),
    ("no inputs", "y_reg,y_cls\n" + "0,0\n" * 5, ["no input column"]),
    ("unknown column", "x1,y_reg,y_cls,z\n" + "0,1,0,3\n" * 5, ["unknown column 'z'"]),
    ("class 3", REG_GOOD + "1,2,3,4,3\n", ["row 12, column y_cls", "labels are 0 or 1"]),
    ("reg nan", REG_GOOD + "1,2,3,nan,1\n", ["row 12, column y_reg", "not a finite number"]),
    ("x text", REG_GOOD + "1,two,3,4,1\n", ["row 12, column x2", "not a number"]),
    ("too few cells", REG_GOOD + "1,2,3,4\n", ["row 12 has 4 cells", "5 columns"]),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10, ["not a text"]),
    ("empty", "", ["empty"]),
]


@pytest.mark.parametrize("what,raw,words", BAD_REG_FILES, ids=[b[0] for b in BAD_REG_FILES])
def test_every_bad_regression_file_gets_a_message_naming_where(what, raw, words):
    with pytest.raises(CustomDataError) as err:
        parse_regression_classification(raw)
    for w in words:
        assert w in str(err.value), (what, str(err.value))


def test_a_good_regression_file_takes_any_number_of_inputs():
    data = parse_regression_classification(REG_GOOD)
    assert data.x.shape == (10, 3) and data.x_columns == ("x1", "x2", "x3")
    assert data.labels["y_reg"][3] == 300.0 and data.labels["y_cls"].tolist() == [i % 2 for i in range(10)]
    one = parse_regression_classification("x_age,y_reg,y_cls\n1,2,0\n2,,1\n3,4,\n4,5,1\n")
    assert one.x.shape == (4, 1) and one.n_labelled() == {"y_reg": 3, "y_cls": 3}


MAIN_AUX = "x1,x2,main,aux\n0,0,1,1\n1,0,,0\n0,1,,1\n1,1,0,\n2,2,,0\n"


def test_a_main_aux_file_has_unlabelled_main_rows_and_aux_as_the_target_kind_says():
    data = parse_main_aux(MAIN_AUX, aux_kind="binary")
    assert data.x_columns == ("x1", "x2") and data.n_labelled() == {"main": 2, "aux": 4}
    assert np.isnan(data.labels["main"][1]) and np.isnan(data.labels["aux"][3])  # empty cells: no label
    score = MAIN_AUX.replace("0,1,,1", "0,1,,0.25")
    assert parse_main_aux(score, aux_kind="regression").labels["aux"][2] == 0.25
    with pytest.raises(CustomDataError) as err:
        parse_main_aux(score, aux_kind="binary")
    assert "row 4, column aux" in str(err.value) and "Auxiliary target: Numeric score" in str(err.value)
    with pytest.raises(CustomDataError, match="row 2, column main: '0.5' is not a label"):
        parse_main_aux(MAIN_AUX.replace("0,0,1,1", "0,0,0.5,1"), aux_kind="regression")  # main is always 0/1
    with pytest.raises(CustomDataError, match="missing column aux"):
        parse_main_aux("x1,x2,main\n" + "0,0,1\n" * 5, aux_kind="binary")
    with pytest.raises(ValueError, match="aux_kind"):
        parse_main_aux(MAIN_AUX, aux_kind="multiclass")


def test_a_stratified_hold_out_keeps_labels_on_both_sides():
    labels = np.full(40, np.nan)
    labels[:8] = 1.0  # 8 of 40 rows labelled
    data = CustomData(x=np.zeros((40, 2)), x_columns=("x1", "x2"), labels={"main": labels})
    for seed in range(20):
        held = hold_out_stratified(data, 0.25, "main", rng=np.random.default_rng(seed)).held_out
        assert held[:8].sum() == 2 and held[8:].sum() == 8  # a quarter of each group, every time
    one = CustomData(x=np.zeros((5, 2)), x_columns=("x1", "x2"), labels={"main": np.array([1.0] + [np.nan] * 4)})
    held = hold_out_stratified(one, 0.25, "main", rng=np.random.default_rng(0)).held_out
    assert not held[0] and held[1:].sum() == 1  # the only label trains
    pair = CustomData(x=np.zeros((2, 2)), x_columns=("x1", "x2"), labels={"main": np.array([0.0, 1.0])})
    assert hold_out_stratified(pair, 0.9, "main", rng=np.random.default_rng(0)).held_out.sum() == 1
    with pytest.raises(ValueError, match="column"):
        hold_out_stratified(data, 0.25, "aux", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="fraction"):
        hold_out_stratified(data, 1.0, "main", rng=np.random.default_rng(0))


def test_inputs_are_standardised_only_when_they_do_not_fit_the_map():
    inside = parse_two_tasks(GOOD)
    assert fit_inputs(inside, extent=EXTENT) is inside  # drawn in map coordinates: left where they are
    wide = CustomData(x=inside.x * 100 + 50, x_columns=inside.x_columns, labels=inside.labels)
    fitted = fit_inputs(wide, extent=EXTENT)
    assert np.allclose(fitted.x.mean(axis=0), 0) and np.allclose(fitted.x.std(axis=0), 1)
    assert "standardised" in fitted.note
    held = hold_out(fitted, 0.99, rng=np.random.default_rng(0))
    assert held.held_out.sum() == fitted.n_rows - 1  # at least one row always trains


def test_edits_of_a_point_set():
    data = parse_two_tasks(GOOD)
    more = data.add_point((2.0, -2.0), {"label_a": 1})
    assert more.n_rows == 9 and more.x[-1].tolist() == [2.0, -2.0]
    assert more.labels["label_a"][-1] == 1 and np.isnan(more.labels["label_b"][-1]) and not more.held_out[-1]
    assert data.n_rows == 8  # a copy: the original is unchanged
    fewer = more.remove_nearest((1.9, -2.05), radius=0.35)
    assert fewer.n_rows == 8 and np.array_equal(fewer.x, data.x)
    with pytest.raises(CustomDataError, match="No point near"):
        data.remove_nearest((3.0, 3.0), radius=0.35)
    with pytest.raises(ValueError, match="point"):
        data.add_point((np.nan, 0.0), {})


# ---------------------------------------------------------------------------------------------------- the page
@pytest.fixture
def shared():
    return SharedSeparateState(n_samples=60)


def snapshot(state) -> dict:
    """Everything a refused file must leave alone: the data, the plot sources, the step count."""
    return {
        "data": state.data,
        "custom": None if state.custom is None else state.custom.x.copy(),
        "points": {k: list(v) for k, v in state.sources["points"].data.items()},
        "acc": {k: list(v) for k, v in state.sources["acc"].data.items()},
        "steps": state.steps,
        "train_x": state.train_data.x.copy(),
    }


def assert_same(a: dict, b: dict) -> None:
    assert a["data"] == b["data"] and a["points"] == b["points"] and a["acc"] == b["acc"] and a["steps"] == b["steps"]
    assert np.array_equal(a["train_x"], b["train_x"])
    assert (a["custom"] is None) == (b["custom"] is None)
    if a["custom"] is not None:
        assert np.array_equal(a["custom"], b["custom"])


def test_uploading_a_csv_fills_the_sources_and_retrains(shared):
    shared.tick(3)
    assert shared.load_csv(GOOD.encode())
    assert shared.data == "custom" and shared.steps == 0 and shared.running  # a new run, training at once
    pts = shared.sources["points"].data
    assert len(pts["x0"]) == 8  # every row of the file is on the maps (held-out ones hollow)
    rows = {(x, y) for x, y in zip(pts["x0"], pts["x1"])}
    assert rows == {tuple(r) for r in parse_two_tasks(GOOD).x.tolist()}
    held = shared.custom.held_out
    assert shared.train_data.n_samples == 8 - held.sum()
    # a missing label is grey on that task's map and masked out of training
    i = next(k for k, (x, y) in enumerate(zip(pts["x0"], pts["x1"])) if (x, y) == (-0.5, 0.5))  # label_b empty
    assert pts["color_b"][i] == "#b0b0b0" and pts["color_a"][i] == "#3b6fb6"
    assert shared.train_data.n_labelled()["a"] + (shared.test_data.n_labelled()["a"] if held.any() else 0) == 7
    assert "8 points" in shared.data_summary and "task A 7" in shared.data_summary
    shared.tick(5)
    assert shared.steps == 5 and len(shared.sources["acc"].data["step"]) == 2


@pytest.mark.parametrize("what,raw,words", BAD_TWO_TASK_FILES, ids=[b[0] for b in BAD_TWO_TASK_FILES])
def test_a_refused_file_leaves_the_page_data_as_it_was(shared, what, raw, words):
    before = snapshot(shared)
    assert not shared.load_csv(raw)
    assert words[0] in shared.data_error
    assert_same(before, snapshot(shared))


def test_a_refused_file_keeps_data_of_ones_own_too(shared):
    assert shared.load_csv(GOOD)
    shared.tick(2)
    before = snapshot(shared)
    assert not shared.load_csv(GOOD + "0.5,0.5,2,0\n")
    assert "row 10, column label_a" in shared.data_error
    assert_same(before, snapshot(shared))
    assert shared.load_csv(GOOD)  # a good file afterwards clears the message
    assert shared.data_error == ""


def test_edit_data_starts_from_the_generated_points_and_clicks_add_and_remove(shared):
    assert not shared.click(0.0, 0.0)  # not in Edit data mode: nothing happens
    gen_x = shared.train_data.x.copy()
    shared.editing = True
    assert shared.data == "custom" and shared.running
    assert np.array_equal(shared.train_data.x, gen_x)  # the same training points ...
    n_held = int(round(60 * HOLDOUT / (1 - HOLDOUT)))
    assert shared.test_data.n_samples == n_held  # ... plus a third as many fresh points held out
    shared.tick(4)
    shared.edit_task, shared.edit_label = "a", 0
    assert shared.click(1.25, -2.5)
    assert shared.steps == 0 and shared.running  # retrained on the new data
    assert shared.train_data.n_samples == 61 and shared.train_data.x[-1].tolist() == [1.25, -2.5]
    assert shared.train_data.targets["a"][-1] == 0 and not shared.train_data.masks["b"][-1]
    pts = shared.sources["points"].data
    assert (1.25, -2.5) in set(zip(pts["x0"], pts["x1"])) and len(pts["x0"]) == 61 + n_held
    shared.tick(3)
    assert shared.click(1.3, -2.45, shift=True)  # the nearest point goes: the one just added
    assert shared.train_data.n_samples == 60 and np.array_equal(shared.train_data.x, gen_x) and shared.steps == 0
    shared.remove_mode = True  # the touch-screen way
    x, y = gen_x[0]
    assert shared.click(x, y)
    assert shared.train_data.n_samples == 59 and not np.any(np.all(shared.train_data.x == gen_x[0], axis=1))
    assert not shared.click(3.4, 3.4)  # nothing near: refused, with a message, data unchanged
    assert "No point near" in shared.data_error and shared.train_data.n_samples == 59
    assert "59 for training" in shared.data_summary


def test_a_task_label_only_point_trains_that_task_only(shared):
    shared.editing = True
    shared.edit_task = "b"
    shared.click(0.3, 0.3)
    assert shared.train_data.masks["b"][-1] and not shared.train_data.masks["a"][-1]


def test_reset_to_generated_data_and_switching_back_and_forth(shared):
    gen_x = shared.train_data.x.copy()
    shared.load_csv(GOOD)
    shared.data = "generated"  # the Data choice: the file stays in the session ...
    assert np.array_equal(shared.train_data.x, gen_x) and shared.custom is not None
    shared.data = "custom"  # ... and comes back
    assert shared.custom.n_rows == 8 and len(shared.sources["points"].data["x0"]) == 8
    shared.reset_to_generated()
    assert shared.data == "generated" and shared.custom is None and not shared.editing
    assert np.array_equal(shared.train_data.x, gen_x)
    shared.data = "custom"  # no data of one's own any more: back to the generated data, with the notice
    assert shared.data == "generated" and shared.fallback_notice == FALLBACK_NOTICE
    assert shared.data_error == FALLBACK_NOTICE  # beside the upload too, where the reader clicked


def test_going_back_to_the_generated_data_ends_edit_data(shared):
    shared.editing = True
    assert shared.data == "custom"
    shared.data = "generated"
    assert not shared.editing and not shared.click(0.0, 0.0)  # a click on the generated data changes nothing
    assert shared.custom is not None  # the points stay in the session
    shared.editing = True  # and Edit data goes on with them
    assert shared.data == "custom"


def test_no_held_out_label_gives_no_test_score_and_no_crash(shared):
    shared.editing = True
    shared.remove_mode = True
    for x, y in shared.test_data.x.copy():  # remove every held-out point: no test score is left
        assert shared.click(x, y)
    assert shared.test_data is None
    shared.tick(3)
    assert "no test score" in shared.verdict
    acc = shared.sources["acc"].data
    assert np.all(np.isnan(acc["shared_test_a"])) and np.all(np.isfinite(acc["shared_train_a"]))


def test_a_link_with_data_custom_but_no_session_data_falls_back_with_a_notice():
    view = create_shared("?page=shared_separate&data=custom&seed=4", autoplay=False)
    try:
        assert view.state.data == "generated" and view.state.seed == 4
        assert FALLBACK_NOTICE in view._notices
        assert "your points never travel in a link" in view.notices.object
    finally:
        view.animator.stop()
    state = SharedSeparateState()  # a plain state without the page: the same fallback
    common.bind_url(state, SHARED_SETTINGS, "?data=custom")
    assert state.data == "generated" and state.fallback_notice == FALLBACK_NOTICE


def test_the_view_wires_upload_and_clicks_to_the_state():
    view = create_shared({}, autoplay=False)
    try:
        s = view.state
        view.upload.value = GOOD.encode()  # what Panel sets when the browser sends a file
        assert s.data == "custom" and s.custom.n_rows == 8
        assert view.widgets["relatedness"].disabled and "held-out" in view.curve_legend.object
        view.upload.value = b"\x00\x01binary"
        assert "not a text" in view.data_error.object and s.custom.n_rows == 8
        view.edit_toggle.value = True
        assert view.edit_task.visible

        class Event:  # a Bokeh Tap event as the browser sends it
            x, y, modifiers = 0.1, -0.2, {"shift": False, "ctrl": False, "alt": False}

        view._on_tap(Event())
        assert s.custom.n_rows == 9
        Event.modifiers = {"shift": True}
        view._on_tap(Event())
        assert s.custom.n_rows == 8
        view.reset_data.clicks += 1
        assert s.data == "generated" and not view.widgets["relatedness"].disabled
    finally:
        view.animator.stop()


# ---------------------------------------------------------------------------------------------------- the Lab
REG_ROWS = 60
REG_CSV = "x1,x2,x3,y_reg,y_cls\n" + "".join(
    f"{np.sin(i):.4f},{np.cos(3 * i):.4f},{i % 7},{1000 * np.sin(i):.3f},{int(np.sin(i) > 0)}\n"
    for i in range(REG_ROWS)
)


@pytest.fixture
def lab():
    return WeightingLabState(methods=["equal", "uncertainty"])


def lab_snapshot(state) -> dict:
    return {
        "data": state.data,
        "tasks": list(state.task_names),
        "curves": {m: {k: list(v) for k, v in state.sources[f"curves_{m}"].data.items()} for m in METHODS},
        "steps": state.steps,
        "x": state.train_data.x.copy() if state.data != "unequal" else None,
    }


def test_uploading_a_csv_to_the_lab_trains_every_method_on_it(lab):
    lab.tick(8)
    assert lab.load_csv(REG_CSV.encode())
    assert lab.data == "custom" and lab.task_names == ["y_reg", "y_cls"] and lab.steps == 0 and lab.running
    assert lab.train_data.in_dim == 3 and lab.train_data.n_samples + lab.test_data.n_samples == REG_ROWS
    assert np.allclose(lab.train_data.x.mean(axis=0), 0, atol=0.5)  # standardised inputs ...
    assert np.abs(lab.train_data.targets["y_reg"]).max() > 100  # ... but the targets keep their scale
    for m in ("equal", "uncertainty"):
        assert lab.sources[f"curves_{m}"].data["step"] == [0]
    loss0 = lab.sources["curves_equal"].data["loss_0"][0]
    assert loss0 > 1e4  # the regression's MSE of a 1000-scale target: the mismatch the page is about
    lab.tick(8)
    assert lab.steps == 8 and lab.sources["curves_equal"].data["step"][-1] == 8
    assert "y_reg" in lab.summary and "3 input columns (x1, x2, x3)" in lab.data_summary


def test_one_input_column_and_missing_targets(lab):
    raw = "x,y_reg,y_cls\n" + "".join(f"{i / 10},{i if i % 3 else ''},{i % 2 if i % 4 else ''}\n" for i in range(40))
    assert lab.load_csv(raw)
    assert lab.train_data.in_dim == 1
    total = {t: lab.train_data.n_labelled()[t] + lab.test_data.n_labelled()[t] for t in ("y_reg", "y_cls")}
    assert total == {"y_reg": 26, "y_cls": 30}
    lab.tick(4)
    assert lab.steps == 4 and not lab.error


@pytest.mark.parametrize("what,raw,words", BAD_REG_FILES, ids=[b[0] for b in BAD_REG_FILES])
def test_a_refused_file_leaves_the_lab_data_as_it_was(lab, what, raw, words):
    lab.tick(8)
    before = lab_snapshot(lab)
    assert not lab.load_csv(raw)
    assert words[0] in lab.data_error
    after = lab_snapshot(lab)
    assert np.array_equal(before.pop("x"), after.pop("x")) and before == after


def test_the_lab_keeps_its_own_file_when_a_bad_one_follows_and_resets_to_generated(lab):
    assert lab.load_csv(REG_CSV)
    before = lab_snapshot(lab)
    assert not lab.load_csv(REG_CSV + "1,2,3,4,5\n")
    assert "row 62, column y_cls" in lab.data_error
    after = lab_snapshot(lab)
    assert np.array_equal(before.pop("x"), after.pop("x")) and before == after
    lab.data = "unequal"  # the file stays in the session while another data set is shown
    lab.data = "custom"
    assert lab.task_names == ["y_reg", "y_cls"]
    lab.reset_to_generated()
    assert lab.data == "unequal" and lab.custom is None  # back to the generated data last shown


def test_a_lab_link_with_data_custom_falls_back_with_a_notice():
    view = create_lab("?page=weighting_lab&data=custom&n_small=200", autoplay=False)
    try:
        assert view.state.data == "scale" and view.state.n_small == 200
        assert "your file never travels in a link" in view.notices.object
        view.__panel__()
        view.upload.value = REG_CSV.encode()
        assert view.state.data == "custom" and "your regression" in view.figures["loss_0"].title.text
        assert view.widgets["scale_log10"].disabled and view.widgets["alpha"].disabled
        view.upload.value = b"x1,y_reg\n1,2\n"
        assert "missing column y_cls" in view.data_error.object and view.state.task_names == ["y_reg", "y_cls"]
    finally:
        view.animator.stop()
    state = WeightingLabState()
    common.bind_url(state, LAB_SETTINGS, "?data=custom")
    assert state.data == "scale" and state.fallback_notice == LAB_FALLBACK


def test_a_stale_data_custom_leaves_the_url_also_when_the_browser_reports_it_again():
    import types

    import param

    class Location(param.Parameterized):  # Panel's Location, as far as the page uses it
        search = param.String("?page=shared_separate&data=custom&seed=3")

    loc, notes = Location(), []
    view = types.SimpleNamespace(state=SharedSeparateState(data="custom"), add_notice=notes.append)
    show_fallback(view, loc)
    assert loc.search == "?page=shared_separate&seed=3" and notes == [FALLBACK_NOTICE]
    loc.search = "?page=shared_separate&data=custom&seed=3"  # the browser reports the address it was opened with
    assert loc.search == "?page=shared_separate&seed=3"
    view.state.load_csv(GOOD)  # one's own data: now data=custom belongs in the URL, and stays
    loc.search = "?page=shared_separate&data=custom"
    assert loc.search == "?page=shared_separate&data=custom"


# ---------------------------------------------------------------------------------------------------- kept in the tab
def _same(a: CustomData, b: CustomData) -> bool:
    return (
        a.x.tobytes() == b.x.tobytes()
        and a.x_columns == b.x_columns
        and list(a.labels) == list(b.labels)
        and all(np.array_equal(a.labels[k], b.labels[k], equal_nan=True) for k in a.labels)
        and np.array_equal(a.held_out, b.held_out)
        and a.note == b.note
    )


@pytest.mark.parametrize(
    ("data", "labels", "x_columns"),
    [
        (
            CustomData(
                x=np.array([[0.1 + 0.2, -1e-300], [1 / 3, 2.5e17], [-0.0, 7.0], [np.pi, -np.e]]),
                x_columns=("x1", "x2"),
                labels={"label_a": np.array([1.0, np.nan, 0.0, 1.0]), "label_b": np.array([np.nan, 0.0, 1.0, 1.0])},
                held_out=np.array([False, True, False, False]),
                note="inputs standardised to fit the map (each column to mean 0, standard deviation 1) — ünïcode",
            ),
            TWO_TASK_LABELS,
            ("x1", "x2"),
        ),
        (
            CustomData(
                x=np.array([[0.5, 1.5, -2.0], [1.0, 2.0, 3.0]]),
                x_columns=("x1", "x_age", "x3"),
                labels={"y_reg": np.array([-1234.5678, np.nan]), "y_cls": np.array([1.0, 0.0])},
            ),
            REG_CLS_LABELS,
            None,
        ),
        (
            CustomData(
                x=np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]),
                x_columns=("x1", "x2"),
                labels={"main": np.array([np.nan, 1.0, np.nan]), "aux": np.array([0.25, -3.0, 1.0])},
                held_out=np.array([True, False, False]),
            ),
            MAIN_AUX_LABELS,
            ("x1", "x2"),
        ),
    ],
)
def test_the_json_kept_in_the_tab_gives_back_the_same_data_bit_for_bit(data, labels, x_columns):
    text = to_json(data)
    back = from_json(text, labels=labels, x_columns=x_columns)
    assert _same(back, data)
    assert to_json(back) == text  # one text per data set: what the tab keeps is compared as text
    assert "NaN" not in text and "null" in text  # a missing label is JSON's null


def test_an_uploaded_file_round_trips_as_the_page_trains_on_it():
    from app.shared_separate_state import two_task_file

    big = HEADER + "".join(f"{10 * np.sin(i)},{np.cos(i) * 1e3},{i % 2},{'' if i % 3 else 1}\n" for i in range(300))
    data = two_task_file(big, seed=3)  # standardised, a quarter held out: floats of every length
    assert data.note and data.held_out.any()
    assert _same(from_json(to_json(data), labels=TWO_TASK_LABELS, x_columns=("x1", "x2")), data)


def _kept_doc(**change) -> str:
    import json

    doc = json.loads(to_json(parse_two_tasks(GOOD)))
    doc.update(change)
    return json.dumps(doc)


BAD_KEPT = [
    ("empty", ""),
    ("not JSON", "{not json"),
    ("cut off", to_json(parse_two_tasks(GOOD))[:-5]),
    ("null", "null"),
    ("a list", "[]"),
    ("a string", '"data"'),
    ("another version", _kept_doc(v=2)),
    ("version true", _kept_doc(v=True)),
    ("a key missing", to_json(parse_two_tasks(GOOD)).replace(',"note":""', "")),
    ("a key too many", _kept_doc(extra=1)),
    ("x not a list", _kept_doc(x="garbage")),
    ("no rows", _kept_doc(x=[], held_out=[], labels={"label_a": [], "label_b": []})),
    ("a short row", _kept_doc(x=[[0.5]] + [[0.0, 0.0]] * 7)),
    ("a string in x", _kept_doc(x=[["0.5", 0.5]] + [[0.0, 0.0]] * 7)),
    ("true in x", _kept_doc(x=[[True, 0.5]] + [[0.0, 0.0]] * 7)),
    ("null in x", _kept_doc(x=[[None, 0.5]] + [[0.0, 0.0]] * 7)),
    ("NaN in x", to_json(parse_two_tasks(GOOD)).replace('"x":[[0.5,', '"x":[[NaN,')),
    ("Infinity in x", to_json(parse_two_tasks(GOOD)).replace('"x":[[0.5,', '"x":[[Infinity,')),
    ("1e999 in x", to_json(parse_two_tasks(GOOD)).replace('"x":[[0.5,', '"x":[[1e999,')),
    ("other x columns", _kept_doc(x_columns=["x1", "x9"])),
    ("a column not named x", _kept_doc(x_columns=["x1", "y"])),
    ("other label columns", _kept_doc(labels={"label_a": [1] * 8, "label_c": [1] * 8})),
    ("a label of 2", _kept_doc(labels={"label_a": [2] + [1] * 7, "label_b": [1] * 8})),
    ("a label too few", _kept_doc(labels={"label_a": [1] * 7, "label_b": [1] * 8})),
    ("a string label", _kept_doc(labels={"label_a": ["1"] * 8, "label_b": [1] * 8})),
    ("held_out of 0.5", _kept_doc(held_out=[0.5] * 8)),
    ("held_out too short", _kept_doc(held_out=[0] * 7)),
    ("every row held out", _kept_doc(held_out=[1] * 8)),
    ("a note not text", _kept_doc(note=5)),
    ("too many rows", _kept_doc(x=[[0.0, 0.0]] * (MAX_ROWS + 1))),
]


@pytest.mark.parametrize(("what", "text"), BAD_KEPT, ids=[b[0] for b in BAD_KEPT])
def test_what_the_tab_kept_is_refused_unless_it_is_exactly_such_data(what, text):
    with pytest.raises(ValueError):
        from_json(text, labels=TWO_TASK_LABELS, x_columns=("x1", "x2"))


def test_refused_kept_data_raises_a_plain_value_error_for_every_odd_value():
    for odd in (None, 5, b"{}", ["{}"]):
        with pytest.raises(ValueError):
            from_json(odd, labels=TWO_TASK_LABELS)
    with pytest.raises(ValueError):  # the Lab's layout is not the two-task one
        from_json(to_json(parse_two_tasks(GOOD)), labels=REG_CLS_LABELS)


@pytest.fixture
def in_a_browser(monkeypatch):
    """Build pages as in a live document (the static site's worker): they ask the browser for the tab's data."""
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    monkeypatch.setattr(common, "IN_BROWSER", True)
    doc = Document()
    with set_curdoc(doc):
        yield doc


def _ready(doc) -> None:
    from bokeh.events import DocumentReady

    doc.callbacks.trigger_event(DocumentReady())


def _page(query, create=create_shared):
    import panel as pn

    pn.state.location.search = query
    return create(query, autoplay=False)


def test_a_page_with_data_custom_waits_for_the_browser_and_trains_on_what_the_tab_kept(in_a_browser):
    import panel as pn

    kept = two_task_file_for_test()
    view = _page("?page=shared_separate&data=custom&seed=4")
    try:
        box = view.own_data_box
        assert view.state.data == "generated" and FALLBACK_NOTICE not in view._notices  # no notice yet
        assert "data=custom" in pn.state.location.search  # nor a changed address
        _ready(in_a_browser)
        assert box.placeholder == "ask"
        box.value = "kept:" + to_json(kept)
        s = view.state
        assert s.data == "custom" and _same(s.custom, kept) and s.fallback_notice == ""
        assert FALLBACK_NOTICE not in view._notices
        assert "data=custom" in pn.state.location.search and "seed=4" in pn.state.location.search
        assert len(s.sources["points"].data["x0"]) == kept.n_rows
        assert box.placeholder == "ask"  # the tab keeps that very text already: nothing sent back
        pn.state.location.search = "?page=shared_separate&data=custom&seed=4"  # the browser reports its address
        assert "data=custom" in pn.state.location.search
        s.reset_to_generated()  # back to the generated data: the tab forgets the data
        assert box.placeholder == "drop"
    finally:
        view.animator.stop()


def two_task_file_for_test() -> CustomData:
    from app.shared_separate_state import two_task_file

    return two_task_file(GOOD, seed=4)


@pytest.mark.parametrize("answer", ["none", "kept:{not json", "kept:" + _kept_doc(v=9)])
def test_nothing_kept_or_garbage_kept_falls_back_with_the_notice_once_the_browser_answers(in_a_browser, answer):
    import panel as pn

    view = _page("?page=shared_separate&data=custom&seed=4")
    try:
        box = view.own_data_box
        _ready(in_a_browser)
        assert FALLBACK_NOTICE not in view._notices and "data=custom" in pn.state.location.search
        box.value = answer
        assert view.state.data == "generated" and view._notices.count(FALLBACK_NOTICE) == 1
        assert pn.state.location.search == "?page=shared_separate&seed=4"
        assert box.placeholder == ("ask" if answer == "none" else "drop")  # garbage kept in the tab goes
        box.value = "kept:" + to_json(two_task_file_for_test())  # a late second answer changes nothing
        assert view.state.data == "generated"
    finally:
        view.animator.stop()


def test_the_tab_keeps_the_data_while_the_page_trains_on_it(in_a_browser, monkeypatch):
    import app.custom_data as cd

    view = _page("?page=shared_separate")
    s, box = view.state, view.own_data_box
    try:
        _ready(in_a_browser)
        assert box.placeholder == ""  # a page opened without data=custom asks nothing
        s.load_csv(GOOD)
        assert box.placeholder.startswith("keep:")
        assert _same(from_json(box.placeholder[5:], labels=TWO_TASK_LABELS, x_columns=("x1", "x2")), s.custom)
        s.editing = True
        s.click(2.0, -2.0)  # an edit: kept again, with the new point
        assert from_json(box.placeholder[5:], labels=TWO_TASK_LABELS).n_rows == 9
        s.data = "generated"  # the Data choice: the page no longer trains on it, so a reload would not either
        assert box.placeholder == "drop"
        s.data = "custom"
        assert box.placeholder.startswith("keep:")
        s.editing = True  # (going back to the generated data ended Edit data)
        monkeypatch.setattr(cd, "MAX_STORED_CHARS", 100)  # too big to keep: not kept (and no older copy either)
        assert s.click(-2.0, 2.0)
        assert box.placeholder == "drop"
    finally:
        view.animator.stop()


def test_the_lab_and_the_auxiliary_page_take_back_what_the_tab_kept(in_a_browser):
    from app.auxiliary import create_page as create_aux

    lab = _page("?page=weighting_lab&data=custom", create_lab)
    try:
        lab.state.load_csv(
            "x1,x2,x3,y_reg,y_cls\n" + "".join(f"{i},{i % 3},{-i},{i * 100},{i % 2}\n" for i in range(20))
        )
        text = lab.own_data_box.placeholder[5:]
    finally:
        lab.animator.stop()
    lab = _page("?page=weighting_lab&data=custom", create_lab)  # a reload: a new session, the same tab
    try:
        _ready(in_a_browser)
        lab.own_data_box.value = "kept:" + text
        assert lab.state.data == "custom" and lab.state.custom.x_columns == ("x1", "x2", "x3")
        assert LAB_FALLBACK not in lab._notices
    finally:
        lab.animator.stop()
    aux = _page("?page=auxiliary&data=custom&aux_kind=regression", create_aux)
    try:
        aux.state.load_csv(
            "x1,x2,main,aux\n" + "".join(f"{i / 9},{-i / 7},{i % 2 if i < 8 else ''},{i / 3}\n" for i in range(24))
        )
        text = aux.own_data_box.placeholder[5:]
        summary = aux.state.data_summary
    finally:
        aux.animator.stop()
    aux = _page("?page=auxiliary&data=custom&aux_kind=regression", create_aux)
    try:
        _ready(in_a_browser)
        aux.own_data_box.value = "kept:" + text
        assert aux.state.data == "custom" and aux.state.data_summary == summary
    finally:
        aux.animator.stop()


def test_a_browser_that_never_answers_gets_the_notice_after_the_timeout(in_a_browser, monkeypatch):
    import asyncio

    import panel as pn

    monkeypatch.setattr(common, "OWN_DATA_TIMEOUT_MS", 50)
    view = _page("?page=shared_separate&data=custom&seed=4")

    async def shown_and_silent() -> None:
        _ready(in_a_browser)  # "ask" goes out, and no answer comes
        await asyncio.sleep(0.02)
        assert FALLBACK_NOTICE not in view._notices
        await asyncio.sleep(0.2)

    try:
        asyncio.run(shown_and_silent())
        assert view.own_data_box.placeholder == "ask"
        assert view._notices.count(FALLBACK_NOTICE) == 1 and pn.state.location.search == "?page=shared_separate&seed=4"
        view.own_data_box.value = "kept:" + to_json(two_task_file_for_test())  # too late: the page has settled
        assert view.state.data == "generated"
    finally:
        view.animator.stop()
