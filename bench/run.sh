#!/usr/bin/env bash
# Tessera beside node-oidc-provider on this machine, in one run: see bench/README.md.
#
#   bash bench/run.sh                      # the full run (about 10 minutes)
#   BENCH_DURATION=2 BENCH_WARMUP=1 bash bench/run.sh        # a quick check
#   BENCH_CASES="token introspect" bash bench/run.sh        # some cases only
#
# Every knob is an environment variable; the defaults are listed below. Every process
# this script starts is stopped when it ends, on success, failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# ---- knobs --------------------------------------------------------------------------
BENCH_DURATION=${BENCH_DURATION:-10}          # seconds per measurement
BENCH_WARMUP=${BENCH_WARMUP:-3}               # seconds of warm-up per case and side
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-"8 32"}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}               # A B A B: each case measured this many times per side
BENCH_CASES=${BENCH_CASES:-"discovery jwks token introspect signin"}
BENCH_BARE=${BENCH_BARE:-1}                   # measure the bare Flask ceiling
BENCH_CEILINGS=${BENCH_CEILINGS:-1}           # measure RS256 and argon2 ceilings
BENCH_CEILING_SECONDS=${BENCH_CEILING_SECONDS:-3}
BENCH_WRK_THREADS=${BENCH_WRK_THREADS:-2}
BENCH_SIGNIN_USERS=${BENCH_SIGNIN_USERS:-8}   # virtual users of the sign-in case
BENCH_SIGNIN_PROCESSES=${BENCH_SIGNIN_PROCESSES:-2}
# BENCH_HOLD=1 keeps the servers up after the run (for a profiler) until Enter is pressed.
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera-bench}
BENCH_OUT=${BENCH_OUT:-$ROOT/bench/out}
BENCH_DATABASE_URL=${BENCH_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/tessera_bench}
BENCH_REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/13}
TESSERA_PORT=${TESSERA_PORT:-5100}
PEER_PORT=${PEER_PORT:-3100}
BARE_PORT=${BARE_PORT:-5101}
TESSERA_LOG_LEVEL=${TESSERA_LOG_LEVEL:-INFO}
export GUNICORN_WORKERS=${GUNICORN_WORKERS:-2}
export GUNICORN_WORKER_CLASS=${GUNICORN_WORKER_CLASS:-gthread}
export GUNICORN_THREADS=${GUNICORN_THREADS:-4}

PY=$ROOT/.venv/bin/python
REDIRECT_URI="http://127.0.0.1:5199/cb"   # nothing listens there: the client stops at the redirect
USERNAME=benchuser
SCOPE_API="api:read"

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

# ---- processes and clean-up ---------------------------------------------------------
PIDS=()
CURRENT=""
WORK=""
SETUP_DONE=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CURRENT" ]; then kill -TERM "$CURRENT" 2>/dev/null || true; fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}" $CURRENT; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ] && [ -z "$SETUP_DONE" ] && [ -n "$WORK" ] && [ -s "$WORK/setup.log" ]; then
        tail -n 20 "$WORK/setup.log" >&2
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
            for log in tessera bare peer; do
                [ -f "$WORK/$log.log" ] && tail -n 200 "$WORK/$log.log" >"$OUT/$log.log"
            done
        fi
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run a command in the foreground, but so that a signal reaches the trap at once.
fg_run() {
    "$@" &
    CURRENT=$!
    local rc=0
    wait "$CURRENT" || rc=$?
    CURRENT=""
    return "$rc"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_ready() { # URL PID NAME
    for _ in $(seq 1 300); do
        if curl -sf -o /dev/null "$1"; then return 0; fi
        kill -0 "$2" 2>/dev/null || { tail -n 30 "$WORK/$3.log" >&2; die "$3 exited at start"; }
        sleep 0.1
    done
    tail -n 30 "$WORK/$3.log" >&2
    die "$3 did not answer $1 within 30 s"
}

# ---- what it needs --------------------------------------------------------------------
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v wrk >/dev/null; then
    say "bench: installing wrk (Debian package)"
    as_root apt-get install -y wrk >/dev/null || { as_root apt-get update >/dev/null && as_root apt-get install -y wrk >/dev/null; }
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "bench: installing Node.js and npm (Debian packages)"
    as_root apt-get install -y nodejs npm >/dev/null
fi
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
    || die "oidc-provider 9 needs Node.js 20 or newer (found $(node --version))"
if [ ! -x "$ROOT/.venv/bin/gunicorn" ] || ! "$PY" -c 'import requests' 2>/dev/null; then
    make -C "$ROOT" dev-venv
fi

PEER_DIR=$BENCH_CACHE/peer
mkdir -p "$PEER_DIR"
if ! cmp -s bench/peer/package.json "$PEER_DIR/package.json" \
    || [ ! -d "$PEER_DIR/node_modules/oidc-provider" ] || [ ! -d "$PEER_DIR/node_modules/argon2" ]; then
    say "bench: installing oidc-provider into $PEER_DIR"
    cp bench/peer/package.json "$PEER_DIR/package.json"
    (cd "$PEER_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp bench/peer/server.mjs "$PEER_DIR/server.mjs"

for port in "$TESSERA_PORT" "$PEER_PORT" "$BARE_PORT"; do
    port_busy "$port" && die "port $port is in use (set TESSERA_PORT, PEER_PORT or BARE_PORT)"
done

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$BENCH_OUT/$STAMP
mkdir -p "$OUT"
ln -sfn "$STAMP" "$BENCH_OUT/latest"
WORK=$(mktemp -d -t tessera-bench.XXXXXX)
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
: >"$OUT/wrk.log"

# ---- PostgreSQL and Redis, or SQLite ------------------------------------------------
SERVICES=$("$PY" - "$BENCH_DATABASE_URL" "$BENCH_REDIS_URL" <<'PYEOF'
import sys

from sqlalchemy.engine import make_url

db_url, redis_url = sys.argv[1], sys.argv[2]
db = "sqlite"
try:
    import psycopg

    url = make_url(db_url)
    name = url.database or ""
    if "bench" not in name:
        sys.exit(f"BENCH_DATABASE_URL must name a database whose name contains 'bench' "
                 f"(it is emptied at every run), not {name!r}")
    kw = dict(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
              password=url.password, connect_timeout=3, autocommit=True)
    with psycopg.connect(dbname="postgres", **kw) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(dbname=name, **kw) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    db = "postgresql"
except SystemExit:
    raise
except Exception as exc:  # noqa: BLE001
    print(f"note=PostgreSQL unreachable ({type(exc).__name__}: {str(exc).strip()[:120]})")
redis = "none"
try:
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis_url, socket_connect_timeout=2)
    client.ping()
    client.flushdb()
    redis = "redis"
except Exception as exc:  # noqa: BLE001
    print(f"note=Redis unreachable ({type(exc).__name__}: {str(exc).strip()[:120]})")
print(f"db={db}")
print(f"redis={redis}")
PYEOF
)
DB_KIND=$(sed -n 's/^db=//p' <<<"$SERVICES")
REDIS_KIND=$(sed -n 's/^redis=//p' <<<"$SERVICES")
NOTES=$(sed -n 's/^note=//p' <<<"$SERVICES")
if [ "$DB_KIND" = postgresql ]; then
    DATABASE_URL=$BENCH_DATABASE_URL
else
    DATABASE_URL="sqlite:///$WORK/tessera.db"
    say "bench: NOTE: PostgreSQL is absent: Tessera runs on SQLite ($NOTES)"
fi
if [ "$REDIS_KIND" = redis ]; then
    REDIS_URL=$BENCH_REDIS_URL
else
    REDIS_URL=""
    say "bench: NOTE: Redis is absent: Tessera keeps sessions and limits in the database"
fi

# ---- Tessera: production settings -----------------------------------------------------
# Production config on a loopback http issuer (TESSERA_ALLOW_HTTP_ISSUER=1). The
# per-client token limit is raised so that the benchmark measures issuance, not the
# limit (the limiter still runs); everything else is the production default.
SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_hex(32))')
PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')
mkdir -p "$WORK/keys"
TENV=(
    TESSERA_ENV=production
    SECRET_KEY="$SECRET_KEY"
    ISSUER="http://127.0.0.1:$TESSERA_PORT"
    TESSERA_ALLOW_HTTP_ISSUER=1
    HOST=127.0.0.1
    PORT="$TESSERA_PORT"
    DATABASE_URL="$DATABASE_URL"
    REDIS_URL="$REDIS_URL"
    KEYS_DIR="$WORK/keys"
    API_SCOPES="$SCOPE_API"
    RATELIMIT_TOKEN="1000000 per second"
    LOG_LEVEL="$TESSERA_LOG_LEVEL"
)
flask() { env "${TENV[@]}" "$ROOT/.venv/bin/flask" "$@" 2>>"$WORK/setup.log"; }

say "bench: preparing Tessera (database: $DB_KIND, shared state: $REDIS_KIND)"
flask db upgrade >/dev/null
flask keys generate >/dev/null
CLIENT_JSON=$(flask clients create --name "Bench client" --redirect-uri "$REDIRECT_URI" \
    --grant-type authorization_code --grant-type client_credentials \
    --scope "openid profile email $SCOPE_API" --json)
T_CLIENT_ID=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$CLIENT_JSON")
T_CLIENT_SECRET=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$CLIENT_JSON")
printf '%s\n' "$PASSWORD" | flask users create "$USERNAME" --email "$USERNAME@example.com" \
    --name "Bench User" --password-stdin >/dev/null

P_CLIENT_ID=bench-client
P_CLIENT_SECRET=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')

# ---- start the three servers ---------------------------------------------------------
env "${TENV[@]}" "$ROOT/.venv/bin/gunicorn" -c gunicorn.conf.py wsgi:app >"$WORK/tessera.log" 2>&1 &
TESSERA_PID=$!
PIDS+=("$TESSERA_PID")

(cd "$PEER_DIR" && exec env NODE_ENV=production PEER_HOST=127.0.0.1 PEER_PORT="$PEER_PORT" \
    PEER_CLIENT_ID="$P_CLIENT_ID" PEER_CLIENT_SECRET="$P_CLIENT_SECRET" \
    PEER_REDIRECT_URI="$REDIRECT_URI" PEER_USERNAME="$USERNAME" PEER_PASSWORD="$PASSWORD" \
    node server.mjs) >"$WORK/peer.log" 2>&1 &
PEER_PID=$!
PIDS+=("$PEER_PID")

if [ "$BENCH_BARE" = 1 ]; then
    env BIND="127.0.0.1:$BARE_PORT" "$ROOT/.venv/bin/gunicorn" -c gunicorn.conf.py \
        --pythonpath bench bare_app:app >"$WORK/bare.log" 2>&1 &
    BARE_PID=$!
    PIDS+=("$BARE_PID")
fi

T_URL="http://127.0.0.1:$TESSERA_PORT"
P_URL="http://127.0.0.1:$PEER_PORT"
B_URL="http://127.0.0.1:$BARE_PORT"
wait_ready "$T_URL/.well-known/openid-configuration" "$TESSERA_PID" tessera
wait_ready "$P_URL/.well-known/openid-configuration" "$PEER_PID" peer
if [ "$BENCH_BARE" = 1 ]; then wait_ready "$B_URL/ping" "$BARE_PID" bare; fi

# ---- per side: endpoints, credentials, checks ---------------------------------------
endpoint() { # BASE_URL FIELD -> the path of a discovery field
    curl -sf "$1/.well-known/openid-configuration" \
        | "$PY" -c 'import json,sys; from urllib.parse import urlsplit; print(urlsplit(json.load(sys.stdin)[sys.argv[1]]).path)' "$2"
}
basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }

declare -A URL CID SECRET AUTH TOKEN_PATH INTRO_PATH JWKS_PATH
URL[tessera]=$T_URL; CID[tessera]=$T_CLIENT_ID; SECRET[tessera]=$T_CLIENT_SECRET
URL[peer]=$P_URL;    CID[peer]=$P_CLIENT_ID;    SECRET[peer]=$P_CLIENT_SECRET
for side in tessera peer; do
    AUTH[$side]=$(basic "${CID[$side]}" "${SECRET[$side]}")
    TOKEN_PATH[$side]=$(endpoint "${URL[$side]}" token_endpoint)
    INTRO_PATH[$side]=$(endpoint "${URL[$side]}" introspection_endpoint)
    JWKS_PATH[$side]=$(endpoint "${URL[$side]}" jwks_uri)
done
TOKEN_BODY="grant_type=client_credentials&scope=api%3Aread"

# A token to introspect: Tessera introspects its JWT access tokens; the peer introspects
# only opaque tokens (it refuses JWTs), which it issues without the API scope.
fresh_token() { # SIDE [BODY]
    local side=$1 body=${2:-$TOKEN_BODY}
    curl -sf -H "Authorization: ${AUTH[$side]}" -d "$body" "${URL[$side]}${TOKEN_PATH[$side]}" \
        | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
introspect_token() { # SIDE -> a valid token to introspect
    if [ "$1" = peer ]; then fresh_token peer "grant_type=client_credentials"; else fresh_token "$1"; fi
}

check_side() { # SIDE: every case answers correctly before it is timed
    local side=$1 url=${URL[$1]} tok
    curl -sf "$url/.well-known/openid-configuration" | "$PY" -c '
import json, sys; d = json.load(sys.stdin); assert d["issuer"] == sys.argv[1], d["issuer"]' "$url" \
        || die "$side: discovery check failed"
    curl -sf "$url${JWKS_PATH[$side]}" | "$PY" -c '
import json, sys; assert json.load(sys.stdin)["keys"]' || die "$side: JWKS check failed"
    curl -sf -H "Authorization: ${AUTH[$side]}" -d "$TOKEN_BODY" "$url${TOKEN_PATH[$side]}" | "$PY" -c '
import base64, json, sys
body = json.load(sys.stdin)
head = body["access_token"].split(".")[0]
head = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
assert head["alg"] == "RS256", head
assert body["token_type"].lower() == "bearer" and body.get("scope") == "api:read", body' \
        || die "$side: token check failed (expected an RS256 JWT access token)"
    tok=$(introspect_token "$side")
    curl -sf -H "Authorization: ${AUTH[$side]}" -d "token=$tok&token_type_hint=access_token" \
        "$url${INTRO_PATH[$side]}" | "$PY" -c '
import json, sys; d = json.load(sys.stdin); assert d["active"] is True, d' \
        || die "$side: introspection check failed"
    case " $BENCH_CASES " in *" signin "*)
        signin_cmd "$side"
        "${SIGNIN[@]}" --once >/dev/null || die "$side: sign-in check failed" ;;
    esac
}

signin_cmd() { # SIDE -> SIGNIN=(the sign-in client's command for that side)
    # --name=value: a random secret may begin with "-"
    SIGNIN=("$PY" bench/signin.py "--issuer=${URL[$1]}" "--client-id=${CID[$1]}"
        "--client-secret=${SECRET[$1]}" "--redirect-uri=$REDIRECT_URI"
        "--username=$USERNAME" "--password=$PASSWORD")
}

SETUP_DONE=1
for side in tessera peer; do check_side "$side"; done
say "bench: both providers answer every case correctly"

# ---- wrk --------------------------------------------------------------------------------
LUA=$WORK/bench.lua
cat >"$LUA" <<'LUAEOF'
local body = os.getenv("WRK_BODY")
local auth = os.getenv("WRK_AUTH")
if body and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d},"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
LUAEOF

# CPU used by a server while it is measured: the process and its children (the workers).
HZ=$(getconf CLK_TCK)
declare -A SERVER_PID
SERVER_PID[tessera]=$TESSERA_PID
SERVER_PID[peer]=$PEER_PID
SERVER_PID[bare]=${BARE_PID:-$TESSERA_PID}
cpu_snapshot() { # PID -> "pid:ticks ..." (user + system) for the process and its children
    local p
    for p in "$1" $(pgrep -P "$1" || true); do
        awk -v p="$p" '{printf "%s:%d ", p, $14 + $15}' "/proc/$p/stat" 2>/dev/null || true
    done
}
cpu_json() { # BEFORE AFTER SECONDS -> {"cores":..,"per_process":[..]} (master or node first)
    awk -v b="$1" -v a="$2" -v s="$3" -v hz="$HZ" 'BEGIN {
        n = split(b, B, " "); for (i = 1; i <= n; i++) { split(B[i], kv, ":"); before[kv[1]] = kv[2] }
        m = split(a, A, " "); total = 0; list = ""
        for (i = 1; i <= m; i++) {
            split(A[i], kv, ":"); d = (kv[2] - before[kv[1]]) / hz / s; total += d
            list = list (list == "" ? "" : ",") sprintf("%.2f", d)
        }
        printf "{\"cores\":%.2f,\"per_process\":[%s]}", total, list }'
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }

WRK_CMD="wrk -t$BENCH_WRK_THREADS -c<C> -d${BENCH_DURATION}s --timeout 5s --latency -s bench.lua <URL>"

# wrk_case CASE SIDE CONCURRENCY ROUND URL BODY AUTH DURATION (ROUND 0 = warm-up, not kept)
wrk_case() {
    local case=$1 side=$2 c=$3 round=$4 url=$5 body=$6 auth=$7 duration=$8 t text json cpu0 t0 cpu
    t=$BENCH_WRK_THREADS
    if [ "$t" -gt "$c" ]; then t=$c; fi
    cpu0=$(cpu_snapshot "${SERVER_PID[$side]}")
    t0=$(now)
    fg_run env WRK_BODY="$body" WRK_AUTH="$auth" wrk -t"$t" -c"$c" -d"${duration}s" \
        --timeout 5s --latency -s "$LUA" "$url" >"$WORK/wrk.out" 2>&1 \
        || { cat "$WORK/wrk.out" >&2; die "wrk failed on $case/$side"; }
    cpu=$(cpu_json "$cpu0" "$(cpu_snapshot "${SERVER_PID[$side]}")" "$(elapsed "$t0")")
    text=$(cat "$WORK/wrk.out")
    if [ "$round" = 0 ]; then return 0; fi
    { printf '### %s %s c=%s round %s: wrk -t%s -c%s -d%ss --latency %s\n' \
        "$case" "$side" "$c" "$round" "$t" "$c" "$duration" "$url"; printf '%s\n\n' "$text"; } >>"$OUT/wrk.log"
    json=$(sed -n 's/^WRK_JSON //p' <<<"$text")
    [ -n "$json" ] || die "wrk printed no summary for $case/$side"
    printf '{"case":"%s","side":"%s","concurrency":%s,"round":%s,"wrk":%s,"server_cpu":%s}\n' \
        "$case" "$side" "$c" "$round" "$json" "$cpu" | tee -a "$RESULTS" | "$PY" bench/report.py --progress
}

# wrk_target CASE SIDE -> "URL|BODY|AUTH" (a fresh token for introspection)
wrk_target() {
    local case=$1 side=$2
    case "$case" in
        discovery) printf '%s||' "${URL[$side]}/.well-known/openid-configuration" ;;
        jwks) printf '%s||' "${URL[$side]}${JWKS_PATH[$side]}" ;;
        token) printf '%s|%s|%s' "${URL[$side]}${TOKEN_PATH[$side]}" "$TOKEN_BODY" "${AUTH[$side]}" ;;
        introspect)
            printf '%s|token=%s&token_type_hint=access_token|%s' "${URL[$side]}${INTRO_PATH[$side]}" \
                "$(introspect_token "$side")" "${AUTH[$side]}" ;;
        bare-get) printf '%s||' "$B_URL/ping" ;;
        bare-post) printf '%s|token=%s&token_type_hint=access_token|' "$B_URL/echo" "$(fresh_token tessera)" ;;
    esac
}

measure_case() { # CASE SIDES...
    local case=$1; shift
    local sides=("$@") side c r target url body auth cmax=0
    for c in $BENCH_CONCURRENCY; do if [ "$c" -gt "$cmax" ]; then cmax=$c; fi; done
    for side in "${sides[@]}"; do
        IFS='|' read -r url body auth <<<"$(wrk_target "$case" "$side")"
        wrk_case "$case" "$side" "$cmax" 0 "$url" "$body" "$auth" "$BENCH_WARMUP"
    done
    for c in $BENCH_CONCURRENCY; do
        for r in $(seq 1 "$BENCH_ROUNDS"); do
            for side in "${sides[@]}"; do
                IFS='|' read -r url body auth <<<"$(wrk_target "$case" "$side")"
                wrk_case "$case" "$side" "$c" "$r" "$url" "$body" "$auth" "$BENCH_DURATION"
            done
        done
    done
}

measure_signin() {
    local r side text cpu0 t0 cpu
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        for side in tessera peer; do
            signin_cmd "$side"
            cpu0=$(cpu_snapshot "${SERVER_PID[$side]}")
            t0=$(now)
            fg_run "${SIGNIN[@]}" --users "$BENCH_SIGNIN_USERS" \
                --processes "$BENCH_SIGNIN_PROCESSES" --duration "$BENCH_DURATION" \
                --warmup "$BENCH_WARMUP" >"$WORK/signin.out" \
                || { cat "$WORK/signin.out" >&2; die "sign-in run failed on $side"; }
            cpu=$(cpu_json "$cpu0" "$(cpu_snapshot "${SERVER_PID[$side]}")" "$(elapsed "$t0")")
            text=$(cat "$WORK/signin.out")
            printf '{"case":"signin","side":"%s","concurrency":%s,"round":%s,"signin":%s,"server_cpu":%s}\n' \
                "$side" "$BENCH_SIGNIN_USERS" "$r" "$text" "$cpu" | tee -a "$RESULTS" \
                | "$PY" bench/report.py --progress
        done
    done
}

# ---- the run --------------------------------------------------------------------------
if [ "$BENCH_CEILINGS" = 1 ]; then
    say "bench: ceilings (RS256 signing, argon2id verification; ${BENCH_CEILING_SECONDS} s each)"
    env "${TENV[@]}" "$PY" bench/ceilings.py --seconds "$BENCH_CEILING_SECONDS" \
        --out "$OUT/ceilings.json" >/dev/null
fi
if [ "$BENCH_BARE" = 1 ]; then
    say "bench: bare Flask ceiling under the same gunicorn settings"
    measure_case bare-get bare
    measure_case bare-post bare
fi
for case in $BENCH_CASES; do
    say "bench: $case (Tessera, peer, Tessera, peer, ...)"
    if [ "$case" = signin ]; then measure_signin; else measure_case "$case" tessera peer; fi
done

# ---- what was run, on what ------------------------------------------------------------
PEER_VERSION=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$PEER_DIR/node_modules/oidc-provider/package.json")
ARGON2_NODE_VERSION=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$PEER_DIR/node_modules/argon2/package.json")
KNOBS=$(env | grep -E '^(BENCH_|GUNICORN_|TESSERA_PORT=|PEER_PORT=|BARE_PORT=|TESSERA_LOG_LEVEL=)' \
    | sort | tr '\n' ' ' || true)
"$PY" - "$OUT/meta.json" \
    "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "nproc=$(nproc)" \
    "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
    "memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)" \
    "kernel=$(uname -sr)" \
    "python=$("$PY" -c 'import platform; print(platform.python_version())')" \
    "node=$(node --version)" \
    "oidc_provider=$PEER_VERSION" \
    "node_argon2=$ARGON2_NODE_VERSION" \
    "wrk=$(wrk --version 2>&1 | head -n 1 | awk '{print $2}' || true)" \
    "gunicorn=$("$ROOT/.venv/bin/gunicorn" --version 2>&1 | awk '{print $NF}' | tr -d '()')" \
    "gunicorn_workers=$GUNICORN_WORKERS" \
    "gunicorn_worker_class=$GUNICORN_WORKER_CLASS" \
    "gunicorn_threads=$GUNICORN_THREADS" \
    "database=$DB_KIND" \
    "redis=$REDIS_KIND" \
    "notes=$NOTES" \
    "duration=$BENCH_DURATION" \
    "warmup=$BENCH_WARMUP" \
    "concurrency=$BENCH_CONCURRENCY" \
    "rounds=$BENCH_ROUNDS" \
    "cases=$BENCH_CASES" \
    "signin_users=$BENCH_SIGNIN_USERS" \
    "signin_processes=$BENCH_SIGNIN_PROCESSES" \
    "wrk_threads=$BENCH_WRK_THREADS" \
    "log_level=$TESSERA_LOG_LEVEL" \
    "command=${KNOBS}bash bench/run.sh" \
    "command=TESSERA_ENV=production TESSERA_ALLOW_HTTP_ISSUER=1 ISSUER=$T_URL DATABASE_URL=<$DB_KIND> REDIS_URL=<$REDIS_KIND> API_SCOPES=$SCOPE_API RATELIMIT_TOKEN='1000000 per second' GUNICORN_WORKERS=$GUNICORN_WORKERS GUNICORN_WORKER_CLASS=$GUNICORN_WORKER_CLASS GUNICORN_THREADS=$GUNICORN_THREADS gunicorn -c gunicorn.conf.py wsgi:app" \
    "command=NODE_ENV=production node bench/peer/server.mjs   # oidc-provider $PEER_VERSION, issuer $P_URL, one process" \
    "command=BIND=127.0.0.1:$BARE_PORT gunicorn -c gunicorn.conf.py --pythonpath bench bare_app:app" \
    "command=$WRK_CMD   # after a ${BENCH_WARMUP} s warm-up per case and side; the Lua script sets the POST body and Authorization" \
    "command=python bench/signin.py --users $BENCH_SIGNIN_USERS --processes $BENCH_SIGNIN_PROCESSES --duration $BENCH_DURATION --warmup $BENCH_WARMUP --issuer <URL> --client-id ... --username $USERNAME ..." \
    "command=python bench/ceilings.py --seconds $BENCH_CEILING_SECONDS" <<'PYEOF'
import json
import sys

meta: dict = {"commands": []}
for arg in sys.argv[2:]:
    key, _, value = arg.partition("=")
    if key == "command":
        meta["commands"].append(value)
    else:
        meta[key] = value
with open(sys.argv[1], "w") as f:
    json.dump(meta, f, indent=1)
PYEOF

"$PY" bench/report.py "$OUT"
say "bench: raw results and logs in $OUT"

if [ "${BENCH_HOLD:-0}" = 1 ]; then
    # Leave the servers up for profiling (py-spy, pyinstrument); they stop on Enter.
    say "bench: holding the servers (Enter or Ctrl-C stops them):"
    say "  Tessera $T_URL  client ${CID[tessera]} / ${SECRET[tessera]}  (gunicorn master $TESSERA_PID)"
    say "  peer    $P_URL  client ${CID[peer]} / ${SECRET[peer]}  (node $PEER_PID)"
    say "  user    $USERNAME / $PASSWORD   redirect URI $REDIRECT_URI"
    read -r _ || true
fi
