//! Settings from the environment, checked once at start.

use std::str::FromStr;
use std::time::Duration;

use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
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

/// How to reach Cabital: shared by the three functions.
#[derive(Debug, Clone)]
pub struct CabitalSettings {
    /// `CABITAL_BASE_URL` (default `https://caas.cabital.com`).
    pub base_url: Url,
    /// `CABITAL_SECRET_ID`: the Secrets Manager secret holding `{"apiKey", "apiSecret"}`.
    pub secret_id: String,
    /// `CABITAL_SIGNATURE_ENCODING`: `base64` (default) or `hex`, for the calls we send.
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
        check_base_url(&base_url)?;
        let max_attempts: u32 = parsed_or("CABITAL_MAX_ATTEMPTS", 3)?;
        if max_attempts == 0 {
            return Err(SettingError::Invalid { name: "CABITAL_MAX_ATTEMPTS", reason: "must be at least 1".into() });
        }
        Ok(CabitalSettings {
            base_url,
            secret_id: required("CABITAL_SECRET_ID")?,
            encoding: parsed_or("CABITAL_SIGNATURE_ENCODING", SignatureEncoding::default())?,
            secret_ttl: seconds_or("CABITAL_SECRET_TTL_SECS", 300)?,
            request_timeout: Duration::from_millis(parsed_or("CABITAL_REQUEST_TIMEOUT_MS", 8000)?),
            max_attempts,
        })
    }

    /// The credential store over Secrets Manager.
    ///
    /// The client has time limits ([`SECRETS_TIMEOUTS`]): the SDK sets none by default,
    /// and a fetch that hangs (the secret's cache expired while Secrets Manager does not
    /// answer) would otherwise hold the request until the Lambda's own timeout, where a
    /// webhook must answer 503 in seconds so that Cabital retries.
    pub fn credential_store(&self, sdk: &aws_config::SdkConfig) -> CredentialStore {
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
        match s {
            "amazon" => Ok(AwsTlsRoots::Amazon),
            "mozilla" => Ok(AwsTlsRoots::Mozilla),
            _ => Err("must be `amazon` or `mozilla`".into()),
        }
    }
}

impl AwsTlsRoots {
    /// `AWS_TLS_ROOTS`, or the default for `AWS_REGION`.
    pub fn from_env() -> Result<Self, SettingError> {
        parsed_or("AWS_TLS_ROOTS", Self::default_for(&region_in_env().unwrap_or_default()))
    }

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
pub async fn aws_sdk_config(roots: AwsTlsRoots) -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(aws_http_client(roots));
    let loader = if credentials_in_env() {
        loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
    } else {
        loader
    };
    // The region likewise: Lambda sets `AWS_REGION`, the default chain's first link.
    let loader = match region_in_env() {
        Some(region) => loader.region(aws_config::Region::new(region)),
        None => loader,
    };
    loader.load().await
}

/// `AWS_REGION`, else `AWS_DEFAULT_REGION`, as the SDK's environment provider reads them.
fn region_in_env() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|v| !v.trim().is_empty())
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
        let settings = CabitalSettings {
            base_url: Url::parse("http://127.0.0.1:9").unwrap(),
            secret_id: "hung".into(),
            encoding: SignatureEncoding::Hex,
            secret_ttl: Duration::from_secs(30),
            request_timeout: Duration::from_secs(1),
            max_attempts: 1,
        };
        let store = settings.credential_store(&sdk);
        let started = std::time::Instant::now();
        let fetched = store.get().await;
        held.abort();
        assert!(fetched.is_err());
        let bound = SECRETS_TIMEOUTS.2 + Duration::from_secs(2);
        assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
    }
}
