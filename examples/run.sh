#!/usr/bin/env bash
# Runs the examples the way a user would, so that none of them rots:
#
# 1. builds them (release, into $CARGO_TARGET_DIR or target/);
# 2. starts `server` on a free port (it binds 127.0.0.1:0 and prints the address it got);
# 3. runs `client` against it: create, get back, NOT_FOUND, each checked by the client;
# 4. stops the server with SIGTERM and requires a graceful exit (status 0) within 10 s;
# 5. runs `streaming`, its own server and client in one process.
#
# Prints the examples' output, then one summary line; exits non-zero at the first failure.
# Needs nothing but cargo and bash. Every run is bounded, so a hang fails instead of stalling.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WORK="$(mktemp -d)"
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "examples: FAILED: $*" >&2
  if [[ -s $WORK/server.log ]]; then sed 's/^/  server| /' "$WORK/server.log" >&2; fi
  exit 1
}

# Waits for the background process PID to exit, killing it after SECS; returns its status.
await_exit() { # PID SECS
  local dog rc=0
  (
    for ((i = 0; i < $2; i++)); do sleep 1; kill -0 "$1" || exit 0; done
    kill -KILL "$1"
  ) >/dev/null 2>&1 &
  dog=$!
  wait "$1" || rc=$?
  kill "$dog" 2>/dev/null || true
  return "$rc"
}

cargo build --release --examples
BIN="${CARGO_TARGET_DIR:-target}/release/examples"
SECONDS=0

# The log exists before the server starts: the shell opens it in the child, which may run
# after the first `sed` below, and a missing file would end this script (set -e).
: >"$WORK/server.log"
"$BIN/server" 127.0.0.1:0 >>"$WORK/server.log" 2>&1 &
SERVER_PID=$!
ADDR=
for ((i = 0; i < 100; i++)); do
  ADDR="$(sed -n 's/.* listening on //p' "$WORK/server.log")"
  [[ -n $ADDR ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited before listening"
  sleep 0.1
done
[[ -n $ADDR ]] || fail "server not listening after 10 s"

"$BIN/client" "$ADDR" &
await_exit $! 30 || fail "client exited with status $?"

kill -TERM "$SERVER_PID"
await_exit "$SERVER_PID" 10 || fail "server exited with status $? after SIGTERM (137: no drain in 10 s)"
SERVER_PID=

"$BIN/streaming" &
await_exit $! 30 || fail "streaming exited with status $?"

echo "examples: ok - client against server, server graceful shutdown, streaming (${SECONDS}s)"
