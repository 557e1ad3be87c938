//! The reconciler stops before the invocation's deadline, and the next run finishes.

use crate::common;

use std::time::Duration;

use common::*;
use gateway_reconcile::{App, handle};
use gateway_sandbox::Faults;
use gateway_service::ReconcileSettings;

fn webhooks_lost(cfg: &mut gateway_sandbox::SandboxConfig) {
    cfg.webhook_url = None;
    cfg.screening_delay_ms = 50;
}

#[tokio::test]
async fn a_deadline_shorter_than_the_work_stops_the_run_and_the_next_run_finishes() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = create_cases(&h, 200).await;
    wait_screened(&h, &ids).await;

    // 20 calls a second for 2 s (less the margin) cannot check 200 cases.
    let tight = ReconcileSettings { rate_per_sec: 20, deadline_margin: Duration::from_millis(500), ..settings() };
    let app = App { gateway: h.gateway.clone(), settings: tight };
    let first = handle(&app, scheduled_event(Duration::from_secs(2))).await.unwrap();
    assert_eq!(first.found, ids.len(), "{first:?}");
    assert!(first.skipped_for_time > 0, "{first:?}");
    assert!(first.checked < ids.len(), "{first:?}");
    assert_eq!(first.checked + first.failed + first.skipped_for_time, first.found, "{first:?}");
    assert_eq!(first.failed, 0, "{first:?}");
    let mut settled = 0;
    for id in &ids {
        assert_not_wrong(&h, id).await;
        settled += usize::from(matches_sandbox(&h, id).await);
    }
    // A call abandoned at the deadline may still have had its write applied (counted
    // as skipped, settled all the same): never more than that.
    assert!(
        first.changed <= settled && settled <= first.changed + first.skipped_for_time,
        "settled {settled}: {first:?}"
    );
    // What the run left is reported as due but not checked: each case is either
    // settled or still due (a write abandoned at the deadline may land after the count).
    assert!(first.due_not_checked > 0 && first.due_not_checked <= first.skipped_for_time, "{first:?}");
    assert!(settled + first.due_not_checked >= ids.len(), "settled {settled}: {first:?}");

    // The next run, with time enough, finishes the rest and leaves the settled alone.
    let app = App { gateway: h.gateway.clone(), settings: settings() };
    let second = handle(&app, scheduled_event(Duration::from_secs(120))).await.unwrap();
    assert_eq!(second.found, ids.len() - settled, "only what is left: {second:?}");
    assert_eq!((second.changed, second.skipped_for_time, second.failed), (second.found, 0, 0), "{second:?}");
    assert_eq!(second.due_not_checked, 0, "{second:?}");
    for id in &ids {
        assert!(matches_sandbox(&h, id).await, "case {id}");
        assert_eq!(reconciled_events(&h.store, id).await, 1, "case {id}");
    }
    drop_table(&h).await;
}

#[tokio::test]
async fn calls_still_in_flight_at_the_deadline_are_abandoned_not_waited_for() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = create_cases(&h, 5).await;
    wait_screened(&h, &ids).await;
    // Cabital answers far later than the invocation lives (and than the client's own
    // timeout, so each call would go through all its retries).
    h.sandbox.set_faults(Faults { latency_ms: 10_000, ..Faults::default() }).unwrap();

    let s = ReconcileSettings { deadline_margin: Duration::from_secs(1), ..settings() };
    let app = App { gateway: h.gateway.clone(), settings: s };
    let started = std::time::Instant::now();
    let summary = handle(&app, scheduled_event(Duration::from_secs(3))).await.unwrap();
    let took = started.elapsed();

    // Every call was started, none could finish: all are left for the next run, none
    // is counted as failed (nothing failed; the run ran out of time).
    assert_eq!(summary.found, 5, "{summary:?}");
    assert_eq!((summary.checked, summary.failed, summary.skipped_for_time), (0, 0, 5), "{summary:?}; took {took:?}");
    for id in &ids {
        assert!(stored(&h.store, id).await.suggestion.is_none());
    }
    drop_table(&h).await;
}
