//! The benchmark driver behind `./bench/run.sh`.
//!
//! - [`runtime_api`]: a local Lambda Runtime API that times init and invocations.
//! - [`process`]: a function started as Lambda starts it; its peak RSS.
//! - [`fixtures`]: the repository's event fixtures, with fresh ids and signatures.
//! - [`measure`]: the runs against moto and the sandbox.
//! - [`instant_aws`]: the init's two AWS calls answered at once, for the functions' own init.
//! - [`results`] and [`report`]: what was measured, and the one table.

pub mod fixtures;
pub mod instant_aws;
pub mod measure;
pub mod process;
pub mod report;
pub mod results;
pub mod runtime_api;
