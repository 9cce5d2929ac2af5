//! libFuzzer on the `checkpoint` target of `tests/fuzz/targets.rs` (`tools/fuzz.sh checkpoint`).
#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::checkpoint(data));
