//! `gateway-local`: the helper behind `./scripts/local.sh`.
//!
//! ```text
//! gateway-local setup --table NAME --secret-id NAME --api-key KEY --api-secret SECRET
//!     Creates the table (from the store's one definition) and the secret in moto.
//!     Idempotent: an existing table is kept, an existing secret gets the given value.
//!
//! gateway-local walk --api URL --sandbox URL [--table NAME] [--stale-after-secs N] ...
//!     Walks one case's whole life through the functions' real HTTP endpoints under
//!     `cargo lambda watch`, checking every step; exits 1 at the first wrong outcome.
//!
//! gateway-local chaos --api URL --webhook URL --sandbox URL --table NAME --secret-id NAME
//!                   --moto-pid PID --log-file PATH [--cases N] [--concurrency N] ...
//!     Drives N cases through the functions while the sandbox injects faults, bad
//!     deliveries are mixed in, moto is frozen once and the secret rotated; then checks
//!     that DynamoDB equals the sandbox, no delivery was lost or double-counted, no bad
//!     delivery was stored, and the functions' log holds no secret or personal data.
//!
//! gateway-local pipe --template infra/template.yaml --table NAME --bus NAME [--dlq QUEUE]
//!     The stand-in for the case-events pipe: the table's stream -> the template's
//!     filter and input template -> moto's bus (a rule there feeds a queue).
//!
//! gateway-local secrets-proxy --to URL --outage-file PATH
//!     A TCP proxy to moto for the functions' Secrets Manager calls, refusing every
//!     connection while PATH exists: the chaos run's Secrets Manager outage.
//!
//! gateway-local ping URL [--method GET|POST] [--timeout-secs N]
//!     One HTTP request; prints the status code. Used to warm the functions up.
//! ```
//!
//! moto's endpoint comes from `MOTO_ENDPOINT`, else `AWS_ENDPOINT_URL`: without one it
//! refuses to run, so it can never touch a real AWS account.

mod args;
mod aws;
mod chaos;
mod events;
mod http;
mod pipe;
mod retention;
mod setup;
mod show;
mod walk;

use std::process::ExitCode;

use args::Args;

/// A step went wrong: the message says what, in words.
#[derive(Debug)]
pub struct Failure(pub String);

impl<T: std::fmt::Display> From<T> for Failure {
    fn from(message: T) -> Self {
        Failure(message.to_string())
    }
}

/// Everything here fails with a readable message.
pub type Result<T> = std::result::Result<T, Failure>;

/// Fails with `message` unless `ok`.
pub fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { Err(Failure(message())) }
}

const USAGE: &str = "usage:
  gateway-local setup --table NAME --secret-id NAME --api-key KEY --api-secret SECRET
                    [--template PATH --events-bus NAME --events-queue NAME --events-dlq NAME]
  gateway-local walk --api URL --sandbox URL [--table NAME] [--stale-after-secs N]
                   [--timeout-secs N] [--reconcile-event PATH] [--name-suffix TEXT]
  gateway-local chaos --api URL --webhook URL --sandbox URL --table NAME --secret-id NAME
                    --moto-pid PID --log-file PATH [--cases N] [--concurrency N]
                    [--reconcile-event PATH] [--reconcile-every-secs N] [--moto-stop-secs N]
                    [--settle-timeout-secs N] [--max-backlog N] [--seed N]
                    [--secrets-outage-file PATH]
  gateway-local pipe --template PATH --table NAME --bus NAME [--dlq QUEUE]
  gateway-local secrets-proxy --to URL --outage-file PATH
  gateway-local ping URL [--method GET|POST] [--timeout-secs N]

moto's endpoint: MOTO_ENDPOINT, else AWS_ENDPOINT_URL (required by setup and chaos, and by
walk with --table).";

#[tokio::main]
async fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let rest: Vec<String> = argv.collect();
    let outcome = match command.as_str() {
        "setup" => match Args::parse(&rest, setup::FLAGS, 0) {
            Ok(args) => setup::run(&args).await,
            Err(e) => Err(e),
        },
        "walk" => match Args::parse(&rest, walk::FLAGS, 0) {
            Ok(args) => walk::run(&args).await,
            Err(e) => Err(e),
        },
        "chaos" => match Args::parse(&rest, chaos::FLAGS, 0) {
            Ok(args) => chaos::run(&args).await,
            Err(e) => Err(e),
        },
        "pipe" => match Args::parse(&rest, pipe::FLAGS, 0) {
            Ok(args) => pipe::run(&args).await,
            Err(e) => Err(e),
        },
        "secrets-proxy" => match Args::parse(&rest, chaos::PROXY_FLAGS, 0) {
            Ok(args) => chaos::run_secrets_proxy(&args).await,
            Err(e) => Err(e),
        },
        "ping" => match Args::parse(&rest, &["method", "timeout-secs"], 1) {
            Ok(args) => ping(&args).await,
            Err(e) => Err(e),
        },
        "" | "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(Failure(format!("unknown command `{other}`\n{USAGE}"))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("gateway-local {command}: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `ping URL`: prints the status code of one request (0 when none came back).
async fn ping(args: &Args) -> Result<()> {
    let url = args.positional(0)?;
    let timeout = args.number("timeout-secs", 600)?;
    let method = args.get("method").unwrap_or("GET");
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(timeout)).build()?;
    let request = match method {
        "GET" => client.get(url),
        "POST" => client.post(url).header("content-type", "application/json").body("{}"),
        other => return Err(Failure(format!("--method: GET or POST, not {other}"))),
    };
    match request.send().await {
        Ok(response) => {
            println!("{}", response.status().as_u16());
            Ok(())
        }
        Err(e) => {
            println!("0");
            Err(Failure(format!("{method} {url}: {}", show::error_chain(&e))))
        }
    }
}
