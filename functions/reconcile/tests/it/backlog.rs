//! A backlog larger than one page of the index is settled in one run.

use crate::common;
use common::seed;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use gateway_cabital::{Case, validate_new_case};
use gateway_service::ReconcileSettings;
use gateway_store::MAX_INDEX_PAGE;
use time::OffsetDateTime;

#[tokio::test]
async fn more_awaiting_cases_than_one_index_page_are_all_checked_in_one_run() {
    // Cabital has not screened them yet: each check is an unchanged, cheap update on moto.
    let h = gateway_support::harness(|cfg| {
        cfg.webhook_url = None;
        cfg.screening_delay_ms = 86_400_000;
    })
    .await;
    let count = MAX_INDEX_PAGE + 150;
    let today = OffsetDateTime::now_utc().date();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let bodies: Vec<_> = (0..count)
        .map(|n| validate_new_case(&case_body(&format!("bl-{}-{n}", &run[..12]), &name(n)), today).unwrap())
        .collect();
    let at_cabital: Vec<Case> = futures::stream::iter(&bodies)
        .map(|case| h.gateway.cabital.create_case(case))
        .buffered(8)
        .map(|answer| answer.unwrap().case().cloned().unwrap())
        .collect()
        .await;
    seed::seed_awaiting(&h.store, &bodies[0], &at_cabital).await;

    let started = Instant::now();
    let summary = h.gateway.reconcile(&settings(), started + Duration::from_secs(600)).await.unwrap();
    assert_eq!(
        (summary.found, summary.checked, summary.unchanged, summary.failed, summary.skipped_for_time),
        (count, count, count, 0, 0),
        "{summary:?}"
    );
    let gets = h.sandbox.stats().requests.get("GET /api/v1/cases/{caseSystemId}").copied().unwrap_or(0);
    assert_eq!(gets, count as u64, "each case asked about once");

    // Each check was recorded, so a run due for everything not checked since the first
    // run began finds nothing.
    let s = ReconcileSettings { stale_after: started.elapsed(), ..settings() };
    let next = h.gateway.reconcile(&s, Instant::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(next.found, 0, "{next:?}");
    drop_table(&h).await;
}
