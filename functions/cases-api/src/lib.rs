//! The cases API: routes API Gateway (HTTP API, payload 2.0) requests to the gateway's
//! rules and maps the outcome to JSON or `application/problem+json`.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/cases` | validate, reserve the `externalCaseId`, create at Cabital, record |
//! | `GET /v1/cases?externalCaseId=...` | find a case by the partner's id |
//! | `GET /v1/cases/{caseSystemId}` | the case and its timeline (`live`, `order`, `limit`, `cursor`) |
//! | `POST` / `DELETE /v1/cases/{caseSystemId}/ogs` | ongoing screening on / off |
//! | `POST /v1/cases/{caseSystemId}/decision` | the partner's final decision |

use std::time::Instant;

use cabital_client::{CaseSystemId, ExternalCaseId};
use gateway_runtime::Problem;
use gateway_runtime::problem::json_response;
use http::Method;
use kyc_service::{Gateway, GatewayError, InitError, Settings, TimelineQuery};
use kyc_store::{MAX_TIMELINE_PAGE, TimelineOrder};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::Value;

/// The largest request body accepted.
pub use kyc_service::MAX_BODY_BYTES;

/// What the handler needs, built once per cold start.
pub struct App {
    /// The gateway's rules over the store and the Cabital client.
    pub gateway: Gateway,
}

impl App {
    /// Reads the settings and builds the clients; a bad setting or secret stops the cold start.
    pub async fn from_env() -> Result<Self, InitError> {
        let settings = Settings::from_env()?;
        Ok(App { gateway: Gateway::start(&settings).await? })
    }
}

/// Which route a request took, for the log line.
#[derive(Debug, Clone, Copy)]
enum Route {
    CreateCase,
    FindCase,
    GetCase,
    OgsOn,
    OgsOff,
    Decision,
    Unknown,
}

/// Ids named by the request or its outcome, for the log line.
#[derive(Default)]
struct Ids {
    case_system_id: Option<String>,
    external_case_id: Option<String>,
}

/// The Lambda handler: every outcome is a response, never an `Err`.
pub async fn handle(app: &App, request: Request) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let request_id = request.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
    let mut ids = Ids::default();
    let (route, response) = route(app, &request, &mut ids).await;
    let status = response.status().as_u16();
    tracing::info!(
        request_id = %request_id,
        method = %request.method(),
        route = ?route,
        status,
        latency_ms = started.elapsed().as_millis() as u64,
        case_system_id = ids.case_system_id.as_deref(),
        external_case_id = ids.external_case_id.as_deref(),
        "request"
    );
    Ok(response.map(Body::from))
}

/// The path after any stage or custom-domain prefix, from `/v1/` on.
fn api_path(request: &Request) -> String {
    let raw = request.raw_http_path();
    let path = if raw.is_empty() { request.uri().path().to_owned() } else { raw.to_owned() };
    match path.find("/v1/") {
        Some(at) => path[at..].trim_end_matches('/').to_owned(),
        None => path,
    }
}

async fn route(app: &App, request: &Request, ids: &mut Ids) -> (Route, http::Response<String>) {
    let path = api_path(request);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = request.method();
    let result = match segments.as_slice() {
        ["v1", "cases"] => match *method {
            Method::POST => (Route::CreateCase, create(app, request, ids).await),
            Method::GET => (Route::FindCase, find(app, request, ids).await),
            _ => (Route::Unknown, Ok(method_not_allowed("GET, POST"))),
        },
        ["v1", "cases", id] => match *method {
            Method::GET => (Route::GetCase, get(app, request, id, ids).await),
            _ => (Route::Unknown, Ok(method_not_allowed("GET"))),
        },
        ["v1", "cases", id, "ogs"] => match *method {
            Method::POST => (Route::OgsOn, ogs(app, id, true, ids).await),
            Method::DELETE => (Route::OgsOff, ogs(app, id, false, ids).await),
            _ => (Route::Unknown, Ok(method_not_allowed("POST, DELETE"))),
        },
        ["v1", "cases", id, "decision"] => match *method {
            Method::POST => (Route::Decision, decide(app, request, id, ids).await),
            _ => (Route::Unknown, Ok(method_not_allowed("POST"))),
        },
        _ => (Route::Unknown, Err(Problem::new(404, "route_not_found", "No such route"))),
    };
    match result {
        (route, Ok(response)) => (route, response),
        (route, Err(problem)) => {
            if problem.status >= 500 {
                tracing::warn!(code = problem.code, status = problem.status, "request failed");
            }
            (route, problem.into_response())
        }
    }
}

/// 405 with `Allow`, which RFC 9110 requires of it.
fn method_not_allowed(allow: &'static str) -> http::Response<String> {
    let mut response = Problem::new(405, "method_not_allowed", "Method not allowed")
        .detail(format!("Allowed: {allow}"))
        .into_response();
    response.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    response
}

fn failed(e: GatewayError) -> Problem {
    if let GatewayError::Store(inner) = &e {
        // The store's message names attributes and codes, never values.
        tracing::error!(error = %inner, "store failure");
    }
    e.problem()
}

/// Reads a JSON body: 415 unless `application/json`, 413 over the bound, 400 if not JSON.
fn json_body(request: &Request) -> Result<Value, Problem> {
    let content_type = request.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" {
        return Err(Problem::new(415, "unsupported_media_type", "The body must be application/json"));
    }
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::new(413, "body_too_large", "The body is too large")
            .detail(format!("At most {MAX_BODY_BYTES} bytes")));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // Position only: serde's message could quote the input.
        Problem::new(400, "malformed_json", "The body is not valid JSON").detail(format!(
            "at line {} column {}",
            e.line(),
            e.column()
        ))
    })
}

fn case_id(raw: &str, ids: &mut Ids) -> Result<CaseSystemId, Problem> {
    let id = raw
        .parse::<CaseSystemId>()
        .map_err(|_| Problem::new(400, "invalid_case_system_id", "caseSystemId must be a UUID"))?;
    ids.case_system_id = Some(id.to_string());
    Ok(id)
}

fn query_param(request: &Request, name: &str) -> Option<String> {
    request.query_string_parameters_ref().and_then(|q| q.first(name)).map(str::to_owned)
}

async fn create(app: &App, request: &Request, ids: &mut Ids) -> Result<http::Response<String>, Problem> {
    let body = json_body(request)?;
    if let Some(ext) = body.get("externalCaseId").and_then(Value::as_str)
        && let Ok(ext) = ExternalCaseId::parse(ext)
    {
        ids.external_case_id = Some(ext.to_string());
    }
    let outcome = app.gateway.create_case(&body).await.map_err(failed)?;
    ids.case_system_id = outcome.case_system_id().map(|id| id.to_string());
    // A replay answers as the first time did: same status, same body (but `replayed`).
    Ok(json_response(outcome.status(), &outcome))
}

async fn find(app: &App, request: &Request, ids: &mut Ids) -> Result<http::Response<String>, Problem> {
    let Some(raw) = query_param(request, "externalCaseId") else {
        return Err(Problem::new(400, "missing_external_case_id", "Give ?externalCaseId=..."));
    };
    let ext = ExternalCaseId::parse(&raw).map_err(|e| {
        Problem::new(400, "invalid_external_case_id", "externalCaseId is invalid").detail(e.to_string())
    })?;
    ids.external_case_id = Some(ext.to_string());
    let found = app.gateway.find_by_external_id(&ext).await.map_err(failed)?;
    if let Some(id) = found.case_system_id {
        ids.case_system_id = Some(id.to_string());
    }
    Ok(json_response(200, &found))
}

fn timeline_query(request: &Request) -> Result<TimelineQuery, Problem> {
    let bad = |what: &str| Problem::new(400, "invalid_query", "A query parameter is invalid").detail(what.to_owned());
    let live = match query_param(request, "live").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(bad("live must be true or false")),
    };
    let order = match query_param(request, "order").as_deref() {
        None | Some("oldest") => TimelineOrder::Oldest,
        Some("newest") => TimelineOrder::Newest,
        Some(_) => return Err(bad("order must be oldest or newest")),
    };
    let limit = match query_param(request, "limit") {
        None => 50,
        // The store's page bound: a larger limit would be cut short without a word.
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_TIMELINE_PAGE).contains(&n) => n,
            _ => return Err(bad(&format!("limit must be 1 to {MAX_TIMELINE_PAGE}"))),
        },
    };
    Ok(TimelineQuery { live, order, limit, cursor: query_param(request, "cursor") })
}

async fn get(app: &App, request: &Request, raw_id: &str, ids: &mut Ids) -> Result<http::Response<String>, Problem> {
    let id = case_id(raw_id, ids)?;
    let query = timeline_query(request)?;
    let view = app.gateway.get_case(id, query).await.map_err(failed)?;
    ids.external_case_id = Some(view.case.external_case_id.to_string());
    Ok(json_response(200, &view))
}

async fn ogs(app: &App, raw_id: &str, on: bool, ids: &mut Ids) -> Result<http::Response<String>, Problem> {
    let id = case_id(raw_id, ids)?;
    let case = app.gateway.set_ogs(id, on).await.map_err(failed)?;
    ids.external_case_id = Some(case.external_case_id.to_string());
    Ok(json_response(200, &case))
}

async fn decide(app: &App, request: &Request, raw_id: &str, ids: &mut Ids) -> Result<http::Response<String>, Problem> {
    let id = case_id(raw_id, ids)?;
    let body = json_body(request)?;
    let decision = cabital_client::validate_decision(&body).map_err(|e| failed(GatewayError::Validation(e)))?;
    let case = app.gateway.decide(id, &decision).await.map_err(failed)?;
    ids.external_case_id = Some(case.external_case_id.to_string());
    Ok(json_response(200, &case))
}
