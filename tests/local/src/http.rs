//! Calling the local stack, for the walk and the chaos run alike: the cases API under
//! `cargo lambda watch`, the Cabital sandbox's control API, and the reconciler through
//! `cargo lambda invoke`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use url::Url;

use crate::args::Args;
use crate::show::{self, error_chain};
use crate::{Failure, Result, ensure};

/// A response: status and JSON body (`Null` when not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The problem's `code`, or `-`.
    pub fn code(&self) -> &str {
        show::s(&self.body, "code")
    }

    /// The body, when the status is `want`; else a failure naming the problem.
    pub fn expect(self, want: u16, what: &str) -> Result<Value> {
        if self.status == want {
            return Ok(self.body);
        }
        // problem+json (`code`, `title`, `detail`) or the sandbox's `{code, message}`.
        let title = self.body.get("title").or(self.body.get("message")).and_then(Value::as_str);
        let problem = match (self.body.get("code"), title) {
            (Some(_), Some(title)) => {
                let detail =
                    self.body.get("detail").and_then(Value::as_str).map(|d| format!(": {d}")).unwrap_or_default();
                format!(" ({}: {title}{detail})", show::text(&self.body, "code"))
            }
            _ if self.body.is_null() => String::new(),
            _ => format!(" ({})", self.body),
        };
        Err(Failure(format!("{what}: expected HTTP {want}, got {}{problem}", self.status)))
    }
}

/// The stack's addresses, from `--api`, `--sandbox` and `--reconcile-event`.
pub struct Stack {
    http: reqwest::Client,
    /// The cases API, e.g. `http://127.0.0.1:9000/lambda-url/cases-api` (no trailing `/`).
    pub api: String,
    /// The sandbox, e.g. `http://127.0.0.1:PORT` (no trailing `/`).
    pub sandbox: String,
    pub reconciler: Reconciler,
}

impl Stack {
    /// Reads the flags; each request may take up to `request_timeout`.
    pub fn from_args(args: &Args, request_timeout: Duration) -> Result<Self> {
        let api = args.required("api")?.trim_end_matches('/').to_owned();
        let api_url = Url::parse(&api).map_err(|e| Failure(format!("--api: {e}")))?;
        let sandbox = args.required("sandbox")?.trim_end_matches('/').to_owned();
        Url::parse(&sandbox).map_err(|e| Failure(format!("--sandbox: {e}")))?;
        let reconciler = Reconciler {
            host: api_url.host_str().unwrap_or("127.0.0.1").to_owned(),
            port: api_url.port_or_known_default().unwrap_or(9000),
            event: PathBuf::from(args.get("reconcile-event").unwrap_or("functions/reconcile/events/schedule.json")),
            timeout: Duration::from_secs(args.number("reconcile-timeout-secs", 600)?),
        };
        ensure(reconciler.event.is_file(), || {
            format!("--reconcile-event {}: no such file (run from the repository's root)", reconciler.event.display())
        })?;
        Ok(Stack { http: reqwest::Client::builder().timeout(request_timeout).build()?, api, sandbox, reconciler })
    }

    /// The HTTP client, for requests the helpers below do not make.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// A request to the cases API (`path` after the API's URL).
    pub async fn api_call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer> {
        let url = format!("{}{path}", self.api);
        self.send(method, &url, body).await.map_err(|e| {
            Failure(format!(
                "{}\n(is `cargo lambda watch` running on {}:{}, with the functions' settings?)",
                e.0, self.reconciler.host, self.reconciler.port
            ))
        })
    }

    /// `GET /v1/cases/{id}`, with up to 100 timeline events.
    pub async fn get_case(&self, id: &str) -> Result<Value> {
        self.api_call(Method::GET, &format!("/v1/cases/{id}?limit=100"), None).await?.expect(200, "GET /v1/cases/{id}")
    }

    /// The sandbox's case (its `case` member, without notifications).
    pub async fn sandbox_case(&self, id: &str) -> Result<Value> {
        let state = self.sandbox_get(&format!("/_sandbox/cases/{id}")).await?;
        state.get("case").cloned().ok_or_else(|| Failure(format!("the sandbox does not know case {id}")))
    }

    pub async fn sandbox_get(&self, path: &str) -> Result<Value> {
        self.sandbox_call(Method::GET, path, None).await
    }

    pub async fn sandbox_put(&self, path: &str, body: &Value) -> Result<Value> {
        self.sandbox_call(Method::PUT, path, Some(body)).await
    }

    pub async fn sandbox_post(&self, path: &str, body: &Value) -> Result<Value> {
        self.sandbox_call(Method::POST, path, Some(body)).await
    }

    /// A call to the sandbox's control API that must answer 200: its body.
    async fn sandbox_call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.sandbox);
        self.send(method.clone(), &url, body).await?.expect(200, &format!("{method} {url}"))
    }

    /// One request, with a JSON body if given.
    pub async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Result<Answer> {
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| Failure(format!("{method} {url}: {}", error_chain(&e))))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| Failure(format!("{method} {url}: reading the body: {e}")))?;
        Ok(Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null) })
    }
}

/// The reconciler, run once with `cargo lambda invoke` on `cargo lambda watch`'s address.
#[derive(Clone)]
pub struct Reconciler {
    host: String,
    port: u16,
    event: PathBuf,
    /// How long one run may take before it is killed.
    timeout: Duration,
}

impl Reconciler {
    fn args(&self) -> Vec<String> {
        let (event, port) = (self.event.display().to_string(), self.port.to_string());
        ["lambda", "invoke", "reconcile", "--data-file", &event, "-A", &self.host, "-P", &port]
            .map(str::to_owned)
            .to_vec()
    }

    /// The command, as it would be typed.
    pub fn command_line(&self) -> String {
        format!("cargo {}", self.args().join(" "))
    }

    /// Runs the reconciler once: its JSON summary. Blocks (chaos runs it off the runtime).
    pub fn invoke(&self) -> Result<Value> {
        let child = Command::new("cargo")
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Failure(format!("cannot run `cargo lambda`: {e}")))?;
        let output = wait_with_deadline(child, self.timeout)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            let hint = if stderr.contains("no such command") {
                " (cargo-lambda is not on PATH: pip install cargo-lambda, or run ./scripts/local.sh)"
            } else {
                ""
            };
            return Err(Failure(format!(
                "`cargo lambda invoke reconcile` failed ({}){hint}:\n{}{}",
                output.status,
                stdout.trim(),
                stderr.trim()
            )));
        }
        serde_json::from_str(stdout.trim()).map_err(|_| {
            Failure(format!("`cargo lambda invoke reconcile` did not answer a JSON summary:\n{}", stdout.trim()))
        })
    }
}

/// Waits for `child`, killing it after `limit`; its output is read meanwhile (a full
/// pipe would block it).
fn wait_with_deadline(mut child: std::process::Child, limit: Duration) -> Result<std::process::Output> {
    fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure(format!(
                    "`cargo lambda invoke reconcile` took over {} s: killed",
                    limit.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(Failure(format!("waiting for `cargo lambda invoke`: {e}"))),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(std::process::Output { status, stdout, stderr })
}
