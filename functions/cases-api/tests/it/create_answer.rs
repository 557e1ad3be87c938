//! Cabital's 201 to a create may carry no body, or no `caseSystemId` (its page shows
//! none): Cabital has the case, so the reservation becomes UNKNOWN (never freed, never
//! sent again) and the caller gets a stable 202 saying where the id will show.

use crate::common;

use common::*;
use gateway_sandbox::CreateAnswerMode;
use gateway_store::ExtState;

async fn created_without_id(mode: CreateAnswerMode, ext: &str) {
    let h = gateway_support::harness(|c| c.create_answer = mode).await;
    let app = app(&h);
    let body = case_body(ext);
    let resp = send(&app, &Event::fixture("create-case.json").with_json(&body)).await;
    resp.expect(202);
    assert_eq!(resp.header("content-type"), Some("application/json"), "{}", resp.text);
    assert_eq!(resp.json["externalCaseId"], ext);
    assert_eq!(resp.json["state"], "UNKNOWN");
    assert_eq!(resp.json["code"], "case_system_id_pending");
    assert_eq!(resp.json["cabitalStatus"], 201);
    assert_eq!(resp.json["lookup"], format!("/v1/cases?externalCaseId={ext}"));
    assert_eq!(resp.json["replayed"], false);

    let parsed = gateway_cabital::ExternalCaseId::parse(ext).unwrap();
    let kept = h.store.get_external(&parsed).await.unwrap().expect("the reservation is kept");
    assert_eq!((kept.state, kept.case_system_id, kept.cabital_status), (ExtState::Unknown, None, Some(201)));
    assert_eq!(h.sandbox.cases_by_external_id(ext).len(), 1, "Cabital has it");

    // The same request again: the same answer, nothing sent.
    let again = send(&app, &Event::fixture("create-case.json").with_json(&body)).await;
    again.expect(202);
    assert_eq!(again.json["replayed"], true);
    assert_eq!(again.json["code"], "case_system_id_pending");
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases"), 1, "never sent again");

    // The lookup it points to shows the reservation.
    let found = send(&app, &Event::fixture("find-case.json").with_query(&[("externalCaseId", ext)])).await;
    found.expect(200);
    assert_eq!(found.json["state"], "UNKNOWN");
    assert_eq!(found.json["caseSystemId"], serde_json::Value::Null);
}

#[tokio::test]
async fn an_empty_201_keeps_the_reservation_unknown_and_answers_202() {
    created_without_id(CreateAnswerMode::Empty, "answer-empty-1").await;
}

#[tokio::test]
async fn a_201_without_case_system_id_keeps_the_reservation_unknown_and_answers_202() {
    created_without_id(CreateAnswerMode::NoId, "answer-no-id-1").await;
}

#[tokio::test]
async fn a_full_201_is_still_a_201_with_the_case() {
    let h = gateway_support::harness(|c| c.create_answer = CreateAnswerMode::Full).await;
    let app = app(&h);
    let resp = send(&app, &Event::fixture("create-case.json").with_json(&case_body("answer-full-1"))).await;
    resp.expect(201);
    assert!(resp.json["caseSystemId"].is_string(), "{}", resp.text);
}

#[tokio::test]
async fn a_get_without_case_system_id_reads_the_case_live() {
    let h = gateway_support::harness(|c| c.get_without_case_system_id = true).await;
    let app = app(&h);
    let (id, _) = create(&app, Some(&case_body("answer-get-1"))).await;
    let resp = send(&app, &Event::for_case("get-case-live.json", &id)).await;
    resp.expect(200);
    assert_eq!(resp.json["case"]["caseSystemId"], id.as_str());
    assert_eq!(resp.json["case"]["suggestion"], "SUGGEST_TO_ACCEPT", "{}", resp.text);
}
