//! Fuzz target `access_log_line`: see `adapters::fuzzing::access_log_line` for what it decodes and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::access_log_line(data));
