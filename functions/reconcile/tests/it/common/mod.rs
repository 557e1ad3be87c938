//! Shared by the reconcile tests: settings, the Lambda event from the fixture, cases
//! created through the gateway, and what the table and the sandbox say about them.

#![allow(dead_code)]

pub mod seed;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use gateway_cabital::CaseSystemId;
use gateway_service::ReconcileSettings;
use gateway_store::{CaseRecord, EventKind, Store, TimelineOrder};
use gateway_support::Harness;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

/// Warnings and errors to the test's captured output (shown when it fails): why a case
/// failed or was abandoned.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,gateway_service=info"))
        .with_ansi(false)
        .with_test_writer()
        .try_init();
}

/// Settings that make every awaiting case due at once, with no grace for refreshes.
pub fn settings() -> ReconcileSettings {
    init_logs();
    ReconcileSettings {
        stale_after: Duration::ZERO,
        refresh_grace: Duration::ZERO,
        rate_per_sec: 200,
        deadline_margin: Duration::from_millis(500),
        ..ReconcileSettings::default()
    }
}

/// The scheduled event from `events/schedule.json`, with a context whose deadline is
/// `budget` from now (epoch milliseconds, as the runtime gives it).
pub fn scheduled_event(budget: Duration) -> LambdaEvent<EventBridgeEvent<Value>> {
    let path = format!("{}/events/schedule.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let payload: EventBridgeEvent<Value> = serde_json::from_str(&text).unwrap();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut context = Context::default();
    context.request_id = format!("test-{}", uuid::Uuid::new_v4());
    context.deadline = now_ms + budget.as_millis() as u64;
    LambdaEvent::new(payload, context)
}

/// A valid create body; the sandbox's screening of `full_name` decides the suggestion.
pub fn case_body(external_case_id: &str, full_name: &str) -> Value {
    json!({
        "externalCaseId": external_case_id,
        "screenType": "INDIVIDUAL",
        "fullName": full_name,
        "individualInfo": {"gender": "FEMALE", "dob": "1990-03-04", "nationality": "JPN", "residentialCountry": "HKG"},
        "organizationInfo": {}
    })
}

/// A name whose screening gives one of the three suggestions, by `n`.
pub fn name(n: usize) -> String {
    match n % 3 {
        0 => format!("Jane Doe {n}"),
        1 => format!("Sanctioned Trader {n}"),
        _ => format!("Unclear Person {n}"),
    }
}

/// Creates `count` cases through the gateway (as the cases API would) and returns their ids.
pub async fn create_cases(h: &Harness, count: usize) -> Vec<CaseSystemId> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let ext = format!("rc-{}-{n}", &run[..12]);
        let created = h.gateway.create_case(&case_body(&ext, &name(n)), gateway_cabital::Deadline::NONE).await.unwrap();
        ids.push(created.case_system_id().unwrap());
    }
    ids
}

/// Waits until the sandbox has screened every case (each has a suggestion there).
pub async fn wait_screened(h: &Harness, ids: &[CaseSystemId]) {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = ids
            .iter()
            .filter(|id| h.sandbox.case(id.uuid()).is_none_or(|c| c.screening_pending || c.case.suggestion.is_none()))
            .count();
        if pending == 0 {
            return;
        }
        assert!(Instant::now() < give_up, "{pending} cases still unscreened at the sandbox after a minute");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The case as stored.
pub async fn stored(store: &Store, id: &CaseSystemId) -> CaseRecord {
    store.get_case(id).await.unwrap().unwrap_or_else(|| panic!("case {id} is not stored"))
}

/// The kinds of the case's events, oldest first.
pub async fn event_kinds(store: &Store, id: &CaseSystemId) -> Vec<EventKind> {
    let mut kinds = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.timeline(id, TimelineOrder::Oldest, 100, cursor.as_deref()).await.unwrap();
        kinds.extend(page.events.iter().map(|e| e.kind()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return kinds,
        }
    }
}

/// How many RECONCILED events the case has.
pub async fn reconciled_events(store: &Store, id: &CaseSystemId) -> usize {
    event_kinds(store, id).await.into_iter().filter(|k| *k == EventKind::Reconciled).count()
}

/// Whether the stored case says what the sandbox says (suggestion, its comment, ogs).
pub async fn matches_sandbox(h: &Harness, id: &CaseSystemId) -> bool {
    let remote = h.sandbox.case(id.uuid()).unwrap_or_else(|| panic!("case {id} is not at the sandbox")).case;
    let local = stored(&h.store, id).await;
    local.suggestion.map(|s| s.as_str()) == remote.suggestion.map(|s| s.as_wire())
        && local.suggestion_comment.as_ref().map(|c| c.expose().as_str()) == remote.suggestion_comment.as_deref()
        && local.ogs == remote.ogs
}

/// Asserts that the stored case is either still awaiting or says what the sandbox
/// says: never a suggestion the sandbox did not give.
pub async fn assert_not_wrong(h: &Harness, id: &CaseSystemId) {
    let local = stored(&h.store, id).await;
    if local.suggestion.is_some() {
        assert!(matches_sandbox(h, id).await, "case {id} holds a state the sandbox does not: {local:?}");
    }
}

/// Deletes the test's table: moto keeps every table in memory for its whole life, and a
/// large moto stalls (Python's garbage collector walks it all) for longer than the
/// store's timeouts. Call at the end of a test; a failed test keeps its table to look at.
pub async fn drop_table(h: &Harness) {
    let deleted = h.store.client().delete_table().table_name(h.store.table_name()).send().await;
    if let Err(e) = deleted {
        eprintln!("could not delete table {}: {e:?}", h.store.table_name());
    }
}
