//! `application/problem+json` (RFC 9457) with a stable `code` per failure.

use std::time::Duration;

use serde::Serialize;

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
    pub errors: Option<Vec<cabital_client::FieldError>>,
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
    /// A problem with a status, a stable code and a title.
    pub fn new(status: u16, code: &'static str, title: &'static str) -> Self {
        Problem { title, status, code, detail: None, errors: None, retry_after: None }
    }

    /// Adds a detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds the per-field errors.
    pub fn errors(mut self, errors: Vec<cabital_client::FieldError>) -> Self {
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
            .unwrap_or_else(|_| Problem::new(500, "internal_error", "Internal error").into_response()),
        Err(_) => Problem::new(500, "internal_error", "Internal error").into_response(),
    }
}
