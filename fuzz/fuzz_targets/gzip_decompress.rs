//! Fuzz target `gzip_decompress`: see `rawgrpc::fuzz_targets::gzip_decompress` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rawgrpc::fuzz_targets::gzip_decompress(data));
