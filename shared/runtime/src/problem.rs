//! `application/problem+json` (RFC 9457) with a stable `code` per failure, and every
//! code's status and title, once: [`ErrorCode`]. `docs/errors.md` and `docs/openapi.yaml`
//! list the same codes (the cases API's tests hold them equal).

use std::time::Duration;

use gateway_signing::VerifyError;
use serde::Serialize;

/// Which function answers: a code's title may differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The cases API (`/v1/cases...`), for partners.
    CasesApi,
    /// The webhook intake (`POST /webhooks/cabital`), for Cabital.
    Webhook,
}

const API: &[Surface] = &[Surface::CasesApi];
const HOOK: &[Surface] = &[Surface::Webhook];
const BOTH: &[Surface] = &[Surface::CasesApi, Surface::Webhook];

/// What Cabital's delivery log shows for every refused signature.
const SIGNATURE_REFUSED: &str = "The signature was refused";
/// What Cabital's delivery log shows for every webhook 503: it retries.
const NOT_STORED: &str = "Not stored; retry later";

/// One line per code: the enum, its list, and each code's text, status, title and where
/// it is answered, from one table.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $status:literal, $title:expr, $on:expr;)*) => {
        /// Every stable `code` an answer can carry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable code, as sent in `code` and at the end of `type`.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status.
            pub const fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// The functions that can answer it.
            pub const fn surfaces(self) -> &'static [Surface] {
                match self { $(ErrorCode::$variant => $on,)* }
            }

            const fn own_title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)* }
            }
        }
    };
}

error_codes! {
    /// The body breaks the API's rules; `errors[]` lists each bad field.
    ValidationFailed = "validation_failed", 400, "The request is invalid", API;
    /// The body is not JSON.
    MalformedJson = "malformed_json", 400, "The body is not valid JSON", API;
    /// The path's case id is not a UUID.
    InvalidCaseSystemId = "invalid_case_system_id", 400, "caseSystemId must be a UUID", API;
    /// `GET /v1/cases` without `?externalCaseId=`.
    MissingExternalCaseId = "missing_external_case_id", 400, "Give ?externalCaseId=...", API;
    /// `?externalCaseId=` is not a valid id.
    InvalidExternalCaseId = "invalid_external_case_id", 400, "externalCaseId is invalid", API;
    /// A timeline query parameter is out of range.
    InvalidQuery = "invalid_query", 400, "A query parameter is invalid", API;
    /// The webhook's body is not a case screening result.
    MalformedBody = "malformed_body", 400, "The body is not a case screening result", HOOK;
    /// A signature header is missing.
    MissingSignatureHeader = "missing_signature_header", 401, SIGNATURE_REFUSED, HOOK;
    /// `ACCESS-TIMESTAMP` is not whole seconds.
    BadTimestamp = "bad_timestamp", 401, SIGNATURE_REFUSED, HOOK;
    /// A signature outside the tolerance (the webhook takes a late one as a hint instead).
    TimestampOutOfTolerance = "timestamp_out_of_tolerance", 401, SIGNATURE_REFUSED, HOOK;
    /// `ACCESS-KEY` is not ours.
    UnknownKey = "unknown_key", 401, SIGNATURE_REFUSED, HOOK;
    /// `ACCESS-SIGN` is neither hex nor base64 of a SHA-256 HMAC.
    BadSignatureEncoding = "bad_signature_encoding", 401, SIGNATURE_REFUSED, HOOK;
    /// The signature matches no secret.
    SignatureMismatch = "signature_mismatch", 401, SIGNATURE_REFUSED, HOOK;
    /// No such case in our records.
    CaseNotFound = "case_not_found", 404, "No such case", API;
    /// Cabital does not know the case.
    CaseNotFoundAtCabital = "case_not_found_at_cabital", 404, "Cabital does not know this case", API;
    /// A notice names a case Cabital does not know.
    CaseUnknownToCabital = "case_unknown_to_cabital", 404, "Cabital does not know the case this notice names", HOOK;
    /// No such route.
    RouteNotFound = "route_not_found", 404, "No such route", API;
    /// A method the route does not serve.
    MethodNotAllowed = "method_not_allowed", 405, "Method not allowed", BOTH;
    /// The `externalCaseId` was submitted before with another body.
    ExternalIdConflict = "external_id_conflict", 409, "externalCaseId already used", API;
    /// The first create with this `externalCaseId` is still running.
    CreateInFlight = "create_in_flight", 409, "Create in progress", API;
    /// Cabital refused a call as a conflict.
    CabitalConflict = "cabital_conflict", 409, "Cabital refused the request as a conflict", API;
    /// The body is over the bound.
    BodyTooLarge = "body_too_large", 413, "The body is too large", BOTH;
    /// The body is not `application/json`.
    UnsupportedMediaType = "unsupported_media_type", 415, "The body must be application/json", API;
    /// A failure a retry will not fix; the body says nothing internal.
    InternalError = "internal_error", 500, "Internal error", BOTH;
    /// Cabital refused the request.
    CabitalRefused = "cabital_refused", 502, "Cabital refused the request", API;
    /// Cabital's answer was unreadable, or our credentials are unusable.
    CabitalBadAnswer = "cabital_bad_answer", 502, "Cabital's answer was unusable", API;
    /// Cabital is down or rate limiting.
    CabitalUnavailable = "cabital_unavailable", 503, "Cabital is unavailable", BOTH;
    /// DynamoDB is unavailable.
    StoreUnavailable = "store_unavailable", 503, "The records are unavailable", BOTH;
    /// The credentials to verify a webhook with could not be had.
    CredentialsUnavailable = "credentials_unavailable", 503, NOT_STORED, HOOK;
    /// Cabital did not answer in time.
    CabitalTimeout = "cabital_timeout", 504, "Cabital did not answer in time", API;
    /// Cabital's answer to a create never came: the case may exist there.
    CabitalOutcomeUnknown = "cabital_outcome_unknown", 504, "Outcome unknown", API;
}

impl ErrorCode {
    /// The title on `on`: the webhook's own where Cabital's delivery log reads better.
    pub const fn title(self, on: Surface) -> &'static str {
        match (self, on) {
            (ErrorCode::MethodNotAllowed, Surface::Webhook) => "Only POST",
            (ErrorCode::CabitalUnavailable | ErrorCode::StoreUnavailable, Surface::Webhook) => NOT_STORED,
            _ => self.own_title(),
        }
    }

    /// The problem answered on `on`.
    pub fn problem(self, on: Surface) -> Problem {
        Problem::new(self, on)
    }
}

impl From<&VerifyError> for ErrorCode {
    fn from(e: &VerifyError) -> Self {
        match e {
            VerifyError::MissingHeader(_) => ErrorCode::MissingSignatureHeader,
            VerifyError::BadTimestamp => ErrorCode::BadTimestamp,
            VerifyError::Expired { .. } => ErrorCode::TimestampOutOfTolerance,
            VerifyError::UnknownKey => ErrorCode::UnknownKey,
            VerifyError::BadEncoding => ErrorCode::BadSignatureEncoding,
            VerifyError::Mismatch => ErrorCode::SignatureMismatch,
        }
    }
}

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One error response. `code` is stable; `title` and `detail` are for people.
#[derive(Debug, Clone)]
pub struct Problem {
    /// A short summary.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// The stable, machine-readable code.
    pub code: &'static str,
    /// What happened, for a person. Never internal details on a 5xx, never personal data.
    pub detail: Option<String>,
    /// One entry per bad field, for validation failures.
    pub errors: Option<Vec<gateway_cabital::FieldError>>,
    /// Seconds to wait before retrying, also sent as `Retry-After`.
    pub retry_after: Option<Duration>,
}

/// `type` is this plus the code: a URN, since the codes are documented in the
/// repository (`docs/errors.md`), not at an address of ours.
pub const TYPE_BASE: &str = "urn:cabital-kyc-gateway:problem:";

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &format!("{TYPE_BASE}{}", self.code))?;
        m.serialize_entry("title", self.title)?;
        m.serialize_entry("status", &self.status)?;
        m.serialize_entry("code", self.code)?;
        if let Some(d) = &self.detail {
            m.serialize_entry("detail", d)?;
        }
        if let Some(e) = &self.errors {
            m.serialize_entry("errors", e)?;
        }
        if let Some(r) = &self.retry_after {
            m.serialize_entry("retryAfterSeconds", &r.as_secs().max(1))?;
        }
        m.end()
    }
}

impl Problem {
    /// The problem of a stable code, with the status and title the code has where it is
    /// answered.
    pub fn new(code: ErrorCode, on: Surface) -> Self {
        Problem {
            title: code.title(on),
            status: code.status(),
            code: code.as_str(),
            detail: None,
            errors: None,
            retry_after: None,
        }
    }

    /// Adds a detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds the per-field errors.
    pub fn errors(mut self, errors: Vec<gateway_cabital::FieldError>) -> Self {
        self.errors = Some(errors);
        self
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// The HTTP response.
    pub fn into_response(self) -> http::Response<String> {
        let body = serde_json::to_string(&self).unwrap_or_else(|_| String::from("{}"));
        let mut builder =
            http::Response::builder().status(self.status).header(http::header::CONTENT_TYPE, PROBLEM_JSON);
        if let Some(after) = self.retry_after {
            builder = builder.header(http::header::RETRY_AFTER, after.as_secs().max(1).to_string());
        }
        builder.body(body).unwrap_or_else(|_| {
            let mut r = http::Response::new(String::from("{}"));
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

/// A JSON response with the given status.
pub fn json_response<T: Serialize>(status: u16, value: &T) -> http::Response<String> {
    match serde_json::to_string(value) {
        Ok(body) => http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap_or_else(|_| ErrorCode::InternalError.problem(Surface::CasesApi).into_response()),
        Err(_) => ErrorCode::InternalError.problem(Surface::CasesApi).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_answered_somewhere_and_an_error_status() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code:?} twice");
            assert!(!code.surfaces().is_empty(), "{code:?} is answered nowhere");
            assert!((400..600).contains(&code.status()), "{code:?}");
            assert!(code.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code:?}");
        }
    }

    #[test]
    fn a_refused_signature_keeps_the_signing_crates_code() {
        let all = [
            VerifyError::MissingHeader("ACCESS-SIGN"),
            VerifyError::BadTimestamp,
            VerifyError::Expired { skew_secs: 1, tolerance_secs: 0 },
            VerifyError::UnknownKey,
            VerifyError::BadEncoding,
            VerifyError::Mismatch,
        ];
        for e in &all {
            let code = ErrorCode::from(e);
            assert_eq!(code.as_str(), e.code());
            assert_eq!(code.status(), 401);
        }
    }

    #[test]
    fn a_problem_carries_its_codes_status_and_title() {
        let p = ErrorCode::StoreUnavailable.problem(Surface::Webhook);
        assert_eq!((p.status, p.code, p.title), (503, "store_unavailable", "Not stored; retry later"));
        let p = ErrorCode::StoreUnavailable.problem(Surface::CasesApi);
        assert_eq!(p.title, "The records are unavailable");
    }
}
