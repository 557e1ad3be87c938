//! Reserving external ids: one conditional write, exactly one winner.

use crate::common;

use common::*;
use gateway_cabital::Pii;
use gateway_store::{AttentionPriority, ExtState, Reservation, StoreError};
use gateway_support::fresh_store;

#[tokio::test]
async fn a_new_id_is_reserved_pending_and_urgent() {
    let store = fresh_store().await;
    let ext = new_ext();
    let token = reserve(&store, &ext, at(0)).await;

    let rec = store.get_external(&ext).await.unwrap().expect("the reservation is stored");
    assert_eq!(rec.state, ExtState::Pending);
    assert_eq!(rec.reservation_token, token);
    assert_eq!(rec.request_hash, sha256(submitted(&ext).expose()));
    assert_eq!(rec.submitted.as_ref().map(|s| s.expose().clone()), Some(submitted(&ext).0));
    assert_eq!(rec.case_system_id, None);
    assert_eq!(rec.created_at, at(0));
    let attention = rec.attention.expect("a pending create is in the attention index");
    assert_eq!(attention.priority, AttentionPriority::Urgent);
}

#[tokio::test]
async fn the_same_id_again_returns_the_existing_reservation() {
    let store = fresh_store().await;
    let ext = new_ext();
    let token = reserve(&store, &ext, at(0)).await;
    let body = submitted(&ext);
    let hash = sha256(body.expose());

    match store.reserve_external_id(&ext, &hash, &body, at(5)).await.unwrap() {
        Reservation::Existing(rec) => {
            assert!(rec.same_request(&hash));
            assert_eq!(rec.reservation_token, token, "the first reservation is untouched");
            assert_eq!(rec.created_at, at(0));
        }
        other => panic!("expected the existing reservation, got {other:?}"),
    }

    let other_body = Pii(body.expose().replace("Jane", "John"));
    match store.reserve_external_id(&ext, &sha256(other_body.expose()), &other_body, at(6)).await.unwrap() {
        Reservation::Existing(rec) => assert!(!rec.same_request(&sha256(other_body.expose()))),
        other => panic!("expected the existing reservation, got {other:?}"),
    }
    let rec = store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!(rec.submitted.unwrap().0, body.0, "another body never overwrites the first");
}

#[tokio::test]
async fn a_rejected_id_can_be_reserved_again() {
    let store = fresh_store().await;
    let ext = new_ext();
    let token = reserve(&store, &ext, at(0)).await;
    store.mark_rejected(&ext, token, 400, at(1)).await.unwrap();
    // Repeating is harmless.
    store.mark_rejected(&ext, token, 400, at(2)).await.unwrap();

    let rec = store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!(rec.state, ExtState::Rejected);
    assert_eq!(rec.cabital_status, Some(400));
    assert_eq!(rec.attention, None, "a rejected create needs no look");
    // The submitted personal data is dropped at once; its hash stays.
    assert_eq!(rec.submitted, None, "a refused submission keeps no personal data");
    assert_eq!(rec.request_hash, sha256(submitted(&ext).expose()));

    let second = reserve(&store, &ext, at(10)).await;
    assert_ne!(second, token);
    let rec = store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!(rec.state, ExtState::Pending);
    assert_eq!(rec.reservation_token, second);
    // The old token can no longer move it.
    let err = store.mark_rejected(&ext, token, 409, at(11)).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed(_)), "{err:?}");
}

#[tokio::test]
async fn of_concurrent_reservations_exactly_one_wins() {
    let store = fresh_store().await;
    let ext = new_ext();
    let body = submitted(&ext);
    let hash = sha256(body.expose());
    let attempts = (0..8).map(|i| store.reserve_external_id(&ext, &hash, &body, at(i)));
    let results = futures::future::join_all(attempts).await;

    let mut winners = Vec::new();
    for result in results {
        match result.unwrap() {
            Reservation::Reserved { token } => winners.push(token),
            Reservation::Existing(rec) => assert!(rec.same_request(&hash)),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one reservation wins");
    let rec = store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!(rec.reservation_token, winners[0]);
}

#[tokio::test]
async fn only_the_token_holder_marks_unknown_and_it_stays_urgent() {
    let store = fresh_store().await;
    let ext = new_ext();
    let token = reserve(&store, &ext, at(0)).await;

    let err = store.mark_unknown(&ext, uuid::Uuid::new_v4(), at(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed(_)), "{err:?}");
    assert!(!err.retryable());

    let rec = store.mark_unknown(&ext, token, at(30)).await.unwrap();
    assert_eq!(rec.state, ExtState::Unknown);
    assert_eq!(rec.attention.map(|a| (a.priority, a.since)), Some((AttentionPriority::Urgent, at(30))));
    // Idempotent.
    store.mark_unknown(&ext, token, at(31)).await.unwrap();
    // An unknown create is never re-sent: the id stays taken.
    match store.reserve_external_id(&ext, &rec.request_hash, &submitted(&ext), at(40)).await.unwrap() {
        Reservation::Existing(rec) => assert_eq!(rec.state, ExtState::Unknown),
        other => panic!("expected the existing reservation, got {other:?}"),
    }
    // And an unknown create cannot be closed as rejected.
    assert!(matches!(store.mark_rejected(&ext, token, 400, at(41)).await, Err(StoreError::ConditionFailed(_))));
}

#[tokio::test]
async fn stale_pending_reservations_expire_to_unknown_but_fresh_ones_do_not() {
    let store = fresh_store().await;
    let ext = new_ext();
    reserve(&store, &ext, at(0)).await;

    let err = store.expire_pending(&ext, at(0), at(100)).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed(_)), "created at the cutoff is not before it: {err:?}");
    let rec = store.expire_pending(&ext, at(1), at(100)).await.unwrap();
    assert_eq!(rec.state, ExtState::Unknown);
}

#[tokio::test]
async fn marking_a_missing_reservation_is_not_found_and_bad_hashes_are_refused() {
    let store = fresh_store().await;
    let ext = new_ext();
    let err = store.mark_unknown(&ext, uuid::Uuid::new_v4(), at(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.get_external(&ext).await.unwrap(), None);

    let err = store.reserve_external_id(&ext, "ABC", &submitted(&ext), at(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}
