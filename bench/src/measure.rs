//! The measurements against real processes: init, first and second requests, peak RSS,
//! webhook deliveries and a reconcile run, each function fed by a local Runtime API
//! and talking to moto and the sandbox.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use gateway_sandbox::{CaseState, Credential};
use serde_json::{Value, json};

use crate::fixtures::{Fixtures, http_response};
use crate::instant_aws::InstantAws;
use crate::process::{Process, Program};
use crate::results::{
    EXAMPLE_HELLO, FUNCTIONS, FirstSecond, Init, LEAN_HELLO, Machine, Reconcile, Results, Rss, Throughput, median, ms,
};
use crate::runtime_api::{Outcome, RuntimeApi};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long init may take before the run gives up on it.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one API or webhook invocation may take.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the reconcile invocation may take (its deadline).
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(300);

/// What to measure and with what.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The repository (for the event fixtures).
    pub repo: PathBuf,
    /// Where the release binaries are.
    pub bin_dir: PathBuf,
    /// Other profiles' binary folders, for their init: (name, folder).
    pub profiles: Vec<(String, PathBuf)>,
    /// aws-lc probes to run in fresh processes: (name, binary).
    pub rng_probes: Vec<(String, PathBuf)>,
    /// Extra environment for every function and the peer (experiments).
    pub function_env: Vec<(String, String)>,
    /// The Python of the peer (with boto3).
    pub python: PathBuf,
    /// The sandbox's base URL.
    pub sandbox_url: String,
    /// The sandbox of the reconcile run: its cases are not screened yet, so that each
    /// check is the plain conditional update (a change is a transaction, and moto's
    /// transactions, served one at a time, would be measured instead).
    pub reconcile_sandbox_url: String,
    /// The key and secret the sandbox accepts (stored as the secret in moto).
    pub api_key: String,
    /// Its secret.
    pub api_secret: String,
    /// Function logs go here.
    pub logs: PathBuf,
    /// Timed init runs per program (after one untimed warm-up).
    pub init_runs: usize,
    /// Requests for the first/second and RSS runs.
    pub requests: usize,
    /// Cases the reconcile run finds.
    pub reconcile_cases: usize,
    /// The sandbox's rate limit during the reconcile run, per second.
    pub rate_limit: u32,
    /// The sandbox's added latency during the reconcile run.
    pub latency_ms: u64,
}

/// The environment Lambda gives a function (a clean one), plus the gateway's settings.
struct Env {
    common: Vec<(String, String)>,
}

impl Env {
    fn for_function(&self, name: &str, runtime_api: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.common.clone();
        let mut put = |k: &str, v: &str| env.push((k.to_owned(), v.to_owned()));
        put("AWS_LAMBDA_RUNTIME_API", runtime_api);
        put("AWS_LAMBDA_FUNCTION_NAME", name);
        put("AWS_LAMBDA_LOG_GROUP_NAME", &format!("/aws/lambda/{name}"));
        for (k, v) in extra {
            put(k, v);
        }
        env
    }
}

fn base_env(plan: &Plan, moto: &str, table: &str, secret_id: &str, home: &Path) -> Env {
    let pairs = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", &home.display().to_string()),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_ENDPOINT_URL", moto),
        ("TABLE_NAME", table),
        ("CABITAL_SECRET_ID", secret_id),
        ("CABITAL_BASE_URL", &plan.sandbox_url),
        ("RUST_LOG", "info"),
    ];
    let mut common: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    common.extend(plan.function_env.iter().cloned());
    Env { common }
}

/// A function process with its Runtime API.
struct Running {
    name: String,
    api: RuntimeApi,
    child: Process,
}

impl Running {
    /// Starts `program` and waits until it asks for work; returns it, its init time and
    /// its time on CPU by then.
    async fn launch(
        program: &Program,
        env: &Env,
        extra: &[(&str, &str)],
        logs: &Path,
    ) -> Result<(Running, Duration, Option<Duration>), BoxError> {
        let mut api = RuntimeApi::start().await?;
        let env = env.for_function(&program.name, &api.address(), extra);
        let log = logs.join(format!("{}.log", program.name));
        let (mut child, started) = Process::start(program, &env, &log)?;
        match api.first_next(&mut child, INIT_TIMEOUT).await {
            Ok(at) => {
                let cpu = child.cpu_time();
                Ok((Running { name: program.name.clone(), api, child }, at.saturating_duration_since(started), cpu))
            }
            Err(e) => {
                drop(child);
                Err(format!("{}: {e} (log: {})", program.name, log.display()).into())
            }
        }
    }

    async fn invoke(&mut self, payload: Vec<u8>, timeout: Duration) -> Result<Outcome, BoxError> {
        self.api.invoke(&mut self.child, payload, timeout).await.map_err(|e| format!("{}: {e}", self.name).into())
    }

    fn peak_rss(&self) -> u64 {
        self.child.peak_rss_kib().unwrap_or(0)
    }

    fn stop(self) {
        drop(self.child);
    }
}

fn load_1m() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

fn machine(python: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let mem_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:")).map(str::to_owned))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib / 1024)
        .unwrap_or(0);
    let python = std::process::Command::new(python)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    Machine {
        nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        cpu,
        mem_mib,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        load_start: load_1m(),
        load_end: String::new(),
        python,
    }
}

fn progress(message: &str) {
    eprintln!("==> bench: {message}");
}

/// Runs every measurement; what fails is named in `problems` and the rest goes on.
pub async fn measure(plan: &Plan) -> Result<Results, BoxError> {
    let moto = std::env::var("MOTO_ENDPOINT").map_err(|_| "MOTO_ENDPOINT is not set (start moto first)")?;
    std::fs::create_dir_all(&plan.logs)?;
    let home = plan.logs.join("home");
    std::fs::create_dir_all(&home)?;
    let mut results = Results { machine: machine(&plan.python), ..Results::default() };

    progress("creating a table and a secret in moto");
    let (dynamodb, table, secret_id) = table_and_secret(plan).await?;
    let env = base_env(plan, &moto, &table, &secret_id, &home);
    let fixtures = Fixtures::load(&plan.repo)?;

    let function = |name: &str, dir: &Path| Program::binary(name, dir.join(name));
    let floors =
        [LEAN_HELLO, EXAMPLE_HELLO].map(|name| Program::binary(name, plan.bin_dir.join(format!("bench-{name}"))));
    let python = Program {
        name: "python".into(),
        path: plan.python.clone(),
        args: vec![plan.repo.join("bench/peers/python_init.py").display().to_string()],
        env: Vec::new(),
    };

    // 1. Init, interleaved so that a busy moment of the machine hits every program alike.
    let mut programs: Vec<(Program, String)> = floors.iter().map(|f| (f.clone(), "release".into())).collect();
    programs.push((python, "-".into()));
    let profiles = std::iter::once(("release", plan.bin_dir.as_path()))
        .chain(plan.profiles.iter().map(|(name, dir)| (name.as_str(), dir.as_path())));
    for (profile, dir) in profiles {
        programs.extend(FUNCTIONS.map(|f| (function(f, dir), profile.to_owned())));
    }
    progress(&format!("init: {} programs x {} runs (+1 warm-up each)", programs.len(), plan.init_runs));
    results.init = init_runs(plan, &programs, &env, &mut results.problems).await;

    // The same against AWS answering at once: the functions' own init, without moto's
    // time to answer (see `instant_aws`).
    let instant = InstantAws::start(&secret_id, &secret_json(plan)).await?;
    let instant_env = base_env(plan, &instant.url(), &table, &secret_id, &home);
    // The floors, Python and the three functions as they ship (not the other profiles).
    let instant_programs = programs[..floors.len() + 1 + FUNCTIONS.len()].to_vec();
    progress(&format!(
        "init against instant AWS endpoints ({}): {} programs x {} runs",
        instant.url(),
        instant_programs.len(),
        plan.init_runs
    ));
    results.init_instant = init_runs(plan, &instant_programs, &instant_env, &mut results.problems).await;
    let (answered, refused) = instant.counts();
    results.instant_aws_answered = answered;
    if refused > 0 {
        results.problems.push(format!("instant AWS endpoint: {refused} requests refused (see its module)"));
    }
    drop(instant);

    // What the first TLS handshake of a process pays on Lambda and not here (the local
    // endpoints are plain HTTP): aws-lc seeding its generator.
    for (name, path) in &plan.rng_probes {
        progress(&format!("aws-lc first randomness ({name}): {} fresh processes", plan.init_runs.max(1)));
        match (0..plan.init_runs.max(1)).map(|_| rng_probe(path)).collect::<Result<Vec<f64>, _>>() {
            Ok(runs_ms) => results.rng_first.push(Init {
                subject: name.clone(),
                profile: "-".into(),
                median_ms: median(&runs_ms),
                runs_ms,
                ..Init::default()
            }),
            Err(e) => results.problems.push(format!("aws-lc probe {name}: {e}")),
        }
    }

    // The emulator's own floor: a bare GetItem from here.
    progress("moto floor: 100 GetItem");
    results.moto_get_item = Some(moto_floor(&dynamodb, &table, 100).await);
    results.moto_get_secret = Some(secret_floor(&secret_id, 20).await);

    // 2-3. cases-api: first vs second, RSS, and the cases for the next phases.
    let http = reqwest::Client::new();
    let cases = match cases_api_phase(plan, &env, &fixtures, &function("cases-api", &plan.bin_dir), &mut results).await
    {
        Ok(cases) => cases,
        Err(e) => {
            results.problems.push(format!("cases-api phase: {e}"));
            Vec::new()
        }
    };

    // 5. Webhook deliveries end to end.
    if let Err(e) = webhook_phase(plan, &env, &fixtures, &http, &cases, &mut results).await {
        results.problems.push(format!("webhook phase: {e}"));
    }

    // What one transaction costs moto on this table now (it copies the table for each).
    results.moto_transact = Some(transact_floor(&dynamodb, &table, 20).await);

    // 6. Reconcile against a slow, rate-limited sandbox.
    match seed_reconcile(plan, &env, &fixtures).await {
        Ok(seeded) => {
            if let Err(e) = reconcile_phase(plan, &env, &fixtures, &http, seeded, &mut results).await {
                results.problems.push(format!("reconcile phase: {e}"));
            }
        }
        Err(e) => results.problems.push(format!("reconcile seeding: {e}")),
    }
    // Whatever happened, leave the sandbox without faults.
    let _ = http.put(format!("{}/_sandbox/faults", plan.reconcile_sandbox_url)).json(&json!({})).send().await;

    // The floors' RSS over the same number of requests.
    for floor in &floors {
        progress(&format!("{}: {} invocations", floor.name, plan.requests));
        if let Err(e) = floor_rss(plan, &env, &fixtures, floor, &mut results).await {
            results.problems.push(format!("{}: {e}", floor.name));
        }
    }

    results.machine.load_end = load_1m();
    results.finished_at =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    Ok(results)
}

/// A floor's peak RSS over as many requests as the functions serve.
async fn floor_rss(
    plan: &Plan,
    env: &Env,
    fixtures: &Fixtures,
    floor: &Program,
    results: &mut Results,
) -> Result<(), BoxError> {
    let (mut running, _, _) = Running::launch(floor, env, &[], &plan.logs).await?;
    for _ in 0..plan.requests {
        running.invoke(fixtures.schedule()?, INVOKE_TIMEOUT).await?;
    }
    results.rss.push(Rss { subject: floor.name.clone(), requests: plan.requests, peak_kib: running.peak_rss() });
    running.stop();
    Ok(())
}

/// Init runs, interleaved (one of each program per round) so that a busy moment of the
/// machine hits every program alike, after one untimed warm-up round. Each round runs
/// them in its own order ([`round_order`]): no program always runs right after the
/// same one (the Python peer's 300 ms and its exit slow whatever follows it).
async fn init_runs(plan: &Plan, programs: &[(Program, String)], env: &Env, problems: &mut Vec<String>) -> Vec<Init> {
    let mut inits: Vec<Init> = programs
        .iter()
        .map(|(program, profile)| Init { subject: program.name.clone(), profile: profile.clone(), ..Init::default() })
        .collect();
    for round in 0..=plan.init_runs {
        for i in round_order(round, programs.len()) {
            match Running::launch(&programs[i].0, env, &[], &plan.logs).await {
                Ok((running, init, cpu)) => {
                    running.stop();
                    if round > 0 {
                        let timed = &mut inits[i];
                        timed.runs_ms.push(ms(init));
                        timed.rounds.push(round);
                        timed.cpu_runs_ms.extend(cpu.map(ms));
                    }
                }
                Err(e) => problems.push(format!("init: {e}")),
            }
        }
    }
    inits.retain(|i| !i.runs_ms.is_empty());
    for i in &mut inits {
        i.median_ms = median(&i.runs_ms);
        i.cpu_median_ms = median(&i.cpu_runs_ms);
    }
    inits
}

/// The order of a round's `n` programs: shuffled, seeded by the round (the same in
/// every run of the bench).
fn round_order(round: usize, n: usize) -> Vec<usize> {
    use rand::{SeedableRng, seq::SliceRandom};
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(round as u64));
    order
}

/// The secret's value: the credential the sandbox accepts.
fn secret_json(plan: &Plan) -> String {
    json!({"apiKey": plan.api_key, "apiSecret": plan.api_secret}).to_string()
}

/// A fresh table and a secret holding the sandbox's credential, with unique names. A
/// retried create (moto can be slow on a busy machine) that finds its own first attempt
/// done is a success.
async fn table_and_secret(plan: &Plan) -> Result<(aws_sdk_dynamodb::Client, String, String), BoxError> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let table = format!("kyc-bench-{run}");
    let dynamodb = gateway_support::dynamodb().await;
    if let Err(e) = gateway_store::create_table(&dynamodb, &table).await
        && !e.to_string().contains("already exists")
    {
        return Err(format!("creating table {table} in moto: {e}").into());
    }
    let secret_id = format!("cabital-bench-{run}");
    let value = secret_json(plan);
    let created = gateway_support::secretsmanager_client()
        .await
        .create_secret()
        .name(&secret_id)
        .secret_string(value)
        .send()
        .await;
    if let Err(e) = created {
        let text = format!("{e:?}");
        if !text.contains("ResourceExists") {
            return Err(format!("creating secret {secret_id} in moto: {text}").into());
        }
    }
    Ok((dynamodb, table, secret_id))
}

/// Runs an aws-lc probe (`bench/rng-probe`) in a fresh process; returns its first
/// fill's milliseconds.
fn rng_probe(path: &Path) -> Result<f64, BoxError> {
    let out = std::process::Command::new(path).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.split_whitespace().next().and_then(|v| v.parse().ok());
    first.ok_or_else(|| format!("{} printed `{}`", path.display(), text.trim()).into())
}

/// `count` calls one after another, each timed: the emulator's own floor for a request.
async fn timed_calls<T, E>(
    subject: &str,
    count: usize,
    mut call: impl AsyncFnMut(usize) -> Result<T, E>,
) -> Throughput {
    let mut latencies = Vec::with_capacity(count);
    let mut errors = 0;
    let started = Instant::now();
    for n in 0..count {
        let t = Instant::now();
        let r = call(n).await;
        latencies.push(ms(t.elapsed()));
        errors += usize::from(r.is_err());
    }
    Throughput::from_latencies(subject, &latencies, errors, started.elapsed())
}

async fn moto_floor(client: &aws_sdk_dynamodb::Client, table: &str, count: usize) -> Throughput {
    timed_calls("moto GetItem (from the runner)", count, async |n| {
        let key = |v: String| AttributeValue::S(v);
        client
            .get_item()
            .table_name(table)
            .key("pk", key(format!("BENCH#{n}")))
            .key("sk", key("NONE".into()))
            .send()
            .await
    })
    .await
}

async fn transact_floor(client: &aws_sdk_dynamodb::Client, table: &str, count: usize) -> Throughput {
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
    timed_calls("moto TransactWriteItems (from the runner)", count, async |n| {
        let put = Put::builder()
            .table_name(table)
            .item("pk", AttributeValue::S(format!("BENCH#TX#{n}")))
            .item("sk", AttributeValue::S("NONE".into()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(BoxError::from)?;
        let item = TransactWriteItem::builder().put(put).build();
        client.transact_write_items().transact_items(item).send().await.map_err(BoxError::from)
    })
    .await
}

async fn secret_floor(secret_id: &str, count: usize) -> Throughput {
    let client = gateway_support::secretsmanager_client().await;
    timed_calls("moto GetSecretValue (from the runner)", count, async |_| {
        client.get_secret_value().secret_id(secret_id).send().await
    })
    .await
}

/// A created case: Cabital's id and the partner's.
#[derive(Debug, Clone)]
struct CreatedCase {
    case_system_id: String,
    external_case_id: String,
}

fn first_second(subject: &str, what: &str, latencies: &[f64]) -> Option<FirstSecond> {
    if latencies.len() < 2 {
        return None;
    }
    Some(FirstSecond {
        subject: subject.into(),
        what: what.into(),
        first_ms: latencies[0],
        second_ms: latencies[1],
        warm_median_ms: median(&latencies[1..]),
    })
}

async fn cases_api_phase(
    plan: &Plan,
    env: &Env,
    fixtures: &Fixtures,
    program: &Program,
    results: &mut Results,
) -> Result<Vec<CreatedCase>, BoxError> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (mut api, _, _) = Running::launch(program, env, &[], &plan.logs).await?;
    let mut create_ms = Vec::new();
    let mut get_ms = Vec::new();
    let mut errors = 0;
    let mut cases = Vec::new();

    let create = async |api: &mut Running,
                        n: usize,
                        errors: &mut usize|
           -> Result<(f64, Option<CreatedCase>), BoxError> {
        let ext = format!("bench-{}-{n:05}", &run[..8]);
        let out = api.invoke(fixtures.create_case(&ext, &format!("create-{n}"))?, INVOKE_TIMEOUT).await?;
        let (status, body) = http_response(&out.body);
        let id = body.get("caseSystemId").and_then(Value::as_str).map(str::to_owned);
        match (out.ok && status == 201, id) {
            (true, Some(id)) => Ok((ms(out.latency), Some(CreatedCase { case_system_id: id, external_case_id: ext }))),
            _ => {
                *errors += 1;
                if *errors == 1 {
                    results_note(&format!(
                        "cases-api create answered {status}: {}",
                        String::from_utf8_lossy(&out.body)
                    ));
                }
                Ok((ms(out.latency), None))
            }
        }
    };

    // Alternating create and get: request 1 is the first create, 2 the first get.
    progress(&format!("cases-api: {} requests (create, get, ...)", plan.requests));
    let started = Instant::now();
    for n in 0..plan.requests / 2 {
        let (latency, case) = create(&mut api, n, &mut errors).await?;
        create_ms.push(latency);
        let Some(case) = case else { continue };
        let out = api.invoke(fixtures.get_case(&case.case_system_id, &format!("get-{n}"))?, INVOKE_TIMEOUT).await?;
        let (status, _) = http_response(&out.body);
        if !(out.ok && status == 200) {
            errors += 1;
        }
        get_ms.push(ms(out.latency));
        cases.push(case);
    }
    let wall = started.elapsed();
    results.rss.push(Rss { subject: "cases-api".into(), requests: plan.requests, peak_kib: api.peak_rss() });
    results.first_second.extend(first_second("cases-api", "create", &create_ms));
    results.first_second.extend(first_second("cases-api", "get", &get_ms));
    let mut all = create_ms.clone();
    all.extend(&get_ms);
    results.throughput.push(Throughput::from_latencies("cases-api create+get", &all, errors, wall));

    // More cases, not timed: one per webhook delivery.
    let wanted = plan.requests;
    progress(&format!("cases-api: {} more cases for the webhook run", wanted.saturating_sub(cases.len())));
    let mut n = plan.requests;
    while cases.len() < wanted && n < wanted * 2 {
        if let (_, Some(case)) = create(&mut api, n, &mut errors).await? {
            cases.push(case);
        }
        n += 1;
    }
    api.stop();
    if errors > 0 {
        results.problems.push(format!("cases-api: {errors} requests not answered 2xx (see the log)"));
    }
    Ok(cases)
}

/// Creates the reconcile run's cases through the cases API, at the reconcile sandbox.
async fn seed_reconcile(plan: &Plan, env: &Env, fixtures: &Fixtures) -> Result<usize, BoxError> {
    let extra = [("CABITAL_BASE_URL", plan.reconcile_sandbox_url.as_str())];
    let program = Program::binary("cases-api", plan.bin_dir.join("cases-api"));
    progress(&format!("cases-api: {} cases for the reconcile run (not screened yet)", plan.reconcile_cases));
    let (mut api, _, _) = Running::launch(&program, env, &extra, &plan.logs).await?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut created = 0;
    for n in 0..plan.reconcile_cases {
        let ext = format!("bench-rc-{}-{n:05}", &run[..8]);
        let out = api.invoke(fixtures.create_case(&ext, &format!("seed-{n}"))?, INVOKE_TIMEOUT).await?;
        let (status, _) = http_response(&out.body);
        created += usize::from(out.ok && status == 201);
    }
    api.stop();
    Ok(created)
}

fn results_note(message: &str) {
    eprintln!("==> bench: warning: {message}");
}

async fn sandbox_case(http: &reqwest::Client, base: &str, id: &str) -> Result<CaseState, BoxError> {
    let response = http.get(format!("{base}/_sandbox/cases/{id}")).send().await?.error_for_status()?;
    Ok(response.json::<CaseState>().await?)
}

async fn webhook_phase(
    plan: &Plan,
    env: &Env,
    fixtures: &Fixtures,
    http: &reqwest::Client,
    cases: &[CreatedCase],
    results: &mut Results,
) -> Result<(), BoxError> {
    // One delivery per case, saying what the sandbox says; signed before the clock
    // starts (the tolerance is minutes).
    let credential = Credential::new(plan.api_key.clone(), plan.api_secret.clone());
    let mut deliveries = Vec::with_capacity(cases.len());
    for case in cases {
        let state = sandbox_case(http, &plan.sandbox_url, &case.case_system_id).await?;
        let suggestion = state.case.suggestion.map(|s| s.as_wire()).unwrap_or("NO_SUGGESTION");
        let notification = json!({
            "caseSystemId": case.case_system_id,
            "caseSuggestion": suggestion,
            "comment": state.case.suggestion_comment,
            "externalCaseId": case.external_case_id,
        });
        deliveries.push(fixtures.webhook(&notification, &credential)?);
    }

    progress(&format!("webhook: {} signed deliveries", deliveries.len()));
    let program = Program::binary("webhook", plan.bin_dir.join("webhook"));
    let (mut hook, _, _) = Running::launch(&program, env, &[], &plan.logs).await?;
    let mut latencies = Vec::with_capacity(deliveries.len());
    let mut errors = 0;
    let started = Instant::now();
    for delivery in deliveries {
        let out = hook.invoke(delivery, INVOKE_TIMEOUT).await?;
        let (status, body) = http_response(&out.body);
        if !(out.ok && status == 200 && body.get("stored") == Some(&Value::Bool(true))) {
            errors += 1;
            if errors == 1 {
                results_note(&format!("webhook answered {status}: {}", String::from_utf8_lossy(&out.body)));
            }
        }
        latencies.push(ms(out.latency));
    }
    let wall = started.elapsed();
    results.rss.push(Rss { subject: "webhook".into(), requests: latencies.len(), peak_kib: hook.peak_rss() });
    hook.stop();
    results.first_second.extend(first_second("webhook", "delivery", &latencies));
    results.throughput.push(Throughput::from_latencies("webhook delivery", &latencies, errors, wall));
    if errors > 0 {
        results.problems.push(format!("webhook: {errors} deliveries not stored (see the log)"));
    }
    Ok(())
}

async fn reconcile_phase(
    plan: &Plan,
    env: &Env,
    fixtures: &Fixtures,
    http: &reqwest::Client,
    seeded: usize,
    results: &mut Results,
) -> Result<(), BoxError> {
    let limit = plan.rate_limit.to_string();
    let extra = [
        // Every case awaiting a suggestion is due now; the reconciler's own limit is
        // the sandbox's, as an operator would set it.
        ("RECONCILE_STALE_AFTER_SECS", "0"),
        ("RECONCILE_RATE_PER_SEC", limit.as_str()),
        ("CABITAL_BASE_URL", plan.reconcile_sandbox_url.as_str()),
    ];
    let program = Program::binary("reconcile", plan.bin_dir.join("reconcile"));
    let (mut reconcile, _, _) = Running::launch(&program, env, &extra, &plan.logs).await?;

    let faults = json!({"latencyMs": plan.latency_ms, "rateLimitPerSec": plan.rate_limit});
    let sandbox = plan.reconcile_sandbox_url.as_str();
    http.put(format!("{sandbox}/_sandbox/faults")).json(&faults).send().await?.error_for_status()?;
    let throttled_before = rate_limited(http, sandbox).await;
    progress(&format!(
        "reconcile: {seeded} cases awaiting, sandbox at {} ms and {}/s",
        plan.latency_ms, plan.rate_limit
    ));
    // Cabital's side of the run: its count of case reads, sampled, gives the pace while
    // checking, without the run's start (listing the indexes) and its tail.
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample_gets(http.clone(), sandbox.to_owned(), samples.clone()));
    let invoked = Instant::now();
    let out = reconcile.invoke(fixtures.schedule()?, RECONCILE_TIMEOUT).await;
    sampler.abort();
    let (checking_per_sec, first_read_ms) = samples
        .lock()
        .ok()
        .map(|s| (pace(&s), first_read(&s).map(|at| ms(at.saturating_duration_since(invoked)))))
        .unwrap_or((None, None));
    let throttled_after = rate_limited(http, sandbox).await;
    http.put(format!("{sandbox}/_sandbox/faults")).json(&json!({})).send().await?.error_for_status()?;
    let out = out?;
    results.rss.push(Rss { subject: "reconcile".into(), requests: 1, peak_kib: reconcile.peak_rss() });
    reconcile.stop();
    if !out.ok {
        return Err(format!("reconcile failed: {}", String::from_utf8_lossy(&out.body)).into());
    }
    let summary: Value = serde_json::from_slice(&out.body)?;
    let count = |k: &str| summary.get(k).and_then(Value::as_u64).unwrap_or(0) as usize;
    let duration_ms = summary.get("durationMs").and_then(Value::as_f64).unwrap_or_else(|| ms(out.latency));
    let checked = count("checked");
    results.reconcile = Some(Reconcile {
        seeded,
        checked,
        failed: count("failed"),
        skipped_for_time: count("skippedForTime"),
        duration_ms,
        per_sec: if duration_ms > 0.0 { checked as f64 * 1000.0 / duration_ms } else { 0.0 },
        rate_limit: plan.rate_limit,
        latency_ms: plan.latency_ms,
        throttled: throttled_after.zip(throttled_before).map(|(a, b)| a.saturating_sub(b)),
        checking_per_sec,
        first_read_ms,
    });
    Ok(())
}

/// How often the sandbox's counters are read during the reconcile run.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// Reads the sandbox's count of `GET /api/v1/cases/{id}` until aborted.
async fn sample_gets(http: reqwest::Client, base: String, into: std::sync::Arc<std::sync::Mutex<Vec<(Instant, u64)>>>) {
    loop {
        let count = async {
            let stats: Value = http.get(format!("{base}/_sandbox/stats")).send().await.ok()?.json().await.ok()?;
            stats.get("requests")?.get("GET /api/v1/cases/{caseSystemId}")?.as_u64()
        };
        let count = count.await.unwrap_or(0);
        if let Ok(mut samples) = into.lock() {
            samples.push((Instant::now(), count));
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// When the first read was seen.
fn first_read(samples: &[(Instant, u64)]) -> Option<Instant> {
    let base = samples.first()?.1;
    samples.iter().find(|(_, c)| *c > base).map(|(t, _)| *t)
}

/// Reads per second between the first sample that saw one and the first that saw
/// them all.
fn pace(samples: &[(Instant, u64)]) -> Option<f64> {
    let base = samples.first()?.1;
    let last = samples.last()?.1;
    let (t0, c0) = *samples.iter().find(|(_, c)| *c > base)?;
    let (t1, c1) = *samples.iter().find(|(_, c)| *c >= last)?;
    let secs = t1.saturating_duration_since(t0).as_secs_f64();
    (secs > 0.0 && c1 > c0).then(|| (c1 - c0) as f64 / secs)
}

async fn rate_limited(http: &reqwest::Client, base: &str) -> Option<u64> {
    let stats: Value = http.get(format!("{base}/_sandbox/stats")).send().await.ok()?.json().await.ok()?;
    stats.get("rateLimited").and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_runs_every_program_once_in_its_own_order() {
        let orders: Vec<Vec<usize>> = (0..=30).map(|r| round_order(r, 5)).collect();
        for o in &orders {
            let mut sorted = o.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3, 4]);
        }
        assert_eq!(orders, (0..=30).map(|r| round_order(r, 5)).collect::<Vec<_>>(), "seeded: the same each run");
        // Program 2 (cases-api) right after program 1 (the Python peer): in about a
        // fifth of the rounds, not in all of them as with one fixed order.
        let after = |a: usize, b: usize| orders.iter().filter(|o| o.windows(2).any(|w| w == [a, b])).count();
        let (follows, first) = (after(1, 2), orders.iter().filter(|o| o[0] == 2).count());
        assert!((2..=14).contains(&follows), "cases-api followed Python in {follows} of 31 rounds");
        assert!((2..=14).contains(&first), "cases-api ran first in {first} of 31 rounds");
    }

    #[test]
    fn pace_counts_from_the_first_read_to_the_last() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Nothing for 1 s (listing), then 10 reads per 100 ms, then the tail.
        let samples = [(at(0), 5), (at(1000), 5), (at(1100), 15), (at(1200), 25), (at(1300), 35), (at(1400), 35)];
        let pace = pace(&samples).unwrap_or(0.0);
        assert!((pace - 100.0).abs() < 1e-6, "{pace}");
        assert_eq!(first_read(&samples), Some(at(1100)));
        assert_eq!(pace_of_nothing(), None);
    }

    fn pace_of_nothing() -> Option<f64> {
        let t0 = Instant::now();
        pace(&[(t0, 3), (t0 + Duration::from_millis(20), 3)])
    }
}
