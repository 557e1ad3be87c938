//! The sandbox's own webhook deliveries (signed by the sandbox, posted over HTTP, retried
//! on its schedule) reach the real handler through a small HTTP server on 127.0.0.1:0
//! that turns each request into the API Gateway v2 event API Gateway would make.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::extract::Request;
use axum::response::Response;
use common::*;
use gateway_cabital::{CaseSystemId, Suggestion};
use gateway_sandbox::Faults;
use gateway_support::{Harness, harness};
use gateway_webhook::App;

/// The receiver: answers 500 to the first `fail_first` requests without passing them
/// on, then hands each to the function.
struct Receiver {
    addr: SocketAddr,
    requests: Arc<AtomicU32>,
}

async fn receiver(app: App, fail_first: u32) -> Receiver {
    let app = Arc::new(app);
    let requests = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&requests);
    let router = axum::Router::new().fallback(move |request: Request| {
        let app = Arc::clone(&app);
        let seen = counter.fetch_add(1, Ordering::SeqCst);
        async move { relay_or_fail(&app, request, seen < fail_first).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Receiver { addr, requests }
}

/// A relay that can fail: the function's answer, or a 500 as if it were down.
async fn relay_or_fail(app: &App, request: Request, fail: bool) -> Response {
    if fail {
        return Response::builder().status(500).body(AxumBody::from("down for a moment")).unwrap();
    }
    relay(app, request).await
}

fn point_sandbox_at(h: &Harness, receiver: &Receiver) {
    let url = format!("http://{}{PATH}", receiver.addr).parse().unwrap();
    h.sandbox.set_webhook_url(Some(url)).unwrap();
}

/// Polls (bounded) until the sandbox has had a 2xx for each of `notifications` deliveries
/// of the case, and the case is recorded with a suggestion and no pending refresh.
async fn settled(h: &Harness, id: &CaseSystemId, successes: usize) -> gateway_store::CaseRecord {
    for _ in 0..400 {
        let ok = h.sandbox.deliveries().iter().filter(|d| d.case_system_id == id.uuid() && d.success).count();
        if ok >= successes
            && let Some(case) = case(h, id).await
            && case.suggestion.is_some()
            && !case.needs_refresh
        {
            return case;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "not settled: deliveries {:#?}, case {:#?}",
        h.sandbox.deliveries(),
        h.store.get_case(id).await.map(|c| c.map(|c| (c.suggestion, c.needs_refresh)))
    );
}

#[tokio::test]
async fn the_sandboxs_own_webhook_is_accepted_end_to_end() {
    let h = harness(|_| {}).await;
    let receiver = receiver(app(&h), 0).await;
    point_sandbox_at(&h, &receiver);

    let (id, _) = create_case(&h, "Ivan Blocklisted").await;
    let case = settled(&h, &id, 1).await;

    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject));
    assert_eq!(case.suggestion_comment.as_ref().map(|c| c.expose().as_str()), Some("Matched list Sandbox OFAC SDN"));
    let deliveries = h.sandbox.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    assert_eq!(deliveries[0].status_code, Some(200), "{deliveries:#?}");
    let events = timeline(&h, &id).await;
    assert_eq!(webhook_events(&events), [(1, Suggestion::SuggestToReject)], "{:?}", kinds(&events));
    match events.iter().find(|e| e.kind() == gateway_store::EventKind::Webhook).map(|e| &e.detail) {
        Some(gateway_store::EventDetail::Webhook { body, .. }) => {
            assert_eq!(body.expose(), &deliveries[0].body, "the body is kept exactly as the sandbox sent it")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_sandboxs_retries_after_5xx_make_exactly_one_event() {
    let h = harness(|c| c.time_factor = 0.0001).await; // retries after 30 ms, 360 ms, 1.8 s, 6.5 s
    let receiver = receiver(app(&h), 2).await;
    point_sandbox_at(&h, &receiver);

    let (id, _) = create_case(&h, "Ivan Blocklisted").await;
    let case = settled(&h, &id, 1).await;
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject));

    let attempts: Vec<(u32, Option<u16>, bool)> =
        h.sandbox.deliveries().iter().map(|d| (d.attempt, d.status_code, d.success)).collect();
    assert_eq!(attempts, [(1, Some(500), false), (2, Some(500), false), (3, Some(200), true)]);
    let events = timeline(&h, &id).await;
    // Only the stored delivery counts: the two refused before the function are not.
    assert_eq!(webhook_events(&events), [(1, Suggestion::SuggestToReject)], "{:?}", kinds(&events));
    assert!(refreshed(&events).len() <= 1, "{:?}", kinds(&events));
}

#[tokio::test]
async fn the_sandboxs_duplicate_deliveries_make_one_event_counted_once_per_signature() {
    // The sandbox sends every notification three times (its duplicate fault): three
    // deliveries of one body reach the function, which keeps one event. Copies signed
    // in the same second carry the same signature: exact repeats, counted once.
    let h = harness(|c| c.faults = Faults { duplicate_webhooks: 2, ..Faults::default() }).await;
    let receiver = receiver(app(&h), 0).await;
    point_sandbox_at(&h, &receiver);

    let (id, _) = create_case(&h, "Ivan Blocklisted").await;
    settled(&h, &id, 3).await;
    let signatures: std::collections::BTreeSet<_> =
        h.sandbox.deliveries().iter().filter(|d| d.success).map(|d| d.access_timestamp).collect();
    let events = timeline(&h, &id).await;
    let counted = signatures.len() as u32;
    assert_eq!(webhook_events(&events), [(counted, Suggestion::SuggestToReject)], "{:?}", kinds(&events));
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 3);
}
