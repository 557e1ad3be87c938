//! Recording a created case: one transaction, idempotent, token-guarded, and merged
//! with a case a webhook recorded first.

use crate::common;

use common::*;
use gateway_cabital::{ScreenType, Suggestion};
use gateway_store::{
    AttentionPriority, CaseStatus, CreatedOutcome, EventDetail, EventKind, EventSource, ExtState, Origin, Resolution,
    StoreError, TimelineOrder,
};
use gateway_support::fresh_store;

#[tokio::test]
async fn a_created_case_is_stored_with_its_created_event() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    let token = reserve(&store, &ext, at(0)).await;
    let outcome = store.record_created(&ext, token, &created(&ext, id), at(2)).await.unwrap();
    assert_eq!(outcome, CreatedOutcome::Recorded);

    let ext_rec = store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!(ext_rec.state, ExtState::Created);
    assert_eq!(ext_rec.case_system_id, Some(id));
    assert_eq!(ext_rec.attention, None, "a created reservation leaves the attention index");

    let case = store.get_case(&id).await.unwrap().expect("the case is stored");
    assert_eq!(case.external_case_id, ext);
    assert_eq!(case.origin, Origin::Api);
    assert_eq!(case.status, CaseStatus::AwaitingSuggestion);
    assert_eq!(case.screen_type, Some(ScreenType::Individual));
    assert_eq!(case.version, 1);
    assert_eq!(case.created_at, at(2));
    assert!(!case.needs_refresh);
    assert_eq!(case.attention.map(|a| (a.priority, a.since)), Some((AttentionPriority::Awaiting, at(2))));

    let page = store.timeline(&id, TimelineOrder::Oldest, 10, None).await.unwrap();
    assert_eq!(page.events.len(), 1);
    let event = &page.events[0];
    assert_eq!(event.kind(), EventKind::Created);
    assert_eq!(event.source, EventSource::Api);
    assert_eq!(event.at, at(2));
    match &event.detail {
        EventDetail::Created { submitted: s, response } => {
            assert_eq!(s.as_ref().unwrap().expose(), submitted(&ext).expose(), "the exact JSON sent is kept");
            assert!(response.as_ref().unwrap().expose().contains(&id.to_string()));
        }
        other => panic!("expected a CREATED event, got {other:?}"),
    }
    assert!(!format!("{event:?}").contains("Jane Doe"), "no personal data in Debug output");
}

#[tokio::test]
async fn recording_again_with_the_same_token_is_a_no_op() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    let token = reserve(&store, &ext, at(0)).await;
    store.record_created(&ext, token, &created(&ext, id), at(1)).await.unwrap();
    let again = store.record_created(&ext, token, &created(&ext, id), at(2)).await.unwrap();
    assert_eq!(again, CreatedOutcome::AlreadyRecorded);

    assert_eq!(store.get_case(&id).await.unwrap().unwrap().version, 1);
    let page = store.timeline(&id, TimelineOrder::Oldest, 10, None).await.unwrap();
    assert_eq!(page.events.len(), 1, "no second CREATED event");
}

#[tokio::test]
async fn another_token_is_refused_and_writes_nothing() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    reserve(&store, &ext, at(0)).await;
    let err = store.record_created(&ext, uuid::Uuid::new_v4(), &created(&ext, id), at(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed(_)), "{err:?}");
    assert_eq!(store.get_case(&id).await.unwrap(), None, "the transaction wrote nothing");
    assert!(store.timeline(&id, TimelineOrder::Oldest, 10, None).await.unwrap().events.is_empty());
    assert_eq!(store.get_external(&ext).await.unwrap().unwrap().state, ExtState::Pending);

    // A case naming another external id is refused before anything is written.
    let err = store.record_created(&ext, uuid::Uuid::new_v4(), &created(&new_ext(), id), at(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn a_created_case_with_a_suggestion_and_ogs_is_indexed_accordingly() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    let token = reserve(&store, &ext, at(0)).await;
    let mut c = created(&ext, id);
    c.suggestion = Some(Suggestion::SuggestToAccept);
    c.suggestion_comment = Some(gateway_cabital::Comment::new("fine"));
    c.ogs = true;
    store.record_created(&ext, token, &c, at(1)).await.unwrap();

    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(case.status, CaseStatus::Suggested);
    assert_eq!(case.suggestion_at, Some(at(1)));
    assert_eq!(case.attention, None);
    assert_eq!(case.ogs_checked_at, Some(at(1)));
}

#[tokio::test]
async fn a_webhook_that_came_first_is_kept_when_the_create_is_recorded() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    let token = reserve(&store, &ext, at(0)).await;

    // Cabital's webhook beats our own create's response.
    let recorded = store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToReject, "hit"), at(1)).await.unwrap();
    assert!(!recorded.case_was_known);
    let noted = store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!(noted.state, ExtState::Pending, "a create in flight stays pending");
    assert_eq!(noted.case_system_id, Some(id), "but the webhook's case id is noted");

    let outcome = store.record_created(&ext, token, &created(&ext, id), at(2)).await.unwrap();
    assert_eq!(outcome, CreatedOutcome::Recorded);

    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(case.origin, Origin::Api);
    assert_eq!(case.screen_type, Some(ScreenType::Individual));
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject), "the webhook's suggestion is kept");
    assert_eq!(case.created_at, at(1));
    assert_eq!(case.version, 2);
    assert!(case.needs_refresh, "the refresh the webhook asked for is still due");

    let kinds: Vec<_> =
        store.timeline(&id, TimelineOrder::Oldest, 10, None).await.unwrap().events.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, [EventKind::Webhook, EventKind::Created]);
    assert_eq!(store.get_external(&ext).await.unwrap().unwrap().state, ExtState::Created);
}

#[tokio::test]
async fn an_unknown_creation_is_linked_by_the_webhook_that_names_it() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    let token = reserve(&store, &ext, at(0)).await;
    store.mark_unknown(&ext, token, at(30)).await.unwrap();

    let recorded = store.record_webhook(&receipt(id, &ext, Suggestion::NoSuggestion, "look"), at(60)).await.unwrap();
    assert!(recorded.first_delivery);

    let rec = store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!(rec.state, ExtState::Created);
    assert_eq!(rec.case_system_id, Some(id));
    assert_eq!(rec.linked_at, Some(at(60)));
    assert_eq!(rec.attention, None);

    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(case.origin, Origin::Api, "we did create it");
    assert_eq!(case.screen_type, Some(ScreenType::Individual), "read from what was submitted");
    let events = store.timeline(&id, TimelineOrder::Oldest, 10, None).await.unwrap().events;
    assert_eq!(events.len(), 2);
    // Both were written at the same instant here; find the CREATED one by kind.
    let created_event = events.iter().find(|e| e.kind() == EventKind::Created).expect("a CREATED event");
    assert_eq!(created_event.source, EventSource::Webhook);
    match &created_event.detail {
        EventDetail::Created { submitted: s, response } => {
            assert_eq!(s.as_ref().unwrap().expose(), submitted(&ext).expose());
            assert_eq!(response, &None, "Cabital's answer never came");
        }
        other => panic!("expected a CREATED event, got {other:?}"),
    }

    // Naming it again changes nothing.
    assert_eq!(
        store.resolve_unknown(&ext, &id, EventSource::Webhook, at(90)).await.unwrap(),
        Resolution::AlreadyLinked
    );
    let other = new_case_id();
    assert!(matches!(
        store.resolve_unknown(&ext, &other, EventSource::Webhook, at(91)).await,
        Err(StoreError::ConditionFailed(_))
    ));
}

#[tokio::test]
async fn a_webhook_noted_on_a_pending_create_is_linked_when_the_create_turns_unknown() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    let token = reserve(&store, &ext, at(0)).await;
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "ok"), at(1)).await.unwrap();

    let rec = store.mark_unknown(&ext, token, at(30)).await.unwrap();
    assert_eq!(rec.state, ExtState::Created, "the noted case id completes the link at once");
    assert_eq!(rec.case_system_id, Some(id));
    let kinds: Vec<_> =
        store.timeline(&id, TimelineOrder::Oldest, 10, None).await.unwrap().events.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, [EventKind::Webhook, EventKind::Created]);
}
