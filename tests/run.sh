#!/usr/bin/env bash
# The project's whole test suite, as README.md states it and .ci/run runs it.
#
# 1. formatting and lints (warnings are errors);
# 2. the release build (the binaries the peer tests and benchmarks use);
# 3. cargo test: unit tests beside the codecs, end-to-end tests in tests/ over real sockets;
# 4. real peers: Python grpcio against our server, our CLI against a grpcio server
#    (tests/peers/python/run.sh installs grpcio into a temporary venv);
# 5. gRPC's interop cases both ways: grpcio and grpc-js clients against our interop-server,
#    our interop-client against a grpcio TestService (tests/interop/run.sh);
# 6. stock tools against `rawgrpc serve`: grpcio-health-checking, grpcio-reflection with a
#    dynamic client, and `buf curl` (tests/peers/tools/run.sh);
# 7. the examples, run as a user would (examples/run.sh): server + client, streaming;
# 8. every fuzz target for 30 s on the committed corpus (fuzz/run.sh; the corpus and the
#    crash reproducers also run under `cargo test` in step 3, tests/fuzz_replay.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings
step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
step "cargo build --release"
cargo build --release
step "cargo test"
cargo test
step "real peers: the article's Python client and server (grpcio)"
tests/peers/python/run.sh
step "interop suite: grpcio and grpc-js against rawgrpc, rawgrpc against grpcio"
tests/interop/run.sh
step "stock tools: grpcio health checking and reflection, buf curl"
tests/peers/tools/run.sh
step "examples: the smallest server with the client example, the streaming example"
examples/run.sh
step "fuzzing: every cargo-fuzz target for 30 s (installs cargo-fuzz)"
fuzz/run.sh 30
