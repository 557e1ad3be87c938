//! The control API: faults, stats, case lookup, reset.

use crate::common;

use common::{Api, individual, sandbox};
use gateway_sandbox::{Faults, Stats};
use serde_json::{Value, json};

#[tokio::test]
async fn faults_round_trip_and_are_checked() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let current: Faults = api.control("GET", "/faults", None).await.json().await.unwrap();
    assert_eq!(current, Faults::default());

    // A PUT replaces the whole set: absent fields go back to their defaults.
    let response = api.control("PUT", "/faults", Some(json!({"latencyMs": 5, "errorRate503": 0.5}))).await;
    assert_eq!(response.status(), 200);
    let response = api.control("PUT", "/faults", Some(json!({"duplicateWebhooks": 1, "clockOffsetSecs": -40}))).await;
    assert_eq!(response.status(), 200);
    let current: Value = api.control("GET", "/faults", None).await.json().await.unwrap();
    assert_eq!(
        current,
        json!({
            "latencyMs": 0, "errorRate500": 0.0, "errorRate503": 0.0, "rateLimitPerSec": 0.0,
            "dropWebhookRate": 0.0, "duplicateWebhooks": 1, "reorderWebhooks": false,
            "reorderWindowMs": 250, "clockOffsetSecs": -40, "webhookLostAckRate": 0.0
        })
    );
    assert_eq!(sandbox.faults().clock_offset_secs, -40);

    for bad in [
        json!({"errorRate500": 1.5}),
        json!({"errorRate500": 0.6, "errorRate503": 0.6}),
        json!({"dropWebhookRate": -0.1}),
        json!({"rateLimitPerSec": -1}),
        json!({"clockOffsetSecs": 9_000_000_000i64}),
        json!({"latencyMS": 5}),
        json!({"latencyMs": "5"}),
    ] {
        let response = api.control("PUT", "/faults", Some(bad.clone())).await;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 400);
    }
    // Refused PUTs changed nothing.
    assert_eq!(sandbox.faults().duplicate_webhooks, 1);
}

#[tokio::test]
async fn stats_count_what_happened() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let created = api.create(&individual("st-1", "John Doe")).await;
    let id = created["caseSystemId"].as_str().unwrap();
    api.get_case(id).await;
    api.get_case(id).await;
    api.call("DELETE", &format!("/api/v1/cases/{id}/ogs"), "").await;
    api.call("GET", "/api/v1/unknown", "").await;
    let mut unsigned = common::Raw::signed("GET", "/api/v1/cases", "", 0);
    unsigned.sign = None;
    api.raw(unsigned).await;

    let stats: Stats = api.control("GET", "/stats", None).await.json().await.unwrap();
    assert_eq!(stats.seed, 7);
    assert_eq!(stats.creates, 1);
    assert_eq!(stats.unauthorized, 1);
    assert_eq!(stats.requests["POST /api/v1/cases"], 1);
    assert_eq!(stats.requests["GET /api/v1/cases/{caseSystemId}"], 2);
    assert_eq!(stats.requests["DELETE /api/v1/cases/{caseSystemId}/ogs"], 1);
    // The unknown route, and GET on the create path.
    assert_eq!(stats.requests["other"], 2);
    assert_eq!(stats.responses[&201], 1);
    assert_eq!(stats.responses[&200], 2);
    assert_eq!(stats.responses[&204], 1);
    assert_eq!(stats.responses[&404], 1);
    assert_eq!(stats.responses[&401], 1);
}

#[tokio::test]
async fn requests_are_counted_per_case() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let created = api.create(&individual("pc-1", "John Doe")).await;
    let id = created["caseSystemId"].as_str().unwrap();
    let other = api.create(&individual("pc-2", "John Doe")).await;
    let other = other["caseSystemId"].as_str().unwrap();
    for _ in 0..3 {
        api.get_case(id).await;
    }
    api.get_case(other).await;
    api.call("DELETE", &format!("/api/v1/cases/{id}/ogs"), "").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    api.call("GET", &format!("/api/v1/cases/{unknown}"), "").await;

    assert_eq!(
        case_requests(&api, id).await,
        json!({"GET /api/v1/cases/{caseSystemId}": 3, "DELETE /api/v1/cases/{caseSystemId}/ogs": 1})
    );
    assert_eq!(case_requests(&api, other).await, json!({"GET /api/v1/cases/{caseSystemId}": 1}));
    let unknown_count = case_requests(&api, &unknown).await;
    assert_eq!(unknown_count, json!({"GET /api/v1/cases/{caseSystemId}": 1}), "counted on arrival");
    assert_eq!(case_requests(&api, &uuid::Uuid::new_v4().to_string()).await, json!({}));
}

async fn case_requests(api: &Api, id: &str) -> Value {
    api.control("GET", &format!("/cases/{id}/requests"), None).await.json().await.unwrap()
}

#[tokio::test]
async fn cases_can_be_found_by_external_id() {
    let sandbox = sandbox(|c| c.reject_duplicate_external_id = false).await;
    let api = Api::new(&sandbox);
    api.create(&individual("find-1", "John Doe")).await;
    api.create(&individual("find-2", "John Doe")).await;
    api.create(&individual("find-1", "Somebody Unclear")).await;

    let found: Vec<Value> = api.control("GET", "/cases?externalCaseId=find-1", None).await.json().await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0]["case"]["suggestion"], "SUGGEST_TO_ACCEPT");
    assert_eq!(found[1]["case"]["suggestion"], "NO_SUGGESTION");
    assert!(found[0]["createdAt"].as_str().unwrap().contains('T'));
    let all: Vec<Value> = api.control("GET", "/cases", None).await.json().await.unwrap();
    assert_eq!(all.len(), 3);
    let none: Vec<Value> = api.control("GET", "/cases?externalCaseId=nope", None).await.json().await.unwrap();
    assert!(none.is_empty());

    let id = found[1]["case"]["caseSystemId"].as_str().unwrap();
    let one: Value = api.control("GET", &format!("/cases/{id}"), None).await.json().await.unwrap();
    assert_eq!(one, found[1]);
    assert_eq!(api.control("GET", "/cases/not-an-id", None).await.status(), 404);
    assert_eq!(api.control("GET", "/nothing-here", None).await.status(), 404);
}

#[tokio::test]
async fn reset_returns_to_the_start() {
    let sandbox = sandbox(|c| c.faults.latency_ms = 1).await;
    let api = Api::new(&sandbox);
    let first = api.create(&individual("re-1", "John Doe")).await;
    sandbox.set_faults(Faults { error_rate_500: 1.0, ..Faults::default() }).unwrap();
    assert_eq!(api.control("POST", "/reset", None).await.status(), 204);
    assert_eq!(sandbox.faults().latency_ms, 1);
    assert_eq!(sandbox.faults().error_rate_500, 0.0);
    assert_eq!(sandbox.stats().creates, 0);
    assert!(sandbox.deliveries().is_empty());
    // The same external id is free again, and the re-seeded generator gives the same id.
    let again = api.create(&individual("re-1", "John Doe")).await;
    assert_eq!(first["caseSystemId"], again["caseSystemId"]);
}
