"""Logic tests of the "Gradient Conflict Arena" page without a browser: state, data sources, readouts, URL."""

from __future__ import annotations


import numpy as np
import pytest

from app import common
from app.arena import create_page
from app.arena_state import DEFAULT_RUNS, EXTENT, METHODS, RUN_HINT, SETTINGS, ArenaState
from mtl_core.arena import CAGradToy, RotatedQuadratics, pareto_distance, trajectory
from mtl_core.combine import make_combiner
from worker_document import page_in_a_worker_document

CONFLICT_POINT = (-1.0, 7.0)  # between the CAGrad toy's two valleys


@pytest.fixture
def state():
    return ArenaState()


def arrow(state, which: str) -> np.ndarray:
    d = state.sources["arrows"].data
    k = list(d["which"]).index(which)
    return np.array([d["gx"][k], d["gy"][k]])


def tip_direction(state, which: str) -> np.ndarray:
    d = state.sources["arrows"].data
    k = list(d["which"]).index(which)
    return np.array([d["x1"][k] - d["x0"][k], d["y1"][k] - d["y0"][k]])


def test_click_on_conflicting_point_shows_both_gradients(state):
    state.tap(*CONFLICT_POINT)
    assert (state.x, state.y) == CONFLICT_POINT
    G = CAGradToy().grads(np.array(CONFLICT_POINT))
    assert G[0] @ G[1] < 0
    assert np.allclose(arrow(state, "g_A"), G[0], rtol=1e-12, atol=0)
    assert np.allclose(arrow(state, "g_B"), G[1], rtol=1e-12, atol=0)
    assert np.allclose(arrow(state, "combined"), G.sum(axis=0), rtol=1e-12)
    d = state.sources["arrows"].data
    assert d["x0"] == [CONFLICT_POINT[0]] * 3 and d["y0"] == [CONFLICT_POINT[1]] * 3
    # every arrow is drawn downhill: its tip points along -g
    for which in ("g_A", "g_B", "combined"):
        g, tip = arrow(state, which), tip_direction(state, which)
        assert tip @ -g == pytest.approx(np.linalg.norm(tip) * np.linalg.norm(g), rel=1e-9)
    assert state.sources["point"].data == {"x": [CONFLICT_POINT[0]], "y": [CONFLICT_POINT[1]]}
    assert state.info["conflict"] is True and state.info["cosine"] < 0
    assert "CONFLICT" in state.readout
    assert f"L_A = {CAGradToy().losses(np.array(CONFLICT_POINT))[0]:.4g}" in state.readout


def test_the_status_line_says_the_same_before_and_after_a_click(state):
    """The hint is there from the start: a first click that made the line appear changed the page's height, and
    the whole page laid itself out again."""
    assert state.status == RUN_HINT
    state.tap(*CONFLICT_POINT)
    assert state.status == RUN_HINT


def test_tap_clamps_to_the_square_and_ignores_nan(state):
    state.tap(55.0, -1e9)
    assert (state.x, state.y) == (EXTENT, -EXTENT)
    state.tap(float("nan"), 2.0)
    assert (state.x, state.y) == (EXTENT, 2.0)


def test_pcgrad_toggle_gives_exactly_the_pcgrad_direction(state):
    state.tap(*CONFLICT_POINT)
    G = CAGradToy().grads(np.array(CONFLICT_POINT))
    plain = arrow(state, "combined")
    state.pcgrad = True
    assert state.method == "pcgrad"
    expected = make_combiner("pcgrad").combine(G, rng=np.random.default_rng(123)).direction
    assert np.allclose(arrow(state, "combined"), expected, rtol=1e-12, atol=1e-15)
    assert not np.allclose(arrow(state, "combined"), plain)
    # surgery leaves no component of the update against either task: both losses go down to first order
    assert state.info["improves_a"] and state.info["improves_b"]
    state.pcgrad = False
    assert state.method == "sum"
    assert np.allclose(arrow(state, "combined"), plain)


@pytest.mark.parametrize(
    "method,kwargs", [("mgda", {}), ("cagrad", {"c": 0.5}), ("cagrad", {"c": 0.9}), ("pcgrad", {}), ("sum", {})]
)
def test_method_choice_uses_the_mtl_core_combiner(state, method, kwargs):
    state.tap(*CONFLICT_POINT)
    state.param.update(method=method, **kwargs)
    G = CAGradToy().grads(np.array(CONFLICT_POINT))
    expected = make_combiner(method, **kwargs).combine(G, rng=np.random.default_rng(0)).direction
    assert np.allclose(arrow(state, "combined"), expected, rtol=1e-12, atol=1e-15)
    assert state.pcgrad == (method == "pcgrad")


def test_cagrad_c_redraws_the_combined_arrow(state):
    state.param.update(method="cagrad", c=0.0)
    at_zero = arrow(state, "combined")
    G = CAGradToy().grads(state.theta)
    assert np.allclose(at_zero, G.mean(axis=0))  # c = 0 is the average gradient
    state.c = 0.8
    assert not np.allclose(arrow(state, "combined"), at_zero)


def test_choosing_another_method_switches_the_toggle_off(state):
    state.pcgrad = True
    state.method = "mgda"
    assert state.pcgrad is False
    state.method = "pcgrad"
    assert state.pcgrad is True


def test_url_with_disagreeing_method_and_toggle_lets_the_method_win():
    s = ArenaState()
    notices = common.bind_url(s, SETTINGS, "?method=mgda&pcgrad=1&x=1.5&y=-2")
    assert notices == []
    assert s.method == "mgda" and s.pcgrad is False
    assert (s.x, s.y) == (1.5, -2.0)
    assert s.sources["arrows"].data["x0"][0] == 1.5
    s2 = ArenaState()
    common.bind_url(s2, SETTINGS, "?pcgrad=1")
    assert s2.method == "pcgrad"


def test_quadratics_meet_at_the_chosen_angle(state):
    state.param.update(surface="quadratics", angle=150.0)
    state.tap(0.0, 0.0)
    assert state.info["cosine"] == pytest.approx(np.cos(np.deg2rad(150.0)), abs=1e-12)
    state.angle = 30.0
    assert state.info["cosine"] == pytest.approx(np.cos(np.deg2rad(30.0)), abs=1e-12)
    assert state.info["conflict"] is False
    G = RotatedQuadratics(30.0, radius=EXTENT / 1.6).grads(np.zeros(2))
    assert np.allclose(arrow(state, "g_A"), G[0])
    state.b_scale = 4.0
    assert np.linalg.norm(arrow(state, "g_B")) == pytest.approx(4 * np.linalg.norm(G[1]))


def test_surface_change_redraws_maps_and_pareto_set(state):
    heat0 = np.array(state.sources["heat_sum"].data["image"][0])
    pareto0 = np.array(state.sources["pareto"].data["y"])
    state.surface = "quadratics"
    heat1 = np.array(state.sources["heat_sum"].data["image"][0])
    assert heat1.shape == heat0.shape and not np.allclose(heat0, heat1)
    q = RotatedQuadratics(state.angle, radius=EXTENT / 1.6)
    assert np.allclose(state.sources["pareto"].data["x"][[0, -1]], q.minima[:, 0])
    assert not np.allclose(pareto0[:5], np.array(state.sources["pareto"].data["y"])[:5])
    for key in ("a", "b", "sum"):
        assert len(state.sources[f"iso_{key}"].data["x"]) > 50


def test_runs_reach_the_pareto_set_and_match_mtl_core(state):
    state.tap(-8.5, -5.0)  # one of the CAGrad paper's starts
    state.param.update(steps=300, lr=0.1, optimizer="adam", traj=list(METHODS))  # every method, the new ones too
    state.start_runs()
    assert state.running and set(state.runs) == set(METHODS)
    state.finish_runs()
    assert not state.running
    pareto = CAGradToy().pareto_set(400)
    start_dist = pareto_distance(np.array([[-8.5, -5.0]]), pareto)[0]
    for m in METHODS:
        data = state.sources[f"traj_{m}"].data
        path = np.column_stack([data["x"], data["y"]])
        assert path.shape == (301, 2)
        assert np.allclose(path[0], [-8.5, -5.0])
        end_dist = pareto_distance(path[-1:], pareto)[0]
        assert end_dist < 0.5 * start_dist, (m, start_dist, end_dist)
        # the page's resumable runner does exactly what mtl_core.arena.trajectory does
        ref = trajectory(
            CAGradToy(),
            [-8.5, -5.0],
            state.make_combiner(m),
            lr=0.1,
            steps=300,
            rng=np.random.default_rng(0),
            optimizer="adam",
        )
        assert np.allclose(path, ref, rtol=1e-12, atol=1e-12)
    ends = state.sources["ends"].data
    assert len(ends["x"]) == len(METHODS) and len(set(ends["color"])) == len(METHODS)
    assert len(state.traj_summary.splitlines()) == len(METHODS)
    assert "from the Pareto set" in state.traj_summary


def test_default_runs_are_the_four_classic_methods_and_every_method_has_a_path_source(state):
    assert list(state.traj) == list(DEFAULT_RUNS) and set(DEFAULT_RUNS) < set(METHODS)
    assert {"nash_mtl", "imtl_g", "fairgrad", "aligned_mtl"} <= set(METHODS)
    for m in METHODS:
        assert state.sources[f"traj_{m}"].name == f"traj_{m}"


@pytest.mark.parametrize("method", ["nash_mtl", "imtl_g", "fairgrad", "aligned_mtl"])
def test_new_methods_draw_mtl_cores_direction_and_say_their_weights(state, method):
    state.tap(2.0, -3.0)
    state.method = method
    G = state.objective.grads(state.theta)
    out = state.make_combiner(method).combine(G, rng=np.random.default_rng(0))
    arrows = state.sources["arrows"].data
    assert np.allclose([arrows["gx"][2], arrows["gy"][2]], out.direction, rtol=1e-12, atol=1e-15)
    w_a, w_b = out.task_weights
    assert f"d = {w_a:.3g} g_A + {w_b:.3g} g_B" in state.readout
    if method == "aligned_mtl":
        assert "condition number" in state.readout


def test_fairgrad_alpha_moves_the_arrow_and_alpha_1_is_nash_mtl(state):
    state.tap(-3.0, 6.0)
    state.param.update(method="nash_mtl")
    nash = np.array(state.info["direction"])
    state.param.update(method="fairgrad", alpha=1.0)
    assert np.allclose(state.info["direction"], nash, rtol=1e-8, atol=1e-12)
    state.alpha = 5.0
    assert not np.allclose(state.info["direction"], nash, rtol=1e-3)
    assert state.make_combiner().alpha == 5.0
    state.alpha = 0.0  # alpha = 0 is the plain sum
    assert np.allclose(state.info["direction"], state.objective.grads(state.theta).sum(axis=0), rtol=1e-10)


def test_alpha_slider_is_shown_only_when_fairgrad_is_used():
    view = create_page("method=sum")
    alpha = view.widgets["alpha"]
    assert not alpha.visible
    view.state.method = "fairgrad"
    assert alpha.visible
    view.state.method = "mgda"
    assert not alpha.visible
    view.state.traj = ["sum", "fairgrad"]
    assert alpha.visible
    view.animator.stop()


def test_tick_grows_paths_in_pieces_and_stops(state):
    state.param.update(traj=["sum", "mgda"], steps=400)
    state.start_runs()
    assert set(state.runs) == {"sum", "mgda"}
    assert len(state.sources["traj_pcgrad"].data["x"]) == 0
    state.tick(budget=0.0)  # one chunk per run
    n = len(state.sources["traj_sum"].data["x"])
    assert 1 < n < 401
    assert state.running
    for _ in range(1000):
        if not state.running:
            break
        state.tick()
    assert not state.running
    assert len(state.sources["traj_sum"].data["x"]) == 401
    assert state.status.startswith("Done")


def test_moving_the_point_clears_old_paths(state):
    state.param.update(steps=20)
    state.start_runs()
    state.finish_runs()
    assert len(state.sources["traj_sum"].data["x"]) == 21
    state.tap(2.0, 2.0)
    assert len(state.sources["traj_sum"].data["x"]) == 0
    assert state.runs == {} and state.traj_summary == ""


@pytest.mark.parametrize(
    "name,value",
    [
        ("angle", 500.0),
        ("angle", -1.0),
        ("x", 10.5),
        ("y", -11.0),
        ("lr", 0.0),
        ("steps", 10**6),
        ("c", 2.0),
        ("method", "adam"),
        ("surface", "<script>"),
        ("traj", ["sum", "nope"]),
    ],
)
def test_bad_values_are_refused_in_python(state, name, value):
    before = getattr(state, name)
    with pytest.raises(ValueError):
        setattr(state, name, value)
    assert getattr(state, name) == before


def test_hostile_query_is_clamped_and_escaped():
    s = ArenaState()
    notices = common.bind_url(s, SETTINGS, "?angle=1e999&x=nan&method=<script>alert(1)</script>&steps=-5&foo=1")
    assert s.angle == 180.0 and s.x == -3.0 and s.method == "sum" and s.steps == 10
    assert len(notices) == 5
    html = common.render_notices(notices)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_create_page_builds_the_view_with_named_models():
    view = create_page("?surface=quadratics&angle=90")
    assert view.state.surface == "quadratics" and view.state.angle == 90.0
    layout = view.__panel__()
    assert layout is not None
    assert view.widgets["angle"].disabled is False
    view.state.surface = "cagrad_toy"
    assert view.widgets["angle"].disabled is True
    names = {s.name for s in view.state.sources.values()}
    assert {"arrow_source", "point_source", "pareto_source", "traj_ends", "traj_sum", "heat_sum", "iso_a"} <= names


def test_run_with_no_method_chosen_says_so(state):
    state.traj = []
    state.start_runs()
    assert not state.running and state.runs == {}
    assert "at least one" in state.status


def test_the_point_can_be_typed_into_two_number_inputs():
    """The non-pointer way to place theta (WCAG 2.5.7): the x and y inputs move the point and its arrows."""
    view = create_page("")
    s = view.state
    view.widgets["x"].value = 2.5
    view.widgets["y"].value = -4.0
    assert (s.x, s.y) == (2.5, -4.0)
    arrows = s.sources["arrows"].data
    assert arrows["x0"][0] == 2.5 and arrows["y0"][0] == -4.0
    assert np.allclose([arrows["gx"][0], arrows["gy"][0]], s.objective.grads(np.array([2.5, -4.0]))[0])
    s.tap(1.0, 1.0)  # and a click shows in the inputs
    assert (view.widgets["x"].value, view.widgets["y"].value) == (1.0, 1.0)
    view.animator.stop()


def test_every_map_takes_a_quick_second_click_as_a_click():
    """BokehJS reports a second click within 300 ms on the same map as a DoubleTap: it must move the point too."""
    from bokeh.events import DoubleTap

    view = create_page("?surface=quadratics")
    plots = list(pn_root_plots(view))
    assert plots and all({"tap", "doubletap"} <= set(p.subscribed_events) for p in plots)
    for cb in plots[0]._event_callbacks["doubletap"]:
        cb(DoubleTap(plots[0], x=0.5, y=-0.25))
    assert (view.state.x, view.state.y) == (0.5, -0.25)


def pn_root_plots(view):
    """The Bokeh figures of the page's layout that listen to taps (the maps)."""
    from bokeh.models import Plot

    root = view.__panel__().get_root()
    return [m for m in root.references() if isinstance(m, Plot) and "tap" in m.subscribed_events]


def arena_in_a_worker_document(search: str = ""):
    """The arena page in a document set up as the static site's Pyodide worker has it (tests/worker_document.py):
    yields (view, document, the document's changes sent to the page)."""
    return page_in_a_worker_document(create_page, "arena", search)


def test_a_click_in_the_worker_is_not_taken_back_as_if_the_browser_had_sent_it(monkeypatch):
    """A click's changes are held (one message); the x and y inputs and the URL are properties the browser sets too,
    and held, Panel processed each again at the hold's end as if the browser had sent it (``_process_events``: ~1/3
    of a click's Python time in the worker). They change after the hold: nothing comes back, the page gets it all."""
    from bokeh.events import Tap
    from panel.io.state import state
    from panel.models.location import Location as LocationModel
    from panel.reactive import Syncable

    processed = []
    process = Syncable._process_events
    monkeypatch.setattr(
        Syncable, "_process_events", lambda self, events: (processed.append(type(self).__name__), process(self, events))
    )
    with arena_in_a_worker_document("?surface=quadratics") as (view, doc, sent):
        plot = doc.select_one({"name": "arena_plot"})
        spinners = {name: doc.select_one({"name": name}) for name in ("x", "y")}
        location = doc.select_one({"type": LocationModel})  # the page's address, as the page's Location view has it
        for target in ((2.5, -4.0), (1.25, 3.0)):
            sent.clear()
            for callback in plot._event_callbacks["tap"]:
                callback(Tap(plot, x=target[0], y=target[1]))
            assert processed == [], "Panel took its own held changes back as if the browser had sent them"
            s = view.state
            assert (s.x, s.y) == target and s.sources["point"].data == {"x": [target[0]], "y": [target[1]]}
            assert (view.widgets["x"].value, view.widgets["y"].value) == target
            assert (spinners["x"].value, spinners["y"].value) == target  # the inputs' models show the new point
            assert state.location.search == f"?surface=quadratics&x={target[0]:g}&y={target[1]:g}"
            changed = {(type(e.model).__name__, e.attr) for e in sent if hasattr(e, "attr")}
            assert {("Spinner", "value"), ("Location", "search"), ("ColumnDataSource", "data")} <= changed
            assert sorted(e.new for e in sent if getattr(e, "attr", None) == "value") == sorted(target)  # each once
            assert location.search == state.location.search
        # typing a value (the page's change of the input's model, as the worker applies it) still moves the point,
        # once, and comes back to nothing
        processed.clear()
        spinners["x"].value = -2.0
        assert processed == ["FloatInput"]
        assert view.state.x == -2.0 and view.state.sources["arrows"].data["x0"] == [-2.0] * 3
        assert state.location.search == "?surface=quadratics&x=-2&y=3"
