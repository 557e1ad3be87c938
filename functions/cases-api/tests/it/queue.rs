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
    assert_eq!(ids(&rejects), [reject.clone()]);

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
