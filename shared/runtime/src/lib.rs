//! What the three functions share at start and at the edge.
//!
//! - [`settings`]: typed configuration read once from the environment; a missing or bad
//!   setting stops the cold start with a message naming it.
//! - [`logging`]: JSON logs, one line per event.
//! - [`problem`]: `application/problem+json` responses with stable codes.
//! - [`metrics`]: CloudWatch embedded metric format lines.

pub mod logging;
pub mod metrics;
pub mod problem;
pub mod settings;

pub use problem::{ErrorCode, Problem, Surface};
pub use settings::{CabitalSettings, SettingError};

/// The current time, in UTC.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
