//! A local Lambda Runtime API (the `2018-06-01` endpoints a runtime polls) that records
//! when the function first asks for work and how long each invocation takes.
//!
//! One server per function process, on `127.0.0.1:0`. `GET .../invocation/next` waits
//! for an invocation queued with [`RuntimeApi::invoke`]; the response or error the
//! function posts back ends it. The time of an invocation runs from the moment the
//! event is handed out to the moment its result arrives, as Lambda's own `Duration`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::process::Process;

/// The ARN handed to every invocation.
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:bench";

/// What came back from the function for one invocation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `true` for `.../response`, `false` for `.../error`.
    pub ok: bool,
    /// The body the function posted.
    pub body: Bytes,
    /// From the event handed out to the result received.
    pub latency: Duration,
}

/// Why waiting on the function stopped.
#[derive(Debug)]
pub enum Failure {
    /// The process exited (its log says why).
    Exited(String),
    /// It posted to `/runtime/init/error`.
    InitError(String),
    /// Nothing came in time.
    TimedOut(&'static str),
    /// The server side broke.
    Server(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Exited(s) => write!(f, "the function exited: {s}"),
            Failure::InitError(s) => write!(f, "the function reported an init error: {s}"),
            Failure::TimedOut(what) => write!(f, "timed out waiting for {what}"),
            Failure::Server(s) => write!(f, "runtime API server: {s}"),
        }
    }
}

impl std::error::Error for Failure {}

struct Invocation {
    request_id: String,
    payload: Bytes,
    deadline_ms: u64,
}

enum Posted {
    Result { request_id: String, ok: bool, body: Bytes, at: Instant },
    InitError(String),
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    first_next: Mutex<Option<oneshot::Sender<Instant>>>,
    handed_out: Mutex<HashMap<String, Instant>>,
    posted: mpsc::UnboundedSender<Posted>,
}

/// The server and the receiving ends the driver waits on.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    enqueue: mpsc::UnboundedSender<Invocation>,
    posted: mpsc::UnboundedReceiver<Posted>,
    first_next: Option<oneshot::Receiver<Instant>>,
    server: JoinHandle<()>,
    sequence: u64,
}

impl RuntimeApi {
    /// Starts a server on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<Self> {
        let (enqueue, queue) = mpsc::unbounded_channel();
        let (posted_tx, posted) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queue),
            first_next: Mutex::new(Some(first_tx)),
            handed_out: Mutex::new(HashMap::new()),
            posted: posted_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi { addr, shared, enqueue, posted, first_next: Some(first_rx), server, sequence: 0 })
    }

    /// `AWS_LAMBDA_RUNTIME_API`: `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Waits for the first `next` request: the end of the function's init.
    pub async fn first_next(&mut self, child: &mut Process, timeout: Duration) -> Result<Instant, Failure> {
        let Some(first) = self.first_next.take() else {
            return Err(Failure::Server("first_next awaited twice".into()));
        };
        tokio::select! {
            at = first => at.map_err(|_| Failure::Server("the server stopped".into())),
            posted = self.posted.recv() => match posted {
                Some(Posted::InitError(body)) => Err(Failure::InitError(body)),
                _ => Err(Failure::Server("a result before any invocation".into())),
            },
            status = child.exited() => Err(Failure::Exited(status)),
            () = tokio::time::sleep(timeout) => Err(Failure::TimedOut("the first `next` request")),
        }
    }

    /// Hands `payload` to the function and waits for its result.
    pub async fn invoke(
        &mut self,
        child: &mut Process,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Outcome, Failure> {
        self.sequence += 1;
        let request_id = format!("bench-{:08}", self.sequence);
        let deadline_ms = unix_ms() + timeout.as_millis() as u64;
        self.enqueue
            .send(Invocation { request_id: request_id.clone(), payload: Bytes::from(payload), deadline_ms })
            .map_err(|_| Failure::Server("the queue is closed".into()))?;
        let limit = tokio::time::sleep(timeout);
        tokio::pin!(limit);
        loop {
            tokio::select! {
                posted = self.posted.recv() => match posted {
                    Some(Posted::Result { request_id: id, ok, body, at }) if id == request_id => {
                        let handed = self.shared.handed_out.lock().ok().and_then(|mut m| m.remove(&id));
                        let Some(handed) = handed else {
                            return Err(Failure::Server(format!("{id} was answered before it was handed out")));
                        };
                        return Ok(Outcome { ok, body, latency: at.saturating_duration_since(handed) });
                    }
                    // A late answer to an earlier invocation: not ours.
                    Some(Posted::Result { .. }) => continue,
                    Some(Posted::InitError(body)) => return Err(Failure::InitError(body)),
                    None => return Err(Failure::Server("the server stopped".into())),
                },
                status = child.exited() => return Err(Failure::Exited(status)),
                () = &mut limit => return Err(Failure::TimedOut("an invocation's result")),
            }
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let asked = Instant::now();
    if let Some(tx) = shared.first_next.lock().ok().and_then(|mut slot| slot.take()) {
        let _ = tx.send(asked);
    }
    let invocation = shared.queue.lock().await.recv().await;
    let Some(inv) = invocation else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "shutting down").into_response();
    };
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", &inv.request_id);
    put("lambda-runtime-deadline-ms", &inv.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", FUNCTION_ARN);
    put("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0");
    put("content-type", "application/json");
    if let Ok(mut handed) = shared.handed_out.lock() {
        handed.insert(inv.request_id, Instant::now());
    }
    (StatusCode::OK, headers, inv.payload).into_response()
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let _ = shared.posted.send(Posted::Result { request_id: id, ok: true, body, at });
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let _ = shared.posted.send(Posted::Result { request_id: id, ok: false, body, at });
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = shared.posted.send(Posted::InitError(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}
