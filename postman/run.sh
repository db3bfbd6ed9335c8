#!/usr/bin/env bash
# Runs the Postman collection with newman.
#   bash postman/run.sh                      fresh server on a throw-away SQLite database
#   BASE_URL=http://127.0.0.1:5000 PASSWORD=<demo password> bash postman/run.sh
#                                            against a server you started with `make run`
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# newman lives in a cache outside the repository.
NEWMAN_VERSION=6.2.2
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tessera-postman"
NEWMAN="$CACHE/node_modules/.bin/newman"
if [ ! -x "$NEWMAN" ] || ! "$NEWMAN" --version 2>/dev/null | grep -qx "$NEWMAN_VERSION"; then
  mkdir -p "$CACHE"
  npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error "newman@$NEWMAN_VERSION" >/dev/null
fi

USERNAME=${USERNAME_OVERRIDE:-demo}
if [ -z "${BASE_URL:-}" ]; then
  WORK=$(mktemp -d)
  SERVER_PID=""
  cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
  }
  trap cleanup EXIT INT TERM
  PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export HOST=127.0.0.1 PORT TESSERA_ENV=development
  export DATABASE_URL="sqlite:///$WORK/tessera.db" KEYS_DIR="$WORK/keys"
  unset REDIS_URL ISSUER
  .venv/bin/flask db upgrade >/dev/null
  .venv/bin/flask keys generate >/dev/null
  USERNAME=postman
  PASSWORD=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')
  printf '%s\n' "$PASSWORD" | .venv/bin/flask users create "$USERNAME" --email postman@example.com --password-stdin >/dev/null
  GUNICORN_WORKERS=2 .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  BASE_URL="http://127.0.0.1:$PORT"
  for _ in $(seq 1 100); do
    curl -fs "$BASE_URL/health/ready" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
    sleep 0.1
  done
fi

"$NEWMAN" run "$ROOT/postman/tessera.postman_collection.json" \
  --environment "$ROOT/postman/tessera.postman_environment.json" \
  --env-var "baseUrl=$BASE_URL" --env-var "username=$USERNAME" --env-var "password=${PASSWORD:-}" \
  --bail --color off
