//! Fuzz target `wire_tracer`: see `rawgrpc::fuzz_targets::wire_tracer` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rawgrpc::fuzz_targets::wire_tracer(data));
