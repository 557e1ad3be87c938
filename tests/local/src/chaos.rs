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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cabital_client::CaseSystemId;
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng as _};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use url::Url;

use crate::args::Args;
use crate::show::{error_chain, field, header, note, ok};
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
    "concurrency",
    "reconcile-event",
    "reconcile-every-secs",
    "moto-stop-secs",
    "settle-timeout-secs",
    "max-backlog",
    "seed",
];

const STEPS: usize = 6;
/// What the sandbox's webhook attempts may take before it gives up (its default).
const SANDBOX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the driver's probe waits for the webhook's answer while moto is stopped: the
/// function must answer 5xx within [`SANDBOX_WEBHOOK_TIMEOUT`] of its own time (checked
/// in its log), but on a loaded machine the request may first queue behind others in
/// `cargo lambda watch`, which the function cannot help.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// Copies of every webhook while the faults are on: each body is delivered up to 5 times.
const DUPLICATES: u32 = 4;
/// The sandbox's clock minus real time while the faults are on.
const CLOCK_OFFSET_SECS: i64 = 7;

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

/// `ACCESS-SIGN` as Cabital computes it: hex HMAC-SHA256 over timestamp + method + path + body.
fn sign(secret: &str, timestamp: &str, path: &str, body: &[u8]) -> String {
    // ok: HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b"POST");
    mac.update(path.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// One API key and secret, as the secret holds them. Never printed.
#[derive(Clone)]
struct Credential {
    key: String,
    secret: String,
}

/// A response: status and body (`Null` when not JSON).
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("-")
    }
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

/// Bad deliveries posted and what they got.
#[derive(Default)]
struct BadInput {
    forged: u64,
    forged_refused: u64,
    /// Genuine signatures an hour old (late replays) and those answered as expected.
    late: u64,
    late_as_expected: u64,
    malformed: u64,
    malformed_refused: u64,
    /// (kind, status) of every answer that was not a 4xx.
    wrong: Vec<(String, String)>,
    statuses: BTreeMap<u16, u64>,
}

#[derive(Default)]
struct MotoStop {
    began: Option<Instant>,
    ended: Option<Instant>,
    /// The same, on the wall clock, to pick the sandbox's attempts made meanwhile.
    wall: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    /// The probes' answers: (status, seconds taken).
    probes: Vec<(u16, f64)>,
}

struct Chaos {
    http: reqwest::Client,
    api: String,
    webhook: String,
    webhook_path: String,
    sandbox: String,
    lambda_host: String,
    lambda_port: u16,
    reconcile_event: PathBuf,
    reconcile_every: Duration,
    store: kyc_store::Store,
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
}

/// Runs the chaos.
pub async fn run(args: &Args) -> Result<()> {
    let api = args.required("api")?.trim_end_matches('/').to_owned();
    let api_url = Url::parse(&api).map_err(|e| Failure(format!("--api: {e}")))?;
    let webhook = args.required("webhook")?.to_owned();
    let webhook_url = Url::parse(&webhook).map_err(|e| Failure(format!("--webhook: {e}")))?;
    let sandbox = args.required("sandbox")?.trim_end_matches('/').to_owned();
    Url::parse(&sandbox).map_err(|e| Failure(format!("--sandbox: {e}")))?;
    let table = args.required("table")?;
    let secret_id = args.required("secret-id")?.to_owned();
    let moto_pid: u32 =
        args.required("moto-pid")?.parse().map_err(|_| Failure("--moto-pid: not a process id".to_owned()))?;
    let log_file = PathBuf::from(args.required("log-file")?);
    let cases = args.number("cases", 100)? as usize;
    crate::ensure(cases >= 10, || "--cases: at least 10".to_owned())?;
    let sdk = aws::config().await?;
    let store = kyc_store::Store::new(kyc_store::dynamodb_client(&sdk).await, table);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let seed = match args.get("seed") {
        Some(_) => args.number("seed", 0)?,
        None => rand::random(),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let run = hex_token(&mut rng, 4);
    let chaos = Arc::new(Chaos {
        http: reqwest::Client::builder().timeout(Duration::from_secs(90)).build()?,
        api,
        webhook_path: webhook_url.path().to_owned(),
        webhook,
        sandbox,
        lambda_host: api_url.host_str().unwrap_or("127.0.0.1").to_owned(),
        lambda_port: api_url.port_or_known_default().unwrap_or(9000),
        reconcile_event: PathBuf::from(
            args.get("reconcile-event").unwrap_or("functions/reconcile/events/schedule.json"),
        ),
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
    });
    crate::ensure(chaos.reconcile_event.is_file(), || {
        format!("--reconcile-event {}: no such file (run from the repository's root)", chaos.reconcile_event.display())
    })?;
    crate::ensure(chaos.log_file.is_file(), || format!("--log-file {}: no such file", chaos.log_file.display()))?;
    crate::ensure(Path::new(&format!("/proc/{moto_pid}")).exists(), || {
        format!("--moto-pid {moto_pid}: no such process")
    })?;
    let outcome = chaos.all().await;
    // Whatever happened, moto runs on and the faults are off.
    chaos.resume_moto();
    let _ = chaos.sandbox_put("/_sandbox/faults", &json!({})).await;
    outcome
}

/// A share of webhook 2xx answers the sandbox takes as failed, so that the delivery is
/// retried (with `--retry-headers original`, under its first attempt's old headers).
const LOST_ACK_RATE: f64 = 0.15;

/// The chaos faults: every webhook up to five times, reordered, a share dropped, a share
/// of acks lost; 500, 503, 429 and latency on the API; the sandbox's clock a few
/// seconds off.
fn chaos_faults() -> Value {
    json!({
        "latencyMs": 20,
        "errorRate500": 0.03,
        "errorRate503": 0.05,
        "rateLimitPerSec": 40.0,
        "dropWebhookRate": 0.2,
        "duplicateWebhooks": DUPLICATES,
        "reorderWebhooks": true,
        "reorderWindowMs": 2000,
        "clockOffsetSecs": CLOCK_OFFSET_SECS,
        "webhookLostAckRate": LOST_ACK_RATE
    })
}

impl Chaos {
    async fn all(self: &Arc<Self>) -> Result<()> {
        let started = Instant::now();
        println!("The chaos run: {} cases through the functions under `cargo lambda watch`", self.cases);
        field("cases API", &self.api);
        field("webhook", &self.webhook);
        field("Cabital sandbox", &self.sandbox);
        field("run", format!("{} (seed {})", self.run, self.seed));

        // ---- 1. the starting point
        header(1, STEPS, "Faults on; the credential in force read from Secrets Manager (moto)");
        let credential = self.read_secret().await?;
        *lock(&self.credential) = credential.clone();
        lock(&self.all_credentials).push(credential);
        let faults = chaos_faults();
        self.sandbox_put("/_sandbox/faults", &faults).await?;
        note(format!("PUT /_sandbox/faults {faults}"));
        let stats_before = self.sandbox_get("/_sandbox/stats").await?;
        *lock(&self.baseline) = (
            num(&stats_before, "webhookNotifications"),
            num(&stats_before, "webhookDeliveriesDropped"),
            num(&stats_before, "webhookSuccesses"),
            num(&stats_before, "webhookAcksLost"),
        );

        // ---- 2. the cases, with bad input, reconciliation, moto's stop and the rotation
        header(2, STEPS, "Cases through the API, bad deliveries mixed in, reconcile on its schedule");
        note(format!(
            "{} workers; moto stopped for {} s at 40 % of the cases, the secret rotated at 65 %",
            self.concurrency,
            self.moto_stop.as_secs()
        ));
        let reconciler = tokio::spawn(Arc::clone(self).reconcile_loop());
        let bad = tokio::spawn(Arc::clone(self).bad_input_loop());
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
        self.sandbox_put("/_sandbox/faults", &json!({})).await?;
        let stats_chaos = self.sandbox_get("/_sandbox/stats").await?;
        note("PUT /_sandbox/faults {} (no fault)");
        reconciler.abort();
        let verdict = self.settle().await?;

        // ---- 4. the figures and the log audit
        header(4, STEPS, "The log audit: the functions' log holds no secret and no personal data");
        let audit = self.audit_log()?;

        header(5, STEPS, "Figures");
        let stats_end = self.sandbox_get("/_sandbox/stats").await?;
        self.figures(&verdict, &audit, &stats_before, &stats_chaos, &stats_end, started.elapsed());

        header(6, STEPS, "Verdict");
        let mut violations = verdict.violations.clone();
        violations.extend(audit.violations.iter().cloned());
        violations.extend(self.bad_input_violations());
        violations.extend(self.stop_violations(&verdict));
        violations.extend(self.rotation_violations(&stats_end));
        if violations.is_empty() {
            println!(
                "\nCHAOS PASSED in {:.0} s: {} cases, lost 0, mismatched 0, no bad delivery stored or answered 5xx, no secret or personal data in the log.",
                started.elapsed().as_secs_f64(),
                verdict.cases
            );
            return Ok(());
        }
        for v in violations.iter().take(40) {
            println!("   VIOLATION: {v}");
        }
        if violations.len() > 40 {
            println!("   ... and {} more", violations.len() - 40);
        }
        Err(Failure(format!("{} violation(s); the first: {}", violations.len(), violations[0])))
    }

    // ------------------------------------------------------------ the cases

    async fn worker(self: Arc<Self>, seed: u64) -> Result<()> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        loop {
            if self.finished.load(Ordering::SeqCst) {
                return Ok(());
            }
            let i = self.next_case.fetch_add(1, Ordering::SeqCst);
            if i >= self.cases {
                return Ok(());
            }
            while self.hold.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.wait_for_backlog().await;
            self.one_case(i, &mut rng).await?;
        }
    }

    /// Keeps the webhook's queue within bounds: `cargo lambda watch` serves a function
    /// one request at a time, and a delivery that waits longer than the sandbox's
    /// timeout counts as failed (it is retried, but the run would only measure a queue).
    async fn wait_for_backlog(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            match self.backlog().await {
                Some(backlog) if backlog > self.max_backlog => {}
                _ => return,
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Webhook deliveries scheduled since the run began and not yet answered 2xx (an
    /// estimate from the sandbox's counters: waiting, in flight, or awaiting a retry).
    async fn backlog(&self) -> Option<u64> {
        let stats = self.sandbox_get("/_sandbox/stats").await.ok()?;
        let (notifications, dropped, successes, acks_lost) = *lock(&self.baseline);
        let since = |k: &str, base: u64| num(&stats, k).saturating_sub(base);
        let scheduled = since("webhookNotifications", notifications) * u64::from(DUPLICATES + 1);
        // A 2xx whose ack the sandbox "lost" is retried: not done.
        let done = since("webhookDeliveriesDropped", dropped)
            + since("webhookSuccesses", successes).saturating_sub(since("webhookAcksLost", acks_lost));
        Some(scheduled.saturating_sub(done))
    }

    async fn one_case(&self, i: usize, rng: &mut rand::rngs::StdRng) -> Result<()> {
        // The name decides the sandbox's screening: most clear, some on a list, some unclear.
        let (first, last) = (word(rng, 9), word(rng, 11));
        let mut full_name = format!("{first} {last}");
        match rng.random_range(0..10) {
            0 | 1 => full_name.push_str(" Sanctioned"),
            2 => full_name.push_str(" Unclear"),
            _ => {}
        }
        let dob = format!(
            "{:04}-{:02}-{:02}",
            rng.random_range(1935..2005),
            rng.random_range(1..=12),
            rng.random_range(1..=28)
        );
        let gender = if rng.random_bool(0.5) { "FEMALE" } else { "MALE" };
        {
            let mut sent = lock(&self.sent);
            sent.personal(Personal::FullName, &[&first, &last]);
            sent.personal(Personal::DateOfBirth, &[&dob]);
        }
        let mut id = None;
        for attempt in 0..4 {
            let ext = format!("chaos-{}-{i:05}-{attempt}", self.run);
            let body = json!({
                "externalCaseId": ext,
                "screenType": "INDIVIDUAL",
                "fullName": full_name,
                "individualInfo": {"gender": gender, "dob": dob, "nationality": "GBR", "residentialCountry": "SGP"},
                "organizationInfo": {}
            });
            match self.create(&ext, &body).await? {
                Some(created) => {
                    lock(&self.sent).created.push((created.clone(), ext));
                    id = Some(created);
                    break;
                }
                None => lock(&self.sent).unknown_creates.push(ext),
            }
        }
        let Some(id) = id else {
            return Err(Failure(format!("case {i}: four creates in a row ended with an unknown outcome")));
        };
        self.created_count.fetch_add(1, Ordering::SeqCst);

        // The case's life: ongoing screening, its changes, a decision, in a random mix.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
        let ogs = rng.random_bool(0.6);
        let mut changed_while_on = false;
        if ogs {
            self.api_until_ok(Method::POST, &format!("/v1/cases/{id}/ogs"), None, 200).await?;
            for _ in 0..rng.random_range(0..=2) {
                let suggestion = ["SUGGEST_TO_ACCEPT", "SUGGEST_TO_REJECT", "NO_SUGGESTION"][rng.random_range(0..3)];
                let (w, h) = (word(rng, 8), hex_token(rng, 5));
                let comment = format!("Ongoing {w} {h}");
                // One in five changes sends no webhook at all: only the reconciler's
                // check of cases under ongoing screening can find it.
                let notify = rng.random_bool(0.8);
                lock(&self.sent).personal(Personal::Comment, &[&w, &h]);
                let change = json!({"suggestion": suggestion, "comment": comment, "notify": notify});
                self.sandbox_post(&format!("/_sandbox/cases/{id}/suggestion"), &change).await?;
                if !changed_while_on {
                    lock(&self.sent).ogs_for_good.push(id.clone());
                }
                changed_while_on = true;
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..800))).await;
            }
        }
        if rng.random_bool(0.6) {
            let result = if rng.random_bool(0.7) { "ACCEPT" } else { "REJECT" };
            let mut decision = json!({"caseResult": result});
            if rng.random_bool(0.8) {
                let (w, h) = (word(rng, 7), hex_token(rng, 5));
                let comment = format!("Reviewed {w} {h}");
                lock(&self.sent).personal(Personal::Comment, &[&w, &h]);
                decision["comment"] = json!(comment);
            }
            self.api_until_ok(Method::POST, &format!("/v1/cases/{id}/decision"), Some(&decision), 200).await?;
        }
        // Off again, for some: only those whose ongoing screening changed nothing (a
        // change no webhook reported would then be checked by nobody, by design).
        if ogs && !changed_while_on && rng.random_bool(0.5) {
            self.api_until_ok(Method::DELETE, &format!("/v1/cases/{id}/ogs"), None, 200).await?;
        }
        Ok(())
    }

    /// `POST /v1/cases` until it settles: the case id, or `None` when the outcome is
    /// unknown (the gateway keeps the reservation and never sends it again).
    async fn create(&self, ext: &str, body: &Value) -> Result<Option<String>> {
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut in_flight_since: Option<Instant> = None;
        loop {
            let answer = self.api_call(Method::POST, "/v1/cases", Some(body)).await;
            let retry = match &answer {
                Ok(a) if a.status == 201 => {
                    let id = a.body.get("caseSystemId").and_then(Value::as_str).unwrap_or_default().to_owned();
                    crate::ensure(id.parse::<CaseSystemId>().is_ok(), || {
                        format!("POST /v1/cases for {ext}: 201 without a caseSystemId")
                    })?;
                    return Ok(Some(id));
                }
                Ok(a) if a.status == 504 && a.code() == "cabital_outcome_unknown" => return Ok(None),
                Ok(a) if a.status == 409 && a.code() == "create_in_flight" => {
                    // A create cut short by moto's stop: PENDING until the reconciler
                    // calls it unknown. Give it up after a while.
                    let since = *in_flight_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(20) {
                        return Ok(None);
                    }
                    format!("409 {}", a.code())
                }
                Ok(a) if a.status >= 500 => format!("{} {}", a.status, a.code()),
                Ok(a) => {
                    return Err(Failure(format!(
                        "POST /v1/cases for {ext}: unexpected HTTP {} ({})",
                        a.status,
                        a.code()
                    )));
                }
                Err(e) => e.0.clone(),
            };
            self.api_retries.fetch_add(1, Ordering::Relaxed);
            if Instant::now() > deadline {
                return Err(Failure(format!("POST /v1/cases for {ext}: still failing after 180 s ({retry})")));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A cases-API call retried (as a partner's backend would) until it answers `want`;
    /// a 4xx is a failure of the run.
    async fn api_until_ok(&self, method: Method, path: &str, body: Option<&Value>, want: u16) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let retry = match self.api_call(method.clone(), path, body).await {
                Ok(a) if a.status == want => return Ok(a.body),
                Ok(a) if a.status >= 500 => format!("{} {}", a.status, a.code()),
                Ok(a) => {
                    return Err(Failure(format!("{method} {path}: unexpected HTTP {} ({})", a.status, a.code())));
                }
                Err(e) => e.0,
            };
            self.api_retries.fetch_add(1, Ordering::Relaxed);
            if Instant::now() > deadline {
                return Err(Failure(format!("{method} {path}: still failing after 180 s ({retry})")));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // ------------------------------------------------------------ mid-run events

    async fn mid_run_events(self: Arc<Self>) -> Result<()> {
        let stop_at = (self.cases * 2 / 5).max(1);
        let rotate_at = (self.cases * 13 / 20).max(stop_at + 1);
        while self.created_count.load(Ordering::SeqCst) < stop_at {
            if self.finished.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.stop_moto().await?;
        while self.created_count.load(Ordering::SeqCst) < rotate_at {
            if self.finished.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.rotate().await
    }

    /// Freezes moto for a few seconds: the webhook must answer 5xx meanwhile (so that
    /// Cabital retries), and the retries must bring the events in afterwards.
    async fn stop_moto(&self) -> Result<()> {
        // A body the webhook has already accepted: a probe that is stored anyway only
        // adds a delivery to it.
        let deliveries = self.sandbox_get("/_sandbox/deliveries").await?;
        let probe = deliveries
            .as_array()
            .and_then(|list| {
                list.iter()
                    .rev()
                    .find(|d| d.get("success") == Some(&json!(true)) && d.get("body").is_some_and(Value::is_string))
            })
            .and_then(|d| d.get("body").and_then(Value::as_str))
            .map(str::to_owned);
        // No bad input during the stop, no new case until it began, and the webhook's
        // queue drained first (`cargo lambda watch` serves one request at a time): the
        // probe then measures the function's answer, not a queue.
        self.bad_paused.store(true, Ordering::SeqCst);
        self.hold.store(true, Ordering::SeqCst);
        let drain_until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < drain_until && self.backlog().await.unwrap_or(0) > 2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        note(format!("SIGSTOP moto (pid {}) for {} s", self.moto_pid, self.moto_stop.as_secs()));
        signal(self.moto_pid, "STOP")?;
        let began = Instant::now();
        lock(&self.stop).began = Some(began);
        let wall_began = time::OffsetDateTime::now_utc();
        self.hold.store(false, Ordering::SeqCst);
        // The probe first, then Cabital's change: its deliveries would queue ahead of the
        // probe (`cargo lambda watch` serves one request at a time), each waiting out
        // the store's time limit.
        if let Some(body) = probe {
            lock(&self.sent).probe_bodies.push(body.clone());
            let credential = lock(&self.credential).clone();
            let t = Instant::now();
            let answer = tokio::time::timeout(
                PROBE_TIMEOUT,
                self.post_webhook(body.as_bytes(), Some((&credential, unix_now())), None),
            )
            .await;
            // 0: no answer at all.
            let status = answer.ok().and_then(|r| r.ok()).unwrap_or_default();
            lock(&self.stop).probes.push((status, t.elapsed().as_secs_f64()));
            note(format!("a genuine delivery during the stop -> HTTP {status} in {:.1} s", t.elapsed().as_secs_f64()));
        }
        // Cabital's ongoing screening changes a case now: its webhooks arrive while the
        // table is frozen, are answered 5xx (or time out), and must come in by retry.
        let target = lock(&self.sent).ogs_for_good.last().cloned();
        if let Some(id) = target {
            let comment = {
                let mut rng = rand::rng();
                let (w, h) = (word(&mut rng, 8), hex_token(&mut rng, 5));
                lock(&self.sent).personal(Personal::Comment, &[&w, &h]);
                format!("Ongoing {w} {h}")
            };
            let change = json!({"suggestion": "SUGGEST_TO_REJECT", "comment": comment, "notify": true});
            self.sandbox_post(&format!("/_sandbox/cases/{id}/suggestion"), &change).await?;
            note(format!("Cabital changes case {id}'s suggestion during the stop: its webhooks meet the frozen table"));
        }
        let left = self.moto_stop.saturating_sub(began.elapsed());
        tokio::time::sleep(left).await;
        signal(self.moto_pid, "CONT")?;
        {
            let mut stop = lock(&self.stop);
            stop.ended = Some(Instant::now());
            stop.wall = Some((wall_began, time::OffsetDateTime::now_utc()));
        }
        note(format!("SIGCONT moto after {:.1} s", began.elapsed().as_secs_f64()));
        self.bad_paused.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn resume_moto(&self) {
        let stopped = {
            let stop = lock(&self.stop);
            stop.began.is_some() && stop.ended.is_none()
        };
        if stopped {
            let _ = signal(self.moto_pid, "CONT");
        }
    }

    /// A new key and secret: first into Secrets Manager, then Cabital revokes the old
    /// pair. The functions see it after their cache's lifetime or at their first 401.
    async fn rotate(&self) -> Result<()> {
        self.rotation_begun.store(true, Ordering::SeqCst);
        let stats = self.sandbox_get("/_sandbox/stats").await?;
        self.unauthorized_before_rotation
            .store(stats.get("unauthorized").and_then(Value::as_u64).unwrap_or(0), Ordering::SeqCst);
        let fresh = {
            let mut rng = rand::rng();
            Credential {
                key: format!("chaos-key-{}", hex_token(&mut rng, 6)),
                secret: format!("chaos-secret-{}", hex_token(&mut rng, 24)),
            }
        };
        // The rest of the secret (a separate webhook secret) stays as it is.
        let current = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| Failure(format!("GetSecretValue on {}: {}", self.secret_id, error_chain(&e))))?;
        let mut value: Value = serde_json::from_str(current.secret_string().unwrap_or("{}"))
            .map_err(|_| Failure(format!("secret {} is not JSON", self.secret_id)))?;
        value["apiKey"] = json!(fresh.key);
        value["apiSecret"] = json!(fresh.secret);
        let value = value.to_string();
        self.secrets
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| Failure(format!("PutSecretValue on {}: {}", self.secret_id, error_chain(&e))))?;
        lock(&self.all_credentials).push(fresh.clone());
        let body = json!([{"apiKey": fresh.key, "apiSecret": fresh.secret}]);
        let answer = self.send(Method::PUT, &format!("{}/_sandbox/credentials", self.sandbox), Some(&body)).await?;
        crate::ensure(answer.status == 204, || format!("PUT /_sandbox/credentials: HTTP {}", answer.status))?;
        *lock(&self.credential) = fresh;
        *lock(&self.rotated_at) = Some(Instant::now());
        note("secret rotated: a new {apiKey, apiSecret} in Secrets Manager, the old pair revoked at the sandbox");
        Ok(())
    }

    // ------------------------------------------------------------ the reconciler

    async fn reconcile_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.reconcile_every).await;
            match self.invoke_reconcile().await {
                Ok(_) => self.reconcile_runs.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.reconcile_failed.fetch_add(1, Ordering::Relaxed),
            };
        }
    }

    async fn invoke_reconcile(&self) -> Result<Value> {
        let port = self.lambda_port.to_string();
        let event = self.reconcile_event.display().to_string();
        let host = self.lambda_host.clone();
        let output = tokio::task::spawn_blocking(move || {
            let args = ["lambda", "invoke", "reconcile", "--data-file", &event, "-A", &host, "-P", &port];
            Command::new("cargo").args(args).stdin(Stdio::null()).output()
        })
        .await
        .map_err(|e| Failure(format!("cargo lambda invoke: {e}")))?
        .map_err(|e| Failure(format!("cannot run `cargo lambda`: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(Failure(format!("`cargo lambda invoke reconcile` failed ({})", output.status)));
        }
        serde_json::from_str(stdout.trim())
            .map_err(|_| Failure("`cargo lambda invoke reconcile` did not answer a JSON summary".to_owned()))
    }

    // ------------------------------------------------------------ bad input

    async fn bad_input_loop(self: Arc<Self>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed ^ 0xbad);
        let mut n: u64 = 0;
        while !self.finished.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(rng.random_range(150..450))).await;
            if self.bad_paused.load(Ordering::SeqCst) {
                continue;
            }
            n += 1;
            let target = {
                let sent = lock(&self.sent);
                if sent.created.is_empty() || rng.random_bool(0.3) {
                    None
                } else {
                    Some(sent.created[rng.random_range(0..sent.created.len())].clone())
                }
            };
            let known = target.is_some();
            let (id, ext) = match target {
                Some(t) => t,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    lock(&self.sent).forged_ids.push(id.clone());
                    (id, format!("chaos-{}-forged-{n}", self.run))
                }
            };
            let marker = format!("chaos-bad-{}-{n}", self.run);
            let body = json!({
                "caseSystemId": id,
                "caseSuggestion": "SUGGEST_TO_REJECT",
                "comment": format!("Forged {marker}"),
                "externalCaseId": ext,
            })
            .to_string();
            let credential = lock(&self.credential).clone();
            let now = unix_now();
            let (kind, forged, outcome) = match n % 9 {
                0 => {
                    let wrong = Credential { key: credential.key.clone(), secret: format!("not-{}", marker) };
                    ("bad signature", true, self.post_webhook(body.as_bytes(), Some((&wrong, now)), None).await)
                }
                1 => {
                    // A genuine signature an hour old: a late delivery, taken as a hint
                    // (a notice on a known case, refused when Cabital does not know it).
                    let outcome = self.post_webhook(body.as_bytes(), Some((&credential, now - 3600)), None).await;
                    // Signed with a pair the rotation revoked meanwhile, or with the new pair
                    // before the function sees it (its secret cache, at most a minute): 401.
                    let revoked = self.rotation_begun.load(Ordering::SeqCst)
                        && lock(&self.rotated_at).is_none_or(|at| {
                            at.elapsed() < Duration::from_secs(60) || lock(&self.credential).key != credential.key
                        });
                    let mut bad = lock(&self.bad);
                    bad.late += 1;
                    match (&outcome, known) {
                        (Ok(200), true) | (Ok(404), false) => bad.late_as_expected += 1,
                        (Ok(401), _) if revoked => bad.late_as_expected += 1,
                        (Ok(status), _) => bad.wrong.push(("late replay".to_owned(), format!("HTTP {status}"))),
                        (Err(e), _) => bad.wrong.push(("late replay".to_owned(), format!("no answer ({})", e.0))),
                    }
                    continue;
                }
                2 => {
                    let tampered = body.replace("SUGGEST_TO_REJECT", "SUGGEST_TO_ACCEPT");
                    let signature = sign(&credential.secret, &now.to_string(), &self.webhook_path, body.as_bytes());
                    let headers = (&credential, now, signature);
                    ("tampered body", true, self.post_webhook(tampered.as_bytes(), None, Some(headers)).await)
                }
                3 => ("unsigned", true, self.post_webhook(body.as_bytes(), None, None).await),
                4 => {
                    let unknown = Credential { key: format!("unknown-{marker}"), secret: credential.secret.clone() };
                    ("unknown key", true, self.post_webhook(body.as_bytes(), Some((&unknown, now)), None).await)
                }
                5 => {
                    let text = format!("{{\"caseSystemId\": \"{id}\", not json {marker}");
                    ("not JSON", false, self.post_webhook(text.as_bytes(), Some((&credential, now)), None).await)
                }
                6 => {
                    let wrong = json!({"caseSystemId": id, "caseSuggestion": "MAYBE", "comment": marker, "externalCaseId": ext})
                        .to_string();
                    (
                        "unknown suggestion",
                        false,
                        self.post_webhook(wrong.as_bytes(), Some((&credential, now)), None).await,
                    )
                }
                7 => {
                    let wrong = json!({"case": id, "suggestion": 3, "note": marker}).to_string();
                    ("wrong fields", false, self.post_webhook(wrong.as_bytes(), Some((&credential, now)), None).await)
                }
                _ => {
                    let big = json!({
                        "caseSystemId": id,
                        "caseSuggestion": "SUGGEST_TO_ACCEPT",
                        "comment": format!("{marker} {}", "x".repeat(70 * 1024)),
                        "externalCaseId": ext,
                    })
                    .to_string();
                    ("oversize", false, self.post_webhook(big.as_bytes(), Some((&credential, now)), None).await)
                }
            };
            let mut bad = lock(&self.bad);
            if forged {
                bad.forged += 1;
            } else {
                bad.malformed += 1;
            }
            match outcome {
                Ok(status) => {
                    *bad.statuses.entry(status).or_default() += 1;
                    if (400..500).contains(&status) {
                        if forged {
                            bad.forged_refused += 1;
                        } else {
                            bad.malformed_refused += 1;
                        }
                    } else {
                        bad.wrong.push((kind.to_owned(), format!("HTTP {status}")));
                    }
                }
                Err(e) => bad.wrong.push((kind.to_owned(), format!("no answer ({})", e.0))),
            }
        }
    }

    /// POSTs a delivery to the webhook, signed with `sign_with` (credential, timestamp),
    /// or with the given headers as they are, or unsigned. Returns the status.
    async fn post_webhook(
        &self,
        body: &[u8],
        sign_with: Option<(&Credential, i64)>,
        headers: Option<(&Credential, i64, String)>,
    ) -> Result<u16> {
        let mut request = self.http.post(&self.webhook).header("content-type", "application/json").body(body.to_vec());
        if let Some((credential, timestamp)) = sign_with {
            let ts = timestamp.to_string();
            let signature = sign(&credential.secret, &ts, &self.webhook_path, body);
            request = request
                .header("ACCESS-KEY", &credential.key)
                .header("ACCESS-TIMESTAMP", ts)
                .header("ACCESS-SIGN", signature);
        }
        if let Some((credential, timestamp, signature)) = headers {
            request = request
                .header("ACCESS-KEY", &credential.key)
                .header("ACCESS-TIMESTAMP", timestamp.to_string())
                .header("ACCESS-SIGN", signature);
        }
        let response =
            request.send().await.map_err(|e| Failure(format!("POST {}: {}", self.webhook, error_chain(&e))))?;
        Ok(response.status().as_u16())
    }

    fn bad_input_violations(&self) -> Vec<String> {
        let bad = lock(&self.bad);
        let mut out: Vec<String> =
            bad.wrong.iter().map(|(kind, what)| format!("a {kind} delivery was answered {what}, not a 4xx")).collect();
        if bad.forged == 0 || bad.malformed == 0 {
            out.push(format!("too few bad deliveries were sent ({} forged, {} malformed)", bad.forged, bad.malformed));
        }
        out
    }

    // ------------------------------------------------------------ moto's stop, the rotation

    fn stop_violations(&self, verdict: &Verdict) -> Vec<String> {
        let stop = lock(&self.stop);
        let mut out = Vec::new();
        if stop.began.is_none() {
            out.push("moto was never stopped".to_owned());
            return out;
        }
        for (status, secs) in &stop.probes {
            if *status == 0 {
                out.push(format!("a genuine delivery while moto was stopped had no answer in {secs:.0} s"));
            } else if *status < 500 {
                out.push(format!("a genuine delivery while moto was stopped was answered HTTP {status}, not a 5xx"));
            }
        }
        if verdict.gave_up_after_5xx > 0 {
            out.push(format!(
                "{} webhook deliveries answered 5xx were never stored by the sandbox's retries",
                verdict.gave_up_after_5xx
            ));
        }
        if stop.probes.is_empty() && verdict.sandbox_5xx == 0 {
            out.push("nothing reached the webhook while moto was stopped: the stop proved nothing".to_owned());
        }
        out
    }

    fn rotation_violations(&self, stats_end: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if lock(&self.rotated_at).is_none() {
            out.push("the secret was never rotated".to_owned());
            return out;
        }
        if lock(&self.all_credentials).len() < 2 {
            out.push("the rotation left no new credential".to_owned());
        }
        // After the rotation only the new pair is accepted: every call that succeeded
        // after it was signed with the new secret. Each function may be refused once
        // per call in flight (then refetches and retries); more means it kept the old one.
        let unauthorized = stats_end.get("unauthorized").and_then(Value::as_u64).unwrap_or(0);
        let after = unauthorized.saturating_sub(self.unauthorized_before_rotation.load(Ordering::SeqCst));
        if after > 30 {
            out.push(format!(
                "{after} API requests were refused with 401 after the rotation: the new secret was not picked up"
            ));
        }
        out
    }

    // ------------------------------------------------------------ settle and compare

    /// Waits for the sandbox's retries, reconciles, compares; again until everything
    /// agrees or the settle timeout passes.
    async fn settle(&self) -> Result<Verdict> {
        let started = Instant::now();
        let mut round = 0;
        loop {
            round += 1;
            let pending = self.pending_deliveries().await?;
            if pending > 0 && started.elapsed() < self.settle_timeout {
                if round == 1 || round % 6 == 0 {
                    note(format!("{pending} webhook deliveries still to be retried by the sandbox; waiting"));
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
                continue;
            }
            match self.invoke_reconcile().await {
                Ok(summary) => {
                    self.reconcile_runs.fetch_add(1, Ordering::Relaxed);
                    note(format!(
                        "reconcile: found {}, checked {}, changed {}, failed {}",
                        crate::show::text(&summary, "found"),
                        crate::show::text(&summary, "checked"),
                        crate::show::text(&summary, "changed"),
                        crate::show::text(&summary, "failed")
                    ));
                }
                Err(e) => {
                    self.reconcile_failed.fetch_add(1, Ordering::Relaxed);
                    note(format!("reconcile failed: {}", e.0));
                }
            }
            let verdict = self.compare().await?;
            // Only states and lost deliveries can still heal (by a retry or the
            // reconciler); a wrong delivery count stays wrong.
            let healing = verdict.lost > 0 || verdict.mismatched > verdict.mismatched_deliveries;
            let settled = !healing && pending == 0;
            if settled || started.elapsed() >= self.settle_timeout {
                ok(format!("settled after {:.0} s ({round} round(s))", started.elapsed().as_secs_f64()));
                return Ok(verdict);
            }
            note(format!(
                "not settled yet: {} lost, {} mismatched (cases under ongoing screening are checked every few seconds); again in 5 s",
                verdict.lost, verdict.mismatched
            ));
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    /// Deliveries scheduled and neither delivered nor given up (five attempts).
    async fn pending_deliveries(&self) -> Result<usize> {
        let cases = self.sandbox_get("/_sandbox/cases").await?;
        let deliveries = self.sandbox_get("/_sandbox/deliveries").await?;
        let mut attempts: HashMap<(u64, u64), (bool, u64)> = HashMap::new();
        for d in deliveries.as_array().into_iter().flatten() {
            let key = (num(d, "notificationId"), num(d, "copy"));
            let entry = attempts.entry(key).or_default();
            entry.0 |= d.get("success") == Some(&json!(true)) && d.get("ackLost") != Some(&json!(true));
            entry.1 = entry.1.max(num(d, "attempt"));
        }
        let mut done: HashMap<u64, u64> = HashMap::new();
        for ((id, _), (success, attempt)) in &attempts {
            if *success || *attempt >= 5 {
                *done.entry(*id).or_default() += 1;
            }
        }
        let mut pending = 0;
        for case in cases.as_array().into_iter().flatten() {
            for n in case.get("notifications").and_then(Value::as_array).into_iter().flatten() {
                let sent = num(n, "deliveries").saturating_sub(num(n, "dropped"));
                let finished = done.get(&num(n, "notificationId")).copied().unwrap_or(0);
                pending += sent.saturating_sub(finished) as usize;
            }
        }
        Ok(pending)
    }

    async fn compare(&self) -> Result<Verdict> {
        let sandbox_cases = self.sandbox_get("/_sandbox/cases").await?;
        let deliveries = self.sandbox_get("/_sandbox/deliveries").await?;
        let prefix = format!("chaos-{}-", self.run);
        let mut v = Verdict::default();

        // Deliveries per body: successes, failed attempts, 5xx answers.
        #[derive(Default)]
        struct BodyStats {
            successes: u64,
            failed: u64,
        }
        let mut per_body: HashMap<String, BodyStats> = HashMap::new();
        let stop_window = lock(&self.stop).wall;
        // Per delivery (notification, copy): answered 5xx once, delivered, failed once,
        // the last attempt made.
        let mut per_delivery: HashMap<(u64, u64), (bool, bool, bool, u64)> = HashMap::new();
        for d in deliveries.as_array().into_iter().flatten() {
            let body = d.get("body").and_then(Value::as_str).unwrap_or_default();
            if !body.contains(&prefix) {
                continue;
            }
            let success = d.get("success") == Some(&json!(true));
            let stats = per_body.entry(body.to_owned()).or_default();
            v.attempts += 1;
            if d.get("ackLost") == Some(&json!(true)) {
                v.acks_lost += 1;
            }
            if d.get("signed") == Some(&json!("original")) {
                v.old_header_retries += 1;
            }
            if success {
                stats.successes += 1;
                v.delivered += 1;
            } else {
                stats.failed += 1;
            }
            let status = d.get("statusCode").and_then(Value::as_u64);
            let five_xx = status.is_some_and(|s| s >= 500);
            if five_xx {
                v.sandbox_5xx += 1;
            }
            if status == Some(401) {
                v.sandbox_401 += 1;
            }
            if status.is_none() && !success {
                v.sandbox_no_answer += 1;
            }
            // Attempts made while moto was stopped (the sandbox's clock runs ahead by
            // the faults' offset).
            let at = d
                .get("at")
                .and_then(Value::as_str)
                .and_then(|at| time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok())
                .map(|at| at - time::Duration::seconds(CLOCK_OFFSET_SECS));
            if let (Some(at), Some((from, to))) = (at, stop_window)
                && at >= from
                && at <= to
            {
                v.stop_attempts += 1;
                if five_xx {
                    v.stop_5xx += 1;
                }
                if status.is_none() && !success {
                    v.stop_no_answer += 1;
                }
            }
            let key = (num(d, "notificationId"), num(d, "copy"));
            let entry = per_delivery.entry(key).or_default();
            entry.0 |= five_xx;
            entry.1 |= success;
            entry.2 |= !success;
            entry.3 = entry.3.max(num(d, "attempt"));
        }
        v.retried_after_5xx = per_delivery.values().filter(|(five, success, ..)| *five && *success).count() as u64;
        // Given up: all five attempts failed. Failed so far with attempts left: still
        // being retried (the 4th and 5th retries come minutes later).
        let exhausted = |d: &(bool, bool, bool, u64)| d.2 && !d.1 && d.3 >= 5;
        v.gave_up_after_5xx = per_delivery.values().filter(|d| d.0 && exhausted(d)).count() as u64;
        v.gave_up = per_delivery.values().filter(|d| exhausted(d)).count() as u64;
        v.still_retried = per_delivery.values().filter(|d| d.2 && !d.1 && d.3 < 5).count() as u64;
        if v.gave_up > 0 {
            v.violations.push(format!(
                "{} webhook deliveries were refused or unanswered on every attempt: Cabital gave up on them",
                v.gave_up
            ));
        }

        let probes: HashSet<String> = lock(&self.sent).probe_bodies.iter().cloned().collect();
        let mut seen_bodies: HashSet<String> = HashSet::new();
        for state in sandbox_cases.as_array().into_iter().flatten() {
            let remote = state.get("case").cloned().unwrap_or(Value::Null);
            let ext = remote.get("externalCaseId").and_then(Value::as_str).unwrap_or_default();
            if !ext.starts_with(&prefix) {
                continue;
            }
            v.cases += 1;
            let id_text = remote.get("caseSystemId").and_then(Value::as_str).unwrap_or_default();
            let Ok(id) = id_text.parse::<CaseSystemId>() else {
                v.violations.push(format!("the sandbox lists a case with a bad id `{id_text}`"));
                continue;
            };
            let local = self.store.get_case(&id).await.map_err(|e| Failure(format!("reading case {id}: {e}")))?;
            let Some(local) = local else {
                v.lost += 1;
                v.violations.push(format!("LOST: case {id} ({ext}) is at Cabital but not in DynamoDB"));
                continue;
            };
            let mut differs = Vec::new();
            if local.external_case_id.as_str() != ext {
                differs.push("externalCaseId");
            }
            if local.suggestion.map(|s| s.as_str()) != remote.get("suggestion").and_then(Value::as_str) {
                differs.push("suggestion");
            }
            if local.suggestion_comment.as_ref().map(|c| c.expose().as_str())
                != remote.get("suggestion_comment").and_then(Value::as_str)
            {
                differs.push("suggestion_comment");
            }
            if local.decision.map(|d| d.as_str()) != remote.get("decision").and_then(Value::as_str) {
                differs.push("decision");
            }
            if local.decision_comment.as_ref().map(|c| c.expose().as_str())
                != remote.get("decision_comment").and_then(Value::as_str)
            {
                differs.push("decision_comment");
            }
            if Some(local.ogs) != remote.get("ogs").and_then(Value::as_bool) {
                differs.push("ogs");
            }
            if !differs.is_empty() {
                v.mismatched += 1;
                v.violations.push(format!(
                    "MISMATCH: case {id}: {} differ between DynamoDB and the sandbox (gateway {} / {}, sandbox {} / {})",
                    differs.join(", "),
                    local.suggestion.map_or("none", |s| s.as_str()),
                    local.decision.map_or("none", |d| d.as_str()),
                    remote.get("suggestion").and_then(Value::as_str).unwrap_or("none"),
                    remote.get("decision").and_then(Value::as_str).unwrap_or("none"),
                ));
            }

            // The case's webhook events: one per distinct body, with its delivery count.
            // A body whose first attempts all failed and whose retry came under its first
            // attempt's old headers is kept as an unverified notice (LATE_SIGNATURE): one
            // event per body and kind, deliveries summed over both.
            let mut events: HashMap<String, (u64, u64)> = HashMap::new();
            let mut notice_events: HashMap<String, u64> = HashMap::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = self
                    .store
                    .timeline(&id, kyc_store::TimelineOrder::Oldest, kyc_store::MAX_TIMELINE_PAGE, cursor.as_deref())
                    .await
                    .map_err(|e| Failure(format!("reading case {id}'s events: {e}")))?;
                for event in &page.events {
                    match &event.detail {
                        kyc_store::EventDetail::Webhook { body, deliveries, .. } => {
                            let entry = events.entry(body.expose().clone()).or_default();
                            entry.0 += 1;
                            entry.1 += u64::from(*deliveries);
                        }
                        kyc_store::EventDetail::UnverifiedNotice { body, deliveries, reason, .. } => {
                            let body = body.expose().clone();
                            if *reason != kyc_store::NoticeReason::LateSignature {
                                v.violations.push(format!("case {id}: a {reason} notice, with webhooks signed"));
                            }
                            if body.contains("chaos-bad-") {
                                // A replay of a genuine signature, hours old: kept as a notice.
                                v.late_replays_kept += 1;
                                continue;
                            }
                            v.late_notices += 1;
                            *notice_events.entry(body.clone()).or_default() += 1;
                            events.entry(body).or_default().1 += u64::from(*deliveries);
                        }
                        _ => {}
                    }
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            for n in notice_events.values() {
                if *n != 1 {
                    v.mismatched_deliveries += 1;
                    v.violations.push(format!("case {id}: one late body is {n} notices, not one"));
                }
            }
            for (body, (count, stored)) in &events {
                seen_bodies.insert(body.clone());
                v.events += 1;
                v.stored_deliveries += stored;
                v.duplicates_absorbed += stored.saturating_sub(1);
                if *count > 1 || (*count == 0 && !notice_events.contains_key(body)) {
                    v.mismatched_deliveries += 1;
                    v.violations.push(format!("case {id}: one webhook body is {count} events, not one"));
                }
                if body.contains("chaos-bad-") {
                    v.bad_stored += 1;
                    v.violations.push(format!("case {id}: a forged or malformed delivery was stored"));
                    continue;
                }
                let expected = per_body.get(body);
                let successes = expected.map_or(0, |s| s.successes);
                let failed = expected.map_or(0, |s| s.failed);
                let probe = u64::from(probes.contains(body));
                if expected.is_none() && probe == 0 {
                    v.violations.push(format!("case {id}: a webhook event holds a body Cabital never sent"));
                    v.mismatched_deliveries += 1;
                } else if *stored < successes {
                    v.lost_deliveries += successes - stored;
                    v.violations.push(format!(
                        "LOST: case {id}: a body answered 2xx {successes} time(s) is stored with {stored} deliveries"
                    ));
                } else if *stored > successes + failed + probe {
                    v.mismatched_deliveries += 1;
                    v.violations.push(format!(
                        "case {id}: a body delivered {} time(s) is stored with {stored} deliveries",
                        successes + failed
                    ));
                } else if *stored > successes {
                    // Stored, yet answered late or 5xx (the sender gave up waiting, or the
                    // store's answer timed out after it wrote): counted, as received.
                    v.stored_though_unanswered += stored - successes;
                }
            }
        }
        // Bodies answered 2xx but with no event at all.
        for (body, stats) in &per_body {
            if stats.successes > 0 && !seen_bodies.contains(body) {
                v.lost_deliveries += stats.successes;
                v.violations.push("LOST: a webhook body answered 2xx is not stored as an event".to_owned());
            }
        }
        if v.lost_deliveries > 0 {
            v.lost += 1;
        }
        v.mismatched += v.mismatched_deliveries;

        // Forged deliveries naming cases that exist nowhere: no case may have appeared.
        let forged_ids = lock(&self.sent).forged_ids.clone();
        for id in forged_ids {
            let Ok(case_id) = id.parse::<CaseSystemId>() else { continue };
            if self.store.get_case(&case_id).await.map_err(|e| Failure(format!("reading case {id}: {e}")))?.is_some() {
                v.bad_stored += 1;
                v.violations.push(format!("a forged delivery created case {id}"));
            }
        }
        // Creates whose outcome stayed unknown: the gateway says so, and holds no case
        // Cabital does not have (they are compared above when Cabital has them).
        v.unknown_creates = lock(&self.sent).unknown_creates.len() as u64;
        Ok(v)
    }

    // ------------------------------------------------------------ the log audit

    fn audit_log(&self) -> Result<Audit> {
        let bytes = std::fs::read(&self.log_file)
            .map_err(|e| Failure(format!("reading the functions' log {}: {e}", self.log_file.display())))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut audit = Audit { lines: text.lines().count() as u64, ..Audit::default() };
        // The credentials, whole (a few needles: a plain search each).
        let credentials = lock(&self.all_credentials).clone();
        for (i, c) in credentials.iter().enumerate() {
            let when = if i == 0 { "in force at the start" } else { "rotated in" };
            for (what, value, total) in
                [("API secret", &c.secret, &mut audit.secret), ("API key", &c.key, &mut audit.key)]
            {
                let n = if value.is_empty() { 0 } else { text.matches(value.as_str()).count() as u64 };
                *total += n;
                if n > 0 {
                    audit
                        .violations
                        .push(format!("the {what} {when} appears {n} time(s) in the functions' log (value not shown)"));
                }
            }
        }
        // Personal data: every word of the log (and every date-like run) looked up
        // among the distinctive parts of what was sent.
        let sent = lock(&self.sent);
        let mut hits: BTreeMap<Personal, (u64, HashSet<&str>)> = BTreeMap::new();
        let words = text.split(|c: char| !c.is_ascii_alphanumeric());
        let dates = text.split(|c: char| !(c.is_ascii_digit() || c == '-'));
        for token in words.chain(dates).filter(|t| t.len() >= 8) {
            let token = token.to_lowercase();
            if let Some((needle, kind)) = sent.needles.get_key_value(token.as_str()) {
                let entry = hits.entry(*kind).or_default();
                entry.0 += 1;
                entry.1.insert(needle.as_str());
            }
        }
        for (kind, (n, distinct)) in &hits {
            match kind {
                Personal::FullName => audit.names = *n,
                Personal::DateOfBirth => audit.dobs = *n,
                Personal::Comment => audit.comments = *n,
            }
            audit.violations.push(format!(
                "{} distinct part(s) of the {}s sent appear in the functions' log ({n} occurrence(s))",
                distinct.len(),
                kind.label()
            ));
        }
        // The webhook's own time to answer "not stored" (5xx), from its log: within
        // what Cabital waits, or its retries would count timeouts, not refusals.
        for line in text.lines().filter(|l| l.contains("\"webhook refused\"")) {
            let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
            if entry.get("status").and_then(Value::as_u64).is_some_and(|s| s >= 500) {
                let ms = entry.get("latency_ms").and_then(Value::as_u64).unwrap_or(0);
                audit.not_stored += 1;
                audit.slowest_not_stored_ms = audit.slowest_not_stored_ms.max(ms);
            }
        }
        if audit.slowest_not_stored_ms >= SANDBOX_WEBHOOK_TIMEOUT.as_millis() as u64 {
            audit.violations.push(format!(
                "the webhook took {} ms of its own time to answer 5xx: longer than Cabital waits",
                audit.slowest_not_stored_ms
            ));
        }
        let sent_values: u64 = sent.values.values().sum();
        audit.searched = credentials.len() as u64 * 2 + sent_values;
        field("log", format!("{} ({} lines, {} bytes)", self.log_file.display(), audit.lines, bytes.len()));
        let per_kind: Vec<String> = sent.values.iter().map(|(k, n)| format!("{n} {}s", k.label())).collect();
        field(
            "searched for",
            format!(
                "{} values: {} API secrets and keys (old and new), {}",
                audit.searched,
                credentials.len() * 2,
                per_kind.join(", ")
            ),
        );
        field(
            "found",
            format!(
                "secret {}, key {}, names {}, dates of birth {}, comments {}",
                audit.secret, audit.key, audit.names, audit.dobs, audit.comments
            ),
        );
        Ok(audit)
    }

    // ------------------------------------------------------------ figures

    fn figures(&self, v: &Verdict, a: &Audit, before: &Value, chaos: &Value, end: &Value, took: Duration) {
        let delta = |key: &str, at: &Value| num(at, key).saturating_sub(num(before, key));
        let bad = lock(&self.bad);
        let stop = lock(&self.stop);
        let stop_secs = match (stop.began, stop.ended) {
            (Some(b), Some(e)) => e.duration_since(b).as_secs_f64(),
            _ => 0.0,
        };
        let probes: Vec<String> = stop.probes.iter().map(|(s, t)| format!("HTTP {s} in {t:.1} s")).collect();
        let rows: Vec<(&str, String)> = vec![
            (
                "cases",
                format!(
                    "{} (created through the API; {} create(s) ended with an unknown outcome and were retried under a new id)",
                    v.cases, v.unknown_creates
                ),
            ),
            (
                "deliveries",
                format!(
                    "{} answered 2xx, of {} attempts by the sandbox ({} dropped by the fault, never sent)",
                    v.delivered,
                    v.attempts,
                    delta("webhookDeliveriesDropped", end)
                ),
            ),
            (
                "events",
                format!("{} distinct webhook bodies stored, {} deliveries counted", v.events, v.stored_deliveries),
            ),
            ("duplicates absorbed", v.duplicates_absorbed.to_string()),
            (
                "forged refused",
                format!(
                    "{} of {} (bad signature, tampered body, unsigned, unknown key)",
                    bad.forged_refused, bad.forged
                ),
            ),
            (
                "late replays",
                format!(
                    "{} of {} answered as hints (2xx, kept as a notice, on a known case; 404 otherwise; 401 when \
                     signed with a pair rotated out meanwhile); {} kept",
                    bad.late_as_expected, bad.late, v.late_replays_kept
                ),
            ),
            (
                "retries, old headers",
                format!(
                    "{} acks lost by the fault, {} retries under the first attempt's headers (a late signature past \
                     the 300 s window is one more delivery of its body), {} bodies kept as LATE_SIGNATURE notices",
                    v.acks_lost, v.old_header_retries, v.late_notices
                ),
            ),
            (
                "malformed refused",
                format!(
                    "{} of {} (not JSON, unknown suggestion, wrong fields, oversize)",
                    bad.malformed_refused, bad.malformed
                ),
            ),
            ("bad input answers", format!("{:?} (status: count)", bad.statuses)),
            ("bad stored", v.bad_stored.to_string()),
            (
                "deliveries still retried",
                format!(
                    "{} (refused or unanswered so far, their next retry due after the settle timeout; {} given up after five attempts)",
                    v.still_retried, v.gave_up
                ),
            ),
            (
                "moto stop",
                format!(
                    "{stop_secs:.1} s; probe: {} (end to end, queue included); the webhook's own time to answer 5xx: {} answers, the slowest {} ms (Cabital waits 10 s)",
                    if probes.is_empty() { "none".to_owned() } else { probes.join(", ") },
                    a.not_stored,
                    a.slowest_not_stored_ms
                ),
            ),
            (
                "5xx during the moto stop",
                format!(
                    "of {} delivery attempts made during the stop, {} answered 5xx and {} unanswered within the sandbox's 10 s (+ {} probe); {} deliveries answered 5xx stored by a later retry, {} given up",
                    v.stop_attempts,
                    v.stop_5xx,
                    v.stop_no_answer,
                    stop.probes.len(),
                    v.retried_after_5xx,
                    v.gave_up_after_5xx
                ),
            ),
            (
                "stored, answered late",
                format!(
                    "{} (stored, but answered after the sender's 10 s or 5xx: counted as received; {} attempts in all went unanswered, mostly queued behind others, as `cargo lambda watch` serves one request at a time)",
                    v.stored_though_unanswered, v.sandbox_no_answer
                ),
            ),
            (
                "webhooks 401 at rotation",
                format!("{} (retried by the sandbox until the webhook refetched the secret)", v.sandbox_401),
            ),
            (
                "API faults",
                format!(
                    "{} x 500, {} x 503, {} x 429 injected; {} x 401 (rotation)",
                    delta("injected500", chaos),
                    delta("injected503", chaos),
                    delta("rateLimited", chaos),
                    delta("unauthorized", end)
                ),
            ),
            (
                "reconcile runs",
                format!(
                    "{} ({} failed, e.g. while moto was stopped)",
                    self.reconcile_runs.load(Ordering::Relaxed),
                    self.reconcile_failed.load(Ordering::Relaxed)
                ),
            ),
            (
                "log audit",
                format!(
                    "{} lines searched for {} values: {} found",
                    a.lines,
                    a.searched,
                    a.secret + a.key + a.names + a.dobs + a.comments
                ),
            ),
            ("lost", v.lost.to_string()),
            ("mismatched", v.mismatched.to_string()),
            ("time taken", format!("{:.0} s", took.as_secs_f64())),
        ];
        for (key, value) in rows {
            println!("   {key:<26} {value}");
        }
    }

    // ------------------------------------------------------------ HTTP

    async fn read_secret(&self) -> Result<Credential> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| Failure(format!("GetSecretValue {}: {}", self.secret_id, error_chain(&e))))?;
        let value: Value = serde_json::from_str(out.secret_string().unwrap_or_default())
            .map_err(|_| Failure(format!("secret {} is not JSON", self.secret_id)))?;
        let key = value.get("apiKey").and_then(Value::as_str).unwrap_or_default().to_owned();
        let secret = value.get("apiSecret").and_then(Value::as_str).unwrap_or_default().to_owned();
        crate::ensure(!key.is_empty() && !secret.is_empty(), || {
            format!("secret {} is not {{\"apiKey\", \"apiSecret\"}}", self.secret_id)
        })?;
        Ok(Credential { key, secret })
    }

    async fn api_call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer> {
        self.send(method, &format!("{}{path}", self.api), body).await
    }

    async fn sandbox_get(&self, path: &str) -> Result<Value> {
        let a = self.send(Method::GET, &format!("{}{path}", self.sandbox), None).await?;
        crate::ensure(a.status == 200, || format!("GET {path} at the sandbox: HTTP {}", a.status))?;
        Ok(a.body)
    }

    async fn sandbox_put(&self, path: &str, body: &Value) -> Result<Value> {
        let a = self.send(Method::PUT, &format!("{}{path}", self.sandbox), Some(body)).await?;
        crate::ensure(a.status == 200, || format!("PUT {path} at the sandbox: HTTP {}", a.status))?;
        Ok(a.body)
    }

    async fn sandbox_post(&self, path: &str, body: &Value) -> Result<Value> {
        let a = self.send(Method::POST, &format!("{}{path}", self.sandbox), Some(body)).await?;
        crate::ensure(a.status == 200, || format!("POST {path} at the sandbox: HTTP {}", a.status))?;
        Ok(a.body)
    }

    async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Result<Answer> {
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

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `kill -SIG PID`.
fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .map_err(|e| Failure(format!("kill -{sig} {pid}: {e}")))?;
    crate::ensure(status.success(), || format!("kill -{sig} {pid} failed ({status})"))
}

#[derive(Default, Clone)]
struct Verdict {
    cases: u64,
    attempts: u64,
    delivered: u64,
    events: u64,
    stored_deliveries: u64,
    duplicates_absorbed: u64,
    stored_though_unanswered: u64,
    sandbox_5xx: u64,
    sandbox_401: u64,
    retried_after_5xx: u64,
    gave_up_after_5xx: u64,
    gave_up: u64,
    still_retried: u64,
    sandbox_no_answer: u64,
    stop_attempts: u64,
    stop_5xx: u64,
    stop_no_answer: u64,
    lost: u64,
    lost_deliveries: u64,
    mismatched: u64,
    mismatched_deliveries: u64,
    bad_stored: u64,
    /// Bodies kept as LATE_SIGNATURE notices (their first attempts failed, their retry
    /// came under old headers).
    late_notices: u64,
    /// Bad-input replays of a genuine signature an hour old, kept as notices.
    late_replays_kept: u64,
    /// 2xx answers the sandbox's lost-ack fault turned into retries.
    acks_lost: u64,
    /// Retries sent under their first attempt's headers.
    old_header_retries: u64,
    unknown_creates: u64,
    violations: Vec<String>,
}

#[derive(Default)]
struct Audit {
    lines: u64,
    searched: u64,
    secret: u64,
    key: u64,
    names: u64,
    dobs: u64,
    comments: u64,
    /// Deliveries the webhook answered 5xx (not stored), and the slowest's own time.
    not_stored: u64,
    slowest_not_stored_ms: u64,
    violations: Vec<String>,
}
