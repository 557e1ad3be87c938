//! The invocation's deadline: no Cabital call starts or is retried without the time to
//! record what it did, and what Cabital did while the record failed is found again
//! without a webhook (the created case's id kept on its reservation; the decision's and
//! the ongoing-screening change's marks on its case, which the reconciler settles).

use std::time::{Duration, Instant};

use crate::common;

use common::*;
use gateway_cabital::{Decision, ExternalCaseId};
use gateway_cases_api::App;
use gateway_sandbox::CaseResult;
use gateway_sandbox::Faults;
use gateway_service::{Gateway, ReconcileSettings};
use gateway_store::{EventDetail, ExtState, StoreTimeouts};

/// DynamoDB time limits short enough for a test's deadline of a few seconds.
fn short_store() -> StoreTimeouts {
    StoreTimeouts {
        attempt: Duration::from_millis(1000),
        operation: Duration::from_millis(2000),
        ..StoreTimeouts::default()
    }
}

/// A reconcile run that looks at every urgent item at once.
async fn reconcile(gateway: &Gateway) -> gateway_service::Summary {
    let s = ReconcileSettings {
        refresh_grace: Duration::ZERO,
        pending_stuck_after: Duration::ZERO,
        deadline_margin: Duration::from_millis(500),
        ..ReconcileSettings::default()
    };
    gateway.reconcile(&s, Instant::now() + Duration::from_secs(30)).await.expect("the run ends")
}

/// Waits until the sending invocation of a marked call is surely over (its mark's `until`).
async fn until(at: time::OffsetDateTime) {
    let left = at - gateway_runtime::now();
    if left.is_positive() {
        tokio::time::sleep(Duration::try_from(left).unwrap() + Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_slow_cabital_under_a_short_deadline_gets_an_answer_in_time_and_the_reconciler_records_its_decision() {
    let h = gateway_support::harness(|_| {}).await;
    let (id, _) = create(&app(&h), None).await;
    let app = App { gateway: Gateway { store_timeouts: short_store(), ..h.gateway.clone() } };
    // Cabital takes the decision, then answers after 3 s; each attempt may last 2 s.
    h.sandbox.set_faults(Faults { latency_ms: 3000, ..Faults::default() }).unwrap();

    let started = Instant::now();
    let deadline = Duration::from_millis(3500);
    let resp = send_by(&app, &Event::for_case("decision.json", &id), deadline).await;
    let took = started.elapsed();
    resp.expect_problem(504, "cabital_timeout");
    // One attempt, cut at 1.5 s (3.5 s less the 2 s kept for DynamoDB), and no second.
    assert!(took < deadline, "answered after the deadline: {took:?}");
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases/{caseSystemId}/decision"), 1);

    // Nothing recorded wrongly: no decision, but the mark that Cabital may have one.
    let stored = stored_case(&h.store, &id).await;
    assert_eq!(stored.decision, None);
    let pending = stored.decision_pending.expect("the case is marked before the decision is sent");
    assert_eq!(pending.decision, Decision::Accept);
    assert!(!stored_kinds(&h.store, &id).await.contains(&"DECISION"));
    assert_eq!(sandbox_case(&h, &id).case.decision, Some(CaseResult::Accept), "Cabital took it");

    // Once the sending invocation is surely over, the reconciler records it.
    h.sandbox.set_faults(Faults::default()).unwrap();
    until(pending.until).await;
    let summary = reconcile(&h.gateway).await;
    assert_eq!(summary.changed, 1, "{summary:?}");
    let stored = stored_case(&h.store, &id).await;
    assert_eq!(stored.decision, Some(Decision::Accept));
    assert_eq!(stored.decision_pending, None);
    let last = stored_events(&h.store, &id).await.pop().unwrap();
    assert!(matches!(&last.detail, EventDetail::Reconciled(c) if c.to_decision == Some(Decision::Accept)), "{last:?}");
    // Settled: the next run has nothing to do with it.
    assert_eq!(reconcile(&h.gateway).await.checked, 0);
}

#[tokio::test]
async fn a_decision_cabital_took_whose_record_failed_is_recorded_by_the_reconciler() {
    let h = gateway_support::harness(|_| {}).await;
    let (id, _) = create(&app(&h), None).await;
    let (store, fault) = gateway_support::store_failing_transactions(h.store.table_name(), short_store()).await;
    let app = App { gateway: Gateway { store, store_timeouts: short_store(), ..h.gateway.clone() } };

    fault.set(true);
    let resp = send_by(&app, &Event::for_case("decision.json", &id), Duration::from_secs(4)).await;
    resp.expect_problem(503, "store_unavailable");
    assert_eq!(sandbox_case(&h, &id).case.decision, Some(CaseResult::Accept), "Cabital took it");
    let stored = stored_case(&h.store, &id).await;
    assert_eq!(stored.decision, None, "the record failed");
    let pending = stored.decision_pending.expect("the mark was written before the decision was sent");

    fault.set(false);
    until(pending.until).await;
    assert_eq!(reconcile(&h.gateway).await.changed, 1);
    let stored = stored_case(&h.store, &id).await;
    assert_eq!((stored.decision, stored.decision_pending), (Some(Decision::Accept), None));
    // Cabital's word, comment included, as the API shows it.
    let shown = send(&app, &Event::for_case("get-case.json", &id)).await;
    assert_eq!(shown.expect(200).json["case"]["decisionComment"], "Reviewed by compliance.");
}

#[tokio::test]
async fn an_ongoing_screening_change_cabital_made_whose_record_failed_is_recorded_by_the_reconciler() {
    let h = gateway_support::harness(|_| {}).await;
    let (id, _) = create(&app(&h), None).await;
    let (store, fault) = gateway_support::store_failing_transactions(h.store.table_name(), short_store()).await;
    let app = App { gateway: Gateway { store, store_timeouts: short_store(), ..h.gateway.clone() } };

    fault.set(true);
    let resp = send_by(&app, &Event::for_case("ogs-on.json", &id), Duration::from_secs(4)).await;
    resp.expect_problem(503, "store_unavailable");
    assert!(sandbox_case(&h, &id).case.ogs, "Cabital turned it on");
    let stored = stored_case(&h.store, &id).await;
    assert!(!stored.ogs, "the record failed");
    let pending = stored.ogs_pending.expect("the mark was written before the change was sent");
    assert!(pending.on);

    fault.set(false);
    until(pending.until).await;
    assert_eq!(reconcile(&h.gateway).await.changed, 1);
    let stored = stored_case(&h.store, &id).await;
    assert_eq!((stored.ogs, stored.ogs_pending), (true, None));
    let last = stored_events(&h.store, &id).await.pop().unwrap();
    assert!(matches!(&last.detail, EventDetail::Reconciled(c) if c.to_ogs), "{last:?}");
    // Settled: the next run has nothing to do with it.
    assert_eq!(reconcile(&h.gateway).await.checked, 0);
}

#[tokio::test]
async fn an_ongoing_screening_change_cabital_refused_or_recorded_leaves_no_mark() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    let before = stored_case(&h.store, &id).await.attention;
    h.sandbox.set_faults(Faults { error_rate_503: 1.0, ..Faults::default() }).unwrap();
    send(&app, &Event::for_case("ogs-on.json", &id)).await.expect_problem(503, "cabital_unavailable");
    let stored = stored_case(&h.store, &id).await;
    assert_eq!((stored.ogs, stored.ogs_pending), (false, None), "surely not made: nothing to look for");
    assert_eq!(stored.attention, before, "the case needs the look it needed before, no other");

    h.sandbox.set_faults(Faults::default()).unwrap();
    send(&app, &Event::for_case("ogs-on.json", &id)).await.expect(200);
    let stored = stored_case(&h.store, &id).await;
    assert_eq!((stored.ogs, stored.ogs_pending), (true, None), "recorded: the mark is cleared");
    assert_eq!(stored.attention, before);
}

#[tokio::test]
async fn a_decision_cabital_refused_leaves_no_mark() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    let before = stored_case(&h.store, &id).await.attention;
    h.sandbox.set_faults(Faults { error_rate_503: 1.0, ..Faults::default() }).unwrap();
    send(&app, &Event::for_case("decision.json", &id)).await.expect_problem(503, "cabital_unavailable");
    let stored = stored_case(&h.store, &id).await;
    assert_eq!((stored.decision, stored.decision_pending), (None, None), "surely not taken: nothing to look for");
    assert_eq!(stored.attention, before, "the case needs the look it needed before, no other");
}

#[tokio::test]
async fn a_case_cabital_created_whose_record_failed_keeps_its_id_on_the_reservation() {
    let h = gateway_support::harness(|_| {}).await;
    let (store, fault) =
        gateway_support::store_failing_transactions(h.store.table_name(), StoreTimeouts::default()).await;
    let app = App { gateway: Gateway { store, ..h.gateway.clone() } };

    fault.set(true);
    send(&app, &Event::fixture("create-case.json")).await.expect_problem(503, "store_unavailable");
    let created = h.sandbox.cases_by_external_id(FIXTURE_EXTERNAL_ID);
    assert_eq!(created.len(), 1, "Cabital has the case");
    let id = gateway_cabital::CaseSystemId::new(created[0].case.case_system_id);
    let ext = ExternalCaseId::parse(FIXTURE_EXTERNAL_ID).unwrap();
    let kept = h.store.get_external(&ext).await.unwrap().expect("the reservation is stored");
    assert_eq!((kept.state, kept.case_system_id), (ExtState::Pending, Some(id)), "the id is kept: no webhook needed");

    // The reconciler links it (no webhook comes: the harness's sandbox sends none).
    fault.set(false);
    let summary = reconcile(&h.gateway).await;
    assert_eq!(summary.resolved_unknown, 1, "{summary:?}");
    let linked = h.store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!((linked.state, linked.case_system_id), (ExtState::Created, Some(id)));
    // And the caller's retry now gets the case, never a second one at Cabital.
    let replay = send(&app, &Event::fixture("create-case.json")).await;
    replay.expect(201);
    assert_eq!(replay.json["caseSystemId"], id.to_string());
    assert_eq!(h.sandbox.cases_by_external_id(FIXTURE_EXTERNAL_ID).len(), 1);
}
