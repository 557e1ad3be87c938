//! Creations whose outcome never came back: a stuck PENDING becomes UNKNOWN, a PENDING
//! that a webhook named is linked, an old UNKNOWN is reported for a person and kept.

use crate::common;

use std::time::Duration;

use common::*;
use gateway_cabital::{ExternalCaseId, NewCase, Pii, validate_new_case};
use gateway_service::{ReconcileSettings, request_hash};
use gateway_store::{EventKind, EventSource, ExtState, Reservation, Resolution};
use gateway_support::Harness;
use time::OffsetDateTime;
use uuid::Uuid;

fn harness_config(cfg: &mut gateway_sandbox::SandboxConfig) {
    cfg.webhook_url = None;
}

fn deadline() -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(60)
}

fn new_ext() -> ExternalCaseId {
    ExternalCaseId::parse(&format!("cr-{}", &Uuid::new_v4().simple().to_string()[..20])).unwrap()
}

fn new_case(ext: &ExternalCaseId) -> NewCase {
    validate_new_case(&case_body(ext.as_str(), "Jane Doe"), OffsetDateTime::now_utc().date()).unwrap()
}

/// Reserves `ext` at `at`, as the cases API does before calling Cabital.
async fn reserve(h: &Harness, ext: &ExternalCaseId, at: OffsetDateTime) -> Uuid {
    let submitted = serde_json::to_string(&new_case(ext)).unwrap();
    let hash = request_hash(submitted.as_bytes());
    match h.store.reserve_external_id(ext, &hash, &Pii(submitted), at).await.unwrap() {
        Reservation::Reserved { token } => token,
        other => panic!("{other:?}"),
    }
}

fn ago(d: Duration) -> OffsetDateTime {
    OffsetDateTime::now_utc() - d
}

#[tokio::test]
async fn a_pending_creation_older_than_the_setting_is_marked_unknown_and_a_fresh_one_is_left_alone() {
    let h = gateway_support::harness(harness_config).await;
    let stuck = new_ext();
    reserve(&h, &stuck, ago(Duration::from_secs(600))).await;
    let in_flight = new_ext();
    reserve(&h, &in_flight, ago(Duration::from_secs(5))).await;

    let s = ReconcileSettings { pending_stuck_after: Duration::from_secs(120), ..settings() };
    let summary = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!((summary.found, summary.marked_unknown, summary.failed), (2, 1, 0), "{summary:?}");
    assert_eq!(h.store.get_external(&stuck).await.unwrap().unwrap().state, ExtState::Unknown);
    assert_eq!(h.store.get_external(&in_flight).await.unwrap().unwrap().state, ExtState::Pending);
    drop_table(&h).await;
}

#[tokio::test]
async fn an_unknown_creation_older_than_the_setting_is_reported_each_time_its_backoff_ends_and_never_dropped() {
    let h = gateway_support::harness(harness_config).await;
    let old = new_ext();
    let at = ago(Duration::from_secs(2 * 86_400));
    let token = reserve(&h, &old, at).await;
    h.store.mark_unknown(&old, token, at).await.unwrap();
    let recent = new_ext();
    let token = reserve(&h, &recent, ago(Duration::from_secs(600))).await;
    h.store.mark_unknown(&recent, token, ago(Duration::from_secs(600))).await.unwrap();

    // Runs every 2 s: each backs off two runs after its first report.
    let period = Duration::from_secs(2);
    let s =
        ReconcileSettings { unknown_report_after: Duration::from_secs(86_400), schedule_period: period, ..settings() };
    let expected = [(2, 1), (0, 0), (2, 1)];
    for (run, want) in expected.into_iter().enumerate() {
        if run == 2 {
            tokio::time::sleep(period * 2).await;
        }
        let summary = h.gateway.reconcile(&s, deadline()).await.unwrap();
        assert_eq!((summary.found, summary.unknown_needing_attention), want, "run {run}: {summary:?}");
        for ext in [&old, &recent] {
            let record = h.store.get_external(ext).await.unwrap().expect("kept");
            assert_eq!(record.state, ExtState::Unknown, "run {run}: {ext}");
            assert!(record.attention.is_some(), "run {run}: {ext} stays in the index");
        }
    }
    drop_table(&h).await;
}

#[tokio::test]
async fn a_stuck_pending_creation_that_a_webhook_named_is_linked_to_its_case() {
    let h = gateway_support::harness(harness_config).await;
    let ext = new_ext();
    reserve(&h, &ext, ago(Duration::from_secs(600))).await;
    // Cabital created the case; the creating invocation died before recording it, and
    // the webhook noted the case on the reservation.
    let created = h.gateway.cabital.create_case(&new_case(&ext)).await.unwrap().case().cloned().unwrap();
    let id = created.case_system_id;
    let noted = h.store.resolve_unknown(&ext, &id, EventSource::Webhook, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(noted, Resolution::Noted, "precondition");

    let s = ReconcileSettings { pending_stuck_after: Duration::from_secs(120), ..settings() };
    let first = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!((first.resolved_unknown, first.failed), (1, 0), "{first:?}");
    let record = h.store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!((record.state, record.case_system_id), (ExtState::Created, Some(id)), "{record:?}");
    assert!(record.attention.is_none(), "a linked reservation leaves the index");
    assert_eq!(event_kinds(&h.store, &id).await.first(), Some(&EventKind::Created));

    // The case, known only from the reservation, is read from Cabital next run.
    let second = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!((second.found, second.changed), (1, 1), "{second:?}");
    assert!(matches_sandbox(&h, &id).await);

    // Nothing left to do.
    let third = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!(third.found, 0, "{third:?}");
    drop_table(&h).await;
}
