//! libFuzzer on the `manifest` target of `tests/fuzz/targets.rs` (`tools/fuzz.sh manifest`).
#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::manifest(data));
