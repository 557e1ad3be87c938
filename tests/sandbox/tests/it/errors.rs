//! The error table: 400 (with fields), 404, 405, 406, 409, 413, 429 + Retry-After,
//! injected 500 / 503; every body `{"code", "message"}`.

use crate::common;

use std::time::{Duration, Instant};

use common::{Api, Raw, individual, sandbox};
use gateway_sandbox::{ErrorBody, Faults};
use serde_json::{Value, json};

async fn error(response: reqwest::Response, status: u16) -> ErrorBody {
    assert_eq!(response.status(), status);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.code, status);
    assert!(!body.message.is_empty());
    body
}

fn fields(body: &ErrorBody) -> Vec<&str> {
    body.errors.iter().map(|e| e.field.as_str()).collect()
}

#[tokio::test]
async fn bad_bodies_get_400_naming_each_field() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let tomorrow = time::OffsetDateTime::now_utc().date().next_day().unwrap();
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["externalCaseId", "screenType", "fullName"]),
        (json!([]), vec!["body"]),
        (
            {
                let mut b = individual(&"x".repeat(37), "John Doe");
                b["screenType"] = json!("Individual");
                b
            },
            vec!["externalCaseId", "screenType"],
        ),
        (
            {
                let mut b = individual("e-1", "");
                b["individualInfo"] =
                    json!({"gender": "M", "dob": "2023-02-30", "nationality": "JP", "residentialCountry": "hkg"});
                b
            },
            vec![
                "fullName",
                "individualInfo.gender",
                "individualInfo.dob",
                "individualInfo.nationality",
                "individualInfo.residentialCountry",
            ],
        ),
        (
            {
                let mut b = individual("e-1", "John Doe");
                b["individualInfo"]["dob"] = json!(tomorrow.to_string());
                b
            },
            vec!["individualInfo.dob"],
        ),
        (
            {
                let mut b = individual("e-1", "John Doe");
                b.as_object_mut().unwrap().remove("individualInfo");
                b
            },
            vec!["individualInfo"],
        ),
        (
            {
                let mut b = individual("e-1", "John Doe");
                b["organizationInfo"] = json!({"name": "Acme"});
                b
            },
            vec!["organizationInfo"],
        ),
        (json!({"externalCaseId": "o-1", "screenType": "ORGANISATION", "fullName": "Acme"}), vec!["organizationInfo"]),
        (
            json!({"externalCaseId": "o-1", "screenType": "ORGANISATION", "fullName": "Acme", "organizationInfo": [], "individualInfo": {"gender": "MALE"}}),
            vec!["organizationInfo", "individualInfo"],
        ),
        (
            json!({"externalCaseId": 5, "screenType": "ORGANISATION", "fullName": "Acme", "organizationInfo": {}}),
            vec!["externalCaseId"],
        ),
    ];
    for (body, expected) in cases {
        let response = api.call("POST", "/api/v1/cases", &body.to_string()).await;
        let error = error(response, 400).await;
        assert_eq!(fields(&error), expected, "body {body}");
        for field in expected {
            assert!(error.message.contains(field), "{} lacks {field}", error.message);
        }
    }
    // An empty create body.
    let mut raw = Raw::signed("POST", "/api/v1/cases", "", 0);
    raw.content_type = Some("application/json".into());
    assert_eq!(fields(&error(api.raw(raw).await, 400).await), ["body"]);
    assert_eq!(sandbox.stats().creates, 0);

    // A bad decision.
    let case = api.create(&individual("e-2", "John Doe")).await;
    let path = format!("/api/v1/cases/{}/decision", case["caseSystemId"].as_str().unwrap());
    let response = api.call("POST", &path, &json!({"caseResult": "APPROVE"}).to_string()).await;
    assert_eq!(fields(&error(response, 400).await), ["caseResult"]);
    let response = api.call("POST", &path, &json!({"caseResult": "ACCEPT", "comment": 1}).to_string()).await;
    assert_eq!(fields(&error(response, 400).await), ["comment"]);
}

#[tokio::test]
async fn unknown_case_and_route_are_404() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let unknown = "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c";
    for (method, path, body) in [
        ("GET", format!("/api/v1/cases/{unknown}"), String::new()),
        ("GET", "/api/v1/cases/not-a-uuid".to_owned(), String::new()),
        ("POST", format!("/api/v1/cases/{unknown}/ogs"), String::new()),
        ("DELETE", format!("/api/v1/cases/{unknown}/ogs"), String::new()),
        ("POST", format!("/api/v1/cases/{unknown}/decision"), json!({"caseResult": "ACCEPT"}).to_string()),
        ("GET", "/api/v1/nothing".to_owned(), String::new()),
        ("GET", "/api/v1/cases/".to_owned(), String::new()),
        ("GET", "/".to_owned(), String::new()),
    ] {
        let response = api.call(method, &path, &body).await;
        error(response, 404).await;
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let case = api.create(&individual("m-1", "John Doe")).await;
    let id = case["caseSystemId"].as_str().unwrap();
    for (method, path, allow) in [
        ("GET", "/api/v1/cases".to_owned(), "POST"),
        ("DELETE", format!("/api/v1/cases/{id}"), "GET"),
        ("POST", format!("/api/v1/cases/{id}"), "GET"),
        ("GET", format!("/api/v1/cases/{id}/ogs"), "POST, DELETE"),
        ("PUT", format!("/api/v1/cases/{id}/decision"), "POST"),
    ] {
        let response = api.call(method, &path, "").await;
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        error(response, 405).await;
    }
}

#[tokio::test]
async fn non_json_is_406() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let body = individual("n-1", "John Doe").to_string();
    // Not JSON, with the JSON content type.
    error(api.call("POST", "/api/v1/cases", "externalCaseId=n-1").await, 406).await;
    // Truncated JSON.
    error(api.call("POST", "/api/v1/cases", &body[..body.len() - 1]).await, 406).await;
    // JSON, but declared as something else, or not declared.
    let mut raw = Raw::signed("POST", "/api/v1/cases", &body, 0);
    raw.content_type = Some("text/plain".into());
    error(api.raw(raw).await, 406).await;
    let mut raw = Raw::signed("POST", "/api/v1/cases", &body, 0);
    raw.content_type = None;
    error(api.raw(raw).await, 406).await;
    // A parameter on the JSON type is fine.
    let mut raw = Raw::signed("POST", "/api/v1/cases", &body, 0);
    raw.content_type = Some("application/json; charset=utf-8".into());
    assert_eq!(api.raw(raw).await.status(), 201);
}

#[tokio::test]
async fn second_case_with_same_external_id_is_409_unless_allowed() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    api.create(&individual("dup-1", "John Doe")).await;
    let response = api.call("POST", "/api/v1/cases", &individual("dup-1", "Jane Doe").to_string()).await;
    error(response, 409).await;
    assert_eq!(sandbox.cases_by_external_id("dup-1").len(), 1);

    let lenient = common::sandbox(|c| c.reject_duplicate_external_id = false).await;
    let api = Api::new(&lenient);
    let first = api.create(&individual("dup-1", "John Doe")).await;
    let second = api.create(&individual("dup-1", "John Doe")).await;
    assert_ne!(first["caseSystemId"], second["caseSystemId"]);
    assert_eq!(lenient.cases_by_external_id("dup-1").len(), 2);
}

#[tokio::test]
async fn rate_limit_is_429_with_retry_after() {
    let sandbox = sandbox(|c| c.faults.rate_limit_per_sec = 2.0).await;
    let api = Api::new(&sandbox);
    let path = "/api/v1/cases/6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c";
    // The burst is 2; a slow machine may refill a little between requests, so keep
    // going until refused.
    let mut passed = 0;
    let response = loop {
        let response = api.call("GET", path, "").await;
        if response.status() != 404 {
            break response;
        }
        passed += 1;
        assert!(passed < 10, "never rate-limited");
    };
    assert!(passed >= 2, "burst of 2 refused after {passed}");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    error(response, 429).await;
    assert_eq!(sandbox.stats().rate_limited, 1);

    // Honouring Retry-After gets through again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(api.call("GET", path, "").await.status(), 404);

    // A rate of 0 lifts the limit.
    sandbox.set_faults(Faults::default()).unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(api.call("GET", path, "").await.status(), 404);
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn injected_5xx_take_no_effect() {
    let sandbox = sandbox(|c| c.faults.error_rate_500 = 1.0).await;
    let api = Api::new(&sandbox);
    let body = individual("f-1", "John Doe").to_string();
    error(api.call("POST", "/api/v1/cases", &body).await, 500).await;
    sandbox.set_faults(Faults { error_rate_503: 1.0, ..Faults::default() }).unwrap();
    error(api.call("POST", "/api/v1/cases", &body).await, 503).await;
    let stats = sandbox.stats();
    assert_eq!((stats.injected_500, stats.injected_503, stats.creates), (1, 1, 0));
    assert!(sandbox.cases_by_external_id("f-1").is_empty());

    // A partial rate is random but seeded: about half of 200 requests fail.
    sandbox.set_faults(Faults { error_rate_500: 0.25, error_rate_503: 0.25, ..Faults::default() }).unwrap();
    let mut failures = 0;
    for _ in 0..200 {
        let status = api.call("GET", "/api/v1/cases/x", "").await.status().as_u16();
        assert!([404, 500, 503].contains(&status));
        failures += u32::from(status != 404);
    }
    assert!((60..=140).contains(&failures), "{failures}");
    sandbox.set_faults(Faults::default()).unwrap();
    api.create(&individual("f-1", "John Doe")).await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let mut body = individual("big-1", "John Doe");
    body["padding"] = json!("x".repeat(gateway_sandbox::MAX_BODY_BYTES));
    error(api.call("POST", "/api/v1/cases", &body.to_string()).await, 413).await;
}

#[tokio::test]
async fn latency_is_added_after_the_call_takes_effect() {
    let sandbox = sandbox(|c| c.faults.latency_ms = 1000).await;
    let api = Api::new(&sandbox);
    let client = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let timed_out = Api { base: api.base.clone(), http: client };
    let raw = Raw::signed("POST", "/api/v1/cases", &individual("slow-1", "John Doe").to_string(), 0);
    let method = reqwest::Method::POST;
    let result = timed_out
        .http
        .request(method, format!("{}{}", api.base, raw.path))
        .header("Content-Type", "application/json")
        .header("ACCESS-KEY", raw.key.unwrap())
        .header("ACCESS-TIMESTAMP", raw.timestamp.unwrap())
        .header("ACCESS-SIGN", raw.sign.unwrap())
        .body(raw.body)
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    // The answer was lost, the case was not.
    common::wait_until(Duration::from_secs(2), || sandbox.cases_by_external_id("slow-1").len() == 1).await;

    let started = Instant::now();
    assert_eq!(api.call("GET", "/api/v1/cases/x", "").await.status(), 404);
    assert!(started.elapsed() >= Duration::from_millis(1000));
}
