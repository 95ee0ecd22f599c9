#!/usr/bin/env bash
# Outside parties against a running Parley server: schemathesis fuzzes the
# OpenAPI document, openapi-python-client and openapi-typescript generate
# clients that a journey script and tsc then use, and headless Chromium drives
# Swagger UI and ReDoc. Installs what it needs; see docs/outside-parties.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
export CARGO_TERM_COLOR=never
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/parley-outside"
VENV="$CACHE/venv"
SEED="${SCHEMATHESIS_SEED:-20261121}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-100}"

# Pinned versions of the outside parties (npm ones: clients/package-lock.json).
SCHEMATHESIS=4.32.5
OPENAPI_PYTHON_CLIENT=0.29.1
RUFF=0.17.6

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

step "tools: Python venv ($VENV)"
mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
want="schemathesis==$SCHEMATHESIS openapi-python-client==$OPENAPI_PYTHON_CLIENT ruff==$RUFF"
if ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qx "schemathesis==$SCHEMATHESIS" \
  || ! "$VENV/bin/pip" freeze | grep -qx "openapi-python-client==$OPENAPI_PYTHON_CLIENT" \
  || ! "$VENV/bin/pip" freeze | grep -qx "ruff==$RUFF"; then
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $want
fi
"$VENV/bin/st" --version
"$VENV/bin/openapi-python-client" --version
"$VENV/bin/ruff" --version

step "tools: npm ci (clients/)"
(cd clients && npm ci --no-audit --no-fund --loglevel=error)

step "tools: Chromium"
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version

step "build the parley binary"
cargo build -q -p parley-server --bin parley
WORK=$(mktemp -d)
# A private copy: the target folder may be shared with other builds.
cp "$CARGO_TARGET_DIR/debug/parley" "$WORK/parley"

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

step "start the server (SQLite in $WORK, offline assistant)"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
BASE="http://127.0.0.1:$PORT"
(
  cd "$WORK"
  exec env -u LLM_BASE_URL -u REDIS_URL \
    HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="sqlite://$WORK/parley.db" ENVIRONMENT=test \
    LOG_LEVEL=warn RATE_LIMIT_PER_MINUTE=100000 LOGIN_ATTEMPTS_PER_ADDRESS=100000 \
    REGISTRATIONS_PER_ADDRESS=100000 LOGIN_FAILURES_PER_ACCOUNT=100000 MAX_OPEN_SESSIONS_PER_USER=100000 \
    CORS_ORIGINS="$BASE" \
    "$WORK/parley" serve
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if curl -fsS "$BASE/health" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "the server exited"; }
  sleep 0.2
done
curl -fsS "$BASE/health" || { cat "$WORK/server.log" >&2; fail "no /health after 20 s"; }
echo
curl -fsS "$BASE/openapi.json" -o "$WORK/openapi.json"
cp "$WORK/openapi.json" clients/openapi.json

step "a. schemathesis $SCHEMATHESIS: every check, $EXAMPLES examples per operation, seed $SEED"
TOKEN=$(curl -fsS -X POST "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"email": "fuzzer@example.com", "password": "fuzzing-password", "name": "Fuzzer"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["access_token"])')
started=$(date +%s)
status=0
(cd clients && "$VENV/bin/st" --config-file schemathesis.toml run "$BASE/openapi.json" \
  -H "Authorization: Bearer $TOKEN" \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --workers 2 \
  --no-color \
  --report junit --report-dir "$WORK/schemathesis") || status=$?
echo "schemathesis took $(($(date +%s) - started)) s"
[ "$status" = 0 ] || fail "schemathesis found failures (exit $status)"

step "b. openapi-python-client $OPENAPI_PYTHON_CLIENT: generate with zero warnings, run the journey"
rm -rf "$WORK/python_client"
PATH="$VENV/bin:$PATH" openapi-python-client generate --path "$WORK/openapi.json" \
  --output-path "$WORK/python_client" --meta none >"$WORK/generate.log" 2>&1 || {
  cat "$WORK/generate.log"
  fail "openapi-python-client could not generate a client"
}
cat "$WORK/generate.log"
if grep -qiE 'warning|error|unable|skipp' "$WORK/generate.log"; then
  fail "openapi-python-client reported warnings"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "httpx>=0.23" "attrs>=22.2" "python-dateutil>=2.8"
PYTHONPATH="$WORK" "$VENV/bin/python" clients/python_journey.py "$BASE" || fail "the Python journey failed"

step "c. openapi-typescript: generate types, tsc --noEmit"
(cd clients && npx --no-install openapi-typescript openapi.json -o generated/parley.d.ts)
(cd clients && npx --no-install tsc --noEmit -p tsconfig.json) || fail "the TypeScript client does not type-check"
echo "tsc: ok"

step "d. headless Chromium: Swagger UI and ReDoc"
(cd clients && node browser.mjs "$BASE") || fail "the browser check failed"

step "outside parties: all passed"
