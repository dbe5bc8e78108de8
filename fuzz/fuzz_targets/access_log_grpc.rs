//! Fuzz target `access_log_grpc`: see `adapters::fuzzing::access_log_grpc` for what it decodes and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::access_log_grpc(data));
