//! Test vectors computed with an independent implementation (Python's `hmac` module).

use super::*;

const SECRET: &str = "test-secret-0123456789";
const KEY: &str = "test-key";

fn creds() -> Credentials {
    Credentials::new(KEY, SECRET).unwrap()
}

struct Vector {
    ts: i64,
    method: &'static str,
    path: &'static str,
    body: &'static str,
    hex: &'static str,
    b64: &'static str,
}

const VECTORS: &[Vector] = &[
    Vector {
        ts: 1623828308,
        method: "POST",
        path: "/api/v1/cases",
        body: r#"{"externalCaseId":"243d19cf-562f-4060-89fa-1d35a7723c3e","fullName":"John Doe"}"#,
        hex: "0140036f9bbcd24d0194146b8610c81329eee63e2bb073990dcee741db3db751",
        b64: "AUADb5u80k0BlBRrhhDIEynu5j4rsHOZDc7nQds9t1E=",
    },
    // A query string is part of the signed path.
    Vector {
        ts: 1623828308,
        method: "GET",
        path: "/api/v1/cases/6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c?live=true",
        body: "",
        hex: "fb1abe9c3624e702e7024f6cda05a0962b72412118c699c836a77eff345eb544",
        b64: "+xq+nDYk5wLnAk9s2gWglityQSEYxpnINqd+/zRetUQ=",
    },
    // An empty body for DELETE.
    Vector {
        ts: 1623828308,
        method: "DELETE",
        path: "/api/v1/cases/6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c/ogs",
        body: "",
        hex: "4c188a2d76446934499048fe2582a85045be9b98ebe84b9a034d0a9c8547a962",
        b64: "TBiKLXZEaTRJkEj+JYKoUEW+m5jr6EuaA00KnIVHqWI=",
    },
    // A non-ASCII body: the UTF-8 bytes are signed.
    Vector {
        ts: 1700000000,
        method: "POST",
        path: "/api/v1/cases",
        body: r#"{"fullName":"山田 太郎","comment":"Zoë"}"#,
        hex: "df078eed6b6fc0f444e547077c09c1dcd7e14386c2403233122a08f8bf73cbef",
        b64: "3weO7WtvwPRE5UcHfAnB3NfhQ4bCQDIzEioI+L9zy+8=",
    },
];

#[test]
fn vectors_sign_in_hex_and_base64() {
    for v in VECTORS {
        let h = sign(&creds(), SignatureEncoding::Hex, v.ts, v.method, v.path, v.body.as_bytes());
        assert_eq!(h.access_sign, v.hex, "{} {}", v.method, v.path);
        assert_eq!(h.access_key, KEY);
        assert_eq!(h.access_timestamp, v.ts.to_string());
        let b = sign(&creds(), SignatureEncoding::Base64, v.ts, v.method, v.path, v.body.as_bytes());
        assert_eq!(b.access_sign, v.b64);
    }
}

#[test]
fn method_is_upper_cased_in_the_prehash() {
    let v = &VECTORS[1];
    let h = sign(&creds(), SignatureEncoding::Hex, v.ts, "get", v.path, b"");
    assert_eq!(h.access_sign, v.hex);
    assert_eq!(prehash(5, "post", "/p", b"{}"), b"5POST/p{}".to_vec());
}

fn policy() -> VerifyPolicy {
    VerifyPolicy { tolerance_secs: 30 }
}

fn headers(v: &'static Vector) -> IncomingHeaders<'static> {
    IncomingHeaders { access_key: Some(KEY), access_timestamp: Some(leak(v.ts.to_string())), access_sign: Some(v.hex) }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn verify_accepts_every_vector() {
    for v in VECTORS {
        let ts = verify(&creds(), policy(), headers(v), v.ts + 3, v.method, v.path, v.body.as_bytes());
        assert_eq!(ts, Ok(v.ts));
    }
}

#[test]
fn verify_accepts_either_encoding_of_the_same_digest() {
    for v in VECTORS {
        let body = v.body.as_bytes();
        let upper = leak(v.hex.to_ascii_uppercase());
        for (text, encoding) in
            [(v.hex, SignatureEncoding::Hex), (upper, SignatureEncoding::Hex), (v.b64, SignatureEncoding::Base64)]
        {
            let mut h = headers(v);
            h.access_sign = Some(text);
            let got = verify_signature(&creds(), h, v.ts, v.method, v.path, body).unwrap();
            assert_eq!((got.timestamp, got.encoding, got.signed_with), (v.ts, encoding, SignedWith::ApiSecret));
        }
    }
    // Base64 of another digest, and base64 without its padding, are refused.
    let v = &VECTORS[0];
    let mut h = headers(v);
    h.access_sign = Some(VECTORS[1].b64);
    assert_eq!(verify(&creds(), policy(), h, v.ts, v.method, v.path, v.body.as_bytes()), Err(VerifyError::Mismatch));
    h.access_sign = Some(leak(v.b64.trim_end_matches('=').to_owned()));
    assert_eq!(verify(&creds(), policy(), h, v.ts, v.method, v.path, v.body.as_bytes()), Err(VerifyError::BadEncoding));
}

#[test]
fn base64_is_the_default_encoding() {
    assert_eq!(SignatureEncoding::default(), SignatureEncoding::Base64);
}

const WEBHOOK_SECRET: &str = "webhook-secret-9876";

fn signed_by(secret: &str, key: Option<&'static str>, v: &'static Vector) -> IncomingHeaders<'static> {
    let c = Credentials::new("any", secret).unwrap();
    let h = sign(&c, SignatureEncoding::Base64, v.ts, v.method, v.path, v.body.as_bytes());
    IncomingHeaders {
        access_key: key,
        access_timestamp: Some(leak(h.access_timestamp)),
        access_sign: Some(leak(h.access_sign)),
    }
}

#[test]
fn a_separate_webhook_secret_verifies_beside_the_api_secret() {
    let v = &VECTORS[0];
    let body = v.body.as_bytes();
    // Without a webhook key, the webhook secret's signature verifies whatever the key says, or none.
    let c = creds().with_webhook_secret(None, WEBHOOK_SECRET).unwrap();
    for key in [None, Some("whatever"), Some(KEY)] {
        let got = verify_signature(&c, signed_by(WEBHOOK_SECRET, key, v), v.ts, v.method, v.path, body);
        assert_eq!(got.map(|g| g.signed_with), Ok(SignedWith::WebhookSecret), "{key:?}");
    }
    // The API secret, with the API key, is still taken.
    let got = verify_signature(&c, signed_by(SECRET, Some(KEY), v), v.ts, v.method, v.path, body);
    assert_eq!(got.map(|g| g.signed_with), Ok(SignedWith::ApiSecret));
    // A third secret is not.
    let got = verify_signature(&c, signed_by("third", Some(KEY), v), v.ts, v.method, v.path, body);
    assert_eq!(got, Err(VerifyError::Mismatch));

    // With a webhook key, the webhook secret is tried only under that key.
    let c = creds().with_webhook_secret(Some("hook-key".into()), WEBHOOK_SECRET).unwrap();
    let got = verify_signature(&c, signed_by(WEBHOOK_SECRET, Some("hook-key"), v), v.ts, v.method, v.path, body);
    assert_eq!(got.map(|g| g.signed_with), Ok(SignedWith::WebhookSecret));
    let got = verify_signature(&c, signed_by(WEBHOOK_SECRET, Some(KEY), v), v.ts, v.method, v.path, body);
    assert_eq!(got, Err(VerifyError::Mismatch));
    let got = verify_signature(&c, signed_by(WEBHOOK_SECRET, Some("other"), v), v.ts, v.method, v.path, body);
    assert_eq!(got, Err(VerifyError::UnknownKey));
    let got = verify_signature(&c, signed_by(WEBHOOK_SECRET, None, v), v.ts, v.method, v.path, body);
    assert_eq!(got, Err(VerifyError::MissingHeader(HEADER_KEY)));
}

#[test]
fn expired_is_said_only_of_a_signature_that_matched() {
    let v = &VECTORS[0];
    let body = v.body.as_bytes();
    let late = v.ts + 3_600;
    let got = verify_signature(&creds(), headers(v), late, v.method, v.path, body).unwrap();
    assert_eq!(got.skew_secs, -3_600);
    assert_eq!(
        verify(&creds(), policy(), headers(v), late, v.method, v.path, body),
        Err(VerifyError::Expired { skew_secs: -3_600, tolerance_secs: 30 })
    );
    let wrong = Credentials::new(KEY, "another-secret").unwrap();
    assert_eq!(verify(&wrong, policy(), headers(v), late, v.method, v.path, body), Err(VerifyError::Mismatch));
}

#[test]
fn unsigned_means_no_timestamp_and_no_signature() {
    assert!(IncomingHeaders::default().unsigned());
    assert!(IncomingHeaders { access_key: Some("k"), access_timestamp: Some(" "), access_sign: None }.unsigned());
    assert!(!IncomingHeaders { access_sign: Some("x"), ..IncomingHeaders::default() }.unsigned());
}

#[test]
fn verify_names_each_failure() {
    let v = &VECTORS[0];
    let body = v.body.as_bytes();
    let check = |h: IncomingHeaders<'static>, now: i64, m: &str, p: &str, b: &[u8]| {
        verify(&creds(), policy(), h, now, m, p, b).unwrap_err()
    };
    let mut h = headers(v);
    h.access_key = None;
    assert_eq!(check(h, v.ts, "POST", v.path, body), VerifyError::MissingHeader(HEADER_KEY));
    let mut h = headers(v);
    h.access_timestamp = Some("  ");
    assert_eq!(check(h, v.ts, "POST", v.path, body), VerifyError::MissingHeader(HEADER_TIMESTAMP));
    let mut h = headers(v);
    h.access_sign = None;
    assert_eq!(check(h, v.ts, "POST", v.path, body), VerifyError::MissingHeader(HEADER_SIGN));
    let mut h = headers(v);
    h.access_key = Some("other-key");
    assert_eq!(check(h, v.ts, "POST", v.path, body), VerifyError::UnknownKey);
    // A leading zero: the same number, but not the text that was signed.
    let zero = leak(format!("0{}", v.ts));
    for bad in ["-5", "+5", "1.5", "12a", "99999999999999999999", zero] {
        let mut h = headers(v);
        h.access_timestamp = Some(bad);
        assert_eq!(check(h, v.ts, "POST", v.path, body), VerifyError::BadTimestamp, "{bad}");
    }
    // Outside the tolerance, both ways.
    assert_eq!(
        check(headers(v), v.ts + 31, "POST", v.path, body),
        VerifyError::Expired { skew_secs: -31, tolerance_secs: 30 }
    );
    assert_eq!(
        check(headers(v), v.ts - 31, "POST", v.path, body),
        VerifyError::Expired { skew_secs: 31, tolerance_secs: 30 }
    );
    let mut h = headers(v);
    h.access_sign = Some("zz-not-hex");
    assert_eq!(check(h, v.ts, "POST", v.path, body), VerifyError::BadEncoding);
    // Tampering with each signed part.
    assert_eq!(check(headers(v), v.ts, "PUT", v.path, body), VerifyError::Mismatch);
    assert_eq!(check(headers(v), v.ts, "POST", "/api/v1/cases?x=1", body), VerifyError::Mismatch);
    assert_eq!(check(headers(v), v.ts, "POST", v.path, b"{}"), VerifyError::Mismatch);
    let mut h = headers(v);
    h.access_timestamp = Some("1623828309");
    assert_eq!(check(h, v.ts, "POST", v.path, body), VerifyError::Mismatch);
    let wrong = Credentials::new(KEY, "another-secret").unwrap();
    assert_eq!(verify(&wrong, policy(), headers(v), v.ts, "POST", v.path, body).unwrap_err(), VerifyError::Mismatch);
}

#[test]
fn secrets_never_show_in_debug_or_errors() {
    let c = creds();
    let shown = format!("{c:?} {:?} {:?}", c.api_key(), sign(&c, SignatureEncoding::Hex, 1, "GET", "/", b""));
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains(KEY), "{shown}");
    let err = Credentials::from_secret_json(r#"{"apiKey": "k", "apiSecretX": "hunter2hunter2"}"#).unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
    assert!(!format!("{err:?}").contains("hunter2"));
    let src = CredentialSource::Static(c);
    assert!(!format!("{src:?}").contains(SECRET));
    let with_hook = creds().with_webhook_secret(Some("hook-key-1".into()), WEBHOOK_SECRET).unwrap();
    let shown = format!("{with_hook:?}");
    assert!(!shown.contains(WEBHOOK_SECRET) && !shown.contains("hook-key-1") && !shown.contains(SECRET), "{shown}");
}

#[test]
fn secret_json_is_parsed_and_checked() {
    let c = Credentials::from_secret_json(r#"{"apiKey": "k1", "apiSecret": "s1"}"#).unwrap();
    assert_eq!(c.api_key().as_str(), "k1");
    assert!(Credentials::from_secret_json(r#"{"apiKey": "", "apiSecret": "s1"}"#).is_err());
    assert!(Credentials::from_secret_json(r#"{"apiKey": "k", "apiSecret": ""}"#).is_err());
    assert!(Credentials::from_secret_json("not json").is_err());
    assert!(!c.has_webhook_secret());
    let c = Credentials::from_secret_json(r#"{"apiKey": "k1", "apiSecret": "s1", "webhookSecret": "w1"}"#).unwrap();
    assert!(c.has_webhook_secret());
    let c = Credentials::from_secret_json(
        r#"{"apiKey": "k1", "apiSecret": "s1", "webhookKey": "wk", "webhookSecret": "w1"}"#,
    )
    .unwrap();
    assert!(c.has_webhook_secret());
    for bad in [
        r#"{"apiKey": "k1", "apiSecret": "s1", "webhookSecret": ""}"#,
        r#"{"apiKey": "k1", "apiSecret": "s1", "webhookKey": "wk"}"#,
        r#"{"apiKey": "k1", "apiSecret": "s1", "webhookKey": " ", "webhookSecret": "w1"}"#,
    ] {
        assert!(Credentials::from_secret_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn encoding_setting_parses() {
    assert_eq!("hex".parse(), Ok(SignatureEncoding::Hex));
    assert_eq!("base64".parse(), Ok(SignatureEncoding::Base64));
    assert_eq!("HEX".parse::<SignatureEncoding>(), Err(UnknownEncoding));
}
