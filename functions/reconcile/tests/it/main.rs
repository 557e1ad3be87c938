//! reconcile's integration tests, one binary: the SDK and the crate link once, not once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

mod backlog;
mod backoff;
mod common;
mod converge;
mod creations;
mod deadline;
mod failures;
mod no_suggestion;
mod sizing;
