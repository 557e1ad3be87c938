//! The one table: every figure beside what it is compared with in the same run, the
//! target the issue sets and whether it is met. Markdown, for the README.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::results::{Init, Ratio, Results, paired_ratio};

/// Sizes of one binary in one profile, from `run.sh`.
#[derive(Debug, Clone)]
pub struct Size {
    /// The profile (`release`, `opt-s`...).
    pub profile: String,
    /// Its settings, in words.
    pub settings: String,
    /// `cases-api`, `webhook`, `reconcile`, `hello`.
    pub subject: String,
    /// The stripped binary.
    pub stripped: u64,
    /// `bootstrap` zipped as SAM ships it.
    pub zipped: u64,
}

/// Reads `profile<TAB>settings<TAB>subject<TAB>bytes<TAB>zip bytes` lines.
pub fn read_sizes(path: &Path) -> Vec<Size> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                [profile, settings, subject, stripped, zipped] => Some(Size {
                    profile: (*profile).to_owned(),
                    settings: (*settings).to_owned(),
                    subject: (*subject).to_owned(),
                    stripped: stripped.parse().ok()?,
                    zipped: zipped.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The micro-benchmarks, by criterion id, with what each one does.
pub const MICRO: &[(&str, &str)] = &[
    ("webhook_intake", "webhook intake CPU: verify + parse + SHA-256 of one delivery"),
    ("verify", "verify a signed webhook (HMAC-SHA256, constant-time compare)"),
    ("webhook_parse", "parse `WebhookNotification` (serde)"),
    ("webhook_sha256", "SHA-256 of the body (`request_hash`)"),
    ("sign", "sign a create request (the provider's sample body)"),
    ("validate_new_case", "`validate_new_case` on the provider's sample"),
];

/// Criterion's median for `id`, nanoseconds.
pub fn criterion_median_ns(dir: &Path, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(id).join("new").join("estimates.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("median")?.get("point_estimate")?.as_f64()
}

/// What `run.sh` knows and the runner does not.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// `key=value` pairs: `rustc`, `commit`, `boto3`, `took`...
    pub values: BTreeMap<String, String>,
}

impl Meta {
    fn get(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("?")
    }
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

fn ms(v: f64) -> String {
    if v < 10.0 { format!("{v:.2} ms") } else { format!("{v:.1} ms") }
}

fn time_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

struct Table {
    out: String,
}

impl Table {
    fn new() -> Self {
        let mut out = String::new();
        out.push_str("| # | Figure | Subject | Measured | Compared with (same run) | Target | Met |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        Table { out }
    }

    /// One row: number, figure, subject, measured, compared with, target, met.
    fn row(&mut self, cells: [&str; 7]) {
        let _ = writeln!(self.out, "| {} |", cells.join(" | "));
    }
}

fn init_of<'a>(init: &'a [Init], subject: &str, profile: &str) -> Option<&'a Init> {
    init.iter().find(|i| i.subject == subject && i.profile == profile)
}

/// The markdown: a header naming the machine and build, the table, notes.
pub fn render(results: &Results, sizes: &[Size], criterion: &Path, meta: &Meta) -> String {
    let m = &results.machine;
    let mut out = String::new();
    let _ = writeln!(out, "### Benchmarks ({})\n", meta.get("date"));
    let _ = writeln!(
        out,
        "Machine: {} ({} cores by `nproc`), {:.1} GiB RAM, Linux {} {}; 1-min load average {} at the start, {} at \
         the end (other builds share this machine: figures move with its load).  ",
        m.cpu,
        m.nproc,
        m.mem_mib as f64 / 1024.0,
        m.kernel,
        std::env::consts::ARCH,
        m.load_start,
        m.load_end,
    );
    let _ = writeln!(
        out,
        "Build: {}, release profile `{}`; commit {}. Peer: {} with boto3 {}. Local endpoints: moto {} \
         (one request at a time) and the Cabital sandbox, both plain HTTP on 127.0.0.1. Command: `./bench/run.sh`{}, \
         {} in all.\n",
        meta.get("rustc"),
        meta.get("release_profile"),
        meta.get("commit"),
        m.python,
        meta.get("boto3"),
        meta.get("moto"),
        meta.values.get("args").map(|a| format!(" `{a}`")).unwrap_or_default(),
        meta.get("took"),
    );

    let mut t = Table::new();
    let hello = init_of(&results.init, "hello", "release").map(|i| i.median_ms);
    let runs = results.init.first().map(|i| i.runs_ms.len()).unwrap_or(0);
    let secret = results.moto_get_secret.as_ref().map(|s| s.p50_ms);
    init_rows(
        &mut t,
        &results.init,
        &format!("Init: spawn to first `next` (median of {runs})"),
        ("hello-world Rust (`bench/hello`): the floor", "Python peer (`bench/peers/python_init.py`, boto3)"),
        false,
        |_| secret.map(|s| format!("; of it, moto's GetSecretValue alone: {}", ms(s))).unwrap_or_default(),
    );

    // The same programs against AWS answering at once: the functions' own init.
    let iruns = results.init_instant.first().map(|i| i.runs_ms.len()).unwrap_or(0);
    let hello_instant_cpu = init_of(&results.init_instant, "hello", "release").map(|h| h.cpu_median_ms);
    init_rows(
        &mut t,
        &results.init_instant,
        &format!(
            "Init, the functions' own: spawn to first `next`, AWS answering at once (`bench/src/instant_aws.rs`; \
             median of {iruns})"
        ),
        ("hello-world Rust: the floor (no AWS call)", "Python peer (boto3)"),
        true,
        |i| format!("; on CPU {} (hello {})", ms(i.cpu_median_ms), hello_instant_cpu.map(ms).unwrap_or_default()),
    );

    // The same runs' time on CPU: what a small Lambda's init is bound by (Lambda gives
    // CPU in proportion to memory: one vCPU at 1,769 MB, the template's 128 MB a
    // fraction of one), and what no local emulator's answer time is part of.
    let cpu_fig = format!("Init CPU: time on CPU at the first `next`, all threads (median of {runs})");
    let hello_cpu = init_of(&results.init, "hello", "release").map(|i| i.cpu_median_ms).filter(|c| *c > 0.0);
    let python_cpu = init_of(&results.init, "python", "-").map(|i| i.cpu_median_ms).filter(|c| *c > 0.0);
    if let Some(h) = hello_cpu {
        t.row(["1", &cpu_fig, "hello-world Rust: the floor", &ms(h), "-", "-", ""]);
    }
    if let Some(p) = python_cpu {
        t.row(["1", &cpu_fig, "Python peer (boto3)", &ms(p), "-", "-", ""]);
    }
    for f in ["cases-api", "webhook", "reconcile"] {
        let Some(i) = init_of(&results.init, f, "release").filter(|i| i.cpu_median_ms > 0.0) else { continue };
        let (Some(h), Some(p)) = (hello_cpu, python_cpu) else { continue };
        t.row([
            "1",
            &cpu_fig,
            f,
            &ms(i.cpu_median_ms),
            &format!("{:.1}x hello; {:.1}x less than Python", i.cpu_median_ms / h, p / i.cpu_median_ms),
            "-",
            "",
        ]);
    }

    let default_rng = results.rng_first.iter().find(|r| r.subject == "default");
    for r in &results.rng_first {
        let compared = match default_rng {
            Some(d) if d.subject != r.subject => format!("aws-lc's default build: {}", ms(d.median_ms)),
            _ => hello.map(|h| format!("{:.1}x the hello floor's whole init", r.median_ms / h)).unwrap_or_default(),
        };
        t.row([
            "1",
            "Not in the init above: the first TLS handshake's entropy (median of fresh processes)",
            &format!(
                "aws-lc's first 32 random bytes, {} (`bench/rng-probe`)",
                if r.subject == "no-jitter" {
                    "as the workspace builds it: no jitter entropy (`.cargo/config.toml`)"
                } else {
                    "aws-lc's default build: CPU jitter entropy on"
                }
            ),
            &ms(r.median_ms),
            &compared,
            "-",
            "see notes",
        ]);
    }

    for fs in &results.first_second {
        t.row([
            "2",
            "First vs second request (latency at the Runtime API)",
            &format!("{} {}", fs.subject, fs.what),
            &format!("{} → {}", ms(fs.first_ms), ms(fs.second_ms)),
            &format!("first = {:.1}x the second; warm median {}", fs.first_ms / fs.second_ms, ms(fs.warm_median_ms)),
            "nothing left to set up at the first",
            "see notes",
        ]);
    }

    let hello_rss = results.rss.iter().find(|r| r.subject == "hello");
    for r in results.rss.iter().filter(|r| r.subject != "hello") {
        let bytes = r.peak_kib as f64 * 1024.0;
        let what = if r.requests == 1 { "1 reconcile run".to_owned() } else { format!("{} requests", r.requests) };
        t.row([
            "3",
            "Peak RSS (`VmHWM`)",
            &format!("{} over {what}", r.subject),
            &mb(bytes),
            &hello_rss
                .map(|h| format!("hello {} over {} requests", mb(h.peak_kib as f64 * 1024.0), h.requests))
                .unwrap_or_default(),
            "≤ 32 MB",
            met(bytes <= 32e6),
        ]);
    }

    let release_hello = sizes.iter().find(|s| s.profile == "release" && s.subject == "hello");
    for s in sizes.iter().filter(|s| s.profile == "release" && s.subject != "hello") {
        t.row([
            "4",
            "Binary: stripped / `bootstrap` zipped",
            &s.subject,
            &format!("{} / {}", mb(s.stripped as f64), mb(s.zipped as f64)),
            &release_hello
                .map(|h| format!("hello {} / {}", mb(h.stripped as f64), mb(h.zipped as f64)))
                .unwrap_or_default(),
            "≤ 8 MB stripped",
            met(s.stripped as f64 <= 8e6),
        ]);
    }
    let mut profiles: Vec<(&str, &str)> =
        sizes.iter().filter(|s| s.profile != "release").map(|s| (s.profile.as_str(), s.settings.as_str())).collect();
    profiles.dedup();
    for (profile, settings) in profiles {
        for s in sizes.iter().filter(|s| s.profile == profile && s.subject != "hello") {
            let base = sizes.iter().find(|b| b.profile == "release" && b.subject == s.subject);
            let init = init_of(&results.init, &s.subject, profile);
            let base_init = init_of(&results.init, &s.subject, "release");
            let mut measured = format!("{} / {}", mb(s.stripped as f64), mb(s.zipped as f64));
            if let Some(i) = init {
                let _ = write!(measured, "; init {}", ms(i.median_ms));
            }
            let compared = match (base, init, base_init) {
                (Some(b), Some(i), Some(bi)) => format!(
                    "release: {} (x{:.2}); init x{:.2}",
                    mb(b.stripped as f64),
                    s.stripped as f64 / b.stripped as f64,
                    i.median_ms / bi.median_ms
                ),
                (Some(b), _, _) => {
                    format!("release: {} (x{:.2})", mb(b.stripped as f64), s.stripped as f64 / b.stripped as f64)
                }
                _ => String::new(),
            };
            t.row([
                "4",
                &format!("Profile `{profile}`: {settings}"),
                &s.subject,
                &measured,
                &compared,
                "≤ 8 MB stripped",
                met(s.stripped as f64 <= 8e6),
            ]);
        }
    }

    let intake = criterion_median_ns(criterion, "webhook_intake");
    let parts: Vec<String> = ["verify", "webhook_parse", "webhook_sha256"]
        .iter()
        .filter_map(|id| criterion_median_ns(criterion, id).map(|ns| format!("{id} {}", time_ns(ns))))
        .collect();
    if let Some(ns) = intake {
        t.row([
            "5",
            "Webhook intake CPU per delivery, no I/O (criterion median)",
            "verify + parse + SHA-256",
            &time_ns(ns),
            &parts.join("; "),
            "-",
            "",
        ]);
    }
    let floor = results.moto_get_item.as_ref();
    for tp in &results.throughput {
        let n = if tp.subject.starts_with("webhook") { "5" } else { "2" };
        t.row([
            n,
            "One process, requests one after another, against moto + sandbox",
            &format!("{} x{}", tp.subject, tp.requests),
            &format!(
                "{:.0}/s; p50 {}, p99 {}{}",
                tp.per_sec,
                ms(tp.p50_ms),
                ms(tp.p99_ms),
                if tp.errors > 0 { format!("; **{} errors**", tp.errors) } else { String::new() }
            ),
            &[
                floor.map(|f| format!("a bare moto GetItem: p50 {}, p99 {}", ms(f.p50_ms), ms(f.p99_ms))),
                results.moto_transact.as_ref().map(|f| {
                    format!(
                        "a one-item TransactWriteItems on the same table: p50 {}, p99 {}",
                        ms(f.p50_ms),
                        ms(f.p99_ms)
                    )
                }),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; "),
            "-",
            "",
        ]);
    }

    if let Some(r) = &results.reconcile {
        let limit = f64::from(r.rate_limit);
        let fraction = r.per_sec / limit;
        let all = r.checked == r.seeded;
        t.row([
            "6",
            &format!("Reconcile vs sandbox at {} ms latency, {}/s limit", r.latency_ms, r.rate_limit),
            &format!("{} cases awaiting, not yet screened at Cabital (unchanged path), 1 run", r.seeded),
            &format!("{:.1} cases/s = {:.0} % of the limit over the whole run", r.per_sec, fraction * 100.0),
            &format!(
                "checked {}, failed {}, skipped {}; {} s; {} throttled (429)",
                r.checked,
                r.failed,
                r.skipped_for_time,
                format_args!("{:.1}", r.duration_ms / 1000.0),
                r.throttled.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
            ),
            "≥ 90 % of the limit",
            met(fraction >= 0.9 && all),
        ]);
        if let Some(pace) = r.checking_per_sec {
            t.row([
                "6",
                "Reconcile, same run, while checking",
                "cases read at Cabital per second, first read to last (sandbox counters, every 20 ms)",
                &format!("{:.1} cases/s = {:.0} % of the limit", pace, pace / limit * 100.0),
                "the whole run's figure above includes the start: listing the indexes, from moto",
                "≥ 90 % of the limit",
                met(pace / limit >= 0.9 && all),
            ]);
        }
    }

    for (id, what) in MICRO.iter().filter(|(id, _)| *id != "webhook_intake") {
        if let Some(ns) = criterion_median_ns(criterion, id) {
            let per_sec = 1e9 / ns;
            t.row([
                "7",
                "Micro-benchmark (criterion median)",
                what,
                &time_ns(ns),
                &format!("{per_sec:.0}/s on one core"),
                "-",
                "",
            ]);
        }
    }
    out.push_str(&t.out);

    if !results.problems.is_empty() {
        out.push_str("\nProblems in this run:\n");
        for p in &results.problems {
            let _ = writeln!(out, "- {p}");
        }
    }
    out.push_str(&findings(results, sizes));
    out.push_str(
        "\nMB = 10^6 bytes. Init runs are interleaved (one of each program per round, in an order shuffled per \
         round) after one untimed warm-up round; a function's ratio to the floor is the median of the rounds' \
         ratios. Each function fetches its secret during init, the Python peer too. Latencies are from the event \
         handed out by the local Runtime API to the result posted back.\n",
    );
    out
}

/// The init rows of one set of runs: the floor and the Python peer as measured, then
/// each function against both, `extra` appended to its comparison. `own` is the set
/// the ≤ 2x target is checked on (the functions' own init); the other set shows its
/// ratio without a verdict on it.
fn init_rows(
    t: &mut Table,
    inits: &[Init],
    figure: &str,
    (floor, peer): (&str, &str),
    own: bool,
    extra: impl Fn(&Init) -> String,
) {
    let hello = init_of(inits, "hello", "release");
    let python = init_of(inits, "python", "-").map(|i| i.median_ms);
    if let Some(h) = hello {
        t.row(["1", figure, floor, &ms(h.median_ms), "-", "-", ""]);
    }
    if let Some(p) = python {
        t.row(["1", figure, peer, &ms(p), "-", "-", ""]);
    }
    for f in ["cases-api", "webhook", "reconcile"] {
        let Some(i) = init_of(inits, f, "release") else { continue };
        let (Some(h), Some(p)) = (hello, python) else { continue };
        let vs_hello = vs_floor(i, h);
        let vs_python = p / i.median_ms;
        let (target, verdict) = if own {
            (
                "≤ 2x hello; ≥ 5x faster than Python",
                format!("{} / {}", met(vs_hello.median <= 2.0), met(vs_python >= 5.0)),
            )
        } else {
            ("≥ 5x faster than Python (≤ 2x hello: on the functions' own init)", met(vs_python >= 5.0).to_owned())
        };
        t.row([
            "1",
            figure,
            f,
            &ms(i.median_ms),
            &format!("{}; {vs_python:.1}x faster than Python{}", ratio_text(&vs_hello), extra(i)),
            target,
            &verdict,
        ]);
    }
}

/// `subject`'s init over the floor's: paired by round when the runs say their rounds,
/// else (results of an older run) the ratio of the medians.
fn vs_floor(subject: &Init, floor: &Init) -> Ratio {
    paired_ratio(subject, floor).unwrap_or_else(|| {
        let r = subject.median_ms / floor.median_ms;
        Ratio { median: r, low: r, high: r, pairs: 0 }
    })
}

/// "1.91x hello (median of 30 rounds' ratios; middle half 1.66-2.06x)", or "1.9x hello"
/// for an older run's results, which do not say their rounds.
fn ratio_text(r: &Ratio) -> String {
    if r.pairs == 0 {
        return format!("{:.1}x hello", r.median);
    }
    format!("{:.2}x hello (median of {} rounds' ratios; middle half {:.2}-{:.2}x)", r.median, r.pairs, r.low, r.high)
}

/// What the figures say, in words, from this run's numbers.
fn findings(results: &Results, sizes: &[Size]) -> String {
    let mut notes = Vec::new();
    if let Some((h, worst, ratio)) = floor_and_worst(&results.init)
        && ratio > 2.0
    {
        let secret = results.moto_get_secret.as_ref().map(|s| ms(s.p50_ms)).unwrap_or_else(|| "?".into());
        let item = results.moto_get_item.as_ref().map(|s| s.p50_ms);
        let moto = results.moto_get_secret.as_ref().map(|s| s.p50_ms + item.unwrap_or(0.0));
        notes.push(format!(
            "Init is {:.1}x the hello floor at worst (median of the rounds' ratios; medians {} vs {}). What the functions do that hello does not: read \
             and check their settings, build the SDK's configuration and clients and the Cabital client (roots \
             compiled in: no certificate read from disk), then, together, fetch the secret (GetSecretValue), \
             open DynamoDB with a warm-up GetItem and Cabital with a warm-up HEAD. moto is Python and serves one \
             request at a time, so its two answers come one after the other: GetSecretValue alone {secret}, \
             GetItem alone {}, {} of the init is moto's{}. Secrets Manager and DynamoDB answer in milliseconds \
             too, but concurrently; on Lambda the floor itself is ~14 ms (the issue's anchor), which makes these \
             milliseconds a smaller share.{}{}",
            ratio,
            ms(worst),
            ms(h),
            item.map(ms).unwrap_or_else(|| "?".into()),
            moto.map(ms).unwrap_or_else(|| "?".into()),
            moto.map(|m| format!(" (without it: {:.1}x the floor)", (worst - m) / h)).unwrap_or_default(),
            instant_note(results),
            cpu_note(results),
        ));
    }
    let rng = |name: &str| results.rng_first.iter().find(|r| r.subject == name).map(|r| r.median_ms);
    if let Some(d) = rng("default")
        && d > 5.0
    {
        notes.push(format!(
            "Not visible in the local init (plain HTTP) but paid on Lambda, once per process, by the first TLS \
             handshake: aws-lc's CPU jitter entropy, {} in aws-lc's default build{}. The workspace builds aws-lc \
             without it (`AWS_LC_SYS_NO_JITTER_ENTROPY=1` in `.cargo/config.toml`, which `cargo lambda build` \
             and so `sam build` read too): the OS's getrandom and the CPU's RDRAND/RNDR remain its sources.",
            ms(d),
            rng("no-jitter").map(|n| format!(", {} as the workspace builds it", ms(n))).unwrap_or_default()
        ));
    }
    if !results.first_second.is_empty() {
        notes.push(
            "First vs second request: the init opens both connections the first request needs, DynamoDB (a \
             GetItem of a key no record uses) and Cabital (an unsigned HEAD of its base URL), concurrently with \
             the secret's fetch, so the first request finds the SDK's endpoint, identity and connection ready \
             and a pooled connection to Cabital (on Lambda: no TCP or TLS handshake left). Here moto closes \
             every connection, so its part of the first request is as the second's."
                .to_owned(),
        );
    }
    let too_big = sizes.iter().any(|s| s.profile == "release" && s.subject != "hello" && s.stripped as f64 > 8e6);
    if too_big {
        let alternatives: Vec<String> = sizes
            .iter()
            .filter(|s| s.profile != "release" && s.subject == "cases-api")
            .map(|s| format!("`{}` {}", s.profile, mb(s.stripped as f64)))
            .collect();
        notes.push(format!(
            "Size: opt-level 3 is over 8 MB (most of it the AWS SDK's generated code).{}",
            if alternatives.is_empty() {
                " Run with `--profiles` to measure opt-level \"s\" and \"z\".".to_owned()
            } else {
                format!(" cases-api with other profiles: {}.", alternatives.join(", "))
            }
        ));
    }
    if let Some(w) = results.throughput.iter().find(|t| t.subject.starts_with("webhook")) {
        notes.push(format!(
            "Webhook deliveries are bound by moto: each is about half a dozen DynamoDB requests (a transaction, \
             reads, a versioned update) plus one GET to the sandbox; moto serves one request at a time (a \
             one-item transaction {} on this table after the run, against milliseconds on DynamoDB). The handler's own CPU is the criterion figure, a few microseconds, against {} per \
             delivery here.",
            results.moto_transact.as_ref().map(|t| ms(t.p50_ms)).unwrap_or_else(|| "?".into()),
            ms(w.p50_ms)
        ));
    }
    if let Some(r) = &results.reconcile {
        let fraction = r.per_sec / f64::from(r.rate_limit);
        if fraction < 0.9 {
            let limit = f64::from(r.rate_limit);
            let pace = r.checking_per_sec.map(|p| p / limit);
            let mut note = format!(
                "Reconcile reached {:.0} % of the limit over the whole run{}. The reconciler's own limiter \
                 starts one check every {:.0} ms (with a tenth of a second's burst to make up for late starts), so \
                 {} cases take at least {:.1} s; the run took {:.1} s{}: before its first check it reads the first \
                 page of each of three indexes, eight shard queries each (four at a time per index), which moto \
                 answers one at a time, each by looking at every item of the table (a few concurrent round trips \
                 of milliseconds on DynamoDB), \
                 and it ends with the last checks' {} ms GET. A longer backlog amortises that (`BENCH_RECONCILE_CASES`; \
                 `functions/reconcile/benches/backlog.rs` runs thousands through the library).",
                fraction * 100.0,
                pace.map(|p| format!(" and {:.0} % while checking", p * 100.0)).unwrap_or_default(),
                1000.0 / limit,
                r.checked,
                r.checked as f64 / limit,
                r.duration_ms / 1000.0,
                r.first_read_ms
                    .map(|f| format!(", of which {} before Cabital saw its first read", ms(f)))
                    .unwrap_or_default(),
                r.latency_ms
            );
            if pace.is_some_and(|p| p < 0.95) {
                note.push_str(
                    " Below 95 % while checking: the machine's load delays the checks' tasks beyond what the \
                     limiter's small burst makes up for (see the load average above).",
                );
            }
            notes.push(note);
        }
    }
    if notes.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nFindings:\n");
    for n in notes {
        let _ = writeln!(out, "- {n}");
    }
    out
}

/// In a set of runs: the hello floor's median init, the slowest function's, and the
/// highest of the functions' ratios to the floor (paired by round); `None` without the
/// floor or a function.
fn floor_and_worst(inits: &[Init]) -> Option<(f64, f64, f64)> {
    let hello = init_of(inits, "hello", "release")?;
    let functions = ["cases-api", "webhook", "reconcile"].iter().filter_map(|f| init_of(inits, f, "release"));
    let worst = functions.clone().map(|i| i.median_ms).fold(0.0_f64, f64::max);
    let ratio = functions.map(|i| vs_floor(i, hello).median).fold(0.0_f64, f64::max);
    (worst > 0.0).then_some((hello.median_ms, worst, ratio))
}

/// The functions' own init (AWS answering at once) beside the floor's, for the init finding.
fn instant_note(results: &Results) -> String {
    match floor_and_worst(&results.init_instant) {
        Some((h, worst, ratio)) => format!(
            " Measured again in the same run with AWS answering at once (`bench/src/instant_aws.rs`: the same two \
             calls, signed by the same SDK over the same HTTP, {} answered), the functions' own init is {} at \
             worst against the floor's {} ({:.1}x at worst, as the median of the rounds' ratios): the figure the \
             ≤ 2x target is about, since what moto adds is its own time to answer, not the functions' work.",
            results.instant_aws_answered,
            ms(worst),
            ms(h),
            ratio
        ),
        None => String::new(),
    }
}

/// The init's time on CPU beside the floor's, for the init finding.
fn cpu_note(results: &Results) -> String {
    let cpu =
        |name: &str, profile: &str| init_of(&results.init, name, profile).map(|i| i.cpu_median_ms).filter(|c| *c > 0.0);
    let Some(h) = cpu("hello", "release") else { return String::new() };
    let worst = ["cases-api", "webhook", "reconcile"].iter().filter_map(|f| cpu(f, "release")).fold(0.0_f64, f64::max);
    if worst <= 0.0 {
        return String::new();
    }
    format!(
        " On CPU the init takes {} at most against the floor's {} ({:.1}x): what a 128 MB Lambda, with a \
         fraction of a vCPU, pays for it; the functions run tokio's current-thread runtime (no worker threads \
         to start) and build the SDK's HTTPS connector once, at the first request.",
        ms(worst),
        ms(h),
        worst / h
    )
}
