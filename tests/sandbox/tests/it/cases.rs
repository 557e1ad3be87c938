//! The case resource: create, get, ongoing screening on/off, decision, the screening rule.

use crate::common;

use std::time::Duration;

use common::{Api, individual, sandbox, wait_until_async};
use gateway_sandbox::{CaseResult, Suggestion, SuggestionSource};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn create_then_get_has_every_field() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let sent = individual("c-1", "John Doe");
    let created = api.create(&sent).await;
    let id = Uuid::parse_str(created["caseSystemId"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 4);
    // The create answer predates screening.
    assert_eq!(created["suggestion"], Value::Null);
    assert_eq!(created["ogs"], false);
    assert_eq!(created["externalCaseId"], "c-1");

    let got = api.get_case(&id.to_string()).await;
    let expected_keys = [
        "caseSystemId",
        "decision",
        "decision_comment",
        "externalCaseId",
        "fullName",
        "individualInfo",
        "ogs",
        "organizationInfo",
        "screenType",
        "suggestion",
        "suggestion_comment",
    ];
    let mut keys: Vec<&str> = got.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, expected_keys);
    assert_eq!(got["screenType"], "INDIVIDUAL");
    assert_eq!(got["fullName"], "John Doe");
    assert_eq!(got["individualInfo"], sent["individualInfo"]);
    assert_eq!(got["organizationInfo"], json!({}));
    assert_eq!(got["suggestion"], "SUGGEST_TO_ACCEPT");
    assert_eq!(got["suggestion_comment"], "No hit");
    assert_eq!(got["decision"], Value::Null);
    assert_eq!(got["decision_comment"], Value::Null);
}

#[tokio::test]
async fn organisation_case_passes_its_info_through() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let info = json!({"registrationNumber": "12345", "country": "GBR", "nested": {"a": [1, 2]}});
    let created = api
        .create(&json!({"externalCaseId": "o-1", "screenType": "ORGANISATION", "fullName": "Acme Trading Ltd", "organizationInfo": info}))
        .await;
    let got = api.get_case(created["caseSystemId"].as_str().unwrap()).await;
    assert_eq!(got["organizationInfo"], info);
    assert_eq!(got["individualInfo"], json!({}));
    assert_eq!(got["screenType"], "ORGANISATION");
}

#[tokio::test]
async fn screening_follows_the_name() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    for (n, (name, suggestion, comment)) in [
        ("Ivan Blocklisted", "SUGGEST_TO_REJECT", "Matched list Sandbox OFAC SDN"),
        ("Sanctioned Person", "SUGGEST_TO_REJECT", "Matched list Sandbox Sanctions"),
        ("Somebody Unclear", "NO_SUGGESTION", "Possible match, needs review"),
        ("Jane Smith", "SUGGEST_TO_ACCEPT", "No hit"),
        ("山田 太郎", "SUGGEST_TO_ACCEPT", "No hit"),
    ]
    .into_iter()
    .enumerate()
    {
        let created = api.create(&individual(&format!("s-{n}"), name)).await;
        let got = api.get_case(created["caseSystemId"].as_str().unwrap()).await;
        assert_eq!(got["suggestion"], suggestion, "{name}");
        assert_eq!(got["suggestion_comment"], comment, "{name}");
    }
}

#[tokio::test]
async fn screening_delay_hides_the_suggestion_until_due() {
    let sandbox = sandbox(|c| c.screening_delay_ms = 1000).await;
    let api = Api::new(&sandbox);
    let created = api.create(&individual("d-1", "Ivan Blocklisted")).await;
    let id = created["caseSystemId"].as_str().unwrap().to_owned();
    let got = api.get_case(&id).await;
    assert_eq!(got["suggestion"], Value::Null);
    assert!(sandbox.case(id.parse().unwrap()).unwrap().screening_pending);
    wait_until_async(Duration::from_secs(3), || {
        let api = &api;
        let id = id.clone();
        async move { api.get_case(&id).await["suggestion"] == "SUGGEST_TO_REJECT" }
    })
    .await;
    let state = sandbox.case(id.parse().unwrap()).unwrap();
    assert!(!state.screening_pending);
    assert_eq!(state.suggestion_history.len(), 1);
    assert_eq!(state.suggestion_history[0].source, SuggestionSource::Screening);
}

#[tokio::test]
async fn ongoing_screening_and_decision() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let created = api.create(&individual("o-2", "John Doe")).await;
    let id = created["caseSystemId"].as_str().unwrap().to_owned();

    let on = api.call("POST", &format!("/api/v1/cases/{id}/ogs"), "").await;
    assert_eq!(on.status(), 201);
    assert_eq!(api.get_case(&id).await["ogs"], true);
    // Turning it on twice is fine.
    assert_eq!(api.call("POST", &format!("/api/v1/cases/{id}/ogs"), "").await.status(), 201);
    let off = api.call("DELETE", &format!("/api/v1/cases/{id}/ogs"), "").await;
    assert_eq!(off.status(), 204);
    assert!(off.bytes().await.unwrap().is_empty());
    assert_eq!(api.get_case(&id).await["ogs"], false);

    let decision = json!({"caseResult": "REJECT", "comment": "决策备注"}).to_string();
    let response = api.call("POST", &format!("/api/v1/cases/{id}/decision"), &decision).await;
    assert_eq!(response.status(), 201);
    let got = api.get_case(&id).await;
    assert_eq!(got["decision"], "REJECT");
    assert_eq!(got["decision_comment"], "决策备注");
    // A second decision replaces the first; the history keeps both.
    let decision = json!({"caseResult": "ACCEPT"}).to_string();
    assert_eq!(api.call("POST", &format!("/api/v1/cases/{id}/decision"), &decision).await.status(), 201);
    let state = sandbox.case(id.parse().unwrap()).unwrap();
    assert_eq!(state.case.decision, Some(CaseResult::Accept));
    assert_eq!(state.case.decision_comment, None);
    assert_eq!(state.decision_history.len(), 2);
    assert_eq!(state.case.suggestion, Some(Suggestion::SuggestToAccept));
}

#[tokio::test]
async fn seeded_ids_repeat() {
    let first = sandbox(|c| c.seed = Some(42)).await;
    let second = sandbox(|c| c.seed = Some(42)).await;
    let a = Api::new(&first).create(&individual("r-1", "John Doe")).await;
    let b = Api::new(&second).create(&individual("r-1", "John Doe")).await;
    assert_eq!(a["caseSystemId"], b["caseSystemId"]);
    assert_eq!(first.seed(), 42);
}
