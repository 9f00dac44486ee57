"""The landing page under `panel serve app` (app/main.py): a numbered card per page, in the suggested order, with
the built site's card picture inlined when `python build.py` has made one."""

from __future__ import annotations

import base64

import app.main as main
from app.pages import PAGES


def _html(monkeypatch, previews) -> str:
    monkeypatch.setattr(main, "BUILT_PREVIEWS", previews)
    return main.landing().objects[-1].object


def test_cards_are_numbered_in_page_order_without_pictures_when_nothing_is_built(monkeypatch, tmp_path):
    html = _html(monkeypatch, tmp_path / "missing")
    positions = [html.index(f"<b>{n}. {p.title}</b>") for n, p in enumerate(PAGES, start=1)]
    assert positions == sorted(positions)
    assert "<img" not in html
    for p in PAGES:
        assert f'href="?page={p.slug}"' in html and p.summary.split(":")[0] in html


def test_a_built_card_picture_is_inlined_with_its_alt_text(monkeypatch, tmp_path):
    picture = b"\xff\xd8\xff\xe0 not really a jpeg, only its bytes matter here \xff\xd9"
    (tmp_path / "arena-card.jpg").write_bytes(picture)
    html = _html(monkeypatch, tmp_path)
    assert html.count("<img") == 1
    assert f"data:image/jpeg;base64,{base64.b64encode(picture).decode()}" in html
    assert 'alt="Preview of the page Gradient Conflict Arena"' in html
