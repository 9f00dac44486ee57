#!/usr/bin/env bash
# Set up (idempotent) and serve the playground locally: http://127.0.0.1:${PORT:-5006}/app
# PORT, ADDRESS and ORIGIN (an extra allowed websocket origin, e.g. myhost:5006) can be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh app
port="${PORT:-5006}"
origins=(--allow-websocket-origin="127.0.0.1:$port" --allow-websocket-origin="localhost:$port")
[ -n "${ORIGIN:-}" ] && origins+=(--allow-websocket-origin="$ORIGIN")
echo "[play] open http://127.0.0.1:$port/app"
exec .venv/bin/panel serve app --port "$port" --address "${ADDRESS:-127.0.0.1}" "${origins[@]}" "$@"
