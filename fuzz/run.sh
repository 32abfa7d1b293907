#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after the other, on a copy of the
# committed seed corpus, and prints one line of libFuzzer's final numbers per target.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Installs cargo-fuzz (pinned) if it is missing and builds the targets on the stable
# toolchain without a sanitizer (see fuzz/README.md). Exits non-zero if any target found a
# crash, a timeout (-timeout=10 s per input) or an OOM (-rss_limit_mb=2048); the reproducers
# are copied to fuzz/artifacts/TARGET/. The committed corpus is never modified.
#
# Environment:
#   FUZZ_SANITIZER=address   build with AddressSanitizer (sets RUSTC_BOOTSTRAP=1; slower)
#   FUZZ_KEEP_CORPUS=DIR     keep each target's grown corpus in DIR/TARGET instead of deleting it
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
DURATION=${1:-60}
shift || true

cd "$(dirname "$0")"
FUZZ_DIR=$(pwd)

ALL_TARGETS=(frame_decoder grpc_timeout grpc_message base64_metadata protobuf_requests gzip_decompress server_connection wire_tracer)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

max_len() {
    case "$1" in
        grpc_timeout) echo 64 ;;
        grpc_message | base64_metadata) echo 1024 ;;
        frame_decoder | protobuf_requests) echo 4096 ;;
        gzip_decompress | server_connection | wire_tracer) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

SANITIZER=${FUZZ_SANITIZER:-none}
TARGET_DIR="$FUZZ_DIR/target"
if [ "$SANITIZER" != none ]; then
    # Sanitizers need -Zsanitizer: a nightly flag, allowed on stable by RUSTC_BOOTSTRAP.
    export RUSTC_BOOTSTRAP=1
    # Other RUSTFLAGS: build beside the plain build instead of over it.
    TARGET_DIR="$FUZZ_DIR/target/$SANITIZER"
fi

# -O: cargo-fuzz adds no -C debug-assertions/overflow-checks of its own; the [profile.release]
# of fuzz/Cargo.toml turns them on for every crate but quick-protobuf (see that file).
echo "== building (sanitizer: $SANITIZER)"
cargo fuzz build -O --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR"

HOST=$(rustc -vV | sed -n 's/^host: //p')
BIN_DIR="$TARGET_DIR/$HOST/release"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

failed=()
summary=()
for target in "${TARGETS[@]}"; do
    corpus="$WORK/corpus/$target"
    artifacts="$WORK/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$FUZZ_DIR/corpus/$target" ]; then
        cp -R "$FUZZ_DIR/corpus/$target/." "$corpus/"
    fi
    log="$WORK/$target.log"
    echo "== $target: ${DURATION}s"
    start=$(date +%s)
    status=0
    "$BIN_DIR/$target" "$corpus" \
        -max_total_time="$DURATION" \
        -rss_limit_mb=2048 \
        -timeout=10 \
        -max_len="$(max_len "$target")" \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - start))

    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    execs=$(stat number_of_executed_units)
    rate=$(stat average_exec_per_sec)
    rss=$(stat peak_rss_mb)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")

    result=ok
    if [ "$status" -ne 0 ] || [ -n "$(ls -A "$artifacts")" ]; then
        result="FAILED (exit $status)"
        failed+=("$target")
        mkdir -p "$FUZZ_DIR/artifacts/$target"
        cp -R "$artifacts/." "$FUZZ_DIR/artifacts/$target/" 2>/dev/null || true
        cp "$log" "$FUZZ_DIR/artifacts/$target/libfuzzer.log"
        grep -E -m1 -A12 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" || tail -30 "$log"
        echo "   reproducers and log: fuzz/artifacts/$target/"
    fi
    if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
        mkdir -p "$FUZZ_KEEP_CORPUS/$target"
        cp -R "$corpus/." "$FUZZ_KEEP_CORPUS/$target/"
    fi
    line=$(printf '%-18s execs=%-10s exec/s=%-7s cov=%-5s ft=%-6s corpus=%-10s rss=%sMB time=%ss %s' \
        "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$elapsed" "$result")
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary (${DURATION}s per target)"
printf '%s\n' "${summary[@]}"
echo "fuzz: $(( ${#TARGETS[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
