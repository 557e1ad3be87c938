//! The one table: every figure beside what it is compared with in the same run, the
//! target the issue sets and whether it is met. Markdown, for the README.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::results::{EXAMPLE_HELLO, FUNCTIONS, Init, LEAN_HELLO, Measure, Ratio, Results, vs_floor};

/// Sizes of one binary in one profile, from `run.sh`.
#[derive(Debug, Clone)]
pub struct Size {
    /// The profile (`release`, `opt-s`...).
    pub profile: String,
    /// Its settings, in words.
    pub settings: String,
    /// `cases-api`, `webhook`, `reconcile`, `hello-lean`, `hello`.
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

/// The table, row by row: the rows of one figure share its number, name and target.
struct Table {
    out: String,
    number: &'static str,
    figure: String,
    target: String,
}

impl Table {
    fn new() -> Self {
        let out = "| # | Figure | Subject | Measured | Compared with (same run) | Target | Met |\n\
                   |---|---|---|---|---|---|---|\n"
            .to_owned();
        Table { out, number: "", figure: String::new(), target: String::new() }
    }

    /// Starts the rows of a figure.
    fn figure(&mut self, number: &'static str, figure: &str, target: &str) {
        (self.number, self.figure, self.target) = (number, figure.to_owned(), target.to_owned());
    }

    /// A row of the current figure, judged against its target.
    fn row(&mut self, subject: &str, measured: &str, compared: &str, met: &str) {
        let cells = [self.number, &self.figure, subject, measured, compared, &self.target, met];
        let _ = writeln!(self.out, "| {} |", cells.join(" | "));
    }

    /// A row of the current figure shown for comparison, with no target.
    fn plain(&mut self, subject: &str, measured: &str, compared: &str) {
        let cells = [self.number, &self.figure, subject, measured, compared, "-", ""];
        let _ = writeln!(self.out, "| {} |", cells.join(" | "));
    }
}

fn init_of<'a>(init: &'a [Init], subject: &str, profile: &str) -> Option<&'a Init> {
    init.iter().find(|i| i.subject == subject && i.profile == profile)
}

fn is_floor(subject: &str) -> bool {
    subject == LEAN_HELLO || subject == EXAMPLE_HELLO
}

/// How the table names the two floors beside a ratio.
const LEAN_TEXT: &str = "the leanest hello (current-thread, no subscriber)";
const EXAMPLE_TEXT: &str = "the lambda_runtime example's";

/// The two floors of one set of init runs, for `measure`.
#[derive(Clone, Copy)]
struct Floors<'a> {
    lean: &'a Init,
    example: &'a Init,
    measure: Measure,
}

impl<'a> Floors<'a> {
    fn of(inits: &'a [Init], measure: Measure) -> Option<Self> {
        let floor = |name| init_of(inits, name, "release").filter(|i| i.median(measure) > 0.0);
        Some(Floors { lean: floor(LEAN_HELLO)?, example: floor(EXAMPLE_HELLO)?, measure })
    }

    /// `subject` over the leanest floor and over the example's, each paired by round.
    fn ratios(&self, subject: &Init) -> (Ratio, Ratio) {
        (vs_floor(subject, self.lean, self.measure), vs_floor(subject, self.example, self.measure))
    }

    /// "3.25x the leanest hello (current-thread, no subscriber), 2.21x the lambda_runtime
    /// example's (medians of 30 rounds' ratios; middle halves 3.10-3.40x and 2.10-2.30x)".
    fn text(&self, subject: &Init) -> String {
        let (lean, example) = self.ratios(subject);
        let mut text = format!("{:.2}x {LEAN_TEXT}, {:.2}x {EXAMPLE_TEXT}", lean.median, example.median);
        if lean.pairs > 0 && example.pairs > 0 {
            let _ = write!(
                text,
                " (medians of {} rounds' ratios; middle halves {:.2}-{:.2}x and {:.2}-{:.2}x)",
                lean.pairs, lean.low, lean.high, example.low, example.high
            );
        }
        text
    }

    /// Among the functions as they ship: the one furthest above the leanest floor.
    fn worst(&self, inits: &'a [Init]) -> Option<&'a Init> {
        let functions = FUNCTIONS.iter().filter_map(|f| init_of(inits, f, "release"));
        functions.max_by(|a, b| self.ratios(a).0.median.total_cmp(&self.ratios(b).0.median))
    }
}

/// How a set of init rows judges the functions.
#[derive(Clone, Copy, PartialEq)]
enum Judge {
    /// Against moto: the Python peer only (≤ 2x is about the functions' own init).
    Python,
    /// The functions' own init: ≤ 2x the leanest floor, and the Python peer.
    FloorAndPython,
    /// Time on CPU: shown, not judged.
    Nothing,
}

/// The init rows of one set of runs: the floors and the Python peer as measured, then
/// each function against all three, `extra` appended to its comparison.
fn init_rows(
    t: &mut Table,
    inits: &[Init],
    (figure, measure, judge): (&str, Measure, Judge),
    [lean_name, example_name, peer_name]: [&str; 3],
    extra: impl Fn(&Init) -> String,
) {
    let Some(floors) = Floors::of(inits, measure) else { return };
    let value = |i: &Init| i.median(measure);
    let target = match judge {
        Judge::Python => "≥ 5x faster than Python (≤ 2x the leanest hello: on the functions' own init)",
        Judge::FloorAndPython => "≤ 2x the leanest hello; ≥ 5x faster than Python",
        Judge::Nothing => "-",
    };
    t.figure("1", figure, target);
    t.plain(lean_name, &ms(value(floors.lean)), "-");
    let example_vs_lean = vs_floor(floors.example, floors.lean, measure).median;
    t.plain(example_name, &ms(value(floors.example)), &format!("{example_vs_lean:.2}x {LEAN_TEXT}"));
    let Some(python) = init_of(inits, "python", "-").filter(|p| value(p) > 0.0) else { return };
    t.plain(peer_name, &ms(value(python)), "-");
    for i in FUNCTIONS.iter().filter_map(|f| init_of(inits, f, "release").filter(|i| value(i) > 0.0)) {
        let vs_python = value(python) / value(i);
        let faster = met(vs_python >= 5.0);
        let (than_python, verdict) = match judge {
            Judge::Python => ("faster than", faster.to_owned()),
            Judge::FloorAndPython => ("faster than", format!("{} / {faster}", met(floors.ratios(i).0.median <= 2.0))),
            Judge::Nothing => ("less than", String::new()),
        };
        let compared = format!("{}; {vs_python:.1}x {than_python} Python{}", floors.text(i), extra(i));
        t.row(&i.subject, &ms(value(i)), &compared, &verdict);
    }
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
    let runs = |inits: &[Init]| inits.first().map(|i| i.runs_ms.len()).unwrap_or(0);
    let secret = results.moto_get_secret.as_ref().map(|s| s.p50_ms);
    init_rows(
        &mut t,
        &results.init,
        (&format!("Init: spawn to first `next` (median of {})", runs(&results.init)), Measure::Wall, Judge::Python),
        [
            "hello-world Rust, the leanest (`bench/hello-lean`: current-thread, no subscriber): the floor",
            "hello-world Rust, the `lambda_runtime` example's (`bench/hello`: multi-thread, default subscriber)",
            "Python peer (`bench/peers/python_init.py`, boto3)",
        ],
        |_| secret.map(|s| format!("; of it, moto's GetSecretValue alone: {}", ms(s))).unwrap_or_default(),
    );

    // The same programs against AWS answering at once: the functions' own init.
    let instant_figure = format!(
        "Init, the functions' own: spawn to first `next`, AWS answering at once (`bench/src/instant_aws.rs`; median \
         of {})",
        runs(&results.init_instant)
    );
    let instant_cpu = Floors::of(&results.init_instant, Measure::Cpu);
    init_rows(
        &mut t,
        &results.init_instant,
        (&instant_figure, Measure::Wall, Judge::FloorAndPython),
        [
            "hello-world Rust, the leanest: the floor (no AWS call)",
            "hello-world Rust, the `lambda_runtime` example's (no AWS call)",
            "Python peer (boto3)",
        ],
        |i| {
            let Some(f) = instant_cpu else { return String::new() };
            let (lean, example) = (ms(f.lean.cpu_median_ms), ms(f.example.cpu_median_ms));
            format!("; on CPU {} (the leanest hello {lean}, the example's {example})", ms(i.cpu_median_ms))
        },
    );

    // The same runs' time on CPU: what a small Lambda's init is bound by (Lambda gives
    // CPU in proportion to memory: one vCPU at 1,769 MB, the template's 128 MB a
    // fraction of one), and what no local emulator's answer time is part of.
    init_rows(
        &mut t,
        &results.init,
        (
            &format!("Init CPU: time on CPU at the first `next`, all threads (median of {})", runs(&results.init)),
            Measure::Cpu,
            Judge::Nothing,
        ),
        [
            "hello-world Rust, the leanest: the floor",
            "hello-world Rust, the `lambda_runtime` example's",
            "Python peer (boto3)",
        ],
        |_| String::new(),
    );

    let lean_init = init_of(&results.init, LEAN_HELLO, "release").map(|i| i.median_ms);
    let default_rng = results.rng_first.iter().find(|r| r.subject == "default");
    t.figure("1", "Not in the init above: the first TLS handshake's entropy (median of fresh processes)", "-");
    for r in &results.rng_first {
        let compared = match default_rng {
            Some(d) if d.subject != r.subject => format!("aws-lc's default build: {}", ms(d.median_ms)),
            _ => {
                lean_init.map(|h| format!("{:.1}x the leanest hello's whole init", r.median_ms / h)).unwrap_or_default()
            }
        };
        let build = if r.subject == "no-jitter" {
            "as the workspace builds it: no jitter entropy (`.cargo/config.toml`)"
        } else {
            "aws-lc's default build: CPU jitter entropy on"
        };
        let subject = format!("aws-lc's first 32 random bytes, {build} (`bench/rng-probe`)");
        t.row(&subject, &ms(r.median_ms), &compared, "see notes");
    }

    t.figure("2", "First vs second request (latency at the Runtime API)", "nothing left to set up at the first");
    for fs in &results.first_second {
        t.row(
            &format!("{} {}", fs.subject, fs.what),
            &format!("{} → {}", ms(fs.first_ms), ms(fs.second_ms)),
            &format!("first = {:.1}x the second; warm median {}", fs.first_ms / fs.second_ms, ms(fs.warm_median_ms)),
            "see notes",
        );
    }

    // RSS and sizes beside both floors, the leanest first.
    let beside_floors = |figure: &dyn Fn(&str) -> Option<String>| {
        [(LEAN_HELLO, "the leanest hello"), (EXAMPLE_HELLO, "the example's")]
            .iter()
            .filter_map(|(name, text)| figure(name).map(|f| format!("{text} {f}")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let rss_compared = beside_floors(&|name| {
        let r = results.rss.iter().find(|r| r.subject == name)?;
        Some(format!("{} over {} requests", mb(r.peak_kib as f64 * 1024.0), r.requests))
    });
    t.figure("3", "Peak RSS (`VmHWM`)", "≤ 32 MB");
    for r in results.rss.iter().filter(|r| !is_floor(&r.subject)) {
        let bytes = r.peak_kib as f64 * 1024.0;
        let what = if r.requests == 1 { "1 reconcile run".to_owned() } else { format!("{} requests", r.requests) };
        t.row(&format!("{} over {what}", r.subject), &mb(bytes), &rss_compared, met(bytes <= 32e6));
    }

    let both = |s: &Size| format!("{} / {}", mb(s.stripped as f64), mb(s.zipped as f64));
    let release = |subject: &str| sizes.iter().find(|s| s.profile == "release" && s.subject == subject);
    let size_compared = beside_floors(&|name| release(name).map(both));
    for s in sizes.iter().filter(|s| !is_floor(&s.subject)) {
        let (figure, measured, compared) = if s.profile == "release" {
            ("Binary: stripped / `bootstrap` zipped".to_owned(), both(s), size_compared.clone())
        } else {
            let init = init_of(&results.init, &s.subject, &s.profile);
            let base_init = init_of(&results.init, &s.subject, "release");
            let mut measured = both(s);
            if let Some(i) = init {
                let _ = write!(measured, "; init {}", ms(i.median_ms));
            }
            let mut compared = release(&s.subject)
                .map(|b| format!("release: {} (x{:.2})", mb(b.stripped as f64), s.stripped as f64 / b.stripped as f64))
                .unwrap_or_default();
            if let (Some(i), Some(bi), false) = (init, base_init, compared.is_empty()) {
                let _ = write!(compared, "; init x{:.2}", i.median_ms / bi.median_ms);
            }
            (format!("Profile `{}`: {}", s.profile, s.settings), measured, compared)
        };
        t.figure("4", &figure, "≤ 8 MB stripped");
        t.row(&s.subject, &measured, &compared, met(s.stripped as f64 <= 8e6));
    }

    if let Some(ns) = criterion_median_ns(criterion, "webhook_intake") {
        let parts: Vec<String> = ["verify", "webhook_parse", "webhook_sha256"]
            .iter()
            .filter_map(|id| criterion_median_ns(criterion, id).map(|ns| format!("{id} {}", time_ns(ns))))
            .collect();
        t.figure("5", "Webhook intake CPU per delivery, no I/O (criterion median)", "-");
        t.plain("verify + parse + SHA-256", &time_ns(ns), &parts.join("; "));
    }
    let floors: Vec<String> = [
        results.moto_get_item.as_ref().map(|f| ("a bare moto GetItem", f)),
        results.moto_transact.as_ref().map(|f| ("a one-item TransactWriteItems on the same table", f)),
    ]
    .into_iter()
    .flatten()
    .map(|(what, f)| format!("{what}: p50 {}, p99 {}", ms(f.p50_ms), ms(f.p99_ms)))
    .collect();
    for tp in &results.throughput {
        let n = if tp.subject.starts_with("webhook") { "5" } else { "2" };
        let errors = if tp.errors > 0 { format!("; **{} errors**", tp.errors) } else { String::new() };
        t.figure(n, "One process, requests one after another, against moto + sandbox", "-");
        t.plain(
            &format!("{} x{}", tp.subject, tp.requests),
            &format!("{:.0}/s; p50 {}, p99 {}{errors}", tp.per_sec, ms(tp.p50_ms), ms(tp.p99_ms)),
            &floors.join("; "),
        );
    }

    if let Some(r) = &results.reconcile {
        let limit = f64::from(r.rate_limit);
        let fraction = r.per_sec / limit;
        let all = r.checked == r.seeded;
        let figure = format!("Reconcile vs sandbox at {} ms latency, {}/s limit", r.latency_ms, r.rate_limit);
        t.figure("6", &figure, "≥ 90 % of the limit");
        t.row(
            &format!("{} cases awaiting, not yet screened at Cabital (unchanged path), 1 run", r.seeded),
            &format!("{:.1} cases/s = {:.0} % of the limit over the whole run", r.per_sec, fraction * 100.0),
            &format!(
                "checked {}, failed {}, skipped {}; {:.1} s; {} throttled (429)",
                r.checked,
                r.failed,
                r.skipped_for_time,
                r.duration_ms / 1000.0,
                r.throttled.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
            ),
            met(fraction >= 0.9 && all),
        );
        if let Some(pace) = r.checking_per_sec {
            t.figure("6", "Reconcile, same run, while checking", "≥ 90 % of the limit");
            t.row(
                "cases read at Cabital per second, first read to last (sandbox counters, every 20 ms)",
                &format!("{:.1} cases/s = {:.0} % of the limit", pace, pace / limit * 100.0),
                "the whole run's figure above includes the start: listing the indexes, from moto",
                met(pace / limit >= 0.9 && all),
            );
        }
    }

    t.figure("7", "Micro-benchmark (criterion median)", "-");
    for (id, what) in MICRO.iter().filter(|(id, _)| *id != "webhook_intake") {
        if let Some(ns) = criterion_median_ns(criterion, id) {
            t.plain(what, &time_ns(ns), &format!("{:.0}/s on one core", 1e9 / ns));
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
         round) after one untimed warm-up round; a function's ratio to a floor is the median of the rounds' \
         ratios. Each function fetches its secret during init, the Python peer too. Latencies are from the event \
         handed out by the local Runtime API to the result posted back.\n",
    );
    out
}

/// The init finding: against moto, the functions' own (AWS answering at once), on CPU,
/// each beside both floors; `None` without the floors.
fn init_finding(results: &Results) -> Option<String> {
    let floors = Floors::of(&results.init, Measure::Wall)?;
    let worst = floors.worst(&results.init)?;
    let item = results.moto_get_item.as_ref().map(|s| s.p50_ms);
    let secret = results.moto_get_secret.as_ref().map(|s| s.p50_ms);
    let or_unknown = |v: Option<f64>| v.map(ms).unwrap_or_else(|| "?".into());
    let mut note = format!(
        "Init against moto: {} at worst ({}), {}. What the functions do that hello does not: read and check \
         their settings, build the SDK's configuration and clients and the Cabital client (roots compiled in: no \
         certificate read from disk), then, together, fetch the secret (GetSecretValue), open DynamoDB with a \
         warm-up GetItem and Cabital with a warm-up HEAD. moto is Python and serves one request at a time, so its \
         two answers come one after the other: GetSecretValue alone {}, GetItem alone {}.",
        ms(worst.median_ms),
        worst.subject,
        floors.text(worst),
        or_unknown(secret),
        or_unknown(item),
    );
    if let Some(own) = Floors::of(&results.init_instant, Measure::Wall)
        && let Some(w) = own.worst(&results.init_instant)
    {
        let lean = own.ratios(w).0.median;
        let _ = write!(
            note,
            " Measured again in the same run with AWS answering at once (`bench/src/instant_aws.rs`: the same two \
             calls, signed by the same SDK over the same HTTP, {} answered), the functions' own init is {} at \
             worst ({}) against {} for the leanest hello and {} for the example's: {}. The ≤ 2x target is judged \
             against the leanest floor, which runs what the functions run (tokio's current-thread runtime) and no \
             more: {}.",
            results.instant_aws_answered,
            ms(w.median_ms),
            w.subject,
            ms(own.lean.median_ms),
            ms(own.example.median_ms),
            own.text(w),
            if lean <= 2.0 { "met" } else { "not met" },
        );
    }
    if let Some(cpu) = Floors::of(&results.init, Measure::Cpu)
        && let Some(w) = cpu.worst(&results.init)
    {
        let (lean, example) = cpu.ratios(w);
        let _ = write!(
            note,
            " On CPU the init takes {} at most ({}) against {} and {} ({:.1}x and {:.1}x): what a 128 MB Lambda, \
             with a fraction of a vCPU, pays for it.",
            ms(w.cpu_median_ms),
            w.subject,
            ms(cpu.lean.cpu_median_ms),
            ms(cpu.example.cpu_median_ms),
            lean.median,
            example.median,
        );
    }
    // The floors' gap on the quietest figures: no moto in the runs, and CPU.
    let gaps: Vec<String> = [
        (&results.init_instant, Measure::Wall, "the leanest with AWS answering at once"),
        (&results.init, Measure::Cpu, "on CPU"),
    ]
    .into_iter()
    .filter_map(|(inits, measure, what)| {
        let f = Floors::of(inits, measure)?;
        let (example, lean) = (f.example.median(measure), f.lean.median(measure));
        let gap = vs_floor(f.example, f.lean, measure).median;
        Some(format!("{gap:.1}x {what} ({} against {})", ms(example), ms(lean)))
    })
    .collect();
    let _ = write!(
        note,
        " The example's hello is {}: it starts tokio's worker threads, which the functions do not (they \
         run the current-thread runtime), and the default tracing subscriber (the functions' JSON subscriber is \
         part of their own init). On Lambda the floor itself is ~14 ms (the issue's anchor), which makes these \
         milliseconds a smaller share.",
        gaps.join(" and "),
    );
    Some(note)
}

/// What the figures say, in words, from this run's numbers.
fn findings(results: &Results, sizes: &[Size]) -> String {
    let mut notes: Vec<String> = init_finding(results).into_iter().collect();
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
    let too_big = sizes.iter().any(|s| s.profile == "release" && !is_floor(&s.subject) && s.stripped as f64 > 8e6);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn init(subject: &str, runs_ms: &[f64], cpu_ms: f64) -> Init {
        Init {
            subject: subject.into(),
            profile: if subject == "python" { "-" } else { "release" }.into(),
            runs_ms: runs_ms.to_vec(),
            median_ms: crate::results::median(runs_ms),
            cpu_runs_ms: vec![cpu_ms; runs_ms.len()],
            cpu_median_ms: cpu_ms,
            rounds: (1..=runs_ms.len()).collect(),
        }
    }

    #[test]
    fn each_function_is_judged_against_the_leanest_floor_and_shown_against_both() {
        let inits = vec![
            init(LEAN_HELLO, &[1.0, 1.0], 0.9),
            init(EXAMPLE_HELLO, &[1.5, 1.5], 1.8),
            init("python", &[300.0, 300.0], 290.0),
            init("cases-api", &[3.3, 3.3], 3.1),
            init("webhook", &[1.8, 1.8], 1.7),
        ];
        let results = Results { init: inits.clone(), init_instant: inits, ..Results::default() };
        let table = render(&results, &[], Path::new("/nonexistent"), &Meta::default());
        let row = |figure: &str, subject: &str| {
            let cells = |l: &str| l.split(" | ").map(str::to_owned).collect::<Vec<_>>();
            table
                .lines()
                .map(cells)
                .find(|c| c.len() > 6 && c[1].starts_with(figure) && c[2].starts_with(subject))
                .unwrap_or_default()
        };
        let own = row("Init, the functions' own", "cases-api");
        assert!(
            own[4].starts_with(
                "3.30x the leanest hello (current-thread, no subscriber), 2.20x the lambda_runtime example's"
            ),
            "{own:?}"
        );
        assert_eq!(own[6], "**no** / yes |");
        assert_eq!(row("Init, the functions' own", "webhook")[6], "yes / yes |");
        let cpu = row("Init CPU", "cases-api");
        assert!(
            cpu[4].starts_with(
                "3.44x the leanest hello (current-thread, no subscriber), 1.72x the lambda_runtime example's"
            ),
            "{cpu:?}"
        );
        assert!(row("Init: spawn", "hello-world Rust, the `lambda_runtime`")[4].starts_with("1.50x the leanest hello"));
        assert!(table.contains("not met"), "the finding says the target is not met");
    }
}
