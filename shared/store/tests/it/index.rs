//! The sparse indexes: entries appear and disappear with the items' state.

use crate::common;

use common::*;
use gateway_cabital::Suggestion;
use gateway_store::{AttentionTarget, RemoteCheck, RemoteState};
use gateway_support::fresh_store;

fn targets(refs: &[gateway_store::AttentionRef]) -> Vec<AttentionTarget> {
    refs.iter().map(|r| r.target.clone()).collect()
}

#[tokio::test]
async fn a_case_moves_from_awaiting_to_urgent_to_out_of_the_index() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let case = || AttentionTarget::Case(id);

    let awaiting = store.awaiting_since_before(at(3600), 10).await.unwrap();
    assert_eq!(targets(&awaiting), [case()]);
    assert_eq!(awaiting[0].since, at(0));
    assert!(store.awaiting_since_before(at(-1), 10).await.unwrap().is_empty(), "not awaiting for that long");
    assert!(store.urgent_attention(at(3600), 10).await.unwrap().is_empty());

    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "fine"), at(100)).await.unwrap();
    assert!(store.awaiting_since_before(at(3600), 10).await.unwrap().is_empty());
    let urgent = store.urgent_attention(at(3600), 10).await.unwrap();
    assert_eq!(targets(&urgent), [case()]);
    assert_eq!(urgent[0].since, at(100));
    assert!(store.urgent_attention(at(99), 10).await.unwrap().is_empty(), "urgent only since the webhook");

    let version = store.get_case(&id).await.unwrap().unwrap().version;
    let remote = RemoteState {
        suggestion: Some(Suggestion::SuggestToAccept),
        suggestion_comment: Some(gateway_cabital::Comment::new("fine")),
        ..RemoteState::default()
    };
    store.apply_remote_state(&id, version, &remote, RemoteCheck::Refreshed, at(101)).await.unwrap();
    assert!(store.urgent_attention(at(3600), 10).await.unwrap().is_empty());
    assert!(store.awaiting_since_before(at(3600), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refresh_without_a_suggestion_puts_the_case_back_to_awaiting_since_then() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    store.record_webhook(&receipt(id, &ext, Suggestion::NoSuggestion, "look"), at(100)).await.unwrap();
    let version = store.get_case(&id).await.unwrap().unwrap().version;
    store.apply_remote_state(&id, version, &RemoteState::default(), RemoteCheck::Reconciled, at(200)).await.unwrap();
    assert!(store.urgent_attention(at(3600), 10).await.unwrap().is_empty());
    assert!(store.awaiting_since_before(at(199), 10).await.unwrap().is_empty());
    let awaiting = store.awaiting_since_before(at(200), 10).await.unwrap();
    assert_eq!(targets(&awaiting), [AttentionTarget::Case(id)]);
}

#[tokio::test]
async fn pending_and_unknown_creations_are_urgent_until_created() {
    let store = fresh_store().await;
    let ext = new_ext();
    let token = reserve(&store, &ext, at(0)).await;
    let urgent = store.urgent_attention(at(60), 10).await.unwrap();
    assert_eq!(targets(&urgent), [AttentionTarget::External(ext.clone())]);

    store.mark_unknown(&ext, token, at(30)).await.unwrap();
    assert!(store.urgent_attention(at(29), 10).await.unwrap().is_empty());
    assert_eq!(targets(&store.urgent_attention(at(60), 10).await.unwrap()), [AttentionTarget::External(ext.clone())]);

    let id = new_case_id();
    store.record_webhook(&receipt(id, &ext, Suggestion::NoSuggestion, "look"), at(40)).await.unwrap();
    // The reservation is linked and leaves the index; the case it names is urgent.
    assert_eq!(targets(&store.urgent_attention(at(60), 10).await.unwrap()), [AttentionTarget::Case(id)]);
}

#[tokio::test]
async fn ogs_cases_are_found_by_last_check_until_turned_off() {
    let store = fresh_store().await;
    let (_, id) = create_case(&store, at(0)).await;
    assert!(store.ogs_checked_before(at(10_000), 10).await.unwrap().is_empty());
    store.record_ogs(&id, true, at(10)).await.unwrap();
    assert!(store.ogs_checked_before(at(10), 10).await.unwrap().is_empty(), "checked at 10, not before");
    let found = store.ogs_checked_before(at(11), 10).await.unwrap();
    assert_eq!(targets(&found), [AttentionTarget::Case(id)]);
    assert_eq!(found[0].since, at(10));

    // A reconcile check moves the entry forward.
    let remote = RemoteState { ogs: true, ..RemoteState::default() };
    store.apply_remote_state(&id, 2, &remote, RemoteCheck::Reconciled, at(500)).await.unwrap();
    assert!(store.ogs_checked_before(at(500), 10).await.unwrap().is_empty());
    assert_eq!(store.ogs_checked_before(at(501), 10).await.unwrap()[0].since, at(500));

    store.record_ogs(&id, false, at(600)).await.unwrap();
    assert!(store.ogs_checked_before(at(10_000), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn queries_return_the_oldest_entries_across_shards_up_to_the_limit() {
    let store = fresh_store().await;
    let mut created = Vec::new();
    for i in 0..24 {
        let (_, id) = create_case(&store, at(i * 10)).await;
        created.push(id);
    }
    let oldest = store.awaiting_since_before(at(10_000), 5).await.unwrap();
    assert_eq!(targets(&oldest), created[..5].iter().map(|id| AttentionTarget::Case(*id)).collect::<Vec<_>>());
    let all = store.awaiting_since_before(at(10_000), 100).await.unwrap();
    assert_eq!(all.len(), 24);
    assert!(all.windows(2).all(|w| w[0].since <= w[1].since), "oldest first");
    assert!(store.awaiting_since_before(at(10_000), 0).await.unwrap().is_empty());
    // The ids spread over more than one shard, or the test proves nothing.
    let shards: std::collections::HashSet<_> =
        created.iter().map(|id| gateway_store::shard_of(&id.to_string())).collect();
    assert!(shards.len() > 1);
}
