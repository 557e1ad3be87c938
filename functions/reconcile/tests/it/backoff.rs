//! Items the reconciler cannot settle back off: listed on one run, not on the next,
//! listed again after their backoff (which doubles), and due at once again when
//! something writes them.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use gateway_cabital::{ExternalCaseId, Pii, Suggestion};
use gateway_service::{ReconcileSettings, request_hash};
use gateway_store::{AttentionTarget, ExtState, Reservation, WebhookReceipt};
use time::OffsetDateTime;
use uuid::Uuid;

/// Runs every `PERIOD`: a first backoff is two periods less half a period.
const PERIOD: Duration = Duration::from_secs(2);

fn every_period() -> ReconcileSettings {
    ReconcileSettings { schedule_period: PERIOD, ..settings() }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn webhooks_lost(cfg: &mut gateway_sandbox::SandboxConfig) {
    cfg.webhook_url = None;
}

#[tokio::test]
async fn an_unknown_creation_without_its_case_is_listed_then_backs_off_then_is_listed_again() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ext = ExternalCaseId::parse(&format!("bo-{}", &Uuid::new_v4().simple().to_string()[..20])).unwrap();
    let now = OffsetDateTime::now_utc();
    let Reservation::Reserved { token } =
        h.store.reserve_external_id(&ext, &request_hash(b"{}"), &Pii("{}".to_owned()), now).await.unwrap()
    else {
        panic!("a fresh id")
    };
    h.store.mark_unknown(&ext, token, now).await.unwrap();
    let target = AttentionTarget::External(ext.clone());
    let s = every_period();

    let first = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!((first.found, first.backed_off, first.due_not_checked), (1, 1, 0), "{first:?}");
    assert_eq!(h.store.backoff_attempts(&target).await.unwrap(), 1);
    let second = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!((second.found, second.due_not_checked), (0, 0), "backing off: {second:?}");

    // Two periods later (one run skipped), it is tried again, and waits twice as long.
    tokio::time::sleep(PERIOD * 2).await;
    let third = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!((third.found, third.backed_off), (1, 1), "{third:?}");
    assert_eq!(h.store.backoff_attempts(&target).await.unwrap(), 2);
    tokio::time::sleep(PERIOD * 2).await;
    let fourth = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!(fourth.found, 0, "four periods this time: {fourth:?}");

    // Never dropped: still unknown, still in the index.
    let record = h.store.get_external(&ext).await.unwrap().unwrap();
    assert_eq!(record.state, ExtState::Unknown);
    assert!(record.attention.is_some());
    drop_table(&h).await;
}

#[tokio::test]
async fn a_case_cabital_answers_404_for_backs_off_and_a_webhook_makes_it_due_at_once() {
    let h = gateway_support::harness(webhooks_lost).await;
    let ghost = crate::failures::record_unknown_to_cabital(&h.store).await;
    let target = AttentionTarget::Case(ghost);
    let s = every_period();

    let first = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!((first.found, first.failed_for_good, first.backed_off), (1, 1, 1), "{first:?}");
    let second = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!(second.found, 0, "backing off: {second:?}");
    tokio::time::sleep(PERIOD * 2).await;
    let third = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!((third.found, third.failed, third.backed_off), (1, 1, 1), "{third:?}");
    assert_eq!(h.store.backoff_attempts(&target).await.unwrap(), 2);
    let gets = h.sandbox.stats().requests.get("GET /api/v1/cases/{caseSystemId}").copied().unwrap_or(0);
    assert_eq!(gets, 2, "asked about on the first and the third run only");

    // A webhook names it: due at once, whatever its backoff, and its count starts over.
    let case = stored(&h.store, &ghost).await;
    let body = format!(
        r#"{{"caseSystemId":"{ghost}","caseSuggestion":"SUGGEST_TO_ACCEPT","externalCaseId":"{}"}}"#,
        case.external_case_id
    );
    let receipt = WebhookReceipt {
        notice: None,
        case_system_id: ghost,
        external_case_id: case.external_case_id.clone(),
        suggestion: Some(Suggestion::SuggestToAccept),
        suggestion_comment: None,
        body_sha256: request_hash(body.as_bytes()),
        body: Pii(body),
    };
    h.store.record_webhook(&receipt, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(h.store.backoff_attempts(&target).await.unwrap(), 0);
    let after = h.gateway.reconcile(&s, deadline()).await.unwrap();
    assert_eq!((after.found, after.failed, after.backed_off), (1, 1, 1), "due at once: {after:?}");
    assert_eq!(h.store.backoff_attempts(&target).await.unwrap(), 1);
    drop_table(&h).await;
}
