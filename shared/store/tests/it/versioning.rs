//! Versioned updates: remote state, decisions, ongoing screening.

use crate::common;

use common::*;
use gateway_cabital::{Decision, Pii, Suggestion};
use gateway_store::{
    AttentionPriority, CaseStatus, ChangedField, EventDetail, EventKind, EventSource, RemoteCheck, RemoteState,
    StoreError, TimelineOrder,
};
use gateway_support::fresh_store;

fn accepted() -> RemoteState {
    RemoteState {
        suggestion: Some(Suggestion::SuggestToAccept),
        suggestion_comment: Some(gateway_cabital::Comment::new("fine")),
        ..RemoteState::default()
    }
}

async fn kinds(store: &gateway_store::Store, id: &gateway_cabital::CaseSystemId) -> Vec<EventKind> {
    let page = store.timeline(id, TimelineOrder::Oldest, 50, None).await.unwrap();
    page.events.iter().map(|e| e.kind()).collect()
}

#[tokio::test]
async fn a_changed_remote_state_is_applied_with_one_event() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "fine"), at(10)).await.unwrap();
    let before = store.get_case(&id).await.unwrap().unwrap();
    assert!(before.needs_refresh);

    let applied =
        store.apply_remote_state(&id, before.version, &accepted(), RemoteCheck::Refreshed, at(11)).await.unwrap();
    assert!(applied.changed);
    assert_eq!(applied.version, before.version + 1);

    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(case.version, applied.version);
    assert_eq!(case.status, CaseStatus::Suggested);
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToAccept));
    assert_eq!(case.suggestion_at, Some(at(11)));
    assert_eq!(case.last_checked_at, Some(at(11)));
    assert!(!case.needs_refresh);
    assert_eq!(case.attention, None, "suggested and refreshed: no look needed");

    let page = store.timeline(&id, TimelineOrder::Newest, 1, None).await.unwrap();
    let event = &page.events[0];
    assert_eq!(event.source, EventSource::Cabital);
    match &event.detail {
        EventDetail::Refreshed(change) => {
            assert_eq!(change.from_suggestion, None);
            assert_eq!(change.to_suggestion, Some(Suggestion::SuggestToAccept));
            assert_eq!(change.to_suggestion_comment.as_ref().map(|c| c.expose().as_str()), Some("fine"));
            assert_eq!(change.changed, [ChangedField::Suggestion, ChangedField::SuggestionComment]);
        }
        other => panic!("expected a REFRESHED event, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unchanged_remote_state_records_the_check_without_an_event() {
    let store = fresh_store().await;
    let (_, id) = create_case(&store, at(0)).await;
    let applied =
        store.apply_remote_state(&id, 1, &RemoteState::default(), RemoteCheck::Reconciled, at(3600)).await.unwrap();
    assert!(!applied.changed);
    assert_eq!(applied.version, 2);
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(case.last_checked_at, Some(at(3600)));
    assert_eq!(
        case.attention.map(|a| (a.priority, a.since)),
        Some((AttentionPriority::Awaiting, at(3600))),
        "still awaiting, since the last check"
    );
    assert_eq!(kinds(&store, &id).await, [EventKind::Created]);
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_changes_nothing() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    // A webhook moves the case on after the caller read version 1.
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "fine"), at(10)).await.unwrap();

    let err = store.apply_remote_state(&id, 1, &accepted(), RemoteCheck::Refreshed, at(11)).await.unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict { expected: 1, .. }), "{err:?}");
    assert!(err.retryable());
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(case.suggestion, None);
    assert!(case.needs_refresh, "the refresh is still due");
    assert_eq!(kinds(&store, &id).await, [EventKind::Created, EventKind::Webhook]);
}

#[tokio::test]
async fn of_concurrent_appliers_exactly_one_wins() {
    let store = fresh_store().await;
    let (_, id) = create_case(&store, at(0)).await;
    let rejected = RemoteState { suggestion: Some(Suggestion::SuggestToReject), ..RemoteState::default() };
    let accepted = accepted();
    let (a, b) = tokio::join!(
        store.apply_remote_state(&id, 1, &accepted, RemoteCheck::Refreshed, at(10)),
        store.apply_remote_state(&id, 1, &rejected, RemoteCheck::Reconciled, at(10)),
    );
    let outcomes = [a, b];
    let winners = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "exactly one applier wins: {outcomes:?}");
    let loser = outcomes.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(matches!(loser, StoreError::VersionConflict { .. }), "{loser:?}");

    let events = kinds(&store, &id).await;
    assert_eq!(events.len(), 2, "one CREATED and one change event, no duplicate: {events:?}");
    assert_eq!(store.get_case(&id).await.unwrap().unwrap().version, 2);
}

#[tokio::test]
async fn applying_to_a_missing_case_is_not_found() {
    let store = fresh_store().await;
    let err =
        store.apply_remote_state(&new_case_id(), 1, &accepted(), RemoteCheck::Refreshed, at(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn a_decision_is_recorded_with_its_event() {
    let store = fresh_store().await;
    let (_, id) = create_case(&store, at(0)).await;
    let version =
        store.record_decision(&id, Decision::Reject, Some(Pii("sanctions hit".into())), at(20)).await.unwrap();
    assert_eq!(version, 2);

    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(case.status, CaseStatus::Decided);
    assert_eq!(case.decision, Some(Decision::Reject));
    assert_eq!(case.decided_at, Some(at(20)));
    assert_eq!(case.decision_comment.as_ref().map(|c| c.expose().as_str()), Some("sanctions hit"));

    let event = store.timeline(&id, TimelineOrder::Newest, 1, None).await.unwrap().events.remove(0);
    assert_eq!(event.source, EventSource::Api);
    match event.detail {
        EventDetail::Decision { decision, comment } => {
            assert_eq!(decision, Decision::Reject);
            assert_eq!(comment.map(|c| c.0), Some("sanctions hit".into()));
        }
        other => panic!("expected a DECISION event, got {other:?}"),
    }
    assert!(!format!("{case:?}").contains("sanctions hit"), "no comments in Debug output");

    let err = store.record_decision(&new_case_id(), Decision::Accept, None, at(21)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn ongoing_screening_on_and_off_are_events_and_index_entries() {
    let store = fresh_store().await;
    let (_, id) = create_case(&store, at(0)).await;
    assert_eq!(store.record_ogs(&id, true, at(10)).await.unwrap(), 2);
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert!(case.ogs);
    assert_eq!(case.ogs_checked_at, Some(at(10)));

    assert_eq!(store.record_ogs(&id, false, at(20)).await.unwrap(), 3);
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert!(!case.ogs);
    assert_eq!(case.ogs_checked_at, None);
    assert_eq!(kinds(&store, &id).await, [EventKind::Created, EventKind::OgsOn, EventKind::OgsOff]);
}

#[tokio::test]
async fn concurrent_decisions_and_webhooks_lose_nothing() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let delivery = receipt(id, &ext, Suggestion::SuggestToAccept, "fine");
    let (d, o, w) = tokio::join!(
        store.record_decision(&id, Decision::Accept, None, at(5)),
        store.record_ogs(&id, true, at(5)),
        store.record_webhook(&delivery, at(5)),
    );
    d.unwrap();
    o.unwrap();
    w.unwrap();
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(case.decision, Some(Decision::Accept));
    assert!(case.ogs);
    assert!(case.needs_refresh);
    assert_eq!(case.version, 4, "three writes on top of the create");
    let mut events = kinds(&store, &id).await;
    events.sort_by_key(|k| k.as_str());
    assert_eq!(events, [EventKind::Created, EventKind::Decision, EventKind::OgsOn, EventKind::Webhook]);
}

#[tokio::test]
async fn a_comment_over_the_bound_is_kept_cut_with_its_length_and_hash() {
    use gateway_cabital::{Case, MAX_STORED_COMMENT_BYTES};
    use sha2::{Digest, Sha256};
    // Cabital's comments are bounded only by the 1 MiB answer: kept whole, this one
    // would make the case item and its event larger than DynamoDB's 400 KB, forever.
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let long = "é".repeat(300_000); // 600,000 bytes, two per character
    let answer: Case = serde_json::from_value(serde_json::json!({
        "caseSystemId": id.to_string(),
        "externalCaseId": ext.as_str(),
        "suggestion": "SUGGEST_TO_REJECT",
        "suggestion_comment": long,
        "decision_comment": "short",
    }))
    .unwrap();
    let before = store.get_case(&id).await.unwrap().unwrap();
    let state = RemoteState::from(&answer);
    store.apply_remote_state(&id, before.version, &state, RemoteCheck::Refreshed, at(5)).await.unwrap();

    let case = store.get_case(&id).await.unwrap().unwrap();
    let kept = case.suggestion_comment.as_ref().unwrap();
    assert!(kept.expose().len() <= MAX_STORED_COMMENT_BYTES && kept.expose().len() > MAX_STORED_COMMENT_BYTES - 4);
    assert!(long.starts_with(kept.expose().as_str()), "the start of the text, cut at a character boundary");
    let cut = kept.cut().expect("marked as cut");
    assert_eq!(cut.full_bytes, 600_000);
    assert_eq!(cut.full_sha256, hex::encode(Sha256::digest(long.as_bytes())));
    let short = case.decision_comment.as_ref().unwrap();
    assert_eq!((short.expose().as_str(), short.cut()), ("short", None));

    let page = store.timeline(&id, TimelineOrder::Newest, 1, None).await.unwrap();
    match &page.events[0].detail {
        EventDetail::Refreshed(change) => assert_eq!(change.to_suggestion_comment.as_ref(), Some(kept)),
        other => panic!("expected a REFRESHED event, got {other:?}"),
    }
    assert!(!format!("{case:?}").contains("éé"), "Debug shows no comment");
}
