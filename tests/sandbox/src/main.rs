//! `gateway-sandbox`: the Cabital CaaS fake as a process, for scripts and local runs.
//!
//! Settings come from flags, or from `CABITAL_SANDBOX_<FLAG>` environment variables
//! (flag name in upper snake case, e.g. `CABITAL_SANDBOX_API_SECRET`); a flag wins.
//! When ready it prints exactly one line to stdout, `listening on http://127.0.0.1:PORT`;
//! logs go to stderr as JSON. It stops on Ctrl-C or SIGTERM.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::str::FromStr;

use gateway_sandbox::{Credential, RetryHeaders, SandboxConfig, SignatureEncoding, WebhookSigning};
use tracing_subscriber::EnvFilter;
use url::Url;

// What Cabital's page leaves open, each answer a mode.
use gateway_sandbox::CreateAnswerMode;

struct Flag {
    name: &'static str,
    /// `None` for a switch (true when given bare).
    value: Option<&'static str>,
    help: &'static str,
}

const FLAGS: &[Flag] = &[
    Flag { name: "port", value: Some("PORT"), help: "port on 127.0.0.1; 0 (default) picks a free one" },
    Flag { name: "api-key", value: Some("KEY"), help: "accepted API key (with --api-secret); signs webhooks" },
    Flag { name: "api-secret", value: Some("SECRET"), help: "its secret (prefer the environment variable)" },
    Flag {
        name: "credential",
        value: Some("KEY:SECRET"),
        help: "another accepted pair; repeatable (env: comma-separated)",
    },
    Flag { name: "webhook-url", value: Some("URL"), help: "where webhooks go; none by default" },
    Flag { name: "time-factor", value: Some("F"), help: "multiplies the webhook retry schedule (default 1)" },
    Flag { name: "screening-delay-ms", value: Some("MS"), help: "case creation to suggestion (default 0)" },
    Flag { name: "create-answer", value: Some("full|empty|no-id"), help: "a create's 201 body (default full)" },
    Flag { name: "get-without-case-system-id", value: None, help: "GET answers omit caseSystemId" },
    Flag { name: "no-screening", value: None, help: "no suggestion nor webhook on create (no Zero Footprint)" },
    Flag { name: "webhook-delay-ms", value: Some("MS"), help: "suggestion to first webhook attempt (default 0)" },
    Flag { name: "webhook-timeout-ms", value: Some("MS"), help: "timeout of one webhook attempt (default 10000)" },
    Flag { name: "allow-duplicate-external-id", value: None, help: "accept a second case with a known externalCaseId" },
    Flag { name: "signature-encoding", value: Some("hex|base64"), help: "ACCESS-SIGN encoding (default base64)" },
    Flag {
        name: "webhook-key",
        value: Some("KEY"),
        help: "sign webhooks with this key and --webhook-secret, not the API's",
    },
    Flag { name: "webhook-secret", value: Some("SECRET"), help: "the webhooks' own secret (prefer the env variable)" },
    Flag { name: "unsigned-webhooks", value: None, help: "send webhooks without ACCESS-* headers" },
    Flag {
        name: "retry-headers",
        value: Some("fresh|original"),
        help: "webhook retries signed anew (default) or under the first attempt's headers",
    },
    Flag { name: "latency-ms", value: Some("MS"), help: "fault: added to every API response" },
    Flag { name: "error-rate-500", value: Some("P"), help: "fault: probability of an injected 500" },
    Flag { name: "error-rate-503", value: Some("P"), help: "fault: probability of an injected 503" },
    Flag { name: "rate-limit-per-sec", value: Some("N"), help: "fault: token bucket; 0 (default) is unlimited" },
    Flag { name: "drop-webhook-rate", value: Some("P"), help: "fault: probability a delivery is never sent" },
    Flag { name: "duplicate-webhooks", value: Some("N"), help: "fault: extra copies of every delivery" },
    Flag { name: "reorder-webhooks", value: None, help: "fault: random extra delay per delivery" },
    Flag { name: "reorder-window-ms", value: Some("MS"), help: "fault: that delay's window (default 250)" },
    Flag { name: "clock-offset-secs", value: Some("SECS"), help: "fault: sandbox clock minus real time" },
    Flag {
        name: "webhook-lost-ack-rate",
        value: Some("P"),
        help: "fault: probability a webhook's 2xx is taken as failed (retried)",
    },
    Flag { name: "seed", value: Some("N"), help: "random seed, for repeatable runs" },
];

fn usage() -> String {
    let mut text = String::from(
        "usage: gateway-sandbox [FLAGS]\n\nEvery flag can also be set as CABITAL_SANDBOX_<FLAG> (upper snake case).\n\n",
    );
    for flag in FLAGS {
        let left = match flag.value {
            Some(value) => format!("--{} {value}", flag.name),
            None => format!("--{}", flag.name),
        };
        text.push_str(&format!("  {left:<34} {}\n", flag.help));
    }
    text.push_str("  --help                             this text\n");
    text
}

fn env_name(flag: &str) -> String {
    format!("CABITAL_SANDBOX_{}", flag.to_uppercase().replace('-', "_"))
}

/// Flags as given, each flag's values in order.
struct Args {
    given: HashMap<&'static str, Vec<String>>,
}

impl Args {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Self>, String> {
        let mut given: HashMap<&'static str, Vec<String>> = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Ok(None);
            }
            let Some(body) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument `{arg}`"));
            };
            let (name, inline) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (body, None),
            };
            let Some(flag) = FLAGS.iter().find(|f| f.name == name) else {
                return Err(format!("unknown flag `--{name}`"));
            };
            let value = match (flag.value, inline) {
                (_, Some(value)) => value,
                (None, None) => "true".to_owned(),
                (Some(_), None) => args.next().ok_or_else(|| format!("`--{name}` needs a value"))?,
            };
            given.entry(flag.name).or_default().push(value);
        }
        Ok(Some(Self { given }))
    }

    /// The flag's last value, else its environment variable.
    fn get(&self, name: &'static str) -> Option<String> {
        self.given
            .get(name)
            .and_then(|values| values.last().cloned())
            .or_else(|| std::env::var(env_name(name)).ok().filter(|v| !v.is_empty()))
    }

    fn parsed<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(text) => text.trim().parse().map(Some).map_err(|_| format!("`--{name}`: cannot read `{text}`")),
        }
    }

    fn switch(&self, name: &'static str) -> Result<bool, String> {
        match self.get(name).as_deref().map(str::trim) {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(format!("`--{name}`: expected true or false, got `{other}`")),
        }
    }

    fn credentials(&self) -> Result<Vec<Credential>, String> {
        let mut credentials = Vec::new();
        match (self.get("api-key"), self.get("api-secret")) {
            (Some(key), Some(secret)) => credentials.push(Credential::new(key, secret)),
            (None, None) => {}
            _ => return Err("`--api-key` and `--api-secret` go together".to_owned()),
        }
        let extra: Vec<String> = match self.given.get("credential") {
            Some(values) => values.clone(),
            None => std::env::var(env_name("credential"))
                .map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
        };
        for pair in extra {
            match pair.split_once(':') {
                Some((key, secret)) if !key.is_empty() && !secret.is_empty() => {
                    credentials.push(Credential::new(key, secret));
                }
                _ => return Err("`--credential` must be KEY:SECRET".to_owned()),
            }
        }
        if credentials.is_empty() {
            return Err("no credentials: give `--api-key` and `--api-secret` (or CABITAL_SANDBOX_API_KEY and \
                        CABITAL_SANDBOX_API_SECRET), or `--credential KEY:SECRET`"
                .to_owned());
        }
        Ok(credentials)
    }

    fn config(&self) -> Result<SandboxConfig, String> {
        let mut config = SandboxConfig { credentials: self.credentials()?, ..SandboxConfig::default() };
        if let Some(port) = self.parsed("port")? {
            config.port = port;
        }
        if let Some(url) = self.get("webhook-url") {
            config.webhook_url = Some(Url::parse(&url).map_err(|e| format!("`--webhook-url`: {e}"))?);
        }
        if let Some(value) = self.parsed("time-factor")? {
            config.time_factor = value;
        }
        if let Some(value) = self.parsed("screening-delay-ms")? {
            config.screening_delay_ms = value;
        }
        config.create_answer = match self.get("create-answer").as_deref() {
            None | Some("full") => CreateAnswerMode::Full,
            Some("empty") => CreateAnswerMode::Empty,
            Some("no-id") => CreateAnswerMode::NoId,
            Some(other) => return Err(format!("`--create-answer`: expected full, empty or no-id, got `{other}`")),
        };
        config.get_without_case_system_id = self.switch("get-without-case-system-id")?;
        config.no_screening = self.switch("no-screening")?;
        if let Some(value) = self.parsed("webhook-delay-ms")? {
            config.webhook_delay_ms = value;
        }
        if let Some(value) = self.parsed("webhook-timeout-ms")? {
            config.webhook_timeout_ms = value;
        }
        config.reject_duplicate_external_id = !self.switch("allow-duplicate-external-id")?;
        config.signature_encoding = match self.get("signature-encoding").as_deref() {
            None => SignatureEncoding::default(),
            Some("hex") => SignatureEncoding::Hex,
            Some("base64") => SignatureEncoding::Base64,
            Some(other) => {
                return Err(format!("`--signature-encoding`: expected hex or base64, got `{other}`"));
            }
        };
        let unsigned = self.switch("unsigned-webhooks")?;
        config.webhook_signing = match (self.get("webhook-key"), self.get("webhook-secret"), unsigned) {
            (None, None, false) => WebhookSigning::ApiSecret,
            (None, None, true) => WebhookSigning::Unsigned,
            (Some(key), Some(secret), false) => WebhookSigning::Separate(Credential::new(key, secret)),
            (Some(_), Some(_), true) => {
                return Err("`--unsigned-webhooks` and `--webhook-key`/`--webhook-secret` exclude each other".into());
            }
            _ => return Err("`--webhook-key` and `--webhook-secret` go together".to_owned()),
        };
        config.retry_headers = match self.get("retry-headers").as_deref() {
            None | Some("fresh") => RetryHeaders::Fresh,
            Some("original") => RetryHeaders::Original,
            Some(other) => return Err(format!("`--retry-headers`: expected fresh or original, got `{other}`")),
        };
        let faults = &mut config.faults;
        if let Some(value) = self.parsed("latency-ms")? {
            faults.latency_ms = value;
        }
        if let Some(value) = self.parsed("error-rate-500")? {
            faults.error_rate_500 = value;
        }
        if let Some(value) = self.parsed("error-rate-503")? {
            faults.error_rate_503 = value;
        }
        if let Some(value) = self.parsed("rate-limit-per-sec")? {
            faults.rate_limit_per_sec = value;
        }
        if let Some(value) = self.parsed("drop-webhook-rate")? {
            faults.drop_webhook_rate = value;
        }
        if let Some(value) = self.parsed("duplicate-webhooks")? {
            faults.duplicate_webhooks = value;
        }
        faults.reorder_webhooks = self.switch("reorder-webhooks")?;
        if let Some(value) = self.parsed("reorder-window-ms")? {
            faults.reorder_window_ms = value;
        }
        if let Some(value) = self.parsed("clock-offset-secs")? {
            faults.clock_offset_secs = value;
        }
        if let Some(value) = self.parsed("webhook-lost-ack-rate")? {
            faults.webhook_lost_ack_rate = value;
        }
        config.seed = self.parsed("seed")?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let config = match Args::parse(std::env::args().skip(1)).and_then(|args| args.map(|a| a.config()).transpose()) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("gateway-sandbox: {problem}\n(see --help)");
            return ExitCode::from(2);
        }
    };
    let sandbox = match gateway_sandbox::spawn(config).await {
        Ok(sandbox) => sandbox,
        Err(e) => {
            eprintln!("gateway-sandbox: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "listening on {}", sandbox.base_url()).and_then(|()| stdout.flush()).is_err() {
        eprintln!("gateway-sandbox: cannot write to stdout");
        return ExitCode::FAILURE;
    }
    stop_signal().await;
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        Args::parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags() {
        let parsed = args(&["--api-key", "k", "--api-secret=s", "--clock-offset-secs", "-40", "--reorder-webhooks"]);
        let config = parsed.and_then(|a| a.map(|a| a.config()).transpose());
        let Ok(Some(config)) = config else { panic!("{config:?}") };
        assert_eq!(config.credentials, vec![Credential::new("k", "s")]);
        assert_eq!(config.faults.clock_offset_secs, -40);
        assert!(config.faults.reorder_webhooks);
        assert!(config.reject_duplicate_external_id);
    }

    #[test]
    fn webhook_flags() {
        let config = |list: &[&str]| args(list).and_then(|a| a.map(|a| a.config()).transpose());
        let Ok(Some(plain)) = config(&["--credential", "k:s"]) else { panic!("plain") };
        assert_eq!(plain.signature_encoding, SignatureEncoding::Base64);
        assert_eq!(plain.webhook_signing, WebhookSigning::ApiSecret);
        assert_eq!(plain.retry_headers, RetryHeaders::Fresh);
        let Ok(Some(separate)) = config(&[
            "--credential",
            "k:s",
            "--webhook-key",
            "wk",
            "--webhook-secret",
            "ws",
            "--retry-headers",
            "original",
            "--webhook-lost-ack-rate",
            "0.5",
        ]) else {
            panic!("separate")
        };
        assert_eq!(separate.webhook_signing, WebhookSigning::Separate(Credential::new("wk", "ws")));
        assert_eq!(separate.retry_headers, RetryHeaders::Original);
        assert_eq!(separate.faults.webhook_lost_ack_rate, 0.5);
        let Ok(Some(unsigned)) = config(&["--credential", "k:s", "--unsigned-webhooks"]) else { panic!("unsigned") };
        assert_eq!(unsigned.webhook_signing, WebhookSigning::Unsigned);
        assert!(config(&["--credential", "k:s", "--webhook-key", "wk"]).is_err());
        assert!(
            config(&["--credential", "k:s", "--unsigned-webhooks", "--webhook-key", "a", "--webhook-secret", "b"])
                .is_err()
        );
        assert!(config(&["--credential", "k:s", "--retry-headers", "old"]).is_err());
        assert!(config(&["--credential", "k:s", "--webhook-lost-ack-rate", "2"]).is_err());
    }

    #[test]
    fn bad_flags() {
        assert!(args(&["--nope"]).is_err());
        assert!(args(&["--port"]).is_err());
        assert!(matches!(args(&["--help"]), Ok(None)));
        let config =
            args(&["--credential", "k:s", "--error-rate-500", "2"]).and_then(|a| a.map(|a| a.config()).transpose());
        assert!(config.is_err());
    }

    #[test]
    fn create_answer_and_screening_flags() {
        let config = |list: &[&str]| args(list).and_then(|a| a.map(|a| a.config()).transpose());
        let Ok(Some(plain)) = config(&["--credential", "k:s"]) else { panic!("defaults") };
        assert_eq!(plain.create_answer, CreateAnswerMode::Full);
        assert!(!plain.get_without_case_system_id && !plain.no_screening);
        let given = config(&[
            "--credential",
            "k:s",
            "--create-answer",
            "no-id",
            "--get-without-case-system-id",
            "--no-screening",
        ]);
        let Ok(Some(given)) = given else { panic!("{given:?}") };
        assert_eq!(given.create_answer, CreateAnswerMode::NoId);
        assert!(given.get_without_case_system_id && given.no_screening);
        let Ok(Some(empty)) = config(&["--credential", "k:s", "--create-answer=empty"]) else { panic!("empty") };
        assert_eq!(empty.create_answer, CreateAnswerMode::Empty);
        assert!(config(&["--credential", "k:s", "--create-answer", "partial"]).is_err());
    }
}
