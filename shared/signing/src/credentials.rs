//! The API key and secret, from one Secrets Manager secret, cached with a bounded lifetime.
//!
//! Rotation without a cliff: webhooks verify against the secret's `AWSCURRENT` version
//! and, for a grace window after it was created, its `AWSPREVIOUS` one; when Secrets
//! Manager fails after the cache expired, the cached value is served for a bounded time.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

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

/// Which version of the secret to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `AWSCURRENT`: what every call signs with.
    Current,
    /// `AWSPREVIOUS`: the value the last rotation replaced.
    Previous,
}

/// One version of the secret as read.
#[derive(Clone)]
struct Version {
    credentials: Credentials,
    /// Secrets Manager's `VersionId` (`None` for a fixed source).
    id: Option<String>,
    /// Its `CreatedDate`: when the rotation that made it current happened.
    created: Option<SystemTime>,
}

impl CredentialSource {
    /// Reads one version; `Ok(None)`: the secret has no such version (no `AWSPREVIOUS`
    /// before a first rotation).
    async fn fetch(&self, stage: Stage) -> Result<Option<Version>, CredentialsError> {
        match self {
            CredentialSource::Static(c) => Ok(match stage {
                Stage::Current => Some(Version { credentials: c.clone(), id: None, created: None }),
                Stage::Previous => None,
            }),
            #[cfg(feature = "secrets-manager")]
            CredentialSource::SecretsManager { client, secret_id } => {
                use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
                let request = client.get_secret_value().secret_id(secret_id);
                let request = match stage {
                    Stage::Current => request,
                    Stage::Previous => request.version_stage("AWSPREVIOUS"),
                };
                let out = match request.send().await {
                    Ok(out) => out,
                    Err(e) => {
                        let code = e.code().unwrap_or("Unknown").to_owned();
                        if stage == Stage::Previous && code == "ResourceNotFoundException" {
                            return Ok(None);
                        }
                        let retryable = !matches!(
                            code.as_str(),
                            "ResourceNotFoundException"
                                | "AccessDeniedException"
                                | "InvalidRequestException"
                                | "InvalidParameterException"
                                | "DecryptionFailure"
                        );
                        return Err(CredentialsError::SecretsManager { code, retryable });
                    }
                };
                let text = out.secret_string().ok_or(CredentialsError::Malformed("secret has no SecretString"))?;
                let created = out.created_date().and_then(|d| SystemTime::try_from(*d).ok());
                Ok(Some(Version {
                    credentials: Credentials::from_secret_json(text)?,
                    id: out.version_id().map(str::to_owned),
                    created,
                }))
            }
        }
    }

    async fn fetch_current(&self) -> Result<Version, CredentialsError> {
        self.fetch(Stage::Current).await?.ok_or(CredentialsError::Malformed("secret has no AWSCURRENT version"))
    }
}

/// How long values are kept and how a rotation and an outage are ridden out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialPolicy {
    /// How long a fetched value is used before it is fetched again.
    pub ttl: Duration,
    /// When a fetch fails, the cached value is still served until it is this much past
    /// its `ttl`; zero: never (the call fails, as with no value cached).
    pub fallback: Duration,
    /// How long after the `AWSCURRENT` version was created (its `CreatedDate`, the
    /// rotation) webhooks signed with the `AWSPREVIOUS` version still verify; zero: never.
    pub previous_grace: Duration,
}

impl CredentialPolicy {
    /// `ttl`, no fallback, no previous version: each failure is the caller's.
    pub fn strict(ttl: Duration) -> Self {
        CredentialPolicy { ttl, fallback: Duration::ZERO, previous_grace: Duration::ZERO }
    }

    /// While a cached value can stand in, a fetch gets this long (the SDK's own limits,
    /// retries included, are seconds: each would be a request's latency).
    const STAND_IN_FETCH_LIMIT: Duration = Duration::from_secs(1);

    /// After a failed fetch served from the cache, Secrets Manager is asked again at
    /// most this often: a hung endpoint then costs one slow call per instance per
    /// pause, not one per request.
    fn retry_pause(&self) -> Duration {
        self.ttl.clamp(Duration::from_secs(1), Duration::from_secs(10))
    }
}

/// Why a cached value was served instead of a fresh one (a metric's dimension, a log field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// `AWSCURRENT` could not be read: the cached value, past its lifetime, was served.
    Current,
    /// `AWSPREVIOUS` could not be read within the grace window: only `AWSCURRENT` is tried.
    Previous,
}

impl Fallback {
    /// A stable reason: `current_unreadable`, `previous_unreadable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Current => "current_unreadable",
            Fallback::Previous => "previous_unreadable",
        }
    }
}

/// Called each time Secrets Manager failed and a cached value was served (the
/// functions emit the `SecretFallback` metric from it).
pub type FallbackHook = Arc<dyn Fn(Fallback) + Send + Sync>;

/// Credentials fetched once, cached for a bounded lifetime, refetched on demand.
///
/// Rotation works without a redeploy: a new secret value is seen after `ttl`, or at
/// once when a caller calls [`refresh`](Self::refresh) after a 401; for webhooks,
/// [`previous`](Self::previous) gives the value the rotation replaced, within the grace
/// window. When Secrets Manager fails, the cached value is served within the fallback
/// bound ([`CredentialPolicy`]), logged at warn and reported to the [`FallbackHook`].
#[derive(Debug, Clone)]
pub struct CredentialStore {
    inner: Arc<Inner>,
}

struct Inner {
    source: CredentialSource,
    policy: CredentialPolicy,
    on_fallback: Option<FallbackHook>,
    cached: RwLock<Option<Cached>>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore").field("source", &self.source).field("policy", &self.policy).finish()
    }
}

struct Cached {
    current: Version,
    /// The last successful fetch of `current`.
    fetched: Instant,
    /// The last attempt, successful or not.
    attempted: Instant,
    previous: Previous,
}

/// The `AWSPREVIOUS` value for the cached `current` version.
#[derive(Clone)]
enum Previous {
    /// Not read yet.
    Unread,
    /// Read (`None`: there is none).
    Read(Option<Credentials>),
    /// Reading it failed at this instant.
    Failed(Instant),
}

impl CredentialStore {
    /// A store over `source`, keeping a value at most `ttl`, with no fallback and no
    /// previous version ([`CredentialPolicy::strict`]).
    pub fn new(source: CredentialSource, ttl: Duration) -> Self {
        CredentialStore::with_policy(source, CredentialPolicy::strict(ttl), None)
    }

    /// A store over `source` under `policy`, calling `on_fallback` each time a cached
    /// value is served because Secrets Manager failed.
    pub fn with_policy(source: CredentialSource, policy: CredentialPolicy, on_fallback: Option<FallbackHook>) -> Self {
        CredentialStore { inner: Arc::new(Inner { source, policy, on_fallback, cached: RwLock::new(None) }) }
    }

    /// The policy in force.
    pub fn policy(&self) -> CredentialPolicy {
        self.inner.policy
    }

    /// The current credentials (`AWSCURRENT`), fetching them if none are cached or the
    /// cached ones expired; served from the cache within the fallback bound when the
    /// fetch fails.
    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        let ttl = self.inner.policy.ttl;
        if let Some(c) = self.inner.cached.read().await.as_ref()
            && c.fetched.elapsed() < ttl
        {
            return Ok(c.current.credentials.clone());
        }
        let mut slot = self.inner.cached.write().await;
        // Another task may have refreshed while we waited for the lock.
        if let Some(c) = slot.as_ref() {
            if c.fetched.elapsed() < ttl {
                return Ok(c.current.credentials.clone());
            }
            // Secrets Manager failed a moment ago: not asked again yet.
            if c.attempted > c.fetched
                && c.attempted.elapsed() < self.inner.policy.retry_pause()
                && self.within_fallback(c)
            {
                return Ok(c.current.credentials.clone());
            }
        }
        self.fetch_into(&mut slot, true).await
    }

    /// Fetches again unless the last attempt is younger than `min_age`: for a verifier
    /// that sees a signature it cannot check (the secret may have rotated) without
    /// letting a flood of forged requests hammer Secrets Manager. A failed fetch serves
    /// the cached value within the fallback bound.
    pub async fn refresh_if_older_than(&self, min_age: Duration) -> Result<Credentials, CredentialsError> {
        let mut slot = self.inner.cached.write().await;
        if let Some(c) = slot.as_ref()
            && c.attempted.elapsed() < min_age
            && self.within_fallback(c)
        {
            return Ok(c.current.credentials.clone());
        }
        self.fetch_into(&mut slot, true).await
    }

    /// Drops the cached value and fetches again (after a 401, the secret may have
    /// rotated). A failure is the caller's: the cached value was just refused.
    pub async fn refresh(&self) -> Result<Credentials, CredentialsError> {
        let mut slot = self.inner.cached.write().await;
        let fresh = self.fetch_into(&mut slot, false).await?;
        tracing::info!(source = ?self.inner.source, "Cabital credentials refetched");
        Ok(fresh)
    }

    /// The credentials the last rotation replaced (`AWSPREVIOUS`), while the current
    /// version is younger than the grace window; `None` otherwise, when there is none,
    /// or when it cannot be read (logged, reported to the hook, tried again after a
    /// pause). Read once per current version.
    pub async fn previous(&self) -> Result<Option<Credentials>, CredentialsError> {
        let grace = self.inner.policy.previous_grace;
        if grace.is_zero() {
            return Ok(None);
        }
        self.get().await?;
        let mut slot = self.inner.cached.write().await;
        let Some(c) = slot.as_mut() else { return Ok(None) };
        let in_grace = c
            .current
            .created
            .is_some_and(|created| SystemTime::now().duration_since(created).unwrap_or(Duration::ZERO) < grace);
        if !in_grace {
            return Ok(None);
        }
        match &c.previous {
            Previous::Read(p) => return Ok(p.clone()),
            Previous::Failed(at) if at.elapsed() < self.inner.policy.retry_pause() => return Ok(None),
            Previous::Failed(_) | Previous::Unread => {}
        }
        match limited(self.inner.source.fetch(Stage::Previous)).await {
            Ok(p) => {
                // The version the current one replaced is never the current one.
                let p = p.filter(|p| p.id.is_none() || p.id != c.current.id).map(|p| p.credentials);
                c.previous = Previous::Read(p.clone());
                Ok(p)
            }
            Err(e) => {
                c.previous = Previous::Failed(Instant::now());
                self.report(Fallback::Previous, &e);
                Ok(None)
            }
        }
    }

    fn within_fallback(&self, c: &Cached) -> bool {
        c.fetched.elapsed() < self.inner.policy.ttl.saturating_add(self.inner.policy.fallback)
    }

    /// Fetches `AWSCURRENT` into the slot; on failure, serves the cached value within the
    /// fallback bound when `fallback`.
    async fn fetch_into(&self, slot: &mut Option<Cached>, fallback: bool) -> Result<Credentials, CredentialsError> {
        let stand_in = fallback && slot.as_ref().is_some_and(|c| self.within_fallback(c));
        let fetched = if stand_in {
            limited(self.inner.source.fetch_current()).await
        } else {
            self.inner.source.fetch_current().await
        };
        match fetched {
            Ok(fresh) => {
                let now = Instant::now();
                let credentials = fresh.credentials.clone();
                // The previous version read for this same current version stays good.
                let previous = match slot.take() {
                    Some(old) if old.current.id.is_some() && old.current.id == fresh.id => old.previous,
                    _ => Previous::Unread,
                };
                *slot = Some(Cached { current: fresh, fetched: now, attempted: now, previous });
                tracing::debug!(source = ?self.inner.source, "Cabital credentials fetched");
                Ok(credentials)
            }
            Err(e) => {
                let Some(c) = slot.as_mut() else { return Err(e) };
                c.attempted = Instant::now();
                if !fallback || !self.within_fallback(c) {
                    return Err(e);
                }
                self.report(Fallback::Current, &e);
                Ok(c.current.credentials.clone())
            }
        }
    }

    fn report(&self, what: Fallback, error: &CredentialsError) {
        // The error names Secrets Manager's code only, never a value.
        tracing::warn!(
            reason = what.as_str(),
            error = %error,
            source = ?self.inner.source,
            "Secrets Manager failed: the Cabital secret held stands in"
        );
        if let Some(hook) = &self.inner.on_fallback {
            hook(what);
        }
    }
}

/// `fetch` within [`CredentialPolicy::STAND_IN_FETCH_LIMIT`]; past it, a retryable `Timeout`.
async fn limited<T>(
    fetch: impl std::future::Future<Output = Result<T, CredentialsError>>,
) -> Result<T, CredentialsError> {
    tokio::time::timeout(CredentialPolicy::STAND_IN_FETCH_LIMIT, fetch)
        .await
        .unwrap_or_else(|_| Err(CredentialsError::SecretsManager { code: "Timeout".into(), retryable: true }))
}
