//! Retention: every item of a case carries the table's TTL attribute (`expiresAt`) from
//! its first write, at least the case's own bound; the bound covers the last write plus
//! the retention and moves, with every item of the case first, when a write passes it.

use std::collections::HashMap;

use crate::common::*;

use aws_sdk_dynamodb::types::AttributeValue;
use gateway_cabital::{CaseSystemId, Decision, ExternalCaseId, Suggestion};
use gateway_store::{RemoteCheck, RemoteState, Retention, SignaturePair, Store};
use gateway_support::fresh_table;
use time::{Duration, OffsetDateTime};

type Item = HashMap<String, AttributeValue>;

/// Ten days, so its slack is one day.
fn ten_days() -> Retention {
    Retention::days(10).unwrap()
}

async fn store_keeping(retention: Retention) -> Store {
    let (client, table) = fresh_table().await;
    Store::new(client, table).with_retention(retention)
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// Every item of the case's partition and its reservation, by sort key (`EXT` for the
/// reservation).
async fn items_of(store: &Store, id: &CaseSystemId, ext: &ExternalCaseId) -> Vec<(String, Item)> {
    let out = store
        .client()
        .query()
        .table_name(store.table_name())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("CASE#{id}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let mut items: Vec<(String, Item)> =
        out.items().iter().map(|i| (i["sk"].as_s().unwrap().clone(), i.clone())).collect();
    let reservation = store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key("pk", AttributeValue::S(format!("EXT#{ext}")))
        .key("sk", AttributeValue::S("EXT".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    if let Some(item) = reservation.item {
        items.push(("EXT".into(), item));
    }
    items
}

/// The item's TTL: a Number of Unix seconds, as DynamoDB's TTL reads it.
fn ttl(item: &Item) -> Option<OffsetDateTime> {
    let secs: i64 = item.get("expiresAt")?.as_n().expect("expiresAt is a Number").parse().unwrap();
    Some(OffsetDateTime::from_unix_timestamp(secs).unwrap())
}

/// Checks that every item of the case carries a TTL no earlier than the case's bound
/// (the guards with their own TTL apart), that the bound covers the case's last write
/// plus the retention and exceeds it by no more than the slack; returns the bound and
/// the TTL of each item, by sort key.
async fn held(
    store: &Store,
    id: &CaseSystemId,
    ext: &ExternalCaseId,
) -> (OffsetDateTime, Vec<(String, OffsetDateTime)>) {
    let case = store.get_case(id).await.unwrap().unwrap();
    let bound = case.expires_at.expect("a written case has a retention bound");
    let r = store.retention();
    let (least, most) = (case.updated_at + r.period(), case.updated_at + r.period() + r.slack() + Duration::SECOND);
    assert!(least <= bound && bound <= most, "bound {bound} not within [{least}, {most}]");
    let mut ttls = Vec::new();
    for (sk, item) in items_of(store, id, ext).await {
        let Some(at) = ttl(&item) else { panic!("{sk} carries no expiresAt") };
        if !(sk.starts_with("SEEN#") || sk == "REFETCH") {
            assert!(at >= bound, "{sk} expires at {at}, before its case ({bound})");
        }
        ttls.push((sk, at));
    }
    (bound, ttls)
}

fn kinds(ttls: &[(String, OffsetDateTime)]) -> Vec<&str> {
    ttls.iter().map(|(sk, _)| sk.split('#').next().unwrap()).collect()
}

fn signed(
    id: CaseSystemId,
    ext: &ExternalCaseId,
    comment: &str,
    pair_expires: OffsetDateTime,
) -> gateway_store::WebhookReceipt {
    let mut r = receipt(id, ext, Suggestion::SuggestToReject, comment);
    r.signature = Some(SignaturePair { sha256: sha256(&format!("pair {comment}")), expires_at: pair_expires });
    r
}

#[tokio::test]
async fn every_item_of_a_case_carries_its_bound_from_the_first_write() {
    let store = store_keeping(ten_days()).await;
    let t0 = at(0);
    let (ext, id) = create_case(&store, t0).await;
    let (bound, ttls) = held(&store, &id, &ext).await;
    // Created now: kept the retention plus the slack (one day), to the second.
    assert_eq!(bound, t0 + days(11));
    assert_eq!(kinds(&ttls), ["CASE", "EVENT", "EXT"]);
    assert!(ttls.iter().all(|(_, at)| *at == bound), "{ttls:?}");

    // Writes within the slack keep the bound: nothing of the case is rewritten for it.
    let pair_expires = t0 + Duration::minutes(5);
    store.record_webhook(&signed(id, &ext, "on a list", pair_expires), t0 + Duration::hours(1)).await.unwrap();
    let v = store.get_case(&id).await.unwrap().unwrap().version;
    let remote = RemoteState { suggestion: Some(Suggestion::SuggestToReject), ..RemoteState::default() };
    store.apply_remote_state(&id, v, &remote, RemoteCheck::Refreshed, t0 + Duration::hours(2)).await.unwrap();
    store.record_decision(&id, Decision::Reject, None, t0 + Duration::hours(3)).await.unwrap();
    let (after, ttls) = held(&store, &id, &ext).await;
    assert_eq!(after, bound);
    let mut k = kinds(&ttls);
    k.sort_unstable();
    assert_eq!(k, ["CASE", "EVENT", "EVENT", "EVENT", "EVENT", "EXT", "SEEN", "WEBHOOK"], "{ttls:?}");
    for (sk, at) in &ttls {
        // The signature pair's replay guard keeps its own, short TTL.
        let expected = if sk.starts_with("SEEN#") { pair_expires.replace_nanosecond(0).unwrap() } else { bound };
        assert_eq!(*at, expected, "{sk}");
    }
    // Decided: kept at least the retention after the decision.
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert!(bound >= case.decided_at.unwrap() + store.retention().period());
}

#[tokio::test]
async fn a_write_past_the_bound_moves_every_item_of_the_case_first() {
    let store = store_keeping(ten_days()).await;
    let t0 = at(0);
    let (ext, id) = create_case(&store, t0).await;
    store
        .record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "clear"), t0 + Duration::hours(1))
        .await
        .unwrap();
    store.record_decision(&id, Decision::Accept, None, t0 + Duration::hours(2)).await.unwrap();
    let remote = RemoteState {
        suggestion: Some(Suggestion::SuggestToAccept),
        decision: Some(Decision::Accept),
        ogs: true,
        ..RemoteState::default()
    };
    let check = |at: OffsetDateTime| {
        let (store, remote) = (store.clone(), remote.clone());
        async move {
            let v = store.get_case(&id).await.unwrap().unwrap().version;
            store.apply_remote_state(&id, v, &remote, RemoteCheck::Reconciled, at).await.unwrap()
        }
    };
    assert!(check(t0 + Duration::hours(3)).await.changed);
    let (first, _) = held(&store, &id, &ext).await;

    // Ongoing screening turned on two days later: now plus ten days passes the bound,
    // so the bound moves to now plus eleven, and every item with it.
    let later = t0 + days(2);
    store.record_ogs(&id, true, later).await.unwrap();
    let (moved, ttls) = held(&store, &id, &ext).await;
    assert_eq!(moved, later + days(11));
    assert!(moved > first);
    // CASE, EXT, CREATED, WEBHOOK and its de-duplication item, DECISION, RECONCILED, OGS_ON.
    assert_eq!(ttls.len(), 8, "{ttls:?}");
    assert!(ttls.iter().all(|(_, at)| *at == moved), "every item moved with the case: {ttls:?}");

    // A check that changes nothing is a write too: a case under ongoing screening is kept
    // while it is checked.
    let much_later = later + days(30);
    assert!(!check(much_later).await.changed);
    let (last, ttls) = held(&store, &id, &ext).await;
    assert_eq!(last, much_later + days(11));
    assert!(ttls.iter().all(|(_, at)| *at == last), "{ttls:?}");
}

#[tokio::test]
async fn concurrent_writers_past_the_bound_leave_no_item_expiring_before_its_case() {
    let store = store_keeping(ten_days()).await;
    let t0 = at(0);
    let (ext, id) = create_case(&store, t0).await;
    let later = t0 + days(3);
    // Three distinct webhooks and a decision at once, each passing the bound.
    let webhooks = (0..3).map(|i| {
        let store = store.clone();
        let r = receipt(id, &ext, Suggestion::SuggestToReject, &format!("hit {i}"));
        async move { store.record_webhook(&r, later + Duration::seconds(i)).await.map(drop) }
    });
    let decision = store.record_decision(&id, Decision::Reject, None, later + Duration::seconds(3));
    let (webhooks, decision) = tokio::join!(futures::future::join_all(webhooks), decision);
    for w in webhooks {
        w.unwrap();
    }
    decision.unwrap();
    let (bound, ttls) = held(&store, &id, &ext).await;
    assert!(bound >= later + days(10), "{bound}");
    // CASE, EXT, CREATED, 3 WEBHOOK events and their 3 de-duplication items, DECISION.
    assert_eq!(ttls.len(), 10, "{ttls:?}");
}

#[tokio::test]
async fn a_case_first_known_from_a_webhook_is_kept_from_that_write() {
    let store = store_keeping(ten_days()).await;
    let ext = new_ext();
    let id = new_case_id();
    let t0 = at(0);
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "clear"), t0).await.unwrap();
    let (bound, ttls) = held(&store, &id, &ext).await;
    assert_eq!(bound, t0 + days(11));
    assert_eq!(kinds(&ttls), ["CASE", "EVENT", "WEBHOOK"]);
    assert!(ttls.iter().all(|(_, at)| *at == bound), "{ttls:?}");
}

#[tokio::test]
async fn reservations_are_kept_the_retention_after_their_last_write_and_then_as_their_case() {
    let store = store_keeping(ten_days()).await;
    let reservation_ttl = |ext: ExternalCaseId| {
        let store = store.clone();
        async move { store.get_external(&ext).await.unwrap().unwrap().expires_at.unwrap() }
    };
    // Reserved: the retention after the reservation.
    let t0 = at(0);
    let ext = new_ext();
    let token = reserve(&store, &ext, t0).await;
    assert_eq!(reservation_ttl(ext.clone()).await, t0 + days(10));

    // Refused by Cabital: the submitted data dropped at once, its hash kept, the record
    // kept the retention after the refusal.
    store.mark_rejected(&ext, token, 422, t0 + Duration::minutes(1)).await.unwrap();
    let rejected = store.get_external(&ext).await.unwrap().unwrap();
    assert!(rejected.submitted.is_none());
    assert_eq!(rejected.request_hash.len(), 64);
    assert_eq!(rejected.expires_at, Some(t0 + Duration::minutes(1) + days(10)));

    // Unknown: the retention after it was marked; once a webhook names the case, the
    // case's bound.
    let ext = new_ext();
    let token = reserve(&store, &ext, t0).await;
    store.mark_unknown(&ext, token, t0 + Duration::minutes(2)).await.unwrap();
    assert_eq!(reservation_ttl(ext.clone()).await, t0 + Duration::minutes(2) + days(10));
    let id = new_case_id();
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "clear"), t0 + days(4)).await.unwrap();
    let case = store.get_case(&id).await.unwrap().unwrap();
    assert_eq!(store.get_external(&ext).await.unwrap().unwrap().case_system_id, Some(id));
    let (bound, ttls) = held(&store, &id, &ext).await;
    assert_eq!(case.expires_at, Some(bound));
    assert!(ttls.iter().any(|(sk, at)| sk == "EXT" && *at == bound), "{ttls:?}");
}

#[tokio::test]
async fn a_write_after_the_bound_passed_keeps_what_is_left_of_the_case_anew() {
    let store = store_keeping(ten_days()).await;
    let t0 = at(0);
    let (ext, id) = create_case(&store, t0).await;
    store.record_webhook(&receipt(id, &ext, Suggestion::SuggestToAccept, "clear"), t0).await.unwrap();
    // Twelve days later the bound (eleven) has passed, and DynamoDB has not deleted the
    // case yet: a decision is still recorded, and every item left is kept anew.
    let late = t0 + days(12);
    store.record_decision(&id, Decision::Accept, None, late).await.unwrap();
    let (bound, ttls) = held(&store, &id, &ext).await;
    assert_eq!(bound, late + days(11));
    assert_eq!(ttls.len(), 6, "{ttls:?}");
    assert!(ttls.iter().all(|(_, at)| *at == bound), "{ttls:?}");
}

/// Removes every item's TTL, as a release before retention wrote them.
async fn as_written_before_retention(store: &Store) {
    let page = store.client().scan().table_name(store.table_name()).send().await.unwrap();
    for item in page.items() {
        store
            .client()
            .update_item()
            .table_name(store.table_name())
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression("REMOVE expiresAt")
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_backfill_gives_every_item_written_before_retention_its_ttl_by_the_same_rule() {
    let store = store_keeping(ten_days()).await;
    let t0 = at(0);
    let (ext, id) = create_case(&store, t0).await;
    store
        .record_webhook(&receipt(id, &ext, Suggestion::SuggestToReject, "hit"), t0 + Duration::hours(1))
        .await
        .unwrap();
    store.record_decision(&id, Decision::Reject, None, t0 + Duration::hours(2)).await.unwrap();
    let refused = new_ext();
    let token = reserve(&store, &refused, t0).await;
    store.mark_rejected(&refused, token, 422, t0 + Duration::minutes(1)).await.unwrap();
    as_written_before_retention(&store).await;
    assert_eq!(store.get_case(&id).await.unwrap().unwrap().expires_at, None);

    let now = t0 + days(3);
    let mut cursor = None;
    let (mut cases, mut items) = (0, 0);
    loop {
        let page = store.backfill_retention(cursor, now).await.unwrap();
        cases += page.cases;
        items += page.items;
        assert_eq!(page.orphans, 0);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(cases, 1);
    // The case, its reservation (set, then moved with the case), CREATED, WEBHOOK and its
    // de-duplication item, DECISION; the refused reservation.
    assert_eq!(items, 8);
    // The case's bound is the one its last write (the decision) implies, not the backfill's
    // time; every item of it carries it.
    let (bound, ttls) = held(&store, &id, &ext).await;
    assert_eq!(bound, t0 + Duration::hours(2) + days(11));
    assert_eq!(ttls.len(), 6, "{ttls:?}");
    let rejected = store.get_external(&refused).await.unwrap().unwrap();
    assert_eq!(rejected.expires_at, Some(t0 + Duration::minutes(1) + days(10)));

    // Read through again: nothing left to do.
    let again = store.backfill_retention(None, now).await.unwrap();
    assert_eq!((again.cases, again.items, again.orphans), (0, 0, 0));
    assert!(again.next.is_none());
}

/// `retention-backfill` with moto's endpoint and test credentials.
fn backfill_command(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_retention-backfill"))
        .args(args)
        .env("AWS_ENDPOINT_URL", gateway_support::moto_endpoint())
        .env("AWS_REGION", gateway_support::REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("retention-backfill runs")
}

#[tokio::test]
async fn the_backfill_command_reads_the_table_through_and_says_what_it_did() {
    let store = store_keeping(ten_days()).await;
    let (ext, id) = create_case(&store, at(0)).await;
    as_written_before_retention(&store).await;

    let out = backfill_command(&["--table", store.table_name(), "--retention-days", "10"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 case(s) bounded (RETENTION_DAYS=10 after their last write)"), "{stdout}");
    let (bound, _) = held(&store, &id, &ext).await;
    assert_eq!(bound, at(0) + days(11));

    for bad in [&["--retention-days", "10"][..], &["--table", "t", "--retention-days", "0"], &["--tabel", "t"]] {
        let out = backfill_command(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: retention-backfill"), "{bad:?}");
    }
}
