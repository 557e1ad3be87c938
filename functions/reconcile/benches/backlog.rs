//! Benchmark: a backlog of stale cases (default 10,000), all awaiting a suggestion past
//! `stale_after`, against the sandbox answering with 50 ms latency. Prints how many
//! cases one invocation settled, in how long, and what fraction of the configured rate
//! limit that is. A figure to read, not a timed assertion.
//!
//! ```text
//! MOTO_ENDPOINT=http://127.0.0.1:5577 cargo bench -p gateway-reconcile --bench backlog --profile dev -- [cases] [rate/s] [concurrency]
//! ```
//! (or `BENCH_CASES`, `BENCH_RATE`, `BENCH_CONCURRENCY`; defaults 10000, 200, 16).
//! `--profile dev` skips the release profile's LTO build; the run waits on I/O.
//!
//! What each case costs here is what it costs in production: one rate-limited `GET`
//! at Cabital, then the versioned write (two consistent reads and one conditional
//! update). By default Cabital has not screened the cases yet (as when its answer is
//! still due), so each check is a plain conditional update: moto copies the whole
//! table for every transaction, which makes a change (a transaction with its event)
//! cost seconds per case on a 10,000-case table there, against milliseconds on
//! DynamoDB. `BENCH_SUGGESTED=1` has Cabital answer with a suggestion, so every check
//! is a change; use it with a few hundred cases.
//!
//! Seeding: see `tests/it/common/seed.rs` (the first case through the store, the others
//! copies of its item, written in batches).
//!
//! The store's client sends one request at a time through gateway-support (moto applies
//! concurrent transactions unsafely), with the store's timeouts raised: moto answers an
//! index query by scanning the whole table (about 3 s for a page of 1,000 on 10,000
//! items), where DynamoDB takes milliseconds. So moto bounds the figure from below; the
//! line "one index page" shows its share.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

#[path = "../tests/it/common/seed.rs"]
mod seed;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::StalledStreamProtectionConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use futures::{StreamExt, TryStreamExt};
use gateway_cabital::{Case, validate_new_case};
use gateway_sandbox::Faults;
use gateway_service::{Gateway, ReconcileSettings};
use gateway_store::Store;
use time::OffsetDateTime;

/// The longest a Lambda invocation may run.
const LAMBDA_MAX: Duration = Duration::from_secs(900);
/// Sandbox latency on every API answer while reconciling.
const LATENCY_MS: u64 = 50;

fn param(position: usize, env: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    args.get(position)
        .cloned()
        .or_else(|| std::env::var(env).ok())
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{env} / argument {position} must be a number, got {v}")))
        .unwrap_or(default)
}

/// gateway-support's moto client (one request at a time), with timeouts long enough for
/// moto's index queries on a large table.
async fn patient_dynamodb() -> aws_sdk_dynamodb::Client {
    let sdk = gateway_support::aws_config().await;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(300))
        .operation_timeout(Duration::from_secs(600))
        .build();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .timeout_config(timeouts)
        // moto thinks for seconds before the first byte of a large page.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn body(run: &str, n: usize) -> serde_json::Value {
    serde_json::json!({
        "externalCaseId": format!("bench-{run}-{n}"),
        "screenType": "INDIVIDUAL",
        "fullName": if n.is_multiple_of(3) { format!("Sanctioned {n}") } else { format!("Jane Doe {n}") },
        "individualInfo": {"gender": "FEMALE", "dob": "1990-03-04", "nationality": "JPN", "residentialCountry": "HKG"},
        "organizationInfo": {}
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cases = param(0, "BENCH_CASES", 10_000).max(1);
    let rate = param(1, "BENCH_RATE", 200);
    let concurrency = param(2, "BENCH_CONCURRENCY", 16);
    let suggested = std::env::var("BENCH_SUGGESTED").is_ok_and(|v| v == "1");

    let h = gateway_support::harness(|cfg| {
        cfg.webhook_url = None;
        // Unscreened for the length of the run, unless asked otherwise.
        cfg.screening_delay_ms = if suggested { 0 } else { 86_400_000 };
    })
    .await;
    let store = Store::new(patient_dynamodb().await, h.store.table_name());
    let gateway = &Gateway { store: store.clone(), ..h.gateway.clone() };
    let store = &store;
    let today = OffsetDateTime::now_utc().date();
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();

    // The cases at Cabital.
    let seeding = Instant::now();
    let at_cabital: Vec<Case> = futures::stream::iter(0..cases)
        .map(|n| {
            let case = validate_new_case(&body(&run, n), today);
            async move {
                let case = case.map_err(|e| format!("an invalid case: {e}"))?;
                let answer = gateway
                    .cabital
                    .create_case(&case)
                    .await
                    .map_err(|e| format!("the sandbox did not create a case: {e}"))?;
                answer.case().cloned().ok_or_else(|| "the sandbox did not give the case's id".to_owned())
            }
        })
        .buffered(16)
        .try_collect()
        .await?;

    let first = validate_new_case(&body(&run, 0), today).map_err(|e| format!("an invalid case: {e}"))?;
    seed::seed_awaiting(store, &first, &at_cabital).await;
    println!("seeded {cases} awaiting cases in {:.1} s", seeding.elapsed().as_secs_f64());

    let listing = Instant::now();
    let page = store.awaiting_since_before(OffsetDateTime::now_utc(), 1000).await?;
    println!("one index page ({} entries, 8 shard queries): {:.1} s", page.len(), listing.elapsed().as_secs_f64());

    h.sandbox.set_faults(Faults { latency_ms: LATENCY_MS, ..Faults::default() })?;
    let settings = ReconcileSettings {
        stale_after: Duration::ZERO,
        refresh_grace: Duration::ZERO,
        rate_per_sec: u32::try_from(rate)?,
        concurrency,
        ..ReconcileSettings::default()
    };
    let started = Instant::now();
    let summary = gateway.reconcile(&settings, started + LAMBDA_MAX).await?;
    let took = started.elapsed().as_secs_f64();
    let gets = h.sandbox.stats().requests.get("GET /api/v1/cases/{caseSystemId}").copied().unwrap_or(0);
    let left = store.awaiting_since_before(OffsetDateTime::now_utc() - time::Duration::hours(1), 1).await?;

    let per_sec = summary.checked as f64 / took;
    println!(
        "settings: rate {rate}/s, concurrency {concurrency}, Cabital latency {LATENCY_MS} ms, {} path, budget {} s",
        if suggested { "changed (transaction + event)" } else { "unchanged (conditional update)" },
        LAMBDA_MAX.as_secs()
    );
    println!(
        "one invocation: found {}, checked {}, changed {}, unchanged {}, failed {}, skipped for time {}, {gets} GETs, {took:.1} s",
        summary.found, summary.checked, summary.changed, summary.unchanged, summary.failed, summary.skipped_for_time
    );
    println!(
        "throughput: {per_sec:.1} cases/s = {:.0} % of the rate limit ({cases} cases need {:.0} s at the full rate)",
        100.0 * per_sec / rate as f64,
        cases as f64 / rate as f64
    );
    println!(
        "left for the next run: {}",
        if summary.checked == cases && left.is_empty() {
            "nothing".to_owned()
        } else {
            format!("{} cases", cases - summary.checked)
        }
    );
    // moto keeps every table in memory for its life: leave nothing behind.
    if let Err(e) = h.store.client().delete_table().table_name(h.store.table_name()).send().await {
        eprintln!("could not delete table {}: {e:?}", h.store.table_name());
    }
    Ok(())
}
