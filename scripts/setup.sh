#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a venv in .venv with mtl_core and its extras.
#   scripts/setup.sh          -> runtime + app (enough to run the playground)
#   scripts/setup.sh test     -> also the test tools: Debian chromium, torch (CPU), playwright, pytest
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-app}"

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

if [ "$want" = "test" ] && ! command -v chromium >/dev/null; then
  echo "[setup] installing Debian chromium (browser tests)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# the other two engines of the `engines` tests: Firefox ESR (WebDriver BiDi) and WebKitGTK's WebDriver (needs a display)
if [ "$want" = "test" ] && ! { command -v firefox-esr && command -v WebKitWebDriver && command -v xvfb-run; } >/dev/null; then
  echo "[setup] installing Debian firefox-esr, webkit2gtk-driver, xvfb (tests in every engine)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq firefox-esr webkit2gtk-driver xvfb >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY"
  "$PY" -m venv .venv
fi
extras="app"
[ "$want" = "test" ] && extras="app,test"
# pip prints noisy warnings about missing local mirrors on these machines; keep real errors.
.venv/bin/pip install -q --disable-pip-version-check -e ".[${extras}]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import mtl_core, numpy" 
[ "$want" = "test" ] && .venv/bin/python -c "import torch, torchjd, cvxpy, scipy, playwright, pytest, panel" && .venv/bin/ruff --version >/dev/null
# axe-core (npm) for the accessibility scans of tests/test_serve_browser_a11y.py and tests/test_static_a11y.py, pinned,
# in .cache/axe (kept out of git); installed once, so later runs need no registry
AXE_VERSION=4.14.1
if [ "$want" = "test" ] && ! grep -qs "axe v$AXE_VERSION" .cache/axe/node_modules/axe-core/axe.min.js; then
  echo "[setup] installing axe-core@$AXE_VERSION (npm) into .cache/axe"
  mkdir -p .cache/axe
  if ! (command -v npm >/dev/null && npm install --prefix .cache/axe --no-save --no-audit --no-fund --silent \
        "axe-core@$AXE_VERSION"); then
    echo "[setup] WARNING: could not install axe-core (npm missing or registry unreachable): the a11y scans will fail"
  fi
fi
echo "[setup] ok ($want)"
