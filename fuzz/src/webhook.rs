//! The webhook's verify + parse path, as `functions/webhook` runs it on the raw headers
//! and body before any I/O, with the properties it must keep. Shared by the fuzz target
//! (`fuzz/fuzz_targets/webhook.rs`) and the replay of `fuzz/regressions/webhook/` in
//! `cargo test` (`shared/cabital/tests/fuzz_regressions.rs`).
//!
//! An input is readable text: three header lines, then the body.
//!
//! ```text
//! ACCESS-KEY\nACCESS-TIMESTAMP\nACCESS-SIGN\nbody...
//! ```
//!
//! A line that is not there is a header that is not there. Two `ACCESS-SIGN` values
//! stand for signatures the fuzzer cannot find by itself:
//! - `{sign}`: HMAC-SHA256 of the timestamp line *as written*, `POST`, the path and the
//!   body: what a genuine sender signs;
//! - `{replay}`: the signature our own signer makes for the *number* the timestamp line
//!   reads as: a genuine signature replayed under a rewritten timestamp header.

use base64::Engine as _;
use gateway_cabital::{MalformedWebhook, Suggestion, WebhookNotification};
use gateway_signing::{Credentials, IncomingHeaders, SignatureEncoding, VerifyError, VerifyPolicy, sign, verify};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key and secret the harness holds.
pub const API_KEY: &str = "fuzz-key";
/// See [`API_KEY`].
pub const API_SECRET: &str = "fuzz-secret";
/// "Now" for every run, so that a timestamp is fresh or stale the same way each time.
pub const NOW: i64 = 1_700_000_000;
/// The tolerance the webhook function uses by default.
pub const TOLERANCE_SECS: u64 = 300;
/// The path Cabital signs.
pub const PATH: &str = "/webhooks/cabital";
const METHOD: &str = "POST";

/// What the path did with one input.
#[derive(Debug)]
pub struct Outcome {
    /// `verify` with `{sign}` / `{replay}` written in hex (either encoding is verified).
    pub verify_hex: Result<i64, VerifyError>,
    /// `verify` with `{sign}` / `{replay}` written in base64.
    pub verify_base64: Result<i64, VerifyError>,
    /// Parsing the body.
    pub parse: Result<WebhookNotification, MalformedWebhook>,
}

/// An input split into its headers (`None`: absent) and body.
pub struct Input<'a> {
    /// `ACCESS-KEY`
    pub key: Option<&'a str>,
    /// `ACCESS-TIMESTAMP`
    pub timestamp: Option<&'a str>,
    /// `ACCESS-SIGN`, before `{sign}` / `{replay}` are replaced.
    pub sign: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// Splits an input. Header lines that are not UTF-8 are absent, as the function's
/// header reading makes them (`HeaderValue::to_str` fails).
pub fn split(data: &[u8]) -> Input<'_> {
    let mut rest = data;
    let mut lines: [Option<&str>; 3] = [None; 3];
    for slot in &mut lines {
        let Some(at) = rest.iter().position(|&b| b == b'\n') else {
            // No newline: the rest is the body, and this header and those after are absent.
            break;
        };
        *slot = std::str::from_utf8(&rest[..at]).ok();
        rest = &rest[at + 1..];
    }
    let [key, timestamp, sign] = lines;
    Input { key, timestamp, sign, body: rest }
}

fn reference_mac(timestamp_text: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(API_SECRET.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp_text.as_bytes());
    mac.update(METHOD.as_bytes());
    mac.update(PATH.as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn encode(encoding: SignatureEncoding, digest: &[u8]) -> String {
    match encoding {
        SignatureEncoding::Hex => hex::encode(digest),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(digest),
    }
}

/// A signature read as the verifier reads it: 64 hex digits, or base64 otherwise.
fn decode_any(text: &str) -> Option<Vec<u8>> {
    if text.len() == 64 { hex::decode(text).ok() } else { base64::engine::general_purpose::STANDARD.decode(text).ok() }
}

/// A timestamp as a genuine sender writes it: the decimal number, nothing else.
fn canonical_timestamp(text: &str) -> Option<i64> {
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

fn check_verify(credentials: &Credentials, input: &Input<'_>, encoding: SignatureEncoding) -> Result<i64, VerifyError> {
    let sign_value = match input.sign {
        Some("{sign}") => input.timestamp.map(|ts| encode(encoding, &reference_mac(ts, input.body))),
        Some("{replay}") => input
            .timestamp
            .and_then(|ts| ts.trim().parse::<i64>().ok())
            .map(|n| sign(credentials, encoding, n, METHOD, PATH, input.body).access_sign),
        other => other.map(str::to_owned),
    };
    let headers = IncomingHeaders {
        access_key: input.key,
        access_timestamp: input.timestamp,
        access_sign: sign_value.as_deref(),
    };
    let policy = VerifyPolicy { tolerance_secs: TOLERANCE_SECS };
    let result = verify(credentials, policy, headers, NOW, METHOD, PATH, input.body);

    if let Ok(ts) = result {
        // Accepted: the key is ours, the timestamp is fresh, and the signature is
        // HMAC-SHA256 over the timestamp *as sent*, the method, the path and the body.
        assert_eq!(input.key.map(str::trim), Some(API_KEY), "accepted another key");
        assert!(ts.abs_diff(NOW) <= TOLERANCE_SECS, "accepted a stale timestamp");
        let ts_text = input.timestamp.map(str::trim).unwrap_or_default();
        let given = sign_value.as_deref().and_then(|s| decode_any(s.trim()));
        assert_eq!(
            given.as_deref(),
            Some(reference_mac(ts_text, input.body).as_slice()),
            "accepted a signature that is not over the request as sent (timestamp header {ts_text:?})"
        );
    }
    if input.sign == Some("{sign}")
        && input.key == Some(API_KEY)
        && let Some(n) = input.timestamp.and_then(canonical_timestamp)
        && n.abs_diff(NOW) <= TOLERANCE_SECS
    {
        // A genuine delivery is never refused.
        assert_eq!(result, Ok(n), "refused a genuine signature");
    }
    result
}

/// The details a refused body may carry: fixed sentences, field names and positions,
/// never text from the body.
fn assert_stable_detail(detail: &str) {
    let suggestion = format!("caseSuggestion is not one of {}", Suggestion::ALL.join(", "));
    let known = detail == "not UTF-8"
        || detail == "not valid JSON"
        || detail == suggestion
        || WebhookNotification::FIELDS.iter().any(|f| detail == format!("missing field `{f}`"))
        || detail
            .strip_prefix("unexpected shape at line ")
            .and_then(|rest| rest.split_once(" column "))
            .is_some_and(|(l, c)| l.parse::<u64>().is_ok() && c.parse::<u64>().is_ok());
    assert!(known, "unstable or revealing detail: {detail:?}");
}

fn check_parse(body: &[u8]) -> Result<WebhookNotification, MalformedWebhook> {
    match WebhookNotification::from_body(body) {
        Ok((notification, text)) => {
            // What is stored is the body as received, and it reads back the same.
            assert_eq!(text.as_bytes(), body, "stored text differs from the body");
            let again = serde_json::to_vec(&notification).expect("a notification serialises");
            let (reparsed, _) = WebhookNotification::from_body(&again).expect("a parsed notification parses again");
            assert_eq!(reparsed, notification, "a notification does not survive a round trip");
            Ok(notification)
        }
        Err(e) => {
            assert_stable_detail(e.detail());
            Err(e)
        }
    }
}

/// Runs the path on one input; panics when a property does not hold.
pub fn check(data: &[u8]) -> Outcome {
    let credentials = Credentials::new(API_KEY, API_SECRET).expect("non-empty test credentials");
    let input = split(data);
    Outcome {
        verify_hex: check_verify(&credentials, &input, SignatureEncoding::Hex),
        verify_base64: check_verify(&credentials, &input, SignatureEncoding::Base64),
        parse: check_parse(input.body),
    }
}
