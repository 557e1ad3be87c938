//! Settings from the environment, checked once at start.

use std::str::FromStr;
use std::time::Duration;

use cabital_client::{CabitalClient, ClientConfig};
use cabital_signing::{CredentialSource, CredentialStore, SignatureEncoding};
use url::Url;

/// A setting is missing or malformed. Names the variable, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// The variable is not set (or empty).
    #[error("setting {0} is required but not set")]
    Missing(&'static str),
    /// The variable is set but cannot be read.
    #[error("setting {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A required variable.
pub fn required(name: &'static str) -> Result<String, SettingError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(SettingError::Missing(name)),
    }
}

/// An optional variable parsed with `FromStr`, or `default` when unset.
pub fn parsed_or<T: FromStr>(name: &'static str, default: T) -> Result<T, SettingError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().map_err(|e: T::Err| SettingError::Invalid { name, reason: e.to_string() })
        }
        _ => Ok(default),
    }
}

/// A duration in whole seconds, or `default` when unset.
pub fn seconds_or(name: &'static str, default: u64) -> Result<Duration, SettingError> {
    parsed_or(name, default).map(Duration::from_secs)
}

/// How to reach Cabital: shared by the three functions.
#[derive(Debug, Clone)]
pub struct CabitalSettings {
    /// `CABITAL_BASE_URL` (default `https://caas.cabital.com`).
    pub base_url: Url,
    /// `CABITAL_SECRET_ID`: the Secrets Manager secret holding `{"apiKey", "apiSecret"}`.
    pub secret_id: String,
    /// `CABITAL_SIGNATURE_ENCODING`: `hex` (default) or `base64`.
    pub encoding: SignatureEncoding,
    /// `CABITAL_SECRET_TTL_SECS`: how long the secret is cached (default 300).
    pub secret_ttl: Duration,
    /// `CABITAL_REQUEST_TIMEOUT_MS`: one attempt's time limit (default 8000).
    pub request_timeout: Duration,
    /// `CABITAL_MAX_ATTEMPTS`: attempts for a retryable failure (default 3).
    pub max_attempts: u32,
}

impl CabitalSettings {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, SettingError> {
        let base_url = parsed_or(
            "CABITAL_BASE_URL",
            Url::parse("https://caas.cabital.com")
                .map_err(|e| SettingError::Invalid { name: "CABITAL_BASE_URL", reason: e.to_string() })?,
        )?;
        if !matches!(base_url.scheme(), "https" | "http") {
            return Err(SettingError::Invalid { name: "CABITAL_BASE_URL", reason: "must be an http(s) URL".into() });
        }
        let max_attempts: u32 = parsed_or("CABITAL_MAX_ATTEMPTS", 3)?;
        if max_attempts == 0 {
            return Err(SettingError::Invalid { name: "CABITAL_MAX_ATTEMPTS", reason: "must be at least 1".into() });
        }
        Ok(CabitalSettings {
            base_url,
            secret_id: required("CABITAL_SECRET_ID")?,
            encoding: parsed_or("CABITAL_SIGNATURE_ENCODING", SignatureEncoding::Hex)?,
            secret_ttl: seconds_or("CABITAL_SECRET_TTL_SECS", 300)?,
            request_timeout: Duration::from_millis(parsed_or("CABITAL_REQUEST_TIMEOUT_MS", 8000)?),
            max_attempts,
        })
    }

    /// The credential store over Secrets Manager.
    pub fn credential_store(&self, sdk: &aws_config::SdkConfig) -> CredentialStore {
        let client = aws_sdk_secretsmanager::Client::new(sdk);
        CredentialStore::new(
            CredentialSource::SecretsManager { client, secret_id: self.secret_id.clone() },
            self.secret_ttl,
        )
    }

    /// The Cabital client over the given credentials.
    pub fn client(&self, credentials: CredentialStore) -> Result<CabitalClient, cabital_client::CabitalError> {
        let mut config = ClientConfig::new(self.base_url.clone());
        config.encoding = self.encoding;
        config.request_timeout = self.request_timeout;
        config.max_attempts = self.max_attempts;
        CabitalClient::new(config, credentials)
    }
}

/// The AWS SDK's shared configuration (region, credentials, `AWS_ENDPOINT_URL` for the emulator).
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}
