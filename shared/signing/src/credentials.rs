//! The API key and secret, from one Secrets Manager secret, cached with a bounded lifetime.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::RwLock;

/// The API key Cabital gave the partner. Not a secret, but it identifies the account,
/// so it is kept out of `Debug` output and logs all the same.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; refuses an empty one.
    pub fn new(key: impl Into<String>) -> Result<Self, CredentialsError> {
        let key = key.into();
        if key.trim().is_empty() {
            return Err(CredentialsError::Malformed("apiKey is empty"));
        }
        Ok(ApiKey(key))
    }

    /// The key as sent in `ACCESS-KEY`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// An API key and its secret, and the secret Cabital signs webhooks with when it is not
/// the API secret.
#[derive(Clone)]
pub struct Credentials {
    api_key: ApiKey,
    api_secret: SecretString,
    webhook: Option<WebhookSecret>,
}

/// A secret that signs webhooks only (`webhookSecret`), with its key when one is given
/// (`webhookKey`). Cabital's sister API signs webhooks with a secret "provided by the
/// partner", which need not be the API secret.
#[derive(Clone)]
struct WebhookSecret {
    key: Option<ApiKey>,
    secret: SecretString,
}

/// One secret that may have signed a webhook, for [`crate::verify_signature`].
pub(crate) struct Signer<'a> {
    /// The `ACCESS-KEY` that goes with it; `None`: any (or none).
    pub(crate) key: Option<&'a str>,
    pub(crate) secret: &'a [u8],
    pub(crate) signed_with: crate::SignedWith,
}

impl Credentials {
    /// Builds credentials; refuses an empty key or secret.
    pub fn new(api_key: impl Into<String>, api_secret: impl Into<String>) -> Result<Self, CredentialsError> {
        let api_secret: String = api_secret.into();
        if api_secret.is_empty() {
            return Err(CredentialsError::Malformed("apiSecret is empty"));
        }
        Ok(Credentials { api_key: ApiKey::new(api_key)?, api_secret: SecretString::from(api_secret), webhook: None })
    }

    /// The same credentials, with a separate secret for webhooks (and its key, if any).
    pub fn with_webhook_secret(
        mut self,
        webhook_key: Option<String>,
        webhook_secret: impl Into<String>,
    ) -> Result<Self, CredentialsError> {
        let secret: String = webhook_secret.into();
        if secret.is_empty() {
            return Err(CredentialsError::Malformed("webhookSecret is empty"));
        }
        let key = match webhook_key {
            Some(k) => Some(ApiKey::new(k).map_err(|_| CredentialsError::Malformed("webhookKey is empty"))?),
            None => None,
        };
        self.webhook = Some(WebhookSecret { key, secret: SecretString::from(secret) });
        Ok(self)
    }

    /// Parses the secret's JSON value: `{"apiKey": "...", "apiSecret": "..."}`, with an
    /// optional `"webhookSecret"` (and `"webhookKey"`) when Cabital signs webhooks with a
    /// secret of their own.
    pub fn from_secret_json(text: &str) -> Result<Self, CredentialsError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            api_key: String,
            api_secret: SecretString,
            #[serde(default)]
            webhook_key: Option<String>,
            #[serde(default)]
            webhook_secret: Option<SecretString>,
        }
        // serde_json's error text can quote the input: never pass it on.
        let raw: Raw = serde_json::from_str(text)
            .map_err(|_| CredentialsError::Malformed("secret is not {\"apiKey\", \"apiSecret\"} JSON"))?;
        let credentials = Credentials::new(raw.api_key, raw.api_secret.expose_secret())?;
        match (raw.webhook_secret, raw.webhook_key) {
            (Some(secret), key) => credentials.with_webhook_secret(key, secret.expose_secret()),
            (None, Some(_)) => Err(CredentialsError::Malformed("webhookKey is given without webhookSecret")),
            (None, None) => Ok(credentials),
        }
    }

    /// The API key.
    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// Whether a separate webhook secret is held.
    pub fn has_webhook_secret(&self) -> bool {
        self.webhook.is_some()
    }

    pub(crate) fn secret_bytes(&self) -> &[u8] {
        self.api_secret.expose_secret().as_bytes()
    }

    /// The secrets a webhook may be signed with: the webhook secret first, when held,
    /// then the API secret. The API secret stays accepted beside a webhook secret: its
    /// holder can already call Cabital's API, so it proves as much, and deliveries signed
    /// before the webhook secret was set (Cabital resends them with their first headers,
    /// up to a day later) are not lost to the switch.
    pub(crate) fn webhook_signers(&self) -> Vec<Signer<'_>> {
        let mut signers = Vec::with_capacity(2);
        if let Some(w) = &self.webhook {
            signers.push(Signer {
                key: w.key.as_ref().map(ApiKey::as_str),
                secret: w.secret.expose_secret().as_bytes(),
                signed_with: crate::SignedWith::WebhookSecret,
            });
        }
        signers.push(Signer {
            key: Some(self.api_key.as_str()),
            secret: self.secret_bytes(),
            signed_with: crate::SignedWith::ApiSecret,
        });
        signers
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key)
            .field("api_secret", &"[redacted]")
            .field("webhook_secret", &self.webhook.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Why credentials could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The secret exists but its value is not what we expect. Names the problem, never the value.
    #[error("the Cabital secret is malformed: {0}")]
    Malformed(&'static str),
    /// Secrets Manager refused or failed. Carries the service's error code only.
    #[error("Secrets Manager failed ({code}); retryable: {retryable}")]
    SecretsManager {
        /// The AWS error code, e.g. `ResourceNotFoundException`.
        code: String,
        /// Whether a retry may help.
        retryable: bool,
    },
}

impl CredentialsError {
    /// Whether a retry may help.
    pub fn retryable(&self) -> bool {
        matches!(self, CredentialsError::SecretsManager { retryable: true, .. })
    }
}

/// Where credentials come from.
#[derive(Clone)]
pub enum CredentialSource {
    /// One Secrets Manager secret holding `{"apiKey", "apiSecret"}`.
    #[cfg(feature = "secrets-manager")]
    SecretsManager {
        /// The client, built once per cold start.
        client: aws_sdk_secretsmanager::Client,
        /// The secret's name or ARN.
        secret_id: String,
    },
    /// Fixed credentials (benchmarks and unit tests; never used by the functions).
    Static(Credentials),
}

impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "secrets-manager")]
            CredentialSource::SecretsManager { secret_id, .. } => {
                f.debug_struct("SecretsManager").field("secret_id", secret_id).finish()
            }
            CredentialSource::Static(_) => f.write_str("Static([redacted])"),
        }
    }
}

impl CredentialSource {
    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        match self {
            CredentialSource::Static(c) => Ok(c.clone()),
            #[cfg(feature = "secrets-manager")]
            CredentialSource::SecretsManager { client, secret_id } => {
                use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
                let out = client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| {
                    let code = e.code().unwrap_or("Unknown").to_owned();
                    let retryable = !matches!(
                        code.as_str(),
                        "ResourceNotFoundException"
                            | "AccessDeniedException"
                            | "InvalidRequestException"
                            | "InvalidParameterException"
                            | "DecryptionFailure"
                    );
                    CredentialsError::SecretsManager { code, retryable }
                })?;
                let text = out.secret_string().ok_or(CredentialsError::Malformed("secret has no SecretString"))?;
                Credentials::from_secret_json(text)
            }
        }
    }
}

/// Credentials fetched once, cached for a bounded lifetime, refetched on demand.
///
/// Rotation works without a redeploy: a new secret value is seen after `ttl`, or at
/// once when a caller calls [`refresh`](Self::refresh) after a 401.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: CredentialSource,
    ttl: Duration,
    cached: RwLock<Option<(Credentials, Instant)>>,
}

impl CredentialStore {
    /// A store over `source`, keeping a value at most `ttl`.
    pub fn new(source: CredentialSource, ttl: Duration) -> Self {
        CredentialStore { inner: Arc::new(Inner { source, ttl, cached: RwLock::new(None) }) }
    }

    /// The current credentials, fetching them if none are cached or the cached ones expired.
    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        if let Some((c, at)) = self.inner.cached.read().await.as_ref()
            && at.elapsed() < self.inner.ttl
        {
            return Ok(c.clone());
        }
        let mut slot = self.inner.cached.write().await;
        // Another task may have refreshed while we waited for the lock.
        if let Some((c, at)) = slot.as_ref()
            && at.elapsed() < self.inner.ttl
        {
            return Ok(c.clone());
        }
        let fresh = self.inner.source.fetch().await?;
        *slot = Some((fresh.clone(), Instant::now()));
        tracing::debug!(source = ?self.inner.source, "Cabital credentials fetched");
        Ok(fresh)
    }

    /// Fetches again unless the cached value is younger than `min_age`: for a verifier
    /// that sees a signature it cannot check (the secret may have rotated) without
    /// letting a flood of forged requests hammer Secrets Manager.
    pub async fn refresh_if_older_than(&self, min_age: Duration) -> Result<Credentials, CredentialsError> {
        {
            let slot = self.inner.cached.read().await;
            if let Some((c, at)) = slot.as_ref()
                && at.elapsed() < min_age
            {
                return Ok(c.clone());
            }
        }
        self.refresh().await
    }

    /// Drops the cached value and fetches again (after a 401, the secret may have rotated).
    pub async fn refresh(&self) -> Result<Credentials, CredentialsError> {
        let mut slot = self.inner.cached.write().await;
        let fresh = self.inner.source.fetch().await?;
        *slot = Some((fresh.clone(), Instant::now()));
        tracing::info!(source = ?self.inner.source, "Cabital credentials refetched");
        Ok(fresh)
    }
}
