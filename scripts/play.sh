#!/usr/bin/env bash
# Set up (idempotent) and serve the playground locally: http://localhost:${PORT:-5006}/app
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh app
exec .venv/bin/panel serve app --port "${PORT:-5006}" --address "${ADDRESS:-127.0.0.1}" --allow-websocket-origin="*" "$@"
