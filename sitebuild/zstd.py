"""zstd at ``ZSTD_LEVEL``, as the worker's decoder (zstddec, web/worker/zstd.js) reads it: one frame, deterministic (one
thread), its content size in the frame header. Used for the snapshot and the runtime's wasm."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from sitebuild.errors import log
from sitebuild.pins import ZSTD_LEVEL


def zstd_bytes(raw: bytes) -> bytes | None:
    """``raw`` compressed, or None without the zstandard package (`bash scripts/setup.sh` installs it)."""
    try:
        import zstandard
    except ImportError:
        return None
    params = zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL, source_size=len(raw), threads=0, write_content_size=True
    )
    return zstandard.ZstdCompressor(compression_params=params).compress(raw)


def zstd_cached(raw: Callable[[], bytes], out: pathlib.Path, what: str) -> pathlib.Path | None:
    """``out``: ``raw()`` compressed, made once (the caller names ``out`` by its input), or None without zstandard."""
    if out.exists():
        return out
    log(f"compressing {what} with zstd")
    packed = zstd_bytes(raw())
    if packed is None:
        log(f"no zstd copy of {what}: the zstandard package is not installed (`bash scripts/setup.sh`)")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(packed)
    tmp.replace(out)
    return out
