//! Micro-benchmarks of the CPU work with no I/O: signing, verification, validation, and
//! the webhook intake's part of a delivery (verify + parse + SHA-256), on the
//! provider's own samples. `cargo bench -p gateway-bench --bench micro`; `./bench/run.sh` reads
//! the medians from criterion's `estimates.json`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gateway_cabital::{WebhookNotification, validate_new_case};
use gateway_signing::{Credentials, IncomingHeaders, SignatureEncoding, VerifyPolicy, sign, verify};
use serde_json::Value;

/// The provider's sample case (`seed/cabital-caas-api.md`, "create a case").
const SAMPLE_CASE: &str = r#"{"externalCaseId":"243d19cf-562f-4060-89fa-1d35a7723c3e","screenType":"INDIVIDUAL","fullName":"John Doe","individualInfo":{"gender":"MALE","dob":"2002-02-02","nationality":"JPN","residentialCountry":"HKG"},"organizationInfo":{}}"#;

/// The provider's sample webhook body, with a real `caseSystemId`.
const SAMPLE_WEBHOOK: &str = r#"{"caseSystemId":"6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c","caseSuggestion":"SUGGEST_TO_REJECT","comment":"User is okay to me.","externalCaseId":"243d19cf-562f-4060-89fa-1d35a7723c3e"}"#;

const TIMESTAMP: i64 = 1_795_914_000;
const WEBHOOK_PATH: &str = "/webhooks/cabital";

fn credentials() -> Credentials {
    match Credentials::new("bench-api-key", "bench-api-secret-0123456789abcdef") {
        Ok(c) => c,
        Err(e) => panic!("bench credentials: {e}"),
    }
}

/// What the webhook handler does to a delivery before any I/O: verify the signature
/// over the raw bytes, parse, hash the body for the idempotency record.
/// The body is also copied out, as the handler keeps it for the record.
fn intake(
    creds: &Credentials,
    headers: IncomingHeaders<'_>,
    body: &[u8],
) -> Option<(WebhookNotification, String, String)> {
    let policy = VerifyPolicy { tolerance_secs: 300 };
    verify(creds, policy, headers, TIMESTAMP, "POST", WEBHOOK_PATH, body).ok()?;
    let notification: WebhookNotification = serde_json::from_slice(body).ok()?;
    let text = std::str::from_utf8(body).ok()?.to_owned();
    Some((notification, text, gateway_service::request_hash(body)))
}

fn benches(c: &mut Criterion) {
    let creds = credentials();
    let case_body = SAMPLE_CASE.as_bytes();
    let body = SAMPLE_WEBHOOK.as_bytes();
    let signed = sign(&creds, SignatureEncoding::Hex, TIMESTAMP, "POST", WEBHOOK_PATH, body);
    let headers = IncomingHeaders {
        access_key: Some(&signed.access_key),
        access_timestamp: Some(&signed.access_timestamp),
        access_sign: Some(&signed.access_sign),
    };
    let policy = VerifyPolicy { tolerance_secs: 300 };
    if intake(&creds, headers, body).is_none() {
        panic!("the sample webhook does not pass intake");
    }
    let case: Value = match serde_json::from_str(SAMPLE_CASE) {
        Ok(v) => v,
        Err(e) => panic!("sample case: {e}"),
    };
    let today = time::OffsetDateTime::now_utc().date();
    if let Err(e) = validate_new_case(&case, today) {
        panic!("the provider's sample does not validate: {e:?}");
    }

    c.bench_function("webhook_intake", |b| b.iter(|| intake(&creds, black_box(headers), black_box(body))));
    c.bench_function("verify", |b| {
        b.iter(|| verify(&creds, policy, black_box(headers), TIMESTAMP, "POST", WEBHOOK_PATH, black_box(body)))
    });
    c.bench_function("webhook_parse", |b| {
        b.iter(|| serde_json::from_slice::<WebhookNotification>(black_box(body)).is_ok())
    });
    c.bench_function("webhook_sha256", |b| b.iter(|| gateway_service::request_hash(black_box(body))));
    c.bench_function("sign", |b| {
        b.iter(|| sign(&creds, SignatureEncoding::Hex, TIMESTAMP, "POST", "/api/v1/cases", black_box(case_body)))
    });
    c.bench_function("validate_new_case", |b| b.iter(|| validate_new_case(black_box(&case), today).is_ok()));
}

criterion_group!(micro, benches);
criterion_main!(micro);
