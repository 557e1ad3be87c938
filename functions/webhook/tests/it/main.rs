//! webhook's integration tests, one binary: the SDK and the crate link once, not once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

mod common;
mod create_unknown;
mod end_to_end;
mod intake;
mod refusals;
mod replay;
mod rotation;
