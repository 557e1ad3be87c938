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

/// An API key and its secret.
#[derive(Clone)]
pub struct Credentials {
    api_key: ApiKey,
    api_secret: SecretString,
}

impl Credentials {
    /// Builds credentials; refuses an empty key or secret.
    pub fn new(api_key: impl Into<String>, api_secret: impl Into<String>) -> Result<Self, CredentialsError> {
        let api_secret: String = api_secret.into();
        if api_secret.is_empty() {
            return Err(CredentialsError::Malformed("apiSecret is empty"));
        }
        Ok(Credentials { api_key: ApiKey::new(api_key)?, api_secret: SecretString::from(api_secret) })
    }

    /// Parses the secret's JSON value: `{"apiKey": "...", "apiSecret": "..."}`.
    pub fn from_secret_json(text: &str) -> Result<Self, CredentialsError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            api_key: String,
            api_secret: SecretString,
        }
        // serde_json's error text can quote the input: never pass it on.
        let raw: Raw = serde_json::from_str(text)
            .map_err(|_| CredentialsError::Malformed("secret is not {\"apiKey\", \"apiSecret\"} JSON"))?;
        Credentials::new(raw.api_key, raw.api_secret.expose_secret())
    }

    /// The API key.
    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    pub(crate) fn secret_bytes(&self) -> &[u8] {
        self.api_secret.expose_secret().as_bytes()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("api_key", &self.api_key).field("api_secret", &"[redacted]").finish()
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
