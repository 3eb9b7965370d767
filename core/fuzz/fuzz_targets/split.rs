#![no_main]
//! See `checks/split.rs`.

#[path = "../checks/split.rs"]
mod split;

libfuzzer_sys::fuzz_target!(|input: &[u8]| split::check(input));
