//! gateway-sandbox's integration tests, one binary: the SDK and the crate link once, not once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

mod auth;
mod binary;
mod cases;
mod common;
mod control;
mod errors;
mod modes;
mod sign_fixture;
mod webhooks;
