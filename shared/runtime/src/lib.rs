//! What the three functions share at start and at the edge.
//!
//! - [`settings`]: how settings are read from the environment (a missing or bad one stops
//!   the cold start with a message naming it), and how to reach Cabital and AWS.
//! - [`logging`]: JSON logs, one line per event.
//! - [`problem`]: `application/problem+json` responses with stable codes.
//! - [`metrics`]: CloudWatch embedded metric format lines.

pub mod logging;
pub mod metrics;
pub mod problem;
pub mod settings;

pub use problem::{ErrorCode, Problem, Surface};
pub use settings::{CabitalSettings, Env, SettingError};

/// The current time, in UTC.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
