//! AWS as the init needs it, answered at once: the two calls every function makes
//! before its first `next` (Secrets Manager's `GetSecretValue` and DynamoDB's
//! `GetItem`, the warm-up), over the same HTTP, in the same JSON protocols, to the real
//! SDK (and boto3).
//!
//! Why: moto is Python and serves one request at a time, so against it the init
//! includes moto's own time to answer (the run measures it: about 2 ms per call), the
//! two calls one after the other. Against this endpoint the init is the function's
//! own: what it costs to start, read its settings, build its clients, sign and send
//! both requests and read both answers. On Lambda, Secrets Manager and DynamoDB answer
//! concurrently, in a round trip each.
//!
//! It answers only what it is asked for: `GetSecretValue` of the one secret it holds
//! (signed: an `Authorization: AWS4-HMAC-SHA256 ...` header), `GetItem` with no item
//! (the warm-up's key is one no record uses); anything else is refused with a 400, so
//! an init that asked for something else would fail, not be timed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

struct Held {
    secret_id: String,
    secret_string: String,
    answered: AtomicU64,
    refused: AtomicU64,
}

/// The server; stopped when dropped.
pub struct InstantAws {
    addr: SocketAddr,
    held: Arc<Held>,
    server: JoinHandle<()>,
}

impl InstantAws {
    /// Starts a server on `127.0.0.1:0` holding one secret.
    pub async fn start(secret_id: &str, secret_string: &str) -> std::io::Result<Self> {
        let held = Arc::new(Held {
            secret_id: secret_id.to_owned(),
            secret_string: secret_string.to_owned(),
            answered: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let app = Router::new().route("/", post(answer)).with_state(held.clone());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(InstantAws { addr, held, server })
    }

    /// `AWS_ENDPOINT_URL` for the functions and the Python peer.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered, and refused.
    pub fn counts(&self) -> (u64, u64) {
        (self.held.answered.load(Ordering::Relaxed), self.held.refused.load(Ordering::Relaxed))
    }
}

impl Drop for InstantAws {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn refuse(held: &Held, code: &str, message: &str) -> Response {
    held.refused.fetch_add(1, Ordering::Relaxed);
    let body = json!({ "__type": code, "message": message }).to_string();
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/x-amz-json-1.0")], body).into_response()
}

async fn answer(State(held): State<Arc<Held>>, headers: HeaderMap, body: Bytes) -> Response {
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
    if !signed {
        return refuse(&held, "MissingAuthenticationTokenException", "the request is not signed");
    }
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return refuse(&held, "SerializationException", "the body is not JSON");
    };
    let (content_type, answer) = match target {
        "secretsmanager.GetSecretValue" => {
            if request.get("SecretId").and_then(Value::as_str) != Some(held.secret_id.as_str()) {
                return refuse(&held, "ResourceNotFoundException", "no such secret");
            }
            let arn = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{}-AbCdEf", held.secret_id);
            let answer = json!({
                "ARN": arn,
                "Name": held.secret_id,
                "VersionId": "00000000-0000-4000-8000-000000000001",
                "SecretString": held.secret_string,
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": 1.7e9,
            });
            ("application/x-amz-json-1.1", answer)
        }
        "DynamoDB_20120810.GetItem" => {
            if request.get("TableName").and_then(Value::as_str).is_none() || request.get("Key").is_none() {
                return refuse(&held, "ValidationException", "TableName and Key are required");
            }
            ("application/x-amz-json-1.0", json!({}))
        }
        other => return refuse(&held, "UnknownOperationException", &format!("not answered here: {other}")),
    };
    held.answered.fetch_add(1, Ordering::Relaxed);
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], answer.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(url: &str, target: &str, body: Value, signed: bool) -> (u16, Value) {
        let mut request = reqwest::Client::new().post(url).header("x-amz-target", target).body(body.to_string());
        if signed {
            request = request.header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20261129/us-east-1/x");
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    #[tokio::test]
    async fn answers_the_secret_and_the_warm_up_and_refuses_the_rest() {
        let aws = InstantAws::start("gw/cabital", r#"{"apiKey":"k","apiSecret":"s"}"#).await.unwrap();
        let url = aws.url();

        let (status, secret) =
            post(&url, "secretsmanager.GetSecretValue", json!({"SecretId": "gw/cabital"}), true).await;
        assert_eq!(status, 200);
        assert_eq!(secret["SecretString"], r#"{"apiKey":"k","apiSecret":"s"}"#);

        let (status, item) = post(
            &url,
            "DynamoDB_20120810.GetItem",
            json!({"TableName": "t", "Key": {"pk": {"S": "WARM-UP"}, "sk": {"S": "WARM-UP"}}}),
            true,
        )
        .await;
        assert_eq!((status, item), (200, json!({})));

        let (status, _) = post(&url, "secretsmanager.GetSecretValue", json!({"SecretId": "other"}), true).await;
        assert_eq!(status, 400);
        let (status, _) = post(&url, "DynamoDB_20120810.PutItem", json!({"TableName": "t"}), true).await;
        assert_eq!(status, 400);
        let (status, _) = post(&url, "secretsmanager.GetSecretValue", json!({"SecretId": "gw/cabital"}), false).await;
        assert_eq!(status, 400);
        assert_eq!(aws.counts(), (2, 3));
    }
}
