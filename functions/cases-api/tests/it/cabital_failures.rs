//! Cabital's failures (429, 503, 500, timeouts, refusals) and the store's, as the caller
//! sees them: a stable code, a status that says whether to retry, `Retry-After` where it
//! applies, never a case sent twice, and never anything internal in a 5xx body (every
//! 5xx through `send` is checked for that).

use crate::common;

use common::*;
use gateway_sandbox::Faults;
use gateway_store::ExtState;
use serde_json::{Value, json};

fn ext(id: &str) -> gateway_cabital::ExternalCaseId {
    gateway_cabital::ExternalCaseId::parse(id).unwrap()
}

async fn reservation(h: &gateway_support::Harness, id: &str) -> gateway_store::ExtRecord {
    h.store.get_external(&ext(id)).await.unwrap().expect("the reservation is stored")
}

/// The attempts the harness's client makes at a retryable failure.
fn client_attempts() -> u64 {
    u64::from(gateway_cabital::ClientConfig::new("http://127.0.0.1".parse().unwrap()).max_attempts)
}

#[tokio::test]
async fn a_429_beyond_the_retry_budget_is_a_503_with_retry_after() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    // One request a hundred seconds: the first create takes the only token.
    h.sandbox.set_faults(Faults { rate_limit_per_sec: 0.01, ..Faults::default() }).unwrap();
    create(&app, Some(&case_body("first"))).await;

    let resp = send(&app, &Event::fixture("create-case.json")).await;
    resp.expect_problem(503, "cabital_unavailable");
    // Cabital's Retry-After (about 100 s) is passed on; it is beyond what the client waits.
    let after = resp.retry_after();
    assert!((4..=100).contains(&after), "Retry-After {after}");
    assert_eq!(h.sandbox.stats().rate_limited, 1, "not retried against a long Retry-After");
    assert!(h.sandbox.cases_by_external_id(FIXTURE_EXTERNAL_ID).is_empty());
    // Cabital surely did not create it: the id is free again.
    assert_eq!(reservation(&h, FIXTURE_EXTERNAL_ID).await.state, ExtState::Rejected);

    // OGS and a live read under the same limit: 503 too, nothing recorded.
    let first = h.sandbox.cases_by_external_id("first")[0].case.case_system_id.to_string();
    send(&app, &Event::for_case("ogs-on.json", &first)).await.expect_problem(503, "cabital_unavailable");
    send(&app, &Event::for_case("get-case-live.json", &first)).await.expect_problem(503, "cabital_unavailable");
    assert_eq!(stored_kinds(&h.store, &first).await, ["CREATED"]);

    // Once the limit is lifted, the same request goes through, once.
    h.sandbox.set_faults(Faults::default()).unwrap();
    let resp = send(&app, &Event::fixture("create-case.json")).await;
    resp.expect(201);
    assert_eq!(resp.json["replayed"], false);
    assert_eq!(h.sandbox.cases_by_external_id(FIXTURE_EXTERNAL_ID).len(), 1);
    assert_eq!(reservation(&h, FIXTURE_EXTERNAL_ID).await.state, ExtState::Created);
}

#[tokio::test]
async fn a_503_storm_is_a_503_and_nothing_is_recorded() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, Some(&case_body("before-the-storm"))).await;
    h.sandbox.set_faults(Faults { error_rate_503: 1.0, ..Faults::default() }).unwrap();

    let resp = send(&app, &Event::fixture("create-case.json")).await;
    resp.expect_problem(503, "cabital_unavailable");
    assert!(resp.retry_after() >= 1);
    // The client spent its retries (a 503 refuses the work, so a create may be repeated).
    assert_eq!(h.sandbox.stats().injected_503, client_attempts());
    assert_eq!(h.sandbox.stats().creates, 1, "only the case before the storm");
    assert_eq!(reservation(&h, FIXTURE_EXTERNAL_ID).await.state, ExtState::Rejected);

    for event in [
        Event::for_case("ogs-on.json", &id),
        Event::for_case("ogs-off.json", &id),
        Event::for_case("decision.json", &id),
        Event::for_case("get-case-live.json", &id),
    ] {
        send(&app, &event).await.expect_problem(503, "cabital_unavailable");
    }
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED"], "nothing Cabital did not accept is recorded");
    assert!(!sandbox_case(&h, &id).case.ogs);
    assert_eq!(sandbox_case(&h, &id).case.decision, None);

    h.sandbox.set_faults(Faults::default()).unwrap();
    send(&app, &Event::fixture("create-case.json")).await.expect(201);
    assert_eq!(h.sandbox.cases_by_external_id(FIXTURE_EXTERNAL_ID).len(), 1);
}

#[tokio::test]
async fn a_500_on_create_is_an_unknown_outcome_never_sent_again() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    h.sandbox.set_faults(Faults { error_rate_500: 1.0, ..Faults::default() }).unwrap();

    let resp = send(&app, &Event::fixture("create-case.json")).await;
    resp.expect_problem(504, "cabital_outcome_unknown");
    assert_eq!(resp.header("retry-after"), None, "waiting does not settle it: the webhook does");
    // A 500 may come after the work was done: the create is not repeated.
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases"), 1);
    let kept = reservation(&h, FIXTURE_EXTERNAL_ID).await;
    assert_eq!(kept.state, ExtState::Unknown);
    assert_eq!(kept.case_system_id, None);
    assert!(kept.submitted.is_some(), "what was sent is on record");

    // Cabital is fine again, and the caller retries the same request: still not sent.
    h.sandbox.set_faults(Faults::default()).unwrap();
    let retry = send(&app, &Event::fixture("create-case.json")).await;
    retry.expect_problem(504, "cabital_outcome_unknown");
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases"), 1);
    assert_eq!(h.sandbox.stats().creates, 0);
    assert_eq!(reservation(&h, FIXTURE_EXTERNAL_ID).await.state, ExtState::Unknown);

    // Another body under the id is a conflict, as ever.
    let mut other = case_body(FIXTURE_EXTERNAL_ID);
    other["fullName"] = json!("Someone Else");
    send(&app, &Event::fixture("create-case.json").with_json(&other)).await.expect_problem(409, "external_id_conflict");

    // The caller can see where it stands.
    let find = send(&app, &Event::fixture("find-case.json")).await;
    find.expect(200);
    assert_eq!(find.json["state"], "UNKNOWN");
    assert_eq!(find.json["caseSystemId"], Value::Null);
    assert_eq!(find.json["case"], Value::Null);
    assert_eq!(count_items(&h.store, "CASE").await, 0);
}

#[tokio::test]
async fn a_timeout_on_create_is_an_unknown_outcome_never_sent_twice() {
    // Cabital takes far longer than the client waits (the harness's client: 2 s); the
    // sandbox creates the case first, so the answer is lost as in real life.
    let h = gateway_support::harness(|c| c.faults.latency_ms = 10_000).await;
    let app = app(&h);
    let resp = send(&app, &Event::fixture("create-case.json")).await;
    resp.expect_problem(504, "cabital_outcome_unknown");
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases"), 1);
    assert_eq!(h.sandbox.cases_by_external_id(FIXTURE_EXTERNAL_ID).len(), 1, "created at Cabital, answer lost");
    assert_eq!(reservation(&h, FIXTURE_EXTERNAL_ID).await.state, ExtState::Unknown);

    h.sandbox.set_faults(Faults::default()).unwrap();
    let retry = send(&app, &Event::fixture("create-case.json")).await;
    retry.expect_problem(504, "cabital_outcome_unknown");
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases"), 1, "never sent twice");
    assert_eq!(h.sandbox.cases_by_external_id(FIXTURE_EXTERNAL_ID).len(), 1);
    assert_eq!(count_items(&h.store, "CASE").await, 0, "not recorded as created without Cabital's answer");
}

#[tokio::test]
async fn a_timeout_on_a_safe_call_is_a_504_cabital_timeout() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    h.sandbox.set_faults(Faults { latency_ms: 10_000, ..Faults::default() }).unwrap();
    let resp = send(&app, &Event::for_case("ogs-on.json", &id)).await;
    resp.expect_problem(504, "cabital_timeout");
    // Turning OGS on is safe to repeat, so the client did.
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases/{caseSystemId}/ogs"), client_attempts());
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED"], "not recorded without Cabital's answer");
}

#[tokio::test]
async fn cabital_refusals_keep_their_meaning() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    // Cabital already has this externalCaseId (created around the gateway): its 409
    // means it has the case. The reservation stays UNKNOWN (never freed, never sent
    // again) and the caller gets 202 `case_system_id_pending`.
    let body = case_body("made-elsewhere");
    let new_case = gateway_cabital::validate_new_case(&body, gateway_runtime::now().date()).unwrap();
    h.gateway.cabital.create_case(&new_case).await.expect("created directly at the sandbox");
    let resp = send(&app, &Event::fixture("create-case.json").with_json(&body)).await;
    resp.expect(202);
    assert_eq!(resp.json["code"], "case_system_id_pending", "{}", resp.text);
    assert_eq!(resp.json["cabitalStatus"], 409, "{}", resp.text);
    let kept = reservation(&h, "made-elsewhere").await;
    assert_eq!((kept.state, kept.cabital_status), (ExtState::Unknown, Some(409)));
    assert!(kept.attention.is_some(), "the reconciler still sees it");
    assert_eq!(h.sandbox.cases_by_external_id("made-elsewhere").len(), 1);
    let creates = sandbox_requests(&h, "POST /api/v1/cases");
    let again = send(&app, &Event::fixture("create-case.json").with_json(&body)).await;
    again.expect(202);
    assert_eq!(again.json["replayed"], true);
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases"), creates, "never sent again");

    // A case we hold that Cabital no longer knows.
    let (id, _) = create(&app, None).await;
    h.sandbox.reset();
    send(&app, &Event::for_case("ogs-on.json", &id)).await.expect_problem(404, "case_not_found_at_cabital");
    send(&app, &Event::for_case("get-case-live.json", &id)).await.expect_problem(404, "case_not_found_at_cabital");
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED"]);

    // Cabital refuses our key (rotated there, not here): 502, and nothing internal said.
    h.sandbox.set_credentials(vec![gateway_sandbox::Credential::new("another-key", "another-secret")]);
    let resp = send(&app, &Event::for_case("decision.json", &id)).await;
    resp.expect_problem(502, "cabital_refused");
    assert_eq!(resp.json["detail"], "Cabital answered 401");
}

#[tokio::test]
async fn unusable_credentials_are_a_502_that_names_nothing() {
    let h = gateway_support::harness(|_| {}).await;
    let missing_secret = format!("cabital-test-missing-{}", uuid::Uuid::new_v4().simple());
    let mut settings = h.settings.clone();
    settings.cabital.secret_id = missing_secret.clone();
    let app = gateway_cases_api::App { gateway: gateway_support::gateway(&settings).await };
    let resp = send(&app, &Event::fixture("create-case.json")).await;
    resp.expect_problem(502, "cabital_bad_answer");
    assert!(!resp.text.contains(&missing_secret));
    assert_eq!(sandbox_requests_total(&h), 0);
    // Nothing reached Cabital: the id is free for when the secret is fixed.
    assert_eq!(reservation(&h, FIXTURE_EXTERNAL_ID).await.state, ExtState::Rejected);
}

#[tokio::test]
async fn a_store_failure_is_a_5xx_that_names_nothing() {
    let h = gateway_support::harness(|_| {}).await;
    let (id, _) = create(&app(&h), None).await;

    // A table that is not there: not retryable, 500.
    let settings = gateway_service::Settings { table: "kyc-test-no-such-table".into(), ..h.settings.clone() };
    let app_missing = gateway_cases_api::App { gateway: gateway_support::gateway(&settings).await };
    for event in
        [Event::for_case("get-case.json", &id), Event::fixture("find-case.json"), Event::fixture("create-case.json")]
    {
        let resp = send(&app_missing, &event).await;
        resp.expect_problem(500, "internal_error");
        assert!(!resp.text.contains("no-such-table"));
    }

    // DynamoDB unreachable: worth a retry, 503 with Retry-After.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sdk = gateway_support::aws_config()
        .await
        .into_builder()
        .endpoint_url(format!("http://127.0.0.1:{closed_port}"))
        .build();
    let app_down = gateway_cases_api::App { gateway: gateway_service::Gateway::new(&h.settings, &sdk).await.unwrap() };
    let resp = send(&app_down, &Event::for_case("get-case.json", &id)).await;
    resp.expect_problem(503, "store_unavailable");
    assert!(resp.retry_after() >= 1);
    let resp = send(&app_down, &Event::fixture("create-case.json").with_json(&case_body("while-down"))).await;
    resp.expect_problem(503, "store_unavailable");
    assert!(h.sandbox.cases_by_external_id("while-down").is_empty(), "nothing sent without a reservation");
}

#[tokio::test]
async fn a_secret_that_cannot_be_used_stops_the_cold_start_naming_no_secret() {
    let h = gateway_support::harness(|_| {}).await;
    h.gateway.warm_up().await.expect("the harness's secret is usable");

    let mut settings = h.settings.clone();
    settings.cabital.secret_id = gateway_support::fresh_secret(gateway_support::API_KEY, "").await;
    let error =
        gateway_support::gateway(&settings).await.warm_up().await.expect_err("an unusable secret stops the start");
    assert!(matches!(error, gateway_service::InitError::Credentials(_)), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("malformed"), "{shown}");
    assert!(!shown.contains(gateway_support::API_KEY), "{shown}");
}
