//! Fuzz target `base64_metadata`: see `rawgrpc::fuzz_targets::base64_metadata` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rawgrpc::fuzz_targets::base64_metadata(data));
