//! libFuzzer on the `safetensors` target of `tests/fuzz/targets.rs` (`tools/fuzz.sh safetensors`).
#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::safetensors(data));
