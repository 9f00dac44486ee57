"""One declarative table of user settings drives the widgets, the state's limits and the URL.

Each page module declares ``SETTINGS = (Setting(...), ...)``. From that single table:

* :func:`state_params` builds the ``param`` parameters of the page's state class, with hard bounds, so a value
  out of range is refused in Python and not only by a widget;
* :func:`parse_query` turns a URL query (hostile or not) into clean values plus plain-text notices;
* :func:`to_query` writes the current values back as a query string, leaving defaults out.

This module imports param but not panel, so the state classes and URL layer can be tested without a browser.
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
        Allowed values for choice/multi settings.
    label, help : str
        Widget label and a one-line explanation.
    step : float, optional
        Widget step for sliders.
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

    def __post_init__(self):
        if self.kind not in ("float", "int", "bool", "choice", "multi"):
            raise ValueError(f"Setting {self.name!r}: unknown kind {self.kind!r}")
        if self.kind in ("float", "int") and (self.low is None or self.high is None or self.low > self.high):
            raise ValueError(f"Setting {self.name!r}: numeric settings need low <= high")
        if self.kind in ("choice", "multi") and not self.choices:
            raise ValueError(f"Setting {self.name!r}: choice settings need choices")
        ok, _ = _coerce(self, self.default)
        if not ok:
            raise ValueError(f"Setting {self.name!r}: default {self.default!r} is not a valid value")


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
    pairs = _pairs(query)
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


def _pairs(query) -> dict[str, Any]:
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
            params[s.name] = param.Integer(s.default, bounds=(int(s.low), int(s.high)), step=s.step or 1,
                                           label=s.label, doc=doc)
        elif s.kind == "bool":
            params[s.name] = param.Boolean(s.default, label=s.label, doc=doc)
        elif s.kind == "choice":
            params[s.name] = param.Selector(default=s.default, objects=list(s.choices), label=s.label, doc=doc)
        else:
            params[s.name] = param.ListSelector(default=list(s.default), objects=list(s.choices),
                                                label=s.label, doc=doc)
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


def escape(text: str) -> str:
    """HTML-escape text before it reaches the page (notices can echo URL input)."""
    return html.escape(str(text), quote=True)
