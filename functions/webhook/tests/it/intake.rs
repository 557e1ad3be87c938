//! Deliveries that are accepted, through the real handler, against moto and the sandbox:
//! repeats, concurrency, order, unknown cases, a failing refresh, a failing table.

use crate::common;

use common::*;
use gateway_cabital::{CaseSystemId, Suggestion};
use gateway_sandbox::{Faults, SuggestionChange};
use gateway_service::WebhookSettings;
use gateway_store::{AttentionPriority, CaseStatus, ChangedField, EventKind, Origin};
use gateway_support::{API_KEY, API_SECRET, harness};
use gateway_webhook::App;

const REJECT_COMMENT: &str = "Matched list Sandbox OFAC SDN";

#[tokio::test]
async fn the_same_body_five_times_is_one_event_delivered_five_times_and_one_state_change() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);

    let (mut answers, now) = (Vec::new(), now_unix());
    for i in 0..5 {
        // Each retry is signed anew, as Cabital's retries are: same body, new timestamp
        // (the same timestamp again would be the same signature: a replay).
        answers.push(deliver(&app, &signed_event_at(&body, now - i)).await);
    }
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 200, "delivery {i}: {}", a.text);
        assert_eq!(a.body["stored"], true);
        assert_eq!(a.body["deliveries"], i + 1, "{}", a.text);
        assert_eq!(a.body["duplicate"], i > 0, "{}", a.text);
        assert_eq!(a.body["caseKnown"], true, "{}", a.text);
    }
    assert_eq!(answers[0].body["refresh"], "changed");
    // A known body reads Cabital at most once a minute per case.
    assert_eq!(answers[1].body["refresh"], "unchanged");
    assert!(answers[2..].iter().all(|a| a.body["refresh"] == "skipped"), "{answers:?}");

    let events = timeline(&h, &id).await;
    assert_eq!(webhook_events(&events), [(5, Suggestion::SuggestToReject)], "{:?}", kinds(&events));
    let changes = refreshed(&events);
    assert_eq!(changes.len(), 1, "one state change: {:?}", kinds(&events));
    assert_eq!((changes[0].from_suggestion, changes[0].to_suggestion), (None, Some(Suggestion::SuggestToReject)));
    assert!(changes[0].changed.contains(&ChangedField::Suggestion));
    assert_eq!(kinds(&events), [EventKind::Created, EventKind::Webhook, EventKind::Refreshed]);

    let case = case(&h, &id).await.unwrap();
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject));
    assert_eq!(case.suggestion_comment.as_ref().map(|c| c.expose().as_str()), Some(REJECT_COMMENT));
    assert_eq!(case.status, CaseStatus::Suggested);
    assert!(case.needs_refresh, "the skipped reads are left to the reconciler");
    assert_eq!(case.origin, Origin::Api);
}

#[tokio::test]
async fn two_deliveries_of_one_body_at_the_same_moment_are_one_event() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    // Two signatures (the same one twice is a replay: see replay.rs).
    let now = now_unix();
    let (first, second) = (signed_event_at(&body, now), signed_event_at(&body, now - 1));

    let (a, b) = tokio::join!(deliver(&app, &first), deliver(&app, &second));
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.text, b.text);
    let mut counts = [a.body["deliveries"].as_u64(), b.body["deliveries"].as_u64()];
    counts.sort();
    assert_eq!(counts, [Some(1), Some(2)], "{} / {}", a.text, b.text);
    assert_ne!(a.body["duplicate"], b.body["duplicate"], "exactly one is the first");

    let events = timeline(&h, &id).await;
    assert_eq!(webhook_events(&events), [(2, Suggestion::SuggestToReject)], "{:?}", kinds(&events));
    assert_eq!(refreshed(&events).len(), 1, "{:?}", kinds(&events));
    let case = case(&h, &id).await.unwrap();
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject));
    assert!(!case.needs_refresh);
}

#[tokio::test]
async fn an_older_suggestion_retried_after_a_newer_one_does_not_overwrite_it() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "John Doe").await; // screened: accept, "No hit"
    let older = webhook_body(&id, &ext, "SUGGEST_TO_ACCEPT", "No hit");
    let now = now_unix();
    let a = deliver(&app, &signed_event_at(&older, now)).await;
    assert_eq!((a.status, a.body["refresh"].as_str()), (200, Some("changed")), "{}", a.text);
    assert_eq!(case(&h, &id).await.unwrap().suggestion, Some(Suggestion::SuggestToAccept));

    // Ongoing screening finds a hit later.
    let change = SuggestionChange {
        suggestion: gateway_sandbox::Suggestion::SuggestToReject,
        comment: Some("Matched list later".into()),
        notify: false,
    };
    h.sandbox.set_suggestion(id.uuid(), change).unwrap();
    let newer = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", "Matched list later");
    let b = deliver(&app, &signed_event(&newer)).await;
    assert_eq!((b.status, b.body["refresh"].as_str()), (200, Some("changed")), "{}", b.text);

    // Cabital's retry of the older body arrives last, signed anew.
    let c = deliver(&app, &signed_event_at(&older, now - 1)).await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!((c.body["duplicate"].as_bool(), c.body["refresh"].as_str()), (Some(true), Some("unchanged")));

    let case = case(&h, &id).await.unwrap();
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject), "the newer state stays");
    assert_eq!(case.suggestion_comment.as_ref().map(|c| c.expose().as_str()), Some("Matched list later"));
    let events = timeline(&h, &id).await;
    assert_eq!(webhook_events(&events), [(2, Suggestion::SuggestToAccept), (1, Suggestion::SuggestToReject)]);
    let changes: Vec<_> = refreshed(&events).iter().map(|c| (c.from_suggestion, c.to_suggestion)).collect();
    assert_eq!(
        changes,
        [
            (None, Some(Suggestion::SuggestToAccept)),
            (Some(Suggestion::SuggestToAccept), Some(Suggestion::SuggestToReject))
        ]
    );
}

#[tokio::test]
async fn an_older_body_arriving_first_still_gives_cabitals_current_state() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "John Doe").await; // screened: accept
    let change = SuggestionChange {
        suggestion: gateway_sandbox::Suggestion::SuggestToReject,
        comment: Some("Matched list later".into()),
        notify: false,
    };
    h.sandbox.set_suggestion(id.uuid(), change).unwrap();

    let a = deliver(&app, &signed_event(&webhook_body(&id, &ext, "SUGGEST_TO_ACCEPT", "No hit"))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let case = case(&h, &id).await.unwrap();
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject), "Cabital's GET decides, not the body");
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(1, Suggestion::SuggestToAccept)]);
}

#[tokio::test]
async fn a_case_known_to_cabital_but_not_to_us_is_stored_and_reported() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case_at_cabital_only(&h, "Mr Unclear").await; // screened: no suggestion
    assert!(case(&h, &id).await.is_none());

    let body = webhook_body(&id, &ext, "NO_SUGGESTION", "Possible match, needs review");
    let now = now_unix();
    let a = deliver(&app, &signed_event_at(&body, now)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["caseKnown"], false, "reported as a case we did not know: {}", a.text);
    assert_eq!(a.body["refresh"], "unchanged", "Cabital says what the webhook said: {}", a.text);

    let case = case(&h, &id).await.expect("the case is kept");
    assert_eq!(case.origin, Origin::Webhook);
    assert_eq!(case.external_case_id.as_str(), ext);
    assert_eq!(case.suggestion, Some(Suggestion::NoSuggestion));
    assert!(!case.needs_refresh, "Cabital's state was read");
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(1, Suggestion::NoSuggestion)]);

    // A repeat (signed anew) is counted on the same case, now known.
    let b = deliver(&app, &signed_event_at(&body, now - 1)).await;
    assert_eq!((b.status, b.body["caseKnown"].as_bool(), b.body["deliveries"].as_u64()), (200, Some(true), Some(2)));
}

#[tokio::test]
async fn a_case_unknown_everywhere_is_stored_reported_and_left_for_the_reconciler() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let id = CaseSystemId::new(uuid::Uuid::new_v4());
    let ext = new_external_id();
    let a = deliver(&app, &signed_event(&webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!((a.body["caseKnown"].as_bool(), a.body["refresh"].as_str()), (Some(false), Some("deferred")));

    let case = case(&h, &id).await.expect("the case is kept");
    assert_eq!(case.origin, Origin::Webhook);
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject), "from the webhook, for want of better");
    assert!(case.needs_refresh);
    assert_eq!(case.attention.map(|a| a.priority), Some(AttentionPriority::Urgent));
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(1, Suggestion::SuggestToReject)]);
}

#[tokio::test]
async fn cabital_answering_503_during_the_refresh_still_stores_and_answers_200() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    h.sandbox.set_faults(Faults { error_rate_503: 1.0, ..Faults::default() }).unwrap();

    let a = deliver(&app, &signed_event(&webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["refresh"], "deferred");
    assert!(h.sandbox.stats().injected_503 >= 1, "the refresh did ask Cabital");

    let case = case(&h, &id).await.unwrap();
    assert!(case.needs_refresh, "marked for the reconciler");
    assert_eq!(case.attention.map(|a| a.priority), Some(AttentionPriority::Urgent));
    assert_eq!(case.suggestion, None, "a webhook alone never sets a known case's state");
    let events = timeline(&h, &id).await;
    assert_eq!(webhook_events(&events), [(1, Suggestion::SuggestToReject)]);
    assert!(refreshed(&events).is_empty());
}

#[tokio::test]
async fn cabital_down_during_the_refresh_still_stores_and_answers_200() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    h.sandbox.shutdown().await;

    let a = deliver(&app, &signed_event(&webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["refresh"], "deferred");
    let case = h.store.get_case(&id).await.unwrap().unwrap();
    assert!(case.needs_refresh);
    let events = h.store.timeline(&id, gateway_store::TimelineOrder::Oldest, 50, None).await.unwrap().events;
    assert_eq!(webhook_events(&events), [(1, Suggestion::SuggestToReject)]);
}

/// The harness's gateway over another store: the same Cabital client and secret, so
/// that only the table fails.
fn app_over(h: &gateway_support::Harness, store: gateway_store::Store) -> App {
    App { gateway: gateway_service::Gateway { store, ..h.gateway.clone() }, ..app(h) }
}

#[tokio::test]
async fn a_table_that_does_not_exist_is_503_never_2xx() {
    let h = harness(|_| {}).await;
    let settings =
        gateway_service::Settings { table: format!("missing-{}", uuid::Uuid::new_v4()), ..h.settings.clone() };
    let app = App { gateway: gateway_support::gateway(&settings).await, ..app(&h) };
    let (id, ext) = (CaseSystemId::new(uuid::Uuid::new_v4()), new_external_id());

    let a = deliver(&app, &signed_event(&webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT))).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.code(), "store_unavailable");
    assert!(a.headers.contains_key(http::header::RETRY_AFTER), "Cabital is told to retry");
    assert!(!a.text.contains("missing-"), "a 5xx says nothing internal: {}", a.text);
}

#[tokio::test]
async fn dynamodb_unreachable_is_503_never_2xx() {
    let h = harness(|_| {}).await;
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sdk =
        gateway_support::aws_config().await.into_builder().endpoint_url(format!("http://127.0.0.1:{port}")).build();
    let unreachable = gateway_store::Store::new(gateway_store::dynamodb_client(&sdk).await, h.store.table_name());
    let app = app_over(&h, unreachable);
    let (id, ext) = (CaseSystemId::new(uuid::Uuid::new_v4()), new_external_id());

    let a = deliver(&app, &signed_event(&webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT))).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.code(), "store_unavailable");
    assert_eq!(table_items(&h).await, 0);
}

#[tokio::test]
async fn a_table_that_hangs_is_503_within_the_store_timeouts() {
    let h = harness(|_| {}).await;
    // A frozen table (as moto under SIGSTOP): connections are accepted, nothing answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let sdk =
        gateway_support::aws_config().await.into_builder().endpoint_url(format!("http://127.0.0.1:{port}")).build();
    let timeouts = gateway_store::StoreTimeouts {
        attempt: std::time::Duration::from_millis(300),
        operation: std::time::Duration::from_millis(900),
        ..gateway_store::StoreTimeouts::default()
    };
    let hung =
        gateway_store::Store::new(gateway_store::dynamodb_client_with(&sdk, timeouts).await, h.store.table_name());
    let app = app_over(&h, hung);
    let (id, ext) = (CaseSystemId::new(uuid::Uuid::new_v4()), new_external_id());

    let started = std::time::Instant::now();
    let a = deliver(&app, &signed_event(&webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT))).await;
    let took = started.elapsed();
    held.abort();
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.code(), "store_unavailable");
    // Well before a sender's own timeout (Cabital's sandbox waits 10 s), not the default 12 s.
    assert!(took < std::time::Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(table_items(&h).await, 0);
}

#[tokio::test]
async fn credentials_that_cannot_be_read_are_503_so_that_cabital_retries() {
    let h = harness(|_| {}).await;
    let mut settings = h.settings.clone();
    settings.cabital.secret_id = format!("no-such-secret-{}", uuid::Uuid::new_v4());
    let app = App { gateway: gateway_support::gateway(&settings).await, ..app(&h) };
    let (id, ext) = (CaseSystemId::new(uuid::Uuid::new_v4()), new_external_id());

    let a = deliver(&app, &signed_event(&webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT))).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.code(), "credentials_unavailable");
    assert_eq!(table_items(&h).await, 0);
}

#[tokio::test]
async fn a_base64_body_from_api_gateway_is_verified_over_its_decoded_bytes() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = (CaseSystemId::new(uuid::Uuid::new_v4()), new_external_id());
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let mut event: serde_json::Value = serde_json::from_str(&signed_event(&body)).unwrap();
    use base64::Engine as _;
    event["body"] = base64::engine::general_purpose::STANDARD.encode(&body).into();
    event["isBase64Encoded"] = true.into();

    let a = deliver(&app, &event.to_string()).await;
    assert_eq!(a.status, 200, "{}", a.text);
    match &timeline(&h, &id).await[0].detail {
        gateway_store::EventDetail::Webhook { body: stored, .. } => {
            assert_eq!(stored.expose(), &body, "kept as received")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_signed_path_is_a_setting_and_a_query_string_is_signed() {
    let h = harness(|_| {}).await;
    let (id, ext) = (CaseSystemId::new(uuid::Uuid::new_v4()), new_external_id());
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);

    // Cabital signed the public URL's path; API Gateway shows the function another one.
    let public = "/prod/webhooks/cabital";
    let signed_public =
        event("POST", PATH, "", &signature(API_KEY, API_SECRET, now_unix(), public, body.as_bytes()), body.as_bytes());
    let default = deliver(&app(&h), &signed_public).await;
    assert_eq!((default.status, default.code()), (401, "signature_mismatch"), "{}", default.text);
    let configured =
        App { settings: WebhookSettings { signed_path: Some(public.into()), ..WebhookSettings::default() }, ..app(&h) };
    let a = deliver(&configured, &signed_public).await;
    assert_eq!(a.status, 200, "{}", a.text);

    // The query string is part of what is signed.
    let query = "partner=acme";
    let with_query = format!("{PATH}?{query}");
    let signed = signature(API_KEY, API_SECRET, now_unix(), &with_query, body.as_bytes());
    let b = deliver(&app(&h), &event("POST", PATH, query, &signed, body.as_bytes())).await;
    assert_eq!((b.status, b.body["deliveries"].as_u64()), (200, Some(2)), "{}", b.text);
    let without = signature(API_KEY, API_SECRET, now_unix(), PATH, body.as_bytes());
    let c = deliver(&app(&h), &event("POST", PATH, query, &without, body.as_bytes())).await;
    assert_eq!((c.status, c.code()), (401, "signature_mismatch"), "{}", c.text);
}

#[tokio::test]
async fn timestamps_inside_the_tolerance_either_way_are_accepted() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = (CaseSystemId::new(uuid::Uuid::new_v4()), new_external_id());
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    for skew in [-240, 240] {
        let headers = signature(API_KEY, API_SECRET, now_unix() + skew, PATH, body.as_bytes());
        let a = deliver(&app, &event("POST", PATH, "", &headers, body.as_bytes())).await;
        assert_eq!(a.status, 200, "skew {skew}: {}", a.text);
    }
}

#[tokio::test]
async fn only_post_is_taken() {
    let h = harness(|_| {}).await;
    let a = deliver(&app(&h), &event("GET", PATH, "", &[], b"")).await;
    assert_eq!((a.status, a.code()), (405, "method_not_allowed"), "{}", a.text);
    assert_eq!(table_items(&h).await, 0);
}

// ---------------------------------------------------------------- Cabital's unknowns
// Where Cabital's page is silent (the encoding, which secret, whether webhooks are
// signed, how old a resend's headers are), a real delivery must not be lost to our
// guess, and an unverified one may cost at most a rate-limited GET, never a claim.

#[tokio::test]
async fn either_encoding_and_a_separate_webhook_secret_verify() {
    use gateway_signing::SignatureEncoding::{Base64, Hex};
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let (bytes, now) = (body.as_bytes(), now_unix());
    for (i, encoding) in [Hex, Base64].into_iter().enumerate() {
        // Two timestamps: one signature in two spellings is one delivery (replay.rs).
        let headers = signature_in(encoding, API_KEY, API_SECRET, now - i as i64, PATH, bytes);
        let a = deliver(&app, &event("POST", PATH, "", &headers, bytes)).await;
        assert_eq!((a.status, a.body["verification"].as_str()), (200, Some("signed")), "{encoding}: {}", a.text);
        assert_eq!(a.body["deliveries"], i + 1);
    }

    // The secret gains a webhook secret of its own (no webhook key: any ACCESS-KEY).
    const HOOK_SECRET: &str = "partner-provided-webhook-secret-1";
    let value = format!(r#"{{"apiKey":"{API_KEY}","apiSecret":"{API_SECRET}","webhookSecret":"{HOOK_SECRET}"}}"#);
    gateway_support::secretsmanager_client()
        .await
        .put_secret_value()
        .secret_id(&h.secret_id)
        .secret_string(value)
        .send()
        .await
        .unwrap();
    h.gateway.cabital.credentials().refresh().await.unwrap();
    let by_hook = signature_in(Base64, "cabital-webhooks", HOOK_SECRET, now_unix(), PATH, bytes);
    let a = deliver(&app, &event("POST", PATH, "", &by_hook, bytes)).await;
    assert_eq!((a.status, a.body["deliveries"].as_u64()), (200, Some(3)), "{}", a.text);
    // The API secret stays accepted beside it; a third secret does not.
    let a = deliver(&app, &signed_event_at(&body, now - 2)).await;
    assert_eq!((a.status, a.body["deliveries"].as_u64()), (200, Some(4)), "{}", a.text);
    let forged = signature_in(Base64, "cabital-webhooks", "third-secret", now_unix(), PATH, bytes);
    let a = deliver(&app, &event("POST", PATH, "", &forged, bytes)).await;
    assert_eq!((a.status, a.code()), (401, "signature_mismatch"), "{}", a.text);
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(4, Suggestion::SuggestToReject)]);
}

#[tokio::test]
async fn a_late_signed_delivery_is_a_hint_never_a_state_change() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let a = deliver(&app, &signed_event(&body)).await;
    assert_eq!((a.status, a.body["refresh"].as_str()), (200, Some("changed")), "{}", a.text);

    // Cabital resends it with its first attempt's headers, hours old: one more delivery
    // of the same body, and a refresh at most once a minute per case.
    let gets = sandbox_gets(&h);
    let late = deliver(&app, &signed_event_aged(&body, 5 * 3_600)).await;
    assert_eq!(late.status, 200, "{}", late.text);
    assert_eq!(late.body["verification"], "late_repeat", "{}", late.text);
    assert_eq!((late.body["deliveries"].as_u64(), late.body["refresh"].as_str()), (Some(2), Some("unchanged")));
    let again = deliver(&app, &signed_event_aged(&body, 18 * 3_600)).await;
    assert_eq!((again.body["deliveries"].as_u64(), again.body["refresh"].as_str()), (Some(3), Some("skipped")));
    assert_eq!(sandbox_gets(&h), gets + 1, "one GET for two late repeats within a minute");

    // A late body never seen, claiming another suggestion: kept as an unverified notice;
    // the case keeps what Cabital's GET says.
    let claim = webhook_body(&id, &ext, "SUGGEST_TO_ACCEPT", "all clear");
    let notice = deliver(&app, &signed_event_aged(&claim, 3_600)).await;
    assert_eq!((notice.status, notice.body["verification"].as_str()), (200, Some("notice_late_signature")));
    let events = timeline(&h, &id).await;
    assert_eq!(webhook_events(&events), [(3, Suggestion::SuggestToReject)]);
    assert_eq!(notice_events(&events), [(1, gateway_store::NoticeReason::LateSignature)]);
    let case = case(&h, &id).await.unwrap();
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject), "never the notice's claim");
    assert!(!case.needs_refresh, "the GET settled it");

    // A late delivery for a case neither the gateway nor Cabital knows: refused, nothing kept.
    let stranger = CaseSystemId::new(uuid::Uuid::new_v4());
    let items = table_items(&h).await;
    let body = webhook_body(&stranger, &new_external_id(), "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let refused = deliver(&app, &signed_event_aged(&body, 3_600)).await;
    assert_eq!((refused.status, refused.code()), (404, "case_unknown_to_cabital"), "{}", refused.text);
    assert_eq!(table_items(&h).await, items, "nothing stored");
}

#[tokio::test]
async fn refetch_mode_takes_unsigned_notices_and_the_state_only_from_cabital() {
    let h = harness(|_| {}).await;
    let app = refetch_app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    // An unsigned delivery claiming the opposite of what Cabital says.
    let claim = webhook_body(&id, &ext, "SUGGEST_TO_ACCEPT", "all clear");
    let gets = sandbox_gets(&h);
    let first = deliver(&app, &unsigned_event(&claim)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["verification"], "notice_unsigned");
    assert_eq!(first.body["refresh"], "changed", "read from Cabital at once");
    let case_now = case(&h, &id).await.unwrap();
    assert_eq!(case_now.suggestion, Some(Suggestion::SuggestToReject), "Cabital's GET, not the notice");
    // Repeats of the known body within a minute: counted, no GET.
    for n in 2..=4u64 {
        let a = deliver(&app, &unsigned_event(&claim)).await;
        assert_eq!(
            (a.status, a.body["deliveries"].as_u64(), a.body["refresh"].as_str()),
            (200, Some(n), Some("skipped"))
        );
    }
    assert_eq!(sandbox_gets(&h), gets + 1, "one GET for four deliveries of one body");
    // A new body always reads the case; a signature that does not verify is a notice too.
    let other = webhook_body(&id, &ext, "NO_SUGGESTION", "another claim");
    let forged = signature(API_KEY, "guessed-secret", now_unix(), PATH, other.as_bytes());
    let a = deliver(&app, &event("POST", PATH, "", &forged, other.as_bytes())).await;
    assert_eq!((a.status, a.body["verification"].as_str()), (200, Some("notice_signature_not_verified")), "{}", a.text);
    assert_eq!(sandbox_gets(&h), gets + 2);

    let events = timeline(&h, &id).await;
    assert!(webhook_events(&events).is_empty(), "no notice is shown as Cabital's words");
    use gateway_store::NoticeReason::{SignatureNotVerified, Unsigned};
    assert_eq!(notice_events(&events), [(4, Unsigned), (1, SignatureNotVerified)]);
    assert_eq!(case(&h, &id).await.unwrap().suggestion, Some(Suggestion::SuggestToReject));

    // Refused, nothing stored: a malformed notice, and one naming a case Cabital does not know.
    let items = table_items(&h).await;
    let bad = deliver(&app, &unsigned_event("{\"caseSystemId\": 1}")).await;
    assert_eq!((bad.status, bad.code()), (400, "malformed_body"), "{}", bad.text);
    let stranger = CaseSystemId::new(uuid::Uuid::new_v4());
    let body = webhook_body(&stranger, &new_external_id(), "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let unknown = deliver(&app, &unsigned_event(&body)).await;
    assert_eq!((unknown.status, unknown.code()), (404, "case_unknown_to_cabital"), "{}", unknown.text);
    assert_eq!(table_items(&h).await, items, "nothing stored");

    // A signed delivery is still Cabital's word in refetch mode.
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let signed = deliver(&app, &signed_event(&body)).await;
    assert_eq!((signed.status, signed.body["verification"].as_str()), (200, Some("signed")));
}

#[tokio::test]
async fn a_notice_links_an_unknown_creation_with_cabitals_ids_never_the_bodys() {
    let h = harness(|_| {}).await;
    let app = refetch_app(&h);
    // Cabital has the case; the gateway's reservation of its external id is UNKNOWN.
    let (id, ext) = create_case_at_cabital_only(&h, "Ivan Blocklisted").await;
    let ext_id = gateway_cabital::ExternalCaseId::parse(&ext).unwrap();
    let now = gateway_runtime::now();
    let hash = gateway_service::request_hash(b"submitted");
    let token = match h.store.reserve_external_id(&ext_id, &hash, &gateway_cabital::Pii("{}".into()), now).await {
        Ok(gateway_store::Reservation::Reserved { token }) => token,
        other => panic!("{other:?}"),
    };
    h.store.mark_unknown(&ext_id, token, now).await.unwrap();

    // An unsigned notice names the case, and another (made-up) external id.
    let body = webhook_body(&id, "not-the-real-external-id", "SUGGEST_TO_ACCEPT", "all clear");
    let a = deliver(&app, &unsigned_event(&body)).await;
    assert_eq!((a.status, a.body["caseKnown"].as_bool()), (200, Some(false)), "{}", a.text);
    let case = case(&h, &id).await.expect("the case is recorded from Cabital's GET");
    assert_eq!(case.external_case_id.as_str(), ext, "the external id is Cabital's, not the body's");
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject));
    assert!(!case.needs_refresh);
    let reservation = h.store.get_external(&ext_id).await.unwrap().unwrap();
    assert_eq!((reservation.state, reservation.case_system_id), (gateway_store::ExtState::Created, Some(id)));
    let fake = gateway_cabital::ExternalCaseId::parse("not-the-real-external-id").unwrap();
    assert!(h.store.get_external(&fake).await.unwrap().is_none());
    let kinds = kinds(&timeline(&h, &id).await);
    assert!(kinds.contains(&EventKind::UnverifiedNotice) && !kinds.contains(&EventKind::Webhook), "{kinds:?}");
}
