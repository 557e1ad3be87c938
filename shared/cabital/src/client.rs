//! The signed HTTP client for Cabital's five calls, with retries and clock correction.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_signing::{
    CredentialStore, CredentialsError, HEADER_KEY, HEADER_SIGN, HEADER_TIMESTAMP, SignatureEncoding, sign,
};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use serde_json::Value;

use crate::deadline::Deadline;
use crate::models::{Case, CaseSystemId, DecisionRequest, ExternalCaseId, NewCase};

/// The most bytes read from one Cabital response.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// A clock further off than this is corrected from Cabital's `Date` header.
const CLOCK_CORRECTION_THRESHOLD_SECS: i64 = 3;

/// The client's settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://caas.cabital.com` in production.
    pub base_url: Url,
    /// How `ACCESS-SIGN` is encoded.
    pub encoding: SignatureEncoding,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole attempt.
    pub request_timeout: Duration,
    /// Attempts in all for a retryable failure (1 = no retry).
    pub max_attempts: u32,
    /// The first backoff; doubled each attempt, with full jitter.
    pub base_backoff: Duration,
    /// The longest backoff between two attempts.
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the error goes to the caller.
    pub max_retry_after: Duration,
    /// The least time an attempt is started with, under a [`Deadline`]: an attempt with
    /// less would most likely be cut off in flight, turning "not sent" into "outcome
    /// unknown" (a create that may never be sent again).
    pub min_attempt: Duration,
}

impl ClientConfig {
    /// Settings suited to a Lambda behind API Gateway (29 s integration limit).
    pub fn new(base_url: Url) -> Self {
        ClientConfig {
            base_url,
            encoding: SignatureEncoding::default(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(8),
            max_attempts: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(3),
            min_attempt: Duration::from_secs(1),
        }
    }

    /// The longest one call can take without a deadline: every attempt (one more for a
    /// 401) at its full timeout, each followed by the longest wait.
    pub fn longest_call(&self) -> Duration {
        let attempts = self.max_attempts.saturating_add(1);
        let wait = self.max_backoff.max(self.max_retry_after);
        self.request_timeout.saturating_mul(attempts).saturating_add(wait.saturating_mul(attempts))
    }
}

/// A failed call to Cabital.
#[derive(Debug, thiserror::Error)]
pub enum CabitalError {
    /// Cabital answered with an error status.
    #[error("Cabital answered {status} (code {code:?})")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The `code` of Cabital's error body, when it has one.
        code: Option<String>,
        /// `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// No answer within the timeout, after the request was sent: it may have been processed.
    #[error("Cabital did not answer in time")]
    Timeout,
    /// The connection could not be opened: the request was not sent.
    #[error("could not connect to Cabital")]
    Connect,
    /// The connection failed after the request may have been sent.
    #[error("the connection to Cabital failed")]
    Transport,
    /// Cabital's answer is not what the API document describes.
    #[error("Cabital's answer could not be read: {0}")]
    Decode(String),
    /// The API key and secret could not be had.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Not sent: the deadline left too little time for an attempt.
    #[error("not sent to Cabital: too little time left before the deadline")]
    NoTimeLeft,
}

impl CabitalError {
    /// Whether trying again later may help.
    pub fn retryable(&self) -> bool {
        match self {
            CabitalError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            CabitalError::Timeout | CabitalError::Connect | CabitalError::Transport => true,
            CabitalError::NoTimeLeft => true,
            CabitalError::Decode(_) => false,
            CabitalError::Credentials(e) => e.retryable(),
        }
    }

    /// Whether Cabital may have acted on the request although we got no success.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            CabitalError::Timeout | CabitalError::Transport => true,
            // A 500 or 502/504 may come after the work was done; 503 and 429 refuse it.
            CabitalError::Status { status, .. } => matches!(status, 500 | 502 | 504),
            _ => false,
        }
    }

    /// The HTTP status Cabital answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CabitalError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// `Retry-After` as Cabital gave it.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CabitalError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The longest a cold start waits for [`CabitalClient::warm_up`].
pub const WARM_UP_TIMEOUT: Duration = Duration::from_secs(1);

/// rustls with the aws-lc provider (the one TLS stack of the workspace) and Mozilla's
/// roots, for reqwest.
fn tls_config() -> Result<rustls::ClientConfig, CabitalError> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|_| CabitalError::Decode("the TLS configuration could not be built".into()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Whether a call may be sent again when its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reads, and writes whose repetition changes nothing (OGS on/off, a decision).
    Safe,
    /// Creation: sent again only when Cabital surely did not act on it.
    OnlyIfNotProcessed,
}

/// The typed, signed Cabital client. Cheap to clone; build one per cold start.
#[derive(Debug, Clone)]
pub struct CabitalClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    credentials: CredentialStore,
    clock_offset_secs: Arc<AtomicI64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<serde_json::Value>,
}

impl CabitalClient {
    /// Builds the client (and its connection pool). TLS trusts Mozilla's roots, compiled
    /// in (`webpki-roots`): nothing is read from disk at a cold start.
    pub fn new(config: ClientConfig, credentials: CredentialStore) -> Result<Self, CabitalError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            // A redirect would re-send the ACCESS-* headers and a body with personal
            // data to wherever it points: never followed, the 3xx is an error.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cabital-kyc-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| CabitalError::Decode("the HTTP client could not be built".into()))?;
        Ok(CabitalClient {
            http,
            config: Arc::new(config),
            credentials,
            clock_offset_secs: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Opens the connection to Cabital ahead of the first call (TCP and TLS, kept in the
    /// pool): an unsigned `HEAD` of the base URL, whatever it answers. Bounded by
    /// [`WARM_UP_TIMEOUT`]; a failure is only logged, the first call will connect again.
    pub async fn warm_up(&self) {
        let request = self.http.head(self.config.base_url.clone()).timeout(WARM_UP_TIMEOUT);
        match request.send().await {
            Ok(response) => tracing::debug!(status = response.status().as_u16(), "Cabital connection warmed up"),
            Err(e) => tracing::info!(error = %e.without_url(), "Cabital warm-up failed; the first call will connect"),
        }
    }

    /// The offset, in seconds, added to the local clock when signing (learnt from `Date`).
    pub fn clock_offset_secs(&self) -> i64 {
        self.clock_offset_secs.load(Ordering::Relaxed)
    }

    /// The credential store, to warm it at start.
    pub fn credentials(&self) -> &CredentialStore {
        &self.credentials
    }

    /// The five calls, each ending by `deadline`: no attempt starts, and no backoff or
    /// `Retry-After` is waited, that would end after it, and an attempt's timeout is cut
    /// to the time left. [`CabitalClient`]'s own methods are these without a deadline.
    pub fn within(&self, deadline: Deadline) -> Bounded<'_> {
        Bounded { client: self, deadline }
    }

    /// `POST /api/v1/cases`, without a deadline ([`Bounded::create_case`]).
    pub async fn create_case(&self, case: &NewCase) -> Result<CreateAnswer, CabitalError> {
        self.within(Deadline::NONE).create_case(case).await
    }

    /// `GET /api/v1/cases/{id}`, without a deadline ([`Bounded::get_case`]).
    pub async fn get_case(&self, id: CaseSystemId) -> Result<Case, CabitalError> {
        self.within(Deadline::NONE).get_case(id).await
    }

    /// `POST /api/v1/cases/{id}/ogs`, without a deadline ([`Bounded::ogs_on`]).
    pub async fn ogs_on(&self, id: CaseSystemId) -> Result<(), CabitalError> {
        self.within(Deadline::NONE).ogs_on(id).await
    }

    /// `DELETE /api/v1/cases/{id}/ogs`, without a deadline ([`Bounded::ogs_off`]).
    pub async fn ogs_off(&self, id: CaseSystemId) -> Result<(), CabitalError> {
        self.within(Deadline::NONE).ogs_off(id).await
    }

    /// `POST /api/v1/cases/{id}/decision`, without a deadline ([`Bounded::decide`]).
    pub async fn decide(&self, id: CaseSystemId, decision: &DecisionRequest) -> Result<(), CabitalError> {
        self.within(Deadline::NONE).decide(id, decision).await
    }

    /// The longest one call can take without a deadline ([`ClientConfig::longest_call`]).
    pub fn longest_call(&self) -> Duration {
        self.config.longest_call()
    }

    fn now_secs(&self) -> i64 {
        let local = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        local + self.clock_offset_secs()
    }

    /// Learns Cabital's clock from `Date`; answers whether the offset changed.
    fn learn_clock(&self, headers: &reqwest::header::HeaderMap) -> bool {
        let Some(server) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| httpdate::parse_http_date(s).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        else {
            return false;
        };
        let local = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let offset = server.as_secs() as i64 - local;
        let old = self.clock_offset_secs.load(Ordering::Relaxed);
        if (offset - old).abs() > CLOCK_CORRECTION_THRESHOLD_SECS {
            self.clock_offset_secs.store(offset, Ordering::Relaxed);
            tracing::warn!(old_offset_secs = old, new_offset_secs = offset, "clock offset to Cabital corrected");
            return true;
        }
        false
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.config.base_backoff.saturating_mul(1u32 << attempt.min(16)).min(self.config.max_backoff);
        // Full jitter: uniform in [0, cap].
        let millis = rand::rng().random_range(0..=cap.as_millis() as u64);
        Duration::from_millis(millis)
    }

    /// The time an attempt starting now may take: the request timeout, cut to what is
    /// left before `deadline`; `None` when that is under [`ClientConfig::min_attempt`].
    fn attempt_timeout(&self, deadline: Deadline) -> Option<Duration> {
        match deadline.left() {
            None => Some(self.config.request_timeout),
            Some(left) if left >= self.config.min_attempt => Some(left.min(self.config.request_timeout)),
            Some(_) => None,
        }
    }

    async fn attempt(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        deadline: Deadline,
    ) -> Result<Vec<u8>, AttemptError> {
        let credentials = self.credentials.get().await.map_err(CabitalError::from)?;
        // Measured after the secret is had: its fetch may have taken time.
        let timeout = self.attempt_timeout(deadline).ok_or(AttemptError::NoTimeLeft)?;
        let timestamp = self.now_secs();
        // A path in the base URL (a proxy's prefix) stays in front of `/api/v1/...`, and
        // is signed with it: the path signed is the path sent.
        let path = format!("{}{path}", self.config.base_url.path().trim_end_matches('/'));
        let signed = sign(&credentials, self.config.encoding, timestamp, method.as_str(), &path, body);
        let mut url = self.config.base_url.clone();
        url.set_path(&path);
        let mut request = self
            .http
            .request(method, url)
            .header(HEADER_KEY, signed.access_key)
            .header(HEADER_TIMESTAMP, signed.access_timestamp)
            .header(HEADER_SIGN, signed.access_sign)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout);
        if !body.is_empty() {
            // The bytes signed are the bytes sent: never re-serialised after signing.
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
        }
        let mut response = request.send().await.map_err(|e| CabitalError::from_reqwest(&e))?;
        let status = response.status();
        let clock_corrected = self.learn_clock(response.headers());
        let retry_after = retry_after(response.headers());
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| CabitalError::from_reqwest(&e))? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(CabitalError::Decode("the answer is larger than 1 MiB".into()).into());
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(bytes);
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(AttemptError::Unauthorized { clock_corrected });
        }
        let code = serde_json::from_slice::<ErrorBody>(&bytes).ok().and_then(|b| b.code).map(|c| match c {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        Err(CabitalError::Status { status: status.as_u16(), code, retry_after }.into())
    }
}

/// The client's calls under a [`Deadline`] ([`CabitalClient::within`]).
#[derive(Debug, Clone, Copy)]
pub struct Bounded<'a> {
    client: &'a CabitalClient,
    deadline: Deadline,
}

impl Bounded<'_> {
    /// `POST /api/v1/cases`: creates a case. Any 2xx means Cabital has it; the answer
    /// says whether the body also gave its `caseSystemId` (see [`CreateAnswer`]).
    #[tracing::instrument(skip_all, fields(external_case_id = %case.external_case_id), err(Display))]
    pub async fn create_case(self, case: &NewCase) -> Result<CreateAnswer, CabitalError> {
        let body = serde_json::to_vec(case).map_err(|e| CabitalError::Decode(e.to_string()))?;
        let bytes = self.call(Method::POST, "/api/v1/cases", body, Repeat::OnlyIfNotProcessed).await?;
        Ok(create_answer(&bytes, &case.external_case_id))
    }

    /// `GET /api/v1/cases/{id}`: the case as Cabital has it now. An answer without
    /// `caseSystemId` takes the path's; one naming another case is an error.
    #[tracing::instrument(skip(self), fields(case_system_id = %id), err(Display))]
    pub async fn get_case(self, id: CaseSystemId) -> Result<Case, CabitalError> {
        let bytes = self.call(Method::GET, &format!("/api/v1/cases/{id}"), Vec::new(), Repeat::Safe).await?;
        get_answer(&bytes, id)
    }

    /// `POST /api/v1/cases/{id}/ogs`: turns ongoing screening on.
    #[tracing::instrument(skip(self), fields(case_system_id = %id), err(Display))]
    pub async fn ogs_on(self, id: CaseSystemId) -> Result<(), CabitalError> {
        self.call(Method::POST, &format!("/api/v1/cases/{id}/ogs"), Vec::new(), Repeat::Safe).await.map(drop)
    }

    /// `DELETE /api/v1/cases/{id}/ogs`: turns ongoing screening off.
    #[tracing::instrument(skip(self), fields(case_system_id = %id), err(Display))]
    pub async fn ogs_off(self, id: CaseSystemId) -> Result<(), CabitalError> {
        self.call(Method::DELETE, &format!("/api/v1/cases/{id}/ogs"), Vec::new(), Repeat::Safe).await.map(drop)
    }

    /// `POST /api/v1/cases/{id}/decision`: gives the partner's final decision.
    #[tracing::instrument(skip(self, decision), fields(case_system_id = %id, decision = %decision.case_result), err(Display))]
    pub async fn decide(self, id: CaseSystemId, decision: &DecisionRequest) -> Result<(), CabitalError> {
        let body = serde_json::to_vec(decision).map_err(|e| CabitalError::Decode(e.to_string()))?;
        self.call(Method::POST, &format!("/api/v1/cases/{id}/decision"), body, Repeat::Safe).await.map(drop)
    }

    /// One call with its retries, all within the deadline. Stopping for lack of time
    /// keeps the outcome exact: before any attempt, [`CabitalError::NoTimeLeft`] (not
    /// sent); after one, that attempt's own error (a timeout stays "outcome unknown").
    async fn call(&self, method: Method, path: &str, body: Vec<u8>, repeat: Repeat) -> Result<Vec<u8>, CabitalError> {
        let client = self.client;
        let config = &client.config;
        let mut attempt: u32 = 0;
        let mut auth_retried = false;
        let mut last: Option<CabitalError> = None;
        loop {
            let result = client.attempt(method.clone(), path, &body, self.deadline).await;
            let err = match result {
                Ok(bytes) => return Ok(bytes),
                Err(AttemptError::NoTimeLeft) => {
                    tracing::warn!(path, attempt, "no time left before the deadline for an attempt");
                    return Err(last.unwrap_or(CabitalError::NoTimeLeft));
                }
                Err(e) => e,
            };
            attempt += 1;
            // 401: the clock or the secret may be wrong. Fix both, then one more try.
            if let AttemptError::Unauthorized { clock_corrected } = err {
                let refused = CabitalError::Status { status: 401, code: None, retry_after: None };
                if auth_retried {
                    return Err(refused);
                }
                auth_retried = true;
                client.credentials.refresh().await?;
                tracing::warn!(path, clock_corrected, "Cabital answered 401: secret refetched, retrying once");
                last = Some(refused);
                continue;
            }
            let AttemptError::Failed(err) = err else { continue };
            let may_repeat = err.retryable() && (repeat == Repeat::Safe || !err.outcome_unknown());
            if !may_repeat || attempt >= config.max_attempts {
                return Err(err);
            }
            let wait = match err.retry_after() {
                Some(ra) if ra > config.max_retry_after => return Err(err),
                Some(ra) => ra,
                None => client.backoff(attempt),
            };
            // A wait after which no attempt could start is not waited: the caller gets
            // this attempt's answer now, with the time left for what it must do next.
            if let Some(left) = self.deadline.left()
                && left < wait.saturating_add(config.min_attempt)
            {
                tracing::info!(path, attempt, status = err.status(), "no time left to retry before the deadline");
                return Err(err);
            }
            tracing::info!(
                path,
                attempt,
                status = err.status(),
                wait_ms = wait.as_millis() as u64,
                "retrying Cabital call"
            );
            tokio::time::sleep(wait).await;
            last = Some(err);
        }
    }
}

enum AttemptError {
    Unauthorized {
        clock_corrected: bool,
    },
    Failed(CabitalError),
    /// Not started: too little time before the deadline.
    NoTimeLeft,
}

impl From<CabitalError> for AttemptError {
    fn from(e: CabitalError) -> Self {
        AttemptError::Failed(e)
    }
}

impl CabitalError {
    fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_connect() {
            CabitalError::Connect
        } else if e.is_timeout() {
            CabitalError::Timeout
        } else {
            CabitalError::Transport
        }
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// What a 2xx to `POST /api/v1/cases` said.
///
/// The provider's page shows no body for the 201. A 2xx means Cabital has the case
/// whatever its body: an empty, unreadable or id-less body must never be taken as a
/// failure (that would free the `externalCaseId` and let the case be sent twice).
#[derive(Debug, Clone, PartialEq)]
pub enum CreateAnswer {
    /// The case, with its `caseSystemId`.
    Case(Case),
    /// Cabital has the case, but its answer did not give the case's id (empty body, not
    /// JSON, not a case, or no `caseSystemId`): the first webhook naming the
    /// `externalCaseId` gives it.
    CreatedWithoutId {
        /// Why the id could not be read (a category, never a value of the body).
        reason: &'static str,
    },
}

impl CreateAnswer {
    /// The case, when the answer gave it.
    pub fn case(&self) -> Option<&Case> {
        match self {
            CreateAnswer::Case(case) => Some(case),
            CreateAnswer::CreatedWithoutId { .. } => None,
        }
    }
}

/// The field that names Cabital's id of a case.
///
/// Only `caseSystemId`, the webhook's name for it: no alias such as `id` or `caseId`
/// is read. Nothing published says what such a field would hold (a row id, a request
/// id, a customer id...); taking the wrong one would link the partner's case to
/// another case, a wrong compliance record, while ignoring it costs only a wait for
/// the first webhook.
const CASE_SYSTEM_ID: &str = "caseSystemId";

/// Reads a create's 2xx body. Never fails: a 2xx means Cabital has the case.
fn create_answer(bytes: &[u8], sent: &ExternalCaseId) -> CreateAnswer {
    let without_id = |reason| CreateAnswer::CreatedWithoutId { reason };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return without_id("empty body");
    }
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(bytes) else {
        return without_id("not a JSON object");
    };
    if object.get(CASE_SYSTEM_ID).is_none_or(Value::is_null) {
        return without_id("no caseSystemId");
    }
    // The id is what matters here; an answer that leaves out the external id we sent
    // is taken as about it.
    object.entry("externalCaseId").or_insert_with(|| Value::String(sent.as_str().to_owned()));
    match serde_json::from_value::<Case>(Value::Object(object)) {
        Ok(case) => CreateAnswer::Case(case),
        Err(_) => without_id("not a readable case"),
    }
}

/// Reads a `GET` of case `id`: without `caseSystemId` the path's id is the case's.
fn get_answer(bytes: &[u8], id: CaseSystemId) -> Result<Case, CabitalError> {
    let mut value: Value = decode(bytes)?;
    if let Value::Object(object) = &mut value
        && object.get(CASE_SYSTEM_ID).is_none_or(Value::is_null)
    {
        object.insert(CASE_SYSTEM_ID.to_owned(), Value::String(id.to_string()));
    }
    let case: Case =
        serde_json::from_value(value).map_err(|e| CabitalError::Decode(format!("the case: {}", e.classify_name())))?;
    if case.case_system_id != id {
        return Err(CabitalError::Decode("the answer names another caseSystemId than the one asked for".into()));
    }
    Ok(case)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CabitalError> {
    // serde's message names the field and the expectation; it does not echo string values.
    serde_json::from_slice(bytes)
        .map_err(|e| CabitalError::Decode(format!("line {} column {}: {}", e.line(), e.column(), e.classify_name())))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected shape or value",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c";

    fn ext() -> ExternalCaseId {
        ExternalCaseId::parse("ext-1").unwrap()
    }

    fn id() -> CaseSystemId {
        ID.parse().unwrap()
    }

    #[test]
    fn a_full_create_answer_is_the_case() {
        let body = format!(r#"{{"caseSystemId":"{ID}","externalCaseId":"ext-1","screenType":"INDIVIDUAL"}}"#);
        let answer = create_answer(body.as_bytes(), &ext());
        assert_eq!(answer.case().map(|c| c.case_system_id), Some(id()));
        // An answer that leaves out the external id is taken as about the one sent.
        let answer = create_answer(format!(r#"{{"caseSystemId":"{ID}"}}"#).as_bytes(), &ext());
        assert_eq!(answer.case().map(|c| c.external_case_id.clone()), Some(ext()));
    }

    #[test]
    fn a_create_answer_without_an_id_is_created_without_id() {
        for (body, reason) in [
            ("", "empty body"),
            ("  \n", "empty body"),
            ("<html>ok</html>", "not a JSON object"),
            ("[]", "not a JSON object"),
            (r#"{"externalCaseId":"ext-1"}"#, "no caseSystemId"),
            (r#"{"caseSystemId":null,"externalCaseId":"ext-1"}"#, "no caseSystemId"),
            (r#"{"caseSystemId":"not-a-uuid"}"#, "not a readable case"),
            (r#"{"caseSystemId":42}"#, "not a readable case"),
        ] {
            assert_eq!(create_answer(body.as_bytes(), &ext()), CreateAnswer::CreatedWithoutId { reason }, "{body}");
        }
    }

    #[test]
    fn aliases_of_the_id_are_not_read() {
        // `id` / `caseId` could name anything: linking on them could link another case.
        for body in [format!(r#"{{"id":"{ID}","externalCaseId":"ext-1"}}"#), format!(r#"{{"caseId":"{ID}"}}"#)] {
            assert!(matches!(create_answer(body.as_bytes(), &ext()), CreateAnswer::CreatedWithoutId { .. }), "{body}");
        }
    }

    #[test]
    fn a_get_answer_without_an_id_takes_the_paths() {
        let case = get_answer(br#"{"externalCaseId":"ext-1","suggestion":"SUGGEST_TO_ACCEPT"}"#, id()).unwrap();
        assert_eq!(case.case_system_id, id());
        let case = get_answer(format!(r#"{{"caseSystemId":"{ID}","externalCaseId":"ext-1"}}"#).as_bytes(), id());
        assert_eq!(case.map(|c| c.case_system_id).ok(), Some(id()));
    }

    #[test]
    fn a_get_answer_naming_another_case_is_an_error() {
        let other = r#"{"caseSystemId":"00000000-0000-4000-8000-000000000000","externalCaseId":"ext-1"}"#;
        assert!(matches!(get_answer(other.as_bytes(), id()), Err(CabitalError::Decode(_))));
        assert!(matches!(get_answer(b"", id()), Err(CabitalError::Decode(_))));
    }
}
