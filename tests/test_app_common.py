"""The page helper every page shares (app/common.py, app/settings.py): the URL, create_page, the training clock."""

from __future__ import annotations

import importlib
import inspect

import panel as pn
import param
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from panel.io.state import set_curdoc, state
from panel.util import edit_readonly

from app import common
from app.pages import PAGES
from app.settings import Setting, settings_class
from mtl_core.optim import Adam


def at_url(search: str) -> Document:
    """A document whose Panel location shows ``search`` (what a browser session or the static worker sets)."""
    doc = Document()
    with set_curdoc(doc), edit_readonly(state.location):
        state.location.param.update(search=search)
    return doc


def test_page_query_reads_the_location_raw_and_takes_the_last_value():
    with set_curdoc(at_url("?page=arena&x=1e999&x=-5&y=&embed=1")):
        assert common.page_query() == {"page": "arena", "x": "-5", "y": "", "embed": "1"}
        assert common.is_embed()
    assert common.page_query("?a=1&a=2") == {"a": "2"}
    assert common.page_query({"a": ["1", "2"], "b": b"x"}) == {"a": "2", "b": "x"}
    assert common.page_query() == {}  # no session: no query


@pytest.mark.parametrize(
    "query,embed",
    [
        ("?embed=1", True),
        ("?embed=TRUE", True),
        ("?embed=yes", True),
        ("?embed=0", False),
        ("?embed=", False),
        ("", False),
        ({"embed": ["0", "1"]}, True),
    ],
)
def test_is_embed(query, embed):
    assert common.is_embed(query) is embed


TABLE = (Setting("rate", "float", 0.5, 0.0, 1.0, label="Rate"), Setting("steps", "int", 100, 10, 500, label="Steps"))


@pytest.mark.parametrize("spelling", ["1", "true", "YES"])
def test_bind_url_keeps_an_embed_in_every_spelling_is_embed_accepts(spelling):
    # a setting changed inside an iframe rewrites the URL: a reload (or the Share bar's link) must stay embedded
    with set_curdoc(at_url(f"?page=arena&embed={spelling}")):
        s = settings_class("S", TABLE)()
        common.bind_url(s, TABLE)
        s.rate = 0.25
        assert state.location.search == "?page=arena&embed=1&rate=0.25"
        assert common.is_embed(state.location.search)
    with set_curdoc(at_url("?page=arena&embed=no")):
        s = settings_class("S", TABLE)()
        common.bind_url(s, TABLE)
        s.rate = 0.25
        assert state.location.search == "?page=arena&rate=0.25"


def test_bind_url_notices_echo_what_the_reader_typed():
    with set_curdoc(at_url("?page=arena&rate=1e999&steps=-5&bogus=1")):
        s = settings_class("S", TABLE)()
        notices = common.bind_url(s, TABLE)
        assert (s.rate, s.steps) == (1.0, 10)
        assert notices == [
            "Rate: '1e999' is not allowed; using '1.0'.",
            "Steps: '-5' is not allowed; using '10'.",
            "Ignored unknown setting 'bogus'.",
        ]
        s.rate = 0.25  # the URL follows the state and keeps ?page=
        assert state.location.search == "?page=arena&rate=0.25&steps=10"
    with set_curdoc(at_url("?steps=" + "9" * 500 + "&rate=")):
        s = settings_class("S", TABLE)()
        assert common.bind_url(s, TABLE) == [
            "Steps: value too long; using the default.",
            "Rate: '' is not allowed; using '0.5'.",
        ]


class Clock(
    common.TrainingClock,
    settings_class(
        "_ClockSettings",
        (Setting("lr", "float", 0.1, 0.001, 1.0, label="lr"), Setting("seed", "int", 0, 0, 9, label="seed")),
    ),
):
    """The smallest training page state: counts steps, one optimizer, a reset on ``seed``."""

    max_steps, reset_on = 10, ("seed",)

    def __init__(self, **params):
        self.resets = 0
        super().__init__(**params)
        self.reset()

    def reset(self):
        self.resets += 1
        self.opt = Adam(lr=self.lr)
        self.steps = 0
        self.error = ""
        self._update_text()

    def _train(self, n):
        self.steps = min(self.max_steps, self.steps + n)
        self._update_text()

    def optimizers(self):
        return [self.opt]


def test_training_clock_status_line_and_handlers():
    c = Clock()
    assert c.status == "Step 0 / 10 - ready"
    c.step_once()
    assert c.status == "Step 1 / 10 - paused"
    c.play()
    assert c.running and c.status == "Step 1 / 10 - training"
    c.lr = 0.02  # reaches the optimizer, no reset
    assert c.opt.lr == 0.02 and c.resets == 1 and c.steps == 1
    c.seed = 3  # a new experiment: reset, and train it at once
    assert c.resets == 2 and c.steps == 0 and c.running
    c.tick(20)
    assert not c.running and c.status == "Step 10 / 10 - finished"
    c.play()
    assert not c.running  # nothing left to train
    c.stop_and_reset()
    assert c.resets == 3 and not c.running and c.status == "Step 0 / 10 - ready"
    c.error = "diverged"
    assert c.status_line() == "Step 0 / 10 - diverged" and not c.can_train()
    c.play()
    assert not c.running


def test_a_setting_makes_its_own_named_widget():
    table = (
        Setting("a", "float", 0.5, 0.0, 1.0, label="A"),
        Setting("b", "float", 0.5, 0.0, 1.0, control="input"),
        Setting("n", "int", 3, 1, 9, control="input"),
        Setting("on", "bool", False),
        Setting("m", "choice", "x", choices=("x", "y"), labels={"x": "Ex"}),
        Setting("s", "choice", "x", choices=("x", "y"), control="select"),
        Setting("k", "multi", ("x",), choices=("x", "y")),
    )
    s = settings_class("W", table)()
    widgets = {t.name: t.widget(s, throttled=True, sizing_mode="stretch_width") for t in table}
    kinds = {k: type(w).__name__ for k, w in widgets.items()}
    assert kinds == {
        "a": "FloatSlider",
        "b": "FloatInput",
        "n": "IntInput",
        "on": "Toggle",
        "m": "RadioButtonGroup",
        "s": "Select",
        "k": "CheckButtonGroup",
    }
    assert widgets["a"].name == "A" and widgets["m"].options == {"Ex": "x", "y": "y"}
    widgets["b"].value = 0.75
    assert s.b == 0.75  # bound to the state
    widgets["a"].value = 0.75
    assert s.a == 0.5  # throttled: not while the slider is dragged ...
    with param.edit_constant(widgets["a"]):
        widgets["a"].value_throttled = 0.75  # what the browser sends when the mouse is let go
    assert s.a == 0.75
    model = widgets["n"].get_root()
    assert model.select_one({"name": "n"}) is not None  # the Bokeh model carries the setting's name
    with pytest.raises(ValueError, match="control"):
        Setting("x", "float", 0.5, 0.0, 1.0, control="select")


@pytest.mark.parametrize("page", PAGES, ids=[p.slug for p in PAGES])
def test_every_page_keeps_the_static_site_contract(page):
    """What the static site's snapshot needs: create_page(query=None, [autoplay]) built paused, a TrainingClock
    ``.state`` where it plays, no periodic callback before it is shown, two ticks of a warm-up copy."""
    module = importlib.import_module(page.module)
    create = module.create_page
    params = inspect.signature(create).parameters
    assert list(params)[0] == "query" and params["query"].default is None
    plays = "autoplay" in params
    doc = at_url("")
    with set_curdoc(doc):
        view = create(autoplay=False) if plays else create()
        pn.panel(view).get_root(doc)
        assert not state._periodic.get(doc)
        if plays:
            assert isinstance(view.state, common.TrainingClock) and not view.state.running
            for _ in range(2):
                view.state.tick()
            assert view.state.steps > 0


@pytest.mark.parametrize("module", ["app.shared_separate", "app.weighting_lab", "app.training_loop"])
def test_the_animator_adapts_the_steps_per_tick_to_the_time_budget(module):
    view = importlib.import_module(module).create_page({}, autoplay=True)
    anim = view.animator
    try:
        assert anim.steps == view.state.steps_per_tick
        anim.budget = 1e-9  # every tick is "too slow": halve down to one step
        for _ in range(4):
            anim._tick()
        assert anim.steps == 1
        anim.budget = 1e3  # every tick is fast: grow by one step per tick
        for _ in range(3):
            anim._tick()
        assert anim.steps == 4
        before = view.state.steps
        anim._tick()
        assert view.state.steps == before + 4
    finally:
        anim.stop()


class _Clock(common.TrainingClock):
    """A clock whose steps cost nothing: what the Animator's pacing sees."""

    max_steps = 100

    def reset(self) -> None:
        self.steps = 0

    def _train(self, n: int) -> None:
        self.steps = min(self.max_steps, self.steps + n)
        self._update_text()


def _connected_animator(clock):
    from types import SimpleNamespace

    anim = common.Animator(clock, steps=2)
    anim._doc = SimpleNamespace(session_context=SimpleNamespace(session=SimpleNamespace(connection_count=1)))
    return anim


def test_the_animator_waits_until_the_browser_has_drawn_the_last_update():
    clock = _Clock(running=True)
    anim = _connected_animator(clock)
    anim.budget = 1e3
    anim._tick()
    assert clock.steps == 2 and anim.receipt.placeholder == "1"  # the update's number goes to the browser
    anim._tick()
    anim._tick()
    assert clock.steps == 2, "a tick went out while the browser was still drawing the last update"
    anim.receipt.value = "1"  # what the browser writes back once drawn
    anim._tick()
    assert clock.steps == 5 and anim.receipt.placeholder == "2"  # (the steps grew: the tick was cheap)
    anim._sent_at -= anim.RECEIPT_TIMEOUT  # a browser that never answers is not stopped
    anim._tick()
    assert clock.steps == 9


def test_a_new_run_is_an_update_the_first_tick_waits_for():
    """A Train (or a new run from a setting) goes out as a message of its own; the first tick waits until the
    browser has drawn it, or the page would get the tick before it painted the answer."""
    clock = _Clock(running=True)
    anim = _connected_animator(clock)
    anim.budget = 1e3
    anim._tick()
    anim.receipt.value = "1"
    clock.pause()
    with pn.io.hold():
        clock.play()  # the reader's Train: the watcher numbers this update
    assert anim.receipt.placeholder == "2"
    anim._tick()
    assert clock.steps == 2, "the first tick went out before the browser drew the Train's update"
    anim.receipt.value = "2"
    anim._idle_until = 0.0  # (the idle time the browser earned is another test's)
    anim._tick()
    assert clock.steps > 2


def test_the_first_play_of_a_page_not_yet_drawn_waits_for_nothing():
    clock = _Clock(running=False)
    anim = _connected_animator(clock)
    clock.play()  # autoplay, before any receipt: the page may not even be shown yet
    assert anim.receipt.placeholder == "0"
    anim._tick()
    assert clock.steps == 2


def test_the_animator_paces_nothing_without_a_browser_that_answers():
    clock = _Clock(running=True)
    anim = common.Animator(clock, steps=2)  # plain Python: no session, no receipts
    anim.budget = 1e3
    for _ in range(3):
        anim._tick()
    assert clock.steps == 2 + 3 + 4


def test_every_page_puts_the_animators_receipt_in_its_layout():
    for page in PAGES:
        module = importlib.import_module(page.module)
        view = module.create_page(
            {}, **({"autoplay": False} if "autoplay" in inspect.signature(module.create_page).parameters else {})
        )
        try:
            receipt = view.animator.receipt
            found = view.__panel__().select(lambda obj, receipt=receipt: obj is receipt)
            assert found, page.slug
        finally:
            view.animator.stop()


def test_show_as_embed_turns_a_plain_build_into_its_embed_form_in_place():
    """The static site's snapshot holds each page built once, for its plain URL; an iframe's visit adopts that build
    and leaves out the header, nav and Share bar (sitebuild/web/python/boot.py), as a ?embed=1 build does."""
    from app import training_loop

    def texts(layout):
        return " ".join(str(getattr(o, "object", "")) for o in layout.objects)

    view = training_loop.create_page(autoplay=False)
    layout = view.__panel__()
    body = list(layout.objects)
    assert "mtl-brand" in texts(layout) and len(view._chrome) == 2
    chrome = list(view._chrome)
    shown_before = [o for o in body if o.visible]
    view.show_as_embed()
    # hidden in place (one change each, not a new layout): what shows is what an ?embed=1 build shows
    assert layout is view._layout and list(layout.objects) == body
    shown = [o for o in layout.objects if o.visible]
    assert "mtl-brand" not in texts(pn.Column(*shown)) and all(not c.visible for c in chrome)
    assert len(shown) == len(shown_before) - 2 and all(any(o is b for b in shown_before) for o in shown)
    embedded = training_loop.create_page("?embed=1", autoplay=False).__panel__()
    assert len([o for o in embedded.objects if o.visible]) == len(shown) and "mtl-brand" not in texts(embedded)


def _mirrored_after_held_reset(record) -> list:
    """A source cleared and given its first row within one hold (as a Reset does), as a second document sees it
    after applying the patch messages Bokeh sends (what the browser does with them)."""
    from bokeh.protocol import Protocol

    doc, browser_side = Document(), Document()
    source = ColumnDataSource({"step": [0, 1, 2]}, name="curves")
    doc.add_root(source)
    browser_side.replace_with_json(doc.to_json())
    messages = []
    doc.on_change(lambda event: messages.append(Protocol().create("PATCH-DOC", [event])))
    doc.hold("combine")
    source.data = {"step": []}
    record(source, {"step": [0]})
    doc.unhold()
    for message in messages:
        browser_side.apply_json_patch(message.payload)
    return list(browser_side.get_model_by_name("curves").data["step"])


def test_append_rows_after_a_held_reset_reaches_the_browser_once():
    # the bug it fixes: stream() right after clearing, in one hold, gives the browser the row twice
    assert _mirrored_after_held_reset(lambda s, rows: s.stream(rows)) == [0, 0]
    assert _mirrored_after_held_reset(common.append_rows) == [0]


def test_append_rows_streams_onto_rows_already_there():
    source = ColumnDataSource({"step": [0, 1], "loss": [1.0, 0.5]})
    common.append_rows(source, {"step": [2], "loss": [0.25]})
    assert list(source.data["step"]) == [0, 1, 2] and list(source.data["loss"]) == [1.0, 0.5, 0.25]


def test_after_pending_changes_runs_at_once_without_a_server_session_and_waits_the_debounce_under_one():
    ran = []
    with set_curdoc(Document()):  # plain Python: no session, no debounce of widget changes
        common.after_pending_changes(lambda: ran.append("now"))
    assert ran == ["now"]

    class Session:  # stands for a Bokeh server session: only its presence matters to the helper
        pass

    doc = Document()
    scheduled = []
    doc._session_context = lambda: Session()  # noqa: SLF001 - Document.session_context reads this weakref
    doc.add_timeout_callback = lambda cb, ms: scheduled.append((cb, ms))
    with set_curdoc(doc):
        common.after_pending_changes(lambda: ran.append("later"))
    assert ran == ["now"] and len(scheduled) == 1
    callback, delay = scheduled[0]
    assert delay >= pn.reactive.Syncable._debounce  # not before the widget changes already waiting
    callback()
    assert ran == ["now", "later"]


def test_hold_except_changes_the_linked_models_after_the_hold_only_where_panel_would_take_them_back():
    """Without a session (the Pyodide worker) a held change of a widget's value came back to Panel at the hold's end
    as if the browser had sent it: the widget changes after the hold. Under a Bokeh server (a session) Panel writes
    the held changes itself and nothing comes back: the widget stays held, in the hold's one message."""
    widget = pn.widgets.FloatInput(value=0.0)
    seen = []  # (value, the document's hold when the widget's watchers ran: they update its model)
    widget.param.watch(lambda e: seen.append((e.new, pn.state.curdoc.callbacks.hold_value)), "value")
    with set_curdoc(Document()):
        with common.hold_except(widget):
            widget.value = 1.0
            assert widget.value == 1.0 and seen == []
        assert seen == [(1.0, None)]

    class Session:  # stands for a Bokeh server session
        pass

    served = Document()
    served._session_context = lambda: Session()  # noqa: SLF001 - Document.session_context reads this weakref
    with set_curdoc(served), common.hold_except(widget):
        widget.value = 2.0
        assert seen[-1] == (2.0, "combine")


def test_page_hold_changes_every_widget_of_the_page_and_the_url_after_the_hold_only_where_panel_would_take_them_back():
    """page_hold is hold_except of the widgets PageView.frame registered for the document, and its Location: without
    a session their watchers (which update their models) run after the hold; under a Bokeh server inside it."""
    widgets = [pn.widgets.FloatSlider(value=0.0), pn.widgets.Button()]
    seen = []  # (what changed, the document's hold when the widget's watchers ran)
    for w, name in zip(widgets, ("value", "disabled")):
        w.param.watch(lambda e: seen.append((e.name, e.new, pn.state.curdoc.callbacks.hold_value)), name)
    doc = Document()
    with set_curdoc(doc):
        common.register_page_widgets(widgets)
        with common.page_hold():
            widgets[0].value, widgets[1].disabled = 1.0, True
            assert seen == []
        assert sorted(seen) == [("disabled", True, None), ("value", 1.0, None)]

    class Session:  # stands for a Bokeh server session
        pass

    seen.clear()
    doc._session_context = lambda: Session()  # noqa: SLF001 - Document.session_context reads this weakref
    with set_curdoc(doc), common.page_hold():
        widgets[1].disabled = False
        assert seen == [("disabled", False, "combine")]
    with set_curdoc(Document()), common.page_hold():  # another page's document: its own widgets only
        widgets[0].value = 2.0
        assert seen[-1] == ("value", 2.0, "combine")


TRAINING_PAGES = [p for p in PAGES if p.slug != "arena"]


@pytest.mark.parametrize("page", TRAINING_PAGES, ids=[p.slug for p in TRAINING_PAGES])
def test_a_training_pages_own_held_changes_in_the_worker_are_not_taken_back_as_if_the_browser_had_sent_them(
    page, monkeypatch
):
    """In the worker, a slider's new run, Train, Reset and a tick hold their changes (one message); the receipt's
    number, the URL and any widget they change follow after the hold, or Panel processed each again at the hold's end
    as if the browser had sent it (a tick: the receipt; a new run: the receipt). Only the browser's own changes are
    processed; the models and the URL show the new values."""
    from panel.models.location import Location as LocationModel
    from worker_document import drawn, from_the_browser, model, page_in_a_worker_document, processed

    create = importlib.import_module(page.module).create_page
    seen = processed(monkeypatch)
    with page_in_a_worker_document(create, page.slug) as (view, doc, sent):
        s, animator = view.state, view.animator
        receipt, location = model(animator.receipt, doc), doc.select_one({"type": LocationModel})
        s.running = True
        animator._tick()
        drawn(view, doc)  # the page has drawn its first update: a new run is numbered too (Animator._on_running)
        view.buttons["pause"].clicks += 1
        sliders = [k for k in s.reset_on if type(model(view.widgets[k], doc)).__name__ == "Slider"]
        name = next(k for k in sliders if not view.widgets[k].disabled)
        slider = model(view.widgets[name], doc)
        new = round(slider.value + slider.step if slider.value + slider.step <= slider.end else slider.start, 6)
        seen.clear()
        from_the_browser(slider, value=new, value_throttled=new)  # dragged, then let go
        assert [w for w, _ in seen] == [type(view.widgets[name]).__name__] * 2, seen  # the browser's two, no more
        assert getattr(s, name) == new and s.running and f"{name}=" in state.location.search
        assert location.search == state.location.search and receipt.placeholder == str(animator._sent) == "2"
        for event in ("tick", "tick", "pause", "train", "reset", "step"):
            drawn(view, doc)
            seen.clear()
            sent.clear()
            before = animator._sent
            if event == "tick":
                s.running = True
                animator._tick()
            else:
                view.buttons[event].clicks += 1
            assert seen == [], f"{event}: Panel took its own held changes back as if the browser had sent them"
            if event in ("tick", "train"):
                assert animator._sent == before + 1 and receipt.placeholder == str(animator._sent)
                assert any(getattr(e, "attr", None) == "placeholder" and e.model is receipt for e in sent)
            assert location.search == state.location.search
        assert s.steps == 1 and not s.running  # Reset, then Step


@pytest.mark.parametrize(
    "mime_type, expected",
    [
        ("x-mtl-refused;24000000;1764000000000;huge.csv", ("huge.csv", 24_000_000)),
        ("x-mtl-refused;5;1;a;b.csv", ("a;b.csv", 5)),  # a name may hold the separator
        ("text/csv", ("", None)),
        ("", ("", None)),
        (None, ("", None)),
        ("x-mtl-refused;-5;1;a.csv", ("", None)),
        ("x-mtl-refused;12", ("", None)),
        ("x-mtl-refused;NaN;1;a.csv", ("", None)),
    ],
)
def test_refused_upload_reads_only_what_the_browser_guard_writes(mime_type, expected):
    assert common.refused_upload(mime_type) == expected


def test_a_refused_upload_tells_the_page_and_leaves_the_input_ready():
    told, loaded = [], []
    upload = common.csv_upload("CSV", loaded.append, told.append)
    upload.mime_type = "x-mtl-refused;3000000;1;big.csv"  # what UPLOAD_GUARD_JS sets in the browser
    assert loaded == [] and len(told) == 1
    assert "big.csv is 3.0 MB" in told[0] and "unchanged" in told[0]
    assert upload.mime_type == ""  # a second refusal of the same file is a change again
    upload.mime_type = "text/csv"  # a real upload's type: nothing to say
    assert len(told) == 1


class _Wordy(_Clock):
    """A clock that counts how often it redraws its words and readouts (costly on some pages)."""

    texts = 0

    def _update_text(self) -> None:
        self.texts += 1
        super()._update_text()


@pytest.fixture
def wordy():
    """A _Wordy clock 3 steps into a live run."""
    clock = _Wordy()
    clock.play()
    clock.tick(3)
    return clock


def test_pause_says_paused_first_and_the_readouts_after(wordy):
    clock, before = wordy, wordy.texts
    clock.paused_at_once()  # the Pause button's first message: the status line only
    assert not clock.running and clock.status == "Step 3 / 100 - paused" and clock.texts == before
    clock.show_paused()  # its second: every word and readout of now, once
    assert clock.texts == before + 1 and clock.status == "Step 3 / 100 - paused"
    clock.play()
    before = clock.texts
    clock.show_paused()  # alone (no first message), it still stops and redraws once
    assert not clock.running and clock.texts == before + 1
    buttons = common.transport_buttons(clock)
    clock.play()
    before = clock.texts
    buttons["pause"].clicks += 1  # both halves, in order, outside a server
    assert not clock.running and clock.status.endswith("paused") and clock.texts == before + 1


def test_reset_says_ready_first_and_the_words_of_the_new_run_after(wordy):
    clock, before = wordy, wordy.texts
    clock.stop_at_zero()  # the Reset button's first message: the status line only
    assert not clock.running and clock.status == "Step 0 / 100 - ready" and clock.texts == before
    clock.stop_and_reset()
    assert clock.steps == 0 and clock.status == "Step 0 / 100 - ready"
