//! One error type for every store operation, with whether a retry may help.
//!
//! Messages name ids, attribute names and DynamoDB error codes, never attribute values:
//! values can hold personal data.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item in a state it does not accept (another token
    /// holds the reservation, the item is in the wrong state, ...). Retrying the same call
    /// will not help.
    #[error("condition failed: {0}")]
    ConditionFailed(String),
    /// The case changed since the caller read it (`version` is no longer the one given).
    /// Re-read the case, re-apply, retry.
    #[error("version conflict on case {case_system_id}: expected version {expected}")]
    VersionConflict {
        /// The case that changed.
        case_system_id: gateway_cabital::CaseSystemId,
        /// The version the caller expected.
        expected: u64,
    },
    /// The item the operation needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Another transaction was writing the same items; the SDK retried and gave up.
    #[error("transaction conflict")]
    TransactionConflict,
    /// DynamoDB throttled the request; the SDK retried and gave up.
    #[error("throttled by DynamoDB")]
    Throttled,
    /// Any other DynamoDB or transport error, by code.
    #[error("DynamoDB error {code} (retryable: {retryable}): {message}")]
    Service {
        /// The DynamoDB error code, or a transport failure kind (`Timeout`, `Dispatch`, ...).
        code: String,
        /// Whether a later retry may succeed.
        retryable: bool,
        /// DynamoDB's message (it names expressions and attributes, not values).
        message: String,
    },
    /// An item that cannot be read back as what it should be.
    #[error("corrupt item: {0}")]
    Corrupt(String),
    /// A timeline cursor that this store did not hand out.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The caller passed something the store refuses (a malformed hash, mismatched ids).
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether retrying the operation (after re-reading, for a version conflict) may
    /// succeed.
    pub fn retryable(&self) -> bool {
        match self {
            StoreError::VersionConflict { .. } | StoreError::TransactionConflict | StoreError::Throttled => true,
            StoreError::Service { retryable, .. } => *retryable,
            StoreError::ConditionFailed(_)
            | StoreError::NotFound(_)
            | StoreError::Corrupt(_)
            | StoreError::InvalidCursor
            | StoreError::Invalid(_) => false,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        StoreError::Corrupt(what.into())
    }

    pub(crate) fn build(err: impl std::fmt::Display) -> Self {
        StoreError::Service { code: "RequestBuild".into(), retryable: false, message: err.to_string() }
    }
}

/// DynamoDB error codes that mean "slow down".
const THROTTLING_CODES: &[&str] =
    &["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"];

/// DynamoDB error codes worth a later retry besides throttling.
const RETRYABLE_CODES: &[&str] = &[
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Maps any SDK error by its DynamoDB code. Operation-specific meanings (a failed
/// condition that means a version conflict) are applied by the caller.
pub(crate) fn from_sdk<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => from_code(service.err().code(), service.err().message()),
        SdkError::TimeoutError(_) => transport("Timeout", true, &err),
        SdkError::DispatchFailure(failure) => {
            // A request that broke in flight is safe to retry, because every write here
            // is conditional; a "user" failure (bad configuration) is not.
            let retryable = !failure.is_user();
            transport("Dispatch", retryable, &err)
        }
        SdkError::ResponseError(_) => transport("Response", true, &err),
        SdkError::ConstructionFailure(_) => transport("Construction", false, &err),
        _ => transport("Unknown", false, &err),
    }
}

fn transport<E, R>(code: &str, retryable: bool, err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    StoreError::Service { code: code.into(), retryable, message: truncate(message) }
}

fn from_code(code: Option<&str>, message: Option<&str>) -> StoreError {
    let code = code.unwrap_or("Unknown");
    let message = truncate(message.unwrap_or_default().to_owned());
    match code {
        "ConditionalCheckFailedException" => StoreError::ConditionFailed(message),
        "TransactionConflictException" => StoreError::TransactionConflict,
        c if THROTTLING_CODES.contains(&c) => StoreError::Throttled,
        c => StoreError::Service { code: c.to_owned(), retryable: RETRYABLE_CODES.contains(&c), message },
    }
}

fn truncate(mut message: String) -> String {
    const MAX: usize = 300;
    if message.len() > MAX {
        let mut cut = MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// Why a transaction was cancelled, one code per action in request order (`None` for
/// an action that was fine).
#[derive(Debug, Clone)]
pub(crate) struct CancellationReasons(pub(crate) Vec<String>);

impl CancellationReasons {
    /// Whether the action at `index` failed its condition.
    pub(crate) fn condition_failed(&self, index: usize) -> bool {
        self.0.get(index).is_some_and(|c| c == "ConditionalCheckFailed")
    }

    /// Whether any action conflicted with another transaction or was throttled: the
    /// whole transaction may succeed if tried again.
    pub(crate) fn transient(&self) -> bool {
        self.0.iter().any(|c| is_transient_reason(c))
    }

    /// The error for a cancellation the caller has no specific meaning for.
    pub(crate) fn into_error(self) -> StoreError {
        if let Some(i) = self.0.iter().position(|c| c == "ConditionalCheckFailed") {
            return StoreError::ConditionFailed(format!("transaction action {i} failed its condition"));
        }
        if self.0.iter().any(|c| c == "TransactionConflict") {
            return StoreError::TransactionConflict;
        }
        if self.0.iter().any(|c| c == "ThrottlingError" || c == "ProvisionedThroughputExceeded") {
            return StoreError::Throttled;
        }
        StoreError::Service {
            code: "TransactionCanceledException".into(),
            retryable: false,
            message: format!("cancellation reasons: [{}]", self.0.join(", ")),
        }
    }
}

/// A cancellation reason code that says "try again later".
pub(crate) fn is_transient_reason(code: &str) -> bool {
    matches!(code, "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded")
}

/// The outcome of a failed transaction: cancelled with per-action reasons, or another
/// error.
#[derive(Debug)]
pub(crate) enum TxError {
    Cancelled(CancellationReasons),
    Other(StoreError),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Other(e)
    }
}

impl TxError {
    /// The plain error, for callers with no use for the reasons.
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            TxError::Cancelled(r) => r.into_error(),
            TxError::Other(e) => e,
        }
    }
}

pub(crate) fn from_transact<R: std::fmt::Debug>(err: SdkError<TransactWriteItemsError, R>) -> TxError {
    if let SdkError::ServiceError(service) = &err
        && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
    {
        let codes = cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect();
        return TxError::Cancelled(CancellationReasons(codes));
    }
    TxError::Other(from_sdk(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_variants() {
        assert!(matches!(from_code(Some("ConditionalCheckFailedException"), None), StoreError::ConditionFailed(_)));
        assert!(matches!(from_code(Some("ProvisionedThroughputExceededException"), None), StoreError::Throttled));
        assert!(matches!(from_code(Some("TransactionConflictException"), None), StoreError::TransactionConflict));
        let e = from_code(Some("InternalServerError"), Some("boom"));
        assert!(e.retryable());
        let e = from_code(Some("ValidationException"), Some("bad"));
        assert!(!e.retryable());
        assert!(matches!(e, StoreError::Service { ref code, .. } if code == "ValidationException"));
    }

    #[test]
    fn cancellation_reasons_pick_the_most_specific_error() {
        let r = CancellationReasons(vec!["None".into(), "ConditionalCheckFailed".into()]);
        assert!(r.condition_failed(1));
        assert!(!r.condition_failed(0));
        assert!(!r.transient());
        assert!(matches!(r.into_error(), StoreError::ConditionFailed(_)));
        let r = CancellationReasons(vec!["TransactionConflict".into(), "None".into()]);
        assert!(r.transient());
        assert!(matches!(r.into_error(), StoreError::TransactionConflict));
        let r = CancellationReasons(vec!["ValidationError".into()]);
        assert!(matches!(r.into_error(), StoreError::Service { retryable: false, .. }));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let m = truncate("é".repeat(400));
        assert!(m.len() <= 304);
        assert!(m.ends_with('…'));
    }
}
