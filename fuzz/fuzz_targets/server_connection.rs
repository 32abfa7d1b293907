//! Fuzz target `server_connection`: see `rawgrpc::fuzz_targets::server_connection` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rawgrpc::fuzz_targets::server_connection(data));
