//! The ongoing-screening sweep is sized by the population due and the schedule, and
//! what a run leaves due is reported (the `ReconcileDueNotChecked` metric).

use crate::common;
use common::seed;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use futures::StreamExt;
use gateway_cabital::{CaseSystemId, validate_new_case};
use gateway_service::ReconcileSettings;
use gateway_store::{ATTN_AT, ATTN_SHARD, OGS_CHECKED_AT, OGS_SHARD, format_time, shard_of};
use gateway_support::Harness;
use time::OffsetDateTime;

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

fn webhooks_lost(cfg: &mut gateway_sandbox::SandboxConfig) {
    cfg.webhook_url = None;
    cfg.screening_delay_ms = 50;
}

/// `count` cases, settled and under ongoing screening (at the sandbox and in the table).
async fn ogs_cases(h: &Harness, count: usize) -> Vec<CaseSystemId> {
    let ids = create_cases(h, count).await;
    wait_screened(h, &ids).await;
    h.gateway.reconcile(&settings(), deadline()).await.unwrap();
    for id in &ids {
        h.gateway.set_ogs(*id, true, gateway_cabital::Deadline::NONE).await.unwrap();
    }
    ids
}

/// Sets the cases' last ongoing-screening check `ago` (as if that long had passed).
async fn last_checked(h: &Harness, ids: &[CaseSystemId], ago: time::Duration) {
    let checked = format_time(OffsetDateTime::now_utc() - ago);
    for id in ids {
        h.store
            .client()
            .update_item()
            .table_name(h.store.table_name())
            .key("pk", AttributeValue::S(format!("CASE#{id}")))
            .key("sk", AttributeValue::S("CASE".into()))
            .update_expression("SET #at = :at")
            .expression_attribute_names("#at", OGS_CHECKED_AT)
            .expression_attribute_values(":at", AttributeValue::S(checked.clone()))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_run_takes_every_ongoing_case_due_however_many_beyond_the_old_fixed_batch_of_200() {
    // Not screened at the sandbox: each check is an unchanged, cheap update on moto.
    let h = gateway_support::harness(|cfg| {
        cfg.webhook_url = None;
        cfg.screening_delay_ms = 86_400_000;
    })
    .await;
    let count = 250;
    let today = OffsetDateTime::now_utc().date();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let bodies: Vec<_> = (0..count)
        .map(|n| validate_new_case(&case_body(&format!("og-{}-{n}", &run[..12]), &name(n)), today).unwrap())
        .collect();
    let at_cabital: Vec<_> = futures::stream::iter(&bodies)
        .map(|case| async {
            let created = h.gateway.cabital.create_case(case).await.unwrap().case().cloned().unwrap();
            h.gateway.cabital.ogs_on(created.case_system_id).await.unwrap();
            created
        })
        .buffered(8)
        .collect()
        .await;
    // Under ongoing screening, last checked eight days ago, in no other index.
    let eight_days_ago = format_time(OffsetDateTime::now_utc() - time::Duration::days(8));
    seed::seed_with(&h.store, &bodies[0], &at_cabital, |id, item| {
        item.insert("ogs".into(), AttributeValue::Bool(true));
        item.insert(OGS_SHARD.into(), AttributeValue::S(format!("OGS#{}", shard_of(id))));
        item.insert(OGS_CHECKED_AT.into(), AttributeValue::S(eight_days_ago.clone()));
        item.remove(ATTN_SHARD);
        item.remove(ATTN_AT);
    })
    .await;

    let summary = h.gateway.reconcile(&ReconcileSettings::default(), deadline()).await.unwrap();
    assert_eq!(
        (summary.found, summary.checked, summary.failed, summary.due_not_checked),
        (count, count, 0, 0),
        "{summary:?}"
    );
    assert!(summary.capacity >= 20 * 100, "20 a second for the run's time: {summary:?}");
    drop_table(&h).await;
}

#[tokio::test]
async fn a_run_takes_the_ongoing_cases_that_would_be_late_by_the_next_run() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = ogs_cases(&h, 3).await;
    // Last checked 55 minutes ago; checked every hour at most.
    last_checked(&h, &ids, time::Duration::minutes(55)).await;
    let hourly = |period| ReconcileSettings {
        ogs_check_after: Duration::from_secs(3600),
        schedule_period: period,
        ..settings()
    };

    // Runs every minute: the next run comes in time, nothing is due yet.
    let early = h.gateway.reconcile(&hourly(Duration::from_secs(60)), deadline()).await.unwrap();
    assert_eq!(early.found, 0, "{early:?}");
    // Runs every 10 minutes: the next run would come after the hour, so this one checks them.
    let run = h.gateway.reconcile(&hourly(Duration::from_secs(600)), deadline()).await.unwrap();
    assert_eq!((run.found, run.checked, run.due_not_checked), (ids.len(), ids.len(), 0), "{run:?}");
    drop_table(&h).await;
}

#[tokio::test]
async fn what_a_run_cannot_take_is_reported_as_due_but_not_checked_until_it_is() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = ogs_cases(&h, 5).await;

    // Every ongoing case is due (checked two hours ago, every hour at most); a run
    // takes 2 at most.
    last_checked(&h, &ids, time::Duration::hours(2)).await;
    let s = ReconcileSettings { ogs_check_after: Duration::from_secs(3600), ogs_batch: 2, ..settings() };
    let mut runs = Vec::new();
    for _ in 0..3 {
        let summary = h.gateway.reconcile(&s, deadline()).await.unwrap();
        runs.push((summary.checked, summary.due_not_checked));
    }
    assert_eq!(runs, [(2, 3), (2, 1), (1, 0)]);
    drop_table(&h).await;
}
