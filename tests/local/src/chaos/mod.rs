//! `chaos`: many cases through the real local stack while everything that can go wrong
//! does, then proof that nothing was lost, duplicated, forged or leaked.
//!
//! While N cases are created, screened, put under ongoing screening, re-screened and
//! decided through the cases API, the sandbox delivers every webhook up to five times,
//! out of order, drops a share, answers 500 / 503 / 429 and slowly, with its clock off;
//! this driver mixes forged and malformed deliveries into the webhook's traffic; moto is
//! frozen once (SIGSTOP) mid-run; the API secret is rotated mid-run; and the reconciler
//! runs on its schedule. Then, with the faults off and once the sandbox's retries and a
//! final reconciliation are done, every case in DynamoDB must equal the sandbox's, every
//! distinct webhook body accepted must be one event with the right delivery count, no
//! bad delivery may be stored or answered with a 5xx, and the functions' log must hold
//! neither the API secret or key nor any name, date of birth or comment the run sent.
//!
//! By role: `drive` (the cases and the reconciler's schedule), `faults` (the sandbox's
//! faults, bad deliveries, moto's stop, the rotation), `verify` (the end state against
//! the sandbox's), `audit` (the functions' log), `report` (figures and verdict).

mod audit;
mod drive;
mod events_out;
mod faults;
mod replay;
mod report;
mod rotation;
mod verify;

pub use rotation::{PROXY_FLAGS, run_secrets_proxy};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng as _};
use serde_json::{Value, json};
use url::Url;

use self::faults::{BadInput, MotoStop, chaos_faults};
use crate::args::Args;
use crate::http::Stack;
use crate::show::{field, header, note, ok};
use crate::{Failure, Result, aws};

/// The flags `chaos` takes.
pub const FLAGS: &[&str] = &[
    "api",
    "webhook",
    "sandbox",
    "table",
    "secret-id",
    "moto-pid",
    "log-file",
    "cases",
    "retention-days",
    "concurrency",
    "reconcile-event",
    "reconcile-every-secs",
    "moto-stop-secs",
    "settle-timeout-secs",
    "max-backlog",
    "seed",
    "secrets-outage-file",
    "events-queue",
    "template",
];

const STEPS: usize = 7;

// ---------------------------------------------------------------- small helpers

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn hex_token(rng: &mut impl Rng, bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// A word of random letters, capitalised: names no log line could hold by chance.
fn word(rng: &mut impl Rng, len: usize) -> String {
    let mut w: String = (0..len).map(|_| char::from(b'a' + rng.random_range(0..26u8))).collect();
    if let Some(first) = w.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    w
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// One API key and secret, as the secret holds them. Never printed.
#[derive(Clone)]
struct Credential {
    key: String,
    secret: String,
}

// ---------------------------------------------------------------- the run's record

/// What was sent, for the final checks and the log audit.
#[derive(Default)]
struct Sent {
    /// The distinctive parts of every personal value sent (the random words of names
    /// and comments, whole dates of birth), lower case: the log audit's needles. A
    /// part found is a leak, even when the rest of the value is not next to it.
    needles: HashMap<String, Personal>,
    /// Values sent, per kind.
    values: BTreeMap<Personal, u64>,
    /// Case ids the driver created, with their external ids.
    created: Vec<(String, String)>,
    /// External ids whose create ended `cabital_outcome_unknown`.
    unknown_creates: Vec<String>,
    /// Case ids named by forged deliveries that exist nowhere (none may appear).
    forged_ids: Vec<String>,
    /// Bodies of the driver's own genuine probes during moto's stop.
    probe_bodies: Vec<String>,
    /// Cases whose ongoing screening stays on (their changes are always checked).
    ogs_for_good: Vec<String>,
}

/// The kinds of personal data the run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Personal {
    FullName,
    DateOfBirth,
    Comment,
}

impl Personal {
    fn label(self) -> &'static str {
        match self {
            Personal::FullName => "full name",
            Personal::DateOfBirth => "date of birth",
            Personal::Comment => "comment",
        }
    }
}

impl Sent {
    fn personal(&mut self, kind: Personal, parts: &[&str]) {
        *self.values.entry(kind).or_default() += 1;
        for part in parts {
            self.needles.insert(part.to_lowercase(), kind);
        }
    }
}

struct Chaos {
    stack: Stack,
    webhook: String,
    webhook_path: String,
    reconcile_every: Duration,
    store: gateway_store::Store,
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
    moto_pid: u32,
    moto_stop: Duration,
    log_file: PathBuf,
    cases: usize,
    concurrency: usize,
    max_backlog: u64,
    settle_timeout: Duration,
    run: String,
    seed: u64,
    /// The credential webhooks are signed with now (the driver's genuine signatures).
    credential: Mutex<Credential>,
    /// Every credential the run has seen (old and new), for the audit.
    all_credentials: Mutex<Vec<Credential>>,
    sent: Mutex<Sent>,
    bad: Mutex<BadInput>,
    stop: Mutex<MotoStop>,
    /// Cases created so far (drives the mid-run events).
    created_count: AtomicUsize,
    next_case: AtomicUsize,
    /// Bad input is paused during moto's stop (a refusal that needs the secret store
    /// cannot be told from a 5xx then).
    bad_paused: AtomicBool,
    /// Workers start no new case while set (just before moto's stop).
    hold: AtomicBool,
    finished: AtomicBool,
    reconcile_runs: AtomicU64,
    reconcile_failed: AtomicU64,
    api_retries: AtomicU64,
    rotated_at: Mutex<Option<Instant>>,
    /// Set when the rotation begins (before Secrets Manager holds the new pair).
    rotation_begun: AtomicBool,
    unauthorized_before_rotation: AtomicU64,
    /// The sandbox's webhook counters when the run began: (notifications, dropped, successes).
    baseline: Mutex<(u64, u64, u64, u64)>,
    replay_record: Mutex<replay::ReplayRecord>,
    /// The consumer's queue of case events, and the template the pipe is read from.
    events_out: Option<events_out::EventsOut>,
    events_record: Mutex<events_out::EventsRecord>,
    /// The functions' `RETENTION_DAYS` (`--retention-days`).
    retention: gateway_store::Retention,
    /// The rotation during an outage of Secrets Manager.
    outage: rotation::Outage,
}

/// Runs the chaos.
pub async fn run(args: &Args) -> Result<()> {
    let stack = Stack::from_args(args, Duration::from_secs(90))?;
    let webhook = args.required("webhook")?.to_owned();
    let webhook_url = Url::parse(&webhook).map_err(|e| Failure(format!("--webhook: {e}")))?;
    let table = args.required("table")?;
    let secret_id = args.required("secret-id")?.to_owned();
    let moto_pid: u32 =
        args.required("moto-pid")?.parse().map_err(|_| Failure("--moto-pid: not a process id".to_owned()))?;
    let log_file = PathBuf::from(args.required("log-file")?);
    let cases = args.number("cases", 100)? as usize;
    crate::ensure(cases >= 10, || "--cases: at least 10".to_owned())?;
    let sdk = aws::config().await?;
    let store = gateway_store::Store::new(gateway_store::dynamodb_client(&sdk).await, table);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let seed = match args.get("seed") {
        Some(_) => args.number("seed", 0)?,
        None => rand::random(),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let run = hex_token(&mut rng, 4);
    let chaos = Arc::new(Chaos {
        stack,
        webhook_path: webhook_url.path().to_owned(),
        webhook,
        reconcile_every: Duration::from_secs(args.number("reconcile-every-secs", 15)?.max(1)),
        store,
        secrets,
        secret_id,
        moto_pid,
        moto_stop: Duration::from_secs(args.number("moto-stop-secs", 10)?.max(1)),
        log_file,
        cases,
        concurrency: args.number("concurrency", 4)?.clamp(1, 64) as usize,
        max_backlog: args.number("max-backlog", 40)?.max(5),
        settle_timeout: Duration::from_secs(args.number("settle-timeout-secs", 300)?),
        run,
        seed,
        credential: Mutex::new(Credential { key: String::new(), secret: String::new() }),
        all_credentials: Mutex::new(Vec::new()),
        sent: Mutex::new(Sent::default()),
        bad: Mutex::new(BadInput::default()),
        stop: Mutex::new(MotoStop::default()),
        created_count: AtomicUsize::new(0),
        next_case: AtomicUsize::new(0),
        bad_paused: AtomicBool::new(false),
        hold: AtomicBool::new(false),
        finished: AtomicBool::new(false),
        reconcile_runs: AtomicU64::new(0),
        reconcile_failed: AtomicU64::new(0),
        api_retries: AtomicU64::new(0),
        rotated_at: Mutex::new(None),
        rotation_begun: AtomicBool::new(false),
        unauthorized_before_rotation: AtomicU64::new(0),
        baseline: Mutex::new((0, 0, 0, 0)),
        replay_record: Mutex::new(replay::ReplayRecord::default()),
        events_out: match (args.get("events-queue"), args.get("template")) {
            (Some(queue), Some(template)) => {
                Some(events_out::EventsOut { queue: queue.to_owned(), template: PathBuf::from(template) })
            }
            (None, None) => None,
            _ => return Err(Failure("--events-queue and --template go together".into())),
        },
        events_record: Mutex::new(events_out::EventsRecord::default()),
        retention: crate::walk::retention_days(args)?,
        outage: rotation::Outage::from_args(args),
    });
    crate::ensure(chaos.log_file.is_file(), || format!("--log-file {}: no such file", chaos.log_file.display()))?;
    crate::ensure(Path::new(&format!("/proc/{moto_pid}")).exists(), || {
        format!("--moto-pid {moto_pid}: no such process")
    })?;
    let outcome = chaos.all().await;
    // Whatever happened, moto runs on and the faults are off.
    chaos.resume_moto();
    chaos.end_secrets_outage();
    let _ = chaos.stack.sandbox_put("/_sandbox/faults", &json!({})).await;
    outcome
}

impl Chaos {
    async fn all(self: &Arc<Self>) -> Result<()> {
        let started = Instant::now();
        println!("The chaos run: {} cases through the functions under `cargo lambda watch`", self.cases);
        field("cases API", &self.stack.api);
        field("webhook", &self.webhook);
        field("Cabital sandbox", &self.stack.sandbox);
        field("run", format!("{} (seed {})", self.run, self.seed));

        // ---- 1. the starting point
        header(1, STEPS, "Faults on; the credential in force read from Secrets Manager (moto)");
        let credential = self.read_secret().await?;
        *lock(&self.credential) = credential.clone();
        lock(&self.all_credentials).push(credential);
        let faults = chaos_faults();
        self.stack.sandbox_put("/_sandbox/faults", &faults).await?;
        note(format!("PUT /_sandbox/faults {faults}"));
        let stats_before = self.stack.sandbox_get("/_sandbox/stats").await?;
        *lock(&self.baseline) = (
            num(&stats_before, "webhookNotifications"),
            num(&stats_before, "webhookDeliveriesDropped"),
            num(&stats_before, "webhookSuccesses"),
            num(&stats_before, "webhookAcksLost"),
        );

        // ---- 2. the cases, with bad input, reconciliation, moto's stop and the rotation
        header(2, STEPS, "Cases through the API, bad deliveries mixed in, reconcile on its schedule");
        note(format!(
            "{} workers; moto stopped for {} s at 40 % of the cases, the API secret rotated at 65 %, then the webhook secret during a Secrets Manager outage",
            self.concurrency,
            self.moto_stop.as_secs()
        ));
        let reconciler = tokio::spawn(Arc::clone(self).reconcile_loop());
        let bad = tokio::spawn(Arc::clone(self).bad_input_loop());
        let flood = tokio::spawn(Arc::clone(self).flood());
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..self.concurrency {
            let me = Arc::clone(self);
            let seed = self.seed.wrapping_add(w as u64 + 1);
            workers.spawn(async move { me.worker(seed).await });
        }
        let events = tokio::spawn(Arc::clone(self).mid_run_events());
        let mut failure = None;
        while let Some(joined) = workers.join_next().await {
            let outcome = joined.map_err(|e| Failure(format!("a worker panicked: {e}"))).and_then(|r| r);
            if let Err(e) = outcome
                && failure.is_none()
            {
                failure = Some(e);
                self.finished.store(true, Ordering::SeqCst);
            }
        }
        self.finished.store(true, Ordering::SeqCst);
        let mid = events.await.map_err(|e| Failure(format!("the mid-run events panicked: {e}")))?;
        let _ = bad.await;
        let _ = flood.await;
        if let Some(e) = failure {
            reconciler.abort();
            return Err(e);
        }
        mid?;
        let driving = started.elapsed();
        ok(format!(
            "{} cases created in {:.0} s ({} API calls retried by the driver after a 5xx or 409 in flight)",
            self.created_count.load(Ordering::SeqCst),
            driving.as_secs_f64(),
            self.api_retries.load(Ordering::SeqCst)
        ));

        // ---- 3. faults off, settle
        header(3, STEPS, "Faults off; the sandbox's retries and the reconciler settle everything");
        self.stack.sandbox_put("/_sandbox/faults", &json!({})).await?;
        let stats_chaos = self.stack.sandbox_get("/_sandbox/stats").await?;
        note("PUT /_sandbox/faults {} (no fault)");
        reconciler.abort();
        let verdict = self.settle().await?;
        // Once settled: nothing else reads the captured case from Cabital meanwhile.
        self.replay_capture().await?;
        self.check_replay().await;

        // ---- 4. events out
        header(
            4,
            STEPS,
            "Every case's timeline events on the bus, its chain verified from its evidence export, its retention on every item",
        );
        self.check_events_out().await;

        // ---- 5. the figures and the log audit
        header(5, STEPS, "The log audit: the functions' log holds no secret and no personal data");
        let audit = self.audit_log()?;

        header(6, STEPS, "Figures");
        let stats_end = self.stack.sandbox_get("/_sandbox/stats").await?;
        self.figures(&verdict, &audit, &stats_before, &stats_chaos, &stats_end, started.elapsed());

        header(7, STEPS, "Verdict");
        self.verdict(&verdict, &audit, &stats_end, started.elapsed())
    }
}
