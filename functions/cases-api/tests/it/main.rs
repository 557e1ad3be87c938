//! cases-api's integration tests, one binary: the SDK and the crate link once, not once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

mod cabital_failures;
mod common;
mod create_answer;
mod deadline;
mod edges;
mod erasure;
mod evidence;
mod idempotency;
mod openapi;
mod queue;
mod retention;
mod routes;
mod smoke;
mod validation;
