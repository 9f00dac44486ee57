#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: numerics, app logic, panel-serve browser tests and the
# static Pyodide site end-to-end, after ruff (lint + format check). Extra arguments go to pytest (e.g. -m "not static").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# style first (seconds): the lint rules and the formatting pyproject.toml configures
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -ra --durations=30 "$@"
