//! An invocation fails only for what a retry can fix (the table unreachable, Cabital
//! down for every check), never for one bad case.

use crate::common;

use std::time::Duration;

use common::*;
use gateway_cabital::{CaseSystemId, ExternalCaseId, Pii, ScreenType};
use gateway_reconcile::{App, handle};
use gateway_sandbox::Faults;
use gateway_service::{Gateway, ReconcileSettings, Settings};
use gateway_store::{CreatedCase, Reservation, Store};
use time::OffsetDateTime;
use uuid::Uuid;

fn webhooks_lost(cfg: &mut gateway_sandbox::SandboxConfig) {
    cfg.webhook_url = None;
    cfg.screening_delay_ms = 50;
}

/// Records a case the sandbox has never heard of, awaiting a suggestion.
pub(crate) async fn record_unknown_to_cabital(store: &Store) -> CaseSystemId {
    let ext = ExternalCaseId::parse(&format!("ghost-{}", &Uuid::new_v4().simple().to_string()[..16])).unwrap();
    let hash = "0".repeat(64);
    let now = OffsetDateTime::now_utc();
    let Reservation::Reserved { token } =
        store.reserve_external_id(&ext, &hash, &Pii("{}".to_owned()), now).await.unwrap()
    else {
        panic!("fresh id")
    };
    let id = CaseSystemId::new(Uuid::new_v4());
    let created = CreatedCase {
        case_system_id: id,
        external_case_id: ext.clone(),
        screen_type: ScreenType::Individual,
        submitted_json: Pii("{}".to_owned()),
        response_json: Pii("{}".to_owned()),
        suggestion: None,
        suggestion_comment: None,
        ogs: false,
    };
    store.record_created(&ext, token, &created, now).await.unwrap();
    id
}

#[tokio::test]
async fn a_case_cabital_does_not_know_fails_alone_and_the_invocation_succeeds() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = create_cases(&h, 3).await;
    wait_screened(&h, &ids).await;
    let ghost = record_unknown_to_cabital(&h.store).await;

    // Runs every 2 s, so that the bad case's backoff (two runs) passes within the test.
    let period = Duration::from_secs(2);
    let app = App { gateway: h.gateway.clone(), settings: ReconcileSettings { schedule_period: period, ..settings() } };
    let summary = handle(&app, scheduled_event(Duration::from_secs(60))).await.unwrap();
    assert_eq!((summary.found, summary.changed, summary.failed, summary.backed_off), (4, 3, 1, 1), "{summary:?}");
    for id in &ids {
        assert!(matches_sandbox(&h, id).await);
    }
    let case = stored(&h.store, &ghost).await;
    assert!(case.attention.is_some(), "the bad case stays in the index for a person to see");
    assert_eq!(reconciled_events(&h.store, &ghost).await, 0);

    // Alone, it still does not fail the invocation: a retry cannot fix a 404. (It backs
    // off: not tried on the next run, tried again on the one after.)
    let next = handle(&app, scheduled_event(Duration::from_secs(60))).await.unwrap();
    assert_eq!(next.found, 0, "{next:?}");
    tokio::time::sleep(period * 2).await;
    let alone = handle(&app, scheduled_event(Duration::from_secs(60))).await.unwrap();
    assert_eq!((alone.found, alone.failed), (1, 1), "{alone:?}");
    drop_table(&h).await;
}

#[tokio::test]
async fn cabital_unavailable_for_every_check_fails_the_invocation_for_a_retry() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ids = create_cases(&h, 3).await;
    wait_screened(&h, &ids).await;
    h.sandbox.set_faults(Faults { error_rate_503: 1.0, ..Faults::default() }).unwrap();

    let app = App { gateway: h.gateway.clone(), settings: settings() };
    let result = handle(&app, scheduled_event(Duration::from_secs(60))).await;
    let error = result.expect_err("every check failed on 503: worth the schedule's retry");
    assert!(error.to_string().contains("retryable"), "{error}");

    // Back up: the retry settles everything.
    h.sandbox.set_faults(Faults::default()).unwrap();
    let summary = handle(&app, scheduled_event(Duration::from_secs(60))).await.unwrap();
    assert_eq!((summary.changed, summary.failed), (3, 0), "{summary:?}");
    drop_table(&h).await;
}

#[tokio::test]
async fn an_unreachable_table_fails_the_invocation() {
    let h = gateway_support::harness(webhooks_lost).await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let sdk = gateway_support::aws_config().await.into_builder().endpoint_url(format!("http://{closed}")).build();
    let table = Settings { table: "kyc-unreachable".into(), ..h.settings.clone() };
    let app = App { gateway: Gateway::new(&table, &sdk).await.unwrap(), settings: settings() };

    let result = handle(&app, scheduled_event(Duration::from_secs(60))).await;
    let error = result.expect_err("the table is unreachable: worth the schedule's retry");
    assert!(error.to_string().contains("could not list"), "{error}");
    drop_table(&h).await;
}
