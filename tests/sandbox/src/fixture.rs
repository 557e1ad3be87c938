//! Signing API Gateway (HTTP API, payload v2) event fixtures of webhook deliveries, as
//! Cabital signs its webhooks, with the sandbox's own signing code.
//!
//! A signed fixture carries a fixed `ACCESS-TIMESTAMP`, so it is expired by the time
//! anyone invokes it; [`sign_event`] signs it again for a given time (the
//! `gateway-sandbox-sign` binary: for now). What is signed is
//! `timestamp + METHOD + path + body`: the method from `requestContext.http.method`,
//! the path `rawPath` (`?rawQueryString` appended when not empty) unless another path
//! is given (the function's `WEBHOOK_SIGNED_PATH`), the body as API Gateway hands it
//! over (`body`, base64-decoded when `isBase64Encoded`).

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::auth::{self, HEADER_KEY, HEADER_SIGN, HEADER_TIMESTAMP};
use crate::config::{Credential, SignatureEncoding};

/// How to sign one event.
#[derive(Debug, Clone)]
pub struct FixtureSigning {
    /// The key and secret to sign with.
    pub credential: Credential,
    /// `ACCESS-TIMESTAMP`, in Unix seconds.
    pub timestamp: i64,
    /// The path to sign instead of the event's own (`rawPath?rawQueryString`).
    pub path: Option<String>,
    /// How `ACCESS-SIGN` is encoded.
    pub encoding: SignatureEncoding,
}

/// Why an event could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixtureError {
    /// The event is not an API Gateway v2 event this module can read.
    #[error("not an API Gateway HTTP API (v2) event: {0}")]
    NotAnEvent(&'static str),
    /// `isBase64Encoded` is true but `body` is not base64.
    #[error("body is marked isBase64Encoded but is not base64")]
    BadBase64,
}

/// Sets (replacing any, whatever their case) the `access-key`, `access-timestamp` and
/// `access-sign` headers of `event` to a signature of it by `signing`. Header names are
/// written in lower case, as API Gateway v2 passes them. Returns the signed body bytes.
pub fn sign_event(event: &mut Value, signing: &FixtureSigning) -> Result<Vec<u8>, FixtureError> {
    let root = event.as_object_mut().ok_or(FixtureError::NotAnEvent("not a JSON object"))?;
    if root.get("version").and_then(Value::as_str) != Some("2.0") {
        return Err(FixtureError::NotAnEvent("version is not \"2.0\""));
    }
    let method = root
        .get("requestContext")
        .and_then(|c| c.get("http"))
        .and_then(|h| h.get("method"))
        .and_then(Value::as_str)
        .ok_or(FixtureError::NotAnEvent("no requestContext.http.method"))?
        .to_ascii_uppercase();
    let path = match &signing.path {
        Some(path) => path.clone(),
        None => {
            let raw_path = root.get("rawPath").and_then(Value::as_str).ok_or(FixtureError::NotAnEvent("no rawPath"))?;
            match root.get("rawQueryString").and_then(Value::as_str) {
                Some(query) if !query.is_empty() => format!("{raw_path}?{query}"),
                _ => raw_path.to_owned(),
            }
        }
    };
    let body = match root.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => {
            if root.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
                base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| FixtureError::BadBase64)?
            } else {
                text.as_bytes().to_vec()
            }
        }
        Some(_) => return Err(FixtureError::NotAnEvent("body is not a string")),
    };
    let timestamp = signing.timestamp.to_string();
    let signature = auth::sign(&signing.credential.api_secret, &timestamp, &method, &path, &body, signing.encoding);

    let headers = root.entry("headers").or_insert_with(|| Value::Object(Map::new()));
    let headers = headers.as_object_mut().ok_or(FixtureError::NotAnEvent("headers is not an object"))?;
    for name in [HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGN] {
        headers.retain(|k, _| !k.eq_ignore_ascii_case(name));
    }
    headers.insert(HEADER_KEY.to_ascii_lowercase(), Value::from(signing.credential.api_key.clone()));
    headers.insert(HEADER_TIMESTAMP.to_ascii_lowercase(), Value::from(timestamp));
    headers.insert(HEADER_SIGN.to_ascii_lowercase(), Value::from(signature));
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(body: &str, base64: bool) -> Value {
        json!({
            "version": "2.0",
            "rawPath": "/webhooks/cabital",
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "ACCESS-SIGN": "old"},
            "requestContext": {"http": {"method": "POST", "path": "/webhooks/cabital"}},
            "isBase64Encoded": base64,
            "body": body,
        })
    }

    fn signing(path: Option<&str>) -> FixtureSigning {
        FixtureSigning {
            credential: Credential::new("k", "s"),
            timestamp: 1_700_000_000,
            path: path.map(str::to_owned),
            encoding: SignatureEncoding::Hex,
        }
    }

    #[test]
    fn signs_what_the_receiver_sees() {
        let mut e = event("{\"a\":1}", false);
        let body = sign_event(&mut e, &signing(None)).unwrap();
        assert_eq!(body, b"{\"a\":1}");
        let expected = auth::sign("s", "1700000000", "POST", "/webhooks/cabital", b"{\"a\":1}", SignatureEncoding::Hex);
        assert_eq!(e["headers"]["access-sign"], expected.as_str());
        assert_eq!(e["headers"]["access-key"], "k");
        assert_eq!(e["headers"]["access-timestamp"], "1700000000");
        assert!(e["headers"].get("ACCESS-SIGN").is_none(), "the old header is replaced");
        assert_eq!(e["headers"]["content-type"], "application/json");

        // Base64 bodies are signed decoded; another path is signed when asked.
        let mut b = event(&base64::engine::general_purpose::STANDARD.encode("{\"a\":1}"), true);
        sign_event(&mut b, &signing(Some("/prod/webhooks/cabital"))).unwrap();
        let expected =
            auth::sign("s", "1700000000", "POST", "/prod/webhooks/cabital", b"{\"a\":1}", SignatureEncoding::Hex);
        assert_eq!(b["headers"]["access-sign"], expected.as_str());
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        assert!(sign_event(&mut json!([]), &signing(None)).is_err());
        assert!(sign_event(&mut json!({"version": "1.0"}), &signing(None)).is_err());
        let mut e = event("not base64!", true);
        assert_eq!(sign_event(&mut e, &signing(None)), Err(FixtureError::BadBase64));
    }
}
