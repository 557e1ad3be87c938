//! gateway-cabital's integration tests, one binary: the SDK and the crate link once, not once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]
// The client tests' futures (a deadline around every call) are deeper than the default limit.
#![recursion_limit = "256"]

mod client;
mod fuzz_regressions;
mod properties;
mod validation;
