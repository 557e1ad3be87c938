//! Without `MOTO_ENDPOINT`, a test that needs moto fails loudly. The only test in this
//! binary, so removing the variable affects no other test.

#[test]
#[should_panic(expected = "MOTO_ENDPOINT is not set: run ./scripts/test.sh, which starts moto")]
fn a_missing_endpoint_panics_with_directions() {
    // SAFETY: this binary runs this one test; no other thread reads the environment.
    unsafe { std::env::remove_var("MOTO_ENDPOINT") };
    gateway_support::moto_endpoint();
}
