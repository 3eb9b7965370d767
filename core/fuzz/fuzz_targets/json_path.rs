#![no_main]
//! See `checks/json_path.rs`.

#[path = "../checks/json_path.rs"]
mod json_path;

libfuzzer_sys::fuzz_target!(|input: &[u8]| json_path::check(input));
