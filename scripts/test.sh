#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: numerics, app logic, panel-serve browser tests and the
# static Pyodide site end-to-end. Extra arguments go to pytest (e.g. -m "not static").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest -ra "$@"
