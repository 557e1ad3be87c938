//! Retention through the cases API (`RETENTION_DAYS`): every item a case's calls write
//! carries the table's TTL attribute (`expiresAt`, Unix seconds) from its first write,
//! none earlier than the case's bound; the bound covers the last write (the decision
//! here) plus the retention and is shown as `retainedUntil`; a refused create keeps
//! only its request's hash, for the retention.

use std::collections::HashMap;

use crate::common::*;

use aws_sdk_dynamodb::types::AttributeValue;
use gateway_store::{ExtState, Retention};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// A harness whose gateway keeps cases ten days (its slack: one day).
async fn keeping_ten_days() -> (gateway_support::Harness, gateway_cases_api::App) {
    let mut h = gateway_support::harness(|_| {}).await;
    h.settings.retention = Retention::days(10).unwrap();
    h.gateway = gateway_support::gateway(&h.settings).await;
    h.store = h.gateway.store.clone();
    let app = app(&h);
    (h, app)
}

/// Every item of the table: its sort key (the reservation's prefixed with its pk) and
/// its TTL, if any.
async fn ttls(store: &gateway_store::Store) -> Vec<(String, Option<OffsetDateTime>)> {
    let page = store.client().scan().table_name(store.table_name()).consistent_read(true).send().await.unwrap();
    assert!(page.last_evaluated_key().is_none(), "one page holds a test's table");
    page.items()
        .iter()
        .map(|item: &HashMap<String, AttributeValue>| {
            let sk = item["sk"].as_s().unwrap().clone();
            let ttl = item.get("expiresAt").map(|v| {
                let secs: i64 = v.as_n().expect("expiresAt is a Number").parse().unwrap();
                OffsetDateTime::from_unix_timestamp(secs).unwrap()
            });
            (sk, ttl)
        })
        .collect()
}

fn time(v: &serde_json::Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().expect("a timestamp"), &Rfc3339).unwrap()
}

#[tokio::test]
async fn every_item_of_a_case_is_kept_until_its_shown_bound_which_covers_its_decision() {
    let (h, app) = keeping_ten_days().await;
    let (id, _) = create(&app, Some(&case_body("kept-1"))).await;
    send(&app, &Event::for_case("ogs-on.json", &id)).await.expect(200);
    send(&app, &Event::for_case("decision.json", &id)).await.expect(200);

    let shown = send(&app, &Event::for_case("get-case.json", &id)).await;
    shown.expect(200);
    let case = &shown.json["case"];
    let bound = time(&case["retainedUntil"]);
    let retention = Duration::days(10);
    assert!(bound >= time(&case["decidedAt"]) + retention, "kept the retention after the decision: {case}");
    assert!(bound <= time(&case["updatedAt"]) + retention + Duration::days(1) + Duration::SECOND, "{case}");

    let items = ttls(&h.store).await;
    let kinds: Vec<&str> = items.iter().map(|(sk, _)| sk.split('#').next().unwrap()).collect();
    for kind in ["CASE", "EXT", "EVENT"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    for (sk, ttl) in &items {
        let Some(ttl) = ttl else { panic!("{sk} carries no expiresAt") };
        assert!(*ttl >= bound, "{sk} expires at {ttl}, before its case ({bound})");
    }
    // CREATED, OGS_ON, DECISION: each event as long as the case.
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED", "OGS_ON", "DECISION"]);
}

#[tokio::test]
async fn a_refused_create_keeps_only_the_request_hash_for_the_retention() {
    let (h, app) = keeping_ten_days().await;
    // Cabital refuses our key: the create is refused, nothing was created.
    h.sandbox.set_credentials(vec![gateway_sandbox::Credential::new("another-key", "another-secret")]);
    let before = OffsetDateTime::now_utc();
    send(&app, &Event::fixture("create-case.json")).await.expect_problem(502, "cabital_refused");
    let after = OffsetDateTime::now_utc();

    let ext = gateway_cabital::ExternalCaseId::parse(FIXTURE_EXTERNAL_ID).unwrap();
    let reservation = h.store.get_external(&ext).await.unwrap().expect("the reservation is kept");
    assert_eq!(reservation.state, ExtState::Rejected);
    assert!(reservation.submitted.is_none(), "the submitted name and date of birth are dropped at once");
    assert_eq!(reservation.request_hash.len(), 64, "its hash is kept, to tell a repeat");
    let ttl = reservation.expires_at.expect("a TTL");
    let retention = Duration::days(10);
    assert!(ttl >= before + retention - Duration::SECOND && ttl <= after + retention + Duration::SECOND, "{ttl}");
    let stored = format!("{:?}", table_items(&h.store).await);
    for personal in ["John Doe", "2002-02-02"] {
        assert!(!stored.contains(personal), "{personal} is still stored");
    }
}
