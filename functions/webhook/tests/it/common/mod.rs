//! Helpers for the webhook function's tests: API Gateway v2 events signed as Cabital
//! signs them, delivered through the real handler, and what the table then holds.

#![allow(dead_code)] // each test binary uses its own part

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use gateway_cabital::{CaseSystemId, Suggestion};
use gateway_service::{WebhookAuth, WebhookSettings};
use gateway_signing::{Credentials, SignatureEncoding, sign};
use gateway_store::{CaseRecord, Event, EventDetail, EventKind, StateChange, TimelineOrder};
use gateway_support::{API_KEY, API_SECRET, Harness};
use gateway_webhook::{App, handle};
use lambda_http::Body;
use serde_json::{Value, json};

/// The route Cabital posts to.
pub const PATH: &str = "/webhooks/cabital";

/// Now, in Unix seconds.
pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The function's handler state over the harness's gateway and settings.
pub fn app(h: &Harness) -> App {
    App { gateway: h.gateway.clone(), settings: h.settings.webhook.clone() }
}

/// The same, with `WEBHOOK_AUTH=refetch`.
pub fn refetch_app(h: &Harness) -> App {
    App { settings: WebhookSettings { auth: WebhookAuth::Refetch, ..h.settings.webhook.clone() }, ..app(h) }
}

/// `body` posted to the route with no signature at all.
pub fn unsigned_event(body: &str) -> String {
    event("POST", PATH, "", &[], body.as_bytes())
}

/// `body` posted to the route, signed with the harness's key and secret `age_secs` ago.
pub fn signed_event_aged(body: &str, age_secs: i64) -> String {
    let ts = now_unix() - age_secs;
    event("POST", PATH, "", &signature(API_KEY, API_SECRET, ts, PATH, body.as_bytes()), body.as_bytes())
}

/// `body` posted to the route, signed with the harness's key and secret at `timestamp`
/// (one signature per timestamp: the same one twice is a replay).
pub fn signed_event_at(body: &str, timestamp: i64) -> String {
    event("POST", PATH, "", &signature(API_KEY, API_SECRET, timestamp, PATH, body.as_bytes()), body.as_bytes())
}

/// The UNVERIFIED_NOTICE events: (deliveries, reason).
pub fn notice_events(events: &[Event]) -> Vec<(u32, gateway_store::NoticeReason)> {
    events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::UnverifiedNotice { deliveries, reason, .. } => Some((*deliveries, *reason)),
            _ => None,
        })
        .collect()
}

/// How many `GET /api/v1/cases/{id}` the sandbox has received.
pub fn sandbox_gets(h: &Harness) -> u64 {
    h.sandbox.stats().requests.get("GET /api/v1/cases/{caseSystemId}").copied().unwrap_or(0)
}

/// An API Gateway HTTP API (v2) event, as API Gateway would build it: header names in
/// lower case, a body that is not UTF-8 base64-encoded.
pub fn event(method: &str, path: &str, query: &str, headers: &[(String, String)], body: &[u8]) -> String {
    let mut header_map = serde_json::Map::new();
    header_map.insert("content-type".into(), json!("application/json"));
    header_map.insert("host".into(), json!("abc123.execute-api.us-east-1.amazonaws.com"));
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let joined = match header_map.get(&name).and_then(Value::as_str) {
            Some(existing) if name != "content-type" && name != "host" => format!("{existing},{value}"),
            _ => value.clone(),
        };
        header_map.insert(name, json!(joined));
    }
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    // API Gateway's route is `POST /webhooks/cabital`; any other method comes only
    // through a `$default` route.
    let route_key = if method == "POST" { format!("POST {PATH}") } else { "$default".to_owned() };
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": format!("test-{}", uuid::Uuid::new_v4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": "29/Nov/2026:01:00:00 +0000",
            "timeEpoch": now_unix() * 1000
        },
        "isBase64Encoded": base64,
        "body": body
    })
    .to_string()
}

/// The three signature headers for `body` posted to `path`, in base64 (the default).
pub fn signature(key: &str, secret: &str, timestamp: i64, path: &str, body: &[u8]) -> Vec<(String, String)> {
    signature_in(SignatureEncoding::default(), key, secret, timestamp, path, body)
}

/// The three signature headers, in the given encoding.
pub fn signature_in(
    encoding: SignatureEncoding,
    key: &str,
    secret: &str,
    timestamp: i64,
    path: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let credentials = Credentials::new(key, secret).unwrap();
    let signed = sign(&credentials, encoding, timestamp, "POST", path, body);
    vec![
        ("ACCESS-KEY".into(), signed.access_key),
        ("ACCESS-TIMESTAMP".into(), signed.access_timestamp),
        ("ACCESS-SIGN".into(), signed.access_sign),
    ]
}

/// `body` posted to the route, signed now with the harness's key and secret.
pub fn signed_event(body: &str) -> String {
    event("POST", PATH, "", &signature(API_KEY, API_SECRET, now_unix(), PATH, body.as_bytes()), body.as_bytes())
}

/// What the handler answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The problem's stable code.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// Sends an event (JSON text) through the real handler.
pub async fn deliver(app: &App, event: &str) -> Answer {
    let request = lambda_http::request::from_str(event).expect("the event is an API Gateway v2 event");
    let response = handle(app, request).await.expect("the handler answers every request");
    let text = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8(b.clone()).unwrap(),
        Body::Empty => String::new(),
        other => panic!("unexpected body {other:?}"),
    };
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status: response.status().as_u16(), headers: response.headers().clone(), body, text }
}

/// A webhook body, fields in the provider's order, compact.
pub fn webhook_body(id: &CaseSystemId, external_case_id: &str, suggestion: &str, comment: &str) -> String {
    format!(
        r#"{{"caseSystemId":"{id}","caseSuggestion":"{suggestion}","comment":{},"externalCaseId":"{external_case_id}"}}"#,
        json!(comment)
    )
}

/// A new external id.
pub fn new_external_id() -> String {
    format!("wh-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a case through the gateway (so at the sandbox and in the table); the
/// sandbox's screening then suggests by the name (see `gateway_sandbox::screening`).
pub async fn create_case(h: &Harness, full_name: &str) -> (CaseSystemId, String) {
    let ext = new_external_id();
    let body = json!({
        "externalCaseId": ext,
        "screenType": "INDIVIDUAL",
        "fullName": full_name,
        "individualInfo": {"gender": "FEMALE", "dob": "1990-04-01", "nationality": "JPN", "residentialCountry": "HKG"},
        "organizationInfo": {}
    });
    let created = h.gateway.create_case(&body, gateway_cabital::Deadline::NONE).await.expect("the case is created");
    (created.case_system_id().expect("Cabital gave the case's id"), ext)
}

/// Creates a case at the sandbox only: Cabital knows it, the table does not.
pub async fn create_case_at_cabital_only(h: &Harness, full_name: &str) -> (CaseSystemId, String) {
    let ext = new_external_id();
    let body = json!({
        "externalCaseId": ext,
        "screenType": "INDIVIDUAL",
        "fullName": full_name,
        "individualInfo": {"gender": "MALE", "dob": "1985-12-24", "nationality": "HKG", "residentialCountry": "HKG"},
        "organizationInfo": {}
    });
    let case = gateway_cabital::validate_new_case(&body, gateway_today()).unwrap();
    let answer = h
        .gateway
        .cabital
        .create_case(&case)
        .await
        .expect("the sandbox creates the case")
        .case()
        .cloned()
        .expect("with its id");
    (answer.case_system_id, ext)
}

fn gateway_today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// The case's whole timeline, oldest first.
pub async fn timeline(h: &Harness, id: &CaseSystemId) -> Vec<Event> {
    h.store.timeline(id, TimelineOrder::Oldest, 100, None).await.unwrap().events
}

/// The case as stored.
pub async fn case(h: &Harness, id: &CaseSystemId) -> Option<CaseRecord> {
    h.store.get_case(id).await.unwrap()
}

/// The WEBHOOK events: (deliveries, suggestion reported).
pub fn webhook_events(events: &[Event]) -> Vec<(u32, Suggestion)> {
    events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::Webhook { deliveries, suggestion, .. } => Some((*deliveries, *suggestion)),
            _ => None,
        })
        .collect()
}

/// The REFRESHED events' changes.
pub fn refreshed(events: &[Event]) -> Vec<StateChange> {
    events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::Refreshed(change) => Some(change.clone()),
            _ => None,
        })
        .collect()
}

/// The kinds, in order.
pub fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(Event::kind).collect()
}

/// How many items the whole table holds (a scan: the tables are tiny and fresh).
pub async fn table_items(h: &Harness) -> usize {
    let out = h.store.client().scan().table_name(h.store.table_name()).consistent_read(true).send().await.unwrap();
    assert!(out.last_evaluated_key().is_none(), "the table is small");
    out.items().len()
}

/// A fixture's text, as committed.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The key and secret the committed fixtures are signed with (see events/README.md).
pub const FIXTURE_KEY: &str = "fixture-api-key";
/// Its secret.
pub const FIXTURE_SECRET: &str = "fixture-api-secret-not-for-production";
/// The time the committed fixtures are signed for.
pub const FIXTURE_TIMESTAMP: i64 = 1_795_914_000;

/// A fixture signed again, as `gateway-sandbox-sign` does, for `now + offset_secs`.
pub fn resigned_fixture(name: &str, key: &str, secret: &str, offset_secs: i64) -> String {
    let mut event: Value = serde_json::from_str(&fixture(name)).unwrap();
    let signing = gateway_sandbox::FixtureSigning {
        credential: gateway_sandbox::Credential::new(key, secret),
        timestamp: now_unix() + offset_secs,
        path: None,
        encoding: gateway_sandbox::SignatureEncoding::Hex,
    };
    gateway_sandbox::sign_event(&mut event, &signing).unwrap();
    event.to_string()
}

/// Hands one HTTP request to the function as API Gateway would (a v2 event), and its
/// answer back: for a receiver that the sandbox's webhooks can reach.
pub async fn relay(app: &App, request: axum::extract::Request) -> axum::response::Response {
    use axum::body::Body as AxumBody;
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| *name != http::header::CONTENT_TYPE && *name != http::header::HOST)
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
        .collect();
    let event = event(parts.method.as_str(), parts.uri.path(), parts.uri.query().unwrap_or(""), &headers, &bytes);
    let answer = handle(app, lambda_http::request::from_str(&event).unwrap()).await.unwrap();
    let (parts, body) = answer.into_parts();
    let body = match body {
        Body::Text(t) => AxumBody::from(t),
        Body::Binary(b) => AxumBody::from(b),
        _ => AxumBody::empty(),
    };
    axum::response::Response::from_parts(parts, body)
}
