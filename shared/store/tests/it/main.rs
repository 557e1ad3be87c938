//! gateway-store's integration tests, one binary: the SDK and the crate link once, not once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

mod backoff;
mod common;
mod created;
mod events;
mod index;
mod no_suggestion;
mod reservation;
mod retention;
mod table;
mod timeline;
mod versioning;
mod webhook;
