//! Helpers for tests that run against the moto emulator (DynamoDB, Secrets Manager).
//!
//! `./scripts/test.sh` starts moto and exports `MOTO_ENDPOINT`; every helper here panics
//! with a message saying so when it is missing, so that a test needing moto fails
//! loudly instead of passing without having run.
//!
//! # One request at a time
//! DynamoDB applies each request atomically: a conditional write or a transaction is
//! checked and applied as one step. moto does not: its server handles requests on
//! concurrent threads, checks a transaction's conditions and applies its writes item by
//! item, and on a cancelled transaction restores a copy of the whole table taken before
//! it began, undoing writes another request made meanwhile. Tests of concurrent writers
//! (exactly one reservation wins, two first deliveries make one event) then fail
//! intermittently for moto's sake, not the code's. So the clients built here send one
//! request at a time per test process (see [`aws_config()`]): the requests of concurrent
//! operations still interleave as they do against DynamoDB, and each is atomic, as it
//! is on DynamoDB.

#![warn(missing_docs)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// The emulator's URL, from `MOTO_ENDPOINT`.
///
/// # Panics
/// When `MOTO_ENDPOINT` is not set (or empty): the test cannot run without moto.
pub fn moto_endpoint() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!("MOTO_ENDPOINT is not set: run ./scripts/test.sh, which starts moto"),
    }
}

/// AWS settings for moto: its endpoint, `us-east-1`, static test credentials, and an
/// HTTP client that sends one request at a time (see the crate's documentation).
///
/// # Panics
/// When `MOTO_ENDPOINT` is not set.
pub async fn aws_config() -> SdkConfig {
    // The SDK's default client (hyper, rustls with aws-lc), built here so it can be wrapped.
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "gateway-support"))
        .http_client(one_at_a_time(inner))
        .load()
        .await
}

/// Held while one request is with moto.
static MOTO_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Wraps `inner` so that every request waits for [`MOTO_TURN`].
fn one_at_a_time(inner: SharedHttpClient) -> SharedHttpClient {
    http_client_fn(move |settings, components| {
        SharedHttpConnector::new(OneAtATime(inner.http_connector(settings, components)))
    })
}

#[derive(Debug)]
struct OneAtATime(SharedHttpConnector);

impl HttpConnector for OneAtATime {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            // Until the response's head arrives: moto has then applied the request.
            let _turn = MOTO_TURN.lock().await;
            inner.call(request).await
        })
    }
}

/// A DynamoDB client for moto, built like the functions build theirs
/// ([`gateway_store::dynamodb_client`]).
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    gateway_store::dynamodb_client(&aws_config().await).await
}

/// A Secrets Manager client for moto.
pub async fn secretsmanager_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&aws_config().await)
}

/// A new table with the store's definition and a unique name, so tests run in
/// parallel without resetting moto. Returns the client and the table's name.
///
/// # Panics
/// When the table cannot be created: the test cannot run.
pub async fn fresh_table() -> (aws_sdk_dynamodb::Client, String) {
    let client = dynamodb().await;
    let name = format!("kyc-test-{}", uuid::Uuid::new_v4().simple());
    if let Err(e) = gateway_store::create_table(&client, &name).await {
        panic!("could not create table {name} in moto at {}: {e}", moto_endpoint());
    }
    (client, name)
}

/// A [`gateway_store::Store`] over a fresh table.
pub async fn fresh_store() -> gateway_store::Store {
    let (client, name) = fresh_table().await;
    gateway_store::Store::new(client, name)
}

/// The API key every harness uses, at the sandbox and in the secret.
pub const API_KEY: &str = "harness-api-key";
/// The API secret every harness uses.
pub const API_SECRET: &str = "harness-api-secret-9f2c41d7";

/// A gateway over a fresh table in moto and a Cabital sandbox on 127.0.0.1, its
/// credentials read from a real Secrets Manager secret in moto.
pub struct Harness {
    /// The gateway, built as the functions build theirs, but pointed at the sandbox.
    pub gateway: gateway_service::Gateway,
    /// The settings it was built from (see [`settings`]).
    pub settings: gateway_service::Settings,
    /// The sandbox (stopped when dropped).
    pub sandbox: gateway_sandbox::SandboxHandle,
    /// The store over the fresh table.
    pub store: gateway_store::Store,
    /// The secret's name in moto.
    pub secret_id: String,
}

/// Creates a secret holding `{"apiKey", "apiSecret"}` with a unique name; returns the name.
///
/// # Panics
/// When moto is missing or refuses.
pub async fn fresh_secret(api_key: &str, api_secret: &str) -> String {
    let name = format!("cabital-test-{}", uuid::Uuid::new_v4().simple());
    let value = format!(r#"{{"apiKey":"{api_key}","apiSecret":"{api_secret}"}}"#);
    if let Err(e) = secretsmanager_client().await.create_secret().name(&name).secret_string(value).send().await {
        panic!("could not create secret {name} in moto at {}: {e:?}", moto_endpoint());
    }
    name
}

/// The functions' settings for `table`, the secret `secret_id` and Cabital at
/// `cabital_url`, read as the functions read theirs; the rest at their defaults, but
/// for a test's patience with Cabital (2 s an attempt, retries after 10 to 100 ms).
///
/// # Panics
/// When a value is refused.
pub fn settings(table: &str, secret_id: &str, cabital_url: &str) -> gateway_service::Settings {
    let vars = [
        ("TABLE_NAME", table),
        ("CABITAL_SECRET_ID", secret_id),
        ("CABITAL_BASE_URL", cabital_url),
        ("CABITAL_REQUEST_TIMEOUT_MS", "2000"),
    ];
    let var = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
    let mut settings = match gateway_service::Settings::read(&gateway_runtime::Env::with(&var)) {
        Ok(s) => s,
        Err(e) => panic!("the test's settings are refused: {e}"),
    };
    // Not settings of the functions' (the client's own defaults there).
    settings.cabital.client.base_backoff = std::time::Duration::from_millis(10);
    settings.cabital.client.max_backoff = std::time::Duration::from_millis(100);
    settings
}

/// A gateway built from `settings` as the functions build theirs
/// ([`gateway_service::Gateway::new`]), its AWS clients pointed at moto.
///
/// # Panics
/// When moto is missing or the Cabital client cannot be built.
pub async fn gateway(settings: &gateway_service::Settings) -> gateway_service::Gateway {
    match gateway_service::Gateway::new(settings, &aws_config().await).await {
        Ok(gateway) => gateway,
        Err(e) => panic!("the gateway could not be built: {e}"),
    }
}

/// Starts a sandbox (tweaked by `tweak`) and builds a gateway over it and a fresh table.
///
/// # Panics
/// When moto is missing or the sandbox cannot start.
pub async fn harness(tweak: impl FnOnce(&mut gateway_sandbox::SandboxConfig)) -> Harness {
    let mut config = gateway_sandbox::SandboxConfig::with_credential(API_KEY, API_SECRET);
    config.seed = Some(42);
    tweak(&mut config);
    let sandbox = gateway_sandbox::spawn(config).await.expect("the Cabital sandbox starts on 127.0.0.1");
    let (_, table) = fresh_table().await;
    let secret_id = fresh_secret(API_KEY, API_SECRET).await;
    let settings = settings(&table, &secret_id, &sandbox.base_url());
    let gateway = gateway(&settings).await;
    let store = gateway.store.clone();
    Harness { gateway, settings, sandbox, store, secret_id }
}

/// A switch that makes DynamoDB transactions (`TransactWriteItems`, every attempt) fail
/// as an outage would, while single-item writes and reads still go through: how a test
/// makes the store's multi-item record of what Cabital did fail after Cabital acted.
#[derive(Debug, Clone, Default)]
pub struct TransactionFault(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl TransactionFault {
    /// Transactions fail from now on (`true`) or go through again (`false`).
    pub fn set(&self, failing: bool) {
        self.0.store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    fn failing(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A store over `table` in moto, its client built as the functions build theirs with
/// `timeouts`, whose transactions fail while the returned switch is on.
///
/// # Panics
/// When `MOTO_ENDPOINT` is not set.
pub async fn store_failing_transactions(
    table: &str,
    timeouts: gateway_store::StoreTimeouts,
) -> (gateway_store::Store, TransactionFault) {
    let fault = TransactionFault::default();
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .build_https();
    let serial = one_at_a_time(inner);
    let switch = fault.clone();
    let failing = http_client_fn(move |settings, components| {
        SharedHttpConnector::new(FailingTransactions {
            inner: serial.http_connector(settings, components),
            fault: switch.clone(),
        })
    });
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "gateway-support"))
        .http_client(failing)
        .load()
        .await;
    let client = gateway_store::dynamodb_client_with(&sdk, timeouts).await;
    (gateway_store::Store::new(client, table), fault)
}

#[derive(Debug)]
struct FailingTransactions {
    inner: SharedHttpConnector,
    fault: TransactionFault,
}

impl HttpConnector for FailingTransactions {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let transaction =
            request.headers().get("x-amz-target").is_some_and(|target| target.ends_with(".TransactWriteItems"));
        if transaction && self.fault.failing() {
            let refused = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected: transactions fail");
            return HttpConnectorFuture::ready(Err(ConnectorError::io(refused.into())));
        }
        self.inner.call(request)
    }
}

/// Whether a log `text` holds `word` as a whole token, for tests that prove a value is
/// never logged: "JPN" inside a random request id (`...vaJPNsNq...`) is not the country.
pub fn carries(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}
