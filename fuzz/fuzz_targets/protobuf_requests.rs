//! Fuzz target `protobuf_requests`: see `rawgrpc::fuzz_targets::protobuf_requests` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rawgrpc::fuzz_targets::protobuf_requests(data));
