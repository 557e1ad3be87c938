//! The typed Cabital CaaS client.
//!
//! - [`models`]: cases, suggestions, decisions and the webhook body, with newtypes for
//!   ids, enums for closed sets and [`Pii`] around personal data.
//! - [`validate_new_case`] / [`validate_decision`]: what a partner submits, every bad
//!   field reported at once.
//! - [`CabitalClient`]: the five signed calls, with timeouts, jittered retries that
//!   honour `Retry-After`, and clock correction and secret refresh on 401 (the
//!   `client` feature, on by default); [`CabitalClient::within`] makes each call end
//!   by a [`Deadline`].

#[cfg(feature = "client")]
mod client;
mod deadline;
pub mod models;
mod validation;

#[cfg(feature = "client")]
pub use client::{Bounded, CabitalClient, CabitalError, ClientConfig, CreateAnswer, WARM_UP_TIMEOUT};
pub use deadline::Deadline;
pub use models::{
    BirthDate, Case, CaseSystemId, Comment, CountryCode, CutText, Decision, DecisionRequest, ExternalCaseId, Gender,
    IdError, IndividualInfo, MAX_STORED_COMMENT_BYTES, MalformedWebhook, NewCase, Pii, ScreenType, Suggestion,
    UnknownValue, WebhookNotification,
};
pub use validation::{
    FieldError, MAX_COMMENT_CHARS, MAX_ECHOED_FIELD_CHARS, MAX_FIELD_ERRORS, MAX_FULL_NAME_CHARS,
    MAX_ORGANIZATION_INFO_BYTES, ValidationErrors, validate_decision, validate_new_case,
};
