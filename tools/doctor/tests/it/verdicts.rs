//! Against the sandbox: the encoding named, or the failure said.

use gateway_sandbox::{Faults, SandboxConfig, SandboxHandle, SignatureEncoding};

use crate::{API_KEY, API_SECRET, doctor_with_keys};

async fn sandbox(encoding: SignatureEncoding, faults: Faults) -> SandboxHandle {
    let config =
        SandboxConfig { signature_encoding: encoding, faults, ..SandboxConfig::with_credential(API_KEY, API_SECRET) };
    gateway_sandbox::spawn(config).await.expect("the sandbox starts")
}

#[tokio::test]
async fn names_hex_when_cabital_takes_hex() {
    let sandbox = sandbox(SignatureEncoding::Hex, Faults::default()).await;
    let run = doctor_with_keys(&sandbox.base_url(), API_KEY, API_SECRET).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(run.last_line(), "CABITAL_SIGNATURE_ENCODING=hex", "{}", run.all());
    assert!(run.stdout.contains("hex signature: 404"), "{}", run.stdout);
    assert!(run.stdout.contains("base64 signature: 401"), "{}", run.stdout);
    assert!(run.stdout.contains("TLS:        none: plain http"), "{}", run.stdout);
    run.assert_no_secret();
    // GETs only: nothing was created.
    let stats = sandbox.stats();
    assert_eq!(stats.creates, 0, "{stats:?}");
    assert!(stats.requests.keys().all(|endpoint| endpoint.starts_with("GET ")), "{stats:?}");
    assert_eq!(stats.requests.values().sum::<u64>(), 3, "control, hex, base64: {stats:?}");
}

#[tokio::test]
async fn names_base64_when_cabital_takes_base64() {
    let sandbox = sandbox(SignatureEncoding::Base64, Faults::default()).await;
    let run = doctor_with_keys(&sandbox.base_url(), API_KEY, API_SECRET).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(run.last_line(), "CABITAL_SIGNATURE_ENCODING=base64", "{}", run.all());
    run.assert_no_secret();
}

#[tokio::test]
async fn a_wrong_secret_is_no_encoding_accepted() {
    let sandbox = sandbox(SignatureEncoding::Base64, Faults::default()).await;
    let run = doctor_with_keys(&sandbox.base_url(), API_KEY, "not-the-secret").await;
    run.assert_failed(1, "no encoding accepted");
    assert!(!run.all().contains("not-the-secret"));
}

#[tokio::test]
async fn a_wrong_key_is_no_encoding_accepted() {
    let sandbox = sandbox(SignatureEncoding::Hex, Faults::default()).await;
    let run = doctor_with_keys(&sandbox.base_url(), "not-the-key", API_SECRET).await;
    run.assert_failed(1, "no encoding accepted");
    assert!(!run.all().contains("not-the-key"));
}

#[tokio::test]
async fn a_skewed_clock_is_named_and_fails_even_though_the_encoding_is_found() {
    let faults = Faults { clock_offset_secs: 120, ..Faults::default() };
    let sandbox = sandbox(SignatureEncoding::Hex, faults).await;
    let run = doctor_with_keys(&sandbox.base_url(), API_KEY, API_SECRET).await;
    run.assert_failed(1, "the clock is off");
    let all = run.all();
    // Date has whole seconds: the offset read is 120 give or take one.
    assert!(["+119 s", "+120 s", "+121 s"].iter().any(|o| all.contains(o)), "{all}");
    assert!(all.contains("NTP"), "{all}");
    assert!(all.contains("hex was accepted"), "{all}");
}

#[tokio::test]
async fn an_overloaded_cabital_is_reported_not_read_as_a_verdict() {
    // The sandbox checks the signature first, then fails the request with 503.
    let faults = Faults { error_rate_503: 1.0, ..Faults::default() };
    let sandbox = sandbox(SignatureEncoding::Hex, faults).await;
    let run = doctor_with_keys(&sandbox.base_url(), API_KEY, API_SECRET).await;
    run.assert_failed(1, "answered 503");
}
