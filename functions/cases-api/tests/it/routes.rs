//! Each route's success, through the real handler from the fixture events, against moto
//! and the Cabital sandbox; every answer is also checked against `docs/openapi.yaml`.

use crate::common;

use common::*;
use gateway_sandbox::{Suggestion as SandboxSuggestion, SuggestionChange};
use serde_json::{Value, json};

#[tokio::test]
async fn create_makes_exactly_one_case_at_the_sandbox_and_in_dynamodb() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let event = Event::fixture("create-case.json");
    let resp = send(&app, &event).await;
    resp.expect(201);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let id = resp.json["caseSystemId"].as_str().expect("a caseSystemId").to_owned();
    assert_eq!(resp.json["replayed"], false);
    assert_eq!(resp.json["case"]["caseSystemId"], id.as_str());
    assert_eq!(resp.json["case"]["externalCaseId"], FIXTURE_EXTERNAL_ID);
    assert_eq!(resp.json["case"]["screenType"], "INDIVIDUAL");
    assert_eq!(resp.json["case"]["origin"], "API");
    assert_eq!(resp.json["case"]["version"], 1);

    // Once at the sandbox, as submitted.
    let at_sandbox = h.sandbox.cases_by_external_id(FIXTURE_EXTERNAL_ID);
    assert_eq!(at_sandbox.len(), 1);
    assert_eq!(at_sandbox[0].case.case_system_id.to_string(), id);
    assert_eq!(at_sandbox[0].case.full_name, "John Doe");
    assert_eq!(at_sandbox[0].case.individual_info, event.json_body()["individualInfo"]);
    assert_eq!(h.sandbox.stats().creates, 1);

    // Once in DynamoDB: one case, one reservation (CREATED, naming the case), one event.
    let items = table_items(&h.store).await;
    assert_eq!(items.get("CASE").map(Vec::len), Some(1), "{items:?}");
    assert_eq!(items.get("EXT").map(Vec::len), Some(1), "{items:?}");
    assert_eq!(items.get("EVENT").map(Vec::len), Some(1), "{items:?}");
    let ext = h
        .store
        .get_external(&gateway_cabital::ExternalCaseId::parse(FIXTURE_EXTERNAL_ID).unwrap())
        .await
        .unwrap()
        .expect("the reservation is stored");
    assert_eq!(ext.state, gateway_store::ExtState::Created);
    assert_eq!(ext.case_system_id.map(|c| c.to_string()), Some(id.clone()));
    let case = stored_case(&h.store, &id).await;
    assert_eq!(case.external_case_id.as_str(), FIXTURE_EXTERNAL_ID);
    let events = stored_events(&h.store, &id).await;
    assert_eq!(events.len(), 1);
    match &events[0].detail {
        gateway_store::EventDetail::Created { submitted, response } => {
            let submitted: Value = serde_json::from_str(submitted.as_ref().expect("what was sent").expose()).unwrap();
            assert_eq!(submitted["fullName"], "John Doe");
            let response: Value = serde_json::from_str(response.as_ref().expect("Cabital's answer").expose()).unwrap();
            assert_eq!(response["caseSystemId"], id.as_str());
        }
        other => panic!("the first event is not CREATED: {other:?}"),
    }
}

#[tokio::test]
async fn an_organisation_is_created_from_its_fixture() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let resp = send(&app, &Event::fixture("create-case-organisation.json")).await;
    resp.expect(201);
    assert_eq!(resp.json["case"]["screenType"], "ORGANISATION");
    let at_sandbox = h.sandbox.cases_by_external_id("fixture-org-0001");
    assert_eq!(at_sandbox.len(), 1);
    assert_eq!(at_sandbox[0].case.organization_info, json!({"registrationNumber": "12345678", "country": "GBR"}));
}

#[tokio::test]
async fn get_answers_the_stored_case_with_its_created_event() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, created) = create(&app, None).await;
    let resp = send(&app, &Event::for_case("get-case.json", &id)).await;
    resp.expect(200);
    assert_eq!(resp.json["case"], created.json["case"]);
    assert!(resp.json.get("liveChanged").is_none(), "not asked live: {}", resp.text);
    assert_eq!(resp.json["nextCursor"], Value::Null);
    let timeline = resp.json["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0]["kind"], "CREATED");
    assert_eq!(timeline[0]["source"], "API");
    assert_eq!(timeline[0]["details"]["submitted"], Event::fixture("create-case.json").json_body());
    assert_eq!(timeline[0]["details"]["response"]["caseSystemId"], id.as_str());
    // The sandbox was not asked: a plain read is the record.
    assert_eq!(sandbox_requests(&h, "GET /api/v1/cases/{caseSystemId}"), 0);
}

fn event_ids(resp: &Resp) -> Vec<String> {
    resp.json["timeline"].as_array().unwrap().iter().map(|e| e["eventId"].as_str().unwrap().to_owned()).collect()
}

fn kinds(resp: &Resp) -> Vec<String> {
    resp.json["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

/// Reads every page of a case's timeline with `limit`, in `order`.
async fn all_pages(app: &gateway_cases_api::App, id: &str, order: &str, limit: u32) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let limit = limit.to_string();
        let mut query = vec![("order", order), ("limit", limit.as_str())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let resp = send(app, &Event::for_case("get-case.json", id).with_query(&query)).await;
        resp.expect(200);
        pages += 1;
        let page = event_ids(&resp);
        assert!(!page.is_empty() && page.len() <= limit.parse().unwrap(), "page of {}: {}", page.len(), resp.text);
        ids.extend(page);
        match resp.json["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (ids, pages),
        }
        assert!(pages < 20, "the cursor never ends");
    }
}

#[tokio::test]
async fn the_timeline_reads_in_both_orders_and_in_pages() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    send(&app, &Event::for_case("ogs-on.json", &id)).await.expect(200);
    send(&app, &Event::for_case("ogs-off.json", &id)).await.expect(200);
    send(&app, &Event::for_case("decision.json", &id)).await.expect(200);
    send(&app, &Event::for_case("get-case-live.json", &id)).await.expect(200);

    let oldest = send(&app, &Event::for_case("get-case.json", &id).with_query(&[("order", "oldest")])).await;
    oldest.expect(200);
    assert_eq!(kinds(&oldest), ["CREATED", "OGS_ON", "OGS_OFF", "DECISION", "REFRESHED"]);
    assert_eq!(oldest.json["nextCursor"], Value::Null);
    // The default order is oldest first.
    let default = send(&app, &Event::for_case("get-case.json", &id)).await;
    assert_eq!(event_ids(&default), event_ids(&oldest));
    // What the API shows is what the table holds.
    let stored: Vec<String> = stored_events(&h.store, &id).await.into_iter().map(|e| e.event_id).collect();
    assert_eq!(event_ids(&oldest), stored);

    let newest = send(&app, &Event::for_case("get-case.json", &id).with_query(&[("order", "newest")])).await;
    let mut reversed = event_ids(&oldest);
    reversed.reverse();
    assert_eq!(event_ids(&newest), reversed);

    // Pages of 2: 2 + 2 + 1, every event once, in order, both ways.
    let (paged, pages) = all_pages(&app, &id, "oldest", 2).await;
    assert_eq!((paged, pages), (event_ids(&oldest), 3));
    let (paged, pages) = all_pages(&app, &id, "newest", 2).await;
    assert_eq!((paged, pages), (reversed.clone(), 3));
    // A page as large as the timeline has no next page.
    let (paged, pages) = all_pages(&app, &id, "newest", 5).await;
    assert_eq!((paged, pages), (reversed, 1));
}

#[tokio::test]
async fn a_bad_cursor_or_query_is_a_400() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    send(&app, &Event::for_case("ogs-on.json", &id)).await.expect(200);
    let (other, _) = create(&app, Some(&case_body("fixture-0002"))).await;
    send(&app, &Event::for_case("ogs-on.json", &other)).await.expect(200);

    // A cursor this API never gave.
    for cursor in ["not-a-cursor", "bm90IGEgY3Vyc29y", "!!!"] {
        let resp = send(&app, &Event::for_case("get-case.json", &id).with_query(&[("cursor", cursor)])).await;
        resp.expect_problem(400, "validation_failed");
        assert_eq!(
            resp.json["errors"],
            json!([{"field": "cursor", "code": "invalid_cursor", "message": "is not a cursor this API gave"}])
        );
    }
    // A real cursor, but of another case.
    let page = send(&app, &Event::for_case("get-case.json", &other).with_query(&[("limit", "1")])).await;
    let foreign = page.json["nextCursor"].as_str().expect("a second page").to_owned();
    let resp = send(&app, &Event::for_case("get-case.json", &id).with_query(&[("cursor", &foreign)])).await;
    resp.expect_problem(400, "validation_failed");
    assert_eq!(resp.json["errors"][0]["field"], "cursor");

    // The largest page is the store's; one more is refused, not cut short in silence.
    let largest = gateway_store::MAX_TIMELINE_PAGE.to_string();
    send(&app, &Event::for_case("get-case.json", &id).with_query(&[("limit", &largest)])).await.expect(200);
    let over = (gateway_store::MAX_TIMELINE_PAGE + 1).to_string();
    for query in
        [[("limit", "0")], [("limit", over.as_str())], [("limit", "ten")], [("order", "sideways")], [("live", "yes")]]
    {
        let resp = send(&app, &Event::for_case("get-case.json", &id).with_query(&query)).await;
        resp.expect_problem(400, "invalid_query");
    }
}

#[tokio::test]
async fn live_get_records_what_changed_at_cabital() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, created) = create(&app, None).await;
    // The sandbox screens at once, but its create answer carries no suggestion yet.
    assert_eq!(created.json["case"]["suggestion"], Value::Null);

    let first = send(&app, &Event::for_case("get-case-live.json", &id)).await;
    first.expect(200);
    assert_eq!(first.json["liveChanged"], true);
    assert_eq!(first.json["case"]["suggestion"], "SUGGEST_TO_ACCEPT");
    assert_eq!(first.json["case"]["suggestionComment"], "No hit");
    assert_eq!(first.json["case"]["status"], "SUGGESTED");
    assert_eq!(kinds(&first), ["REFRESHED", "CREATED"], "the fixture asks newest first");

    // Asked again with nothing new: nothing recorded.
    let again = send(&app, &Event::for_case("get-case-live.json", &id)).await;
    again.expect(200);
    assert_eq!(again.json["liveChanged"], false);
    assert_eq!(kinds(&again), ["REFRESHED", "CREATED"]);

    // Ongoing screening changes the suggestion and the webhook never comes.
    let uuid = id.parse().unwrap();
    let change = SuggestionChange {
        suggestion: SandboxSuggestion::SuggestToReject,
        comment: Some("Ongoing: matched a list".into()),
        notify: false,
    };
    let notified = sandbox_case(&h, &id).notifications.len();
    h.sandbox.set_suggestion(uuid, change).expect("the sandbox has the case");
    assert_eq!(sandbox_case(&h, &id).notifications.len(), notified, "no webhook for the silent change");

    // A plain read shows what is recorded; only a live one asks Cabital.
    let plain = send(&app, &Event::for_case("get-case.json", &id)).await;
    assert_eq!(plain.json["case"]["suggestion"], "SUGGEST_TO_ACCEPT");

    let live = send(&app, &Event::for_case("get-case-live.json", &id)).await;
    live.expect(200);
    assert_eq!(live.json["liveChanged"], true);
    assert_eq!(live.json["case"]["suggestion"], "SUGGEST_TO_REJECT");
    assert_eq!(live.json["case"]["suggestionComment"], "Ongoing: matched a list");
    assert_eq!(kinds(&live), ["REFRESHED", "REFRESHED", "CREATED"]);
    let refreshed = &live.json["timeline"][0];
    assert_eq!(refreshed["source"], "CABITAL");
    assert_eq!(refreshed["details"]["fromSuggestion"], "SUGGEST_TO_ACCEPT");
    assert_eq!(refreshed["details"]["toSuggestion"], "SUGGEST_TO_REJECT");
    assert_eq!(refreshed["details"]["toSuggestionComment"], "Ongoing: matched a list");
    assert_eq!(refreshed["details"]["changed"], json!(["suggestion", "suggestionComment"]));

    // And the table holds it.
    let stored = stored_case(&h.store, &id).await;
    assert_eq!(stored.suggestion, Some(gateway_cabital::Suggestion::SuggestToReject));
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED", "REFRESHED", "REFRESHED"]);
}

#[tokio::test]
async fn a_long_comment_from_cabital_is_shown_cut_with_what_it_was_cut_from() {
    use sha2::{Digest, Sha256};
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    // Within Cabital's answer cap, far over what one DynamoDB item holds.
    let long = "Matched list; ".repeat(50_000);
    let change =
        SuggestionChange { suggestion: SandboxSuggestion::SuggestToReject, comment: Some(long.clone()), notify: false };
    h.sandbox.set_suggestion(id.parse().unwrap(), change).expect("the sandbox has the case");

    let live = send(&app, &Event::for_case("get-case-live.json", &id)).await;
    live.expect(200);
    let case = &live.json["case"];
    let shown = case["suggestionComment"].as_str().unwrap();
    assert_eq!(shown.len(), gateway_cabital::MAX_STORED_COMMENT_BYTES);
    assert!(long.starts_with(shown));
    let cut = json!({"fullBytes": long.len(), "fullSha256": hex::encode(Sha256::digest(long.as_bytes()))});
    assert_eq!(case["suggestionCommentTruncated"], cut);
    assert_eq!(live.json["timeline"][0]["details"]["toSuggestionCommentTruncated"], cut);
    assert!(case.get("decisionCommentTruncated").is_none(), "only a cut comment says so");

    // Asked again: the same answer matches what is stored, so nothing new is recorded.
    let again = send(&app, &Event::for_case("get-case-live.json", &id)).await;
    assert_eq!(again.json["liveChanged"], false);
}

#[tokio::test]
async fn find_by_external_case_id() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, created) = create(&app, None).await;
    let resp = send(&app, &Event::fixture("find-case.json")).await;
    resp.expect(200);
    assert_eq!(resp.json["externalCaseId"], FIXTURE_EXTERNAL_ID);
    assert_eq!(resp.json["state"], "CREATED");
    assert_eq!(resp.json["caseSystemId"], id.as_str());
    assert_eq!(resp.json["case"], created.json["case"]);

    // An id with characters that need encoding in a query.
    let odd = "ext id/ü+1";
    create(&app, Some(&case_body(odd))).await;
    let resp = send(&app, &Event::fixture("find-case.json").with_query(&[("externalCaseId", odd)])).await;
    resp.expect(200);
    assert_eq!(resp.json["externalCaseId"], odd);

    let unknown = send(&app, &Event::fixture("find-case.json").with_query(&[("externalCaseId", "never-seen")])).await;
    unknown.expect_problem(404, "case_not_found");
    let missing = send(&app, &Event::fixture("find-case.json").with_query(&[])).await;
    missing.expect_problem(400, "missing_external_case_id");
    let too_long = "x".repeat(37);
    let invalid = send(&app, &Event::fixture("find-case.json").with_query(&[("externalCaseId", &too_long)])).await;
    invalid.expect_problem(400, "invalid_external_case_id");
}

#[tokio::test]
async fn ongoing_screening_on_then_off() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    assert!(!sandbox_case(&h, &id).case.ogs);

    let on = send(&app, &Event::for_case("ogs-on.json", &id)).await;
    on.expect(200);
    assert_eq!(on.json["caseSystemId"], id.as_str());
    assert_eq!(on.json["ogs"], true);
    assert!(sandbox_case(&h, &id).case.ogs, "turned on at Cabital");
    assert!(stored_case(&h.store, &id).await.ogs, "and in the record");
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED", "OGS_ON"]);

    let off = send(&app, &Event::for_case("ogs-off.json", &id)).await;
    off.expect(200);
    assert_eq!(off.json["ogs"], false);
    assert!(!sandbox_case(&h, &id).case.ogs, "turned off at Cabital");
    assert!(!stored_case(&h.store, &id).await.ogs);
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED", "OGS_ON", "OGS_OFF"]);
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases/{caseSystemId}/ogs"), 1);
    assert_eq!(sandbox_requests(&h, "DELETE /api/v1/cases/{caseSystemId}/ogs"), 1);

    let read = send(&app, &Event::for_case("get-case.json", &id)).await;
    let timeline = read.json["timeline"].as_array().unwrap();
    assert_eq!(timeline[1]["details"], json!({}));
    assert_eq!(timeline[1]["source"], "API");
}

#[tokio::test]
async fn a_decision_is_forwarded_and_recorded() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    let resp = send(&app, &Event::for_case("decision.json", &id)).await;
    resp.expect(200);
    assert_eq!(resp.json["decision"], "ACCEPT");
    assert_eq!(resp.json["decisionComment"], "Reviewed by compliance.");
    assert_eq!(resp.json["status"], "DECIDED");
    assert!(resp.json["decidedAt"].is_string());

    let at_sandbox = sandbox_case(&h, &id);
    assert_eq!(at_sandbox.case.decision, Some(gateway_sandbox::CaseResult::Accept));
    assert_eq!(at_sandbox.case.decision_comment.as_deref(), Some("Reviewed by compliance."));
    assert_eq!(at_sandbox.decision_history.len(), 1);

    let stored = stored_case(&h.store, &id).await;
    assert_eq!(stored.decision, Some(gateway_cabital::Decision::Accept));
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED", "DECISION"]);
    let read = send(&app, &Event::for_case("get-case.json", &id).with_query(&[("order", "newest")])).await;
    assert_eq!(
        read.json["timeline"][0]["details"],
        json!({"decision": "ACCEPT", "comment": "Reviewed by compliance."})
    );

    // A decision without a comment is a decision too.
    let reject = Event::for_case("decision.json", &id).with_json(&json!({"caseResult": "REJECT"}));
    let resp = send(&app, &reject).await;
    resp.expect(200);
    assert_eq!(resp.json["decision"], "REJECT");
    assert_eq!(resp.json["decisionComment"], Value::Null);
}

#[tokio::test]
async fn a_bad_decision_is_a_400_and_is_not_sent() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    let cases: [(Value, Vec<(&str, &str)>); 6] = [
        (json!({}), vec![("caseResult", "required")]),
        (json!({"caseResult": "MAYBE"}), vec![("caseResult", "invalid_value")]),
        (json!({"caseResult": 1, "comment": 2}), vec![("caseResult", "invalid_type"), ("comment", "invalid_type")]),
        (json!({"caseResult": "ACCEPT", "comment": "x".repeat(2001)}), vec![("comment", "too_long")]),
        (
            json!({"caseResult": "ACCEPT", "comment": "a\u{0007}b", "why": "x"}),
            vec![("why", "unknown_field"), ("comment", "control_character")],
        ),
        (json!(["ACCEPT"]), vec![("", "invalid_type")]),
    ];
    for (body, expected) in cases {
        let resp = send(&app, &Event::for_case("decision.json", &id).with_json(&body)).await;
        resp.expect_problem(400, "validation_failed");
        let mut got: Vec<(String, String)> = resp.json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
            .collect();
        let mut want: Vec<(String, String)> =
            expected.iter().map(|(f, c)| ((*f).to_owned(), (*c).to_owned())).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "for {body}");
    }
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases/{caseSystemId}/decision"), 0);
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED"]);
}
