//! The gateway's failures, each with a stable code and the HTTP status that says
//! whether to retry.

use std::time::Duration;

use gateway_cabital::{CabitalError, ValidationErrors};
use gateway_runtime::{ErrorCode, Problem, Surface};
use gateway_store::StoreError;

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
            // Not sent: no time was left for it, or no connection. Either way, later.
            CabitalError::Connect | CabitalError::NoTimeLeft => GatewayError::CabitalUnavailable { retry_after: None },
            CabitalError::Decode(_) | CabitalError::Credentials(_) => GatewayError::CabitalBroken(e.to_string()),
        }
    }
}

impl GatewayError {
    /// The stable code of this failure; its status and title are the code's.
    pub fn code(&self) -> ErrorCode {
        match self {
            GatewayError::Validation(_) => ErrorCode::ValidationFailed,
            GatewayError::ExternalIdConflict => ErrorCode::ExternalIdConflict,
            GatewayError::CreateInFlight => ErrorCode::CreateInFlight,
            GatewayError::OutcomeUnknown => ErrorCode::CabitalOutcomeUnknown,
            GatewayError::CaseNotFound => ErrorCode::CaseNotFound,
            GatewayError::CabitalRefused { status: 404, .. } => ErrorCode::CaseNotFoundAtCabital,
            GatewayError::CabitalRefused { status: 409, .. } => ErrorCode::CabitalConflict,
            GatewayError::CabitalRefused { .. } => ErrorCode::CabitalRefused,
            GatewayError::CabitalUnavailable { .. } => ErrorCode::CabitalUnavailable,
            GatewayError::CabitalTimeout => ErrorCode::CabitalTimeout,
            GatewayError::CabitalBroken(_) => ErrorCode::CabitalBadAnswer,
            GatewayError::Store(e) if e.retryable() => ErrorCode::StoreUnavailable,
            GatewayError::Store(_) => ErrorCode::InternalError,
        }
    }

    /// The cases API's `application/problem+json` body. A 5xx says nothing internal.
    pub fn problem(&self) -> Problem {
        let problem = self.code().problem(Surface::CasesApi);
        match self {
            GatewayError::Validation(errs) => {
                problem.detail(format!("{} field(s) are invalid", errs.0.len())).errors(errs.0.clone())
            }
            GatewayError::ExternalIdConflict => {
                problem.detail("This externalCaseId was submitted before with a different body; use a new id.")
            }
            GatewayError::CreateInFlight => problem
                .detail("The first request with this externalCaseId is still being processed; retry later.")
                .retry_after(Duration::from_secs(2)),
            GatewayError::OutcomeUnknown => problem.detail(
                "Cabital's answer to the create never came. The case is kept as unknown and will not be \
                     sent again; it is resolved when Cabital's webhook names it.",
            ),
            GatewayError::CabitalRefused { status, code } if !matches!(status, 404 | 409) => problem.detail(format!(
                "Cabital answered {status}{}",
                code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
            )),
            GatewayError::CabitalUnavailable { retry_after } => {
                problem.retry_after(retry_after.unwrap_or(Duration::from_secs(5)))
            }
            GatewayError::Store(e) if e.retryable() => problem.retry_after(Duration::from_secs(1)),
            _ => problem,
        }
    }
}
