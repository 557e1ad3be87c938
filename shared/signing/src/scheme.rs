//! The signature scheme: `HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::credentials::Credentials;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the API key.
pub const HEADER_KEY: &str = "ACCESS-KEY";
/// Header carrying the Unix timestamp, in whole seconds.
pub const HEADER_TIMESTAMP: &str = "ACCESS-TIMESTAMP";
/// Header carrying the signature.
pub const HEADER_SIGN: &str = "ACCESS-SIGN";

/// How the 32-byte digest is written in `ACCESS-SIGN` on the calls we send.
///
/// Cabital's page does not say. Its signing paragraph is the text of an exchange API
/// that base64-encodes the digest, and Cabital's sister API (Connect) writes Base64:
/// base64 is the default, hex one setting away (`CABITAL_SIGNATURE_ENCODING`; the
/// `doctor` command tells which one Cabital accepts). Incoming webhooks are verified in
/// either encoding: see [`verify_signature`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureEncoding {
    /// Lowercase hexadecimal, 64 characters.
    Hex,
    /// Standard base64 with padding, 44 characters.
    #[default]
    Base64,
}

impl SignatureEncoding {
    fn encode(self, digest: &[u8]) -> String {
        match self {
            SignatureEncoding::Hex => hex::encode(digest),
            SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(digest),
        }
    }

    /// Reads a signature written in either encoding: 64 hex digits (either case: a peer
    /// printing upper case signed the same digest) or 44 characters of padded base64.
    /// The two lengths differ, so a text is never read both ways. The digest, not the
    /// text, is what identifies a signature: one digest has many spellings.
    pub fn decode_any(text: &str) -> Option<(SignatureEncoding, [u8; DIGEST_LEN])> {
        let mut digest = [0u8; DIGEST_LEN];
        if text.len() == 2 * DIGEST_LEN {
            hex::decode_to_slice(text, &mut digest).ok()?;
            return Some((SignatureEncoding::Hex, digest));
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
        let digest: [u8; DIGEST_LEN] = bytes.try_into().ok()?;
        Some((SignatureEncoding::Base64, digest))
    }
}

/// The length of an HMAC-SHA256 digest.
const DIGEST_LEN: usize = 32;

impl FromStr for SignatureEncoding {
    type Err = UnknownEncoding;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hex" => Ok(SignatureEncoding::Hex),
            "base64" => Ok(SignatureEncoding::Base64),
            _ => Err(UnknownEncoding),
        }
    }
}

impl fmt::Display for SignatureEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureEncoding::Hex => "hex",
            SignatureEncoding::Base64 => "base64",
        })
    }
}

/// A signature encoding other than `hex` or `base64` was configured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("signature encoding must be `hex` or `base64`")]
pub struct UnknownEncoding;

/// The exact bytes that are signed: `timestamp + METHOD + requestPath + body`.
///
/// `request_path` is the path as sent, with its query string if any; `body` is the
/// bytes on the wire, empty for GET and DELETE.
pub fn prehash(timestamp: i64, method: &str, request_path: &str, body: &[u8]) -> Vec<u8> {
    let ts = timestamp.to_string();
    let mut out = Vec::with_capacity(ts.len() + method.len() + request_path.len() + body.len());
    out.extend_from_slice(ts.as_bytes());
    out.extend_from_slice(method.to_ascii_uppercase().as_bytes());
    out.extend_from_slice(request_path.as_bytes());
    out.extend_from_slice(body);
    out
}

#[expect(clippy::expect_used, reason = "HMAC takes a key of any length: new_from_slice cannot fail")]
fn mac(secret: &[u8], timestamp: i64, method: &str, request_path: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&prehash(timestamp, method, request_path, body));
    mac
}

/// The three headers of a signed request.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `ACCESS-KEY`
    pub access_key: String,
    /// `ACCESS-TIMESTAMP`
    pub access_timestamp: String,
    /// `ACCESS-SIGN`
    pub access_sign: String,
}

impl fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key identifies the account; keep it out of logs like the secret.
        f.debug_struct("SignedHeaders")
            .field("access_key", &"[redacted]")
            .field("access_timestamp", &self.access_timestamp)
            .field("access_sign", &"[redacted]")
            .finish()
    }
}

/// Signs one request.
pub fn sign(
    credentials: &Credentials,
    encoding: SignatureEncoding,
    timestamp: i64,
    method: &str,
    request_path: &str,
    body: &[u8],
) -> SignedHeaders {
    let digest = mac(credentials.secret_bytes(), timestamp, method, request_path, body).finalize().into_bytes();
    SignedHeaders {
        access_key: credentials.api_key().as_str().to_owned(),
        access_timestamp: timestamp.to_string(),
        access_sign: encoding.encode(&digest),
    }
}

/// Why an incoming signed request was refused. Each has a stable [`code`](Self::code).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// A required header is absent or empty.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `ACCESS-TIMESTAMP` is not a whole number of seconds, written in decimal digits
    /// without a leading zero.
    #[error("ACCESS-TIMESTAMP is not a whole number of seconds")]
    BadTimestamp,
    /// The signature matches, but the timestamp is further from now than the tolerance,
    /// in either direction: a genuine but late (or early) request.
    #[error("ACCESS-TIMESTAMP is {skew_secs} s away from now, more than the {tolerance_secs} s allowed")]
    Expired {
        /// `timestamp - now`, in seconds.
        skew_secs: i64,
        /// The tolerance in force.
        tolerance_secs: u64,
    },
    /// `ACCESS-KEY` is not a key we hold.
    #[error("ACCESS-KEY is not a known key")]
    UnknownKey,
    /// `ACCESS-SIGN` is neither 64 hex digits nor 44 characters of base64.
    #[error("ACCESS-SIGN is neither hex nor base64 of a SHA-256 HMAC")]
    BadEncoding,
    /// The signature does not match the request.
    #[error("ACCESS-SIGN does not match the request")]
    Mismatch,
}

impl VerifyError {
    /// A stable, machine-readable code for responses and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "missing_signature_header",
            VerifyError::BadTimestamp => "bad_timestamp",
            VerifyError::Expired { .. } => "timestamp_out_of_tolerance",
            VerifyError::UnknownKey => "unknown_key",
            VerifyError::BadEncoding => "bad_signature_encoding",
            VerifyError::Mismatch => "signature_mismatch",
        }
    }
}

/// The incoming headers, as received (any may be missing).
#[derive(Clone, Copy, Default)]
pub struct IncomingHeaders<'a> {
    /// `ACCESS-KEY`
    pub access_key: Option<&'a str>,
    /// `ACCESS-TIMESTAMP`
    pub access_timestamp: Option<&'a str>,
    /// `ACCESS-SIGN`
    pub access_sign: Option<&'a str>,
}

impl IncomingHeaders<'_> {
    /// Whether the request carries no signature at all (neither timestamp nor signature).
    pub fn unsigned(&self) -> bool {
        let blank = |v: Option<&str>| v.is_none_or(|s| s.trim().is_empty());
        blank(self.access_timestamp) && blank(self.access_sign)
    }
}

/// Verification settings.
#[derive(Debug, Clone, Copy)]
pub struct VerifyPolicy {
    /// How far the timestamp may be from now, either way.
    pub tolerance_secs: u64,
}

/// Which of the held secrets made a verified signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedWith {
    /// The secret's optional `webhookSecret`.
    WebhookSecret,
    /// The API secret.
    ApiSecret,
}

impl SignedWith {
    /// For logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SignedWith::WebhookSecret => "webhook_secret",
            SignedWith::ApiSecret => "api_secret",
        }
    }
}

/// A signature that matched, whatever its age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// `ACCESS-TIMESTAMP`.
    pub timestamp: i64,
    /// `timestamp - now`, in seconds.
    pub skew_secs: i64,
    /// How `ACCESS-SIGN` was written.
    pub encoding: SignatureEncoding,
    /// Which secret made it.
    pub signed_with: SignedWith,
}

/// Checks a signed request's signature against the credentials we hold, not its age.
///
/// Checks, in order: timestamp and signature headers present, timestamp well-formed,
/// the signature read in either encoding, then the HMAC over the raw body bytes, in
/// constant time, with each secret that may sign webhooks ([`Credentials::webhook_signers`]):
/// the `webhookSecret` first when there is one, then the API secret. A secret that comes
/// with a key is tried only when `ACCESS-KEY` is that key.
pub fn verify_signature(
    credentials: &Credentials,
    headers: IncomingHeaders<'_>,
    now: i64,
    method: &str,
    request_path: &str,
    body: &[u8],
) -> Result<Verified, VerifyError> {
    let signers = credentials.webhook_signers();
    let key = headers.access_key.map(str::trim).filter(|k| !k.is_empty());
    if key.is_none() && signers.iter().all(|s| s.key.is_some()) {
        return Err(VerifyError::MissingHeader(HEADER_KEY));
    }
    let ts_text = present(headers.access_timestamp, HEADER_TIMESTAMP)?;
    let sign_text = present(headers.access_sign, HEADER_SIGN)?;
    // Constant time against each key held; keys are not secret, but cost nothing to hide.
    let key_matches = |held: Option<&str>| match (held, key) {
        (None, _) => true,
        (Some(held), Some(given)) => bool::from(given.as_bytes().ct_eq(held.as_bytes())),
        (Some(_), None) => false,
    };
    let candidates: Vec<_> = signers.iter().filter(|s| key_matches(s.key)).collect();
    if candidates.is_empty() {
        return Err(VerifyError::UnknownKey);
    }
    let ts_text = ts_text.trim();
    // The MAC below is computed over the number written back in decimal, so only that
    // spelling is taken: with a leading zero, a captured signature would pass under a
    // header other than the one it was made for (found by fuzzing, fuzz/regressions/).
    if ts_text.is_empty()
        || ts_text.len() > 12
        || !ts_text.bytes().all(|b| b.is_ascii_digit())
        || (ts_text.len() > 1 && ts_text.starts_with('0'))
    {
        return Err(VerifyError::BadTimestamp);
    }
    let timestamp: i64 = ts_text.parse().map_err(|_| VerifyError::BadTimestamp)?;
    let (encoding, given) = SignatureEncoding::decode_any(sign_text.trim()).ok_or(VerifyError::BadEncoding)?;
    for signer in candidates {
        // The MAC's own verify compares in constant time.
        if mac(signer.secret, timestamp, method, request_path, body).verify_slice(&given).is_ok() {
            return Ok(Verified {
                timestamp,
                skew_secs: timestamp.saturating_sub(now),
                encoding,
                signed_with: signer.signed_with,
            });
        }
    }
    Err(VerifyError::Mismatch)
}

/// Verifies a signed request: [`verify_signature`], then the timestamp within the
/// tolerance of `now`. [`VerifyError::Expired`] is answered only for a signature that
/// matched.
pub fn verify(
    credentials: &Credentials,
    policy: VerifyPolicy,
    headers: IncomingHeaders<'_>,
    now: i64,
    method: &str,
    request_path: &str,
    body: &[u8],
) -> Result<i64, VerifyError> {
    let verified = verify_signature(credentials, headers, now, method, request_path, body)?;
    if verified.skew_secs.unsigned_abs() > policy.tolerance_secs {
        return Err(VerifyError::Expired { skew_secs: verified.skew_secs, tolerance_secs: policy.tolerance_secs });
    }
    Ok(verified.timestamp)
}

fn present<'h>(value: Option<&'h str>, name: &'static str) -> Result<&'h str, VerifyError> {
    value.filter(|s| !s.trim().is_empty()).ok_or(VerifyError::MissingHeader(name))
}
