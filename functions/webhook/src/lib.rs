//! The webhook intake: `POST /webhooks/cabital`, public (the function authenticates).
//!
//! Bound the body (413), verify the signature over the raw bytes (401; with
//! `WEBHOOK_AUTH=refetch` an unverified delivery is a notice instead), parse strictly
//! (400), store durably and idempotently (503 when it cannot, so that Cabital retries),
//! answer 200, after a refresh bounded in time. An exact repeat of a stored delivery
//! (same timestamp and signature) is answered 200 as a `replay`, and costs nothing more.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use gateway_runtime::metrics::{Unit, emit};
use gateway_runtime::problem::json_response;
use gateway_runtime::{ErrorCode, Surface};
use gateway_service::{
    Accepted, Delivery, Gateway, InitError, RefreshOutcome, Settings, Verification, WebhookSettings,
};
use gateway_signing::{HEADER_KEY, HEADER_SIGN, HEADER_TIMESTAMP, IncomingHeaders};
use lambda_http::{Body, Error, Request, RequestExt, Response};

/// What the handler needs, built once per cold start.
pub struct App {
    /// The gateway's rules.
    pub gateway: Gateway,
    /// The webhook's settings.
    pub settings: WebhookSettings,
}

impl App {
    /// Reads the settings and builds the clients; a bad setting or secret stops the cold start.
    pub async fn from_env() -> Result<Self, InitError> {
        let settings = Settings::from_env()?;
        Ok(App { gateway: Gateway::start(&settings).await?, settings: settings.webhook })
    }
}

fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The Lambda handler: every outcome is a response, never an `Err`.
pub async fn handle(app: &App, request: Request) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let request_id = request.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
    let response = if request.method() != http::Method::POST {
        ErrorCode::MethodNotAllowed.problem(Surface::Webhook).into_response()
    } else {
        receive(app, &request, &request_id, started).await
    };
    Ok(response.map(Body::from))
}

async fn receive(app: &App, request: &Request, request_id: &str, started: Instant) -> http::Response<String> {
    let raw = request.raw_http_path();
    let path = if raw.is_empty() { request.uri().path() } else { raw };
    let path_and_query = match request.uri().query() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    };
    let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let delivery = Delivery {
        headers: IncomingHeaders {
            access_key: header(request, HEADER_KEY),
            access_timestamp: header(request, HEADER_TIMESTAMP),
            access_sign: header(request, HEADER_SIGN),
        },
        method: request.method().as_str(),
        path_and_query: &path_and_query,
        body: request.body().as_ref(),
        now_unix,
    };
    let latency = || started.elapsed().as_millis() as f64;
    match app.gateway.receive_webhook(&app.settings, delivery).await {
        Ok(accepted) if accepted.recorded.replay => {
            let verification = accepted.verification.as_str();
            // The reason is stable: a replay is logged and counted apart from a delivery.
            tracing::info!(
                request_id,
                case_system_id = %accepted.case_system_id,
                reason = verification,
                deliveries = accepted.recorded.deliveries,
                latency_ms = latency() as u64,
                "webhook replay: an exact repeat of a stored delivery, not counted"
            );
            emit(
                &[("Function", "webhook")],
                &[("WebhookReplay", 1.0, Unit::Count), ("WebhookLatency", latency(), Unit::Milliseconds)],
            );
            json_response(200, &Stored::of(&accepted))
        }
        Ok(accepted) => {
            let duplicate = !accepted.recorded.first_delivery;
            let refresh = accepted.refresh.as_str();
            let verification = accepted.verification.as_str();
            tracing::info!(
                request_id,
                case_system_id = %accepted.case_system_id,
                verification,
                deliveries = accepted.recorded.deliveries,
                duplicate,
                case_was_known = accepted.recorded.case_was_known,
                refresh,
                latency_ms = latency() as u64,
                "webhook stored"
            );
            let notice = accepted.verification != Verification::Signed;
            emit(
                &[("Function", "webhook")],
                &[
                    ("WebhookReceived", 1.0, Unit::Count),
                    ("WebhookDuplicate", f64::from(u8::from(duplicate)), Unit::Count),
                    ("WebhookUnverified", f64::from(u8::from(notice)), Unit::Count),
                    ("WebhookUnknownCase", f64::from(u8::from(!accepted.recorded.case_was_known)), Unit::Count),
                    (
                        "WebhookRefreshFailed",
                        f64::from(u8::from(accepted.refresh == RefreshOutcome::Deferred)),
                        Unit::Count,
                    ),
                    ("WebhookLatency", latency(), Unit::Milliseconds),
                ],
            );
            json_response(200, &Stored::of(&accepted))
        }
        Err(e) => {
            let problem = e.problem();
            // Never the body, never the headers' values: the reason and the status only.
            tracing::warn!(
                request_id,
                reason = e.reason(),
                status = problem.status,
                latency_ms = latency() as u64,
                "webhook refused"
            );
            let metric = if problem.status >= 500 { "WebhookNotStored" } else { "WebhookRefused" };
            emit(&[("Function", "webhook"), ("Reason", e.reason())], &[(metric, 1.0, Unit::Count)]);
            problem.into_response()
        }
    }
}

/// The answer to a stored delivery. Cabital only needs the 2xx; the rest is for people
/// reading the delivery log: `verification` says what the delivery was taken as
/// (`signed`; `late_repeat`, an old signature over a body already received;
/// `notice_*`, an unverified notice; or `replay`, an exact repeat of a delivery already
/// stored, not counted again), a case the table did not know yet (`caseKnown: false`)
/// is kept and reported, and `refresh` says whether Cabital's current state was applied
/// (`changed`, `unchanged`), left for the reconciler (`deferred`), not asked again
/// within a minute for a known body (`skipped`), or not needed (`none`, a replay).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    stored: bool,
    verification: &'static str,
    deliveries: u32,
    duplicate: bool,
    case_known: bool,
    refresh: &'static str,
}

impl Stored {
    /// The answer to a delivery taken: a replay is a duplicate too (its body is known).
    fn of(accepted: &Accepted) -> Self {
        Stored {
            stored: true,
            verification: accepted.verification.as_str(),
            deliveries: accepted.recorded.deliveries,
            duplicate: accepted.recorded.replay || !accepted.recorded.first_delivery,
            case_known: accepted.recorded.case_was_known,
            refresh: accepted.refresh.as_str(),
        }
    }
}
