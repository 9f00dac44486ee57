"""Hashing and content-addressed URLs.

Everything a page loads by URL is content-addressed (a hash in the path, or ``?v=<hash>``), so browsers and the
service worker may keep it forever and a new build is still picked up at once: changed files get new URLs.
"""

from __future__ import annotations

import hashlib
import pathlib
import shutil

from sitebuild.errors import BuildError


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_hash(path: pathlib.Path, expected: str, what_to_do: str) -> None:
    got = sha256(path)
    if got != expected:
        raise BuildError(f"sha256 mismatch for {path}:\n  expected {expected}\n  got      {got}\n{what_to_do}")


def versioned(site: pathlib.Path, rel: str) -> str:
    """``rel?v=<hash of its content>``: for files whose name must stay (scripts, stylesheets, previews)."""
    return f"{rel}?v={sha256(site / rel)[:12]}"


def place_addressed(site: pathlib.Path, src: pathlib.Path, folder: str, name: str | None = None) -> str:
    """Copy ``src`` to ``<folder>/<hash of its content>/<name>`` in the site; return that URL (site-relative)."""
    rel = f"{folder}/{sha256(src)[:12]}/{name or src.name}"
    (site / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, site / rel)
    return rel
