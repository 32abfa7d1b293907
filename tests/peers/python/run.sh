#!/usr/bin/env bash
# Interop test of rawgrpc against the article's Python grpcio code:
#   Part A: article_client.py   -> `rawgrpc serve`
#   Part B: the rawgrpc CLI      -> article_server.py
#   Part C: grpcio over TLS      -> `rawgrpc serve --tls-cert --tls-key` (openssl makes the certs)
# Prints `ok - ...` / `not ok - ...` per check, then exactly one
# `N passed, M failed` line; exits non-zero on any failure or error.
# Does not build rawgrpc: set RAWGRPC_BIN or build target/release/rawgrpc first.
# Hidden: `run.sh --python-only` runs the article client against the article
# server instead (checks the Python peers themselves; needs no binary).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="${RAWGRPC_PYVENV:-${TMPDIR:-/tmp}/rawgrpc-pyvenv}"
BIN="${RAWGRPC_BIN:-$ROOT/target/release/rawgrpc}"
PY="$VENV/bin/python"
PYTHON_ONLY=0; [[ "${1:-}" == --python-only ]] && PYTHON_ONLY=1

PASSED=0 FAILED=0 DIED=0
ok()     { echo "ok - $1"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $1: $2"; FAILED=$((FAILED + 1)); }
die()    { not_ok "$1" "$2"; DIED=1; exit 1; }

# The summary is printed by the EXIT trap so that it also comes out (as a
# failure) when `set -e` aborts the script half way.
WORK="$(mktemp -d)"; PIDS=()
finish() {
  local rc=$?
  (( rc == 0 || DIED )) || not_ok "run.sh" "aborted with status $rc"
  for p in ${PIDS[@]+"${PIDS[@]}"}; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  echo "$PASSED passed, $FAILED failed"
  exit $(( FAILED == 0 && rc == 0 ? 0 : 1 ))
}
trap finish EXIT

# --- helpers -----------------------------------------------------------------
oneline() { head -c 300 "$1" | tr '\n' ' '; }          # short excerpt for details
alive() {   # a zombie still answers `kill -0`, so read the state from /proc
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) && [[ $st != Z ]]
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_bg() {  # LOG CMD...: run CMD in the background, its pid in BG_PID
  local log=$1; shift
  "$@" >"$log" 2>&1 & BG_PID=$!; PIDS+=("$BG_PID")
}
wait_port() { # PORT PID: until PORT accepts TCP (10 s at most, while PID lives)
  local i
  for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    alive "$2" || return 1
    sleep 0.1
  done
  return 1
}
stop_gracefully() { # DESC PID LOG: SIGTERM, then require exit status 0 within 10 s
  local i rc=0
  kill -TERM "$2" 2>/dev/null || true
  for i in $(seq 100); do alive "$2" || break; sleep 0.1; done
  if alive "$2"; then
    kill -KILL "$2"; wait "$2" 2>/dev/null || true
    not_ok "$1" "still running 10 s after SIGTERM"; return
  fi
  wait "$2" || rc=$?
  if (( rc == 0 )); then ok "$1"; else not_ok "$1" "exit status $rc; log: $(oneline "$3")"; fi
}
show_log() { sed 's/^/# /' "$1" | tail -n 20; }

# --- Python venv and generated code ------------------------------------------
# Reused when it already holds exactly the pinned requirements (stamp file).
STAMP="$VENV/.rawgrpc-requirements.txt"
if ! cmp -s "$HERE/requirements.txt" "$STAMP" || ! "$PY" -c 'import grpc, grpc_tools.protoc' 2>/dev/null; then
  echo "# setting up Python venv in $VENV"
  python3 -m venv "$VENV" || die "python venv" "python3 -m venv $VENV failed"
  timeout 900 "$PY" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" \
    || die "python venv" "pip install -r requirements.txt failed"
  cp "$HERE/requirements.txt" "$STAMP"
fi
mkdir "$WORK/gen"
"$PY" -m grpc_tools.protoc -I "$ROOT/proto" --python_out="$WORK/gen" \
  --grpc_python_out="$WORK/gen" "$ROOT/proto/user.proto" \
  || die "protoc" "could not generate Python code from proto/user.proto"
export PYTHONPATH="$WORK/gen"

if (( ! PYTHON_ONLY )); then
  [[ -x "$BIN" ]] || die "rawgrpc binary" "$BIN not found (build it, or set RAWGRPC_BIN)"
fi

# --- Part A: the article's client against a server ----------------------------
run_article_client() { # ADDR: run it, echo its lines, count its ok/not ok lines
  local out="$WORK/client.out" rc=0 p f
  timeout 120 "$PY" "$HERE/article_client.py" --addr "$1" >"$out" 2>&1 || rc=$?
  cat "$out"
  p=$(grep -c '^ok ' "$out" || true); f=$(grep -c '^not ok ' "$out" || true)
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  # A crash or timeout may hide checks that never ran: count it as one failure.
  if (( rc != 0 && f == 0 )) || (( rc == 0 && p == 0 )); then
    not_ok "article_client.py" "exit status $rc (124 = timed out) with $f failed checks"
  fi
}

PORT=$(free_port)
if (( PYTHON_ONLY )); then
  echo "# Part A': article_client.py -> article_server.py on 127.0.0.1:$PORT"
  start_bg "$WORK/serve.log" "$PY" "$HERE/article_server.py" --addr "127.0.0.1:$PORT"
  NAME="article_server.py"
else
  echo "# Part A: article_client.py -> rawgrpc serve on 127.0.0.1:$PORT"
  start_bg "$WORK/serve.log" "$BIN" serve --addr "127.0.0.1:$PORT"
  NAME="rawgrpc serve"
fi
SERVE_PID=$BG_PID
if wait_port "$PORT" "$SERVE_PID"; then
  ok "$NAME accepts TCP on 127.0.0.1:$PORT"
  run_article_client "127.0.0.1:$PORT"
  stop_gracefully "$NAME exits 0 within 10 s of SIGTERM" "$SERVE_PID" "$WORK/serve.log"
else
  not_ok "$NAME accepts TCP on 127.0.0.1:$PORT" "exited, or not listening within 10 s"
fi
(( FAILED == 0 )) || show_log "$WORK/serve.log"
(( ! PYTHON_ONLY )) || exit 0

# --- Part B: the rawgrpc CLI against the article's server ---------------------
cli() { # NAME ARGS...: run the CLI; sets RC, output in $WORK/NAME.out / .err
  local name=$1; shift; RC=0
  timeout 20 "$BIN" "$@" --addr "127.0.0.1:$PORT2" >"$WORK/$name.out" 2>"$WORK/$name.err" || RC=$?
}
has_line() { sed 's/^[[:space:]]*//; s/[[:space:]]*$//' "$1" | grep -qxF -- "$2"; }
expect_user() { # DESC NAME EMAIL AGE [ID]: last CLI call exited 0 and printed that user
  local out="$WORK/$CALL.out" want missing=""
  if (( RC != 0 )); then not_ok "$1" "exit status $RC; stderr: $(oneline "$WORK/$CALL.err")"; return; fi
  for want in "name: \"$2\"" "email: \"$3\"" "age: $4" ${5:+"id: \"$5\""}; do
    has_line "$out" "$want" || missing+="[$want] "
  done
  if [[ -z $missing ]]; then ok "$1"; else not_ok "$1" "missing ${missing}in: $(oneline "$out")"; fi
}
expect_error() { # DESC TEXT...: last CLI call exited non-zero, stderr has every TEXT
  local desc=$1 err="$WORK/$CALL.err" t; shift
  if (( RC == 0 )); then not_ok "$desc" "exit status 0; stdout: $(oneline "$WORK/$CALL.out")"; return; fi
  for t in "$@"; do
    grep -qF -- "$t" "$err" || { not_ok "$desc" "stderr lacks '$t': $(oneline "$err")"; return; }
  done
  ok "$desc"
}

PORT2=$(free_port)
echo "# Part B: rawgrpc CLI -> article_server.py on 127.0.0.1:$PORT2"
start_bg "$WORK/pyserver.log" "$PY" "$HERE/article_server.py" --addr "127.0.0.1:$PORT2"
PYSERVER_PID=$BG_PID
if wait_port "$PORT2" "$PYSERVER_PID"; then
  ok "article_server.py accepts TCP on 127.0.0.1:$PORT2"

  CALL=create; cli $CALL create-user --name Grace --email grace@example.com --age 85
  expect_user "create-user prints the new user" Grace grace@example.com 85
  ID=$(sed -n 's/^[[:space:]]*id: "\(.*\)"[[:space:]]*$/\1/p' "$WORK/create.out" | head -n 1)
  if [[ -n $ID ]]; then ok "create-user prints the assigned id ($ID)"
  else not_ok "create-user prints the assigned id" "no id: line in: $(oneline "$WORK/create.out")"; fi

  CALL=get; cli $CALL get-user --id "${ID:-none}"
  expect_user "get-user returns the created user" Grace grace@example.com 85 "${ID:-none}"

  CALL=fixed1; cli $CALL create-user --id g-1 --name G --email g@example.com --age 1
  expect_user "create-user --id g-1 keeps the id" G g@example.com 1 g-1
  CALL=fixed2; cli $CALL create-user --id g-1 --name G --email g@example.com --age 1
  expect_error "second create-user --id g-1 fails with ALREADY_EXISTS" ALREADY_EXISTS

  CALL=missing; cli $CALL get-user --id missing-7
  expect_error "get-user of an unknown id fails with NOT_FOUND naming it" NOT_FOUND missing-7

  stop_gracefully "article_server.py exits 0 within 10 s of SIGTERM" "$PYSERVER_PID" "$WORK/pyserver.log"
else
  not_ok "article_server.py accepts TCP on 127.0.0.1:$PORT2" "exited, or not listening within 10 s"
  show_log "$WORK/pyserver.log"
fi

# --- Part C: grpcio over TLS -----------------------------------------------------
# A self-signed certificate for "localhost", made here with openssl, and a second one
# whose CA the client wrongly trusts.
echo "# Part C: grpcio over TLS -> rawgrpc serve --tls-cert/--tls-key"
if command -v openssl >/dev/null; then
  for name in good wrong; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost" -addext "basicConstraints=critical,CA:FALSE" -keyout "$WORK/$name.key" -out "$WORK/$name.pem" \
      >/dev/null 2>&1 || die "openssl" "could not make a test certificate"
  done
  PORT3=$(free_port)
  start_bg "$WORK/tls.log" "$BIN" serve --addr "127.0.0.1:$PORT3" \
    --tls-cert "$WORK/good.pem" --tls-key "$WORK/good.key"
  TLS_PID=$BG_PID
  if wait_port "$PORT3" "$TLS_PID"; then
    out="$WORK/tls.out"; rc=0
    timeout 60 "$PY" "$HERE/tls_client.py" --addr "127.0.0.1:$PORT3" \
      --ca "$WORK/good.pem" --wrong-ca "$WORK/wrong.pem" >"$out" 2>&1 || rc=$?
    cat "$out"
    PASSED=$((PASSED + $(grep -c '^ok ' "$out" || true)))
    FAILED=$((FAILED + $(grep -c '^not ok ' "$out" || true)))
    (( rc == 0 )) || grep -q '^not ok ' "$out" || not_ok "tls_client.py" "exit status $rc"
    CALL=tlscli; RC=0
    timeout 20 "$BIN" get-user --addr "127.0.0.1:$PORT3" --tls-ca "$WORK/good.pem" \
      --tls-server-name localhost --id nobody >"$WORK/$CALL.out" 2>"$WORK/$CALL.err" || RC=$?
    expect_error "rawgrpc get-user over TLS reaches the server (NOT_FOUND)" NOT_FOUND
    stop_gracefully "rawgrpc serve (TLS) exits 0 within 10 s of SIGTERM" "$TLS_PID" "$WORK/tls.log"
  else
    not_ok "rawgrpc serve (TLS) accepts TCP" "exited, or not listening within 10 s"
    show_log "$WORK/tls.log"
  fi
else
  not_ok "openssl" "not installed: cannot make a test certificate"
fi
