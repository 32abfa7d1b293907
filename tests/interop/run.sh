#!/usr/bin/env bash
# gRPC interop matrix: rawgrpc against reference peers, with the cases of grpc's
# doc/interop-test-descriptions.md.
#   Part A: interop_client.py (grpcio), every case -> our interop-server
#   Part B: our interop-client, every case         -> interop_server.py (grpcio)
#   Part C: interop_client.js (grpc-js), its subset -> our interop-server
# Prints `ok - PART CASE` or `not ok - PART CASE` (plus the output's last lines)
# per case, then exactly one `N passed, M failed` line; exits 1 if any failed.
#
# Usage: run.sh [--part A|B|C] [--case NAME] [--proto-root DIR] [--self-test]
#   --self-test  interop_client.py and interop_client.js against interop_server.py:
#                checks the reference peers themselves, needs no Rust binary.
# Environment:
#   RAWGRPC_INTEROP_SERVER / RAWGRPC_INTEROP_CLIENT  paths of our binaries (default
#       target/release/interop-server / interop-client; this script builds nothing)
#   RAWGRPC_INTEROP_CASE_TIMEOUT  seconds one client run may take (default 60)
#   RAWGRPC_INTEROP_VENV  Python venv, created once and reused while it matches
#       requirements.txt (default $TMPDIR/rawgrpc-interop-venv)
# Node packages go to tests/interop/node_modules (git-ignored), reinstalled only
# when package-lock.json changes. Everything runs on 127.0.0.1 and under `timeout`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${RAWGRPC_INTEROP_VENV:-${TMPDIR:-/tmp}/rawgrpc-interop-venv}"
PY="$VENV/bin/python"
SERVER_BIN="${RAWGRPC_INTEROP_SERVER:-$ROOT/target/release/interop-server}"
CLIENT_BIN="${RAWGRPC_INTEROP_CLIENT:-$ROOT/target/release/interop-client}"
CASE_TIMEOUT="${RAWGRPC_INTEROP_CASE_TIMEOUT:-60}" # s per client run; its calls have 30 s deadlines

# The same .proto files rawgrpc's build.rs compiles.
PROTO_ROOT="$ROOT/proto"

PY_CASES=(empty_unary large_unary client_compressed_unary server_compressed_unary
  client_streaming client_compressed_streaming server_streaming server_compressed_streaming
  ping_pong empty_stream timeout_on_sleeping_server cancel_after_begin
  cancel_after_first_response custom_metadata status_code_and_message
  special_status_message unimplemented_method unimplemented_service)
# interop_client.js leaves out the compression cases (see README.md).
NODE_CASES=(empty_unary large_unary client_streaming server_streaming ping_pong
  empty_stream timeout_on_sleeping_server cancel_after_begin cancel_after_first_response
  custom_metadata status_code_and_message special_status_message unimplemented_method
  unimplemented_service)

usage() { echo "run.sh: $1 (usage: run.sh [--part A|B|C] [--case NAME] [--proto-root DIR] [--self-test])" >&2; exit 2; }
PARTS=(A B C) ONLY_CASE=""
while (( $# )); do
  case $1 in
    --part) [[ ${2:-} =~ ^[ABC]$ ]] || usage "--part takes A, B or C"; PARTS=("$2"); shift 2 ;;
    --case) [[ " ${PY_CASES[*]} " == *" ${2:-} "* ]] || usage "unknown case '${2:-}'"; ONLY_CASE=$2; shift 2 ;;
    --proto-root) PROTO_ROOT=$(cd "${2:?}" && pwd); shift 2 ;;
    --self-test) PARTS=(self-python self-node); shift ;;
    *) usage "unknown argument '$1'" ;;
  esac
done
[[ -f $PROTO_ROOT/grpc/testing/test.proto ]] || usage "no grpc/testing/test.proto under $PROTO_ROOT"

PASSED=0 FAILED=0
ok()     { echo "ok - $1"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $1${2:+: $2}"; FAILED=$((FAILED + 1)); }

# The summary comes from the EXIT trap so that it is printed (as a failure) even
# when `set -e` stops the script half way.
WORK="$(mktemp -d)" SRV_PID=""
finish() {
  local rc=$?
  (( rc == 0 )) || not_ok "run.sh" "aborted with status $rc"
  [[ -z $SRV_PID ]] || kill -KILL "$SRV_PID" 2>/dev/null || true
  rm -rf "$WORK"
  echo "$PASSED passed, $FAILED failed"
  exit $(( FAILED == 0 ? 0 : 1 ))
}
trap finish EXIT
setup_failed() { not_ok "setup" "$1"; exit 0; }   # counted; the trap then exits 1

# Keep any configured HTTP proxy away from our loopback connections.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

# --- setup: Python venv, generated messages, Node packages --------------------
STAMP="$VENV/.rawgrpc-interop-requirements.txt"
if ! cmp -s "$HERE/requirements.txt" "$STAMP" || ! timeout 60 "$PY" -c 'import grpc, grpc_tools.protoc' 2>/dev/null; then
  echo "# setting up the Python venv in $VENV"
  timeout 300 python3 -m venv "$VENV" || setup_failed "python3 -m venv $VENV failed"
  timeout 900 "$PY" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" \
    || setup_failed "pip install -r tests/interop/requirements.txt failed"
  cp "$HERE/requirements.txt" "$STAMP"
fi
# Only message modules are needed: the scripts build their calls by method path
# (see interop_common.py), so no *_pb2_grpc.py.
mkdir "$WORK/gen"
(cd "$PROTO_ROOT" && timeout 120 "$PY" -m grpc_tools.protoc -I . --python_out="$WORK/gen" \
  grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto) \
  || setup_failed "protoc could not compile grpc/testing/*.proto under $PROTO_ROOT"
export PYTHONPATH="$WORK/gen" PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the tree

if [[ " ${PARTS[*]} " == *" C "* || " ${PARTS[*]} " == *" self-node "* ]]; then
  { command -v node && command -v npm; } >/dev/null || setup_failed "node and npm are needed for the Node client"
  if ! cmp -s "$HERE/package-lock.json" "$HERE/node_modules/.rawgrpc-package-lock.json"; then
    echo "# installing the Node client's packages into tests/interop/node_modules"
    (cd "$HERE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1) \
      || { tail -n 20 "$WORK/npm.log" | sed 's/^/# /'; setup_failed "npm ci failed"; }
    cp "$HERE/package-lock.json" "$HERE/node_modules/.rawgrpc-package-lock.json"
  fi
fi

# --- servers -------------------------------------------------------------------
alive() {  # a zombie still answers `kill -0`, so read the state from /proc
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) && [[ $st != Z ]]
}
free_port() { timeout 20 "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_server() { # CMD...: start it on a fresh port, wait (10 s at most) until it accepts TCP
  PORT=$(free_port)
  echo "# started: $* --port $PORT --use_tls=false" >"$SRV_LOG"
  "$@" --port "$PORT" --use_tls=false >>"$SRV_LOG" 2>&1 & SRV_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    alive "$SRV_PID" || break
    sleep 0.1
  done
  stop_server; return 1
}
stop_server() { # SIGTERM, 10 s to exit, then SIGKILL; a bad exit is only reported
  local rc=0
  [[ -n $SRV_PID ]] || return 0
  kill -TERM "$SRV_PID" 2>/dev/null || true
  for _ in $(seq 100); do alive "$SRV_PID" || break; sleep 0.1; done
  alive "$SRV_PID" && { kill -KILL "$SRV_PID"; echo "# warning: server still running 10 s after SIGTERM, killed"; }
  wait "$SRV_PID" 2>/dev/null || rc=$?
  (( rc == 0 || rc == 137 )) || echo "# warning: server exited with status $rc"
  SRV_PID=""
}
tail_of() { tail -n "${2:-15}" "$1" | sed 's/^/#   /'; }

# --- one part: CLIENT_CMD against SERVER_CMD, case by case ----------------------
# A server that dies fails the case it died in and is restarted for the next one;
# a server that does not start fails the rest of the part without more tries.
run_part() { # PART DESCRIPTION "CASE..." [BINARY_THAT_MUST_EXIST]
  local part=$1 cases=$3 need c rc log broken=""
  for need in "${@:4}"; do
    [[ -x $need ]] || broken="missing $need (cargo build --release, or set RAWGRPC_INTEROP_SERVER/CLIENT)"
  done
  SRV_LOG="$WORK/server-$part.log"
  echo "# part $part: $2"
  for c in $cases; do
    [[ -z $ONLY_CASE || $c == "$ONLY_CASE" ]] || continue
    if [[ -z $broken && -z $SRV_PID ]] && ! start_server "${SERVER_CMD[@]}"; then
      broken="the server did not start listening within 10 s"; tail_of "$SRV_LOG"
    fi
    if [[ -n $broken ]]; then not_ok "$part $c" "$broken"; continue; fi
    log="$WORK/$part-$c.log"; rc=0
    timeout "$CASE_TIMEOUT" "${CLIENT_CMD[@]}" --server_host 127.0.0.1 --server_port "$PORT" \
      --test_case "$c" --use_tls=false >"$log" 2>&1 || rc=$?
    if ! alive "$SRV_PID"; then
      wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
      not_ok "$part $c" "server died during the case (client exit status $rc)"
      tail_of "$log"; tail_of "$SRV_LOG"
    elif (( rc == 0 )); then
      ok "$part $c"
    else
      not_ok "$part $c" "client exit status $rc$( (( rc == 124 )) && echo ", timed out after ${CASE_TIMEOUT}s")"
      tail_of "$log"
    fi
  done
  stop_server
}

PY_CLIENT=("$PY" "$HERE/interop_client.py")
PY_SERVER=("$PY" "$HERE/interop_server.py")
NODE_CLIENT=(node "$HERE/interop_client.js" --proto_root "$PROTO_ROOT")
for part in "${PARTS[@]}"; do
  case $part in
    A) CLIENT_CMD=("${PY_CLIENT[@]}") SERVER_CMD=("$SERVER_BIN")
       run_part A "interop_client.py -> $SERVER_BIN" "${PY_CASES[*]}" "$SERVER_BIN" ;;
    B) CLIENT_CMD=("$CLIENT_BIN") SERVER_CMD=("${PY_SERVER[@]}")
       run_part B "$CLIENT_BIN -> interop_server.py" "${PY_CASES[*]}" "$CLIENT_BIN" ;;
    C) CLIENT_CMD=("${NODE_CLIENT[@]}") SERVER_CMD=("$SERVER_BIN")
       run_part C "interop_client.js -> $SERVER_BIN" "${NODE_CASES[*]}" "$SERVER_BIN" ;;
    self-python) CLIENT_CMD=("${PY_CLIENT[@]}") SERVER_CMD=("${PY_SERVER[@]}")
       run_part self-python "interop_client.py -> interop_server.py" "${PY_CASES[*]}" ;;
    self-node) CLIENT_CMD=("${NODE_CLIENT[@]}") SERVER_CMD=("${PY_SERVER[@]}")
       run_part self-node "interop_client.js -> interop_server.py" "${NODE_CASES[*]}" ;;
  esac
done
(( PASSED + FAILED )) || not_ok "run.sh" "no case selected: $ONLY_CASE is not in part(s) ${PARTS[*]}"
