//! Fuzz target `manifest`: see `adapters::fuzzing::manifest` for what it decodes and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::manifest(data));
