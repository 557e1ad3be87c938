//! What one run measured, kept as JSON between `measure` and `report`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Milliseconds, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median (mean of the two middle values for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `p`-th percentile by nearest rank (`p` in 0..=100); 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// The functions, by the names their binaries and rows have.
pub const FUNCTIONS: [&str; 3] = ["cases-api", "webhook", "reconcile"];
/// The strict floor: `bench/hello-lean` (current-thread, no subscriber), the one the
/// ≤ 2x target is judged against.
pub const LEAN_HELLO: &str = "hello-lean";
/// The `lambda_runtime` example's hello world (`bench/hello`), the second floor.
pub const EXAMPLE_HELLO: &str = "hello";

/// What an init ratio is taken on: spawn to first `next`, or time on CPU by then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// Wall time, spawn to first `next`.
    Wall,
    /// Time on CPU at the first `next`, all threads.
    Cpu,
}

/// Init times of one program: spawn to its first `next` request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Init {
    /// The program (`cases-api`, `hello-lean`, `hello`, `python`...).
    pub subject: String,
    /// The build profile (`release` for the workspace's own).
    pub profile: String,
    /// Each timed run, in milliseconds, in order.
    pub runs_ms: Vec<f64>,
    /// Their median.
    pub median_ms: f64,
    /// Each timed run's time on CPU until the first `next` (all threads), milliseconds.
    #[serde(default)]
    pub cpu_runs_ms: Vec<f64>,
    /// Their median.
    #[serde(default)]
    pub cpu_median_ms: f64,
    /// The round each of `runs_ms` was timed in (rounds interleave the programs), to
    /// pair a run with the floor's of the same round.
    #[serde(default)]
    pub rounds: Vec<usize>,
}

impl Init {
    /// The median of `measure`.
    pub fn median(&self, measure: Measure) -> f64 {
        match measure {
            Measure::Wall => self.median_ms,
            Measure::Cpu => self.cpu_median_ms,
        }
    }

    /// The runs of `measure`, one per entry of `rounds`; `None` when some run's CPU
    /// time was not read (then the runs cannot be paired by round).
    fn runs(&self, measure: Measure) -> Option<&[f64]> {
        let runs = match measure {
            Measure::Wall => &self.runs_ms,
            Measure::Cpu => &self.cpu_runs_ms,
        };
        (runs.len() == self.rounds.len()).then_some(runs.as_slice())
    }
}

/// `subject`'s init over `floor`'s, paired by round: each round's ratio is taken
/// between runs a few milliseconds apart, so a busy moment of the machine (it is
/// shared) weighs on both sides of it. The median ratio and the middle half's bounds
/// (25th and 75th percentiles); `None` without a common round.
pub fn paired_ratio(subject: &Init, floor: &Init, measure: Measure) -> Option<Ratio> {
    let floor_runs = floor.runs(measure)?;
    let ratios: Vec<f64> = subject
        .rounds
        .iter()
        .zip(subject.runs(measure)?)
        .filter_map(|(round, ms)| {
            let at = floor.rounds.iter().position(|r| r == round)?;
            let f = *floor_runs.get(at)?;
            (f > 0.0).then(|| ms / f)
        })
        .collect();
    if ratios.is_empty() {
        return None;
    }
    Some(Ratio {
        median: median(&ratios),
        low: percentile(&ratios, 25.0),
        high: percentile(&ratios, 75.0),
        pairs: ratios.len(),
    })
}

/// `subject`'s `measure` over `floor`'s: paired by round when the runs say their
/// rounds, else (an older run's results) the ratio of the medians, with no pairs.
pub fn vs_floor(subject: &Init, floor: &Init, measure: Measure) -> Ratio {
    paired_ratio(subject, floor, measure).unwrap_or_else(|| {
        let r = subject.median(measure) / floor.median(measure);
        Ratio { median: r, low: r, high: r, pairs: 0 }
    })
}

/// A ratio over paired runs: its median and middle half.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// The median of the rounds' ratios.
    pub median: f64,
    /// Their 25th percentile.
    pub low: f64,
    /// Their 75th percentile.
    pub high: f64,
    /// How many rounds had both runs.
    pub pairs: usize,
}

/// The first two invocations of one kind, and the median of the rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirstSecond {
    /// Which function.
    pub subject: String,
    /// Which request (`create`, `get`, `delivery`).
    pub what: String,
    /// The first of its kind in the process, milliseconds.
    pub first_ms: f64,
    /// The second, milliseconds.
    pub second_ms: f64,
    /// The median of all but the first, milliseconds.
    pub warm_median_ms: f64,
}

/// Peak RSS of a process after a run of requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rss {
    /// Which function.
    pub subject: String,
    /// Requests served before the reading.
    pub requests: usize,
    /// `VmHWM`, KiB.
    pub peak_kib: u64,
}

/// Requests served one after another by one process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    /// Which function and request.
    pub subject: String,
    /// How many.
    pub requests: usize,
    /// How many were not answered 2xx.
    pub errors: usize,
    /// From the first handed out to the last answered, milliseconds.
    pub wall_ms: f64,
    /// `requests / wall`.
    pub per_sec: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl Throughput {
    /// From latencies (ms), the error count and the wall time.
    pub fn from_latencies(subject: &str, latencies: &[f64], errors: usize, wall: Duration) -> Self {
        let wall_ms = ms(wall);
        Throughput {
            subject: subject.to_owned(),
            requests: latencies.len(),
            errors,
            wall_ms,
            per_sec: if wall_ms > 0.0 { latencies.len() as f64 * 1000.0 / wall_ms } else { 0.0 },
            p50_ms: percentile(latencies, 50.0),
            p99_ms: percentile(latencies, 99.0),
        }
    }
}

/// One reconcile invocation against the rate-limited, slow sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reconcile {
    /// Cases awaiting a suggestion, created for it.
    pub seeded: usize,
    /// The run's summary: cases asked about.
    pub checked: usize,
    /// Failed checks.
    pub failed: usize,
    /// Not started for lack of time.
    pub skipped_for_time: usize,
    /// The run's own duration, milliseconds.
    pub duration_ms: f64,
    /// Cases checked per second of the run.
    pub per_sec: f64,
    /// The sandbox's rate limit (and the reconciler's setting), per second.
    pub rate_limit: u32,
    /// The sandbox's added latency, milliseconds.
    pub latency_ms: u64,
    /// Requests the sandbox refused with 429 during the run.
    pub throttled: Option<u64>,
    /// Cases read at Cabital per second while checking (sampled from the sandbox's
    /// counters): the pace without the run's start and tail.
    pub checking_per_sec: Option<f64>,
    /// From the invocation to the first read seen at Cabital, milliseconds (within 20).
    pub first_read_ms: Option<f64>,
}

/// The machine and the build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// `nproc`.
    pub nproc: usize,
    /// From `/proc/cpuinfo`.
    pub cpu: String,
    /// Total memory, MiB.
    pub mem_mib: u64,
    /// Kernel release.
    pub kernel: String,
    /// `/proc/loadavg` (1 min) at the start and the end of the measurements.
    pub load_start: String,
    /// The same at the end.
    pub load_end: String,
    /// `python --version` of the peer.
    pub python: String,
}

/// Everything `measure` found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    /// Where and when.
    pub machine: Machine,
    /// UTC, RFC 3339.
    pub finished_at: String,
    /// Init of each program, each profile.
    pub init: Vec<Init>,
    /// Init of the two hellos, Python and the functions against AWS answering at once
    /// (`instant_aws`): the functions' own init.
    #[serde(default)]
    pub init_instant: Vec<Init>,
    /// Requests the instant endpoint answered during those runs.
    #[serde(default)]
    pub instant_aws_answered: u64,
    /// First against second request.
    pub first_second: Vec<FirstSecond>,
    /// Peak RSS.
    pub rss: Vec<Rss>,
    /// Served one after another.
    pub throughput: Vec<Throughput>,
    /// aws-lc's first randomness in a fresh process, per probe build.
    pub rng_first: Vec<Init>,
    /// A bare DynamoDB GetItem against moto from this process: the emulator's floor.
    pub moto_get_item: Option<Throughput>,
    /// A one-item TransactWriteItems against moto on the table after the webhook run.
    pub moto_transact: Option<Throughput>,
    /// A GetSecretValue against moto from this process: the init's own round trip.
    pub moto_get_secret: Option<Throughput>,
    /// The reconcile run.
    pub reconcile: Option<Reconcile>,
    /// Anything that went wrong, in words.
    pub problems: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 50.0), 50.0);
        assert_eq!(percentile(&hundred, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    fn init(runs_ms: &[f64], rounds: &[usize]) -> Init {
        Init { runs_ms: runs_ms.to_vec(), rounds: rounds.to_vec(), ..Init::default() }
    }

    #[test]
    fn cpu_ratios_pair_by_round_when_every_run_was_read() {
        let cpu = |runs_ms: &[f64], cpu_runs_ms: &[f64]| Init {
            cpu_runs_ms: cpu_runs_ms.to_vec(),
            cpu_median_ms: median(cpu_runs_ms),
            ..init(runs_ms, &[1, 2, 3])
        };
        let floor = cpu(&[1.0; 3], &[1.0, 2.0, 1.0]);
        let r = vs_floor(&cpu(&[5.0; 3], &[3.0, 6.0, 3.0]), &floor, Measure::Cpu);
        assert_eq!((r.median, r.pairs), (3.0, 3));
        // A run whose CPU time was not read: the medians' ratio, unpaired.
        let r = vs_floor(&cpu(&[5.0; 3], &[3.0, 6.0]), &floor, Measure::Cpu);
        assert_eq!((r.median, r.pairs), (4.5, 0));
    }

    #[test]
    fn paired_ratio_pairs_runs_of_the_same_round() {
        // Round 2 was slow for both: paired, it does not move the ratio.
        let floor = init(&[1.0, 1.0, 4.0, 1.0], &[1, 2, 3, 4]);
        let subject = init(&[2.0, 2.0, 8.0, 2.0], &[1, 2, 3, 4]);
        let r = paired_ratio(&subject, &floor, Measure::Wall).expect("four pairs");
        assert_eq!((r.median, r.low, r.high, r.pairs), (2.0, 2.0, 2.0, 4));
        // A round the floor missed is left out, not paired with another round's run.
        let floor = init(&[1.0, 2.0], &[1, 3]);
        let subject = init(&[1.5, 9.0, 3.0], &[1, 2, 3]);
        let r = paired_ratio(&subject, &floor, Measure::Wall).expect("two pairs");
        assert_eq!((r.median, r.low, r.high, r.pairs), (1.5, 1.5, 1.5, 2));
        assert_eq!(paired_ratio(&subject, &init(&[1.0], &[7]), Measure::Wall), None);
        // Spread: the middle half's bounds by nearest rank.
        let floor = init(&[1.0; 4], &[1, 2, 3, 4]);
        let subject = init(&[1.0, 2.0, 3.0, 4.0], &[1, 2, 3, 4]);
        let r = paired_ratio(&subject, &floor, Measure::Wall).expect("four pairs");
        assert_eq!((r.low, r.median, r.high), (1.0, 2.5, 3.0));
    }

    #[test]
    fn throughput_from_latencies() {
        let t = Throughput::from_latencies("x", &[1.0, 2.0, 3.0, 4.0], 1, Duration::from_secs(2));
        assert_eq!(t.requests, 4);
        assert_eq!(t.errors, 1);
        assert_eq!(t.per_sec, 2.0);
        assert_eq!(t.p50_ms, 2.0);
    }
}
