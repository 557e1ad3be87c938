//! What the function writes (JSON logs, EMF metric lines) says which case and what
//! happened, and never personal data (full name, comments, the body) or a secret (the
//! API secret, a signature).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

// Its own binary: it captures process-wide logging, which other tests running beside
// it in one process would write into.
#[path = "it/common/mod.rs"]
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use gateway_cabital::CaseSystemId;
use gateway_sandbox::{Faults, SuggestionChange};
use gateway_support::{API_KEY, API_SECRET, Harness, harness};
use serde_json::Value;

const FULL_NAME: &str = "Zelda Quintessa Pii-Person";
/// The comment Cabital holds (read by the refresh).
const CABITAL_COMMENT: &str = "Reviewer note: Zelda's passport matched a PEP list";
/// The comment in the webhook bodies.
const WEBHOOK_COMMENT: &str = "Webhook note: Zelda lives at 1 Secret Street";

/// Runs deliveries of every outcome; returns the strings that must never be written
/// (the signatures made, besides the constants above).
async fn every_outcome(h: &Harness) -> (CaseSystemId, Vec<String>) {
    let app = app(h);
    let mut signatures = Vec::new();
    // Each at its own timestamp: the same signature twice would be a replay.
    let mut timestamp = now_unix();
    let mut signed = |body: &str, secret: &str| {
        timestamp -= 1;
        let headers = signature(API_KEY, secret, timestamp, PATH, body.as_bytes());
        signatures.push(headers[2].1.clone());
        event("POST", PATH, "", &headers, body.as_bytes())
    };

    let (id, ext) = create_case(h, FULL_NAME).await;
    let change = SuggestionChange {
        suggestion: gateway_sandbox::Suggestion::SuggestToReject,
        comment: Some(CABITAL_COMMENT.into()),
        notify: false,
    };
    h.sandbox.set_suggestion(id.uuid(), change).unwrap();
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", WEBHOOK_COMMENT);

    let first = signed(&body, API_SECRET);
    let outcomes = [
        (first.clone(), 200),                                                 // stored, refreshed
        (signed(&body, API_SECRET), 200),                                     // duplicate
        (signed(&body, "a-forger's-guess"), 401),                             // forged
        (signed(&body.replace("REJECT", "ACCEPT"), "a-forger's-guess"), 401), // forged, other body
        (signed(&body[..body.len() - 5], API_SECRET), 400),                   // malformed
        (signed(&body.replace("SUGGEST_TO_REJECT", "SUGGEST_TO_MAYBE"), API_SECRET), 400), // unknown enum
        (signed(&webhook_body(&id, &ext, "SUGGEST_TO_REJECT", &WEBHOOK_COMMENT.repeat(2000)), API_SECRET), 413),
        (
            signed(
                &webhook_body(
                    &CaseSystemId::new(uuid::Uuid::new_v4()),
                    &new_external_id(),
                    "NO_SUGGESTION",
                    WEBHOOK_COMMENT,
                ),
                API_SECRET,
            ),
            200,
        ), // unknown everywhere: refresh fails with 404
    ];
    for (event, status) in outcomes {
        let a = deliver(&app, &event).await;
        assert_eq!(a.status, status, "{}", a.text);
    }
    // The first delivery captured and replayed.
    let a = deliver(&app, &first).await;
    assert_eq!((a.status, a.body["verification"].as_str()), (200, Some("replay")), "{}", a.text);
    // Cabital failing during the refresh (of a new body: a known one is read once a minute).
    h.sandbox.set_faults(Faults { error_rate_503: 1.0, ..Faults::default() }).unwrap();
    let newer = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", &format!("{WEBHOOK_COMMENT}, again"));
    let a = deliver(&app, &signed(&newer, API_SECRET)).await;
    assert_eq!((a.status, a.body["refresh"].as_str()), (200, Some("deferred")), "{}", a.text);
    h.sandbox.set_faults(Faults::default()).unwrap();

    // The table did get the personal data: it is the logs that must not.
    let case = case(h, &id).await.unwrap();
    assert_eq!(case.suggestion_comment.as_ref().map(|c| c.expose().as_str()), Some(CABITAL_COMMENT));
    (id, signatures)
}

fn forbidden(signatures: &[String]) -> Vec<String> {
    let mut all: Vec<String> =
        [FULL_NAME, "Zelda", CABITAL_COMMENT, WEBHOOK_COMMENT, "Secret Street", API_SECRET, "a-forger's-guess"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    all.extend(signatures.iter().cloned());
    all
}

fn assert_clean(what: &str, output: &str, signatures: &[String]) {
    for needle in forbidden(signatures) {
        if let Some(line) = output.lines().find(|l| l.contains(&needle)) {
            panic!("{what} contains {needle:?}: {line}");
        }
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_the_case_and_the_outcome_but_no_personal_data_or_secret() {
    let h = harness(|_| {}).await;
    let buffer = Buffer::default();
    let writer = buffer.clone();
    // Stricter than production (RUST_LOG=info): everything our crates say, down to trace.
    let filter = "info,gateway_sandbox=off,gateway_webhook=trace,gateway_service=trace,gateway_store=trace,gateway_cabital=trace,\
                  gateway_signing=trace,gateway_runtime=trace";
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    // Scoped to this thread; the test's runtime is single-threaded, so every task of the
    // handler runs under it.
    let (id, signatures) = {
        let _scope = tracing::subscriber::set_default(subscriber);
        every_outcome(&h).await
    };
    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();

    // The capture worked, and the logs carry what an operator needs.
    let lines: Vec<Value> =
        output.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert_eq!(messages.iter().filter(|m| **m == "webhook stored").count(), 4, "{messages:?}");
    let replays = messages.iter().filter(|m| m.starts_with("webhook replay")).count();
    assert_eq!(replays, 1, "{messages:?}");
    assert_eq!(messages.iter().filter(|m| **m == "webhook refused").count(), 5, "{messages:?}");
    assert!(output.contains(&id.to_string()), "the case's id is logged");
    for reason in ["signature_mismatch", "malformed_body", "body_too_large"] {
        assert!(output.contains(reason), "{reason} is logged");
    }
    assert_clean("the logs", &output, &signatures);
}

/// The function's whole stdout (JSON logs as `main` sets them up, and the EMF lines) in
/// a child process running the same deliveries.
#[tokio::test]
async fn the_functions_stdout_has_metrics_and_logs_without_personal_data_or_secret() {
    const CHILD: &str = "WEBHOOK_STDOUT_TEST_CHILD";
    const NAME: &str = "the_functions_stdout_has_metrics_and_logs_without_personal_data_or_secret";
    if let Ok(report) = std::env::var(CHILD) {
        gateway_runtime::logging::init();
        let h = harness(|_| {}).await;
        let (_, signatures) = every_outcome(&h).await;
        std::fs::write(report, serde_json::to_string(&signatures).unwrap()).unwrap();
        return;
    }

    let report = std::env::temp_dir().join(format!("webhook-stdout-{}.json", uuid::Uuid::new_v4()));
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, &report)
        .env("RUST_LOG", "info,gateway_sandbox=off") // the function's own setting; the sandbox is not the function
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "the child failed:\n{stdout}\n{stderr}");
    let signatures: Vec<String> = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report);
    assert_eq!(signatures.len(), 9);

    let json_lines: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let metrics: Vec<&Value> = json_lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(metrics.len(), 10, "one EMF line per delivery:\n{stdout}");
    for line in &metrics {
        // Nothing but the envelope, the dimensions (from fixed sets) and numbers.
        for (key, value) in line.as_object().unwrap() {
            match key.as_str() {
                "_aws" => {}
                "Function" => assert_eq!(value, "webhook"),
                "Reason" => assert!(
                    ["signature_mismatch", "malformed_body", "body_too_large"].contains(&value.as_str().unwrap()),
                    "{line}"
                ),
                _ => assert!(value.is_number(), "metric {key} is a number: {line}"),
            }
        }
    }
    assert_eq!(metrics.iter().filter(|l| l.get("WebhookReceived").is_some()).count(), 4);
    assert_eq!(metrics.iter().filter(|l| l.get("WebhookRefused").is_some()).count(), 5);
    assert_eq!(metrics.iter().filter(|l| l.get("WebhookReplay").is_some()).count(), 1);
    assert!(
        json_lines.iter().any(|l| l["message"] == "webhook stored" && l["case_system_id"].is_string()),
        "the logs are the function's JSON lines:\n{stdout}"
    );
    assert_clean("stdout", &stdout, &signatures);
    assert_clean("stderr", &stderr, &signatures);
}
