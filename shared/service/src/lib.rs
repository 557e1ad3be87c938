//! The gateway's rules, once, for the three functions.
//!
//! - [`Gateway`]: create (idempotent on `externalCaseId`), read, ongoing screening,
//!   decision, and [`Gateway::refresh`], which applies Cabital's current state.
//! - [`webhook`]: verify, parse, store durably, refresh.
//! - [`reconcile`]: settle what no webhook settled.

mod error;
mod gateway;
pub mod reconcile;
mod views;
pub mod webhook;

pub use error::GatewayError;
pub use gateway::{Gateway, Refreshed, TimelineQuery, request_hash};
pub use reconcile::MAX_NO_SUGGESTION_GIVE_UP;
pub use reconcile::{ReconcileError, ReconcileSettings, Summary};
pub use views::{AttentionView, AwaitingCaseId, CASE_SYSTEM_ID_PENDING, CreateOutcome};
pub use views::{CaseView, CaseWithTimeline, Created, EventView, ExternalLookup};
pub use webhook::{Accepted, Delivery, RefreshOutcome, Verification, WebhookAuth, WebhookError, WebhookSettings};
