//! Fuzz target `grpc_message`: see `rawgrpc::fuzz_targets::grpc_message` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rawgrpc::fuzz_targets::grpc_message(data));
