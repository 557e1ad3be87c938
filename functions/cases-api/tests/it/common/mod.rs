//! Helpers for the handler's tests: fixture events, sending them through the real
//! handler, reading the answer, and checking every answer against `docs/openapi.yaml`.
//!
//! Every response that goes through [`send`] is checked against the OpenAPI document
//! (status documented for the route, content type, body schema, required headers), and
//! every 5xx body is checked to say nothing internal: a test cannot forget to.

#![allow(dead_code)] // each test binary uses its own part of these helpers

pub mod openapi;

use std::collections::BTreeMap;

use gateway_cases_api::{App, handle};
use lambda_http::{Body, Context, RequestExt};
use serde_json::{Value, json};

/// The case id the fixtures carry in their paths, replaced by a real one.
pub const FIXTURE_CASE_ID: &str = "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c";
/// The `externalCaseId` of `create-case.json`.
pub const FIXTURE_EXTERNAL_ID: &str = "fixture-0001";

/// A fixture's text, from `functions/cases-api/events/`.
pub fn fixture_text(name: &str) -> String {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// An API Gateway HTTP API (payload 2.0) event, read from a fixture and adjusted.
#[derive(Debug, Clone)]
pub struct Event(pub Value);

impl Event {
    /// The fixture as is.
    pub fn fixture(name: &str) -> Event {
        Event(serde_json::from_str(&fixture_text(name)).expect("fixtures are JSON"))
    }

    /// The fixture with its placeholder case id replaced by `id` everywhere (path, route key).
    pub fn for_case(name: &str, id: &str) -> Event {
        let text = fixture_text(name).replace(FIXTURE_CASE_ID, id);
        Event(serde_json::from_str(&text).expect("fixtures are JSON"))
    }

    /// The method, as the event says.
    pub fn method(&self) -> String {
        self.0["requestContext"]["http"]["method"].as_str().expect("fixtures have a method").to_owned()
    }

    /// The path, as the event says.
    pub fn path(&self) -> String {
        self.0["rawPath"].as_str().expect("fixtures have a rawPath").to_owned()
    }

    /// Another method (the route key and path parameters follow, as API Gateway's).
    pub fn with_method(mut self, method: &str) -> Event {
        self.0["requestContext"]["http"]["method"] = json!(method);
        self.routed()
    }

    /// Another path (the route key and path parameters follow, as API Gateway's).
    pub fn with_path(mut self, path: &str) -> Event {
        self.0["rawPath"] = json!(path);
        self.0["requestContext"]["http"]["path"] = json!(path);
        self.routed()
    }

    /// `routeKey` and `pathParameters` as API Gateway sets them: the documented route's
    /// template (`"GET /v1/cases/{caseSystemId}"`) and the id it took; for what no route
    /// takes, `$default` and none, as a `$default` route (and `cargo lambda watch`) sends.
    pub fn routed(mut self) -> Event {
        let (method, path) = (self.method(), self.path());
        // A stage or a custom domain's base path comes before /v1/.
        let api_path = path.find("/v1/").map_or(path.as_str(), |at| &path[at..]);
        let route = openapi::spec()
            .template_for(api_path)
            .filter(|template| openapi::spec().operations().contains(&(method.clone(), template.clone())));
        let event = self.0.as_object_mut().expect("an object");
        match route {
            Some(template) => {
                event.insert("routeKey".into(), json!(format!("{method} {template}")));
                match api_path.trim_matches('/').split('/').nth(2).filter(|_| template.contains("{caseSystemId}")) {
                    Some(id) => event.insert("pathParameters".into(), json!({"caseSystemId": id})),
                    None => event.remove("pathParameters"),
                };
            }
            None => {
                event.insert("routeKey".into(), json!("$default"));
                event.remove("pathParameters");
            }
        }
        self.0["requestContext"]["routeKey"] = self.0["routeKey"].clone();
        self
    }

    /// As `cargo lambda watch` sends it: route key `$default`, no path parameters.
    pub fn on_default_route(mut self) -> Event {
        self.0["routeKey"] = json!("$default");
        self.0["requestContext"]["routeKey"] = json!("$default");
        self.0.as_object_mut().expect("an object").remove("pathParameters");
        self
    }

    /// Another body, as text.
    pub fn with_body(mut self, body: impl Into<String>) -> Event {
        self.0["body"] = json!(body.into());
        self.0["isBase64Encoded"] = json!(false);
        self
    }

    /// Another body, as JSON.
    pub fn with_json(self, body: &Value) -> Event {
        self.with_body(body.to_string())
    }

    /// The body, parsed (fixtures with a JSON body).
    pub fn json_body(&self) -> Value {
        serde_json::from_str(self.0["body"].as_str().expect("the fixture has a body")).expect("a JSON body")
    }

    /// Sets (or, with `None`, removes) a header.
    pub fn with_header(mut self, name: &str, value: Option<&str>) -> Event {
        let headers = self.0["headers"].as_object_mut().expect("fixtures have headers");
        match value {
            Some(v) => headers.insert(name.to_ascii_lowercase(), json!(v)),
            None => headers.remove(&name.to_ascii_lowercase()),
        };
        self
    }

    /// Replaces the query string (both its raw form and API Gateway's parsed map).
    pub fn with_query(mut self, pairs: &[(&str, &str)]) -> Event {
        let raw: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        self.0["rawQueryString"] = json!(raw.join("&"));
        let mut map = serde_json::Map::new();
        for (k, v) in pairs {
            // API Gateway joins repeated keys with commas.
            match map.get_mut(*k) {
                Some(Value::String(s)) => {
                    s.push(',');
                    s.push_str(v);
                }
                _ => {
                    map.insert((*k).to_owned(), json!(v));
                }
            }
        }
        if map.is_empty() {
            self.0.as_object_mut().expect("an object").remove("queryStringParameters");
        } else {
            self.0["queryStringParameters"] = Value::Object(map);
        }
        self
    }
}

/// Percent-encodes a query component (unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the handler answered.
#[derive(Debug, Clone)]
pub struct Resp {
    /// The status.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    pub text: String,
    /// The body as JSON (`Null` when empty).
    pub json: Value,
    /// The Lambda request id the invocation was given.
    pub lambda_request_id: String,
}

impl Resp {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The `code` of a problem+json body.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or_else(|| panic!("not a problem: {} {}", self.status, self.text))
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        self
    }

    /// Asserts a problem with this status and code.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, code: &str) -> &Self {
        self.expect(status);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        assert_eq!(self.json["status"], status, "{}", self.text);
        self
    }

    /// `Retry-After` as whole seconds; panics when absent.
    #[track_caller]
    pub fn retry_after(&self) -> u64 {
        let v = self.header("retry-after").unwrap_or_else(|| panic!("no Retry-After: {}", self.text));
        v.parse().unwrap_or_else(|_| panic!("Retry-After is not whole seconds: {v}"))
    }
}

/// Sends `event` through the real handler, as the Lambda runtime would (with a Lambda
/// context carrying a fresh request id), and checks the answer against the OpenAPI
/// document; a 5xx body is also checked to say nothing internal.
pub async fn send(app: &App, event: &Event) -> Resp {
    let resp = send_unchecked(app, event).await;
    if let Err(e) = openapi::spec().check(&event.method(), &event.path(), &resp) {
        panic!(
            "{} {} answered {} outside docs/openapi.yaml: {e}\nbody: {}",
            event.method(),
            event.path(),
            resp.status,
            resp.text
        );
    }
    if resp.status >= 500 {
        assert_nothing_internal(&resp);
    }
    resp
}

/// As [`send`], without the checks (for tests of the checks themselves).
pub async fn send_unchecked(app: &App, event: &Event) -> Resp {
    send_unchecked_by(app, event, 0).await
}

/// As [`send`], by an invocation whose deadline is `deadline` from now (the context's
/// `deadline`, in wall-clock milliseconds, as Lambda gives it).
pub async fn send_by(app: &App, event: &Event, deadline: std::time::Duration) -> Resp {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let resp = send_unchecked_by(app, event, now_ms + deadline.as_millis() as u64).await;
    if let Err(e) = openapi::spec().check(&event.method(), &event.path(), &resp) {
        panic!("{} {} answered {} outside docs/openapi.yaml: {e}", event.method(), event.path(), resp.status);
    }
    if resp.status >= 500 {
        assert_nothing_internal(&resp);
    }
    resp
}

/// Sends `event` with a Lambda context whose deadline is `deadline_ms` (0: none given).
async fn send_unchecked_by(app: &App, event: &Event, deadline_ms: u64) -> Resp {
    let request = lambda_http::request::from_str(&event.0.to_string()).expect("the event is a valid API Gateway event");
    let lambda_request_id = uuid::Uuid::new_v4().to_string();
    let mut context = Context::default();
    context.request_id = lambda_request_id.clone();
    context.deadline = deadline_ms;
    let request = request.with_lambda_context(context);
    let response = handle(app, request).await.expect("the handler answers every request with a response");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().expect("ASCII header values").to_owned()))
        .collect();
    let text = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Empty => String::new(),
        Body::Binary(b) => String::from_utf8(b.clone()).expect("a UTF-8 body"),
        other => panic!("unexpected body {other:?}"),
    };
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {text}"))
    };
    Resp { status, headers, text, json, lambda_request_id }
}

/// Words that must never reach a caller in a 5xx body: internals and secrets.
pub const INTERNAL_WORDS: &[&str] = &[
    "dynamodb",
    "DynamoDB",
    "Dynamo",
    "ResourceNotFound",
    "ConditionalCheck",
    "Transaction",
    "SecretsManager",
    "Secrets Manager",
    "secret",
    "panicked",
    "backtrace",
    "stack",
    "src/",
    ".rs:",
    "reqwest",
    "hyper",
    "127.0.0.1",
    "localhost",
    "kyc-test-",
    "cabital-test-",
    gateway_support::API_KEY,
    gateway_support::API_SECRET,
];

/// Asserts a (5xx) body names nothing internal.
#[track_caller]
pub fn assert_nothing_internal(resp: &Resp) {
    for word in INTERNAL_WORDS {
        assert!(!resp.text.contains(word), "a {} body says {word:?}: {}", resp.status, resp.text);
    }
    for (name, value) in &resp.headers {
        for word in [gateway_support::API_KEY, gateway_support::API_SECRET] {
            assert!(!value.contains(word), "header {name} carries a secret");
        }
    }
}

/// The app over a harness's gateway.
pub fn app(h: &gateway_support::Harness) -> App {
    App { gateway: h.gateway.clone() }
}

/// Creates the case of `create-case.json` (or another body) and answers its id.
pub async fn create(app: &App, body: Option<&Value>) -> (String, Resp) {
    let mut event = Event::fixture("create-case.json");
    if let Some(b) = body {
        event = event.with_json(b);
    }
    let resp = send(app, &event).await;
    resp.expect(201);
    let id = resp.json["caseSystemId"].as_str().expect("a caseSystemId").to_owned();
    (id, resp)
}

/// `create-case.json`'s body with another `externalCaseId`.
pub fn case_body(external_case_id: &str) -> Value {
    let mut body = Event::fixture("create-case.json").json_body();
    body["externalCaseId"] = json!(external_case_id);
    body
}

/// Requests the sandbox counted for one endpoint, e.g. `"POST /api/v1/cases"`.
pub fn sandbox_requests(h: &gateway_support::Harness, endpoint: &str) -> u64 {
    h.sandbox.stats().requests.get(endpoint).copied().unwrap_or(0)
}

/// Every request the sandbox counted.
pub fn sandbox_requests_total(h: &gateway_support::Harness) -> u64 {
    h.sandbox.stats().requests.values().sum()
}

/// Items in the harness's table, by the kind of their sort key (`CASE`, `EXT`, `EVENT`, `WEBHOOK`).
pub async fn table_items(store: &gateway_store::Store) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table_name())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("the table can be scanned");
        for item in page.items() {
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let kind = sk.split('#').next().unwrap_or_default().to_owned();
            let strings = item.iter().filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone()))).collect();
            out.entry(kind).or_default().push(strings);
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return out;
        }
    }
}

/// How many items of a kind the table holds.
pub async fn count_items(store: &gateway_store::Store, kind: &str) -> usize {
    table_items(store).await.get(kind).map_or(0, Vec::len)
}

/// Every event of a case, oldest first, read from the table.
pub async fn stored_events(store: &gateway_store::Store, id: &str) -> Vec<gateway_store::Event> {
    let id: gateway_cabital::CaseSystemId = id.parse().expect("a case id");
    store.timeline(&id, gateway_store::TimelineOrder::Oldest, 200, None).await.expect("the timeline reads").events
}

/// The kinds of a case's stored events, oldest first.
pub async fn stored_kinds(store: &gateway_store::Store, id: &str) -> Vec<&'static str> {
    stored_events(store, id).await.iter().map(|e| e.kind().as_str()).collect()
}

/// The case as stored.
pub async fn stored_case(store: &gateway_store::Store, id: &str) -> gateway_store::CaseRecord {
    let id: gateway_cabital::CaseSystemId = id.parse().expect("a case id");
    store.get_case(&id).await.expect("the case reads").expect("the case is stored")
}

/// The sandbox's state of a case.
pub fn sandbox_case(h: &gateway_support::Harness, id: &str) -> gateway_sandbox::CaseState {
    h.sandbox.case(id.parse().expect("a case id")).expect("the sandbox has the case")
}

/// `GET /v1/cases/{id}/evidence`.
pub fn evidence_of(id: &str) -> Event {
    Event::for_case("get-case.json", id).with_path(&format!("/v1/cases/{id}/evidence")).routed()
}
