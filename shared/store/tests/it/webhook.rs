//! Webhook deliveries: one event per distinct body, counted deliveries, unknown cases
//! kept.

use crate::common;

use common::*;
use gateway_cabital::{Pii, Suggestion};
use gateway_store::{
    AttentionPriority, CaseStatus, EventDetail, EventKind, EventSource, Origin, StoreError, TimelineOrder,
    WebhookRecorded,
};
use gateway_support::fresh_store;

fn webhook_events(events: &[gateway_store::Event]) -> Vec<(u32, Suggestion)> {
    events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::Webhook { deliveries, suggestion, .. } => Some((*deliveries, *suggestion)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_same_body_five_times_is_one_event_delivered_five_times() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let delivery = receipt(id, &ext, Suggestion::SuggestToAccept, "fine");

    let mut results = Vec::new();
    for i in 0..5 {
        results.push(store.record_webhook(&delivery, at(300 * (i + 1))).await.unwrap());
    }
    assert_eq!(
        results[0],
        WebhookRecorded { first_delivery: true, deliveries: 1, case_was_known: true, replay: false }
    );
    assert_eq!(
        results[4],
        WebhookRecorded { first_delivery: false, deliveries: 5, case_was_known: true, replay: false }
    );

    let events = store.timeline(&id, TimelineOrder::Oldest, 50, None).await.unwrap().events;
    assert_eq!(webhook_events(&events), [(5, Suggestion::SuggestToAccept)]);
    let webhook = events.iter().find(|e| e.kind() == EventKind::Webhook).unwrap();
    assert_eq!(webhook.source, EventSource::Webhook);
    match &webhook.detail {
        EventDetail::Webhook { body, body_sha256, first_received_at, last_received_at, .. } => {
            assert_eq!(body.expose(), delivery.body.expose(), "the body is kept exactly as received");
            assert_eq!(body_sha256, &delivery.body_sha256);
            assert_eq!(*first_received_at, at(300));
            assert_eq!(*last_received_at, at(1500));
        }
        other => panic!("expected a WEBHOOK event, got {other:?}"),
    }

    let case = store.get_case(&id).await.unwrap().unwrap();
    assert!(case.needs_refresh);
    assert_eq!(case.attention.map(|a| (a.priority, a.since)), Some((AttentionPriority::Urgent, at(1500))));
    assert_eq!(case.suggestion, None, "a webhook never sets a known case's suggestion: Cabital's GET does");
    assert_eq!(case.version, 6, "created, then one change per delivery");
}

#[tokio::test]
async fn two_concurrent_first_deliveries_are_one_event_delivered_twice() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let delivery = receipt(id, &ext, Suggestion::SuggestToReject, "hit");

    let (a, b) = tokio::join!(store.record_webhook(&delivery, at(10)), store.record_webhook(&delivery, at(10)));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.first_delivery ^ b.first_delivery, "exactly one is the first: {a:?} {b:?}");
    assert_eq!(a.deliveries.max(b.deliveries), 2);

    let events = store.timeline(&id, TimelineOrder::Oldest, 50, None).await.unwrap().events;
    assert_eq!(webhook_events(&events), [(2, Suggestion::SuggestToReject)]);
}

#[tokio::test]
async fn two_concurrent_first_deliveries_for_an_unknown_case_create_it_once() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    let delivery = receipt(id, &ext, Suggestion::NoSuggestion, "look");

    let (a, b) = tokio::join!(store.record_webhook(&delivery, at(10)), store.record_webhook(&delivery, at(10)));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.first_delivery ^ b.first_delivery, "exactly one is the first: {a:?} {b:?}");
    let events = store.timeline(&id, TimelineOrder::Oldest, 50, None).await.unwrap().events;
    assert_eq!(webhook_events(&events), [(2, Suggestion::NoSuggestion)]);
    assert_eq!(events.len(), 1);
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(case.version, 2, "created once, flagged once more");
}

#[tokio::test]
async fn a_webhook_for_an_unknown_case_creates_it_from_the_webhook() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    let recorded = store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToReject, "hit"), at(5)).await.unwrap();
    assert_eq!(recorded, WebhookRecorded { first_delivery: true, deliveries: 1, case_was_known: false, replay: false });

    let case = store.get_case(&id).await.unwrap().expect("the case is kept, not dropped");
    assert_eq!(case.origin, Origin::Webhook);
    assert_eq!(case.external_case_id, ext);
    assert_eq!(case.screen_type, None);
    assert_eq!(case.status, CaseStatus::Suggested);
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject));
    assert_eq!(case.suggestion_comment.as_ref().map(|c| c.expose().as_str()), Some("hit"));
    assert_eq!(case.version, 1);
    assert!(case.needs_refresh);
    assert_eq!(case.attention.map(|a| a.priority), Some(AttentionPriority::Urgent));
    // No reservation is invented for an id we never reserved.
    assert_eq!(store.get_external(&ext).await.unwrap(), None);
}

#[tokio::test]
async fn distinct_bodies_are_distinct_events() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    store.record_webhook(&receipt(id, &ext, Suggestion::NoSuggestion, "look"), at(10)).await.unwrap();
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "fine"), at(20)).await.unwrap();
    // An older suggestion's retry arrives after the newer one.
    store.record_webhook(&receipt(id, &ext, Suggestion::NoSuggestion, "look"), at(30)).await.unwrap();

    let events = store.timeline(&id, TimelineOrder::Oldest, 50, None).await.unwrap().events;
    assert_eq!(webhook_events(&events), [(2, Suggestion::NoSuggestion), (1, Suggestion::SuggestToAccept)]);
}

#[tokio::test]
async fn a_body_that_does_not_match_its_hash_is_refused() {
    let store = fresh_store().await;
    let ext = new_ext();
    let id = new_case_id();
    let mut delivery = receipt(id, &ext, Suggestion::NoSuggestion, "look");
    delivery.body = Pii(delivery.body.expose().replace("look", "lock"));
    let err = store.record_webhook(&delivery, at(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(!err.retryable());
    assert_eq!(store.get_case(&id).await.unwrap(), None);
}

/// A delivery with a verified signature pair, remembered until `expires_at`.
fn signed(
    delivery: &gateway_store::WebhookReceipt,
    pair: &str,
    expires_at: time::OffsetDateTime,
) -> gateway_store::WebhookReceipt {
    let signature = gateway_store::SignaturePair { sha256: sha256(pair), expires_at };
    gateway_store::WebhookReceipt { signature: Some(signature), ..delivery.clone() }
}

#[tokio::test]
async fn an_exact_repeat_of_a_signature_pair_is_a_replay_that_writes_nothing() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let delivery = signed(&receipt(id, &ext, Suggestion::SuggestToAccept, "fine"), "ts-1\nsig-1", at(3600));

    let first = store.record_webhook(&delivery, at(10)).await.unwrap();
    assert_eq!(first, WebhookRecorded { first_delivery: true, deliveries: 1, case_was_known: true, replay: false });
    let version = store.get_case(&id).await.unwrap().unwrap().version;
    for i in 0..3 {
        let again = store.record_webhook(&delivery, at(20 + i)).await.unwrap();
        assert_eq!(again, WebhookRecorded { first_delivery: false, deliveries: 1, case_was_known: true, replay: true });
    }
    let events = store.timeline(&id, TimelineOrder::Oldest, 50, None).await.unwrap().events;
    assert_eq!(webhook_events(&events), [(1, Suggestion::SuggestToAccept)]);
    assert_eq!(store.get_case(&id).await.unwrap().unwrap().version, version, "a replay does not touch the case");

    // The same body under another signature is one more delivery.
    let resigned = signed(&delivery, "ts-2\nsig-2", at(3600));
    let second = store.record_webhook(&resigned, at(30)).await.unwrap();
    assert_eq!(second, WebhookRecorded { first_delivery: false, deliveries: 2, case_was_known: true, replay: false });
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert!(case.needs_refresh, "a counted repeat flags the case for the reconciler");
}

#[tokio::test]
async fn concurrent_repeats_of_one_pair_store_one_delivery() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let delivery = signed(&receipt(id, &ext, Suggestion::SuggestToReject, "hit"), "ts\nsig", at(3600));

    let all = futures::future::join_all((0..8).map(|_| store.record_webhook(&delivery, at(10)))).await;
    let all: Vec<WebhookRecorded> = all.into_iter().map(Result::unwrap).collect();
    assert_eq!(all.iter().filter(|r| !r.replay).count(), 1, "{all:?}");
    assert!(all.iter().filter(|r| !r.replay).all(|r| r.first_delivery), "{all:?}");
    let events = store.timeline(&id, TimelineOrder::Oldest, 50, None).await.unwrap().events;
    assert_eq!(webhook_events(&events), [(1, Suggestion::SuggestToReject)]);
}

#[tokio::test]
async fn a_pair_past_its_expiry_is_taken_as_absent_even_before_dynamodb_deletes_it() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let delivery = signed(&receipt(id, &ext, Suggestion::SuggestToAccept, "fine"), "ts\nsig", at(100));

    assert!(!store.record_webhook(&delivery, at(10)).await.unwrap().replay);
    assert!(store.record_webhook(&delivery, at(99)).await.unwrap().replay, "still remembered at 99 s");
    let later = signed(&delivery, "ts\nsig", at(500));
    let after = store.record_webhook(&later, at(101)).await.unwrap();
    assert_eq!(after, WebhookRecorded { first_delivery: false, deliveries: 2, case_was_known: true, replay: false });
    assert!(store.record_webhook(&later, at(102)).await.unwrap().replay, "remembered again, until 500 s");
}

#[tokio::test]
async fn a_signature_pair_is_stored_hashed_with_its_ttl() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let delivery = signed(&receipt(id, &ext, Suggestion::SuggestToAccept, "fine"), "ts\nsig", at(3600));
    store.record_webhook(&delivery, at(10)).await.unwrap();

    let pk = format!("CASE#{id}");
    let sk = format!("SEEN#{}", sha256("ts\nsig"));
    let key = [("pk", pk), ("sk", sk)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(v)))
        .collect();
    let item = store
        .client()
        .get_item()
        .table_name(store.table_name())
        .set_key(Some(key))
        .send()
        .await
        .unwrap()
        .item
        .expect("the pair is remembered under its hash");
    let expires = item.get("expiresAt").and_then(|v| v.as_n().ok()).cloned();
    assert_eq!(expires, Some(at(3600).unix_timestamp().to_string()), "a Number of Unix seconds: DynamoDB's TTL");
}
