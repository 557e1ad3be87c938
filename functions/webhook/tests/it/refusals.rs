//! Deliveries that are refused, through the real handler: every signature failure is a
//! 401 with a stable code (with `WEBHOOK_AUTH=signature`, the default), bad bodies are
//! 400 / 413, and nothing at all is stored.

use crate::common;

use common::*;
use gateway_cabital::CaseSystemId;
use gateway_support::{API_KEY, API_SECRET, Harness, harness};

const COMMENT: &str = "Matched list Sandbox OFAC SDN";

fn headers_without(headers: &[(String, String)], name: &str) -> Vec<(String, String)> {
    headers.iter().filter(|(n, _)| n != name).cloned().collect()
}

fn with_header(headers: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut out = headers_without(headers, name);
    out.push((name.to_owned(), value.to_owned()));
    out
}

/// What the table holds about a case: whether it exists, its version, its events.
async fn footprint(h: &Harness, id: &CaseSystemId) -> (Option<u64>, usize) {
    (case(h, id).await.map(|c| c.version), timeline(h, id).await.len())
}

#[tokio::test]
async fn every_signature_failure_is_401_with_a_stable_code_and_stores_nothing() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    // One case the table knows (nothing may change on it), one it does not (nothing may
    // be created for it).
    let (known, known_ext) = create_case(&h, "Ivan Blocklisted").await;
    let unknown = CaseSystemId::new(uuid::Uuid::new_v4());
    let before_known = footprint(&h, &known).await;
    let items_before = table_items(&h).await;

    for (id, ext) in [(known, known_ext.clone()), (unknown, new_external_id())] {
        let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", COMMENT);
        let bytes = body.as_bytes();
        let now = now_unix();
        let good = signature(API_KEY, API_SECRET, now, PATH, bytes);
        let altered = body.replace("SUGGEST_TO_REJECT", "SUGGEST_TO_ACCEPT");
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "forged signature",
                event("POST", PATH, "", &with_header(&good, "ACCESS-SIGN", &"ab".repeat(32)), bytes),
                "signature_mismatch",
            ),
            (
                "wrong key",
                event("POST", PATH, "", &signature("someone-elses-key", API_SECRET, now, PATH, bytes), bytes),
                "unknown_key",
            ),
            (
                "right key, wrong secret",
                event("POST", PATH, "", &signature(API_KEY, "guessed-secret", now, PATH, bytes), bytes),
                "signature_mismatch",
            ),
            (
                "no ACCESS-KEY",
                event("POST", PATH, "", &headers_without(&good, "ACCESS-KEY"), bytes),
                "missing_signature_header",
            ),
            (
                "no ACCESS-TIMESTAMP",
                event("POST", PATH, "", &headers_without(&good, "ACCESS-TIMESTAMP"), bytes),
                "missing_signature_header",
            ),
            (
                "no ACCESS-SIGN",
                event("POST", PATH, "", &headers_without(&good, "ACCESS-SIGN"), bytes),
                "missing_signature_header",
            ),
            (
                "empty ACCESS-SIGN",
                event("POST", PATH, "", &with_header(&good, "ACCESS-SIGN", ""), bytes),
                "missing_signature_header",
            ),
            ("no headers at all", event("POST", PATH, "", &[], bytes), "missing_signature_header"),
            (
                "an old timestamp, wrong secret",
                event("POST", PATH, "", &signature(API_KEY, "guessed-secret", now - 3_600, PATH, bytes), bytes),
                "signature_mismatch",
            ),
            (
                "timestamp in milliseconds",
                event("POST", PATH, "", &with_header(&good, "ACCESS-TIMESTAMP", &format!("{}000", now)), bytes),
                "bad_timestamp",
            ),
            (
                "timestamp not a number",
                event("POST", PATH, "", &with_header(&good, "ACCESS-TIMESTAMP", "soon"), bytes),
                "bad_timestamp",
            ),
            (
                "signature not hex",
                event("POST", PATH, "", &with_header(&good, "ACCESS-SIGN", "not-hex!"), bytes),
                "bad_signature_encoding",
            ),
            ("body altered after signing", event("POST", PATH, "", &good, altered.as_bytes()), "signature_mismatch"),
            (
                "body padded after signing",
                event("POST", PATH, "", &good, format!("{body} ").as_bytes()),
                "signature_mismatch",
            ),
            (
                "signed for another path",
                event("POST", PATH, "", &signature(API_KEY, API_SECRET, now, "/webhooks/other", bytes), bytes),
                "signature_mismatch",
            ),
        ];
        for (what, event, code) in cases {
            let a = deliver(&app, &event).await;
            assert_eq!(a.status, 401, "{what}: {}", a.text);
            assert_eq!(a.code(), code, "{what}: {}", a.text);
            assert_eq!(
                a.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
                Some("application/problem+json"),
                "{what}"
            );
            assert!(!a.text.contains(COMMENT), "{what}: the body is not echoed: {}", a.text);
        }
    }

    assert_eq!(footprint(&h, &known).await, before_known, "the known case is untouched");
    assert_eq!(case(&h, &unknown).await, None, "no case item for the unknown case");
    assert!(timeline(&h, &unknown).await.is_empty(), "no event for the unknown case");
    assert_eq!(table_items(&h).await, items_before, "nothing at all was written");
}

#[tokio::test]
async fn bad_bodies_are_400_or_413_and_store_nothing() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let id = CaseSystemId::new(uuid::Uuid::new_v4());
    let ext = new_external_id();
    let good = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", COMMENT);
    let max = gateway_service::WebhookSettings::default().max_body_bytes;
    let oversized = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", &"x".repeat(max));

    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("truncated JSON", good[..good.len() - 10].to_owned(), 400, "malformed_body"),
        ("not JSON", "caseSuggestion=SUGGEST_TO_REJECT".into(), 400, "malformed_body"),
        ("empty body", String::new(), 400, "malformed_body"),
        ("a JSON array", format!("[{good}]"), 400, "malformed_body"),
        ("trailing garbage", format!("{good}}}"), 400, "malformed_body"),
        ("unknown caseSuggestion", webhook_body(&id, &ext, "SUGGEST_TO_MAYBE", COMMENT), 400, "malformed_body"),
        ("caseSuggestion in lower case", webhook_body(&id, &ext, "suggest_to_reject", COMMENT), 400, "malformed_body"),
        ("no caseSystemId", good.replace(&format!(r#""caseSystemId":"{id}","#), ""), 400, "malformed_body"),
        ("caseSystemId not a UUID", good.replace(&id.to_string(), "case-1"), 400, "malformed_body"),
        ("externalCaseId over 36 characters", good.replace(&ext, &"e".repeat(37)), 400, "malformed_body"),
        ("caseSuggestion null", good.replace(r#""SUGGEST_TO_REJECT""#, "null"), 400, "malformed_body"),
        ("over 64 KiB", oversized.clone(), 413, "body_too_large"),
    ];
    for (what, body, status, code) in cases {
        let a = deliver(&app, &signed_event(&body)).await;
        assert_eq!(a.status, status, "{what}: {}", a.text);
        assert_eq!(a.code(), code, "{what}: {}", a.text);
        assert!(!a.text.contains(COMMENT), "{what}: the body is not echoed: {}", a.text);
    }
    // The bound comes first: an unsigned oversized body costs no secret and no HMAC.
    let unsigned = deliver(&app, &event("POST", PATH, "", &[], oversized.as_bytes())).await;
    assert_eq!((unsigned.status, unsigned.code()), (413, "body_too_large"), "{}", unsigned.text);
    // The unknown suggestion is named; nothing else is said about the body.
    let unknown = deliver(&app, &signed_event(&webhook_body(&id, &ext, "SUGGEST_TO_MAYBE", COMMENT))).await;
    assert!(unknown.body["detail"].as_str().unwrap_or("").contains("caseSuggestion"), "{}", unknown.text);

    assert_eq!(case(&h, &id).await, None);
    assert_eq!(table_items(&h).await, 0, "nothing at all was written");

    // A body of exactly the bound is taken.
    let padding = max - webhook_body(&id, &ext, "SUGGEST_TO_REJECT", "").len();
    let at_bound = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", &"y".repeat(padding));
    assert_eq!(at_bound.len(), max);
    let a = deliver(&app, &signed_event(&at_bound)).await;
    assert_eq!(a.status, 200, "{}", &a.text);
}

/// What each committed fixture is, checked at the time it was signed for: the README's
/// table, executable.
#[test]
fn the_committed_fixtures_are_what_the_readme_says() {
    use gateway_signing::{Credentials, IncomingHeaders, VerifyError, VerifyPolicy, verify};
    let credentials = Credentials::new(FIXTURE_KEY, FIXTURE_SECRET).unwrap();
    let policy = VerifyPolicy { tolerance_secs: 300 };
    let expected: [(&str, Result<(), VerifyError>); 8] = [
        ("webhook-signed.json", Ok(())),
        ("webhook-unsigned.json", Err(VerifyError::MissingHeader("ACCESS-KEY"))),
        ("webhook-forged-signature.json", Err(VerifyError::Mismatch)),
        ("webhook-wrong-key.json", Err(VerifyError::UnknownKey)),
        ("webhook-expired.json", Err(VerifyError::Expired { skew_secs: -3600, tolerance_secs: 300 })),
        ("webhook-malformed-json.json", Ok(())),
        ("webhook-unknown-suggestion.json", Ok(())),
        ("webhook-oversized.json", Ok(())),
    ];
    for (name, want) in &expected {
        let request = lambda_http::request::from_str(&fixture(name)).unwrap();
        let header = |n: &str| request.headers().get(n).and_then(|v| v.to_str().ok());
        let headers = IncomingHeaders {
            access_key: header("ACCESS-KEY"),
            access_timestamp: header("ACCESS-TIMESTAMP"),
            access_sign: header("ACCESS-SIGN"),
        };
        assert_eq!(request.method(), "POST", "{name}");
        assert_eq!(request.uri().path(), PATH, "{name}");
        let got =
            verify(&credentials, policy, headers, FIXTURE_TIMESTAMP, "POST", PATH, request.body().as_ref()).map(|_| ());
        assert_eq!(&got, want, "{name}");
        let body = std::str::from_utf8(request.body().as_ref()).unwrap();
        match *name {
            "webhook-malformed-json.json" => assert!(serde_json::from_str::<serde_json::Value>(body).is_err()),
            "webhook-unknown-suggestion.json" => assert!(body.contains("SUGGEST_TO_MAYBE")),
            "webhook-oversized.json" => assert!(body.len() > 64 * 1024),
            _ => assert!(serde_json::from_str::<gateway_cabital::WebhookNotification>(body).is_ok(), "{name}"),
        }
    }
    // Every fixture in events/ is checked here.
    let mut on_disk: Vec<String> = std::fs::read_dir(format!("{}/events", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = expected.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// The fixtures signed again for now, as the README says to invoke them, through the
/// handler.
#[tokio::test]
async fn the_fixtures_signed_for_now_get_the_answers_the_readme_says() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let cases: [(&str, String, u16, &str); 8] = [
        ("webhook-unsigned.json", fixture("webhook-unsigned.json"), 401, "missing_signature_header"),
        (
            "webhook-forged-signature.json",
            resigned_fixture("webhook-forged-signature.json", API_KEY, "forger-guessed-secret", 0),
            401,
            "signature_mismatch",
        ),
        (
            "webhook-wrong-key.json",
            resigned_fixture("webhook-wrong-key.json", "someone-elses-api-key", "someone-elses-secret", 0),
            401,
            "unknown_key",
        ),
        // A genuine signature an hour old is a late delivery, taken as a hint: its case
        // is unknown here and at Cabital, so it is refused and nothing is stored.
        (
            "webhook-expired.json",
            resigned_fixture("webhook-expired.json", API_KEY, API_SECRET, -3600),
            404,
            "case_unknown_to_cabital",
        ),
        (
            "webhook-signed.json as committed",
            fixture("webhook-signed.json").replace(FIXTURE_KEY, API_KEY),
            401,
            "signature_mismatch",
        ),
        (
            "webhook-malformed-json.json",
            resigned_fixture("webhook-malformed-json.json", API_KEY, API_SECRET, 0),
            400,
            "malformed_body",
        ),
        (
            "webhook-unknown-suggestion.json",
            resigned_fixture("webhook-unknown-suggestion.json", API_KEY, API_SECRET, 0),
            400,
            "malformed_body",
        ),
        (
            "webhook-oversized.json",
            resigned_fixture("webhook-oversized.json", API_KEY, API_SECRET, 0),
            413,
            "body_too_large",
        ),
    ];
    for (what, event, status, code) in cases {
        let a = deliver(&app, &event).await;
        assert_eq!((a.status, a.code()), (status, code), "{what}: {}", a.text);
    }
    assert_eq!(table_items(&h).await, 0, "nothing stored for any refused fixture");

    // The good one, signed for now, is stored: its case is unknown here and at the
    // sandbox, so it is kept, reported, and left for the reconciler.
    let a = deliver(&app, &resigned_fixture("webhook-signed.json", API_KEY, API_SECRET, 0)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!((a.body["caseKnown"].as_bool(), a.body["refresh"].as_str()), (Some(false), Some("deferred")));
    let id: CaseSystemId = "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c".parse().unwrap();
    let case = case(&h, &id).await.expect("stored");
    assert_eq!(case.external_case_id.as_str(), "fixture-0001");
    assert_eq!(webhook_events(&timeline(&h, &id).await).len(), 1);
}
