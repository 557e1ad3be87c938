//! The signature scheme, implemented here on its own (not shared with our client):
//! `ACCESS-SIGN = HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::{Credential, SignatureEncoding};

/// Header carrying the API key.
pub const HEADER_KEY: &str = "ACCESS-KEY";
/// Header carrying the Unix timestamp in whole seconds.
pub const HEADER_TIMESTAMP: &str = "ACCESS-TIMESTAMP";
/// Header carrying the signature.
pub const HEADER_SIGN: &str = "ACCESS-SIGN";

/// How far `ACCESS-TIMESTAMP` may be from the sandbox's clock, either way, in seconds.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 30;

/// Why a request was refused with 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("missing or unreadable {0} header")]
    MissingHeader(&'static str),
    #[error("unknown api key")]
    UnknownKey,
    #[error("ACCESS-TIMESTAMP must be whole seconds since the Unix epoch")]
    BadTimestamp,
    #[error("request expired: ACCESS-TIMESTAMP is more than 30 seconds from server time")]
    Expired,
    #[error("invalid signature")]
    BadSignature,
}

/// The signature of one message, encoded.
pub(crate) fn sign(
    secret: &str,
    timestamp: &str,
    method: &str,
    request_path: &str,
    body: &[u8],
    encoding: SignatureEncoding,
) -> String {
    // ok: HMAC accepts a key of any length; new_from_slice cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(method.as_bytes());
    mac.update(request_path.as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    match encoding {
        SignatureEncoding::Hex => hex::encode(digest),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(digest),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, AuthError> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).ok_or(AuthError::MissingHeader(name))
}

/// Checks a request's three headers against the accepted credentials and the clock.
/// On success, returns the key that signed it.
pub(crate) fn verify(
    headers: &HeaderMap,
    method: &str,
    request_path: &str,
    body: &[u8],
    credentials: &[Credential],
    now_unix: i64,
    encoding: SignatureEncoding,
) -> Result<String, AuthError> {
    let key = header(headers, HEADER_KEY)?;
    let timestamp = header(headers, HEADER_TIMESTAMP)?;
    let signature = header(headers, HEADER_SIGN)?;

    let candidates: Vec<&Credential> = credentials.iter().filter(|c| c.api_key == key).collect();
    if candidates.is_empty() {
        return Err(AuthError::UnknownKey);
    }
    // Whole seconds, digits only: no sign, no fraction, no milliseconds in disguise
    // (those fail the window anyway).
    if timestamp.len() > 18 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::BadTimestamp);
    }
    let seconds: i64 = timestamp.parse().map_err(|_| AuthError::BadTimestamp)?;
    if (seconds - now_unix).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(AuthError::Expired);
    }
    // Several pairs may share a key during a rotation; any of their secrets will do.
    let matched = candidates.iter().any(|c| {
        let expected = sign(&c.api_secret, timestamp, method, request_path, body, encoding);
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    });
    if matched { Ok(key.to_owned()) } else { Err(AuthError::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // HMAC-SHA256 test case 2 of RFC 4231: key "Jefe", "what do ya want for nothing?"
        // split across the four parts.
        let sig = sign("Jefe", "what do ya", " want ", "for ", b"nothing?", SignatureEncoding::Hex);
        assert_eq!(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
