//! Cabital's silences, settled by the sandbox's own signed webhook through the real
//! handler: a create answered without the case's id (an empty 201) leaves the
//! reservation UNKNOWN until the webhook links it; a case given up for want of a
//! suggestion is cleared when a later screening's webhook comes.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use common::*;
use gateway_cabital::{ExternalCaseId, Suggestion};
use gateway_sandbox::CreateAnswerMode;
use gateway_service::CreateOutcome;
use gateway_store::ExtState;
use gateway_webhook::App;
use serde_json::json;

/// Hands every request to the function, as API Gateway would.
async fn receiver(app: App) -> std::net::SocketAddr {
    let app = Arc::new(app);
    let router = axum::Router::new().fallback(move |request: Request| {
        let app = Arc::clone(&app);
        async move { relay(&app, request).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[tokio::test]
async fn an_unknown_creation_from_an_empty_201_is_linked_by_the_sandboxs_signed_webhook() {
    // The webhook comes a little after the create's answer, as Cabital's does.
    let h = gateway_support::harness(|c| {
        c.create_answer = CreateAnswerMode::Empty;
        c.webhook_delay_ms = 300;
    })
    .await;
    let addr = receiver(app(&h)).await;
    h.sandbox.set_webhook_url(Some(format!("http://{addr}{PATH}").parse().unwrap())).unwrap();

    let ext = format!("wh-unknown-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let body = json!({
        "externalCaseId": ext,
        "screenType": "INDIVIDUAL",
        "fullName": "Ivan Blocklisted",
        "individualInfo": {"gender": "MALE", "dob": "1980-01-01", "nationality": "JPN", "residentialCountry": "HKG"},
        "organizationInfo": {}
    });
    let outcome = h.gateway.create_case(&body, gateway_cabital::Deadline::NONE).await.unwrap();
    assert!(matches!(outcome, CreateOutcome::AwaitingCaseId(_)), "{outcome:?}");
    let parsed = ExternalCaseId::parse(&ext).unwrap();
    let first = h.store.get_external(&parsed).await.unwrap().unwrap();
    assert_eq!((first.state, first.case_system_id), (ExtState::Unknown, None));

    let at_cabital = h.sandbox.cases_by_external_id(&ext);
    assert_eq!(at_cabital.len(), 1);
    let id = at_cabital[0].case.case_system_id;

    // Linked by the webhook: the reservation is CREATED with Cabital's id, and the case
    // is recorded with its CREATED event and, once refreshed, its suggestion.
    let mut linked = None;
    for _ in 0..400 {
        let rec = h.store.get_external(&parsed).await.unwrap().unwrap();
        let case = h.store.get_case(&gateway_cabital::CaseSystemId::new(id)).await.unwrap();
        if rec.state == ExtState::Created
            && let Some(case) = case
            && case.suggestion.is_some()
            && !case.needs_refresh
        {
            linked = Some((rec, case));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (rec, case) = linked.unwrap_or_else(|| panic!("not linked: deliveries {:#?}", h.sandbox.deliveries()));
    assert_eq!(rec.case_system_id.map(|c| c.uuid()), Some(id));
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject));
    assert_eq!(case.origin, gateway_store::Origin::Api);
    let events = timeline(&h, &case.case_system_id).await;
    assert!(events.iter().any(|e| e.kind() == gateway_store::EventKind::Created), "{:?}", kinds(&events));

    // The same create again now answers the case, and nothing was sent twice.
    let again = h.gateway.create_case(&body, gateway_cabital::Deadline::NONE).await.unwrap();
    assert_eq!(again.case_system_id().map(|c| c.uuid()), Some(id));
    assert_eq!(h.sandbox.stats().creates, 1);
}

/// A case given up for want of a suggestion (no screening on create) is cleared by the
/// sandbox's signed webhook when Cabital screens it later.
#[tokio::test]
async fn a_case_given_up_without_suggestion_is_cleared_by_a_later_signed_webhook() {
    let h = gateway_support::harness(|c| c.no_screening = true).await;
    let addr = receiver(app(&h)).await;
    h.sandbox.set_webhook_url(Some(format!("http://{addr}{PATH}").parse().unwrap())).unwrap();
    let (id, _) = create_case(&h, "John Doe").await;
    assert!(h.sandbox.deliveries().is_empty(), "no screening, no webhook");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let settings = gateway_service::ReconcileSettings {
        stale_after: Duration::ZERO,
        no_suggestion_give_up: Duration::from_secs(1),
        ..gateway_service::ReconcileSettings::default()
    };
    let run = h.gateway.reconcile(&settings, std::time::Instant::now() + Duration::from_secs(30)).await.unwrap();
    assert_eq!(run.no_suggestion_given_up, 1, "{run:?}");
    assert!(case(&h, &id).await.unwrap().no_suggestion_since.is_some());

    let change = gateway_sandbox::SuggestionChange {
        suggestion: gateway_sandbox::Suggestion::SuggestToAccept,
        comment: None,
        notify: true,
    };
    h.sandbox.set_suggestion(id.uuid(), change).unwrap();
    for _ in 0..400 {
        if let Some(c) = case(&h, &id).await
            && c.suggestion.is_some()
            && !c.needs_refresh
        {
            assert!(c.no_suggestion_since.is_none(), "cleared: {c:?}");
            assert!(c.attention.is_none(), "suggested: nothing awaited");
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never suggested: deliveries {:#?}", h.sandbox.deliveries());
}
