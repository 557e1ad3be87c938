//! The compliance officer's work queue: `GET /v1/cases?awaiting=decision`.

use crate::common::*;
use gateway_cabital::{CaseSystemId, Decision, Pii, Suggestion};
use gateway_store::{RemoteCheck, RemoteState};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

/// Cabital's suggestion on `id`, recorded at `at`.
async fn suggested(h: &gateway_support::Harness, id: &str, suggestion: Suggestion, at: OffsetDateTime) {
    let id: CaseSystemId = id.parse().unwrap();
    let version = h.store.get_case(&id).await.unwrap().unwrap().version;
    let remote = RemoteState { suggestion: Some(suggestion), ..RemoteState::default() };
    h.store.apply_remote_state(&id, version, &remote, RemoteCheck::Refreshed, at).await.unwrap();
}

fn queue(query: &[(&str, &str)]) -> Event {
    let mut pairs = vec![("awaiting", "decision")];
    pairs.extend_from_slice(query);
    Event::fixture("find-case.json").with_query(&pairs)
}

fn ids(resp: &Resp) -> Vec<String> {
    resp.json["cases"].as_array().unwrap().iter().map(|c| c["caseSystemId"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn suggested_undecided_cases_are_listed_oldest_first_without_personal_data() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (awaiting, _) = create(&app, Some(&case_body("queue-awaiting"))).await;
    let (reject, _) = create(&app, Some(&case_body("queue-reject"))).await;
    let (none, _) = create(&app, Some(&case_body("queue-none"))).await;
    let (accept, _) = create(&app, Some(&case_body("queue-accept"))).await;
    let (decided, _) = create(&app, Some(&case_body("queue-decided"))).await;
    suggested(&h, &reject, Suggestion::SuggestToReject, datetime!(2026-12-01 09:00 UTC)).await;
    suggested(&h, &none, Suggestion::NoSuggestion, datetime!(2026-12-01 10:00 UTC)).await;
    suggested(&h, &accept, Suggestion::SuggestToAccept, datetime!(2026-12-01 11:00 UTC)).await;
    suggested(&h, &decided, Suggestion::SuggestToAccept, datetime!(2026-12-01 08:00 UTC)).await;
    let decided_id: CaseSystemId = decided.parse().unwrap();
    h.store
        .record_decision(&decided_id, Decision::Accept, Some(Pii("ok".into())), OffsetDateTime::now_utc())
        .await
        .unwrap();

    let all = send(&app, &queue(&[])).await;
    all.expect(200);
    // Oldest suggestion first, across the three suggestions; neither the case still
    // awaiting one nor the decided case.
    assert_eq!(ids(&all), [reject.clone(), none.clone(), accept.clone()], "{}", all.text);
    assert!(!ids(&all).contains(&awaiting));
    assert_eq!(all.json["nextCursor"], Value::Null);
    let first = &all.json["cases"][0];
    assert_eq!(first["externalCaseId"], "queue-reject");
    assert_eq!(first["suggestion"], "SUGGEST_TO_REJECT");
    assert_eq!(first["awaitingSince"], "2026-12-01T09:00:00.000000Z");
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "ids, suggestion and since when only: {first}");
    assert!(!all.text.contains("John Doe"), "no name");

    // One suggestion only.
    let rejects = send(&app, &queue(&[("suggestion", "SUGGEST_TO_REJECT")])).await;
    assert_eq!(ids(&rejects), std::slice::from_ref(&reject));

    // A page at a time, the cursor bound to its filter.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("limit", "1")];
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
        }
        let page = send(&app, &queue(&q)).await;
        page.expect(200);
        seen.extend(ids(&page));
        match page.json["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() <= 3, "pagination does not end");
    }
    assert_eq!(seen, [reject.clone(), none, accept.clone()]);

    // Deciding takes a case off the queue.
    let accept_id: CaseSystemId = accept.parse().unwrap();
    h.store.record_decision(&accept_id, Decision::Reject, None, OffsetDateTime::now_utc()).await.unwrap();
    let after = send(&app, &queue(&[("suggestion", "SUGGEST_TO_ACCEPT")])).await;
    assert_eq!(ids(&after), Vec::<String>::new());
}

#[tokio::test]
async fn bad_work_queue_queries_are_400_naming_the_problem() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let one = send(&app, &queue(&[("limit", "1")])).await;
    one.expect(200);
    for (query, code) in [
        (vec![("awaiting", "suggestion")], "invalid_query"),
        (vec![("awaiting", "decision"), ("suggestion", "MAYBE")], "invalid_query"),
        (vec![("awaiting", "decision"), ("limit", "0")], "invalid_query"),
        (vec![("awaiting", "decision"), ("limit", "101")], "invalid_query"),
        (vec![("awaiting", "decision"), ("externalCaseId", "x")], "invalid_query"),
        (vec![("awaiting", "decision"), ("cursor", "not-a-cursor")], "validation_failed"),
    ] {
        let resp = send(&app, &Event::fixture("find-case.json").with_query(&query)).await;
        resp.expect_problem(400, code);
    }
    // A cursor for every suggestion ("Q|*|2026#x") under a filter on one.
    let resp = send(&app, &queue(&[("suggestion", "NO_SUGGESTION"), ("cursor", "UXwqfDIwMjYjeA")])).await;
    resp.expect_problem(400, "validation_failed");
}

fn flagged(flag: &str) -> Event {
    Event::fixture("find-case.json").with_query(&[("attention", flag)])
}

#[tokio::test]
async fn cases_given_up_for_want_of_a_suggestion_are_flagged_until_one_comes() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, Some(&case_body("flag-no-suggestion"))).await;
    let (other, _) = create(&app, Some(&case_body("flag-still-asked"))).await;
    let case: CaseSystemId = id.parse().unwrap();
    let version = h.store.get_case(&case).await.unwrap().unwrap().version;
    assert!(h.store.give_up_no_suggestion(&case, version, datetime!(2026-12-02 12:00 UTC)).await.unwrap());

    let listed = send(&app, &flagged("no_suggestion")).await;
    listed.expect(200);
    assert_eq!(ids(&listed), std::slice::from_ref(&id), "{}", listed.text);
    assert!(!ids(&listed).contains(&other));
    let entry = &listed.json["cases"][0];
    assert_eq!(entry["reason"], "no_suggestion");
    assert_eq!(entry["externalCaseId"], "flag-no-suggestion");
    assert_eq!(entry["awaitingSince"], "2026-12-02T12:00:00.000000Z");
    assert_eq!(entry.get("suggestion"), None);

    // A suggestion at last: off the flagged list, onto the work queue.
    suggested(&h, &id, Suggestion::NoSuggestion, datetime!(2026-12-03 08:00 UTC)).await;
    assert_eq!(ids(&send(&app, &flagged("no_suggestion")).await), Vec::<String>::new());
    assert_eq!(ids(&send(&app, &queue(&[])).await), [id]);
}

#[tokio::test]
async fn creations_of_unknown_outcome_are_flagged_without_an_id_until_linked() {
    let h = gateway_support::harness(|c| c.create_answer = gateway_sandbox::CreateAnswerMode::Empty).await;
    let app = app(&h);
    send(&app, &Event::fixture("create-case.json").with_json(&case_body("flag-unknown"))).await.expect(202);

    let listed = send(&app, &flagged("unknown_creation")).await;
    listed.expect(200);
    let entries = listed.json["cases"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", listed.text);
    assert_eq!(entries[0]["externalCaseId"], "flag-unknown");
    assert_eq!(entries[0]["caseSystemId"], Value::Null, "no id yet");
    assert_eq!(entries[0]["reason"], "unknown_creation");

    // Cabital's webhook (here, the store's link) names the case: no longer flagged.
    let at_cabital = h.sandbox.cases_by_external_id("flag-unknown");
    let id: CaseSystemId = at_cabital[0].case.case_system_id.to_string().parse().unwrap();
    let ext = gateway_cabital::ExternalCaseId::parse("flag-unknown").unwrap();
    h.store.resolve_unknown(&ext, &id, gateway_store::EventSource::Webhook, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(send(&app, &flagged("unknown_creation")).await.json["cases"], serde_json::json!([]));
}

#[tokio::test]
async fn bad_attention_queries_are_400() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    for query in [
        vec![("attention", "everything")],
        vec![("attention", "no_suggestion"), ("suggestion", "NO_SUGGESTION")],
        vec![("attention", "no_suggestion"), ("awaiting", "decision")],
    ] {
        send(&app, &Event::fixture("find-case.json").with_query(&query)).await.expect_problem(400, "invalid_query");
    }
    // A work-queue cursor is not a flagged list's.
    let query = [("attention", "unknown_creation"), ("cursor", "UXwqfDIwMjYjeA")];
    let resp = send(&app, &Event::fixture("find-case.json").with_query(&query)).await;
    resp.expect_problem(400, "validation_failed");
}
