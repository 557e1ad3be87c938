//! Helpers shared by the integration tests: an HMAC signer written here with the `hmac`
//! crate directly (independent of the sandbox's), a signed client, and a webhook
//! receiver on 127.0.0.1:0 that captures what it is sent.
#![allow(dead_code)] // each test file uses a different part

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use gateway_sandbox::{SandboxConfig, SandboxHandle};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret-0123456789";

/// `hex(HMAC-SHA256(secret, ts + METHOD + path + body))`, written from the spec.
pub fn sign(secret: &str, timestamp: &str, method: &str, path: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    let mut message = Vec::new();
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(method.as_bytes());
    message.extend_from_slice(path.as_bytes());
    message.extend_from_slice(body);
    mac.update(&message);
    hex::encode(mac.finalize().into_bytes())
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A sandbox with the test credential and the given tweaks, in hex (the signer here
/// writes hex; the base64 default has tests of its own).
pub async fn sandbox(tweak: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut config = SandboxConfig::with_credential(KEY, SECRET);
    config.seed = Some(7);
    config.signature_encoding = gateway_sandbox::SignatureEncoding::Hex;
    tweak(&mut config);
    gateway_sandbox::spawn(config).await.unwrap()
}

/// Everything about a request, explicitly: what is signed and what is sent can differ.
#[derive(Clone, Debug)]
pub struct Raw {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub key: Option<String>,
    pub timestamp: Option<String>,
    pub sign: Option<String>,
}

impl Raw {
    /// A correctly signed request, timestamp `now() + skew`.
    pub fn signed(method: &str, path: &str, body: &str, skew: i64) -> Self {
        let timestamp = (now() + skew).to_string();
        let sign = sign(SECRET, &timestamp, method, path, body.as_bytes());
        Raw {
            method: method.to_owned(),
            path: path.to_owned(),
            body: body.as_bytes().to_vec(),
            content_type: (!body.is_empty()).then(|| "application/json".to_owned()),
            key: Some(KEY.to_owned()),
            timestamp: Some(timestamp),
            sign: Some(sign),
        }
    }
}

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(sandbox: &SandboxHandle) -> Self {
        Api { base: sandbox.base_url(), http: reqwest::Client::new() }
    }

    pub async fn raw(&self, raw: Raw) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(raw.method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{}", self.base, raw.path));
        if let Some(v) = raw.content_type {
            request = request.header("Content-Type", v);
        }
        if let Some(v) = raw.key {
            request = request.header("ACCESS-KEY", v);
        }
        if let Some(v) = raw.timestamp {
            request = request.header("ACCESS-TIMESTAMP", v);
        }
        if let Some(v) = raw.sign {
            request = request.header("ACCESS-SIGN", v);
        }
        if !raw.body.is_empty() {
            request = request.body(raw.body);
        }
        request.send().await.unwrap()
    }

    /// A correctly signed request.
    pub async fn call(&self, method: &str, path: &str, body: &str) -> reqwest::Response {
        self.raw(Raw::signed(method, path, body, 0)).await
    }

    /// Creates a case and returns its JSON (asserting 201).
    pub async fn create(&self, body: &Value) -> Value {
        let response = self.call("POST", "/api/v1/cases", &body.to_string()).await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    pub async fn get_case(&self, id: &str) -> Value {
        let response = self.call("GET", &format!("/api/v1/cases/{id}"), "").await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}/_sandbox{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}

pub fn individual(external_case_id: &str, full_name: &str) -> Value {
    json!({
        "externalCaseId": external_case_id,
        "screenType": "INDIVIDUAL",
        "fullName": full_name,
        "individualInfo": {"gender": "FEMALE", "dob": "1990-04-30", "nationality": "JPN", "residentialCountry": "HKG"},
        "organizationInfo": {}
    })
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

#[derive(Clone)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<dyn Fn(usize) -> u16 + Send + Sync>,
}

/// A webhook receiver on 127.0.0.1:0; `status(n)` is the answer to the n-th request (0-based).
pub struct Receiver {
    pub base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    pub async fn start(status: impl Fn(usize) -> u16 + Send + Sync + 'static) -> Self {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState { hits: Arc::clone(&hits), status: Arc::new(status) };
        let app = axum::Router::new().fallback(capture).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, hits }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits until at least `n` hits arrived (or panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Hit> {
        let hits = &self.hits;
        wait_until(within, || hits.lock().unwrap().len() >= n).await;
        self.hits()
    }
}

async fn capture(State(state): State<ReceiverState>, request: Request) -> StatusCode {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let mut hits = state.hits.lock().unwrap();
    let n = hits.len();
    hits.push(Hit { path_and_query, headers: parts.headers, body, at: Instant::now() });
    StatusCode::from_u16((state.status)(n)).unwrap()
}

/// Polls `condition` every 5 ms; panics if it is still false after `within`.
pub async fn wait_until(within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Same, for an async condition.
pub async fn wait_until_async<F: Future<Output = bool>>(within: Duration, mut condition: impl FnMut() -> F) {
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "condition not met within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Checks a webhook's signature the way a partner would, with our own HMAC.
pub fn webhook_signature_ok(hit: &Hit, secret: &str) -> bool {
    let header = |name: &str| hit.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (Some(_key), Some(timestamp), Some(signature)) =
        (header("ACCESS-KEY"), header("ACCESS-TIMESTAMP"), header("ACCESS-SIGN"))
    else {
        return false;
    };
    sign(secret, &timestamp, "POST", &hit.path_and_query, &hit.body) == signature
}
