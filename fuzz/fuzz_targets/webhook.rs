//! The webhook's signature check and body parsing on arbitrary headers and bodies
//! (see `fuzz/src/webhook.rs` for the input format and the properties).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gateway_fuzz::webhook::check(data);
});
