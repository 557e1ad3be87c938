//! A case's timeline: pages in both orders, cursors, bad cursors.

use crate::common;

use common::*;
use gateway_store::{EventKind, StoreError, TimelineOrder};
use gateway_support::fresh_store;

/// A case with seven events at distinct times: CREATED, then OGS_ON / OGS_OFF x3.
async fn case_with_seven_events(store: &gateway_store::Store) -> gateway_cabital::CaseSystemId {
    let (_, id) = create_case(store, at(0)).await;
    for i in 1..=6 {
        store.record_ogs(&id, i % 2 == 1, at(i * 60)).await.unwrap();
    }
    id
}

async fn all_pages(
    store: &gateway_store::Store,
    id: &gateway_cabital::CaseSystemId,
    order: TimelineOrder,
    limit: u32,
) -> Vec<Vec<gateway_store::Event>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.timeline(id, order, limit, cursor.as_deref()).await.unwrap();
        pages.push(page.events);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 20, "pagination does not end");
    }
}

#[tokio::test]
async fn pages_oldest_first_follow_the_cursor_to_the_end() {
    let store = fresh_store().await;
    let id = case_with_seven_events(&store).await;
    let pages = all_pages(&store, &id, TimelineOrder::Oldest, 3).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let events: Vec<_> = pages.into_iter().flatten().collect();
    let times: Vec<_> = events.iter().map(|e| e.at).collect();
    assert_eq!(times, (0..=6).map(|i| at(i * 60)).collect::<Vec<_>>());
    assert_eq!(events[0].kind(), EventKind::Created);
    assert_eq!(events[1].kind(), EventKind::OgsOn);
    assert_eq!(events[6].kind(), EventKind::OgsOff);
}

#[tokio::test]
async fn pages_newest_first_are_the_reverse() {
    let store = fresh_store().await;
    let id = case_with_seven_events(&store).await;
    let pages = all_pages(&store, &id, TimelineOrder::Newest, 2).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2, 1]);
    let times: Vec<_> = pages.into_iter().flatten().map(|e| e.at).collect();
    assert_eq!(times, (0..=6).rev().map(|i| at(i * 60)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_last_full_page_has_no_cursor() {
    let store = fresh_store().await;
    let id = case_with_seven_events(&store).await;
    let page = store.timeline(&id, TimelineOrder::Oldest, 7, None).await.unwrap();
    assert_eq!(page.events.len(), 7);
    assert_eq!(page.next_cursor, None, "no cursor to an empty page");
    let page = store.timeline(&id, TimelineOrder::Oldest, 0, None).await.unwrap();
    assert_eq!(page.events.len(), 1, "a limit of 0 is clamped to 1");
    let page = store.timeline(&new_case_id(), TimelineOrder::Oldest, 10, None).await.unwrap();
    assert!(page.events.is_empty());
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn invalid_cursors_are_a_typed_error() {
    let store = fresh_store().await;
    let id = case_with_seven_events(&store).await;
    let other = case_with_seven_events(&store).await;
    let foreign = store.timeline(&other, TimelineOrder::Oldest, 2, None).await.unwrap().next_cursor.unwrap();

    for bad in ["not base64!", "", "AAAA", foreign.as_str()] {
        let err = store.timeline(&id, TimelineOrder::Oldest, 2, Some(bad)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidCursor), "{bad:?}: {err:?}");
        assert!(!err.retryable());
    }
}
