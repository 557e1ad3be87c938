//! The reconciler's per-item backoff: a deferred entry leaves its index's query until
//! its time, counts its tries, and any other write of the entry wins and clears it.

use crate::common;

use common::*;
use gateway_cabital::Suggestion;
use gateway_store::{AttentionPriority, AttentionTarget, Deferral, IndexSlot, RemoteCheck, RemoteState};
use gateway_support::fresh_store;

const AWAITING: IndexSlot = IndexSlot::Attention(AttentionPriority::Awaiting);
const URGENT: IndexSlot = IndexSlot::Attention(AttentionPriority::Urgent);

#[tokio::test]
async fn a_deferred_entry_leaves_the_query_until_its_time_and_counts_its_tries() {
    let store = fresh_store().await;
    let (_, id) = create_case(&store, at(0)).await;
    let case = AttentionTarget::Case(id);
    assert_eq!(store.awaiting_since_before(at(100), 10).await.unwrap().len(), 1, "precondition");
    assert_eq!(store.count_awaiting(at(100)).await.unwrap(), 1);

    let first = store.defer_index_entry(&case, AWAITING, at(0), |n| at(1000 * i64::from(n))).await.unwrap();
    assert_eq!(first, Deferral::Deferred { attempts: 1 });
    assert!(store.awaiting_since_before(at(100), 10).await.unwrap().is_empty(), "not listed before its time");
    assert_eq!(store.count_awaiting(at(100)).await.unwrap(), 0);
    let listed = store.awaiting_since_before(at(1000), 10).await.unwrap();
    assert_eq!((listed.len(), listed[0].since), (1, at(1000)), "listed again at its time");

    let second = store.defer_index_entry(&case, AWAITING, at(1000), |n| at(1000 * i64::from(n))).await.unwrap();
    assert_eq!(second, Deferral::Deferred { attempts: 2 });
    assert_eq!(store.backoff_attempts(&case).await.unwrap(), 2);
    assert_eq!(store.count_awaiting(at(1999)).await.unwrap(), 0);
    assert_eq!(store.count_awaiting(at(2000)).await.unwrap(), 1);
    // The case itself is untouched: no new version.
    assert_eq!(store.get_case(&id).await.unwrap().unwrap().version, 1);

    // A check that reads Cabital's state settles it: the count is gone.
    store.apply_remote_state(&id, 1, &RemoteState::default(), RemoteCheck::Reconciled, at(3000)).await.unwrap();
    assert_eq!(store.backoff_attempts(&case).await.unwrap(), 0);
}

#[tokio::test]
async fn a_write_since_the_listing_wins_over_the_deferral_and_clears_the_count() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let case = AttentionTarget::Case(id);
    store.defer_index_entry(&case, AWAITING, at(0), |_| at(1000)).await.unwrap();
    assert_eq!(store.backoff_attempts(&case).await.unwrap(), 1);

    // A webhook makes it urgent at once, whatever its backoff.
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "fine"), at(50)).await.unwrap();
    assert_eq!(store.backoff_attempts(&case).await.unwrap(), 0, "the webhook's write clears the count");
    assert_eq!(store.urgent_attention(at(60), 10).await.unwrap().len(), 1);

    // A run that listed it before the webhook cannot push it back.
    let stale = store.defer_index_entry(&case, AWAITING, at(1000), |_| at(5000)).await.unwrap();
    assert_eq!(stale, Deferral::Moved);
    let stale = store.defer_index_entry(&case, URGENT, at(49), |_| at(5000)).await.unwrap();
    assert_eq!(stale, Deferral::Moved);
    assert_eq!(store.urgent_attention(at(60), 10).await.unwrap().len(), 1, "still urgent since the webhook");
}

#[tokio::test]
async fn unknown_creations_and_ogs_cases_back_off_in_their_own_index() {
    let store = fresh_store().await;
    let ext = new_ext();
    let token = reserve(&store, &ext, at(0)).await;
    store.mark_unknown(&ext, token, at(0)).await.unwrap();
    let reservation = AttentionTarget::External(ext.clone());
    let deferred = store.defer_index_entry(&reservation, URGENT, at(0), |_| at(600)).await.unwrap();
    assert_eq!(deferred, Deferral::Deferred { attempts: 1 });
    assert!(store.urgent_attention(at(599), 10).await.unwrap().is_empty());
    assert_eq!(store.count_urgent(at(600)).await.unwrap(), 1);
    assert!(store.defer_index_entry(&reservation, IndexSlot::Ogs, at(0), |_| at(600)).await.is_err());

    let (_, id) = create_case(&store, at(0)).await;
    store.record_ogs(&id, true, at(10)).await.unwrap();
    let case = AttentionTarget::Case(id);
    let deferred = store.defer_index_entry(&case, IndexSlot::Ogs, at(10), |_| at(500)).await.unwrap();
    assert_eq!(deferred, Deferral::Deferred { attempts: 1 });
    assert!(store.ogs_checked_before(at(100), 10).await.unwrap().is_empty());
    assert_eq!(store.count_ogs(at(501)).await.unwrap(), 1);
    let version = store.get_case(&id).await.unwrap().unwrap().version;
    let remote = RemoteState { ogs: true, ..RemoteState::default() };
    store.apply_remote_state(&id, version, &remote, RemoteCheck::Reconciled, at(700)).await.unwrap();
    assert_eq!(store.ogs_checked_before(at(701), 10).await.unwrap()[0].since, at(700));
    assert_eq!(store.backoff_attempts(&case).await.unwrap(), 0);
}
