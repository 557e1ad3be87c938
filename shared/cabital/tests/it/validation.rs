//! Validation of case and decision submissions: every rule of `cabital-api.md`.

use gateway_cabital::{
    Decision, MAX_ECHOED_FIELD_CHARS, MAX_FIELD_ERRORS, ScreenType, validate_decision, validate_new_case,
};
use serde_json::{Value, json};
use time::macros::date;

const TODAY: time::Date = date!(2026 - 11 - 29);

fn individual() -> Value {
    json!({
        "externalCaseId": "243d19cf-562f-4060-89fa-1d35a7723c3e",
        "screenType": "INDIVIDUAL",
        "fullName": "John Doe",
        "individualInfo": {"gender": "MALE", "dob": "2002-02-02", "nationality": "JPN", "residentialCountry": "HKG"},
        "organizationInfo": {}
    })
}

fn codes(v: &Value) -> Vec<(String, &'static str)> {
    validate_new_case(v, TODAY).unwrap_err().0.into_iter().map(|e| (e.field, e.code)).collect()
}

fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    *v.pointer_mut(pointer).unwrap() = new;
    v
}

#[test]
fn the_providers_sample_is_valid_and_serialises_as_sent() {
    let case = validate_new_case(&individual(), TODAY).unwrap();
    assert_eq!(case.screen_type, ScreenType::Individual);
    assert_eq!(case.external_case_id.as_str(), "243d19cf-562f-4060-89fa-1d35a7723c3e");
    let wire: Value = serde_json::to_value(&case).unwrap();
    assert_eq!(wire, individual());
}

#[test]
fn organisation_passes_its_info_through_unchanged() {
    let v = json!({
        "externalCaseId": "org-1", "screenType": "ORGANISATION", "fullName": "ACME Ltd",
        "organizationInfo": {"registrationNumber": "123", "nested": {"a": [1, 2]}}
    });
    let case = validate_new_case(&v, TODAY).unwrap();
    let wire = serde_json::to_value(&case).unwrap();
    assert_eq!(wire["organizationInfo"], v["organizationInfo"]);
    assert_eq!(wire["individualInfo"], json!({}));
}

#[test]
fn every_bad_field_is_reported_at_once() {
    let v = json!({
        "externalCaseId": "x".repeat(37),
        "screenType": "PERSON",
        "fullName": "",
        "individualInfo": {"gender": "M", "dob": "2023-02-30", "nationality": "jpn", "residentialCountry": "XXX"},
        "extra": 1
    });
    let got = validate_new_case(&v, TODAY).unwrap_err();
    let fields = got.fields();
    for f in ["externalCaseId", "screenType", "fullName", "extra"] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    // screenType is unknown, so the info objects cannot be judged against it.
    assert_eq!(got.0.len(), 4, "{got:?}");
}

#[test]
fn echoed_field_errors_are_bounded_in_number_and_length() {
    // A 60 KiB body of unknown keys would otherwise be answered with every key, in full.
    let mut v = individual();
    let obj = v.as_object_mut().unwrap();
    for i in 0..500 {
        obj.insert(format!("{i:04}{}", "k".repeat(100)), json!(1));
    }
    let got = validate_new_case(&v, TODAY).unwrap_err();
    assert_eq!(got.0.len(), MAX_FIELD_ERRORS + 1, "{got:?}");
    assert!(got.0[..MAX_FIELD_ERRORS].iter().all(|e| e.code == "unknown_field"));
    for e in &got.0[..MAX_FIELD_ERRORS] {
        assert_eq!(e.field.chars().count(), MAX_ECHOED_FIELD_CHARS, "{}", e.field);
        assert!(e.field.ends_with('…'), "{}", e.field);
    }
    let last = got.0.last().unwrap();
    assert_eq!((last.field.as_str(), last.code), ("", "too_many_errors"));
    assert!(serde_json::to_vec(&got).unwrap().len() < 4096);

    // Short names are echoed whole; a decision is bounded the same way.
    assert_eq!(codes(&with(individual(), "/screenType", json!("X"))), [("screenType".to_owned(), "invalid_value")]);
    let mut d = json!({"caseResult": "ACCEPT"});
    for i in 0..50 {
        d.as_object_mut().unwrap().insert(format!("x{i}"), json!(1));
    }
    assert_eq!(validate_decision(&d).unwrap_err().0.len(), MAX_FIELD_ERRORS + 1);
}

#[test]
fn individual_info_rules() {
    let got = codes(&with(
        individual(),
        "/individualInfo",
        json!({"gender": "M", "dob": "2023-02-30", "nationality": "jpn", "residentialCountry": "XXX", "x": 1}),
    ));
    assert!(got.contains(&("individualInfo.gender".into(), "invalid_value")), "{got:?}");
    assert!(got.contains(&("individualInfo.dob".into(), "invalid_date")));
    assert!(got.contains(&("individualInfo.nationality".into(), "unknown_country")));
    assert!(got.contains(&("individualInfo.residentialCountry".into(), "unknown_country")));
    assert!(got.contains(&("individualInfo.x".into(), "unknown_field")));
    assert_eq!(got.len(), 5);
}

#[test]
fn dates_are_calendar_dates_and_not_in_the_future() {
    assert_eq!(
        codes(&with(individual(), "/individualInfo/dob", json!("2026-11-30"))),
        vec![("individualInfo.dob".into(), "future_date")]
    );
    assert!(validate_new_case(&with(individual(), "/individualInfo/dob", json!("2026-11-29")), TODAY).is_ok());
    assert!(validate_new_case(&with(individual(), "/individualInfo/dob", json!("2024-02-29")), TODAY).is_ok());
    for bad in ["2023-02-29", "2002-2-2", "02-02-2002", "2002/02/02", "2002-02-02T00:00:00"] {
        assert_eq!(
            codes(&with(individual(), "/individualInfo/dob", json!(bad))),
            vec![("individualInfo.dob".into(), "invalid_date")],
            "{bad}"
        );
    }
    assert_eq!(codes(&with(individual(), "/individualInfo/dob", json!("1899-12-31")))[0].1, "implausible_date");
}

#[test]
fn country_codes_come_from_the_iso_list() {
    for good in ["JPN", "HKG", "GBR", "USA", "DEU"] {
        assert!(validate_new_case(&with(individual(), "/individualInfo/nationality", json!(good)), TODAY).is_ok());
    }
    for bad in ["ZZZ", "UK", "GB", "jpn", "JPNX", ""] {
        assert_eq!(codes(&with(individual(), "/individualInfo/nationality", json!(bad)))[0].1, "unknown_country");
    }
}

#[test]
fn external_id_is_at_most_36_unicode_characters() {
    let ok36: String = "é".repeat(36); // 72 bytes, 36 characters
    assert!(validate_new_case(&with(individual(), "/externalCaseId", json!(ok36)), TODAY).is_ok());
    assert_eq!(codes(&with(individual(), "/externalCaseId", json!("é".repeat(37))))[0].1, "too_long");
    assert_eq!(codes(&with(individual(), "/externalCaseId", json!("  ")))[0].1, "empty");
    assert_eq!(codes(&with(individual(), "/externalCaseId", json!("a\u{0}b")))[0].1, "control_character");
    assert_eq!(codes(&with(individual(), "/externalCaseId", json!(42)))[0].1, "invalid_type");
}

#[test]
fn the_info_object_must_match_the_screen_type() {
    let mut v = individual();
    v.as_object_mut().unwrap().remove("individualInfo");
    assert_eq!(codes(&v), vec![("individualInfo".into(), "required")]);
    let v = with(individual(), "/organizationInfo", json!({"name": "x"}));
    assert_eq!(codes(&v), vec![("organizationInfo".into(), "not_allowed")]);
    let v = with(individual(), "/screenType", json!("ORGANISATION"));
    let got = codes(&v);
    assert!(got.contains(&("organizationInfo".into(), "empty")), "{got:?}");
    assert!(got.contains(&("individualInfo".into(), "not_allowed")));
    // American spelling of the enum is not Cabital's.
    assert_eq!(codes(&with(individual(), "/screenType", json!("ORGANIZATION")))[0].1, "invalid_value");
    let big = "x".repeat(17 * 1024);
    let v =
        json!({"externalCaseId": "o", "screenType": "ORGANISATION", "fullName": "A", "organizationInfo": {"b": big}});
    assert_eq!(codes(&v), vec![("organizationInfo".into(), "too_large")]);
}

#[test]
fn not_an_object_is_one_error() {
    for v in [json!([]), json!("x"), json!(null), json!(1)] {
        assert_eq!(codes(&v), vec![("".into(), "invalid_type")]);
    }
}

#[test]
fn messages_and_debug_never_carry_personal_data() {
    let v = with(individual(), "/fullName", json!("Zebediah Quux".repeat(30)));
    let errs = validate_new_case(&v, TODAY).unwrap_err();
    assert!(!format!("{errs:?} {errs}").contains("Zebediah"));
    let case = validate_new_case(&individual(), TODAY).unwrap();
    let shown = format!("{case:?}");
    for pii in ["John Doe", "2002", "JPN", "HKG"] {
        assert!(!shown.contains(pii), "{pii} in {shown}");
    }
}

#[test]
fn decisions() {
    let d = validate_decision(&json!({"caseResult": "ACCEPT", "comment": "fine"})).unwrap();
    assert_eq!(d.case_result, Decision::Accept);
    assert_eq!(serde_json::to_value(&d).unwrap(), json!({"caseResult": "ACCEPT", "comment": "fine"}));
    assert!(validate_decision(&json!({"caseResult": "REJECT"})).is_ok());
    let e = validate_decision(&json!({"caseResult": "MAYBE", "comment": 5, "x": 1})).unwrap_err();
    // Unknown fields first, then the known ones in the document's order.
    assert_eq!(e.fields(), vec!["x", "caseResult", "comment"]);
}

#[test]
fn both_comment_spellings_are_read() {
    let base = json!({"caseSystemId": "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c", "externalCaseId": "e", "suggestion": "NO_SUGGESTION", "ogs": true});
    for (k1, k2) in [("suggestion_comment", "decision_comment"), ("suggestionComment", "decisionComment")] {
        let mut v = base.clone();
        v[k1] = json!("s");
        v[k2] = json!("d");
        let c: gateway_cabital::Case = serde_json::from_value(v).unwrap();
        assert_eq!(c.suggestion_comment.as_deref().map(String::as_str), Some("s"));
        assert_eq!(c.decision_comment.as_deref().map(String::as_str), Some("d"));
        assert!(c.ogs);
    }
}

#[test]
fn a_name_has_one_spelling_nfc_so_one_request_hash() {
    // "Zoë Ïvanova": precomposed (NFC) and decomposed (NFD, e + U+0308).
    let nfc = with(individual(), "/fullName", json!("Zo\u{00EB} \u{00CF}vanova"));
    let nfd = with(individual(), "/fullName", json!("Zoe\u{0308} I\u{0308}vanova"));
    let (a, b) = (validate_new_case(&nfc, TODAY).unwrap(), validate_new_case(&nfd, TODAY).unwrap());
    assert_eq!(a.full_name.expose(), "Zo\u{00EB} \u{00CF}vanova");
    assert_eq!(a, b, "both spellings are the same case");
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap(),
        "the same bytes sent and hashed"
    );
    // Hidden characters are refused, not silently removed.
    let hidden = with(individual(), "/fullName", json!("Ivan\u{200B}Blocklisted"));
    assert_eq!(codes(&hidden), vec![("fullName".to_owned(), "hidden_character")]);
}
