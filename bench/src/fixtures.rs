//! The events fed to the functions: the repository's own fixtures under
//! `functions/*/events`, with the ids changed per request and webhooks signed now.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use gateway_sandbox::{Credential, FixtureSigning, SignatureEncoding, sign_event};
use serde_json::Value;

/// A fixture could not be read or changed.
#[derive(Debug)]
pub struct FixtureError(pub String);

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FixtureError {}

fn read(repo: &Path, relative: &str) -> Result<Value, FixtureError> {
    let path = repo.join(relative);
    let text = std::fs::read_to_string(&path).map_err(|e| FixtureError(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| FixtureError(format!("{}: {e}", path.display())))
}

fn set_path(event: &mut Value, method: &str, path: &str) {
    event["rawPath"] = Value::from(path);
    event["routeKey"] = Value::from(format!("{method} {path}"));
    event["requestContext"]["routeKey"] = Value::from(format!("{method} {path}"));
    event["requestContext"]["http"]["path"] = Value::from(path);
}

/// The fixtures, read once.
pub struct Fixtures {
    create: Value,
    get: Value,
    webhook: Value,
    schedule: Value,
}

impl Fixtures {
    /// Reads `create-case.json`, `get-case.json`, `webhook-signed.json` and `schedule.json`.
    pub fn load(repo: &Path) -> Result<Self, FixtureError> {
        Ok(Fixtures {
            create: read(repo, "functions/cases-api/events/create-case.json")?,
            get: read(repo, "functions/cases-api/events/get-case.json")?,
            webhook: read(repo, "functions/webhook/events/webhook-signed.json")?,
            schedule: read(repo, "functions/reconcile/events/schedule.json")?,
        })
    }

    /// `POST /v1/cases` of the fixture's case under another `externalCaseId`.
    pub fn create_case(&self, external_case_id: &str, request_id: &str) -> Result<Vec<u8>, FixtureError> {
        let mut event = self.create.clone();
        let body = event["body"].as_str().ok_or_else(|| FixtureError("create-case.json has no body".into()))?;
        let mut case: Value = serde_json::from_str(body).map_err(|e| FixtureError(format!("create body: {e}")))?;
        case["externalCaseId"] = Value::from(external_case_id);
        event["body"] = Value::from(case.to_string());
        event["requestContext"]["requestId"] = Value::from(request_id);
        serde_json::to_vec(&event).map_err(|e| FixtureError(e.to_string()))
    }

    /// `GET /v1/cases/{id}`.
    pub fn get_case(&self, case_system_id: &str, request_id: &str) -> Result<Vec<u8>, FixtureError> {
        let mut event = self.get.clone();
        set_path(&mut event, "GET", &format!("/v1/cases/{case_system_id}"));
        event["requestContext"]["requestId"] = Value::from(request_id);
        serde_json::to_vec(&event).map_err(|e| FixtureError(e.to_string()))
    }

    /// A webhook delivery of `notification`, signed now with `credential` as Cabital would.
    pub fn webhook(&self, notification: &Value, credential: &Credential) -> Result<Vec<u8>, FixtureError> {
        let mut event = self.webhook.clone();
        event["body"] = Value::from(notification.to_string());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let signing = FixtureSigning {
            credential: credential.clone(),
            timestamp: now,
            path: None,
            encoding: SignatureEncoding::Hex,
        };
        sign_event(&mut event, &signing).map_err(|e| FixtureError(format!("signing: {e}")))?;
        serde_json::to_vec(&event).map_err(|e| FixtureError(e.to_string()))
    }

    /// The scheduled EventBridge event.
    pub fn schedule(&self) -> Result<Vec<u8>, FixtureError> {
        serde_json::to_vec(&self.schedule).map_err(|e| FixtureError(e.to_string()))
    }
}

/// An API Gateway (v2) response as the function returned it: status and parsed JSON body.
pub fn http_response(body: &[u8]) -> (u16, Value) {
    let outer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let status = outer.get("statusCode").and_then(Value::as_u64).unwrap_or(0) as u16;
    let inner = outer.get("body").and_then(Value::as_str).and_then(|b| serde_json::from_str(b).ok());
    (status, inner.unwrap_or(Value::Null))
}
