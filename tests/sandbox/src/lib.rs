//! A fake of Cabital's CaaS API, faithful to `shared/cabital-api.md`, for tests.
//!
//! It serves `/api/v1/cases...` on 127.0.0.1 with the real signature scheme, a 30 s
//! timestamp window, the error table, deterministic screening ([`screening`]) and signed
//! webhooks with the published retry schedule ([`RETRY_DELAYS_SECS`]); it injects faults
//! ([`Faults`]) and is driven through a control API under `/_sandbox/`. It shares no
//! code with our own crates on purpose: it is the independent check of our client.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sandbox = gateway_sandbox::spawn(gateway_sandbox::SandboxConfig::with_credential("key", "secret")).await?;
//! let base_url = sandbox.base_url(); // http://127.0.0.1:PORT
//! # let _ = base_url;
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Control endpoints (no auth, camelCase JSON):
//! - `GET /_sandbox/cases/{id}`: [`CaseState`]; `GET /_sandbox/cases?externalCaseId=`: `[CaseState]`
//! - `POST /_sandbox/cases/{id}/suggestion`: [`SuggestionChange`] -> [`CaseState`]
//! - `GET /_sandbox/deliveries[?caseSystemId=]`: `[DeliveryAttempt]`
//! - `GET /_sandbox/stats`: [`Stats`]
//! - `GET /_sandbox/cases/{id}/requests`: API requests naming that case id, per endpoint
//! - `GET`/`PUT /_sandbox/faults`: [`Faults`]
//! - `PUT /_sandbox/credentials`: `[{"apiKey", "apiSecret"}]` -> 204
//! - `GET`/`PUT /_sandbox/webhook-url`: [`WebhookUrl`]
//! - `POST /_sandbox/reset` -> 204
//!
//! [`sign_event`] signs an API Gateway v2 webhook event fixture as Cabital would, for
//! `cargo lambda invoke` of the webhook function (the `gateway-sandbox-sign` binary).

mod api;
mod auth;
mod config;
mod control;
mod fixture;
mod model;
pub mod screening;
mod state;
mod validate;
mod webhook;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use http::HeaderValue;
use http::header::DATE;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{error, info};
use url::Url;
use uuid::Uuid;

pub use api::MAX_BODY_BYTES;
pub use auth::{HEADER_KEY, HEADER_SIGN, HEADER_TIMESTAMP, TIMESTAMP_TOLERANCE_SECS};
pub use config::{
    ConfigError, Credential, Faults, MAX_CLOCK_OFFSET_SECS, RetryHeaders, SandboxConfig, SignatureEncoding,
    WebhookSigning,
};
pub use fixture::{FixtureError, FixtureSigning, sign_event};
pub use model::{
    CaseResult, CaseState, CaseView, DecisionRecord, DeliveryAttempt, ErrorBody, FieldError, NotificationRecord,
    ScreenType, Suggestion, SuggestionChange, SuggestionRecord, SuggestionSource, WebhookUrl,
};
pub use state::Stats;
pub use validate::{MAX_EXTERNAL_CASE_ID_CHARS, MAX_ORGANIZATION_INFO_BYTES};
pub use webhook::{MAX_ATTEMPTS, RETRY_DELAYS_SECS};

// What Cabital's page leaves open, each answer a mode.
pub use config::CreateAnswerMode;

use state::Shared;

/// How long [`SandboxHandle::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Starts a sandbox on 127.0.0.1 (`config.port`, or a free port when 0) and returns
/// once it accepts connections. Fails with `InvalidInput` on a bad setting.
pub async fn spawn(config: SandboxConfig) -> io::Result<SandboxHandle> {
    config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let seed = config.seed.unwrap_or_else(rand::random);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.webhook_timeout_ms))
        .connect_timeout(Duration::from_millis(config.webhook_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(io::Error::other)?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(config, seed, http));

    let app = Router::new()
        .nest("/_sandbox", control::router())
        .fallback(api::handle)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), date_header))
        .with_state(Arc::clone(&shared));

    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let serving = axum::serve(listener, app).with_graceful_shutdown(async {
            // Either a signal or the handle gone: stop.
            let _ = stopped.await;
        });
        if let Err(e) = serving.await {
            error!(error = %e, "sandbox server failed");
        }
    });
    info!(%addr, seed, "cabital sandbox listening");
    Ok(SandboxHandle { addr, shared, stop: Some(stop), server: Some(server) })
}

/// Every response carries `Date` from the sandbox's clock (offset included), which is
/// how a client learns the offset.
async fn date_header(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let now = shared.lock().now();
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        response.headers_mut().insert(DATE, value);
    }
    response
}

/// A running sandbox. Dropping it stops the server and every pending webhook; use
/// [`SandboxHandle::shutdown`] to wait for that.
///
/// The methods mirror the control API, for tests running the sandbox in-process.
pub struct SandboxHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// The address it listens on (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The random generator's seed in use.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) -> Result<(), ConfigError> {
        faults.validate()?;
        self.shared.lock().faults = faults;
        Ok(())
    }

    /// Replaces the accepted credentials (the first signs webhooks).
    pub fn set_credentials(&self, credentials: Vec<Credential>) {
        self.shared.lock().credentials = credentials;
    }

    /// Sets or clears the webhook URL; pending retries use the new one.
    pub fn set_webhook_url(&self, url: Option<Url>) -> Result<(), ConfigError> {
        if let Some(url) = &url {
            config::check_webhook_url(url)?;
        }
        self.shared.lock().webhook_url = url;
        Ok(())
    }

    /// A case's full state.
    pub fn case(&self, case_system_id: Uuid) -> Option<CaseState> {
        self.shared.lock().cases.get(&case_system_id).map(|c| c.full_state())
    }

    /// Every case with this `externalCaseId`, oldest first.
    pub fn cases_by_external_id(&self, external_case_id: &str) -> Vec<CaseState> {
        control::cases_matching(&self.shared, Some(external_case_id))
    }

    /// Changes a case's suggestion as ongoing screening would; `None` for an unknown case.
    pub fn set_suggestion(&self, case_system_id: Uuid, change: SuggestionChange) -> Option<CaseState> {
        api::ongoing_suggestion(&self.shared, case_system_id, change)
    }

    /// Every webhook attempt so far, in the order made.
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.shared.lock().deliveries.clone()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Back to the starting configuration, with no cases (as `POST /_sandbox/reset`).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting, cancels pending screenings and webhooks, and waits (a few
    /// seconds at most) for open connections to finish.
    pub async fn shutdown(mut self) {
        self.shared.abort_tasks();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        // Background tasks hold the shared state; aborting them also frees it.
        self.shared.abort_tasks();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
