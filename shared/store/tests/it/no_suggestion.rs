//! Giving up a case without a suggestion: one versioned write with one event, out of the
//! awaiting index, never twice, and undone by a suggestion.

use crate::common;

use common::*;
use gateway_cabital::Suggestion;
use gateway_store::{EventDetail, EventKind, RemoteCheck, RemoteState, StoreError, TimelineOrder};
use gateway_support::fresh_store;

async fn overdue_events(store: &gateway_store::Store, id: &gateway_cabital::CaseSystemId) -> Vec<EventDetail> {
    let page = store.timeline(id, TimelineOrder::Oldest, 50, None).await.unwrap();
    page.events.into_iter().filter(|e| e.kind() == EventKind::SuggestionOverdue).map(|e| e.detail).collect()
}

#[tokio::test]
async fn a_case_is_given_up_once_at_its_version_and_a_suggestion_clears_it() {
    let store = fresh_store().await;
    let (_, id) = create_case(&store, at(0)).await;
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert!(case.attention.is_some() && case.no_suggestion_since.is_none(), "awaiting: {case:?}");

    // A stale version is refused: something was written since it was read.
    let stale = store.give_up_no_suggestion(&id, case.version + 1, at(100)).await;
    assert!(matches!(stale, Err(StoreError::VersionConflict { .. })), "{stale:?}");

    assert!(store.give_up_no_suggestion(&id, case.version, at(100)).await.unwrap());
    let given_up = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(given_up.no_suggestion_since, Some(at(100)));
    assert!(given_up.attention.is_none(), "out of the awaiting index");
    assert_eq!(given_up.version, case.version + 1);
    assert_eq!(overdue_events(&store, &id).await, [EventDetail::SuggestionOverdue { waited_secs: 100 }]);
    let listed = store.awaiting_since_before(at(1000), 100).await.unwrap();
    assert!(listed.iter().all(|r| r.target != gateway_store::AttentionTarget::Case(id)), "{listed:?}");

    // Never twice.
    assert!(!store.give_up_no_suggestion(&id, given_up.version, at(200)).await.unwrap());
    assert_eq!(overdue_events(&store, &id).await.len(), 1);

    // Still nothing from Cabital: stays given up and out of the index.
    let applied = store
        .apply_remote_state(&id, given_up.version, &RemoteState::default(), RemoteCheck::Refreshed, at(300))
        .await
        .unwrap();
    let still = store.get_case(&id).await.unwrap().unwrap();
    assert!(still.no_suggestion_since.is_some() && still.attention.is_none(), "{still:?}");

    // A suggestion clears it.
    let suggested = RemoteState {
        suggestion: Some(Suggestion::SuggestToAccept),
        suggestion_comment: Some(gateway_cabital::Comment::new("fine")),
        ..RemoteState::default()
    };
    store.apply_remote_state(&id, applied.version, &suggested, RemoteCheck::Refreshed, at(400)).await.unwrap();
    let cleared = store.get_case(&id).await.unwrap().unwrap();
    assert!(cleared.no_suggestion_since.is_none(), "{cleared:?}");
    assert!(!store.give_up_no_suggestion(&id, cleared.version, at(500)).await.unwrap(), "a suggested case stays");
}
