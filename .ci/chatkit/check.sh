#!/usr/bin/env bash
# POST /api/v1/chatkit against the reference ChatKit server protocol: installs
# the pinned `openai-chatkit` (requirements.txt) in a venv, starts the debug
# parley binary (SQLite in a temporary folder, offline assistant) and runs
# check.py, which builds every request with the package's models, parses
# every answer and event with them, and runs the reference ChatKitServer
# side by side. See docs/chatkit.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/parley-chatkit"
VENV="$CACHE/venv"

mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! cmp -s <("$VENV/bin/pip" freeze 2>/dev/null | sort -f) <(sort -f .ci/chatkit/requirements.txt); then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r .ci/chatkit/requirements.txt
fi
"$VENV/bin/python" -c 'import importlib.metadata as m; print("openai-chatkit", m.version("openai-chatkit"))'

cargo build -q -p parley-server --bin parley
WORK=$(mktemp -d)
cp "$CARGO_TARGET_DIR/debug/parley" "$WORK/parley"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
BASE="http://127.0.0.1:$PORT"
(
  cd "$WORK"
  exec env -u LLM_BASE_URL -u REDIS_URL \
    HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="sqlite://$WORK/parley.db" ENVIRONMENT=test \
    LOG_LEVEL=warn RATE_LIMIT_PER_MINUTE=100000 REGISTRATIONS_PER_ADDRESS=100000 CORS_ORIGINS="$BASE" \
    "$WORK/parley" serve
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if curl -fsS "$BASE/health" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "the server exited" >&2; exit 1; }
  sleep 0.2
done
"$VENV/bin/python" .ci/chatkit/check.py "$BASE" || { cat "$WORK/server.log" >&2; exit 1; }
