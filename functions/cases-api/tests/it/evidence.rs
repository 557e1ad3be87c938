//! `GET /v1/cases/{id}/evidence`: the whole chained timeline, checked offline; an event
//! edited by hand in the table breaks the check at that event.

use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use gateway_cabital::{CaseSystemId, Decision, Pii, Suggestion};
use gateway_store::{RemoteCheck, RemoteState};
use time::OffsetDateTime;

#[tokio::test]
async fn the_export_verifies_and_a_hand_edit_in_the_table_is_named() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, Some(&case_body("evidence-1"))).await;
    let case: CaseSystemId = id.parse().unwrap();
    let version = h.store.get_case(&case).await.unwrap().unwrap().version;
    let remote = RemoteState { suggestion: Some(Suggestion::SuggestToReject), ..RemoteState::default() };
    let now = OffsetDateTime::now_utc();
    h.store.apply_remote_state(&case, version, &remote, RemoteCheck::Refreshed, now).await.unwrap();
    h.store.record_decision(&case, Decision::Reject, Some(Pii("on a list".into())), now).await.unwrap();

    let export = send(&app, &evidence_of(&id)).await;
    export.expect(200);
    let verified = gateway_evidence::verify(&export.json).unwrap();
    assert_eq!(verified.events, 3, "{}", export.text);
    assert_eq!(export.json["chain"]["head"], verified.head);
    let kinds: Vec<&str> =
        export.json["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["CREATED", "REFRESHED", "DECISION"]);

    // Someone edits the DECISION event's comment in DynamoDB by hand.
    let decision = &export.json["events"][2];
    let (event_id, at) = (decision["eventId"].as_str().unwrap(), decision["at"].as_str().unwrap());
    h.store
        .client()
        .update_item()
        .table_name(h.store.table_name())
        .key("pk", AttributeValue::S(format!("CASE#{id}")))
        .key("sk", AttributeValue::S(event_id.to_owned()))
        .update_expression("SET #c = :c")
        .expression_attribute_names("#c", "comment")
        .expression_attribute_values(":c", AttributeValue::S("cleared after review".into()))
        .send()
        .await
        .unwrap();
    let edited = send(&app, &evidence_of(&id)).await;
    edited.expect(200);
    let broken = gateway_evidence::verify(&edited.json).unwrap_err();
    assert_eq!((broken.event_id.as_str(), broken.at.as_str()), (event_id, at), "{broken}");
    assert!(broken.problem.contains("edited"), "{broken}");

    // An unknown case is a 404; a bad id a 400.
    send(&app, &evidence_of("00000000-0000-4000-8000-000000000000")).await.expect_problem(404, "case_not_found");
    send(&app, &evidence_of("not-a-uuid")).await.expect(400);
}
