"""Errors and logging: a :class:`BuildError` is a problem the person running the build must fix, and its message
says what and how. ``run``/``pip`` run a subprocess and capture its output for such messages."""

from __future__ import annotations

import os
import subprocess
import sys


class BuildError(RuntimeError):
    """A problem the person running the build must fix; the message says what and how."""


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(cmd: list[str], env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True)


def pip(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], env=env)
