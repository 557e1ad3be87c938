//! Webhook intake: verify the raw bytes, parse strictly, make it durable, then refresh.

use std::time::Duration;

use cabital_client::{Pii, WebhookNotification};
use cabital_signing::{IncomingHeaders, SignatureEncoding, VerifyError, VerifyPolicy, verify};
use gateway_runtime::Problem;
use gateway_runtime::settings::{SettingError, parsed_or};
use kyc_store::{RemoteCheck, StoreError, WebhookReceipt, WebhookRecorded};

use crate::gateway::{Gateway, request_hash};

/// A signature that does not verify makes the secret be fetched again, at most this often.
const CREDENTIALS_RECHECK: Duration = Duration::from_secs(60);

/// The webhook's settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `WEBHOOK_TOLERANCE_SECS`: how far `ACCESS-TIMESTAMP` may be from now (default 300).
    pub tolerance_secs: u64,
    /// `WEBHOOK_SIGNED_PATH`: the path Cabital signs, when API Gateway shows another
    /// (stage prefix, custom domain). Default: the path received.
    pub signed_path: Option<String>,
    /// `WEBHOOK_MAX_BODY_BYTES`: the largest body accepted (default 64 KiB).
    pub max_body_bytes: usize,
    /// `CABITAL_SIGNATURE_ENCODING`: `hex` (default) or `base64`.
    pub encoding: SignatureEncoding,
    /// `WEBHOOK_REFRESH_TIMEOUT_MS`: the most the refresh may take before answering (default 3000).
    pub refresh_timeout: Duration,
}

impl WebhookSettings {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, SettingError> {
        let signed_path = std::env::var("WEBHOOK_SIGNED_PATH").ok().filter(|p| !p.trim().is_empty());
        if let Some(p) = &signed_path
            && !p.starts_with('/')
        {
            return Err(SettingError::Invalid { name: "WEBHOOK_SIGNED_PATH", reason: "must start with /".into() });
        }
        Ok(WebhookSettings {
            tolerance_secs: parsed_or("WEBHOOK_TOLERANCE_SECS", 300)?,
            signed_path,
            max_body_bytes: parsed_or("WEBHOOK_MAX_BODY_BYTES", 64 * 1024)?,
            encoding: parsed_or("CABITAL_SIGNATURE_ENCODING", SignatureEncoding::Hex)?,
            refresh_timeout: Duration::from_millis(parsed_or("WEBHOOK_REFRESH_TIMEOUT_MS", 3000)?),
        })
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            tolerance_secs: 300,
            signed_path: None,
            max_body_bytes: 64 * 1024,
            encoding: SignatureEncoding::Hex,
            refresh_timeout: Duration::from_secs(3),
        }
    }
}

/// A delivery as received.
#[derive(Clone, Copy)]
pub struct Delivery<'a> {
    /// The three signature headers.
    pub headers: IncomingHeaders<'a>,
    /// The HTTP method.
    pub method: &'a str,
    /// The path received, with its query string if any.
    pub path_and_query: &'a str,
    /// The body's raw bytes.
    pub body: &'a [u8],
    /// Now, in Unix seconds.
    pub now_unix: i64,
}

/// Why a delivery was refused or not stored.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The body is over the bound.
    #[error("body of {0} bytes is over the bound")]
    TooLarge(usize),
    /// The signature did not verify.
    #[error("signature refused: {0}")]
    Unauthorized(#[from] VerifyError),
    /// The body is not the webhook's JSON.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// The credentials to verify with could not be had: Cabital should retry.
    #[error("credentials unavailable")]
    Credentials,
    /// The event could not be stored: Cabital must retry.
    #[error("not stored: {0}")]
    Store(#[from] StoreError),
}

impl WebhookError {
    /// The reason, for metrics and logs: stable.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::TooLarge(_) => "body_too_large",
            WebhookError::Unauthorized(e) => e.code(),
            WebhookError::Malformed(_) => "malformed_body",
            WebhookError::Credentials => "credentials_unavailable",
            WebhookError::Store(_) => "store_unavailable",
        }
    }

    /// The response. Refusals of bad input are 4xx; a failure to store is 503 so that
    /// Cabital retries.
    pub fn problem(&self) -> Problem {
        match self {
            WebhookError::TooLarge(_) => Problem::new(413, "body_too_large", "The body is too large"),
            WebhookError::Unauthorized(e) => Problem::new(401, e.code(), "The signature was refused"),
            WebhookError::Malformed(detail) => {
                Problem::new(400, "malformed_body", "The body is not a case screening result").detail(detail.clone())
            }
            WebhookError::Credentials | WebhookError::Store(_) => {
                Problem::new(503, self.reason(), "Not stored; retry later").retry_after(Duration::from_secs(5))
            }
        }
    }
}

/// What happened to a stored delivery's refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Cabital's state was read and changed the record.
    Changed,
    /// Cabital's state was read and matched the record.
    Unchanged,
    /// The refresh failed or timed out: the case stays marked for the reconciler.
    Deferred,
}

/// The result of an accepted delivery.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    /// What the store recorded.
    pub recorded: WebhookRecorded,
    /// What the refresh did.
    pub refresh: RefreshOutcome,
    /// The case.
    pub case_system_id: cabital_client::CaseSystemId,
}

impl Gateway {
    /// Takes one delivery: bound, verify, parse, store durably, then refresh.
    ///
    /// `Ok` means the delivery is stored (answer 2xx); the refresh's failure does not
    /// change that.
    // The error at debug only: the function logs each refusal once, at warn, with its
    // stable reason; bad input is not an error of the gateway's.
    #[tracing::instrument(skip_all, err(level = "debug", Display))]
    pub async fn receive_webhook(&self, settings: &WebhookSettings, d: Delivery<'_>) -> Result<Accepted, WebhookError> {
        if d.body.len() > settings.max_body_bytes {
            return Err(WebhookError::TooLarge(d.body.len()));
        }
        let credentials = self.cabital.credentials().get().await.map_err(|_| WebhookError::Credentials)?;
        let policy = VerifyPolicy { tolerance_secs: settings.tolerance_secs, encoding: settings.encoding };
        let path = settings.signed_path.as_deref().unwrap_or(d.path_and_query);
        match verify(&credentials, policy, d.headers, d.now_unix, d.method, path, d.body) {
            Ok(_) => {}
            // The secret may have rotated since it was cached: look again, at most
            // once a minute, then verify once more.
            Err(VerifyError::UnknownKey | VerifyError::Mismatch) => {
                let fresh = self
                    .cabital
                    .credentials()
                    .refresh_if_older_than(CREDENTIALS_RECHECK)
                    .await
                    .map_err(|_| WebhookError::Credentials)?;
                verify(&fresh, policy, d.headers, d.now_unix, d.method, path, d.body)?;
            }
            Err(e) => return Err(e.into()),
        }

        let (notification, body) =
            WebhookNotification::from_body(d.body).map_err(|e| WebhookError::Malformed(e.detail().to_owned()))?;
        let receipt = WebhookReceipt {
            case_system_id: notification.case_system_id,
            external_case_id: notification.external_case_id.clone(),
            suggestion: notification.case_suggestion,
            suggestion_comment: notification.comment.clone(),
            body: Pii(body.to_owned()),
            body_sha256: request_hash(d.body),
        };
        let recorded = self.store.record_webhook(&receipt, gateway_runtime::now()).await?;
        let id = notification.case_system_id;

        let refresh =
            match tokio::time::timeout(settings.refresh_timeout, self.refresh(id, RemoteCheck::Refreshed)).await {
                Ok(Ok(r)) if r.changed => RefreshOutcome::Changed,
                Ok(Ok(_)) => RefreshOutcome::Unchanged,
                Ok(Err(e)) => {
                    tracing::warn!(case_system_id = %id, error = %e, "refresh failed; left for the reconciler");
                    RefreshOutcome::Deferred
                }
                Err(_) => {
                    tracing::warn!(case_system_id = %id, "refresh timed out; left for the reconciler");
                    RefreshOutcome::Deferred
                }
            };
        Ok(Accepted { recorded, refresh, case_system_id: id })
    }
}
