//! libFuzzer on the `png` target of `tests/fuzz/targets.rs` (`tools/fuzz.sh png`).
#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::png(data));
