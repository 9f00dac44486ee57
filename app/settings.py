"""One declarative table of user settings drives the widgets, the state's limits and the URL.

Each page module declares ``SETTINGS = (Setting(...), ...)``. From that single table:

* :func:`state_params` builds the ``param`` parameters of the page's state class, with hard bounds, so a value
  out of range is refused in Python and not only by a widget;
* :func:`parse_query` turns a URL query (hostile or not) into clean values plus plain-text notices;
* :func:`to_query` writes the current values back as a query string, leaving defaults out;
* :meth:`Setting.widget` makes the setting's widget, bound to the state and named after the setting.

:func:`query_pairs` is the one parser of query strings in the app. This module imports param but not panel
(``Setting.widget`` imports it when called), so the state classes and URL layer can be tested without a browser.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs, urlencode

import param

# Query keys every page understands and which are therefore never reported as unknown.
GLOBAL_KEYS = ("page", "embed")
MAX_QUERY_VALUE = 200  # longer raw values are refused before parsing; no setting needs more
# The widget each kind of setting gets unless its ``control`` names another one: {kind: {control: panel class}}.
CONTROLS = {
    "float": {"slider": "FloatSlider", "input": "FloatInput"},
    "int": {"slider": "IntSlider", "input": "IntInput"},
    "bool": {"toggle": "Toggle"},
    "choice": {"radio": "RadioButtonGroup", "select": "Select"},
    "multi": {"check": "CheckButtonGroup", "boxes": "CheckBoxGroup"},
}


@dataclass(frozen=True)
class Setting:
    """One user-facing control.

    Parameters
    ----------
    name : str
        Parameter name on the state class and key in the URL query.
    kind : {"float", "int", "bool", "choice", "multi"}
        ``choice`` picks one of ``choices``; ``multi`` picks any non-empty subset (URL: comma-separated).
    default : Any
    low, high : float, optional
        Hard limits (inclusive) for float/int settings.
    choices : tuple of str, optional
        Allowed values for choice/multi settings (default: the keys of ``labels``).
    label, help : str
        Widget label and a one-line explanation.
    step : float, optional
        Widget step for sliders.
    labels : mapping of str to str, optional
        Human label of each choice (widget options); the choice itself otherwise.
    control : str, optional
        Which widget (:data:`CONTROLS`): float / int ``"slider"`` (the default) or ``"input"``, bool
        ``"toggle"``, choice ``"radio"`` (the default) or ``"select"``, multi ``"check"`` (buttons, the default) or
        ``"boxes"`` (check boxes, which wrap: for many choices).
    """

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    label: str = ""
    help: str = ""
    step: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # choice value -> human label
    control: str = ""

    def __post_init__(self):
        if not self.choices and self.labels:
            object.__setattr__(self, "choices", tuple(self.labels))  # frozen: the one place it is filled in
        if self.kind not in CONTROLS:
            raise ValueError(f"Setting {self.name!r}: unknown kind {self.kind!r}")
        if self.control and self.control not in CONTROLS[self.kind]:
            raise ValueError(
                f"Setting {self.name!r}: control must be one of {tuple(CONTROLS[self.kind])} for a "
                f"{self.kind} setting, got {self.control!r}"
            )
        if self.kind in ("float", "int") and (self.low is None or self.high is None or self.low > self.high):
            raise ValueError(f"Setting {self.name!r}: numeric settings need low <= high")
        if self.kind in ("choice", "multi") and not self.choices:
            raise ValueError(f"Setting {self.name!r}: choice settings need choices")
        ok, _ = _coerce(self, self.default)
        if not ok:
            raise ValueError(f"Setting {self.name!r}: default {self.default!r} is not a valid value")

    def widget(self, state: param.Parameterized, *, throttled: bool = False, **params):
        """The Panel widget of this setting, bound to ``state``'s parameter and named ``self.name`` in Bokeh.

        ``throttled`` sliders send their value when the mouse is let go, not while dragging (a page that
        retrains on every change); other widgets ignore it. ``params`` go to the widget (e.g. ``sizing_mode``).
        """
        import panel as pn

        control = self.control or next(iter(CONTROLS[self.kind]))
        if self.kind in ("choice", "multi"):
            params.setdefault("options", choice_options(self))
        if control == "slider" and throttled:
            params["throttled"] = True
        cls = getattr(pn.widgets, CONTROLS[self.kind][control])
        widget = bokeh_name(cls.from_param(state.param[self.name], **params), self.name)
        if control == "slider" and throttled:
            # Panel holds a change from the browser for 50 ms (``Syncable._debounce``) to gather a burst of them
            # (a drag); a throttled slider sends one value when let go, and the reader waits for its new run
            widget._priority_changes = ["value_throttled"]
        return widget


def lr_setting(default: float, low: float, high: float, help: str) -> Setting:
    """The learning rate of a page: typed in (a slider cannot span its decades), steps of ``low``."""
    return Setting("lr", "float", default, low, high, step=low, label="Learning rate", help=help, control="input")


def optimizer_setting(plain: str, help: str) -> Setting:
    """Adam or the plain method ``plain`` (``"gd"`` or ``"sgd"``), Adam by default."""
    labels = {"adam": "Adam", plain: plain.upper()}
    return Setting("optimizer", "choice", "adam", label="Optimizer", labels=labels, help=help)


def seed_setting(help: str) -> Setting:
    """The seed of a training page: one whole number that reproduces the run (``help`` says what it seeds)."""
    return Setting("seed", "int", 0, 0, 9999, step=1, label="Seed", help=help, control="input")


CUSTOM = "custom"  # the `data` value of a page that trains on the reader's own data (app/custom_data.py)
CUSTOM_LABEL = "Your own data"


def data_setting(generated: Mapping[str, str], help: str) -> Setting:
    """The ``data`` setting of a page that also takes the reader's own data: ``generated`` ({value: label}, the
    first is the default) and then :data:`CUSTOM`. The URL only says ``data=custom``; the points themselves stay in
    the browser tab (a page without them falls back to its generated data, with a notice)."""
    labels = {**generated, CUSTOM: CUSTOM_LABEL}
    return Setting("data", "choice", next(iter(generated)), label="Data", labels=labels, help=help)


def _coerce(s: Setting, raw: Any) -> tuple[bool, Any]:
    """Return (exact, value): value is a legal value for ``s``; exact is False if raw had to be changed."""
    if s.kind == "bool":
        if isinstance(raw, bool):
            return True, raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True, True
        if text in ("0", "false", "no", "off"):
            return True, False
        return False, s.default
    if s.kind in ("float", "int"):
        try:
            v = float(raw)
        except OverflowError:  # an int too large for a float: clamp it by its sign like +-inf
            v = math.inf if raw > 0 else -math.inf
        except (TypeError, ValueError):
            return False, s.default
        if math.isnan(v):
            return False, s.default
        exact = True
        if v < s.low or v > s.high:  # +-inf lands here too and is clamped
            v = min(max(v, s.low), s.high)
            exact = False
        if s.kind == "int":
            iv = int(round(v))
            exact = exact and iv == v
            return exact, iv
        return exact, v
    if s.kind == "choice":
        text = str(raw).strip()
        return (True, text) if text in s.choices else (False, s.default)
    # multi
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    picked = [str(i).strip() for i in items]
    valid = [c for c in s.choices if c in picked]  # canonical order, no duplicates
    if not valid:
        return False, list(s.default)
    return len(valid) == len(picked), valid


def coerce(setting: Setting, raw: Any) -> tuple[Any, str | None]:
    """Coerce one raw value; returns (value, notice or None). Never raises."""
    exact, value = _coerce(setting, raw)
    if exact:
        return value, None
    shown = _show(raw)
    return value, f"{setting.label or setting.name}: {shown} is not allowed; using {_show(value)}."


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"'{text}'"


def parse_query(settings: Iterable[Setting], query: str | Mapping[str, Any] | None) -> tuple[dict, list[str]]:
    """Read settings from a URL query; garbage is ignored or clamped, never raised.

    Parameters
    ----------
    settings : iterable of Setting
    query : str or mapping
        A raw query string (``"?a=1&b=x"``) or a mapping of key -> str or list of str.

    Returns
    -------
    values : dict
        Only the settings present in the query, each a legal value.
    notices : list of str
        Plain text (NOT escaped: show them through :func:`escape`), one per changed or ignored value.
    """
    table = {s.name: s for s in settings}
    pairs = query_pairs(query)
    values, notices = {}, []
    for key, raw in pairs.items():
        if key in GLOBAL_KEYS:
            continue
        if key not in table:
            notices.append(f"Ignored unknown setting {_show(key)}.")
            continue
        if isinstance(raw, str) and len(raw) > MAX_QUERY_VALUE:
            notices.append(f"{table[key].label or key}: value too long; using the default.")
            continue
        value, notice = coerce(table[key], raw)
        values[key] = value
        if notice:
            notices.append(notice)
    return values, notices


def query_pairs(query: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """{key: last value} of a raw query string (``"?a=1&b=x"``, empty values kept) or of a mapping.

    Values stay the raw text (a notice can then echo exactly what the reader typed); a list of strings in a
    mapping gives its last item, bytes are decoded. A malformed query is ignored as a whole.
    """
    if query is None:
        return {}
    if isinstance(query, str):
        try:
            parsed = parse_qs(query.lstrip("?"), keep_blank_values=True)
        except Exception:  # noqa: BLE001 - a malformed query is ignored as a whole
            return {}
        return {k: v[-1] for k, v in parsed.items()}
    out = {}
    for k, v in dict(query).items():
        if isinstance(v, (list, tuple)) and v and all(isinstance(i, (str, bytes)) for i in v):
            v = v[-1]
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out[str(k)] = v
    return out


def to_query(settings: Iterable[Setting], values: Mapping[str, Any], *, extra: Mapping[str, str] | None = None) -> str:
    """Serialise non-default values as a query string (without the leading '?')."""
    out = dict(extra or {})
    for s in settings:
        if s.name not in values:
            continue
        v = values[s.name]
        if s.kind == "multi":
            if list(v) == list(s.default):
                continue
            out[s.name] = ",".join(v)
            continue
        if v == s.default:
            continue
        if s.kind == "bool":
            out[s.name] = "1" if v else "0"
        elif s.kind == "float":
            out[s.name] = format_float(v)
        else:
            out[s.name] = str(v)
    return urlencode(out)


def format_float(v: float) -> str:
    """Shortest of a few readable forms that parses back to exactly ``v`` (URLs stay short AND round trip)."""
    v = float(v)
    for digits in (6, 10, 17):
        text = f"{v:.{digits}g}"
        if float(text) == v:
            return text
    return repr(v)


def state_params(settings: Iterable[Setting]) -> dict[str, param.Parameter]:
    """param parameters (with hard bounds) for a state class built from the table."""
    params = {}
    for s in settings:
        doc = s.help or s.label
        if s.kind == "float":
            params[s.name] = param.Number(s.default, bounds=(s.low, s.high), step=s.step, label=s.label, doc=doc)
        elif s.kind == "int":
            params[s.name] = param.Integer(
                s.default, bounds=(int(s.low), int(s.high)), step=s.step or 1, label=s.label, doc=doc
            )
        elif s.kind == "bool":
            params[s.name] = param.Boolean(s.default, label=s.label, doc=doc)
        elif s.kind == "choice":
            params[s.name] = param.Selector(default=s.default, objects=list(s.choices), label=s.label, doc=doc)
        else:
            params[s.name] = param.ListSelector(
                default=list(s.default), objects=list(s.choices), label=s.label, doc=doc
            )
    return params


def settings_class(name: str, settings: Iterable[Setting], base: type = param.Parameterized) -> type:
    """Create a Parameterized subclass whose parameters are the settings table (used as a state base)."""
    return type(name, (base,), state_params(settings))


def choice_options(setting: Setting) -> dict[str, str]:
    """{human label: value} for a choice/multi setting's widget (``options=``), in the table's order."""
    return {setting.labels.get(c, c): c for c in setting.choices}


def current_values(state: param.Parameterized, settings: Iterable[Setting]) -> dict:
    return {s.name: getattr(state, s.name) for s in settings}


def apply_values(state: param.Parameterized, values: Mapping[str, Any]) -> None:
    """Set already-coerced values on a state in one batch (one retrain, not one per value)."""
    if values:
        state.param.update(**dict(values))


def bokeh_name(obj, name: str):
    """Give the Bokeh model behind a Panel widget/pane a stable ``name`` (returns ``obj``).

    Panel uses a widget's ``name`` as its label and never forwards it to Bokeh, but the static-site tests find
    models with ``Bokeh.documents[0].get_model_by_name(name)``; so we stamp the name on every model Panel
    creates for ``obj``. Bokeh objects (figures, sources) just get ``.name`` set.
    """
    if not hasattr(obj, "_get_model"):
        obj.name = name
        return obj
    make = obj._get_model

    def _get_model(doc, root=None, parent=None, comm=None):
        model = make(doc, root, parent, comm)
        model.name = name
        return model

    obj._get_model = _get_model
    return obj


def escape(text: str) -> str:
    """HTML-escape text before it reaches the page (notices can echo URL input)."""
    return html.escape(str(text), quote=True)
