//! `DELETE /v1/cases/{id}/personal-data`: every personal field of every item of the case
//! replaced, ids, decisions, times and hashes kept, an ERASED event appended; the
//! evidence export still verifies; safe to repeat.

use crate::common::*;
use gateway_cabital::{CaseSystemId, Comment, Decision, ExternalCaseId, Pii, Suggestion};
use gateway_store::{RemoteCheck, RemoteState, WebhookReceipt};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

fn erase(id: &str) -> Event {
    Event::for_case("get-case.json", id).with_path(&format!("/v1/cases/{id}/personal-data")).with_method("DELETE")
}

/// Every string attribute of every item, as one text.
async fn everything_stored(h: &gateway_support::Harness) -> String {
    format!("{:?}", table_items(&h.store).await)
}

#[tokio::test]
async fn personal_data_is_erased_everywhere_and_the_chain_still_verifies() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, Some(&case_body("erase-1"))).await;
    let case: CaseSystemId = id.parse().unwrap();
    let now = OffsetDateTime::now_utc();
    // A webhook body, a suggestion's comment and a decision's comment, all personal.
    let body = format!(
        r#"{{"caseSystemId":"{id}","externalCaseId":"erase-1","suggestion":"SUGGEST_TO_REJECT","suggestion_comment":"Matched list entry for John Doe"}}"#
    );
    let receipt = WebhookReceipt {
        notice: None,
        case_system_id: case,
        external_case_id: ExternalCaseId::parse("erase-1").unwrap(),
        suggestion: Some(Suggestion::SuggestToReject),
        suggestion_comment: Some(Comment::from(Pii("Matched list entry for John Doe".into()))),
        body_sha256: hex::encode(Sha256::digest(body.as_bytes())),
        body: Pii(body),
        signature: None,
    };
    h.store.record_webhook(&receipt, now).await.unwrap();
    let version = h.store.get_case(&case).await.unwrap().unwrap().version;
    let remote = RemoteState {
        suggestion: Some(Suggestion::SuggestToReject),
        suggestion_comment: Some(Comment::from(Pii("Matched list entry for John Doe".into()))),
        ..RemoteState::default()
    };
    h.store.apply_remote_state(&case, version, &remote, RemoteCheck::Refreshed, now).await.unwrap();
    h.store
        .record_decision(&case, Decision::Reject, Some(Pii("Officer saw John Doe's passport".into())), now)
        .await
        .unwrap();
    let personal = ["John Doe", "2002-02-02", "JPN", "HKG", "Matched list entry", "passport"];
    let before = everything_stored(&h).await;
    for p in personal {
        assert!(before.contains(p), "the test stores {p} first");
    }

    let erased = send(&app, &erase(&id)).await;
    erased.expect(200);
    assert_eq!(erased.json["alreadyErased"], false);
    assert!(erased.json["itemsErased"].as_u64().unwrap() >= 5, "{}", erased.text);
    let after = everything_stored(&h).await;
    for p in personal {
        assert!(!after.contains(p), "{p} is still stored after the erasure");
    }

    // Ids, suggestion, decision and times are kept; an ERASED event closes the timeline.
    let shown = send(&app, &Event::for_case("get-case.json", &id)).await;
    shown.expect(200);
    assert_eq!(shown.json["case"]["externalCaseId"], "erase-1");
    assert_eq!(shown.json["case"]["suggestion"], "SUGGEST_TO_REJECT");
    assert_eq!(shown.json["case"]["decision"], "REJECT");
    assert_eq!(shown.json["case"]["decisionComment"], "[erased]");
    let kinds: Vec<&str> =
        shown.json["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.last(), Some(&"ERASED"), "{kinds:?}");

    // The chain still verifies: erased events are marked and linked by their kept hash.
    let export = send(&app, &evidence_of(&id)).await;
    export.expect(200);
    let verified = gateway_evidence::verify(&export.json).unwrap();
    assert_eq!(verified.events, kinds.len());
    assert!(verified.erased >= 4, "CREATED, WEBHOOK, REFRESHED, DECISION: {verified:?}");
    assert_eq!(export.json["erasedAt"], erased.json["erasedAt"]);

    // What Cabital sends after the erasure is kept without its personal data.
    let late = format!(
        r#"{{"caseSystemId":"{id}","externalCaseId":"erase-1","suggestion":"SUGGEST_TO_ACCEPT","suggestion_comment":"John Doe cleared"}}"#
    );
    let late_receipt = WebhookReceipt {
        suggestion: Some(Suggestion::SuggestToAccept),
        suggestion_comment: Some(Comment::from(Pii("John Doe cleared".into()))),
        body_sha256: hex::encode(Sha256::digest(late.as_bytes())),
        body: Pii(late),
        ..receipt.clone()
    };
    h.store.record_webhook(&late_receipt, OffsetDateTime::now_utc()).await.unwrap();
    let version = h.store.get_case(&case).await.unwrap().unwrap().version;
    let remote = RemoteState {
        suggestion: Some(Suggestion::SuggestToAccept),
        suggestion_comment: Some(Comment::from(Pii("John Doe cleared".into()))),
        decision: Some(Decision::Reject),
        decision_comment: Some(Comment::from(Pii("Officer saw John Doe's passport".into()))),
        ..RemoteState::default()
    };
    let applied =
        h.store.apply_remote_state(&case, version, &remote, RemoteCheck::Refreshed, OffsetDateTime::now_utc());
    assert!(applied.await.unwrap().changed, "the suggestion changed");
    let later = everything_stored(&h).await;
    for p in personal.iter().chain(&["cleared"]) {
        assert!(!later.contains(p), "{p} was stored after the erasure");
    }
    let export = send(&app, &evidence_of(&id)).await;
    gateway_evidence::verify(&export.json).unwrap();
    let kinds_now = export.json["events"].as_array().unwrap().len();

    // Again: nothing more to do, the same time.
    let again = send(&app, &erase(&id)).await;
    again.expect(200);
    assert_eq!(again.json["alreadyErased"], true);
    assert_eq!(again.json["erasedAt"], erased.json["erasedAt"]);
    assert_eq!(again.json["itemsErased"], 0);
    let export = send(&app, &evidence_of(&id)).await;
    assert_eq!(export.json["events"].as_array().unwrap().len(), kinds_now, "no event added by a repeat");
}

#[tokio::test]
async fn erasing_an_unknown_case_is_404() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    send(&app, &erase("00000000-0000-4000-8000-000000000000")).await.expect_problem(404, "case_not_found");
    let other: Value = send(&app, &erase("not-a-uuid")).await.json;
    assert_eq!(other["status"], 400);
}
