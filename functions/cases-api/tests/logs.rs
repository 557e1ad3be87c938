//! The logs of real requests, captured in the production format (JSON, one line per
//! event, as `gateway_runtime::logging` sets it up): one request line per invocation
//! with its request id, route, status, latency and the case's ids; no name, date of
//! birth, gender, country or comment, and no API key or secret, at any level.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]
// The handler's future, nested in the helpers', is deeper than the default allows.
#![recursion_limit = "256"]

// Its own binary: it captures process-wide logging, which other tests running beside
// it in one process would write into.
#[path = "it/common/mod.rs"]
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use gateway_sandbox::{Faults, Suggestion as SandboxSuggestion, SuggestionChange};
use gateway_support::carries;
use serde_json::{Value, json};
use tracing::instrument::WithSubscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Log output, shared with the subscriber writing it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = CapturedWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(Arc::clone(&self.0))
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("logs are UTF-8")
    }
}

/// The subscriber `gateway_runtime::logging::init` installs, writing into `captured`,
/// at `filter` (production runs at `info`; `debug` here shows nothing leaks even then).
fn subscriber(filter: &str, captured: &Captured) -> tracing::Dispatch {
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::new(filter))
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    tracing::Dispatch::new(subscriber)
}

/// Sends an event with the handler's logs captured.
async fn logged_send(app: &gateway_cases_api::App, event: &Event, dispatch: &tracing::Dispatch) -> Resp {
    send(app, event).with_subscriber(dispatch.clone()).await
}

#[test]
fn a_value_is_found_as_a_token_not_inside_another() {
    assert!(carries(r#"{"nationality":"JPN"}"#, "JPN"));
    assert!(carries("nationality: JPN, residence: HKG", "HKG"));
    assert!(!carries(r#"{"request_id":"5H3aOEKzp9vaJPNsNqDPR6m7"}"#, "JPN"));
    assert!(!carries("FEMALE", "MALE"));
}

/// Personal data and secrets used in the requests below, none of which may be logged.
const NEVER_LOGGED: &[&str] = &[
    "John Doe",
    "2002-02-02",
    "MALE",
    "JPN",
    "HKG",
    "No hit",
    "Ongoing comment Zebra-4471",
    "Reviewed by compliance",
    "Jane Sample",
    "1979-03-04",
    "X1234567",
    "ACME",
    "VIP",
    gateway_support::API_KEY,
    gateway_support::API_SECRET,
];

async fn a_day_of_requests(filter: &str) {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let captured = Captured::default();
    let dispatch = subscriber(filter, &captured);
    let mut sent: Vec<(Resp, &str, u16)> = Vec::new();

    let created = logged_send(&app, &Event::fixture("create-case.json"), &dispatch).await;
    created.expect(201);
    let id = created.json["caseSystemId"].as_str().unwrap().to_owned();
    sent.push((created, "CreateCase", 201));

    let got = logged_send(&app, &Event::for_case("get-case.json", &id), &dispatch).await;
    sent.push((got.clone(), "GetCase", 200));
    assert!(got.text.contains("John Doe"), "the caller does get its own data back");

    let change = SuggestionChange {
        suggestion: SandboxSuggestion::NoSuggestion,
        comment: Some("Ongoing comment Zebra-4471".into()),
        notify: false,
    };
    h.sandbox.set_suggestion(id.parse().unwrap(), change).unwrap();
    let live = logged_send(&app, &Event::for_case("get-case-live.json", &id), &dispatch).await;
    assert_eq!(live.json["liveChanged"], true);
    sent.push((live, "GetCase", 200));

    let decided = logged_send(&app, &Event::for_case("decision.json", &id), &dispatch).await;
    sent.push((decided, "Decision", 200));
    let ogs = logged_send(&app, &Event::for_case("ogs-on.json", &id), &dispatch).await;
    sent.push((ogs, "OgsOn", 200));
    let found = logged_send(&app, &Event::fixture("find-case.json"), &dispatch).await;
    sent.push((found, "FindCase", 200));
    let invalid = logged_send(&app, &Event::fixture("create-case-invalid-individual.json"), &dispatch).await;
    sent.push((invalid, "CreateCase", 400));

    // A failure path logs more (warnings with the error): still nothing personal.
    h.sandbox.set_faults(Faults { error_rate_500: 1.0, ..Faults::default() }).unwrap();
    let mut other = case_body("fixture-0002");
    other["fullName"] = json!("Jane Sample");
    other["individualInfo"]["dob"] = json!("1979-03-04");
    let unknown = logged_send(&app, &Event::fixture("create-case.json").with_json(&other), &dispatch).await;
    sent.push((unknown, "CreateCase", 504));

    let logs = captured.text();
    assert!(!logs.is_empty());
    for word in NEVER_LOGGED {
        assert!(!carries(&logs, word), "the logs carry {word:?}:\n{logs}");
    }

    // JSON, one event per line.
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}")))
        .collect();

    // One request line per invocation, with what an operator needs.
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(requests.len(), sent.len(), "{logs}");
    for (line, (resp, route, status)) in requests.iter().zip(&sent) {
        resp.expect(*status);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["request_id"], resp.lambda_request_id.as_str(), "{line}");
        assert_eq!(line["route"], *route, "{line}");
        assert_eq!(line["status"], *status, "{line}");
        assert!(line["latency_ms"].is_u64(), "{line}");
        assert!(line["method"].is_string(), "{line}");
    }
    for line in &requests[..6] {
        assert_eq!(line["case_system_id"], id.as_str(), "{line}");
        assert_eq!(line["external_case_id"], FIXTURE_EXTERNAL_ID, "{line}");
    }
    // The 504 names the partner's id, so that the unknown creation can be found.
    assert_eq!(requests[7]["external_case_id"], "fixture-0002");
}

#[tokio::test]
async fn logs_carry_ids_and_outcomes_but_no_personal_data_or_secrets() {
    a_day_of_requests("info").await;
}

#[tokio::test]
async fn not_even_debug_logs_carry_personal_data_or_secrets() {
    a_day_of_requests("debug").await;
}
