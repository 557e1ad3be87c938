//! A create through the real handler, from the fixture event, against moto and the sandbox.

use gateway_cases_api::{App, handle};
use lambda_http::Body;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[tokio::test]
async fn create_from_the_fixture_then_read_it_back() {
    let h = gateway_support::harness(|_| {}).await;
    let app = App { gateway: h.gateway.clone() };
    let request = lambda_http::request::from_str(&fixture("create-case.json")).unwrap();
    let response = handle(&app, request).await.unwrap();
    let status = response.status();
    let body = match response.body() {
        Body::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(status, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["caseSystemId"].as_str().unwrap().to_owned();
    assert_eq!(h.sandbox.cases_by_external_id("fixture-0001").len(), 1);
    let event = fixture("get-case.json").replace("6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c", &id);
    let response = handle(&app, lambda_http::request::from_str(&event).unwrap()).await.unwrap();
    let body = match response.body() {
        Body::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(response.status(), 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["timeline"][0]["kind"], "CREATED", "{v:#}");
}
