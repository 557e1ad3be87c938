//! The edges of the HTTP surface: unknown routes, wrong methods, bodies that are not
//! JSON or too large, bad and unknown case ids, stage prefixes, base64 bodies.

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use serde_json::json;

/// Asserts Cabital was never called and the table holds nothing at all.
async fn assert_nothing_sent_or_stored(h: &gateway_support::Harness) {
    assert_eq!(sandbox_requests_total(h), 0, "{:?}", h.sandbox.stats().requests);
    let items = table_items(&h.store).await;
    assert!(items.is_empty(), "the table holds {items:?}");
}

#[tokio::test]
async fn an_unknown_route_is_a_404() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    send(&app, &Event::fixture("unknown-route.json")).await.expect_problem(404, "route_not_found");
    let id = FIXTURE_CASE_ID;
    for path in ["/", "/v2/cases", "/v1/case", &format!("/v1/cases/{id}/ogs/extra"), &format!("/v1/cases/{id}/notes")] {
        let resp = send(&app, &Event::fixture("get-case.json").with_path(path)).await;
        resp.expect_problem(404, "route_not_found");
    }
    assert_nothing_sent_or_stored(&h).await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_that_says_which_are_allowed() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let id = FIXTURE_CASE_ID;
    let cases = [
        ("DELETE", "/v1/cases".to_owned(), "GET, POST"),
        ("PUT", "/v1/cases".to_owned(), "GET, POST"),
        ("PUT", format!("/v1/cases/{id}"), "GET"),
        ("DELETE", format!("/v1/cases/{id}"), "GET"),
        ("GET", format!("/v1/cases/{id}/ogs"), "POST, DELETE"),
        ("PATCH", format!("/v1/cases/{id}/ogs"), "POST, DELETE"),
        ("GET", format!("/v1/cases/{id}/decision"), "POST"),
        ("DELETE", format!("/v1/cases/{id}/decision"), "POST"),
    ];
    for (method, path, allowed) in cases {
        let resp = send(&app, &Event::fixture("get-case.json").with_path(&path).with_method(method)).await;
        resp.expect_problem(405, "method_not_allowed");
        assert_eq!(resp.header("allow"), Some(allowed), "{method} {path}");
        assert_eq!(resp.json["detail"], format!("Allowed: {allowed}"));
    }
    assert_nothing_sent_or_stored(&h).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    send(&app, &Event::fixture("create-case-not-json.json")).await.expect_problem(415, "unsupported_media_type");
    let create = Event::fixture("create-case.json");
    for content_type in [None, Some("text/plain"), Some("application/jsonx"), Some("application/x-www-form-urlencoded")]
    {
        let resp = send(&app, &create.clone().with_header("content-type", content_type)).await;
        resp.expect_problem(415, "unsupported_media_type");
    }
    let decision = Event::for_case("decision.json", FIXTURE_CASE_ID).with_header("content-type", Some("text/plain"));
    send(&app, &decision).await.expect_problem(415, "unsupported_media_type");
    assert_nothing_sent_or_stored(&h).await;

    // JSON is JSON whatever the parameters or the case of the media type.
    for (i, content_type) in ["application/json; charset=utf-8", "Application/JSON"].iter().enumerate() {
        let event =
            create.clone().with_header("content-type", Some(content_type)).with_json(&case_body(&format!("ct-{i}")));
        send(&app, &event).await.expect(201);
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_that_does_not_quote_the_body() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    for body in ["", "{", "{\"fullName\": \"John Doe\",}", "{\"externalCaseId\": \"x\"} trailing", "nul"] {
        let resp = send(&app, &Event::fixture("create-case.json").with_body(body)).await;
        resp.expect_problem(400, "malformed_json");
        assert!(resp.json["detail"].as_str().unwrap().starts_with("at line "), "{}", resp.text);
        assert!(!resp.text.contains("John"), "the body is quoted: {}", resp.text);
        assert!(resp.json.get("errors").is_none());
    }
    let resp =
        send(&app, &Event::for_case("decision.json", FIXTURE_CASE_ID).with_body("{\"caseResult\": ACCEPT}")).await;
    resp.expect_problem(400, "malformed_json");
    assert_nothing_sent_or_stored(&h).await;
}

/// API Gateway sends a body that is not UTF-8 base64-encoded. (`cargo lambda watch`
/// cannot carry one: it answers 500 itself without calling the function, which is why
/// the local stack's schemathesis run does not count that answer; see
/// scripts/schemathesis_hooks.py.)
#[tokio::test]
async fn a_body_that_is_not_utf8_is_malformed_json() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let valid = case_body(FIXTURE_EXTERNAL_ID).to_string();
    let bodies: [&[u8]; 3] = [b"\xff[", b"{\"fullName\": \"\xc3\x28\"}", &[valid.as_bytes(), b"\x80"].concat()];
    for bytes in bodies {
        for event in [Event::fixture("create-case.json"), Event::for_case("decision.json", FIXTURE_CASE_ID)] {
            let mut event = event;
            event.0["body"] = json!(STANDARD.encode(bytes));
            event.0["isBase64Encoded"] = json!(true);
            let resp = send(&app, &event).await;
            resp.expect_problem(400, "malformed_json");
            assert!(resp.json.get("errors").is_none(), "{}", resp.text);
        }
    }
    assert_nothing_sent_or_stored(&h).await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let valid = case_body(FIXTURE_EXTERNAL_ID).to_string();
    // Whitespace is valid JSON: pad a valid case to the bound, then one byte past it.
    let at_bound = format!("{valid}{}", " ".repeat(gateway_cases_api::MAX_BODY_BYTES - valid.len()));
    let over = format!("{at_bound} ");
    assert_eq!(over.len(), 64 * 1024 + 1);
    let resp = send(&app, &Event::fixture("create-case.json").with_body(over.clone())).await;
    resp.expect_problem(413, "body_too_large");
    let resp = send(&app, &Event::for_case("decision.json", FIXTURE_CASE_ID).with_body(over)).await;
    resp.expect_problem(413, "body_too_large");
    assert_nothing_sent_or_stored(&h).await;

    // At the bound exactly, it is taken.
    send(&app, &Event::fixture("create-case.json").with_body(at_bound)).await.expect(201);
}

#[tokio::test]
async fn a_bad_case_id_is_a_400_and_an_unknown_one_a_404() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let fixtures = ["get-case.json", "get-case-live.json", "ogs-on.json", "ogs-off.json", "decision.json"];
    for name in fixtures {
        for bad in ["not-a-uuid", "6d92e7b4-715c-4ce3-a028", "1234"] {
            let resp = send(&app, &Event::for_case(name, bad)).await;
            resp.expect_problem(400, "invalid_case_system_id");
        }
        let unknown = uuid::Uuid::new_v4().to_string();
        send(&app, &Event::for_case(name, &unknown)).await.expect_problem(404, "case_not_found");
    }
    // Unknown here means not asked at Cabital either.
    assert_nothing_sent_or_stored(&h).await;
}

#[tokio::test]
async fn stage_prefixes_trailing_slashes_and_base64_bodies_are_understood() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    // A base64 body, as API Gateway sends one it does not take for text.
    let body = case_body(FIXTURE_EXTERNAL_ID).to_string();
    let mut event = Event::fixture("create-case.json");
    event.0["body"] = json!(STANDARD.encode(body.as_bytes()));
    event.0["isBase64Encoded"] = json!(true);
    let (id, _) = {
        let resp = send(&app, &event).await;
        resp.expect(201);
        (resp.json["caseSystemId"].as_str().unwrap().to_owned(), resp)
    };
    // A stage prefix or a custom domain's base path before /v1/.
    let resp = send(&app, &Event::for_case("get-case.json", &id).with_path(&format!("/prod/v1/cases/{id}"))).await;
    resp.expect(200);
    assert_eq!(resp.json["case"]["caseSystemId"], id.as_str());
    let resp = send(&app, &Event::for_case("get-case.json", &id).with_path(&format!("/v1/cases/{id}/"))).await;
    resp.expect(200);
}

#[tokio::test]
async fn api_gateways_route_key_and_path_parameters_route_and_a_default_route_falls_back_to_the_path() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let (id, _) = create(&app, None).await;
    // The fixtures carry what API Gateway sends: the template and the id apart.
    let event = Event::for_case("get-case.json", &id);
    assert_eq!(event.0["routeKey"], "GET /v1/cases/{caseSystemId}");
    assert_eq!(event.0["pathParameters"]["caseSystemId"], id.as_str());
    send(&app, &event).await.expect(200);
    // The route and the id come from them, whatever the path (a custom domain's mapping).
    let mut elsewhere = event.clone();
    elsewhere.0["rawPath"] = json!(format!("/kyc/cases/{id}"));
    elsewhere.0["requestContext"]["http"]["path"] = elsewhere.0["rawPath"].clone();
    let resp = send_unchecked(&app, &elsewhere).await;
    resp.expect(200);
    assert_eq!(resp.json["case"]["caseSystemId"], id.as_str());
    // `$default` (all `cargo lambda watch` sends): the same routes, by method and path.
    let resp = send_unchecked(&app, &elsewhere.on_default_route()).await;
    resp.expect_problem(404, "route_not_found");
    for fixture in ["get-case.json", "ogs-on.json", "ogs-off.json", "decision.json"] {
        let resp = send(&app, &Event::for_case(fixture, &id).on_default_route()).await;
        resp.expect(200);
        assert_eq!(
            resp.json["caseSystemId"].as_str().or(resp.json["case"]["caseSystemId"].as_str()),
            Some(id.as_str())
        );
    }
    send(&app, &Event::fixture("find-case.json").on_default_route()).await.expect(200);
}

#[test]
fn every_fixture_names_a_documented_route_or_the_default_one() {
    let dir = format!("{}/events", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let event = Event::fixture(&name);
        let key = event.0["routeKey"].as_str().unwrap().to_owned();
        assert_eq!(event.0["requestContext"]["routeKey"], key.as_str(), "{name}");
        // What API Gateway itself would send for this method and path.
        assert_eq!(event.clone().routed().0["routeKey"], key.as_str(), "{name}");
        match key.split_once(' ') {
            Some((_, template)) if template.contains("{caseSystemId}") => {
                let id = event.0["pathParameters"]["caseSystemId"].as_str().unwrap();
                assert!(event.path().contains(id), "{name}");
            }
            _ => assert!(event.0.get("pathParameters").is_none(), "{name}"),
        }
    }
}

#[tokio::test]
async fn the_gateway_validates_a_decision_before_anything_is_read_or_sent() {
    let h = gateway_support::harness(|_| {}).await;
    let id: gateway_cabital::CaseSystemId = FIXTURE_CASE_ID.parse().unwrap();
    let bad = json!({"caseResult": "MAYBE", "comment": 7, "by": "me"});
    match h.gateway.decide(id, &bad, gateway_cabital::Deadline::NONE).await {
        Err(gateway_service::GatewayError::Validation(errs)) => {
            let mut fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
            fields.sort_unstable();
            assert_eq!(fields, ["by", "caseResult", "comment"]);
        }
        other => panic!("not a validation failure: {other:?}"),
    }
    assert_nothing_sent_or_stored(&h).await;
}
