//! Fuzz target `grpc_timeout`: see `rawgrpc::fuzz_targets::grpc_timeout` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rawgrpc::fuzz_targets::grpc_timeout(data));
