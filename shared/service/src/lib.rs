//! The gateway's rules, once, for the three functions.
//!
//! - [`Gateway`]: create (idempotent on `externalCaseId`), read, ongoing screening,
//!   decision, and [`Gateway::refresh`], which applies Cabital's current state.
//! - [`webhook`]: verify, parse, store durably, refresh.
//! - [`reconcile`]: settle what no webhook settled.
//! - [`settings`]: the functions' settings, read once at a cold start, and
//!   [`Gateway::new`], which builds the clients from them.

mod error;
mod gateway;
pub mod reconcile;
pub mod settings;
mod views;
pub mod webhook;

pub use error::GatewayError;
pub use gateway::{Gateway, Refreshed, TimelineQuery, request_hash};
pub use reconcile::{ReconcileError, Summary};
pub use settings::{InitError, MAX_BODY_BYTES, MAX_NO_SUGGESTION_GIVE_UP, ReconcileSettings, Settings};
pub use settings::{WebhookAuth, WebhookSettings};
pub use views::{AttentionView, AwaitingCaseId, CASE_SYSTEM_ID_PENDING, CreateOutcome};
pub use views::{CaseView, CaseWithTimeline, Created, ErasureView, EventView, ExternalLookup, QueuedCase, WorkQueue};
pub use webhook::{Accepted, Delivery, RefreshOutcome, Verification, WebhookError};
