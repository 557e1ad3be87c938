//! The properties the fuzz targets check, one module per target. Each module is also
//! compiled into `shared/cabital/tests/fuzz_regressions.rs`, which replays the kept
//! inputs of `fuzz/regressions/` in the normal `cargo test` run.

pub mod validate_case;
pub mod webhook;
