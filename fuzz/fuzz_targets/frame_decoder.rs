//! Fuzz target `frame_decoder`: see `rawgrpc::fuzz_targets::frame_decoder` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rawgrpc::fuzz_targets::frame_decoder(data));
