//! The control API under `/_sandbox/`: no auth (the sandbox listens on 127.0.0.1 only),
//! camelCase JSON in and out, errors as `{"code", "message"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::StatusCode;
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

use crate::api::{error_response, ongoing_suggestion};
use crate::config::{Credential, Faults, check_webhook_url};
use crate::model::{CaseState, SuggestionChange, WebhookUrl};
use crate::state::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/cases", get(list_cases))
        .route("/cases/{id}", get(get_case))
        .route("/cases/{id}/suggestion", post(post_suggestion))
        .route("/cases/{id}/requests", get(case_requests))
        .route("/deliveries", get(deliveries))
        .route("/stats", get(stats))
        .route("/faults", get(get_faults).put(put_faults))
        .route("/credentials", put(put_credentials))
        .route("/webhook-credential", put(put_webhook_credential))
        .route("/webhook-url", get(get_webhook_url).put(put_webhook_url))
        .route("/reset", post(reset))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "no such control endpoint") })
}

/// Reads a JSON body; the error is the 400 to answer (boxed: a `Response` is large).
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error_response(StatusCode::BAD_REQUEST, format!("bad body: {e}"))))
}

fn json<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

/// Case states, in creation order, all or those with `?externalCaseId=`.
pub(crate) fn cases_matching(shared: &Shared, external_case_id: Option<&str>) -> Vec<CaseState> {
    let state = shared.lock();
    state
        .cases_in_order()
        .filter(|c| external_case_id.is_none_or(|wanted| c.external_case_id == wanted))
        .map(|c| c.full_state())
        .collect()
}

async fn list_cases(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    json(cases_matching(&shared, query.get("externalCaseId").map(String::as_str)))
}

async fn get_case(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let case = Uuid::try_parse(&id).ok().and_then(|id| shared.lock().cases.get(&id).map(|c| c.full_state()));
    match case {
        Some(case) => json(case),
        None => error_response(StatusCode::NOT_FOUND, "case not found"),
    }
}

/// The API requests that named a case, per endpoint (`{}` for none): what one case cost.
async fn case_requests(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    json(shared.lock().case_requests.get(&id).cloned().unwrap_or_default())
}

async fn post_suggestion(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let change: SuggestionChange = match parse(&body) {
        Ok(change) => change,
        Err(response) => return *response,
    };
    match Uuid::try_parse(&id).ok().and_then(|id| ongoing_suggestion(&shared, id, change)) {
        Some(case) => json(case),
        None => error_response(StatusCode::NOT_FOUND, "case not found"),
    }
}

async fn deliveries(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let wanted = query.get("caseSystemId").cloned();
    let state = shared.lock();
    let list: Vec<_> = state
        .deliveries
        .iter()
        .filter(|d| wanted.as_deref().is_none_or(|w| d.case_system_id.to_string() == w))
        .cloned()
        .collect();
    json(list)
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    json(shared.lock().stats.clone())
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    json(shared.lock().faults.clone())
}

async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let faults: Faults = match parse(&body) {
        Ok(faults) => faults,
        Err(response) => return *response,
    };
    if let Err(problem) = faults.validate() {
        return error_response(StatusCode::BAD_REQUEST, problem.to_string());
    }
    shared.lock().faults = faults.clone();
    json(faults)
}

async fn put_credentials(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let credentials: Vec<Credential> = match parse(&body) {
        Ok(credentials) => credentials,
        Err(response) => return *response,
    };
    shared.lock().credentials = credentials;
    StatusCode::NO_CONTENT.into_response()
}

/// A new credential for webhooks signed with one of their own (a rotation): later
/// attempts are signed with it, but retries under their first attempt's headers.
async fn put_webhook_credential(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let credential: Credential = match parse(&body) {
        Ok(credential) => credential,
        Err(response) => return *response,
    };
    if !matches!(shared.config.webhook_signing, crate::WebhookSigning::Separate(_)) {
        return error_response(StatusCode::CONFLICT, "webhooks are not signed with a credential of their own");
    }
    shared.lock().webhook_credential = Some(credential);
    StatusCode::NO_CONTENT.into_response()
}

async fn get_webhook_url(State(shared): State<Arc<Shared>>) -> Response {
    json(WebhookUrl { url: shared.lock().webhook_url.as_ref().map(Url::to_string) })
}

async fn put_webhook_url(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: WebhookUrl = match parse(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let url = match request.url.as_deref().map(Url::parse).transpose() {
        Ok(url) => url,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("bad url: {e}")),
    };
    if let Some(url) = &url
        && let Err(problem) = check_webhook_url(url)
    {
        return error_response(StatusCode::BAD_REQUEST, problem.to_string());
    }
    let shown = WebhookUrl { url: url.as_ref().map(Url::to_string) };
    shared.lock().webhook_url = url;
    json(shown)
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    StatusCode::NO_CONTENT.into_response()
}
