//! An account without Zero Footprint: a created case gets no suggestion. The reconciler
//! asks about it until `no_suggestion_give_up` after its creation, then stops, reports
//! it once (event, view, metric, warning) and never again; a suggestion that comes
//! later clears it.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use gateway_sandbox::{Suggestion as SandboxSuggestion, SuggestionChange};
use gateway_service::{ReconcileSettings, TimelineQuery};
use gateway_store::{CaseStatus, EventKind, RemoteCheck};

fn give_up_after(secs: u64) -> ReconcileSettings {
    ReconcileSettings { no_suggestion_give_up: Duration::from_secs(secs), ..settings() }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

#[tokio::test]
async fn a_case_without_suggestion_is_given_up_once_and_cleared_by_a_later_suggestion() {
    let h = gateway_support::harness(|c| c.no_screening = true).await;
    let ids = create_cases(&h, 1).await;
    let id = ids[0];
    assert_eq!(stored(&h.store, &id).await.status, CaseStatus::AwaitingSuggestion);

    // Before the give-up time: asked about, left awaiting.
    let early = h.gateway.reconcile(&give_up_after(3600), deadline()).await.unwrap();
    assert_eq!((early.checked, early.no_suggestion_given_up), (1, 0), "{early:?}");
    let case = stored(&h.store, &id).await;
    assert!(case.no_suggestion_since.is_none() && case.attention.is_some(), "{case:?}");

    // After it: given up, out of the awaiting index, one event, shown on the case.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let run = h.gateway.reconcile(&give_up_after(1), deadline()).await.unwrap();
    assert_eq!((run.checked, run.no_suggestion_given_up), (1, 1), "{run:?}");
    let case = stored(&h.store, &id).await;
    assert!(case.no_suggestion_since.is_some(), "{case:?}");
    assert!(case.attention.is_none(), "out of the awaiting index: {case:?}");
    let overdue = |kinds: Vec<EventKind>| kinds.into_iter().filter(|k| *k == EventKind::SuggestionOverdue).count();
    assert_eq!(overdue(event_kinds(&h.store, &id).await), 1);
    let view = h.gateway.get_case(id, TimelineQuery::default(), gateway_cabital::Deadline::NONE).await.unwrap();
    let shown = serde_json::to_value(&view.case).unwrap();
    assert_eq!(shown["attention"]["reason"], "no_suggestion", "{shown}");
    assert!(shown["attention"]["since"].is_string(), "{shown}");
    let last = view.timeline.last().unwrap();
    assert_eq!(last.kind, "SUGGESTION_OVERDUE");
    assert!(last.details["waitedSecs"].as_u64().is_some_and(|s| s >= 1), "{:?}", last.details);

    // Reported once: the next run does not find it, nor report it again.
    let again = h.gateway.reconcile(&give_up_after(1), deadline()).await.unwrap();
    assert_eq!((again.found, again.no_suggestion_given_up), (0, 0), "{again:?}");
    assert_eq!(overdue(event_kinds(&h.store, &id).await), 1);
    // A live read that still finds no suggestion keeps it given up (and out of the index).
    h.gateway.refresh(id, RemoteCheck::Refreshed, gateway_cabital::Deadline::NONE).await.unwrap();
    let case = stored(&h.store, &id).await;
    assert!(case.no_suggestion_since.is_some() && case.attention.is_none(), "{case:?}");

    // Cabital screens it later (no webhook here): a live GET brings it, and clears it.
    let change = SuggestionChange { suggestion: SandboxSuggestion::SuggestToReject, comment: None, notify: false };
    h.sandbox.set_suggestion(id.uuid(), change).unwrap();
    let live = TimelineQuery { live: true, ..TimelineQuery::default() };
    let view = h.gateway.get_case(id, live, gateway_cabital::Deadline::NONE).await.unwrap();
    assert_eq!(view.live_changed, Some(true));
    let shown = serde_json::to_value(&view.case).unwrap();
    assert!(shown.get("attention").is_none(), "{shown}");
    let case = stored(&h.store, &id).await;
    assert_eq!(case.status, CaseStatus::Suggested);
    assert!(case.no_suggestion_since.is_none() && case.attention.is_none(), "{case:?}");
    drop_table(&h).await;
}

#[tokio::test]
async fn a_case_with_a_suggestion_is_never_given_up() {
    // Screened, but the webhook is lost: the reconciler finds the suggestion instead.
    let h = gateway_support::harness(|c| {
        c.webhook_url = None;
        c.screening_delay_ms = 50;
    })
    .await;
    let ids = create_cases(&h, 1).await;
    wait_screened(&h, &ids).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let run = h.gateway.reconcile(&give_up_after(1), deadline()).await.unwrap();
    assert_eq!((run.changed, run.no_suggestion_given_up), (1, 0), "{run:?}");
    assert!(stored(&h.store, &ids[0]).await.no_suggestion_since.is_none());
    drop_table(&h).await;
}

/// Log output, shared with the subscriber writing it.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_give_up_is_one_warning_with_the_cases_ids_and_no_personal_data() {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let h = gateway_support::harness(|c| c.no_screening = true).await;
    let ids = create_cases(&h, 1).await;
    let ext = stored(&h.store, &ids[0]).await.external_case_id;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(move || writer.clone())
        .finish();
    let guard = subscriber.set_default(); // this test's thread (a current-thread runtime)
    let run = h.gateway.reconcile(&give_up_after(1), deadline()).await.unwrap();
    let again = h.gateway.reconcile(&give_up_after(1), deadline()).await.unwrap();
    drop(guard);
    assert_eq!((run.no_suggestion_given_up, again.no_suggestion_given_up), (1, 0));

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with("no suggestion from Cabital")))
        .collect();
    assert_eq!(lines.len(), 1, "reported once: {text}");
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(lines[0]["case_system_id"], ids[0].to_string());
    assert_eq!(lines[0]["external_case_id"], ext.as_str());
    for personal in [name(0).as_str(), "1990-03-04", "FEMALE", "JPN", "HKG"] {
        assert!(!gateway_support::carries(&text, personal), "{personal} in the logs: {text}");
    }
    drop_table(&h).await;
}
