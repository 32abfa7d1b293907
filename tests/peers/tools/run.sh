#!/usr/bin/env bash
# Stock gRPC tools against `rawgrpc serve`: health checking and server reflection
# as load balancers, probes and command-line clients use them.
#   (a) grpcio-health-checking: Check("") / Check("UserService") SERVING,
#       Check("nope") NOT_FOUND; later, Watch("") SERVING, SIGTERM to the server,
#       NOT_SERVING, the stream ends, and the server exits 0.
#   (b) grpcio-reflection (v1alpha) and a hand-made v1 call: the four services,
#       UserService's file, and GetUser / CreateUser through a client built only
#       from what reflection returned.
#   (c) `buf curl` (npm @bufbuild/buf): --list-methods through reflection (v1,
#       and v1alpha when forced), CreateUser, GetUser, NOT_FOUND, Health/Check.
# Prints `ok - ...` / `not ok - ...` per check, then exactly one
# `N passed, M failed` line; exits non-zero on any failure or error.
#
# Environment:
#   RAWGRPC_BIN          the binary to test (default target/release/rawgrpc;
#                        this script builds nothing)
#   RAWGRPC_TOOLS_VENV   Python venv, created once and reused while it matches
#                        requirements.txt (default $TMPDIR/rawgrpc-tools-venv)
# buf goes to tests/peers/tools/node_modules (git-ignored), reinstalled only when
# package-lock.json changes. Everything runs on 127.0.0.1 and under `timeout`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="${RAWGRPC_TOOLS_VENV:-${TMPDIR:-/tmp}/rawgrpc-tools-venv}"
BIN="${RAWGRPC_BIN:-$ROOT/target/release/rawgrpc}"
PY="$VENV/bin/python"
BUF="$HERE/node_modules/.bin/buf"

PASSED=0 FAILED=0 DIED=0
ok()     { echo "ok - $1"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $1${2:+: $2}"; FAILED=$((FAILED + 1)); }
die()    { not_ok "$1" "$2"; DIED=1; exit 1; }

# The summary comes from the EXIT trap, so that it is printed (as a failure)
# even when `set -e` stops the script half way.
WORK="$(mktemp -d)" SERVE_PID=""
finish() {
  local rc=$?
  (( rc == 0 || DIED )) || not_ok "run.sh" "aborted with status $rc"
  [[ -z $SERVE_PID ]] || kill -KILL "$SERVE_PID" 2>/dev/null || true
  rm -rf "$WORK"
  echo "$PASSED passed, $FAILED failed"
  exit $(( FAILED == 0 && rc == 0 ? 0 : 1 ))
}
trap finish EXIT

# Keep any configured HTTP proxy away from our loopback connections.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export PYTHONDONTWRITEBYTECODE=1 BUF_CACHE_DIR="$WORK/buf-cache"

# --- setup: Python venv, buf ---------------------------------------------------
STAMP="$VENV/.rawgrpc-tools-requirements.txt"
if ! cmp -s "$HERE/requirements.txt" "$STAMP" \
   || ! timeout 60 "$PY" -c 'import grpc, grpc_health.v1, grpc_reflection.v1alpha' 2>/dev/null; then
  echo "# setting up the Python venv in $VENV"
  timeout 300 python3 -m venv "$VENV" || die "setup" "python3 -m venv $VENV failed"
  timeout 900 "$PY" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" \
    || die "setup" "pip install -r tests/peers/tools/requirements.txt failed"
  cp "$HERE/requirements.txt" "$STAMP"
fi
if ! cmp -s "$HERE/package-lock.json" "$HERE/node_modules/.rawgrpc-package-lock.json" || [[ ! -x $BUF ]]; then
  { command -v node && command -v npm; } >/dev/null || die "setup" "node and npm are needed for buf"
  echo "# installing buf into tests/peers/tools/node_modules"
  (cd "$HERE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1) \
    || { sed 's/^/# /' "$WORK/npm.log" | tail -n 20; die "setup" "npm ci failed"; }
  cp "$HERE/package-lock.json" "$HERE/node_modules/.rawgrpc-package-lock.json"
fi
echo "# buf $(timeout 30 "$BUF" --version 2>&1)"
[[ -x $BIN ]] || die "rawgrpc binary" "$BIN not found (build it, or set RAWGRPC_BIN)"

# --- helpers ---------------------------------------------------------------------
oneline() { head -c 300 "$1" | tr '\n' ' '; }
alive() {   # a zombie still answers `kill -0`, so read the state from /proc
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) && [[ $st != Z ]]
}
free_port() { timeout 20 "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run_py() {  # ARGS...: tools_client.py ARGS, its lines echoed, its ok/not ok counted
  local out="$WORK/py.out" rc=0 p f
  timeout 120 "$PY" "$HERE/tools_client.py" --addr "$ADDR" "$@" >"$out" 2>&1 || rc=$?
  cat "$out"
  p=$(grep -c '^ok ' "$out" || true); f=$(grep -c '^not ok ' "$out" || true)
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  # A crash or a timeout may hide checks that never ran: one more failure.
  if (( rc != 0 && f == 0 )) || (( rc == 0 && p == 0 )); then
    not_ok "tools_client.py $1" "exit status $rc (124 = timed out) with $f failed checks"
  fi
}
bufcurl() { # NAME ARGS...: buf curl over h2c with gRPC; RC, output in $WORK/NAME.out/.err
  local name=$1; shift; RC=0
  timeout 60 "$BUF" curl --protocol grpc --http2-prior-knowledge --timeout 30s "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" || RC=$?
}
json_get() { # FILE EXPR: evaluate a Python expression on the JSON document `j` in FILE
  timeout 20 "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# --- the server --------------------------------------------------------------------
PORT=$(free_port) ADDR="127.0.0.1:$PORT" URL="http://127.0.0.1:$PORT"
echo "# rawgrpc serve on $ADDR"
"$BIN" serve --addr "$ADDR" >"$WORK/serve.log" 2>&1 & SERVE_PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  alive "$SERVE_PID" || break
  sleep 0.1
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  sed 's/^/# /' "$WORK/serve.log" | tail -n 20
  die "rawgrpc serve accepts TCP on $ADDR" "exited, or not listening within 10 s"
fi
ok "rawgrpc serve accepts TCP on $ADDR"

# --- (a) health, Check -------------------------------------------------------------
echo "# (a) grpcio-health-checking"
run_py health

# --- (b) reflection ------------------------------------------------------------------
echo "# (b) grpcio-reflection"
run_py reflection

# --- (c) buf curl ----------------------------------------------------------------------
echo "# (c) buf curl"
METHODS="UserService/CreateUser
UserService/GetUser
grpc.health.v1.Health/Check
grpc.health.v1.Health/Watch
grpc.reflection.v1.ServerReflection/ServerReflectionInfo
grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
bufcurl methods --list-methods "$URL"
if (( RC == 0 )) && [[ $(sort "$WORK/methods.out") == "$METHODS" ]]; then
  ok "buf curl --list-methods lists the six methods via reflection"
else
  not_ok "buf curl --list-methods lists the six methods via reflection" \
    "exit $RC: $(oneline "$WORK/methods.out") $(oneline "$WORK/methods.err")"
fi
bufcurl alpha --reflect-protocol grpc-v1alpha --list-services "$URL"
if (( RC == 0 )) && [[ $(sort "$WORK/alpha.out" | tr '\n' ' ') == "UserService grpc.health.v1.Health grpc.reflection.v1.ServerReflection grpc.reflection.v1alpha.ServerReflection " ]]; then
  ok "buf curl --reflect-protocol grpc-v1alpha --list-services lists the four services"
else
  not_ok "buf curl --reflect-protocol grpc-v1alpha --list-services lists the four services" \
    "exit $RC: $(oneline "$WORK/alpha.out") $(oneline "$WORK/alpha.err")"
fi

bufcurl create -d '{"user":{"name":"Ada","email":"a@b.c","age":36}}' "$URL/UserService/CreateUser"
ID=""
if (( RC == 0 )); then
  ID=$(json_get "$WORK/create.out" 'j["user"]["id"]' || true)
  SAME=$(json_get "$WORK/create.out" '(j["user"]["name"], j["user"]["email"], j["user"]["age"]) == ("Ada", "a@b.c", 36)' || true)
fi
if [[ -n $ID && ${SAME:-} == True ]]; then
  ok "buf curl CreateUser returns the user with an id ($ID)"
else
  not_ok "buf curl CreateUser returns the user with an id" \
    "exit $RC: $(oneline "$WORK/create.out") $(oneline "$WORK/create.err")"
fi
bufcurl get -d "{\"user\":{\"id\":\"${ID:-none}\"}}" "$URL/UserService/GetUser"
if (( RC == 0 )) && [[ $(json_get "$WORK/get.out" 'j == {"user": {"name": "Ada", "email": "a@b.c", "age": 36, "id": "'"${ID:-none}"'"}}' || true) == True ]]; then
  ok "buf curl GetUser of $ID returns that user"
else
  not_ok "buf curl GetUser of ${ID:-none} returns that user" \
    "exit $RC: $(oneline "$WORK/get.out") $(oneline "$WORK/get.err")"
fi
bufcurl missing -d '{"user":{"id":"nobody-9"}}' "$URL/UserService/GetUser"
# buf curl exits with the gRPC code shifted left by three: NOT_FOUND (5) is 40.
if (( RC == 40 )) && grep -q '"not_found"' "$WORK/missing.out" "$WORK/missing.err"; then
  ok "buf curl GetUser of an unknown id fails with not_found (exit 40)"
else
  not_ok "buf curl GetUser of an unknown id fails with not_found (exit 40)" \
    "exit $RC: $(oneline "$WORK/missing.out") $(oneline "$WORK/missing.err")"
fi
bufcurl health -d '{}' "$URL/grpc.health.v1.Health/Check"
if (( RC == 0 )) && [[ $(json_get "$WORK/health.out" 'j["status"]' || true) == SERVING ]]; then
  ok "buf curl grpc.health.v1.Health/Check is SERVING"
else
  not_ok "buf curl grpc.health.v1.Health/Check is SERVING" \
    "exit $RC: $(oneline "$WORK/health.out") $(oneline "$WORK/health.err")"
fi

# --- (a) health, Watch through SIGTERM ---------------------------------------------------
echo "# (a) grpcio-health-checking: Watch, then SIGTERM"
run_py watch-shutdown --pid "$SERVE_PID"
for _ in $(seq 150); do alive "$SERVE_PID" || break; sleep 0.1; done
if alive "$SERVE_PID"; then
  kill -TERM "$SERVE_PID" 2>/dev/null || true   # in case the client never sent it
  for _ in $(seq 100); do alive "$SERVE_PID" || break; sleep 0.1; done
fi
if alive "$SERVE_PID"; then
  kill -KILL "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""
  not_ok "rawgrpc serve exits after SIGTERM" "still running 15 s after it"
else
  RC=0; wait "$SERVE_PID" || RC=$?; SERVE_PID=""
  if (( RC == 0 )); then ok "rawgrpc serve drains and exits 0 after SIGTERM"
  else not_ok "rawgrpc serve drains and exits 0 after SIGTERM" "exit status $RC; log: $(oneline "$WORK/serve.log")"; fi
fi
(( FAILED == 0 )) || sed 's/^/# /' "$WORK/serve.log" | tail -n 20
