//! The gateway's failures, each with a stable code and the HTTP status that says
//! whether to retry.

use std::time::Duration;

use cabital_client::{CabitalError, ValidationErrors};
use gateway_runtime::Problem;
use kyc_store::StoreError;

/// A failure the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The submission breaks the API's rules (one entry per bad field).
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The same `externalCaseId` was already submitted with another body.
    #[error("externalCaseId already used with a different request")]
    ExternalIdConflict,
    /// The first create with this `externalCaseId` is still in flight.
    #[error("a create with this externalCaseId is in flight")]
    CreateInFlight,
    /// Cabital's answer to the create never came: it may or may not exist there.
    #[error("the outcome of the create at Cabital is unknown")]
    OutcomeUnknown,
    /// No such case in our records.
    #[error("case not found")]
    CaseNotFound,
    /// Cabital refused the request (a 4xx other than 429).
    #[error("Cabital refused the request with {status}")]
    CabitalRefused {
        /// Cabital's status.
        status: u16,
        /// Cabital's error code, when given.
        code: Option<String>,
    },
    /// Cabital is unavailable or rate limiting: try later.
    #[error("Cabital is unavailable")]
    CabitalUnavailable {
        /// When to retry.
        retry_after: Option<Duration>,
    },
    /// Cabital did not answer in time.
    #[error("Cabital did not answer in time")]
    CabitalTimeout,
    /// Cabital answered something unreadable, or our credentials are unusable.
    #[error("Cabital's answer was unusable: {0}")]
    CabitalBroken(String),
    /// The table could not be read or written.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<CabitalError> for GatewayError {
    fn from(e: CabitalError) -> Self {
        match &e {
            CabitalError::Status { status: 429 | 503, retry_after, .. } => {
                GatewayError::CabitalUnavailable { retry_after: *retry_after }
            }
            CabitalError::Status { status, .. } if *status >= 500 => {
                GatewayError::CabitalUnavailable { retry_after: None }
            }
            CabitalError::Status { status, code, .. } => {
                GatewayError::CabitalRefused { status: *status, code: code.clone() }
            }
            CabitalError::Timeout | CabitalError::Transport => GatewayError::CabitalTimeout,
            CabitalError::Connect => GatewayError::CabitalUnavailable { retry_after: None },
            CabitalError::Decode(_) | CabitalError::Credentials(_) => GatewayError::CabitalBroken(e.to_string()),
        }
    }
}

impl GatewayError {
    /// The stable code of this failure.
    pub fn code(&self) -> &'static str {
        self.problem().code
    }

    /// The `application/problem+json` body. A 5xx says nothing internal.
    pub fn problem(&self) -> Problem {
        match self {
            GatewayError::Validation(errs) => Problem::new(400, "validation_failed", "The request is invalid")
                .detail(format!("{} field(s) are invalid", errs.0.len()))
                .errors(errs.0.clone()),
            GatewayError::ExternalIdConflict => {
                Problem::new(409, "external_id_conflict", "externalCaseId already used")
                    .detail("This externalCaseId was submitted before with a different body; use a new id.")
            }
            GatewayError::CreateInFlight => Problem::new(409, "create_in_flight", "Create in progress")
                .detail("The first request with this externalCaseId is still being processed; retry later.")
                .retry_after(Duration::from_secs(2)),
            GatewayError::OutcomeUnknown => Problem::new(504, "cabital_outcome_unknown", "Outcome unknown").detail(
                "Cabital's answer to the create never came. The case is kept as unknown and will not be \
                     sent again; it is resolved when Cabital's webhook names it.",
            ),
            GatewayError::CaseNotFound => Problem::new(404, "case_not_found", "No such case"),
            GatewayError::CabitalRefused { status: 404, .. } => {
                Problem::new(404, "case_not_found_at_cabital", "Cabital does not know this case")
            }
            GatewayError::CabitalRefused { status: 409, .. } => {
                Problem::new(409, "cabital_conflict", "Cabital refused the request as a conflict")
            }
            GatewayError::CabitalRefused { status, code } => {
                Problem::new(502, "cabital_refused", "Cabital refused the request").detail(format!(
                    "Cabital answered {status}{}",
                    code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
                ))
            }
            GatewayError::CabitalUnavailable { retry_after } => {
                Problem::new(503, "cabital_unavailable", "Cabital is unavailable")
                    .retry_after(retry_after.unwrap_or(Duration::from_secs(5)))
            }
            GatewayError::CabitalTimeout => Problem::new(504, "cabital_timeout", "Cabital did not answer in time"),
            GatewayError::CabitalBroken(_) => Problem::new(502, "cabital_bad_answer", "Cabital's answer was unusable"),
            GatewayError::Store(e) if e.retryable() => {
                Problem::new(503, "store_unavailable", "The records are unavailable")
                    .retry_after(Duration::from_secs(1))
            }
            GatewayError::Store(_) => Problem::new(500, "internal_error", "Internal error"),
        }
    }
}
