//! Request signing: what is accepted, what is refused with 401, the 30 s window, the
//! clock offset in `Date`, credential rotation.

use crate::common;

use std::time::{Duration, SystemTime};

use common::{Api, KEY, Raw, SECRET, individual, now, sandbox, sign};
use gateway_sandbox::{Credential, Faults, SignatureEncoding};
use serde_json::{Value, json};

async fn status(api: &Api, raw: Raw) -> u16 {
    api.raw(raw).await.status().as_u16()
}

async fn error_message(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 401);
    body["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn independently_signed_requests_are_accepted() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let body = individual("auth-1", "John Doe").to_string();
    let response = api.raw(Raw::signed("POST", "/api/v1/cases", &body, 0)).await;
    assert_eq!(response.status(), 201);
    let case: Value = response.json().await.unwrap();
    let id = case["caseSystemId"].as_str().unwrap();

    // GET, with a query string that is part of what is signed.
    let path = format!("/api/v1/cases/{id}?verbose=1&x=%20y");
    assert_eq!(status(&api, Raw::signed("GET", &path, "", 0)).await, 200);
    assert_eq!(status(&api, Raw::signed("POST", &format!("/api/v1/cases/{id}/ogs"), "", 0)).await, 201);
    assert_eq!(status(&api, Raw::signed("DELETE", &format!("/api/v1/cases/{id}/ogs"), "", 0)).await, 204);
    let decision = json!({"caseResult": "ACCEPT", "comment": "fine"}).to_string();
    assert_eq!(status(&api, Raw::signed("POST", &format!("/api/v1/cases/{id}/decision"), &decision, 0)).await, 201);
    assert_eq!(sandbox.stats().unauthorized, 0);
}

#[tokio::test]
async fn every_tampered_part_is_refused() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let case = api.create(&individual("auth-2", "John Doe")).await;
    let id = case["caseSystemId"].as_str().unwrap().to_owned();
    let ogs = format!("/api/v1/cases/{id}/ogs");
    let body = individual("auth-3", "John Doe").to_string();

    // Method: signed as POST, sent as DELETE.
    let mut raw = Raw::signed("POST", &ogs, "", 0);
    raw.method = "DELETE".into();
    assert_eq!(status(&api, raw).await, 401);

    // Method case: signing "post" is not signing "POST".
    let mut raw = Raw::signed("post", &ogs, "", 0);
    raw.method = "POST".into();
    assert_eq!(status(&api, raw).await, 401);

    // Path.
    let mut raw = Raw::signed("GET", "/api/v1/cases/00000000-0000-4000-8000-000000000000", "", 0);
    raw.path = format!("/api/v1/cases/{id}");
    assert_eq!(status(&api, raw).await, 401);

    // Query: signed without, sent with; and signed with one value, sent with another.
    let mut raw = Raw::signed("GET", &format!("/api/v1/cases/{id}"), "", 0);
    raw.path = format!("/api/v1/cases/{id}?a=1");
    assert_eq!(status(&api, raw).await, 401);
    let mut raw = Raw::signed("GET", &format!("/api/v1/cases/{id}?a=1"), "", 0);
    raw.path = format!("/api/v1/cases/{id}?a=2");
    assert_eq!(status(&api, raw).await, 401);

    // Body: one byte changed, and whitespace added (same JSON, other bytes).
    let mut raw = Raw::signed("POST", "/api/v1/cases", &body, 0);
    raw.body = body.replace("John", "Joan").into_bytes();
    assert_eq!(status(&api, raw).await, 401);
    let mut raw = Raw::signed("POST", "/api/v1/cases", &body, 0);
    raw.body = format!("{body} ").into_bytes();
    assert_eq!(status(&api, raw).await, 401);

    // Timestamp: header changed after signing.
    let mut raw = Raw::signed("GET", &format!("/api/v1/cases/{id}"), "", 0);
    raw.timestamp = Some((now() - 1).to_string());
    assert_eq!(status(&api, raw).await, 401);

    // Key: unknown, and another valid key with this secret.
    sandbox.set_credentials(vec![Credential::new(KEY, SECRET), Credential::new("other-key", "other-secret")]);
    let mut raw = Raw::signed("GET", &format!("/api/v1/cases/{id}"), "", 0);
    raw.key = Some("nobody".into());
    let response = api.raw(raw).await;
    assert_eq!(response.status(), 401);
    assert!(error_message(response).await.contains("key"));
    let mut raw = Raw::signed("GET", &format!("/api/v1/cases/{id}"), "", 0);
    raw.key = Some("other-key".into());
    assert_eq!(status(&api, raw).await, 401);

    // Signature: upper-case hex of the right digest is not the agreed encoding.
    let mut raw = Raw::signed("GET", &format!("/api/v1/cases/{id}"), "", 0);
    raw.sign = raw.sign.map(|s| s.to_uppercase());
    assert_eq!(status(&api, raw).await, 401);

    // Missing headers.
    for strip in 0..3 {
        let mut raw = Raw::signed("GET", &format!("/api/v1/cases/{id}"), "", 0);
        match strip {
            0 => raw.key = None,
            1 => raw.timestamp = None,
            _ => raw.sign = None,
        }
        assert_eq!(status(&api, raw).await, 401, "header {strip} missing");
    }

    // Nothing tampered is created; the untampered control still works.
    assert_eq!(sandbox.stats().creates, 1);
    assert_eq!(sandbox.stats().unauthorized, 14);
    assert_eq!(status(&api, Raw::signed("GET", &format!("/api/v1/cases/{id}"), "", 0)).await, 200);
}

#[tokio::test]
async fn timestamp_window_is_30_seconds_both_ways() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    // 28 and 32 rather than 30 and 31: the second may tick between signing and checking.
    for (skew, expected) in [(-28, 200), (28, 200), (-32, 401), (32, 401), (-3600, 401)] {
        let raw = Raw::signed("GET", "/api/v1/cases/00000000-0000-4000-8000-000000000000", "", skew);
        let response = api.raw(raw).await;
        // 200 is not possible for an unknown case: "accepted" shows as 404.
        let expected = if expected == 200 { 404 } else { 401 };
        assert_eq!(response.status(), expected, "skew {skew}");
        if expected == 401 {
            assert!(error_message(response).await.contains("expired"));
        }
    }
    // Milliseconds and fractions are not whole seconds.
    let mut raw = Raw::signed("GET", "/api/v1/cases", "", 0);
    let ms = format!("{}000", now());
    raw.sign = Some(sign(SECRET, &ms, "GET", "/api/v1/cases", b""));
    raw.timestamp = Some(ms);
    assert_eq!(status(&api, raw).await, 401);
    let frac = format!("{}.5", now());
    let mut raw = Raw::signed("GET", "/api/v1/cases", "", 0);
    raw.sign = Some(sign(SECRET, &frac, "GET", "/api/v1/cases", b""));
    raw.timestamp = Some(frac);
    assert_eq!(status(&api, raw).await, 401);
}

#[tokio::test]
async fn clock_offset_shows_in_date_and_moves_the_window() {
    let sandbox = sandbox(|c| c.faults.clock_offset_secs = 3600).await;
    let api = Api::new(&sandbox);
    let response = api.raw(Raw::signed("GET", "/api/v1/cases/x", "", 0)).await;
    // Signed with real time, an hour behind the sandbox: expired.
    assert_eq!(response.status(), 401);
    let date = response.headers()["date"].to_str().unwrap();
    let date = httpdate::parse_http_date(date).unwrap();
    let ahead = date.duration_since(SystemTime::now()).unwrap_or_default();
    assert!(ahead > Duration::from_secs(3590) && ahead < Duration::from_secs(3610), "{ahead:?}");

    // Learn the offset from Date, as the client should, and the request passes.
    let offset = httpdate::parse_http_date(response.headers()["date"].to_str().unwrap())
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - now();
    let response = api.raw(Raw::signed("GET", "/api/v1/cases/x", "", offset)).await;
    assert_eq!(response.status(), 404);

    // The control API's answers carry the same clock, and it can be moved at run time.
    sandbox.set_faults(Faults { clock_offset_secs: -7200, ..Faults::default() }).unwrap();
    let response = api.control("GET", "/stats", None).await;
    let date = httpdate::parse_http_date(response.headers()["date"].to_str().unwrap()).unwrap();
    let behind = SystemTime::now().duration_since(date).unwrap();
    assert!(behind > Duration::from_secs(7190) && behind < Duration::from_secs(7210), "{behind:?}");
}

#[tokio::test]
async fn without_offset_date_is_real_time() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let response = api.call("GET", "/api/v1/cases/x", "").await;
    let date = httpdate::parse_http_date(response.headers()["date"].to_str().unwrap()).unwrap();
    let secs = date.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((secs - now()).abs() <= 2);
}

#[tokio::test]
async fn credentials_rotate_at_run_time() {
    let sandbox = sandbox(|_| {}).await;
    let api = Api::new(&sandbox);
    let path = "/api/v1/cases/00000000-0000-4000-8000-000000000000";
    assert_eq!(status(&api, Raw::signed("GET", path, "", 0)).await, 404);

    // New secret for the same key: the old signature fails, the new one passes.
    let response =
        api.control("PUT", "/credentials", Some(json!([{"apiKey": KEY, "apiSecret": "rotated-secret"}]))).await;
    assert_eq!(response.status(), 204);
    assert_eq!(status(&api, Raw::signed("GET", path, "", 0)).await, 401);
    let timestamp = now().to_string();
    let mut raw = Raw::signed("GET", path, "", 0);
    raw.sign = Some(sign("rotated-secret", &timestamp, "GET", path, b""));
    raw.timestamp = Some(timestamp);
    assert_eq!(status(&api, raw).await, 404);

    // Bad credential JSON is refused and changes nothing.
    let response = api.control("PUT", "/credentials", Some(json!([{"apiKey": KEY}]))).await;
    assert_eq!(response.status(), 400);

    // Reset returns to the starting credentials.
    assert_eq!(api.control("POST", "/reset", None).await.status(), 204);
    assert_eq!(status(&api, Raw::signed("GET", path, "", 0)).await, 404);
}

#[tokio::test]
async fn base64_encoding_when_configured() {
    use base64_check::encode_b64;
    let sandbox = sandbox(|c| c.signature_encoding = SignatureEncoding::Base64).await;
    let api = Api::new(&sandbox);
    let path = "/api/v1/cases/00000000-0000-4000-8000-000000000000";
    let timestamp = now().to_string();
    let hex_sign = sign(SECRET, &timestamp, "GET", path, b"");
    let mut raw = Raw::signed("GET", path, "", 0);
    raw.timestamp = Some(timestamp);
    raw.sign = Some(encode_b64(&hex::decode(&hex_sign).unwrap()));
    assert_eq!(status(&api, raw.clone()).await, 404);
    raw.sign = Some(hex_sign);
    assert_eq!(status(&api, raw).await, 401);
}

/// A tiny standard-alphabet base64 encoder, so the test does not borrow the sandbox's.
mod base64_check {
    pub fn encode_b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn rfc4648_vectors() {
        assert_eq!(encode_b64(b"f"), "Zg==");
        assert_eq!(encode_b64(b"fo"), "Zm8=");
        assert_eq!(encode_b64(b"foo"), "Zm9v");
        assert_eq!(encode_b64(b"foobar"), "Zm9vYmFy");
    }
}
