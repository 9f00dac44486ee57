"""The reader's own data (issue 14): CSV files checked cell by cell, and the point set the "Edit data" mode edits.

Pure and small on purpose: numpy and the standard library only (``csv``: plain comma-separated text, no sniffing),
no panel, no mtl_core, so every message can be tested without a page. Two file layouts:

* :func:`parse_two_tasks` -- ``x1,x2,label_a,label_b`` (Shared vs Separate): a 2-D point and a 0/1 label per
  task; an empty label cell is a missing label.
* :func:`parse_regression_classification` -- ``x…,y_reg,y_cls`` (Loss-Weighting Lab): one or more input columns
  named ``x<something>``, a real regression target and a 0/1 class; empty target cells are missing labels.
* :func:`parse_main_aux` -- ``x1,x2,main,aux`` (Auxiliary tasks): a 2-D point, a 0/1 main label that most rows
  leave empty (the few labels the page is about) and an auxiliary target on (nearly) every row, 0/1 or a number
  as the page's "Auxiliary target" says.

Both return a :class:`CustomData` or raise :class:`CustomDataError` (a ValueError) whose message names the row and
column. Rows are counted as a spreadsheet shows them: the header is row 1, so "row 7" is the file's 7th line.
A caller that catches the error keeps the data it had: nothing here touches a page.

The data a page trains on is also kept in the browser tab (``sessionStorage``, app/common.py ``keep_own_data``) as
the JSON of :func:`to_json`; :func:`from_json` reads it back and refuses (ValueError) anything that is not exactly
such data, since what a browser kept may be stale or tampered with.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode

import numpy as np

MAX_ROWS = 5000  # data rows: a page retrains on every edit, and each step scores every point
MAX_BYTES = 1_000_000  # 5,000 rows of numbers fit in well under this; anything bigger is not such a file
MIN_ROWS = 4  # fewer points are not a data set (the Lab splits its rows into training and test rows)
MAX_X_COLUMNS = 50
TWO_TASK_COLUMNS = ("x1", "x2", "label_a", "label_b")
MAIN_AUX_COLUMNS = ("x1", "x2", "main", "aux")
REG_CLS_TARGETS = ("y_reg", "y_cls")
# the label columns of each layout and what they hold ("binary": 0 or 1, "real": any finite number; NaN = no label)
TWO_TASK_LABELS = {"label_a": "binary", "label_b": "binary"}
MAIN_AUX_LABELS = {"main": "binary", "aux": "real"}  # aux: 0/1 or a score, as the page's Auxiliary target says
REG_CLS_LABELS = {"y_reg": "real", "y_cls": "binary"}
STORED_VERSION = 1  # the "v" of to_json's form: a page refuses what an older or newer form kept
MAX_STORED_CHARS = (
    1_500_000  # a browser keeps ~5 M characters per site for all its tabs' pages: larger data is not kept
)
# a decimal number as a spreadsheet writes it: no "nan", "inf", "0x10" or "1_000" (Python's float() takes those)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_MORE = 3  # how many problems a message lists before "and N more"


class CustomDataError(ValueError):
    """A file (or an edit) that cannot become the page's data; the message says where and why, in plain words."""


@dataclass(frozen=True)
class CustomData:
    """Points and their labels, as uploaded or edited.

    Parameters
    ----------
    x : (N, D) float array, finite
    x_columns : tuple of str
        The names of the D input columns (as in the file's header).
    labels : dict of str to (N,) float array
        One target per label column, in file order; NaN = no label in that row.
    held_out : (N,) bool array, optional
        True for rows kept out of training to score the models on (default: none).
    note : str
        What was done to the inputs on the way in (e.g. standardised), plain text; empty when nothing.
    """

    x: np.ndarray
    x_columns: tuple
    labels: dict
    held_out: np.ndarray = None
    note: str = ""

    def __post_init__(self):
        x = np.asarray(self.x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.x_columns):
            raise ValueError(f"x must have shape (N, {len(self.x_columns)}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("x must be finite")
        n = x.shape[0]
        labels = {}
        for name, y in self.labels.items():
            y = np.asarray(y, dtype=np.float64)
            if y.shape != (n,):
                raise ValueError(f"labels[{name!r}] must have shape ({n},), got {y.shape}")
            labels[name] = y
        held = np.zeros(n, dtype=bool) if self.held_out is None else np.asarray(self.held_out, dtype=bool)
        if held.shape != (n,):
            raise ValueError(f"held_out must have shape ({n},), got {held.shape}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "held_out", held)
        object.__setattr__(self, "x_columns", tuple(self.x_columns))

    @property
    def n_rows(self) -> int:
        return int(self.x.shape[0])

    def masks(self) -> dict:
        """{label column: bool (N,)}: True where the row has that label."""
        return {name: ~np.isnan(y) for name, y in self.labels.items()}

    def n_labelled(self) -> dict:
        """{label column: number of rows with a label}."""
        return {name: int(m.sum()) for name, m in self.masks().items()}

    def rows(self, which: np.ndarray) -> "CustomData":
        """The rows where the bool (N,) array ``which`` is True (same columns)."""
        which = np.asarray(which, dtype=bool)
        return replace(
            self,
            x=self.x[which],
            labels={k: v[which] for k, v in self.labels.items()},
            held_out=self.held_out[which],
        )

    # ------------------------------------------------------------------ the "Edit data" mode
    def add_point(self, point, labels: dict) -> "CustomData":
        """A copy with one more (training) row at ``point``.

        Parameters
        ----------
        point : sequence of D floats
        labels : dict of label column to float or None
            The new row's labels; None (or a column left out) = no label for that column.
        """
        p = np.asarray(point, dtype=np.float64).reshape(-1)
        if p.shape != (self.x.shape[1],) or not np.all(np.isfinite(p)):
            raise ValueError(f"point must be {self.x.shape[1]} finite numbers, got {point!r}")
        unknown = set(labels) - set(self.labels)
        if unknown:
            raise ValueError(f"labels has columns that are not in the data: {sorted(unknown)}")
        if self.n_rows >= MAX_ROWS:
            raise CustomDataError(f"There are already {MAX_ROWS:,} points, the most a page trains on live.")
        new = {k: np.append(v, np.nan if labels.get(k) is None else float(labels[k])) for k, v in self.labels.items()}
        return replace(self, x=np.vstack([self.x, p]), labels=new, held_out=np.append(self.held_out, False))

    def nearest(self, point) -> tuple[int, float]:
        """(row, distance) of the row nearest ``point``; (-1, inf) when there are no rows."""
        if self.n_rows == 0:
            return -1, math.inf
        d = np.sqrt(np.sum((self.x - np.asarray(point, dtype=np.float64).reshape(1, -1)) ** 2, axis=1))
        i = int(np.argmin(d))
        return i, float(d[i])

    def remove_nearest(self, point, *, radius: float) -> "CustomData":
        """A copy without the row nearest ``point``, which must lie within ``radius``.

        Raises CustomDataError when no row is that near, or when it is the last training row (a page cannot train
        on nothing).
        """
        i, dist = self.nearest(point)
        if dist > radius:
            raise CustomDataError(
                "No point near enough to remove there: shift-click (or click in Remove mode) on a point."
            )
        keep = np.ones(self.n_rows, dtype=bool)
        keep[i] = False
        if not np.any(keep & ~self.held_out):
            raise CustomDataError("That is the last training point: add another one before removing it.")
        return self.rows(keep)

    def summary(self, letters: dict | None = None) -> str:
        """'200 points (150 for training, 50 held out); labels: task A 200, task B 180' (plain text).

        ``letters`` maps a label column to how the page names it (default: the column name).
        """
        letters = letters or {}
        n_held = int(self.held_out.sum())
        split = f" ({self.n_rows - n_held} for training, {n_held} held out)" if n_held else ""
        counts = ", ".join(f"{letters.get(k, k)} {v}" for k, v in self.n_labelled().items())
        return f"{self.n_rows} points{split}; labels: {counts}"


# ---------------------------------------------------------------------------------------------------- parsing
def parse_two_tasks(raw: bytes | str) -> CustomData:
    """Read an ``x1,x2,label_a,label_b`` file (columns in any order, names in any case).

    Parameters
    ----------
    raw : bytes or str
        The file as uploaded (UTF-8, with or without a byte-order mark).

    Returns
    -------
    CustomData with x (N, 2), labels {"label_a", "label_b"} (0., 1. or NaN), nothing held out yet.

    Raises
    ------
    CustomDataError
        Naming the row and column of the first problems found.
    """
    header, rows = _table(raw, TWO_TASK_COLUMNS)
    _exact_columns(header, TWO_TASK_COLUMNS)
    return _convert(header, rows, ("x1", "x2"), TWO_TASK_LABELS)


def parse_main_aux(raw: bytes | str, *, aux_kind: str) -> CustomData:
    """Read an ``x1,x2,main,aux`` file (columns in any order, names in any case): ``main`` 0 or 1, an empty cell for
    an unlabelled row; ``aux`` 0 or 1 with ``aux_kind="binary"``, any number with ``"regression"`` (empty: no
    auxiliary label in that row).

    Returns
    -------
    CustomData with x (N, 2), labels {"main", "aux"} (NaN = no label), nothing held out yet.

    Raises
    ------
    CustomDataError
        Naming the row and column of the first problems found.
    """
    if aux_kind not in ("binary", "regression"):
        raise ValueError(f"aux_kind must be 'binary' or 'regression', got {aux_kind!r}")
    header, rows = _table(raw, MAIN_AUX_COLUMNS)
    _exact_columns(header, MAIN_AUX_COLUMNS)
    try:
        return _convert(
            header, rows, ("x1", "x2"), {"main": "binary", "aux": "binary" if aux_kind == "binary" else "real"}
        )
    except CustomDataError as exc:
        if aux_kind == "binary" and "column aux:" in str(exc) and "labels are 0 or 1" in str(exc):
            raise CustomDataError(
                f"{exc} A numeric auxiliary target (a score, not a yes/no label) needs Auxiliary target: Numeric score."
            ) from None
        raise


def parse_regression_classification(raw: bytes | str) -> CustomData:
    """Read an ``x…,y_reg,y_cls`` file: one or more input columns named x<anything> (x1, x2, x_age, ...), a real
    regression target ``y_reg`` and a 0/1 class ``y_cls`` (empty target cells = missing labels).

    Returns
    -------
    CustomData with x (N, D) in the header's order and labels {"y_reg", "y_cls"}.
    """
    expected = ("x1", "x2", *REG_CLS_TARGETS)
    header, rows = _table(raw, expected)
    x_cols = [h for h in header if h.startswith("x")]
    others = [h for h in header if not h.startswith("x") and h not in REG_CLS_TARGETS]
    missing = [t for t in REG_CLS_TARGETS if t not in header]
    problems = []
    if missing:
        problems.append(f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}")
    if others:
        problems.append(f"unknown column{'s' * (len(others) > 1)} {', '.join(repr(o) for o in others)}")
    if not x_cols:
        problems.append("no input column (name them x1, x2, ...)")
    if problems:
        raise CustomDataError(
            f"The header must name input columns x1, x2, … and the targets y_reg, y_cls; it has {_names(header)}: "
            + "; ".join(problems)
            + "."
        )
    if len(x_cols) > MAX_X_COLUMNS:
        raise CustomDataError(f"The file has {len(x_cols)} input columns; at most {MAX_X_COLUMNS} are allowed.")
    return _convert(header, rows, tuple(x_cols), REG_CLS_LABELS)


def too_large(nbytes: int, name: str = "") -> str:
    """What a file of ``nbytes`` bytes over :data:`MAX_BYTES` is told (in Python, or by the browser before it
    sends one: :func:`app.common.csv_upload`)."""
    what = f"{name} is" if name else "The file is"
    return (
        f"{what} {nbytes / 1e6:.1f} MB; a data file of at most {MAX_ROWS:,} rows is well under "
        f"{MAX_BYTES / 1e6:.0f} MB. Your data is unchanged."
    )


def decode(raw: bytes | str) -> str:
    """The text of an uploaded file: UTF-8 (a byte-order mark is dropped); anything else is refused."""
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw)
        if len(raw) > MAX_BYTES:
            raise CustomDataError(too_large(len(raw)))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CustomDataError(
                "This is not a text (CSV) file: its bytes are not UTF-8 text (the first bad byte is at position "
                f"{exc.start}). Save the sheet as CSV (comma-separated, UTF-8)."
            ) from None
    else:
        raise ValueError(f"raw must be bytes or str, got {type(raw).__name__}")
    if "\x00" in text:
        raise CustomDataError("This is not a text (CSV) file: it contains NUL bytes. Save the sheet as CSV (UTF-8).")
    return text.removeprefix("\ufeff")  # Excel's "CSV UTF-8" starts with a byte-order mark


def _table(raw, expected: tuple) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header names stripped and lower-cased, [(row number, cells)]) of a comma-separated file; blank rows are
    skipped (spreadsheets write some at the end)."""
    text = decode(raw)
    if not text.strip():
        raise CustomDataError(f"The file is empty: it needs a header row ({','.join(expected)}) and data rows.")
    reader = csv.reader(io.StringIO(text, newline=""))
    header, rows = None, []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                _check_header(header, expected)
                continue
            if len(rows) >= MAX_ROWS:
                raise CustomDataError(
                    f"The file has more than {MAX_ROWS:,} data rows (row {reader.line_num} is one too many); "
                    f"a page trains live on at most {MAX_ROWS:,} points."
                )
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise CustomDataError(f"Row {reader.line_num} cannot be read as CSV: {exc}.") from None
    return header, rows


def _names(header) -> str:
    return ",".join(header) if header else "no names"


def _check_header(header: list[str], expected: tuple) -> None:
    joined = ",".join(header)
    if len(header) == 1 and ";" in header[0]:
        raise CustomDataError(
            f"The header '{header[0][:60]}' is one column: this file separates its cells with ';'. Save it "
            f"comma-separated, with the header {','.join(expected)}."
        )
    if all(_NUMBER.fullmatch(h) for h in header if h):
        raise CustomDataError(
            f"The first row must be the header {','.join(expected)}; it holds numbers ({joined[:60]})."
        )
    for k, h in enumerate(header):
        if not h:
            raise CustomDataError(f"Column {k + 1} of the header has no name (the header is '{joined[:80]}').")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise CustomDataError(f"The header names column{'s' * (len(dupes) > 1)} {', '.join(dupes)} twice.")


def _exact_columns(header: list[str], expected: tuple) -> None:
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}")
        if extra:
            parts.append(f"unknown column{'s' * (len(extra) > 1)} {', '.join(repr(e) for e in extra)}")
        raise CustomDataError(
            f"The header must be {','.join(expected)}; it is {_names(header)}: " + "; ".join(parts) + "."
        )


def _convert(header: list[str], rows, x_cols: tuple, label_kinds: dict) -> CustomData:
    """Cells to numbers; every problem is collected, the first few are reported."""
    if not rows:
        raise CustomDataError("The file has a header but no data rows.")
    if len(rows) < MIN_ROWS:
        raise CustomDataError(
            f"The file has only {len(rows)} data row{'s' * (len(rows) > 1)}; at least {MIN_ROWS} are needed."
        )
    col = {h: k for k, h in enumerate(header)}
    n, width = len(rows), len(header)
    x = np.zeros((n, len(x_cols)))
    labels = {name: np.full(n, np.nan) for name in label_kinds}
    problems = []
    for i, (line, cells) in enumerate(rows):
        if len(cells) != width:
            few = len(cells) < width
            problems.append(
                f"row {line} has {len(cells)} cell{'s' * (len(cells) != 1)} but the header has {width} columns "
                + (
                    f"({','.join(header)}): write an empty label as nothing between two commas"
                    if few
                    else "(a comma too many, or a decimal comma?)"
                )
            )
            continue
        for j, name in enumerate(x_cols):
            value, why = _number(cells[col[name]])
            if why:
                problems.append(
                    f"row {line}, column {name}: {why}" + (" (every point needs it)" if why == "empty" else "")
                )
            else:
                x[i, j] = value
        for name, kind in label_kinds.items():
            cell = cells[col[name]]
            if not cell.strip():
                continue  # a missing label
            value, why = _number(cell)
            if why:
                hint = " (leave the cell empty for a missing label)" if "finite" in why or "number" in why else ""
                problems.append(f"row {line}, column {name}: {why}{hint}")
            elif kind == "binary" and value not in (0.0, 1.0):
                problems.append(
                    f"row {line}, column {name}: {cell.strip()[:20]!r} is not a label: labels are 0 or 1 "
                    "(leave the cell empty for a missing label)"
                )
            else:
                labels[name][i] = value
    if problems:
        more = f"; and {len(problems) - _MORE} more" if len(problems) > _MORE else ""
        raise CustomDataError("; ".join(problems[:_MORE]) + more + ".")
    for name, y in labels.items():
        if np.all(np.isnan(y)):
            raise CustomDataError(f"Column {name} has no labels at all (every cell is empty).")
    return CustomData(x=x, x_columns=x_cols, labels=labels)


def _number(cell: str) -> tuple[float, str]:
    """(value, "") for a finite decimal number, else (nan, why not)."""
    text = cell.strip()
    if not text:
        return math.nan, "empty"
    shown = repr(text[:20] + ("…" if len(text) > 20 else ""))
    if not _NUMBER.fullmatch(text):
        low = text.lower().lstrip("+-")
        if low in ("nan", "inf", "infinity"):
            return math.nan, f"{shown} is not a finite number"
        return math.nan, f"{shown} is not a number" + (" (use a dot for decimals)" if "," in text else "")
    value = float(text)
    if not math.isfinite(value):
        return math.nan, f"{shown} is too large to be a finite number"
    return value, ""


# ---------------------------------------------------------------------------------------------------- inputs
def fit_inputs(data: CustomData, *, extent: float | None = None, region: str = "the map") -> CustomData:
    """The inputs scaled as a network wants them: each column to mean 0 and standard deviation 1.

    With ``extent`` (a map of [-extent, extent]^2) points that already lie inside the map are kept as they are, so
    that what a reader drew or typed in map coordinates stays where it was; only data that does not fit is
    standardised. The returned ``note`` says what was done (empty when nothing); ``region`` is how it names the
    square (a page without a map: "the generated data's square").
    """
    x = data.x
    if extent is not None and np.all(np.abs(x) <= extent):
        return data
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)  # a constant column stays constant (at 0)
    z = (x - mean) / sd
    where = f" to fit {region}" if extent is not None else ""
    note = f"inputs standardised{where} (each column to mean 0, standard deviation 1)"
    if extent is not None:
        out = int(np.sum(np.any(np.abs(z) > extent, axis=1)))
        if out:
            note += f"; {out} point{'s' * (out > 1)} still lie{'s' * (out == 1)} outside {region}"
    return replace(data, x=z, note=note)


def hold_out(data: CustomData, fraction: float, *, rng: np.random.Generator) -> CustomData:
    """A copy in which each row is held out (kept for scoring, not training) with probability ``fraction``;
    at least one row stays for training."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    held = rng.random(data.n_rows) < fraction
    if held.all():
        held[0] = False
    return replace(data, held_out=held)


def hold_out_stratified(data: CustomData, fraction: float, column: str, *, rng: np.random.Generator) -> CustomData:
    """A copy in which ``fraction`` of the rows labelled in ``column`` are held out, and ``fraction`` of the other
    rows (each share rounded; of a group of two or more rows at least one is held out and at least one stays for
    training). For a task labelled on few rows, where a random draw could take all its labels away from training
    or leave none to score on.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if column not in data.labels:
        raise ValueError(f"column must be one of {sorted(data.labels)}, got {column!r}")
    held = np.zeros(data.n_rows, dtype=bool)
    labelled = ~np.isnan(data.labels[column])
    for group in (labelled, ~labelled):
        rows = np.flatnonzero(group)
        if len(rows) < 2 or fraction == 0.0:
            continue
        k = min(max(1, int(round(fraction * len(rows)))), len(rows) - 1)
        held[rng.choice(rows, size=k, replace=False)] = True
    return replace(data, held_out=held)


# ---------------------------------------------------------------------------------------------------- kept in the tab
def to_json(data: CustomData) -> str:
    """``data`` as compact JSON text: ``{"v": 1, "x_columns": [...], "x": [[...], ...], "labels": {column: [...]},
    "held_out": [0 or 1, ...], "note": "..."}``, a missing label as ``null``. Every float is written exactly (its
    shortest repr), so :func:`from_json` gives back the same points, bit for bit; the same data always gives the same
    text."""
    doc = {
        "v": STORED_VERSION,
        "x_columns": list(data.x_columns),
        "x": data.x.tolist(),
        "labels": {k: [None if math.isnan(v) else v for v in y.tolist()] for k, y in data.labels.items()},
        "held_out": data.held_out.astype(int).tolist(),
        "note": data.note,
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def from_json(text, *, labels: dict, x_columns: tuple | None = None) -> CustomData:
    """The :class:`CustomData` written by :func:`to_json`, checked as strictly as a file: a page trains on it as
    it is.

    Parameters
    ----------
    text : str
        What the browser kept.
    labels : dict of str to "binary" or "real"
        The label columns the page reads, in its order (``TWO_TASK_LABELS``, ``MAIN_AUX_LABELS``,
        ``REG_CLS_LABELS``): exactly these; "binary" ones hold 0, 1 or null.
    x_columns : tuple of str, optional
        The input columns the page reads; None: one or more columns named x<anything> (the Lab).

    Raises
    ------
    ValueError
        For anything else: not JSON, another version or shape, other columns, a non-finite or non-number value, a
        label other than 0 or 1 in a binary column, more than MAX_ROWS rows, no training row.
    """
    if not isinstance(text, str) or len(text) > 2 * MAX_STORED_CHARS:
        raise ValueError("stored data must be a JSON text of reasonable size")

    def refuse(name):
        raise ValueError(f"stored data holds {name}, not a finite number")

    try:
        doc = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise ValueError(f"stored data is not JSON: {exc}") from None
    keys = {"v", "x_columns", "x", "labels", "held_out", "note"}
    if not isinstance(doc, dict) or set(doc) != keys:
        raise ValueError(f"stored data must be an object with the keys {sorted(keys)}")
    if doc["v"] != STORED_VERSION or isinstance(doc["v"], bool):
        raise ValueError(f"stored data has version {doc['v']!r}, this page reads version {STORED_VERSION}")
    cols = doc["x_columns"]
    if (
        not isinstance(cols, list)
        or not 1 <= len(cols) <= MAX_X_COLUMNS
        or not all(isinstance(c, str) and c.startswith("x") for c in cols)
        or len(set(cols)) != len(cols)
    ):
        raise ValueError("stored x_columns must be 1 to 50 distinct names starting with 'x'")
    if x_columns is not None and tuple(cols) != tuple(x_columns):
        raise ValueError(f"stored x_columns are {cols}, this page reads {list(x_columns)}")
    rows = doc["x"]
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_ROWS:
        raise ValueError(f"stored x must be a list of 1 to {MAX_ROWS} rows")
    n = len(rows)
    if not all(isinstance(r, list) and len(r) == len(cols) for r in rows):
        raise ValueError(f"every stored row of x must have {len(cols)} values")
    x = np.array([_stored_number(v, "x") for r in rows for v in r], dtype=np.float64).reshape(n, len(cols))
    got = doc["labels"]
    if not isinstance(got, dict) or set(got) != set(labels):
        raise ValueError(f"stored labels must be exactly the columns {list(labels)}")
    ys = {}
    for name, kind in labels.items():
        values = got[name]
        if not isinstance(values, list) or len(values) != n:
            raise ValueError(f"stored labels[{name!r}] must be a list of {n} values")
        y = np.array([np.nan if v is None else _stored_number(v, name) for v in values], dtype=np.float64)
        if kind == "binary" and not np.all(np.isnan(y) | (y == 0.0) | (y == 1.0)):
            raise ValueError(f"stored labels[{name!r}] must be 0, 1 or null")
        ys[name] = y
    held = doc["held_out"]
    if not isinstance(held, list) or len(held) != n or not all(v in (0, 1) and not isinstance(v, float) for v in held):
        raise ValueError(f"stored held_out must be a list of {n} values 0 or 1")
    held = np.array(held, dtype=bool)
    if held.all():
        raise ValueError("stored data has no training row")
    note = doc["note"]
    if not isinstance(note, str) or len(note) > 500:
        raise ValueError("stored note must be a short text")
    return CustomData(x=x, x_columns=tuple(cols), labels=ys, held_out=held, note=note)


def _stored_number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"stored {where} holds {value!r:.40}, not a finite number")
    return float(value)


# ---------------------------------------------------------------------------------------------------- the pages
def train_on(state, data: CustomData) -> None:
    """Make ``data`` the page state's own data and start a new run on it at once (what a setting change does):
    a new file or edit while on one's own data retrains, otherwise the Data choice becomes "custom", whose watcher
    starts the run and writes data=custom into the URL. Duck-typed: ``state`` has ``custom``, ``data_error``,
    ``data`` and ``_on_reset_setting``, as the four pages with one's own data do."""
    state.custom = data
    state.data_error = ""
    if state.data == "custom":
        state._on_reset_setting()
    else:
        state.data = "custom"


def show_fallback(view, location=None, *, wait: bool = False):
    """Show a page state's ``fallback_notice`` in ``view``'s notices, now and whenever it is set again, and keep
    ``data=custom`` out of the URL of a page that could not honour it.

    The notice is set when ``data=custom`` arrives without data of one's own (a shared link, a reload of a tab that
    kept none): the state has gone back to its generated data already, while the URL was restored, before anything
    wrote the URL back. So ``location`` (Panel's, or None) loses ``data=custom`` here, and again when the browser
    reports the address it was opened with (its Location model does that once it is shown, which would bring
    ``data=custom`` back). Duck-typed: ``view`` has ``state`` and ``add_notice``; this module imports no panel.

    With ``wait`` the notice and the URL wait for the browser, which may still have the data of this tab
    (``sessionStorage``): the returned ``settle(restored)`` ends the wait, showing the notice and dropping
    ``data=custom`` unless ``restored`` (the page trains on the kept data again). Without ``wait`` (or without a
    notice to show) ``settle`` does nothing.
    """
    state = view.state
    waiting = [bool(wait and state.fallback_notice)]

    def drop_stale(*_events) -> None:
        if location is None or waiting[0]:
            return
        if state.data != "custom" and _asks_custom(location.search or ""):
            location.search = _without_data(location.search)

    def settle(restored: bool = False) -> None:
        if not waiting[0]:
            return
        waiting[0] = False
        if not restored and state.fallback_notice:
            view.add_notice(state.fallback_notice)
        drop_stale()

    if state.fallback_notice and not waiting[0]:
        view.add_notice(state.fallback_notice)
    state.param.watch(lambda event: view.add_notice(event.new) if event.new else None, ["fallback_notice"])
    if location is not None:
        drop_stale()
        location.param.watch(drop_stale, ["search"])
    return settle


def _asks_custom(search: str) -> bool:
    return any(k == "data" and v.strip() == "custom" for k, v in parse_qsl(search.lstrip("?"), keep_blank_values=True))


def _without_data(search: str) -> str:
    """The query ``search`` without its ``data`` key (every other key, in order)."""
    kept = [(k, v) for k, v in parse_qsl(search.lstrip("?"), keep_blank_values=True) if k != "data"]
    return f"?{urlencode(kept)}" if kept else ""
