//! Fuzz target `easemesh_body`: see `adapters::fuzzing::easemesh_body` for what it decodes and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::easemesh_body(data));
