//! Fuzz target `frame`: see `adapters::fuzzing::frame` for what it decodes and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::frame(data));
