//! The CaaS API: `/api/v1/cases...`, signed, with injected faults.
//!
//! One handler takes every request outside `/_sandbox/`, so that auth, faults and the
//! error shape are the same for known and unknown routes. Order of checks: 401 (auth),
//! 429 (rate limit), injected 500/503, 404 (route), 405 (method), 406 (not JSON),
//! 404 (case), 400 (body), 409 (duplicate), then the call itself.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rand::Rng as _;
use serde_json::Value;
use tracing::{info, warn};
use uuid::Uuid;

use crate::auth;
use crate::config::CreateAnswerMode;
use crate::model::{DecisionRecord, ErrorBody, FieldError, SuggestionSource};
use crate::state::{CaseRecord, Shared, rfc3339, today};
use crate::validate::{validate_case, validate_decision};
use crate::webhook;

/// Largest request body read, in bytes; larger gets 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const CASES_PATH: &str = "/api/v1/cases";

/// The API's routes; the id is the raw path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Cases,
    Case(String),
    Ogs(String),
    Decision(String),
}

impl Route {
    fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix(CASES_PATH)?;
        if rest.is_empty() {
            return Some(Self::Cases);
        }
        let rest = rest.strip_prefix('/')?;
        let mut segments = rest.split('/');
        let id = segments.next().filter(|s| !s.is_empty())?.to_owned();
        match (segments.next(), segments.next()) {
            (None, _) => Some(Self::Case(id)),
            (Some("ogs"), None) => Some(Self::Ogs(id)),
            (Some("decision"), None) => Some(Self::Decision(id)),
            _ => None,
        }
    }

    /// The case id segment of the path, if the route has one.
    fn case_id(&self) -> Option<&str> {
        match self {
            Self::Cases => None,
            Self::Case(id) | Self::Ogs(id) | Self::Decision(id) => Some(id),
        }
    }

    fn allowed(&self) -> &'static [Method] {
        match self {
            Self::Cases | Self::Decision(_) => &[Method::POST],
            Self::Case(_) => &[Method::GET],
            Self::Ogs(_) => &[Method::POST, Method::DELETE],
        }
    }

    fn template(&self) -> &'static str {
        match self {
            Self::Cases => "/api/v1/cases",
            Self::Case(_) => "/api/v1/cases/{caseSystemId}",
            Self::Ogs(_) => "/api/v1/cases/{caseSystemId}/ogs",
            Self::Decision(_) => "/api/v1/cases/{caseSystemId}/decision",
        }
    }
}

/// The label a request is counted under in the stats.
fn endpoint_label(method: &Method, route: Option<&Route>) -> String {
    match route {
        Some(route) if route.allowed().contains(method) => format!("{method} {}", route.template()),
        _ => "other".to_owned(),
    }
}

/// `{"code": status, "message": ...}`.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    error_with_fields(status, message, Vec::new())
}

fn error_with_fields(status: StatusCode, message: impl Into<String>, errors: Vec<FieldError>) -> Response {
    let body = ErrorBody { code: status.as_u16(), message: message.into(), errors };
    (status, axum::Json(body)).into_response()
}

fn invalid_body(errors: Vec<FieldError>) -> Response {
    let summary: Vec<String> = errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
    error_with_fields(StatusCode::BAD_REQUEST, format!("invalid parameters: {}", summary.join("; ")), errors)
}

fn body_required() -> Response {
    invalid_body(vec![FieldError { field: "body".into(), message: "is required".into() }])
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// A case id as it appears in a path: a hyphenated UUID.
fn parse_case_id(segment: &str) -> Option<Uuid> {
    if segment.len() != 36 {
        return None;
    }
    Uuid::try_parse(segment).ok()
}

fn unknown_case() -> Response {
    error_response(StatusCode::NOT_FOUND, "case not found")
}

/// The handler for every API request.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method;
    let path = parts.uri.path().to_owned();
    // The path as sent, query included: what the client signed.
    let request_path = parts.uri.path_and_query().map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let route = Route::parse(&path);
    let endpoint = endpoint_label(&method, route.as_ref());
    let latency = {
        let mut state = shared.lock();
        *state.stats.requests.entry(endpoint.clone()).or_default() += 1;
        if let Some(id) = route.as_ref().and_then(Route::case_id) {
            *state.case_requests.entry(id.to_owned()).or_default().entry(endpoint.clone()).or_default() += 1;
        }
        Duration::from_millis(state.faults.latency_ms)
    };

    let (response, case_id) = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => process(&shared, &method, route, &request_path, &parts.headers, bytes).await,
        Err(_) => {
            (error_response(StatusCode::PAYLOAD_TOO_LARGE, format!("body larger than {MAX_BODY_BYTES} bytes")), None)
        }
    };

    let status = response.status();
    *shared.lock().stats.responses.entry(status.as_u16()).or_default() += 1;
    info!(%endpoint, status = status.as_u16(), case_system_id = case_id.map(|id| id.to_string()), "api request");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
}

async fn process(
    shared: &Arc<Shared>,
    method: &Method,
    route: Option<Route>,
    request_path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> (Response, Option<Uuid>) {
    // Auth, rate limit and injected faults, in one look at the state.
    {
        let mut guard = shared.lock();
        let state = &mut *guard;
        let now = crate::state::unix_seconds(state.now());
        let verified = auth::verify(
            headers,
            method.as_str(),
            request_path,
            &body,
            &state.credentials,
            now,
            shared.config.signature_encoding,
        );
        if let Err(problem) = verified {
            state.stats.unauthorized += 1;
            warn!(%problem, "api request refused");
            return (error_response(StatusCode::UNAUTHORIZED, problem.to_string()), None);
        }
        if let Err(retry_after) = state.bucket.try_take(state.faults.rate_limit_per_sec) {
            state.stats.rate_limited += 1;
            let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after));
            return (response, None);
        }
        let roll: f64 = state.rng.random();
        if roll < state.faults.error_rate_500 {
            state.stats.injected_500 += 1;
            return (error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal server error"), None);
        }
        if roll < state.faults.error_rate_500 + state.faults.error_rate_503 {
            state.stats.injected_503 += 1;
            return (error_response(StatusCode::SERVICE_UNAVAILABLE, "service unavailable"), None);
        }
    }

    let Some(route) = route else {
        return (error_response(StatusCode::NOT_FOUND, "no such resource"), None);
    };
    if !route.allowed().contains(method) {
        let allow = route.allowed().iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        let mut response = error_response(StatusCode::METHOD_NOT_ALLOWED, format!("method {method} not allowed"));
        if let Ok(value) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(ALLOW, value);
        }
        return (response, None);
    }

    let json = if body.is_empty() {
        None
    } else {
        if *method == Method::POST && !is_json_content_type(headers) {
            return (error_response(StatusCode::NOT_ACCEPTABLE, "Content-Type must be application/json"), None);
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => Some(value),
            Err(_) => {
                return (error_response(StatusCode::NOT_ACCEPTABLE, "body is not valid JSON"), None);
            }
        }
    };

    match route {
        Route::Cases => create(shared, json),
        Route::Case(id) => with_case(&id, |id| get(shared, id)),
        Route::Ogs(id) => with_case(&id, |id| set_ogs(shared, id, *method == Method::POST)),
        Route::Decision(id) => with_case(&id, |id| decide(shared, id, json)),
    }
}

fn with_case(segment: &str, call: impl FnOnce(Uuid) -> Response) -> (Response, Option<Uuid>) {
    match parse_case_id(segment) {
        Some(id) => (call(id), Some(id)),
        None => (unknown_case(), None),
    }
}

fn create(shared: &Arc<Shared>, json: Option<Value>) -> (Response, Option<Uuid>) {
    let Some(json) = json else {
        return (body_required(), None);
    };
    let (view, id) = {
        let mut state = shared.lock();
        let now = state.now();
        let new_case = match validate_case(&json, today(now)) {
            Ok(new_case) => new_case,
            Err(errors) => return (invalid_body(errors), None),
        };
        if shared.config.reject_duplicate_external_id
            && state.cases.values().any(|c| c.external_case_id == new_case.external_case_id)
        {
            return (error_response(StatusCode::CONFLICT, "a case with this externalCaseId already exists"), None);
        }
        let id = state.new_case_id();
        let record = CaseRecord {
            case_system_id: id,
            created_at: now,
            external_case_id: new_case.external_case_id,
            screen_type: new_case.screen_type,
            full_name: new_case.full_name,
            individual_info: new_case.individual_info,
            organization_info: new_case.organization_info,
            suggestion: None,
            suggestion_comment: None,
            decision: None,
            decision_comment: None,
            ogs: false,
            screening_pending: !shared.config.no_screening,
            suggestion_history: Vec::new(),
            decision_history: Vec::new(),
            notifications: Vec::new(),
        };
        let view = record.view();
        state.cases.insert(id, record);
        state.order.push(id);
        state.stats.creates += 1;
        (view, id)
    };

    let delay = shared.config.screening_delay_ms;
    if shared.config.no_screening {
        // No Zero Footprint: nothing screens the case until the control API says so.
    } else if delay == 0 {
        webhook::apply_screening(shared, id);
    } else {
        let task_shared = Arc::clone(shared);
        shared.spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            webhook::apply_screening(&task_shared, id);
        });
    }
    let response = match shared.config.create_answer {
        CreateAnswerMode::Full => (StatusCode::CREATED, axum::Json(view)).into_response(),
        CreateAnswerMode::Empty => (StatusCode::CREATED, Body::empty()).into_response(),
        CreateAnswerMode::NoId => (StatusCode::CREATED, axum::Json(without_case_system_id(&view))).into_response(),
    };
    (response, Some(id))
}

/// A case's JSON without its `caseSystemId`.
fn without_case_system_id(view: &crate::model::CaseView) -> Value {
    let mut value = serde_json::to_value(view).unwrap_or(Value::Null);
    if let Value::Object(object) = &mut value {
        object.remove("caseSystemId");
    }
    value
}

fn get(shared: &Arc<Shared>, id: Uuid) -> Response {
    match shared.lock().cases.get(&id) {
        Some(case) if shared.config.get_without_case_system_id => {
            (StatusCode::OK, axum::Json(without_case_system_id(&case.view()))).into_response()
        }
        Some(case) => (StatusCode::OK, axum::Json(case.view())).into_response(),
        None => unknown_case(),
    }
}

fn set_ogs(shared: &Arc<Shared>, id: Uuid, on: bool) -> Response {
    let mut state = shared.lock();
    let Some(case) = state.cases.get_mut(&id) else {
        return unknown_case();
    };
    case.ogs = on;
    let status = if on { StatusCode::CREATED } else { StatusCode::NO_CONTENT };
    (status, Body::empty()).into_response()
}

fn decide(shared: &Arc<Shared>, id: Uuid, json: Option<Value>) -> Response {
    let mut guard = shared.lock();
    let state = &mut *guard;
    let now = state.now();
    let Some(case) = state.cases.get_mut(&id) else {
        return unknown_case();
    };
    let Some(json) = json else {
        return body_required();
    };
    let (result, comment) = match validate_decision(&json) {
        Ok(decision) => decision,
        Err(errors) => return invalid_body(errors),
    };
    case.decision = Some(result);
    case.decision_comment = comment.clone();
    case.decision_history.push(DecisionRecord { case_result: result, comment, at: rfc3339(now) });
    (StatusCode::CREATED, Body::empty()).into_response()
}

/// Sets a suggestion from the control API, as ongoing screening would.
pub(crate) fn ongoing_suggestion(
    shared: &Arc<Shared>,
    id: Uuid,
    change: crate::model::SuggestionChange,
) -> Option<crate::model::CaseState> {
    let comment = change.comment.unwrap_or_else(|| webhook::default_comment(change.suggestion));
    webhook::set_suggestion(shared, id, change.suggestion, comment, SuggestionSource::Ongoing, change.notify)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::parse("/api/v1/cases"), Some(Route::Cases));
        assert_eq!(Route::parse("/api/v1/cases/abc"), Some(Route::Case("abc".into())));
        assert_eq!(Route::parse("/api/v1/cases/abc/ogs"), Some(Route::Ogs("abc".into())));
        assert_eq!(Route::parse("/api/v1/cases/abc/decision"), Some(Route::Decision("abc".into())));
        assert_eq!(Route::parse("/api/v1/cases/"), None);
        assert_eq!(Route::parse("/api/v1/cases/abc/"), None);
        assert_eq!(Route::parse("/api/v1/cases/abc/ogs/x"), None);
        assert_eq!(Route::parse("/api/v1/casesx"), None);
        assert_eq!(Route::parse("/api/v2/cases"), None);
    }

    #[test]
    fn content_type() {
        let mut headers = HeaderMap::new();
        assert!(!is_json_content_type(&headers));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        assert!(is_json_content_type(&headers));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json_content_type(&headers));
    }
}
