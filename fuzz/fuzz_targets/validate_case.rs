//! Case and decision validation on arbitrary bytes read as JSON (see
//! `fuzz/src/validate_case.rs` for the properties).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gateway_fuzz::validate_case::check(data);
});
