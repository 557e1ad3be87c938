//! `bench-runner`: the driver of `./bench/run.sh`.
//!
//! ```text
//! bench-runner measure --out FILE [--init-runs N] [--requests N] [--reconcile-cases N]
//!     [--rate-limit N] [--latency-ms MS] [--profile NAME=DIR]... [--rng-probe NAME=PATH]...
//!     [--function-env KEY=VALUE]...   (needs MOTO_ENDPOINT,
//!     --sandbox-url URL [--reconcile-sandbox-url URL], --api-key K, --api-secret S, --bin-dir DIR, --python PATH, --logs DIR)
//! bench-runner report --results FILE --sizes FILE --criterion DIR [--meta KEY=VALUE]... [--write FILE]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use gateway_bench::measure::{Plan, measure};
use gateway_bench::report::{Meta, read_sizes, render};
use gateway_bench::results::Results;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the results file's history starts: kept when a run rewrites the file.
const HISTORY: &str = "\n## History";

/// `--flag value` pairs, in order (a flag may repeat).
struct Flags(Vec<(String, String)>);

impl Flags {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut pairs = Vec::new();
        let mut args = args.peekable();
        while let Some(flag) = args.next() {
            let Some(name) = flag.strip_prefix("--") else { return Err(format!("unexpected argument `{flag}`")) };
            let value = args.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
            pairs.push((name.to_owned(), value));
        }
        Ok(Flags(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every `--name KEY=VALUE`, split at the first `=`.
    fn pairs(&self, name: &str) -> Result<Vec<(String, String)>, String> {
        let split = |kv: &str| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()));
        self.all(name).map(|kv| split(kv).ok_or_else(|| format!("`--{name}` is KEY=VALUE, not `{kv}`"))).collect()
    }

    fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name).ok_or_else(|| format!("`--{name}` is required"))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("`--{name}`: cannot read `{v}`")),
        }
    }
}

async fn run_measure(flags: &Flags) -> Result<(), BoxError> {
    let repo = match flags.get("repo") {
        Some(r) => PathBuf::from(r),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
    };
    let paths = |name: &str| -> Result<Vec<(String, PathBuf)>, String> {
        flags.pairs(name).map(|v| v.into_iter().map(|(k, p)| (k, PathBuf::from(p))).collect())
    };
    let plan = Plan {
        rng_probes: paths("rng-probe")?,
        function_env: flags.pairs("function-env")?,
        repo,
        bin_dir: PathBuf::from(flags.required("bin-dir")?),
        profiles: paths("profile")?,
        python: PathBuf::from(flags.required("python")?),
        sandbox_url: flags.required("sandbox-url")?.trim_end_matches('/').to_owned(),
        reconcile_sandbox_url: flags
            .get("reconcile-sandbox-url")
            .or(flags.get("sandbox-url"))
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned(),
        api_key: flags.required("api-key")?.to_owned(),
        api_secret: flags.required("api-secret")?.to_owned(),
        logs: PathBuf::from(flags.required("logs")?),
        init_runs: flags.number("init-runs", 30)?,
        requests: flags.number("requests", 200)?,
        reconcile_cases: flags.number("reconcile-cases", 250)?,
        rate_limit: flags.number("rate-limit", 50)?,
        latency_ms: flags.number("latency-ms", 50)?,
    };
    let out = PathBuf::from(flags.required("out")?);
    let results = measure(&plan).await?;
    std::fs::write(&out, serde_json::to_vec_pretty(&results)?)?;
    Ok(())
}

fn run_report(flags: &Flags) -> Result<(), BoxError> {
    let text = std::fs::read_to_string(flags.required("results")?)?;
    let results: Results = serde_json::from_str(&text)?;
    let sizes = read_sizes(&PathBuf::from(flags.required("sizes")?));
    let meta = Meta { values: flags.pairs("meta")?.into_iter().collect() };
    let table = render(&results, &sizes, &PathBuf::from(flags.required("criterion")?), &meta);
    print!("{table}");
    if let Some(path) = flags.get("write") {
        // What the file says below the run's table, its history, stays.
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let history = old.find(HISTORY).map(|at| &old[at..]).unwrap_or_default();
        std::fs::write(path, format!("# Benchmark results\n\nWritten by `./bench/run.sh`.\n\n{table}{history}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let flags = match Flags::parse(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bench-runner: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "measure" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BoxError::from)
            .and_then(|rt| rt.block_on(run_measure(&flags))),
        "report" => run_report(&flags),
        _ => {
            eprintln!("usage: bench-runner measure|report [FLAGS] (see the source's header)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-runner: {e}");
            ExitCode::FAILURE
        }
    }
}
