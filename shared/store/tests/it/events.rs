//! What every event item carries of its case, for the pipe to EventBridge
//! (infra/template.yaml `CaseEventsPipe`): ids, state and the case's exact version.

use std::collections::HashMap;

use crate::common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use gateway_cabital::{Comment, Decision, Pii, Suggestion};
use gateway_store::{RemoteCheck, RemoteState, Store, StoreError};
use gateway_support::fresh_store;

type Item = HashMap<String, AttributeValue>;

/// The case's event items, in sort-key (time) order.
async fn event_items(store: &Store, id: &gateway_cabital::CaseSystemId) -> Vec<Item> {
    let out = store
        .client()
        .query()
        .table_name(store.table_name())
        .key_condition_expression("pk = :pk AND begins_with(sk, :e)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("CASE#{id}")))
        .expression_attribute_values(":e", AttributeValue::S("EVENT#".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items.unwrap_or_default()
}

fn text<'a>(item: &'a Item, attr: &str) -> &'a str {
    match item.get(attr) {
        Some(AttributeValue::S(s)) => s,
        Some(AttributeValue::N(n)) => n,
        other => panic!("{attr}: {other:?} is not a string or a number"),
    }
}

/// (kind, version, status, suggestion, decision, ogs) of each event, in order.
fn snapshots(items: &[Item]) -> Vec<(String, u64, String, String, String, String)> {
    items
        .iter()
        .map(|i| {
            (
                text(i, "kind").to_owned(),
                text(i, "caseVersion").parse().unwrap(),
                text(i, "caseStatus").to_owned(),
                text(i, "caseSuggestion").to_owned(),
                text(i, "caseDecision").to_owned(),
                text(i, "caseOgs").to_owned(),
            )
        })
        .collect()
}

fn row(
    kind: &str,
    version: u64,
    status: &str,
    suggestion: &str,
    decision: &str,
    ogs: &str,
) -> (String, u64, String, String, String, String) {
    (kind.into(), version, status.into(), suggestion.into(), decision.into(), ogs.into())
}

#[tokio::test]
async fn every_event_names_its_case_and_the_version_and_state_it_left_it_in() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    let v = store.get_case(&id).await.unwrap().unwrap().version;
    // Cabital suggests: the webhook (a hint) flags the case, the read applies it.
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToReject, "on a list"), at(10)).await.unwrap();
    let v_webhook = store.get_case(&id).await.unwrap().unwrap().version;
    let remote = RemoteState {
        suggestion: Some(Suggestion::SuggestToReject),
        suggestion_comment: Some(Comment::from(Pii("on a list".to_owned()))),
        ..RemoteState::default()
    };
    store.apply_remote_state(&id, v_webhook, &remote, RemoteCheck::Refreshed, at(11)).await.unwrap();
    store.record_ogs(&id, true, at(20)).await.unwrap();
    store.record_decision(&id, Decision::Reject, Some(Pii("confirmed".into())), at(30)).await.unwrap();

    let items = event_items(&store, &id).await;
    assert_eq!(
        snapshots(&items),
        [
            row("CREATED", v, "AWAITING_SUGGESTION", "NONE", "NONE", "OFF"),
            row("WEBHOOK", v + 1, "AWAITING_SUGGESTION", "NONE", "NONE", "OFF"),
            row("REFRESHED", v + 2, "SUGGESTED", "SUGGEST_TO_REJECT", "NONE", "OFF"),
            row("OGS_ON", v + 3, "SUGGESTED", "SUGGEST_TO_REJECT", "NONE", "ON"),
            row("DECISION", v + 4, "DECIDED", "SUGGEST_TO_REJECT", "REJECT", "ON"),
        ]
    );
    assert_eq!(store.get_case(&id).await.unwrap().unwrap().version, v + 4, "the last event names the case's version");
    for item in &items {
        assert_eq!(text(item, "caseSystemId"), id.to_string());
        assert_eq!(text(item, "externalCaseId"), ext.as_str());
    }
}

#[tokio::test]
async fn a_case_first_known_from_a_webhook_starts_at_version_1() {
    let store = fresh_store().await;
    let (ext, id) = (new_ext(), new_case_id());
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "clear"), at(0)).await.unwrap();
    let items = event_items(&store, &id).await;
    assert_eq!(snapshots(&items), [row("WEBHOOK", 1, "SUGGESTED", "SUGGEST_TO_ACCEPT", "NONE", "OFF")]);
    assert_eq!(text(&items[0], "externalCaseId"), ext.as_str());
}

/// Tries again while the write keeps losing races (a retryable answer: its caller, the
/// partner or Cabital, tries again too).
async fn until_won<T, F: std::future::Future<Output = Result<T, StoreError>>>(write: impl Fn() -> F) -> T {
    for _ in 0..20 {
        match write().await {
            Err(StoreError::TransactionConflict | StoreError::VersionConflict { .. }) => continue,
            other => return other.unwrap(),
        }
    }
    panic!("still losing races after 20 tries");
}

/// Three webhooks (distinct bodies) and three ongoing-screening writes race on one case,
/// each tried again while it loses.
async fn race_on(store: &Store, ext: &gateway_cabital::ExternalCaseId, id: gateway_cabital::CaseSystemId) {
    let webhooks = (0..3).map(|i| {
        let store = store.clone();
        let ext = ext.clone();
        async move {
            let r = receipt(id, &ext, Suggestion::SuggestToAccept, &format!("comment {i}"));
            until_won(|| store.record_webhook(&r, at(10 + i))).await;
        }
    });
    let ogs = (0..3).map(|i| {
        let store = store.clone();
        async move {
            until_won(|| store.record_ogs(&id, i % 2 == 0, at(10 + i))).await;
        }
    });
    futures::join!(futures::future::join_all(webhooks), futures::future::join_all(ogs));
}

#[tokio::test]
async fn concurrent_writers_each_name_a_distinct_version() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    race_on(&store, &ext, id).await;

    let items = event_items(&store, &id).await;
    assert_eq!(items.len(), 7, "CREATED, 3 webhooks, 3 ogs writes");
    let mut versions: Vec<u64> = snapshots(&items).iter().map(|s| s.1).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 7, "every event names its own version");
    let last = store.get_case(&id).await.unwrap().unwrap().version;
    assert_eq!(versions.last(), Some(&last), "the newest names the case's version");
    assert_eq!(versions.first(), Some(&(last - 6)), "no version skipped: one event per write");
}

/// The case's events, in version order, make one unbroken chain ending at the case's head.
async fn assert_one_chain(store: &Store, id: &gateway_cabital::CaseSystemId) -> usize {
    let page = store.timeline(id, gateway_store::TimelineOrder::Oldest, 100, None).await.unwrap();
    let mut events = page.events;
    events.sort_by_key(|e| e.chain.as_ref().expect("every event is linked").case_version);
    let mut prev = gateway_evidence::GENESIS.to_owned();
    for e in &events {
        let link = e.chain.as_ref().unwrap();
        assert_eq!(link.prev_hash, prev, "{} links to the event before it", e.event_id);
        let content = e.content().unwrap();
        assert_eq!(link.content_sha256, gateway_evidence::content_sha256(&content), "{}: its content", e.event_id);
        assert_eq!(link.hash, gateway_evidence::link(&prev, &link.content_sha256));
        assert_eq!(content["caseVersion"], link.case_version);
        prev = link.hash.clone();
    }
    let case = store.get_case(id).await.unwrap().unwrap();
    assert_eq!(case.chain_head.as_deref(), Some(prev.as_str()), "the case holds the last hash");
    events.len()
}

#[tokio::test]
async fn a_cases_events_make_one_chain_even_with_concurrent_writers() {
    let store = fresh_store().await;
    let (ext, id) = create_case(&store, at(0)).await;
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToReject, "listed"), at(10)).await.unwrap();
    store.record_decision(&id, Decision::Reject, Some(Pii("confirmed".into())), at(20)).await.unwrap();
    assert_eq!(assert_one_chain(&store, &id).await, 3);

    // A case first known from a webhook starts its chain there.
    let (ext2, id2) = (new_ext(), new_case_id());
    store.record_webhook(&receipt(id2, &ext2, Suggestion::SuggestToAccept, "clear"), at(0)).await.unwrap();
    assert_eq!(assert_one_chain(&store, &id2).await, 1);

    // Writers racing on one case still make one chain.
    let (ext3, id3) = create_case(&store, at(0)).await;
    race_on(&store, &ext3, id3).await;
    assert_eq!(assert_one_chain(&store, &id3).await, 7);
}
