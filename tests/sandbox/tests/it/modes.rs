//! The modes that exercise the other answer wherever Cabital's page is silent: the
//! create's 201 body, `GET` without `caseSystemId`, and no screening on create.

use crate::common;

use std::time::Duration;

use common::{Api, Receiver, individual, sandbox};
use gateway_sandbox::{CreateAnswerMode, SignatureEncoding, Suggestion, SuggestionChange};
use serde_json::Value;
use uuid::Uuid;

/// The tests' own signer writes hex: say so rather than rely on the default.
fn hex(config: &mut gateway_sandbox::SandboxConfig) {
    config.signature_encoding = SignatureEncoding::Hex;
}

async fn create_raw(api: &Api, ext: &str) -> (u16, String) {
    let response = api.call("POST", "/api/v1/cases", &individual(ext, "John Doe").to_string()).await;
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn create_answer_full_is_the_case_with_its_id() {
    let sandbox = sandbox(hex).await;
    let (status, body) = create_raw(&Api::new(&sandbox), "m-full").await;
    assert_eq!(status, 201);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert!(json["caseSystemId"].as_str().is_some_and(|id| Uuid::parse_str(id).is_ok()), "{body}");
}

#[tokio::test]
async fn create_answer_empty_is_a_201_with_no_body_and_the_case_exists() {
    let sandbox = sandbox(|c| {
        hex(c);
        c.create_answer = CreateAnswerMode::Empty;
    })
    .await;
    let (status, body) = create_raw(&Api::new(&sandbox), "m-empty").await;
    assert_eq!((status, body.as_str()), (201, ""));
    assert_eq!(sandbox.cases_by_external_id("m-empty").len(), 1, "the case was created all the same");
}

#[tokio::test]
async fn create_answer_no_id_is_the_case_without_case_system_id() {
    let sandbox = sandbox(|c| {
        hex(c);
        c.create_answer = CreateAnswerMode::NoId;
    })
    .await;
    let (status, body) = create_raw(&Api::new(&sandbox), "m-no-id").await;
    assert_eq!(status, 201);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert!(json.get("caseSystemId").is_none(), "{body}");
    assert_eq!(json["externalCaseId"], "m-no-id");
    assert_eq!(json["fullName"], "John Doe");
    assert_eq!(sandbox.cases_by_external_id("m-no-id").len(), 1);
}

#[tokio::test]
async fn get_without_case_system_id_omits_it_and_keeps_the_rest() {
    let sandbox = sandbox(|c| {
        hex(c);
        c.get_without_case_system_id = true;
    })
    .await;
    let api = Api::new(&sandbox);
    let created = api.create(&individual("m-get", "John Doe")).await;
    let id = created["caseSystemId"].as_str().unwrap();
    let got = api.get_case(id).await;
    assert!(got.get("caseSystemId").is_none(), "{got}");
    assert_eq!(got["externalCaseId"], "m-get");
    assert_eq!(got["suggestion"], "SUGGEST_TO_ACCEPT");
}

#[tokio::test]
async fn no_screening_gives_no_suggestion_and_no_webhook_until_the_control_api_sets_one() {
    let receiver = Receiver::start(|_| 200).await;
    let url = format!("{}/hook", receiver.base).parse().unwrap();
    let sandbox = sandbox(|c| {
        hex(c);
        c.no_screening = true;
        c.webhook_url = Some(url);
    })
    .await;
    let api = Api::new(&sandbox);
    let created = api.create(&individual("m-quiet", "Ivan Blocklisted")).await;
    let id = Uuid::parse_str(created["caseSystemId"].as_str().unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.get_case(&id.to_string()).await["suggestion"], Value::Null);
    assert!(receiver.hits().is_empty(), "no webhook without screening");
    let state = sandbox.case(id).unwrap();
    assert!(!state.screening_pending && state.suggestion_history.is_empty());

    // Later screening (the control API) still suggests, with its webhook.
    let change = SuggestionChange { suggestion: Suggestion::SuggestToReject, comment: None, notify: true };
    sandbox.set_suggestion(id, change).unwrap();
    assert_eq!(api.get_case(&id.to_string()).await["suggestion"], "SUGGEST_TO_REJECT");
    let hits = receiver.wait_for(1, Duration::from_secs(5)).await;
    let body: Value = serde_json::from_slice(&hits[0].body).unwrap();
    assert_eq!(body["caseSystemId"], id.to_string());
}
