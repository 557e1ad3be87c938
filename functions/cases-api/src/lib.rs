//! The cases API: routes API Gateway (HTTP API, payload 2.0) requests to the gateway's
//! rules and maps the outcome to JSON or `application/problem+json`.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/cases` | validate, reserve the `externalCaseId`, create at Cabital, record |
//! | `GET /v1/cases?externalCaseId=...` | find a case by the partner's id |
//! | `GET /v1/cases?awaiting=decision` | the work queue: suggested, not decided, oldest first |
//! | `GET /v1/cases?attention=...` | what the gateway flags: unknown creations, cases without a suggestion |
//! | `GET /v1/cases/{id}/evidence` | the case and its whole tamper-evident timeline, for `evidence-verify` |
//! | `DELETE /v1/cases/{id}/personal-data` | erase the case's personal data here (its own route, for IAM) |
//! | `GET /v1/cases/{caseSystemId}` | the case and its timeline (`live`, `order`, `limit`, `cursor`) |
//! | `POST` / `DELETE /v1/cases/{caseSystemId}/ogs` | ongoing screening on / off |
//! | `POST /v1/cases/{caseSystemId}/decision` | the partner's final decision |

use std::time::Instant;

use gateway_cabital::{CaseSystemId, Deadline, ExternalCaseId, Suggestion};
use gateway_runtime::metrics::{Unit, emit};
use gateway_runtime::problem::json_response;
use gateway_runtime::{ErrorCode, Problem, Surface};
use gateway_service::{Gateway, GatewayError, InitError, Settings, TimelineQuery};
use gateway_store::{Flag, MAX_QUEUE_PAGE, MAX_TIMELINE_PAGE, QueueList, TimelineOrder};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::Value;

/// The largest request body accepted.
pub use gateway_service::MAX_BODY_BYTES;

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
    Evidence,
    Erase,
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
    // Every call to Cabital ends early enough for what must be written after it.
    let deadline = Deadline::from_lambda_ms(request.lambda_context_ref().map_or(0, |c| c.deadline));
    let mut ids = Ids::default();
    let (route, response) = route(app, &request, deadline, &mut ids).await;
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
    emit(&[("Function", "cases-api")], &status_metrics(status, started.elapsed().as_millis() as f64));
    Ok(response.map(Body::from))
}

/// One answer counted by its status class, for the alarms: a 5xx here is a
/// problem+json answer, which Lambda's Errors metric never sees.
fn status_metrics(status: u16, latency_ms: f64) -> [(&'static str, f64, Unit); 4] {
    let is = |class: u16| f64::from(u8::from(status / 100 == class));
    [
        ("CasesApi2xx", is(2), Unit::Count),
        ("CasesApi4xx", is(4), Unit::Count),
        ("CasesApi5xx", is(5), Unit::Count),
        ("CasesApiLatency", latency_ms, Unit::Milliseconds),
    ]
}

/// The routes, as API Gateway's route templates (`infra/template.yaml` declares the
/// same); a path's methods are listed in `Allow` in this order.
const ROUTES: &[(&str, &str, Route)] = &[
    ("GET", "/v1/cases", Route::FindCase),
    ("POST", "/v1/cases", Route::CreateCase),
    ("GET", "/v1/cases/{caseSystemId}", Route::GetCase),
    ("POST", "/v1/cases/{caseSystemId}/ogs", Route::OgsOn),
    ("DELETE", "/v1/cases/{caseSystemId}/ogs", Route::OgsOff),
    ("POST", "/v1/cases/{caseSystemId}/decision", Route::Decision),
    ("GET", "/v1/cases/{caseSystemId}/evidence", Route::Evidence),
    ("DELETE", "/v1/cases/{caseSystemId}/personal-data", Route::Erase),
];

/// The one path parameter.
const CASE_SYSTEM_ID: &str = "caseSystemId";

/// Where a request goes.
enum Resolved {
    /// A route, with the `caseSystemId` its path names, if any.
    Route(Route, Option<String>),
    /// A path no route has.
    NotFound,
    /// A path whose routes take other methods: these.
    WrongMethod(String),
}

/// API Gateway's `routeKey` (`"POST /v1/cases/{caseSystemId}/decision"`) names the route
/// and `pathParameters` the id. A `$default` route (all `cargo lambda watch` sends) names
/// none: then the method and path are matched against the same templates.
fn resolve(request: &Request) -> Resolved {
    let path = api_path(request);
    if let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref()
        && let Some((method, template)) = context.route_key.as_deref().and_then(|k| k.split_once(' '))
        && let Some((_, _, route)) = ROUTES.iter().find(|(m, t, _)| (*m, *t) == (method, template))
    {
        let id = request.path_parameters_ref().and_then(|p| p.first(CASE_SYSTEM_ID)).map(str::to_owned);
        return Resolved::Route(*route, id.or_else(|| captured(template, &path).flatten()));
    }
    let method = request.method().as_str();
    let mut allowed = Vec::new();
    for (m, template, route) in ROUTES {
        if let Some(id) = captured(template, &path) {
            if *m == method {
                return Resolved::Route(*route, id);
            }
            allowed.push(*m);
        }
    }
    if allowed.is_empty() { Resolved::NotFound } else { Resolved::WrongMethod(allowed.join(", ")) }
}

/// Whether `path` fits `template` (a `{name}` takes one segment), and the segment taken.
fn captured(template: &str, path: &str) -> Option<Option<String>> {
    let (mut want, mut have) = (template.split('/'), path.split('/'));
    let mut id = None;
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(id),
            (Some(w), Some(h)) if w.starts_with('{') => id = Some(h.to_owned()),
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
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

async fn route(app: &App, request: &Request, deadline: Deadline, ids: &mut Ids) -> (Route, http::Response<String>) {
    let (route, id) = match resolve(request) {
        Resolved::Route(route, id) => (route, id.unwrap_or_default()),
        Resolved::NotFound => (Route::Unknown, String::new()),
        Resolved::WrongMethod(allow) => return (Route::Unknown, method_not_allowed(&allow)),
    };
    let result = match route {
        Route::CreateCase => create(app, request, deadline, ids).await,
        Route::FindCase => find(app, request, ids).await,
        Route::GetCase => get(app, request, &id, deadline, ids).await,
        Route::OgsOn => ogs(app, &id, true, deadline, ids).await,
        Route::OgsOff => ogs(app, &id, false, deadline, ids).await,
        Route::Decision => decide(app, request, &id, deadline, ids).await,
        Route::Evidence => evidence(app, &id, ids).await,
        Route::Erase => erase(app, &id, ids).await,
        Route::Unknown => Err(problem(ErrorCode::RouteNotFound)),
    };
    match result {
        Ok(response) => (route, response),
        Err(problem) => {
            if problem.status >= 500 {
                tracing::warn!(code = problem.code, status = problem.status, "request failed");
            }
            (route, problem.into_response())
        }
    }
}

/// The cases API's problem for `code`.
fn problem(code: ErrorCode) -> Problem {
    code.problem(Surface::CasesApi)
}

/// 405 with `Allow`, which RFC 9110 requires of it.
fn method_not_allowed(allow: &str) -> http::Response<String> {
    let mut response = problem(ErrorCode::MethodNotAllowed).detail(format!("Allowed: {allow}")).into_response();
    if let Ok(value) = http::HeaderValue::from_str(allow) {
        response.headers_mut().insert(http::header::ALLOW, value);
    }
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
        return Err(problem(ErrorCode::UnsupportedMediaType));
    }
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(problem(ErrorCode::BodyTooLarge).detail(format!("At most {MAX_BODY_BYTES} bytes")));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // Position only: serde's message could quote the input.
        problem(ErrorCode::MalformedJson).detail(format!("at line {} column {}", e.line(), e.column()))
    })
}

fn case_id(raw: &str, ids: &mut Ids) -> Result<CaseSystemId, Problem> {
    let id = raw.parse::<CaseSystemId>().map_err(|_| problem(ErrorCode::InvalidCaseSystemId))?;
    ids.case_system_id = Some(id.to_string());
    Ok(id)
}

fn query_param(request: &Request, name: &str) -> Option<String> {
    request.query_string_parameters_ref().and_then(|q| q.first(name)).map(str::to_owned)
}

async fn create(
    app: &App,
    request: &Request,
    deadline: Deadline,
    ids: &mut Ids,
) -> Result<http::Response<String>, Problem> {
    let body = json_body(request)?;
    if let Some(ext) = body.get("externalCaseId").and_then(Value::as_str)
        && let Ok(ext) = ExternalCaseId::parse(ext)
    {
        ids.external_case_id = Some(ext.to_string());
    }
    let outcome = app.gateway.create_case(&body, deadline).await.map_err(failed)?;
    ids.case_system_id = outcome.case_system_id().map(|id| id.to_string());
    // A replay answers as the first time did: same status, same body (but `replayed`).
    Ok(json_response(outcome.status(), &outcome))
}

async fn find(app: &App, request: &Request, ids: &mut Ids) -> Result<http::Response<String>, Problem> {
    if query_param(request, "awaiting").is_some() || query_param(request, "attention").is_some() {
        return work_queue(app, request).await;
    }
    let Some(raw) = query_param(request, "externalCaseId") else {
        return Err(problem(ErrorCode::MissingExternalCaseId));
    };
    let ext =
        ExternalCaseId::parse(&raw).map_err(|e| problem(ErrorCode::InvalidExternalCaseId).detail(e.to_string()))?;
    ids.external_case_id = Some(ext.to_string());
    let found = app.gateway.find_by_external_id(&ext).await.map_err(failed)?;
    if let Some(id) = found.case_system_id {
        ids.case_system_id = Some(id.to_string());
    }
    Ok(json_response(200, &found))
}

/// `GET /v1/cases?awaiting=decision[&suggestion=...]` (the compliance officer's work
/// queue) or `?attention=unknown_creation|no_suggestion` (what the gateway flags), with
/// `[&limit=N][&cursor=...]`.
async fn work_queue(app: &App, request: &Request) -> Result<http::Response<String>, Problem> {
    let bad = |what: &str| problem(ErrorCode::InvalidQuery).detail(what.to_owned());
    if query_param(request, "externalCaseId").is_some() {
        return Err(bad("externalCaseId excludes awaiting and attention"));
    }
    let suggestion = query_param(request, "suggestion");
    let list = match (query_param(request, "awaiting").as_deref(), query_param(request, "attention")) {
        (Some("decision"), None) => QueueList::AwaitingDecision(match suggestion {
            None => None,
            Some(s) => Some(
                s.parse::<Suggestion>()
                    .map_err(|_| bad("suggestion must be SUGGEST_TO_ACCEPT, SUGGEST_TO_REJECT or NO_SUGGESTION"))?,
            ),
        }),
        (Some(_), None) => return Err(bad("awaiting must be decision")),
        (None, Some(flag)) => {
            if suggestion.is_some() {
                return Err(bad("suggestion goes with awaiting=decision"));
            }
            QueueList::Flagged(
                Flag::parse(&flag).ok_or_else(|| bad("attention must be unknown_creation or no_suggestion"))?,
            )
        }
        _ => return Err(bad("awaiting and attention exclude each other")),
    };
    let limit = match query_param(request, "limit") {
        None => 50,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_QUEUE_PAGE).contains(&n) => n,
            _ => return Err(bad(&format!("limit must be 1 to {MAX_QUEUE_PAGE}"))),
        },
    };
    let cursor = query_param(request, "cursor");
    let page = app.gateway.work_queue(list, limit, cursor.as_deref()).await.map_err(failed)?;
    Ok(json_response(200, &page))
}

fn timeline_query(request: &Request) -> Result<TimelineQuery, Problem> {
    let bad = |what: &str| problem(ErrorCode::InvalidQuery).detail(what.to_owned());
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

async fn get(
    app: &App,
    request: &Request,
    raw_id: &str,
    deadline: Deadline,
    ids: &mut Ids,
) -> Result<http::Response<String>, Problem> {
    let id = case_id(raw_id, ids)?;
    let query = timeline_query(request)?;
    let view = app.gateway.get_case(id, query, deadline).await.map_err(failed)?;
    ids.external_case_id = Some(view.case.external_case_id.to_string());
    Ok(json_response(200, &view))
}

/// `GET /v1/cases/{id}/evidence`: the case and its whole chained timeline.
async fn evidence(app: &App, raw_id: &str, ids: &mut Ids) -> Result<http::Response<String>, Problem> {
    let id = case_id(raw_id, ids)?;
    let document = app.gateway.evidence(id).await.map_err(failed)?;
    ids.external_case_id = document.pointer("/case/externalCaseId").and_then(Value::as_str).map(str::to_owned);
    Ok(json_response(200, &document))
}

/// `DELETE /v1/cases/{id}/personal-data`: its own route, so that IAM can grant it to
/// few (infra/README.md).
async fn erase(app: &App, raw_id: &str, ids: &mut Ids) -> Result<http::Response<String>, Problem> {
    let id = case_id(raw_id, ids)?;
    let erased = app.gateway.erase(id).await.map_err(failed)?;
    Ok(json_response(200, &erased))
}

async fn ogs(
    app: &App,
    raw_id: &str,
    on: bool,
    deadline: Deadline,
    ids: &mut Ids,
) -> Result<http::Response<String>, Problem> {
    let id = case_id(raw_id, ids)?;
    let case = app.gateway.set_ogs(id, on, deadline).await.map_err(failed)?;
    ids.external_case_id = Some(case.external_case_id.to_string());
    Ok(json_response(200, &case))
}

async fn decide(
    app: &App,
    request: &Request,
    raw_id: &str,
    deadline: Deadline,
    ids: &mut Ids,
) -> Result<http::Response<String>, Problem> {
    let id = case_id(raw_id, ids)?;
    let body = json_body(request)?;
    let case = app.gateway.decide(id, &body, deadline).await.map_err(failed)?;
    ids.external_case_id = Some(case.external_case_id.to_string());
    Ok(json_response(200, &case))
}

#[cfg(test)]
mod tests {
    use super::status_metrics;

    #[test]
    fn each_answer_counts_once_in_its_status_class() {
        for (status, class) in [(200, "CasesApi2xx"), (202, "CasesApi2xx"), (404, "CasesApi4xx"), (503, "CasesApi5xx")]
        {
            let metrics = status_metrics(status, 7.0);
            let counted: Vec<&str> =
                metrics.iter().filter(|(name, value, _)| name.ends_with("xx") && *value == 1.0).map(|m| m.0).collect();
            assert_eq!(counted, [class], "{status}");
            assert_eq!(metrics.iter().filter(|(name, _, _)| name.ends_with("xx")).map(|m| m.1).sum::<f64>(), 1.0);
        }
        assert_eq!(status_metrics(200, 7.0)[3].1, 7.0);
    }
}
