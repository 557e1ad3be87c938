//! The reconciler brings the table to Cabital's state when webhooks never came: through
//! the real handler with the schedule fixture, under injected faults, and with two runs
//! at once.

use crate::common;

use std::time::Duration;

use common::*;
use gateway_reconcile::{App, handle};
use gateway_sandbox::{Faults, Suggestion as SandboxSuggestion, SuggestionChange};
use gateway_service::{ReconcileError, ReconcileSettings, Summary};
use gateway_store::CaseStatus;

/// No webhook URL: every webhook is lost, as with `drop_webhook_rate` 1.0.
fn webhooks_lost(cfg: &mut gateway_sandbox::SandboxConfig) {
    cfg.webhook_url = None;
    cfg.faults.drop_webhook_rate = 1.0;
    // The suggestion comes after the create's answer, so the stored case awaits it.
    cfg.screening_delay_ms = 50;
}

#[tokio::test]
async fn one_run_of_the_handler_settles_every_case_whose_webhook_was_dropped() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = create_cases(&h, 50).await;
    wait_screened(&h, &ids).await;
    for id in &ids {
        let case = stored(&h.store, id).await;
        assert_eq!(case.status, CaseStatus::AwaitingSuggestion, "precondition: the create answered before screening");
        assert!(!matches_sandbox(&h, id).await, "precondition: the table lags the sandbox");
    }

    let app = App { gateway: h.gateway.clone(), settings: settings() };
    let summary = handle(&app, scheduled_event(Duration::from_secs(120))).await.unwrap();

    assert_eq!(
        (summary.found, summary.checked, summary.changed, summary.failed, summary.skipped_for_time),
        (50, 50, 50, 0, 0),
        "{summary:?}"
    );
    for id in &ids {
        assert!(matches_sandbox(&h, id).await, "case {id} does not match the sandbox");
        assert_eq!(reconciled_events(&h.store, id).await, 1, "case {id}");
        let case = stored(&h.store, id).await;
        assert_eq!(case.status, CaseStatus::Suggested);
        assert!(case.attention.is_none(), "a settled case leaves the attention index");
    }
    assert_eq!(h.sandbox.stats().webhook_attempts, 0, "no webhook was delivered");

    // Nothing is left: the next run finds nothing and writes nothing.
    let again = handle(&app, scheduled_event(Duration::from_secs(60))).await.unwrap();
    assert_eq!((again.found, again.changed), (0, 0), "{again:?}");
    drop_table(&h).await;
}

#[tokio::test]
async fn cases_converge_within_a_few_runs_despite_5xx_and_429() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = create_cases(&h, 30).await;
    wait_screened(&h, &ids).await;
    h.sandbox
        .set_faults(Faults {
            error_rate_500: 0.15,
            error_rate_503: 0.15,
            // Far below the reconciler's own rate (and its concurrency): the sandbox
            // answers 429 whatever the speed of the table.
            rate_limit_per_sec: 2.0,
            drop_webhook_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let s = ReconcileSettings { rate_per_sec: 20, ..settings() };

    let mut runs = Vec::new();
    let mut converged = false;
    for _ in 0..10 {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        match h.gateway.reconcile(&s, deadline).await {
            Ok(summary) => runs.push(summary),
            // A run in which every check failed on 5xx/429 asks for the schedule's retry:
            // acceptable here, as it is what a retry can fix.
            Err(ReconcileError::AllFailed(n)) => runs.push(Summary { failed: n, ..Summary::default() }),
            Err(e) => panic!("a run failed for a reason a retry cannot fix: {e}"),
        }
        for id in &ids {
            assert_not_wrong(&h, id).await;
        }
        let mut all = true;
        for id in &ids {
            all &= matches_sandbox(&h, id).await;
        }
        if all {
            converged = true;
            break;
        }
    }
    assert!(converged, "not converged after 10 runs: {runs:#?}");

    let stats = h.sandbox.stats();
    assert!(stats.injected_500 + stats.injected_503 > 0, "the faults were exercised: {stats:?}");
    assert!(stats.rate_limited > 0, "the rate limit was exercised: {stats:?}");
    for id in &ids {
        assert_eq!(reconciled_events(&h.store, id).await, 1, "case {id}: one change, one RECONCILED event");
    }
    let changed: usize = runs.iter().map(|r| r.changed).sum();
    assert_eq!(changed, ids.len(), "{runs:#?}");
    drop_table(&h).await;
}

#[tokio::test]
async fn two_runs_at_once_record_each_change_once() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = create_cases(&h, 40).await;
    wait_screened(&h, &ids).await;
    // Slow answers, so that the two runs overlap case by case.
    h.sandbox.set_faults(Faults { latency_ms: 20, drop_webhook_rate: 1.0, ..Faults::default() }).unwrap();

    let s = settings();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let (a, b) = tokio::join!(h.gateway.reconcile(&s, deadline), h.gateway.reconcile(&s, deadline));
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!((a.failed, b.failed, a.skipped_for_time, b.skipped_for_time), (0, 0, 0, 0), "{a:?} {b:?}");
    assert!(a.checked > 0 && b.checked > 0, "both runs worked on the same cases: {a:?} {b:?}");
    assert_eq!(a.changed + b.changed, ids.len(), "each change counted once: {a:?} {b:?}");
    for id in &ids {
        assert!(matches_sandbox(&h, id).await, "case {id}");
        assert_eq!(reconciled_events(&h.store, id).await, 1, "case {id}");
        let case = stored(&h.store, id).await;
        assert_eq!(case.status, CaseStatus::Suggested);
    }
    drop_table(&h).await;
}

#[tokio::test]
async fn a_change_by_ongoing_screening_whose_webhook_was_lost_is_found_by_the_sweep() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = create_cases(&h, 3).await;
    wait_screened(&h, &ids).await;
    h.gateway.reconcile(&settings(), std::time::Instant::now() + Duration::from_secs(60)).await.unwrap();
    let watched = ids[0];
    h.gateway.set_ogs(watched, true, gateway_cabital::Deadline::NONE).await.unwrap();
    assert!(matches_sandbox(&h, &watched).await, "precondition: settled, ogs on");

    // Ongoing screening finds a hit; its webhook is lost.
    let change = SuggestionChange {
        suggestion: SandboxSuggestion::SuggestToReject,
        comment: Some("Hit on a new list entry".into()),
        notify: false,
    };
    h.sandbox.set_suggestion(watched.uuid(), change).unwrap();
    assert!(!matches_sandbox(&h, &watched).await, "precondition: the table lags the sandbox");

    // Not due yet (checked less than a week ago): the settled case is not in the attention index.
    let weekly = settings();
    let early = h.gateway.reconcile(&weekly, std::time::Instant::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(early.found, 0, "{early:?}");
    assert!(!matches_sandbox(&h, &watched).await);

    // Due: the sweep finds it.
    let s = ReconcileSettings { ogs_check_after: Duration::ZERO, ..settings() };
    let summary = h.gateway.reconcile(&s, std::time::Instant::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!((summary.found, summary.changed), (1, 1), "only the case under ongoing screening: {summary:?}");
    assert!(matches_sandbox(&h, &watched).await);
    let case = stored(&h.store, &watched).await;
    assert_eq!(case.suggestion.map(|s| s.as_str()), Some("SUGGEST_TO_REJECT"));
    assert_eq!(reconciled_events(&h.store, &watched).await, 2, "the first settling, then the sweep's change");
    drop_table(&h).await;
}

#[tokio::test]
async fn the_sweep_takes_a_bounded_number_of_ongoing_cases_per_run_oldest_first() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = create_cases(&h, 3).await;
    wait_screened(&h, &ids).await;
    h.gateway.reconcile(&settings(), std::time::Instant::now() + Duration::from_secs(60)).await.unwrap();
    // Turned on in order: ids[0] has the oldest check.
    for id in &ids {
        h.gateway.set_ogs(*id, true, gateway_cabital::Deadline::NONE).await.unwrap();
    }
    let mut checked_at = Vec::new();
    for id in &ids {
        checked_at.push(stored(&h.store, id).await.ogs_checked_at.unwrap());
    }

    let s = ReconcileSettings { ogs_check_after: Duration::ZERO, ogs_batch: 2, ..settings() };
    let first = h.gateway.reconcile(&s, std::time::Instant::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!((first.found, first.unchanged, first.changed), (2, 2, 0), "{first:?}");
    let mut after = Vec::new();
    for id in &ids {
        after.push(stored(&h.store, id).await.ogs_checked_at.unwrap());
    }
    assert!(after[0] > checked_at[0] && after[1] > checked_at[1], "the two oldest were checked");
    assert_eq!(after[2], checked_at[2], "the third waits for the next run");

    // Next run: the one left out is now the oldest.
    let second = h.gateway.reconcile(&s, std::time::Instant::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(second.found, 2, "{second:?}");
    assert!(stored(&h.store, &ids[2]).await.ogs_checked_at.unwrap() > checked_at[2]);
    for id in &ids {
        assert_eq!(reconciled_events(&h.store, id).await, 1, "an unchanged check records no event");
    }
    drop_table(&h).await;
}
