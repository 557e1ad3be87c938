//! How settings are read ([`Env`], [`SettingError`]), and those the functions share with
//! `doctor`: how to reach Cabital and AWS. The functions' whole settings, read once at a
//! cold start, are `gateway_service::Settings`: it holds these, beside settings whose types
//! live in crates this one does not depend on (the store's time limits).

use std::str::FromStr;
use std::time::Duration;

use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use gateway_cabital::{CabitalClient, ClientConfig};
use gateway_signing::{CredentialPolicy, CredentialSource, CredentialStore, Fallback, FallbackHook};
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

/// Where settings are read from: the process's environment, or given values in tests.
#[derive(Clone, Copy)]
pub struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'static> {
    /// The process's environment.
    pub fn process() -> Self {
        Env(&process_var)
    }
}

fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl<'a> Env<'a> {
    /// Values from `var` (`None`: not set).
    pub fn with(var: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env(var)
    }

    /// A variable's value as given, or `None` when it is unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A required variable.
    pub fn required(&self, name: &'static str) -> Result<String, SettingError> {
        self.get(name).ok_or(SettingError::Missing(name))
    }

    /// An optional variable parsed (trimmed) with `FromStr`, or `default` when unset.
    pub fn parsed_or<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, SettingError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            Some(v) => v.trim().parse().map_err(|e: T::Err| SettingError::Invalid { name, reason: e.to_string() }),
            None => Ok(default),
        }
    }

    /// A duration in whole seconds, or `default` when unset.
    pub fn seconds_or(&self, name: &'static str, default: Duration) -> Result<Duration, SettingError> {
        self.parsed_or(name, default.as_secs()).map(Duration::from_secs)
    }

    /// A duration in milliseconds, or `default` when unset.
    pub fn millis_or(&self, name: &'static str, default: Duration) -> Result<Duration, SettingError> {
        self.parsed_or(name, default.as_millis() as u64).map(Duration::from_millis)
    }
}

/// A setting's word among `choices` (word, value), for `FromStr`: the error lists the words.
pub fn one_of<T: Copy>(word: &str, choices: &[(&str, T)]) -> Result<T, String> {
    match choices.iter().find(|(w, _)| *w == word) {
        Some((_, value)) => Ok(*value),
        None => {
            let words: Vec<String> = choices.iter().map(|(w, _)| format!("`{w}`")).collect();
            Err(format!("must be {}", words.join(" or ")))
        }
    }
}

/// The calls carry the API key, a signature and personal data: HTTPS, except to this
/// machine (the local stack and the tests).
fn check_base_url(base_url: &Url) -> Result<(), SettingError> {
    let plain_http_ok = base_url.scheme() == "http" && base_url.host().is_some_and(|h| is_loopback(&h));
    if base_url.scheme() != "https" && !plain_http_ok {
        return Err(SettingError::Invalid {
            name: "CABITAL_BASE_URL",
            reason: "must be an https URL (http only to a loopback address: 127.0.0.0/8, localhost, [::1])".into(),
        });
    }
    Ok(())
}

/// 127.0.0.0/8, `[::1]` and `localhost`: traffic to it never leaves the machine.
pub fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    }
}

/// Secrets Manager's time limits: to connect, per attempt, per call with its retries.
pub const SECRETS_TIMEOUTS: (Duration, Duration, Duration) =
    (Duration::from_secs(2), Duration::from_secs(2), Duration::from_secs(4));

/// `CABITAL_BASE_URL` when unset.
pub const DEFAULT_BASE_URL: &str = "https://caas.cabital.com";

/// How to reach Cabital: shared by the three functions.
#[derive(Debug, Clone)]
pub struct CabitalSettings {
    /// `CABITAL_SECRET_ID`: the Secrets Manager secret holding `{"apiKey", "apiSecret"}`.
    pub secret_id: String,
    /// `CABITAL_SECRET_TTL_SECS`: how long the secret is cached (default 300).
    pub secret_ttl: Duration,
    /// `CABITAL_SECRET_FALLBACK_SECS`: when Secrets Manager fails, how long past its
    /// lifetime the cached secret is still served (default 900; 0: never).
    pub secret_fallback: Duration,
    /// `CABITAL_SECRET_PREVIOUS_GRACE_SECS`: how long after a rotation (the
    /// `AWSCURRENT` version's creation) webhooks signed with the `AWSPREVIOUS` value
    /// still verify (default 90000, 25 h: Cabital resends a delivery for 24 h 5 min
    /// under its first headers; 0: never).
    pub secret_previous_grace: Duration,
    /// The client's [`ClientConfig::new`] defaults, with `CABITAL_BASE_URL` (default
    /// [`DEFAULT_BASE_URL`]), `CABITAL_SIGNATURE_ENCODING` (`base64` or `hex`, for the
    /// calls we send), `CABITAL_REQUEST_TIMEOUT_MS` (one attempt) and
    /// `CABITAL_MAX_ATTEMPTS` (for a retryable failure) over them.
    pub client: ClientConfig,
}

impl CabitalSettings {
    /// Reads the settings; unset ones take their defaults.
    pub fn read(env: &Env) -> Result<Self, SettingError> {
        let default_url = Url::parse(DEFAULT_BASE_URL)
            .map_err(|e| SettingError::Invalid { name: "CABITAL_BASE_URL", reason: e.to_string() })?;
        let d = ClientConfig::new(default_url);
        let base_url = env.parsed_or("CABITAL_BASE_URL", d.base_url.clone())?;
        check_base_url(&base_url)?;
        let max_attempts: u32 = env.parsed_or("CABITAL_MAX_ATTEMPTS", d.max_attempts)?;
        if max_attempts == 0 {
            return Err(SettingError::Invalid { name: "CABITAL_MAX_ATTEMPTS", reason: "must be at least 1".into() });
        }
        let secret_id = env.required("CABITAL_SECRET_ID")?;
        let encoding = env.parsed_or("CABITAL_SIGNATURE_ENCODING", d.encoding)?;
        let secret_ttl = env.seconds_or("CABITAL_SECRET_TTL_SECS", Duration::from_secs(300))?;
        let (secret_fallback, secret_previous_grace) = read_rotation_settings(env)?;
        let request_timeout = env.millis_or("CABITAL_REQUEST_TIMEOUT_MS", d.request_timeout)?;
        let client = ClientConfig { base_url, encoding, request_timeout, max_attempts, ..d };
        Ok(CabitalSettings { secret_id, secret_ttl, secret_fallback, secret_previous_grace, client })
    }

    /// The credential store over Secrets Manager ([`secrets_manager_source`]), with
    /// the fallback and the grace window, each fallback emitting `SecretFallback`.
    pub fn credential_store(&self, sdk: &aws_config::SdkConfig) -> CredentialStore {
        self.credential_store_with(sdk, Some(std::sync::Arc::new(emit_secret_fallback)))
    }

    /// The same, with another hook for the fallbacks (tests count them).
    pub fn credential_store_with(&self, sdk: &aws_config::SdkConfig, hook: Option<FallbackHook>) -> CredentialStore {
        let policy = CredentialPolicy {
            ttl: self.secret_ttl,
            fallback: self.secret_fallback,
            previous_grace: self.secret_previous_grace,
        };
        let source = secrets_manager_source(sdk, self.secret_id.clone());
        CredentialStore::with_policy(source, policy, hook)
    }

    /// The Cabital client over the given credentials.
    pub fn client(&self, credentials: CredentialStore) -> Result<CabitalClient, gateway_cabital::CabitalError> {
        CabitalClient::new(self.client.clone(), credentials)
    }
}

/// The credential store over the Secrets Manager secret `secret_id`, cached for `ttl`.
///
/// The client has time limits ([`SECRETS_TIMEOUTS`]): the SDK sets none by default,
/// and a fetch that hangs (the secret's cache expired while Secrets Manager does not
/// answer) would otherwise hold the request until the Lambda's own timeout, where a
/// webhook must answer 503 in seconds so that Cabital retries.
pub fn credential_store(sdk: &aws_config::SdkConfig, secret_id: String, ttl: Duration) -> CredentialStore {
    CredentialStore::new(secrets_manager_source(sdk, secret_id), ttl)
}

/// The Secrets Manager source of [`credential_store`], with its time limits.
pub fn secrets_manager_source(sdk: &aws_config::SdkConfig, secret_id: String) -> CredentialSource {
    let (connect, attempt, operation) = SECRETS_TIMEOUTS;
    let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(
            aws_sdk_secretsmanager::config::timeout::TimeoutConfig::builder()
                .connect_timeout(connect)
                .operation_attempt_timeout(attempt)
                .operation_timeout(operation)
                .build(),
        )
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);
    CredentialSource::SecretsManager { client, secret_id }
}

/// The longest fallback taken: a secret served a day past its lifetime may be one
/// Cabital revoked long ago.
const MAX_SECRET_FALLBACK: Duration = Duration::from_secs(86_400);
/// The longest grace window taken for the previous secret.
const MAX_PREVIOUS_GRACE: Duration = Duration::from_secs(7 * 86_400);

/// `CABITAL_SECRET_FALLBACK_SECS` and `CABITAL_SECRET_PREVIOUS_GRACE_SECS`, bounded.
fn read_rotation_settings(env: &Env) -> Result<(Duration, Duration), SettingError> {
    let fallback = env.seconds_or("CABITAL_SECRET_FALLBACK_SECS", Duration::from_secs(900))?;
    if fallback > MAX_SECRET_FALLBACK {
        return Err(SettingError::Invalid {
            name: "CABITAL_SECRET_FALLBACK_SECS",
            reason: format!("must be at most {} (a day)", MAX_SECRET_FALLBACK.as_secs()),
        });
    }
    let grace = env.seconds_or("CABITAL_SECRET_PREVIOUS_GRACE_SECS", Duration::from_secs(90_000))?;
    if grace > MAX_PREVIOUS_GRACE {
        return Err(SettingError::Invalid {
            name: "CABITAL_SECRET_PREVIOUS_GRACE_SECS",
            reason: format!("must be at most {} (7 days)", MAX_PREVIOUS_GRACE.as_secs()),
        });
    }
    Ok((fallback, grace))
}

/// The metric counting each time Secrets Manager failed and a cached secret stood in
/// (alarmed in the template).
pub const SECRET_FALLBACK_METRIC: &str = "SecretFallback";

/// Emits [`SECRET_FALLBACK_METRIC`] (count 1, dimension `Reason`).
pub fn emit_secret_fallback(reason: Fallback) {
    crate::metrics::emit(&[("Reason", reason.as_str())], &[(SECRET_FALLBACK_METRIC, 1.0, crate::metrics::Unit::Count)]);
}

/// Which roots the AWS SDK's connections trust (`AWS_TLS_ROOTS`, the gateway's setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsTlsRoots {
    /// `amazon`: Amazon Trust Services' five roots, which issue the certificates of AWS's
    /// service endpoints (Secrets Manager and DynamoDB here, FIPS and VPC endpoints
    /// included): a certificate from any other authority is refused on the connections
    /// that carry the API secret and the cases. The default, except in the China regions.
    Amazon,
    /// `mozilla`: Mozilla's roots, all of them (the Cabital client's store). The default in
    /// the China regions (`cn-*`), a partition apart whose endpoint certificates are not
    /// assumed to be Amazon Trust Services'; and the setting for an endpoint override
    /// (`AWS_ENDPOINT_URL`) served over HTTPS by something else.
    Mozilla,
}

impl FromStr for AwsTlsRoots {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        one_of(s, &[("amazon", AwsTlsRoots::Amazon), ("mozilla", AwsTlsRoots::Mozilla)])
    }
}

/// The AWS settings the gateway reads itself (the SDK reads the rest: endpoint, credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, as the SDK's environment provider reads them.
    pub region: Option<String>,
    /// `AWS_TLS_ROOTS`, or the default for the region.
    pub tls_roots: AwsTlsRoots,
}

impl AwsSettings {
    /// Reads the settings; unset ones take their defaults.
    pub fn read(env: &Env) -> Result<Self, SettingError> {
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"].into_iter().find_map(|name| env.get(name));
        let tls_roots =
            env.parsed_or("AWS_TLS_ROOTS", AwsTlsRoots::default_for(region.as_deref().unwrap_or_default()))?;
        Ok(AwsSettings { region, tls_roots })
    }
}

impl AwsTlsRoots {
    /// `mozilla` in the China regions, `amazon` elsewhere.
    pub fn default_for(region: &str) -> Self {
        if region.trim().starts_with("cn-") { AwsTlsRoots::Mozilla } else { AwsTlsRoots::Amazon }
    }

    /// The roots as one PEM document (written by `build.rs`).
    pub fn pem(self) -> &'static str {
        match self {
            AwsTlsRoots::Amazon => AMAZON_ROOTS_PEM,
            AwsTlsRoots::Mozilla => MOZILLA_ROOTS_PEM,
        }
    }
}

/// The AWS SDK's shared configuration (region, credentials, `AWS_ENDPOINT_URL` for the
/// emulator), with [`aws_http_client`].
///
/// Lambda hands a function its role's credentials in `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`: when they are set, they are read
/// from there, as the SDK's default chain would read them first, without building the
/// rest of that chain at each cold start (its web-identity link builds a whole STS
/// client, with the parse of STS's endpoint partitions: `./bench/run.sh` measures the
/// init). Without them, the default chain (profiles, SSO, containers, IMDS).
pub async fn aws_sdk_config(aws: &AwsSettings) -> aws_config::SdkConfig {
    let loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(aws_http_client(aws.tls_roots));
    let loader = if credentials_in_env() {
        loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
    } else {
        loader
    };
    // The region likewise: Lambda sets `AWS_REGION`, the default chain's first link.
    let loader = match &aws.region {
        Some(region) => loader.region(aws_config::Region::new(region.clone())),
        None => loader,
    };
    loader.load().await
}

/// Whether the environment holds an access key (what Lambda sets for the function's role).
fn credentials_in_env() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    set("AWS_ACCESS_KEY_ID") && (set("AWS_SECRET_ACCESS_KEY") || set("SECRET_ACCESS_KEY"))
}

/// The SDK's own HTTPS client (hyper, rustls with aws-lc) trusting `roots`, compiled in:
/// no certificate file or folder read at a cold start (the SDK's default reads the
/// OS's, which on Debian is hundreds of files), and by default only the five roots
/// AWS's endpoints chain to, where Mozilla's hundred and more cost the cold start their
/// parse (`./bench/run.sh` measures the init). Its connectors are built on first use
/// only ([`ConnectOnFirstUse`]).
pub fn aws_http_client(roots: AwsTlsRoots) -> SharedHttpClient {
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(roots.pem());
    let tls = TlsContext::builder().with_trust_store(trust);
    let builder = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
    let https = match tls.build() {
        Ok(tls) => builder.tls_context(tls).build_https(),
        // Cannot happen (building a context only moves its parts); the SDK's default
        // context, the OS's roots, is then the right fallback.
        Err(_) => builder.build_https(),
    };
    SharedHttpClient::new(ConnectOnFirstUse(https))
}

/// An SDK HTTP client whose connectors are built when a request first needs one, not
/// also when each SDK client is constructed.
///
/// The SDK's hyper client builds a whole HTTPS connector (a rustls configuration, which
/// parses every root certificate) in `validate_base_client_config`, when each service
/// client is constructed, so that OS certificates load early; and throws it away: it
/// builds the connector it uses, once per time-limit settings, at the first request.
/// With the roots compiled in there is nothing to load early, and two clients (Secrets
/// Manager, DynamoDB) with the same connect timeout share one connector: one build in
/// the init instead of three (`./bench/run.sh` measures the init).
#[derive(Debug)]
pub struct ConnectOnFirstUse(pub SharedHttpClient);

impl HttpClient for ConnectOnFirstUse {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        config: &aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, config)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// Mozilla's root certificates (`webpki-root-certs`) as one PEM document, written by
/// `build.rs`.
const MOZILLA_ROOTS_PEM: &str = include_str!(concat!(env!("OUT_DIR"), "/mozilla_roots.pem"));

/// Amazon Trust Services' roots, of those, as one PEM document, written by `build.rs`.
const AMAZON_ROOTS_PEM: &str = include_str!(concat!(env!("OUT_DIR"), "/amazon_roots.pem"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cabital_is_reached_over_https_or_on_this_machine() {
        let ok = |u: &str| check_base_url(&Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://caas.cabital.com"));
        assert!(ok("https://proxy.example/cabital/"));
        for loopback in ["http://127.0.0.1:8080", "http://127.3.2.1", "http://localhost:9000", "http://[::1]:80"] {
            assert!(ok(loopback), "{loopback}");
        }
        for refused in ["http://caas.cabital.com", "http://10.0.0.1", "http://localhost.example", "ftp://127.0.0.1"] {
            assert!(!ok(refused), "{refused}");
        }
    }

    /// Reads from the given pairs only.
    fn with<T>(pairs: &[(&str, &str)], read: impl FnOnce(&Env) -> T) -> T {
        let var = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        read(&Env::with(&var))
    }

    #[test]
    fn cabital_settings_default_to_the_clients_own() {
        let s = with(&[("CABITAL_SECRET_ID", "cabital/api")], CabitalSettings::read).unwrap();
        let d = ClientConfig::new(Url::parse(DEFAULT_BASE_URL).unwrap());
        assert_eq!(s.secret_id, "cabital/api");
        assert_eq!(s.secret_ttl, Duration::from_secs(300));
        assert_eq!(s.client.base_url.as_str(), "https://caas.cabital.com/");
        assert_eq!(s.client.encoding, gateway_signing::SignatureEncoding::Base64);
        assert_eq!((s.client.request_timeout, s.client.max_attempts), (Duration::from_secs(8), 3));
        assert_eq!((s.client.request_timeout, s.client.max_attempts), (d.request_timeout, d.max_attempts));
    }

    #[test]
    fn cabital_settings_are_read_and_a_bad_one_is_named() {
        let s = with(
            &[
                ("CABITAL_SECRET_ID", "id"),
                ("CABITAL_BASE_URL", " http://127.0.0.1:9000 "),
                ("CABITAL_SIGNATURE_ENCODING", "hex"),
                ("CABITAL_SECRET_TTL_SECS", "30"),
                ("CABITAL_REQUEST_TIMEOUT_MS", "1500"),
                ("CABITAL_MAX_ATTEMPTS", "1"),
            ],
            CabitalSettings::read,
        )
        .unwrap();
        assert_eq!(s.client.base_url.as_str(), "http://127.0.0.1:9000/");
        assert_eq!(s.client.encoding, gateway_signing::SignatureEncoding::Hex);
        assert_eq!(s.secret_ttl, Duration::from_secs(30));
        assert_eq!((s.client.request_timeout, s.client.max_attempts), (Duration::from_millis(1500), 1));

        let error = |pairs: &[(&str, &str)]| with(pairs, CabitalSettings::read).unwrap_err().to_string();
        assert_eq!(error(&[("CABITAL_SECRET_ID", "  ")]), "setting CABITAL_SECRET_ID is required but not set");
        assert_eq!(
            error(&[("CABITAL_SECRET_ID", "id"), ("CABITAL_MAX_ATTEMPTS", "0")]),
            "setting CABITAL_MAX_ATTEMPTS is invalid: must be at least 1"
        );
        assert!(
            error(&[("CABITAL_SECRET_ID", "id"), ("CABITAL_SIGNATURE_ENCODING", "b64")])
                .starts_with("setting CABITAL_SIGNATURE_ENCODING is invalid: ")
        );
        assert!(error(&[("CABITAL_BASE_URL", "http://10.0.0.1")]).starts_with("setting CABITAL_BASE_URL is invalid: "));
    }

    #[test]
    fn the_rotation_settings_default_to_a_day_of_grace_and_a_quarter_hour_of_fallback() {
        let s = with(&[("CABITAL_SECRET_ID", "id")], CabitalSettings::read).unwrap();
        assert_eq!(
            (s.secret_fallback, s.secret_previous_grace),
            (Duration::from_secs(900), Duration::from_secs(90_000))
        );
        let pairs = [
            ("CABITAL_SECRET_ID", "id"),
            ("CABITAL_SECRET_FALLBACK_SECS", "0"),
            ("CABITAL_SECRET_PREVIOUS_GRACE_SECS", "2"),
        ];
        let s = with(&pairs, CabitalSettings::read).unwrap();
        assert_eq!((s.secret_fallback, s.secret_previous_grace), (Duration::ZERO, Duration::from_secs(2)));
        let error = |pairs: &[(&str, &str)]| with(pairs, CabitalSettings::read).unwrap_err().to_string();
        assert_eq!(
            error(&[("CABITAL_SECRET_ID", "id"), ("CABITAL_SECRET_FALLBACK_SECS", "86401")]),
            "setting CABITAL_SECRET_FALLBACK_SECS is invalid: must be at most 86400 (a day)"
        );
        assert_eq!(
            error(&[("CABITAL_SECRET_ID", "id"), ("CABITAL_SECRET_PREVIOUS_GRACE_SECS", "604801")]),
            "setting CABITAL_SECRET_PREVIOUS_GRACE_SECS is invalid: must be at most 604800 (7 days)"
        );
        assert!(
            error(&[("CABITAL_SECRET_ID", "id"), ("CABITAL_SECRET_FALLBACK_SECS", "-1")])
                .starts_with("setting CABITAL_SECRET_FALLBACK_SECS is invalid: ")
        );
    }

    #[test]
    fn the_aws_settings_take_the_region_and_its_roots() {
        let s = with(&[("AWS_DEFAULT_REGION", "cn-north-1"), ("AWS_REGION", " ")], AwsSettings::read).unwrap();
        assert_eq!(s, AwsSettings { region: Some("cn-north-1".into()), tls_roots: AwsTlsRoots::Mozilla });
        let s = with(&[("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "cn-north-1")], AwsSettings::read).unwrap();
        assert_eq!(s, AwsSettings { region: Some("eu-west-1".into()), tls_roots: AwsTlsRoots::Amazon });
        let s = with(&[("AWS_TLS_ROOTS", "mozilla")], AwsSettings::read).unwrap();
        assert_eq!(s, AwsSettings { region: None, tls_roots: AwsTlsRoots::Mozilla });
        assert_eq!(
            with(&[("AWS_TLS_ROOTS", "os")], AwsSettings::read).unwrap_err().to_string(),
            "setting AWS_TLS_ROOTS is invalid: must be `amazon` or `mozilla`"
        );
    }

    #[test]
    fn the_aws_roots_are_mozillas_every_one_parseable() {
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(MOZILLA_ROOTS_PEM.as_bytes())
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(certs.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(certs.len() > 100, "Mozilla's store has well over 100 roots, got {}", certs.len());
        for (ours, theirs) in certs.iter().zip(webpki_root_certs::TLS_SERVER_ROOT_CERTS) {
            assert_eq!(ours.as_ref(), theirs.as_ref());
            // What the SDK does with each (and panics on, were one unparseable).
            webpki::anchor_from_trusted_cert(ours).expect("a usable trust anchor");
        }
    }

    fn anchors(pem: &str) -> Vec<Vec<u8>> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| {
                let c = c.expect("valid PEM");
                webpki::anchor_from_trusted_cert(&c).expect("a usable trust anchor").subject.as_ref().to_vec()
            })
            .collect()
    }

    #[test]
    fn the_amazon_roots_are_amazon_trust_services_five_and_mozillas() {
        let amazon = anchors(AMAZON_ROOTS_PEM);
        let mozilla = anchors(MOZILLA_ROOTS_PEM);
        let named = |subject: &[u8], name: &str| subject.windows(name.len()).any(|w| w == name.as_bytes());
        let expected = [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ];
        assert_eq!(amazon.len(), expected.len());
        for (subject, name) in amazon.iter().zip(expected) {
            assert!(named(subject, name), "expected {name:?}");
            assert!(mozilla.contains(subject), "{name} is one of Mozilla's roots");
        }
        // Not GoDaddy's Starfield root, whose name is close.
        assert!(!amazon.iter().any(|s| named(s, "Starfield Root Certificate Authority - G2")));
    }

    #[test]
    fn the_roots_setting_parses_and_defaults_by_partition() {
        assert_eq!(AwsTlsRoots::default_for("eu-west-1"), AwsTlsRoots::Amazon);
        assert_eq!(AwsTlsRoots::default_for("us-gov-west-1"), AwsTlsRoots::Amazon);
        assert_eq!(AwsTlsRoots::default_for("cn-north-1"), AwsTlsRoots::Mozilla);
        assert_eq!(AwsTlsRoots::default_for(""), AwsTlsRoots::Amazon);
        assert_eq!("amazon".parse(), Ok(AwsTlsRoots::Amazon));
        assert_eq!("mozilla".parse(), Ok(AwsTlsRoots::Mozilla));
        assert!("Mozilla".parse::<AwsTlsRoots>().is_err());
        assert!("os".parse::<AwsTlsRoots>().is_err());
        assert_eq!(AwsTlsRoots::Amazon.pem(), AMAZON_ROOTS_PEM);
        assert_eq!(AwsTlsRoots::Mozilla.pem(), MOZILLA_ROOTS_PEM);
    }

    /// The SDK's configuration for a test server on 127.0.0.1 (a region, test credentials).
    fn test_sdk(port: u16) -> aws_config::ConfigLoader {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
    }

    /// An inner client that counts the SDK's calls.
    #[derive(Debug)]
    struct Counting {
        validated: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        connectors: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        real: SharedHttpClient,
    }

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            self.connectors.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.real.http_connector(settings, components)
        }

        fn validate_base_client_config(
            &self,
            components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder,
            config: &aws_sdk_secretsmanager::config::ConfigBag,
        ) -> Result<(), BoxError> {
            self.validated.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.real.validate_base_client_config(components, config)
        }
    }

    /// Secrets Manager clients over `http`, against a server that answers every request
    /// with a service error; returns the calls the inner client saw: (validations,
    /// connector requests), after constructing two clients and after one call each.
    async fn count_calls(wrap: bool) -> ((usize, usize), (usize, usize)) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let body = r#"{"__type":"ResourceNotFoundException","message":"none here"}"#;
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let answer = format!(
                            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let validated = std::sync::Arc::new(AtomicUsize::new(0));
        let connectors = std::sync::Arc::new(AtomicUsize::new(0));
        let counting = SharedHttpClient::new(Counting {
            validated: validated.clone(),
            connectors: connectors.clone(),
            real: aws_http_client(AwsTlsRoots::Amazon),
        });
        let http = if wrap { SharedHttpClient::new(ConnectOnFirstUse(counting)) } else { counting };
        let sdk = test_sdk(port).http_client(http).load().await;
        let clients = [aws_sdk_secretsmanager::Client::new(&sdk), aws_sdk_secretsmanager::Client::new(&sdk)];
        let constructed = (validated.load(Ordering::SeqCst), connectors.load(Ordering::SeqCst));
        for client in &clients {
            let err = client.get_secret_value().secret_id("x").send().await.expect_err("the server refuses");
            assert!(
                err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()),
                "the request reached the server and its answer came back: {err:?}"
            );
        }
        server.abort();
        (constructed, (validated.load(Ordering::SeqCst), connectors.load(Ordering::SeqCst)))
    }

    #[tokio::test]
    async fn sdk_clients_build_no_connector_until_a_request_needs_one() {
        // The SDK's own client validates (builds a throw-away connector) per client.
        let (constructed, _) = count_calls(false).await;
        assert!(constructed.0 >= 2, "the SDK validates each client it constructs: {constructed:?}");
        // Wrapped: nothing at construction; the requests still get their connector.
        let (constructed, after) = count_calls(true).await;
        assert_eq!(constructed, (0, 0), "constructing two clients asked for nothing");
        assert_eq!(after.0, 0, "no validation build at all");
        assert!(after.1 >= 2, "each request asked for its connector: {after:?}");
    }

    /// A Secrets Manager that accepts connections and never answers (an emulator frozen
    /// with SIGSTOP, a hung endpoint): fetching the secret fails within the time limits.
    #[tokio::test]
    async fn a_secrets_manager_that_hangs_fails_within_the_time_limits() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let sdk = test_sdk(port).load().await;
        let store = credential_store(&sdk, "hung".into(), Duration::from_secs(30));
        let started = std::time::Instant::now();
        let fetched = store.get().await;
        held.abort();
        assert!(fetched.is_err());
        let bound = SECRETS_TIMEOUTS.2 + Duration::from_secs(2);
        assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
    }
}
