//! Every validation rule of a create surfaces as a 400 problem+json with exactly one
//! entry per bad field, and nothing is sent to Cabital or stored.

use crate::common;

use common::*;
use serde_json::{Value, json};

/// The (field, code) pairs of a 400, sorted.
fn entries(resp: &Resp) -> Vec<(String, String)> {
    let mut got: Vec<(String, String)> = resp.json["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors[]: {}", resp.text))
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    got.sort();
    got
}

fn sorted(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut want: Vec<(String, String)> = expected.iter().map(|(f, c)| ((*f).to_owned(), (*c).to_owned())).collect();
    want.sort();
    want
}

/// Sends a create and asserts its 400 names exactly `expected`, with messages that never
/// echo a submitted value.
async fn assert_invalid(app: &gateway_cases_api::App, event: &Event, expected: &[(&str, &str)]) {
    let resp = send(app, event).await;
    resp.expect_problem(400, "validation_failed");
    assert_eq!(entries(&resp), sorted(expected), "for {}", event.0["body"]);
    assert_eq!(resp.json["detail"], format!("{} field(s) are invalid", expected.len()));
    // Messages name the rule, never the bad value: values are personal data.
    let body = event.json_body();
    for e in resp.json["errors"].as_array().unwrap() {
        let message = e["message"].as_str().unwrap();
        let pointer = format!("/{}", e["field"].as_str().unwrap().replace('.', "/"));
        if let Some(Value::String(value)) = body.pointer(&pointer).filter(|_| pointer != "/")
            && value.trim().len() >= 3
        {
            assert!(!message.contains(value.as_str()), "the message {message:?} echoes the value {value:?}");
        }
    }
}

/// Asserts Cabital was never called and the table holds nothing at all.
async fn assert_nothing_sent_or_stored(h: &gateway_support::Harness) {
    let stats = h.sandbox.stats();
    assert_eq!(stats.creates, 0);
    assert_eq!(sandbox_requests_total(h), 0, "{:?}", stats.requests);
    let items = table_items(&h.store).await;
    assert!(items.is_empty(), "the table holds {items:?}");
}

fn valid() -> Value {
    Event::fixture("create-case.json").json_body()
}

fn with(pointer: &str, value: Value) -> Value {
    let mut body = valid();
    *body.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} is not in the body")) = value;
    body
}

fn without(key: &str) -> Value {
    let mut body = valid();
    body.as_object_mut().unwrap().remove(key);
    body
}

fn organisation() -> Value {
    Event::fixture("create-case-organisation.json").json_body()
}

#[tokio::test]
async fn the_invalid_fixtures_name_every_bad_field_once() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    // screenType is unknown, so the info object cannot be judged against it.
    assert_invalid(
        &app,
        &Event::fixture("create-case-invalid.json"),
        &[("externalCaseId", "too_long"), ("screenType", "invalid_value"), ("fullName", "empty")],
    )
    .await;
    assert_invalid(
        &app,
        &Event::fixture("create-case-invalid-individual.json"),
        &[
            ("externalCaseId", "control_character"),
            ("fullName", "too_long"),
            ("individualInfo.gender", "invalid_value"),
            ("individualInfo.dob", "invalid_date"),
            ("individualInfo.nationality", "unknown_country"),
            ("individualInfo.residentialCountry", "unknown_country"),
            ("individualInfo.passportNumber", "unknown_field"),
            ("organizationInfo", "not_allowed"),
            ("notes", "unknown_field"),
        ],
    )
    .await;
    assert_nothing_sent_or_stored(&h).await;
}

#[tokio::test]
async fn every_rule_of_a_case() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let big = "x".repeat(17 * 1024);
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        // The body itself.
        (json!([]), vec![("", "invalid_type")]),
        (json!("a case"), vec![("", "invalid_type")]),
        (json!({}), vec![("externalCaseId", "required"), ("screenType", "required"), ("fullName", "required")]),
        (
            json!({"externalCaseId": 5, "screenType": true, "fullName": ["John"]}),
            vec![("externalCaseId", "invalid_type"), ("screenType", "invalid_type"), ("fullName", "invalid_type")],
        ),
        (
            json!({"externalCaseId": null, "screenType": null, "fullName": null}),
            vec![("externalCaseId", "required"), ("screenType", "required"), ("fullName", "required")],
        ),
        (
            {
                let mut b = valid();
                b["extra"] = json!(1);
                b
            },
            vec![("extra", "unknown_field")],
        ),
        // externalCaseId: 1 to 36 characters, no control characters.
        (with("/externalCaseId", json!("")), vec![("externalCaseId", "empty")]),
        (with("/externalCaseId", json!("   ")), vec![("externalCaseId", "empty")]),
        (with("/externalCaseId", json!("x".repeat(37))), vec![("externalCaseId", "too_long")]),
        (with("/externalCaseId", json!("ü".repeat(37))), vec![("externalCaseId", "too_long")]),
        (with("/externalCaseId", json!("a\nb")), vec![("externalCaseId", "control_character")]),
        // ... no hidden characters, and one spelling (NFC).
        (with("/externalCaseId", json!("cust\u{200B}0001")), vec![("externalCaseId", "hidden_character")]),
        (with("/externalCaseId", json!("cust-\u{E000}")), vec![("externalCaseId", "hidden_character")]),
        (with("/externalCaseId", json!("zoe\u{0301}")), vec![("externalCaseId", "not_normalized")]),
        // screenType: exactly the two spellings.
        (with("/screenType", json!("ORGANIZATION")), vec![("screenType", "invalid_value")]),
        (with("/screenType", json!("individual")), vec![("screenType", "invalid_value")]),
        (without("screenType"), vec![("screenType", "required")]),
        // fullName.
        (without("fullName"), vec![("fullName", "required")]),
        (with("/fullName", json!("  ")), vec![("fullName", "empty")]),
        (with("/fullName", json!("J".repeat(257))), vec![("fullName", "too_long")]),
        (with("/fullName", json!("John\u{0000}Doe")), vec![("fullName", "control_character")]),
        // Names that hide from a list screening: format characters (zero-width space,
        // word joiner, byte-order mark, right-to-left override), private use, unassigned,
        // a name made only of them, a name without a letter.
        (with("/fullName", json!("Ivan\u{200B}Blocklisted")), vec![("fullName", "hidden_character")]),
        (with("/fullName", json!("Ivan\u{2060}Blocklisted")), vec![("fullName", "hidden_character")]),
        (with("/fullName", json!("\u{FEFF}Ivan Blocklisted")), vec![("fullName", "hidden_character")]),
        (with("/fullName", json!("\u{202E}detsilkcolB navI")), vec![("fullName", "hidden_character")]),
        (with("/fullName", json!("Ivan \u{E000}")), vec![("fullName", "hidden_character")]),
        (with("/fullName", json!("Ivan \u{0378}")), vec![("fullName", "hidden_character")]),
        (with("/fullName", json!("\u{200B}\u{2060}\u{FEFF}")), vec![("fullName", "hidden_character")]),
        (with("/fullName", json!("12345 - .")), vec![("fullName", "no_letter")]),
        // INDIVIDUAL: individualInfo required, organizationInfo absent or {}.
        (without("individualInfo"), vec![("individualInfo", "required")]),
        (with("/individualInfo", Value::Null), vec![("individualInfo", "required")]),
        (with("/individualInfo", json!("MALE")), vec![("individualInfo", "invalid_type")]),
        (
            with("/individualInfo", json!({})),
            vec![
                ("individualInfo.gender", "required"),
                ("individualInfo.dob", "required"),
                ("individualInfo.nationality", "required"),
                ("individualInfo.residentialCountry", "required"),
            ],
        ),
        (with("/organizationInfo", json!({"name": "ACME"})), vec![("organizationInfo", "not_allowed")]),
        (with("/organizationInfo", json!("ACME")), vec![("organizationInfo", "not_allowed")]),
        (with("/individualInfo/gender", json!("male")), vec![("individualInfo.gender", "invalid_value")]),
        (with("/individualInfo/gender", json!(1)), vec![("individualInfo.gender", "invalid_type")]),
        // Dates: yyyy-MM-dd, on the calendar, not in the future, not before 1900.
        (with("/individualInfo/dob", json!("2002/02/02")), vec![("individualInfo.dob", "invalid_date")]),
        (with("/individualInfo/dob", json!("02-02-2002")), vec![("individualInfo.dob", "invalid_date")]),
        (with("/individualInfo/dob", json!("2023-02-30")), vec![("individualInfo.dob", "invalid_date")]),
        (with("/individualInfo/dob", json!("2002-02-02T00:00:00Z")), vec![("individualInfo.dob", "invalid_date")]),
        (with("/individualInfo/dob", json!(20020202)), vec![("individualInfo.dob", "invalid_type")]),
        (with("/individualInfo/dob", json!("2999-01-01")), vec![("individualInfo.dob", "future_date")]),
        (with("/individualInfo/dob", json!("1899-12-31")), vec![("individualInfo.dob", "implausible_date")]),
        // Countries: ISO 3166-1 alpha-3, upper case, from the real list.
        (with("/individualInfo/nationality", json!("jpn")), vec![("individualInfo.nationality", "unknown_country")]),
        (with("/individualInfo/nationality", json!("JP")), vec![("individualInfo.nationality", "unknown_country")]),
        (with("/individualInfo/nationality", json!("ZZZ")), vec![("individualInfo.nationality", "unknown_country")]),
        (
            with("/individualInfo/residentialCountry", json!("XXX")),
            vec![("individualInfo.residentialCountry", "unknown_country")],
        ),
        (
            with("/individualInfo/residentialCountry", json!(392)),
            vec![("individualInfo.residentialCountry", "invalid_type")],
        ),
        (
            {
                let mut b = valid();
                b["individualInfo"].as_object_mut().unwrap().remove("residentialCountry");
                b
            },
            vec![("individualInfo.residentialCountry", "required")],
        ),
        // ORGANISATION: organizationInfo a non-empty object of at most 16 KiB, individualInfo absent or {}.
        (
            {
                let mut b = organisation();
                b.as_object_mut().unwrap().remove("organizationInfo");
                b
            },
            vec![("organizationInfo", "required")],
        ),
        (
            {
                let mut b = organisation();
                b["organizationInfo"] = json!({});
                b
            },
            vec![("organizationInfo", "empty")],
        ),
        (
            {
                let mut b = organisation();
                b["organizationInfo"] = json!(["ACME"]);
                b
            },
            vec![("organizationInfo", "invalid_type")],
        ),
        (
            {
                let mut b = organisation();
                b["organizationInfo"] = json!({"description": big});
                b
            },
            vec![("organizationInfo", "too_large")],
        ),
        (
            {
                let mut b = organisation();
                b["individualInfo"] = valid()["individualInfo"].clone();
                b
            },
            vec![("individualInfo", "not_allowed")],
        ),
    ];
    for (body, expected) in &cases {
        assert_invalid(&app, &Event::fixture("create-case.json").with_json(body), expected).await;
    }
    assert_nothing_sent_or_stored(&h).await;
}

#[tokio::test]
async fn the_bounds_themselves_are_accepted() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    // 36 characters of two bytes each: characters are counted, not bytes.
    let mut body = with("/externalCaseId", json!("ü".repeat(36)));
    body["fullName"] = json!("J".repeat(256));
    create(&app, Some(&body)).await;
    // ORGANISATION with individualInfo {} (as the provider's own sample sends the other one).
    let mut org = organisation();
    org["individualInfo"] = json!({});
    let resp = send(&app, &Event::fixture("create-case.json").with_json(&org)).await;
    resp.expect(201);
    // The oldest date of birth taken as real.
    let old = with("/individualInfo/dob", json!("1900-01-01"));
    let mut old = old;
    old["externalCaseId"] = json!("fixture-old");
    create(&app, Some(&old)).await;
    assert_eq!(h.sandbox.stats().creates, 3);
}
