//! `POST /v1/cases` is idempotent on `externalCaseId`: the same body replays the first
//! answer, another body is a 409, a create still in flight is a 409 with `Retry-After`,
//! and concurrent duplicates make exactly one case at Cabital.

use crate::common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};

/// Asserts the sandbox and the table hold exactly one case for `ext`, with one CREATED event.
async fn assert_exactly_one_case(h: &gateway_support::Harness, ext: &str) -> String {
    let at_sandbox = h.sandbox.cases_by_external_id(ext);
    assert_eq!(at_sandbox.len(), 1, "cases at the sandbox for {ext}");
    assert_eq!(h.sandbox.stats().creates, 1);
    let id = at_sandbox[0].case.case_system_id.to_string();
    let items = table_items(&h.store).await;
    assert_eq!(items.get("CASE").map(Vec::len), Some(1), "{items:?}");
    assert_eq!(items.get("EXT").map(Vec::len), Some(1), "{items:?}");
    assert_eq!(stored_kinds(&h.store, &id).await, ["CREATED"]);
    id
}

#[tokio::test]
async fn the_same_body_twice_replays_the_first_answer() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let event = Event::fixture("create-case.json");
    let first = send(&app, &event).await;
    first.expect(201);
    assert_eq!(first.json["replayed"], false);

    let second = send(&app, &event).await;
    second.expect(201);
    assert_eq!(second.json["replayed"], true);
    assert_eq!(second.json["caseSystemId"], first.json["caseSystemId"]);
    assert_eq!(second.json["case"], first.json["case"]);

    // The same case with its keys in another order and other spacing is the same request.
    let body = event.json_body();
    let reordered = format!(
        "{{ \"organizationInfo\" : {{}}, \"individualInfo\": {{\"residentialCountry\":\"HKG\", \"nationality\":\"JPN\", \"dob\":\"2002-02-02\", \"gender\":\"MALE\"}},\n \"fullName\": {}, \"screenType\": \"INDIVIDUAL\", \"externalCaseId\": \"{FIXTURE_EXTERNAL_ID}\" }}",
        body["fullName"]
    );
    let third = send(&app, &event.clone().with_body(reordered)).await;
    third.expect(201);
    assert_eq!(third.json["replayed"], true);
    assert_eq!(third.json["caseSystemId"], first.json["caseSystemId"]);

    // An absent organizationInfo is the {} the canonical form sends.
    let mut without_org = body.clone();
    without_org.as_object_mut().unwrap().remove("organizationInfo");
    let fourth = send(&app, &event.clone().with_json(&without_org)).await;
    fourth.expect(201);
    assert_eq!(fourth.json["replayed"], true);

    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases"), 1, "only the first reached Cabital");
    let id = assert_exactly_one_case(&h, FIXTURE_EXTERNAL_ID).await;
    assert_eq!(first.json["caseSystemId"], id.as_str());
}

#[tokio::test]
async fn the_same_id_with_another_body_is_a_409() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    let mut other = case_body(FIXTURE_EXTERNAL_ID);
    other["fullName"] = json!("Jane Doe");
    for body in [other, {
        let mut b = case_body(FIXTURE_EXTERNAL_ID);
        b["individualInfo"]["dob"] = json!("2002-02-03");
        b
    }] {
        let resp = send(&app, &Event::fixture("create-case.json").with_json(&body)).await;
        resp.expect_problem(409, "external_id_conflict");
        assert_eq!(resp.header("retry-after"), None, "a conflict is not fixed by waiting");
    }
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases"), 1);
    assert_eq!(assert_exactly_one_case(&h, FIXTURE_EXTERNAL_ID).await, id);
    // The first body still replays.
    let again = send(&app, &Event::fixture("create-case.json")).await;
    again.expect(201);
    assert_eq!(again.json["replayed"], true);
}

/// The hash the gateway reserves a body under.
fn request_hash(body: &Value) -> String {
    let case = gateway_cabital::validate_new_case(body, gateway_runtime::now().date()).expect("a valid body");
    gateway_service::request_hash(serde_json::to_string(&case).unwrap().as_bytes())
}

#[tokio::test]
async fn a_create_in_flight_is_a_409_with_retry_after() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let body = Event::fixture("create-case.json").json_body();
    // Another invocation holds the reservation and has not heard back from Cabital yet.
    let ext = gateway_cabital::ExternalCaseId::parse(FIXTURE_EXTERNAL_ID).unwrap();
    let reserved = h
        .store
        .reserve_external_id(
            &ext,
            &request_hash(&body),
            &gateway_cabital::Pii(body.to_string()),
            gateway_runtime::now(),
        )
        .await
        .unwrap();
    assert!(matches!(reserved, gateway_store::Reservation::Reserved { .. }));

    let resp = send(&app, &Event::fixture("create-case.json")).await;
    resp.expect_problem(409, "create_in_flight");
    assert!(resp.retry_after() >= 1);
    // Another body under the same id is still a conflict, not "in flight".
    let mut other = body.clone();
    other["fullName"] = json!("Another Name");
    let resp = send(&app, &Event::fixture("create-case.json").with_json(&other)).await;
    resp.expect_problem(409, "external_id_conflict");

    let find = send(&app, &Event::fixture("find-case.json")).await;
    find.expect(200);
    assert_eq!(find.json["state"], "PENDING");
    assert_eq!(find.json["caseSystemId"], Value::Null);
    assert_eq!(find.json["case"], Value::Null);
    assert_eq!(sandbox_requests_total(&h), 0, "nothing was sent");
}

/// Fires `n` creates with the bodies given at once, each on its own task.
async fn concurrently(app: &Arc<gateway_cases_api::App>, bodies: Vec<Value>) -> Vec<Resp> {
    let tasks = bodies.into_iter().map(|body| {
        let app = Arc::clone(app);
        tokio::spawn(async move { send(&app, &Event::fixture("create-case.json").with_json(&body)).await })
    });
    futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("the task ends")).collect()
}

/// Five identical creates at once: one case at Cabital; every other answer is the
/// replay or a 409 `create_in_flight` with `Retry-After`.
async fn five_identical_creates(latency_ms: u64) {
    let h = gateway_support::harness(|c| c.faults.latency_ms = latency_ms).await;
    let app = Arc::new(app(&h));
    let body = Event::fixture("create-case.json").json_body();
    let answers = concurrently(&app, vec![body.clone(); 5]).await;

    let created: Vec<&Resp> = answers.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty(), "{answers:#?}");
    assert_eq!(created.iter().filter(|r| r.json["replayed"] == false).count(), 1, "{answers:#?}");
    for r in &answers {
        match r.status {
            201 => assert_eq!(r.json["caseSystemId"], created[0].json["caseSystemId"]),
            409 => {
                r.expect_problem(409, "create_in_flight");
                assert!(r.retry_after() >= 1);
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    let id = assert_exactly_one_case(&h, FIXTURE_EXTERNAL_ID).await;
    assert_eq!(created[0].json["caseSystemId"], id.as_str());
    assert_eq!(sandbox_requests(&h, "POST /api/v1/cases"), 1);

    // Once settled, the same request replays.
    let after = send(&app, &Event::fixture("create-case.json")).await;
    after.expect(201);
    assert_eq!(after.json["replayed"], true);
    assert_eq!(after.json["caseSystemId"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_creates_make_one_case() {
    five_identical_creates(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_creates_with_a_slow_cabital_make_one_case() {
    // Cabital slow (well inside the client's timeout): the others find the create in flight.
    five_identical_creates(300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_id_and_different_bodies_make_one_case() {
    let h = gateway_support::harness(|_| {}).await;
    let app = Arc::new(app(&h));
    let bodies: Vec<Value> = (0..5)
        .map(|i| {
            let mut b = case_body(FIXTURE_EXTERNAL_ID);
            b["fullName"] = json!(format!("Person Number {i}"));
            b
        })
        .collect();
    let answers = concurrently(&app, bodies).await;
    let created: Vec<&Resp> = answers.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "{answers:#?}");
    assert_eq!(created[0].json["replayed"], false);
    for r in answers.iter().filter(|r| r.status != 201) {
        r.expect_problem(409, "external_id_conflict");
    }
    assert_exactly_one_case(&h, FIXTURE_EXTERNAL_ID).await;
}
