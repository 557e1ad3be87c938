//! The sandbox's settings: fixed at start ([`SandboxConfig`]) and changeable at run
//! time ([`Faults`], credentials, webhook URL).

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// Largest clock offset accepted, in seconds (about ten years either way): keeps the
/// `Date` header inside what HTTP dates can express.
pub const MAX_CLOCK_OFFSET_SECS: i64 = 315_360_000;

/// One API key and its secret. The secret never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credential {
    /// The `ACCESS-KEY` value.
    pub api_key: String,
    /// The HMAC secret.
    pub api_secret: String,
}

impl Credential {
    /// A key and its secret.
    pub fn new(api_key: impl Into<String>, api_secret: impl Into<String>) -> Self {
        Self { api_key: api_key.into(), api_secret: api_secret.into() }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential").field("api_key", &self.api_key).field("api_secret", &"<redacted>").finish()
    }
}

/// How the digest is written in `ACCESS-SIGN`, both ways (requests in, webhooks out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// Lowercase hex, 64 characters (upper case is refused).
    Hex,
    /// Standard base64 with padding: the default, as the exchange API whose signing text
    /// Cabital's page copies, and Cabital's sister API, write it.
    #[default]
    Base64,
}

/// How webhooks are signed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WebhookSigning {
    /// With the first accepted API credential (read at each attempt, so a rotation through
    /// the control API applies).
    #[default]
    ApiSecret,
    /// With a credential of their own, as Cabital's sister API does with a secret
    /// "provided by the partner".
    Separate(Credential),
    /// Not at all: no `ACCESS-*` headers.
    Unsigned,
}

/// What a webhook retry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryHeaders {
    /// Each attempt signed anew, with its own timestamp.
    #[default]
    Fresh,
    /// Every retry carries the first attempt's headers ("Cabital records every attempt
    /// and can resend failed webhooks"): its timestamp as old as the retry schedule
    /// makes it, in the sandbox's scaled time (5 min, 1 h 5 min, ... before).
    Original,
}

/// Faults to inject. All default to "no fault". Settable at start and through
/// `GET/PUT /_sandbox/faults` (camelCase JSON; a PUT replaces the whole set, absent
/// fields taking their default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every API response, after the request took effect: a client that times
    /// out still leaves its case created, as a lost answer would.
    pub latency_ms: u64,
    /// Probability (0..=1) that an API request is answered 500 without taking effect.
    pub error_rate_500: f64,
    /// Probability (0..=1) that an API request is answered 503 without taking effect.
    pub error_rate_503: f64,
    /// Token-bucket rate limit on authenticated API requests, per second (burst the same,
    /// at least 1); 0 means unlimited. Over it: 429 with `Retry-After`.
    pub rate_limit_per_sec: f64,
    /// Probability (0..=1) that a webhook delivery is never sent at all, no attempt.
    pub drop_webhook_rate: f64,
    /// Extra copies of every webhook delivery, same body, each with its own retries.
    pub duplicate_webhooks: u32,
    /// Deliver webhooks out of order: each delivery gets a random extra delay in
    /// `0..=reorder_window_ms`.
    pub reorder_webhooks: bool,
    /// The window of that extra delay.
    pub reorder_window_ms: u64,
    /// The sandbox's clock minus real time, in seconds: what `Date` says and what
    /// `ACCESS-TIMESTAMP` is checked against.
    pub clock_offset_secs: i64,
    /// Probability (0..=1) that a webhook attempt answered 2xx is taken as failed, as
    /// when Cabital's own timeout cuts the answer off: the delivery is retried on its
    /// schedule (with [`RetryHeaders::Original`], under its first attempt's headers).
    pub webhook_lost_ack_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            error_rate_500: 0.0,
            error_rate_503: 0.0,
            rate_limit_per_sec: 0.0,
            drop_webhook_rate: 0.0,
            duplicate_webhooks: 0,
            reorder_webhooks: false,
            reorder_window_ms: 250,
            clock_offset_secs: 0,
            webhook_lost_ack_rate: 0.0,
        }
    }
}

impl Faults {
    /// Checks every value is in range; the message names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rates = [
            ("errorRate500", self.error_rate_500),
            ("errorRate503", self.error_rate_503),
            ("dropWebhookRate", self.drop_webhook_rate),
            ("webhookLostAckRate", self.webhook_lost_ack_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::new(name, "must be a probability in 0..=1"));
            }
        }
        if self.error_rate_500 + self.error_rate_503 > 1.0 {
            return Err(ConfigError::new("errorRate500", "errorRate500 + errorRate503 must not exceed 1"));
        }
        if !self.rate_limit_per_sec.is_finite() || self.rate_limit_per_sec < 0.0 {
            return Err(ConfigError::new("rateLimitPerSec", "must be a finite number >= 0"));
        }
        if self.clock_offset_secs.abs() > MAX_CLOCK_OFFSET_SECS {
            return Err(ConfigError::new("clockOffsetSecs", "must be within about ten years"));
        }
        if self.duplicate_webhooks > 100 {
            return Err(ConfigError::new("duplicateWebhooks", "must be at most 100"));
        }
        Ok(())
    }
}

/// What a successful create answers (Cabital's page shows no body for its 201).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CreateAnswerMode {
    /// 201 with the whole case, `caseSystemId` included (our reading of the API).
    #[default]
    Full,
    /// 201 with an empty body.
    Empty,
    /// 201 with the case but no `caseSystemId`.
    NoId,
}

/// Everything the sandbox starts with. `POST /_sandbox/reset` returns to it.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Port on 127.0.0.1; 0 lets the system choose (see [`crate::SandboxHandle::addr`]).
    pub port: u16,
    /// Accepted key/secret pairs. The first one also signs webhooks, unless
    /// [`SandboxConfig::webhook_signing`] says otherwise. Empty: every API request is
    /// refused with 401 and no webhook can be signed with the API secret.
    pub credentials: Vec<Credential>,
    /// Where webhooks go; `None` sends none.
    pub webhook_url: Option<Url>,
    /// Multiplies the webhook retry schedule (5 min, 1 h, 5 h, 18 h); e.g. `0.0001`
    /// turns it into 30 ms, 360 ms, 1.8 s, 6.5 s. Must be finite and > 0.
    pub time_factor: f64,
    /// Time from a case's creation to its suggestion, in milliseconds (not scaled).
    /// 0: the suggestion is set right after the case is stored (the create response
    /// still shows none; `GET` shows it).
    pub screening_delay_ms: u64,
    /// Time from a suggestion to its webhook's first attempt, in milliseconds (not scaled).
    pub webhook_delay_ms: u64,
    /// Timeout of one webhook attempt, in milliseconds.
    pub webhook_timeout_ms: u64,
    /// Refuse a second case with an `externalCaseId` already known, with 409.
    pub reject_duplicate_external_id: bool,
    /// How `ACCESS-SIGN` is encoded.
    pub signature_encoding: SignatureEncoding,
    /// How webhooks are signed.
    pub webhook_signing: WebhookSigning,
    /// What webhook retries carry.
    pub retry_headers: RetryHeaders,
    /// Faults in force from the start.
    pub faults: Faults,
    /// Seed of the random generator behind faults and ids; `None` picks one (logged and
    /// shown in `GET /_sandbox/stats`, so a run can be repeated).
    pub seed: Option<u64>,
    /// What a successful create answers.
    pub create_answer: CreateAnswerMode,
    /// `GET` of a case answers without `caseSystemId` (the provider's sample shows none).
    pub get_without_case_system_id: bool,
    /// No screening on create (an account without Zero Footprint): a new case gets no
    /// suggestion and no webhook; the control API can still set one, with its webhook.
    pub no_screening: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            port: 0,
            credentials: Vec::new(),
            webhook_url: None,
            time_factor: 1.0,
            screening_delay_ms: 0,
            webhook_delay_ms: 0,
            webhook_timeout_ms: 10_000,
            reject_duplicate_external_id: true,
            signature_encoding: SignatureEncoding::default(),
            webhook_signing: WebhookSigning::default(),
            retry_headers: RetryHeaders::default(),
            faults: Faults::default(),
            seed: None,
            create_answer: CreateAnswerMode::Full,
            get_without_case_system_id: false,
            no_screening: false,
        }
    }
}

impl SandboxConfig {
    /// The defaults, with one accepted key/secret pair.
    pub fn with_credential(api_key: impl Into<String>, api_secret: impl Into<String>) -> Self {
        Self { credentials: vec![Credential::new(api_key, api_secret)], ..Self::default() }
    }

    /// Checks every value is in range; the message names the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.time_factor.is_finite() || self.time_factor <= 0.0 {
            return Err(ConfigError::new("time_factor", "must be a finite number > 0"));
        }
        if self.webhook_timeout_ms == 0 {
            return Err(ConfigError::new("webhook_timeout_ms", "must be > 0"));
        }
        if let Some(url) = &self.webhook_url {
            check_webhook_url(url)?;
        }
        if let WebhookSigning::Separate(c) = &self.webhook_signing
            && (c.api_key.is_empty() || c.api_secret.is_empty())
        {
            return Err(ConfigError::new("webhook_signing", "a separate webhook credential needs a key and a secret"));
        }
        self.faults.validate()
    }
}

/// Webhooks are plain HTTP(S) POSTs.
pub(crate) fn check_webhook_url(url: &Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(()),
        _ => Err(ConfigError::new("webhook_url", "must be an http(s) URL with a host")),
    }
}

/// A setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{setting}`: {problem}")]
pub struct ConfigError {
    /// The setting's name.
    pub setting: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(setting: &str, problem: &str) -> Self {
        Self { setting: setting.to_owned(), problem: problem.to_owned() }
    }
}
