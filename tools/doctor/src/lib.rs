//! `doctor`: run once by a partner, with the real base URL and secret, before go-live.
//!
//! It signs `GET /api/v1/cases/<random uuid>` in each signature encoding and reports
//! which one Cabital accepts (404 or 200: the signature is fine; 401: it is not), with
//! the clock offset read from `Date`, the TLS in use and each request's latency. Only
//! GETs of random case ids are sent: nothing is ever created. A control request with a
//! deliberately wrong signature must get 401, or the URL is not an API that checks
//! signatures and no encoding can be claimed to work.
//!
//! The report goes to the given writer; its last line, on success, is the setting to
//! use (`CABITAL_SIGNATURE_ENCODING=hex` or `=base64`). `main.rs` only wires the
//! process: arguments, environment, exit codes.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateway_runtime::SettingError;
use gateway_runtime::settings::{AwsSettings, Env, aws_sdk_config, credential_store};
use gateway_signing::{
    Credentials, CredentialsError, HEADER_KEY, HEADER_SIGN, HEADER_TIMESTAMP, SignatureEncoding, SignedHeaders, sign,
};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use url::Url;

/// `CABITAL_BASE_URL` when unset, as the functions default it.
pub use gateway_runtime::settings::DEFAULT_BASE_URL;
/// How far `ACCESS-TIMESTAMP` may be from Cabital's clock (`shared/cabital-api.md`).
pub const TIMESTAMP_WINDOW_SECS: i64 = 30;
/// Both encodings, in the order tried.
pub const ENCODINGS: [SignatureEncoding; 2] = [SignatureEncoding::Hex, SignatureEncoding::Base64];

/// Generous next to the functions' 2 s / 8 s: a partner's laptop far from Cabital
/// should still get a verdict, not a timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What the command line asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// No argument: run the checks.
    Run,
    /// `--help` or `-h`.
    Help,
}

/// The usage text for `--help`.
pub const USAGE: &str = "\
doctor: checks the Cabital base URL, API key and secret once, and names the signature
encoding Cabital accepts. Only GETs of random case ids are sent: nothing is created.

Takes no arguments (the secret must never be on the command line); reads:
  CABITAL_BASE_URL     default https://caas.cabital.com (plain http only to a loopback address)
  CABITAL_SECRET_ID    a Secrets Manager secret holding {\"apiKey\", \"apiSecret\"}
                       (AWS settings as the functions read them: AWS_REGION, AWS_ENDPOINT_URL,
                       AWS_TLS_ROOTS, credentials)
  or CABITAL_API_KEY and CABITAL_API_SECRET, both, in the environment

On success the last line is the setting to use, CABITAL_SIGNATURE_ENCODING=hex or =base64,
and the exit status is 0. Exit 1: a check failed (the reason is on stderr). Exit 2: the
command line or the environment is wrong.";

/// Reads the command line: nothing but `--help` is taken. A refused argument is never
/// echoed back, in case it was a secret pasted there.
pub fn invocation<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> Result<Invocation, SetupError> {
    let args: Vec<_> = args.into_iter().collect();
    match args.as_slice() {
        [] => Ok(Invocation::Run),
        [one] if one == "--help" || one == "-h" => Ok(Invocation::Help),
        _ => Err(SetupError::Arguments),
    }
}

/// Where the API key and secret come from.
#[derive(Clone)]
pub enum SecretSource {
    /// `CABITAL_SECRET_ID`: read from Secrets Manager, as the functions read it.
    SecretsManager {
        /// The secret's name or ARN.
        secret_id: String,
    },
    /// `CABITAL_API_KEY` and `CABITAL_API_SECRET`.
    Environment(Credentials),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::SecretsManager { secret_id } => {
                f.debug_struct("SecretsManager").field("secret_id", secret_id).finish()
            }
            SecretSource::Environment(_) => f.write_str("Environment([redacted])"),
        }
    }
}

/// The doctor's settings, read from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `CABITAL_BASE_URL`.
    pub base_url: Url,
    /// The secret's source.
    pub secret: SecretSource,
}

/// The command line or the environment is wrong (exit 2). Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Something other than `--help` on the command line.
    #[error(
        "doctor takes no arguments: the secret must never be on the command line. Set CABITAL_BASE_URL, and \
         CABITAL_SECRET_ID or CABITAL_API_KEY and CABITAL_API_SECRET, in the environment (see --help)"
    )]
    Arguments,
    /// `CABITAL_BASE_URL` cannot be used.
    #[error("CABITAL_BASE_URL is invalid: {0}")]
    BaseUrl(String),
    /// Plain `http` to a host that is not a loopback address.
    #[error(
        "CABITAL_BASE_URL uses plain http to {host}, which is not a loopback address: use https \
         (plain http is allowed only for 127.0.0.0/8, localhost and [::1])"
    )]
    PlainHttp {
        /// The host named.
        host: String,
    },
    /// Neither source of the secret is set.
    #[error(
        "no Cabital secret: set CABITAL_SECRET_ID (a Secrets Manager secret holding {{\"apiKey\", \"apiSecret\"}}), \
         or CABITAL_API_KEY and CABITAL_API_SECRET"
    )]
    NoSecret,
    /// One of the two environment variables without the other.
    #[error("{missing} is not set: CABITAL_API_KEY and CABITAL_API_SECRET go together")]
    HalfSecret {
        /// The one missing.
        missing: &'static str,
    },
    /// The key or secret given is empty.
    #[error("CABITAL_API_KEY / CABITAL_API_SECRET: {0}")]
    Credentials(CredentialsError),
    /// An AWS setting (`AWS_TLS_ROOTS`) is invalid.
    #[error(transparent)]
    Setting(#[from] SettingError),
}

/// Reads the settings through `var` (the process environment in `main`).
///
/// The base URL is read as the functions read it (trimmed, unset or empty for the
/// default), then held to more: http only to loopback, no user name or password in it
/// (it is printed), no query or fragment (the functions would drop them silently).
pub fn settings_from(var: impl Fn(&str) -> Option<String>) -> Result<Settings, SetupError> {
    let env = Env::with(&var);
    let set = |name: &str| env.get(name);
    let text = set("CABITAL_BASE_URL").map(|v| v.trim().to_owned()).unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let base_url = Url::parse(&text).map_err(|e| SetupError::BaseUrl(e.to_string()))?;
    check_base_url(&base_url)?;

    let secret = match (set("CABITAL_SECRET_ID"), var("CABITAL_API_KEY"), var("CABITAL_API_SECRET")) {
        (Some(secret_id), _, _) => SecretSource::SecretsManager { secret_id: secret_id.trim().to_owned() },
        (None, None, None) => return Err(SetupError::NoSecret),
        (None, Some(_), None) => return Err(SetupError::HalfSecret { missing: "CABITAL_API_SECRET" }),
        (None, None, Some(_)) => return Err(SetupError::HalfSecret { missing: "CABITAL_API_KEY" }),
        // The secret is taken byte for byte: a space in it would be part of the HMAC key.
        (None, Some(key), Some(secret)) => {
            SecretSource::Environment(Credentials::new(key.trim(), secret).map_err(SetupError::Credentials)?)
        }
    };
    Ok(Settings { base_url, secret })
}

fn check_base_url(url: &Url) -> Result<(), SetupError> {
    let host = url.host().ok_or_else(|| SetupError::BaseUrl("it has no host".into()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SetupError::BaseUrl("it must not carry a user name or password".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SetupError::BaseUrl("it must not have a query or a fragment".into()));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if gateway_runtime::settings::is_loopback(&host) => Ok(()),
        "http" => Err(SetupError::PlainHttp { host: host.to_string() }),
        other => Err(SetupError::BaseUrl(format!("the scheme must be https (or http to loopback), not {other}"))),
    }
}

/// A check failed (exit 1). Says what to do; never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The secret could not be read from Secrets Manager.
    #[error("could not read the Cabital secret: {0}")]
    Credentials(#[from] CredentialsError),
    /// The AWS settings could not be read.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The report could not be written.
    #[error("could not write the report: {0}")]
    Output(#[from] std::io::Error),
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    Client,
    /// A request did not get an answer.
    #[error("{request}: {error}")]
    Transport {
        /// Which request.
        request: String,
        /// Why.
        error: TransportError,
    },
    /// A request was answered with a redirect, which doctor does not follow.
    #[error(
        "{request}: answered {status} (a redirect to {location}); doctor follows no redirect and neither do \
         the functions: set CABITAL_BASE_URL to the API's own URL"
    )]
    Redirect {
        /// Which request.
        request: String,
        /// The status.
        status: u16,
        /// `Location`, or `?`.
        location: String,
    },
    /// A status that says nothing about the signature (403, 429, 5xx, ...).
    #[error(
        "{request}: answered {status}, which says nothing about the signature (404 or 200: accepted, 401: refused); \
         {hint}"
    )]
    UnexpectedStatus {
        /// Which request.
        request: String,
        /// The status.
        status: u16,
        /// What it may mean.
        hint: &'static str,
    },
    /// A request with a wrong signature was not refused.
    #[error(
        "the URL does not look like Cabital's API: it answered {status} to a request with a wrong signature, where \
         Cabital answers 401. Check CABITAL_BASE_URL (a wrong URL, a proxy or a catch-all answers anything); no \
         encoding can be confirmed there"
    )]
    NotCabital {
        /// The status the control request got.
        status: u16,
    },
    /// This machine's clock is too far from Cabital's.
    #[error(
        "the clock is off: Cabital's clock is {offset_secs:+} s from this machine's, more than the {window} s \
         Cabital allows, so every signed request is refused as expired. Fix this machine's clock (NTP) and run \
         doctor again.{corrected}",
        window = TIMESTAMP_WINDOW_SECS,
        corrected = corrected_text(corrected)
    )]
    ClockSkew {
        /// Cabital's clock minus this machine's, in seconds.
        offset_secs: i64,
        /// The encodings accepted when signed with the corrected time.
        corrected: Vec<SignatureEncoding>,
    },
    /// Both encodings were refused.
    #[error(
        "no encoding accepted: Cabital answered 401 to the request signed in hex and to the one signed in base64, \
         so the API key or the secret is wrong (or not enabled for this URL){clock}"
    )]
    NoEncodingAccepted {
        /// A note when the clock could not be checked.
        clock: &'static str,
    },
}

fn corrected_text(accepted: &[SignatureEncoding]) -> String {
    match accepted {
        [] => {
            " Signed with Cabital's time, no encoding was accepted either: the key or secret may also be wrong.".into()
        }
        [one] => format!(" Signed with Cabital's time, {one} was accepted."),
        _ => " Signed with Cabital's time, both encodings were accepted.".into(),
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nothing listens at the address.
    #[error("connection refused by {host}: nothing listens there; is CABITAL_BASE_URL right?")]
    ConnectionRefused {
        /// `host:port`.
        host: String,
    },
    /// The host name does not resolve.
    #[error("DNS lookup of {host} failed: is the host name in CABITAL_BASE_URL right? ({detail})")]
    Dns {
        /// The host.
        host: String,
        /// The resolver's words.
        detail: String,
    },
    /// The TLS handshake failed (certificate not trusted, wrong name, protocol).
    #[error("TLS with {host} failed: {detail} (the functions verify the certificate the same way)")]
    Tls {
        /// The host.
        host: String,
        /// rustls' words.
        detail: String,
    },
    /// No answer in time.
    #[error("no answer from {host} within {secs} s (connect: {connect_secs} s)", secs = REQUEST_TIMEOUT.as_secs(), connect_secs = CONNECT_TIMEOUT.as_secs())]
    Timeout {
        /// The host.
        host: String,
    },
    /// Any other failure to connect or to read the answer.
    #[error("connection to {host} failed: {detail}")]
    Other {
        /// The host.
        host: String,
        /// The innermost error's words.
        detail: String,
    },
}

impl TransportError {
    fn classify(e: &reqwest::Error, host: String) -> Self {
        let mut detail = e.to_string();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        let mut dns = false;
        while let Some(err) = source {
            if let Some(tls) = err.downcast_ref::<rustls::Error>() {
                return TransportError::Tls { host, detail: tls.to_string() };
            }
            let words = err.to_string();
            // hyper-util says "dns error"; getaddrinfo "failed to lookup address".
            let lower = words.to_ascii_lowercase();
            dns |= lower.contains("dns error") || lower.contains("lookup address");
            detail = words;
            source = err.source();
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    return TransportError::ConnectionRefused { host };
                }
                // An io::Error's `source` skips the error it wraps (tokio-rustls wraps
                // rustls' error, the connector wraps that again): walk into it instead.
                if let Some(inner) = io.get_ref() {
                    source = Some(inner);
                }
            }
        }
        if dns {
            TransportError::Dns { host, detail }
        } else if e.is_timeout() {
            TransportError::Timeout { host }
        } else {
            TransportError::Other { host, detail }
        }
    }
}

/// What one answer says about the signature it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 404 or 200: the signature was checked and accepted.
    Accepted,
    /// 401: refused (bad key, bad signature or expired timestamp).
    Refused,
}

/// One answer.
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    location: Option<String>,
    /// Cabital's clock minus ours, from `Date`, in whole seconds.
    offset_secs: Option<i64>,
    latency: Duration,
}

impl Answer {
    fn verdict(&self, request: &str) -> Result<Verdict, Failure> {
        let status = self.status.as_u16();
        match self.status {
            StatusCode::OK | StatusCode::NOT_FOUND => Ok(Verdict::Accepted),
            StatusCode::UNAUTHORIZED => Ok(Verdict::Refused),
            s if s.is_redirection() => Err(Failure::Redirect {
                request: request.to_owned(),
                status,
                location: self.location.clone().unwrap_or_else(|| "?".into()),
            }),
            s => Err(Failure::UnexpectedStatus { request: request.to_owned(), status, hint: hint(s) }),
        }
    }

    fn describe(&self) -> String {
        let reason = self.status.canonical_reason().unwrap_or("");
        format!("{} {reason} in {:.1} ms", self.status.as_u16(), self.latency.as_secs_f64() * 1000.0)
    }
}

fn hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        403 => "Cabital forbids this key here (account or IP allow-list?): ask Cabital",
        429 => "too many requests: wait a minute and run doctor again",
        500..=599 => "Cabital (or something in front of it) failed: run doctor again later",
        _ => "check CABITAL_BASE_URL",
    }
}

/// A short, non-reversible fingerprint of the API key: enough to tell two keys apart.
pub fn key_fingerprint(api_key: &str) -> String {
    let digest = Sha256::digest(api_key.as_bytes());
    hex::encode(&digest[..4])
}

/// The path signed and sent: the base URL's own path prefix, if any, then
/// `/api/v1/cases/<uuid v4>`.
pub fn case_path(base_url: &Url, case_id: uuid::Uuid) -> String {
    format!("{}/api/v1/cases/{case_id}", base_url.path().trim_end_matches('/'))
}

/// The Cabital client's TLS (`shared/cabital`): rustls with aws-lc and Mozilla's roots,
/// compiled in, so that doctor verifies the certificate exactly as the functions will.
fn tls_config() -> Result<rustls::ClientConfig, Failure> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|_| Failure::Client)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Reads the credentials: from Secrets Manager exactly as the functions do (the same
/// SDK configuration, roots and time limits), or from the environment.
async fn credentials(source: &SecretSource) -> Result<Credentials, Failure> {
    match source {
        SecretSource::Environment(credentials) => Ok(credentials.clone()),
        SecretSource::SecretsManager { secret_id } => {
            let sdk: aws_config::SdkConfig = aws_sdk_config(&AwsSettings::read(&Env::process())?).await;
            // Read once: how long it would be cached does not matter.
            Ok(credential_store(&sdk, secret_id.clone(), Duration::from_secs(300)).get().await?)
        }
    }
}

struct Prober {
    http: reqwest::Client,
    base_url: Url,
    host: String,
}

impl Prober {
    fn new(base_url: &Url) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            // A redirect is reported, not followed: the functions would not follow it
            // with the signature intact either.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("cabital-kyc-gateway-doctor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| Failure::Client)?;
        let host = match (base_url.host_str(), base_url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => String::from("?"),
        };
        Ok(Prober { http, base_url: base_url.clone(), host })
    }

    /// One signed GET of a random case id; `signer` signs the exact path sent.
    async fn get(&self, request: &str, signer: impl FnOnce(&str) -> SignedHeaders) -> Result<Answer, Failure> {
        let path = case_path(&self.base_url, uuid::Uuid::new_v4());
        let mut url = self.base_url.clone();
        url.set_path(&path);
        let signed = signer(&path);
        let started = Instant::now();
        let response = self
            .http
            .get(url)
            .header(HEADER_KEY, signed.access_key)
            .header(HEADER_TIMESTAMP, signed.access_timestamp)
            .header(HEADER_SIGN, signed.access_sign)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Failure::Transport {
                request: request.to_owned(),
                error: TransportError::classify(&e, self.host.clone()),
            })?;
        let latency = started.elapsed();
        let local = unix_now();
        let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok());
        let offset_secs = header(reqwest::header::DATE)
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|server| server.as_secs() as i64 - local);
        let location = header(reqwest::header::LOCATION).map(str::to_owned);
        Ok(Answer { status: response.status(), location, offset_secs, latency })
    }
}

fn signed_with(
    credentials: &Credentials,
    encoding: SignatureEncoding,
    timestamp: i64,
) -> impl FnOnce(&str) -> SignedHeaders {
    move |path| sign(credentials, encoding, timestamp, "GET", path, b"")
}

/// Runs every check, writing the report to `out`; answers the encoding to set.
///
/// On `Ok`, the caller ends the report with `CABITAL_SIGNATURE_ENCODING=<encoding>`.
pub async fn run(settings: &Settings, out: &mut dyn Write) -> Result<SignatureEncoding, Failure> {
    let base_url = &settings.base_url;
    let prefix = base_url.path().trim_end_matches('/');
    writeln!(out, "Cabital doctor")?;
    writeln!(out, "URL:        {base_url}")?;
    writeln!(out, "Requests:   GET {prefix}/api/v1/cases/<random uuid>, nothing else: no case is created")?;
    if !prefix.is_empty() {
        writeln!(
            out,
            "Note:       the URL's path ({prefix}) is kept in front of /api/v1 and signed, as the functions do"
        )?;
    }

    let credentials = credentials(&settings.secret).await?;
    let key = credentials.api_key().as_str();
    let source = match &settings.secret {
        SecretSource::SecretsManager { secret_id } => format!("Secrets Manager secret {secret_id}"),
        SecretSource::Environment(_) => "CABITAL_API_KEY and CABITAL_API_SECRET".to_owned(),
    };
    writeln!(
        out,
        "Secret:     from {source}; API key of {} characters, SHA-256 {}...",
        key.chars().count(),
        key_fingerprint(key)
    )?;

    let prober = Prober::new(base_url)?;

    // The control: the right key, a signature made with another secret. Real Cabital
    // refuses it; anything that accepts it checks no signature, and its 404s prove nothing.
    let wrong = Credentials::new(key, uuid::Uuid::new_v4().to_string())?;
    let request = "control (wrong signature)";
    let control = prober.get(request, signed_with(&wrong, SignatureEncoding::Hex, unix_now())).await?;
    if base_url.scheme() == "https" {
        writeln!(out, "TLS:        https, certificate verified against Mozilla's roots (as the functions verify it)")?;
    } else {
        writeln!(out, "TLS:        none: plain http, allowed only because {} is a loopback address", prober.host)?;
    }
    writeln!(out, "{request}: {} (connection set up included)", control.describe())?;
    if control.verdict(request)? == Verdict::Accepted {
        return Err(Failure::NotCabital { status: control.status.as_u16() });
    }

    // Signed with the local clock, as a fresh deployment signs its first request.
    let mut answers = Vec::new();
    for encoding in ENCODINGS {
        let request = format!("{encoding} signature");
        let answer = prober.get(&request, signed_with(&credentials, encoding, unix_now())).await?;
        let verdict = answer.verdict(&request)?;
        writeln!(out, "{request}: {} -> {}", answer.describe(), verdict_words(verdict))?;
        answers.push((encoding, verdict, answer));
    }

    let offset = answers.iter().rev().find_map(|(_, _, a)| a.offset_secs).or(control.offset_secs);
    match offset {
        Some(o) if o.abs() > TIMESTAMP_WINDOW_SECS => {
            writeln!(
                out,
                "Clock:      Cabital's Date is {o:+} s from this machine's clock: more than {TIMESTAMP_WINDOW_SECS} s, requests expire"
            )?;
            // So that the report can still name the encoding; the exit stays non-zero.
            let mut corrected = Vec::new();
            for encoding in ENCODINGS {
                let request = format!("{encoding} signature, clock corrected by {o:+} s");
                let answer = prober.get(&request, signed_with(&credentials, encoding, unix_now() + o)).await?;
                let verdict = answer.verdict(&request)?;
                writeln!(out, "{request}: {} -> {}", answer.describe(), verdict_words(verdict))?;
                if verdict == Verdict::Accepted {
                    corrected.push(encoding);
                }
            }
            return Err(Failure::ClockSkew { offset_secs: o, corrected });
        }
        Some(o) => {
            writeln!(
                out,
                "Clock:      Cabital's Date is {o:+} s from this machine's clock (within {TIMESTAMP_WINDOW_SECS} s)"
            )?;
            // `Date` has whole seconds: a few seconds are rounding and latency, more is drift.
            if o.abs() > 3 {
                writeln!(out, "Note:       this clock drifts: the functions correct for it, but keep NTP on")?;
            }
        }
        None => writeln!(out, "Clock:      no Date header in the answers: the offset is unknown")?,
    }

    let accepted: Vec<SignatureEncoding> =
        answers.iter().filter(|(_, v, _)| *v == Verdict::Accepted).map(|(e, _, _)| *e).collect();
    let chosen = match accepted.as_slice() {
        [] => {
            let clock = if offset.is_none() { " or this machine's clock is off (no Date header to tell)" } else { "" };
            return Err(Failure::NoEncodingAccepted { clock });
        }
        [one] => *one,
        // Cabital then checks either encoding (the control was still refused): any
        // setting works; the functions' default is named.
        _ => {
            writeln!(out, "Both encodings were accepted: either setting works; the functions' default is named")?;
            SignatureEncoding::default()
        }
    };
    writeln!(out, "Result:     Cabital accepts {chosen} signatures from this key")?;
    writeln!(out, "Settings to use:")?;
    writeln!(out, "CABITAL_BASE_URL={}", base_url.as_str().trim_end_matches('/'))?;
    Ok(chosen)
}

fn verdict_words(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Accepted => "signature accepted",
        Verdict::Refused => "refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SetupError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        settings_from(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    const KEYS: [(&str, &str); 2] = [("CABITAL_API_KEY", "k"), ("CABITAL_API_SECRET", "s")];

    #[test]
    fn the_default_url_is_cabitals() {
        let s = settings(&KEYS).expect("valid");
        assert_eq!(s.base_url.as_str(), "https://caas.cabital.com/");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for url in [
            "http://127.0.0.1:9",
            "http://127.8.9.10",
            "http://localhost:8080",
            "http://[::1]:80",
            "https://example.com",
        ] {
            let vars = [("CABITAL_BASE_URL", url), KEYS[0], KEYS[1]];
            assert!(settings(&vars).is_ok(), "{url} is allowed");
        }
        for url in ["http://example.com", "http://10.0.0.1", "http://128.0.0.1", "http://localhost.example.com"] {
            let vars = [("CABITAL_BASE_URL", url), KEYS[0], KEYS[1]];
            assert!(matches!(settings(&vars), Err(SetupError::PlainHttp { .. })), "{url} is refused");
        }
        for url in
            ["ftp://caas.cabital.com", "https://u:p@caas.cabital.com", "https://caas.cabital.com/?x=1", "not a url"]
        {
            let vars = [("CABITAL_BASE_URL", url), KEYS[0], KEYS[1]];
            assert!(matches!(settings(&vars), Err(SetupError::BaseUrl(_))), "{url} is refused");
        }
    }

    #[test]
    fn the_secret_comes_from_one_place() {
        assert!(matches!(settings(&[]), Err(SetupError::NoSecret)));
        assert!(matches!(settings(&[KEYS[0]]), Err(SetupError::HalfSecret { missing: "CABITAL_API_SECRET" })));
        assert!(matches!(settings(&[KEYS[1]]), Err(SetupError::HalfSecret { missing: "CABITAL_API_KEY" })));
        assert!(matches!(settings(&KEYS).map(|s| s.secret), Ok(SecretSource::Environment(_))));
        let s = settings(&[("CABITAL_SECRET_ID", "prod/cabital"), KEYS[0]]).expect("valid");
        assert!(matches!(s.secret, SecretSource::SecretsManager { ref secret_id } if secret_id == "prod/cabital"));
    }

    #[test]
    fn only_help_is_taken_on_the_command_line() {
        assert_eq!(invocation(Vec::new()).ok(), Some(Invocation::Run));
        assert_eq!(invocation(vec!["--help".into()]).ok(), Some(Invocation::Help));
        let refused = invocation(vec!["--secret=hunter2".into()]).expect_err("refused");
        assert!(!refused.to_string().contains("hunter2"));
    }

    #[test]
    fn the_path_keeps_the_base_urls_prefix() {
        let id = uuid::Uuid::nil();
        let url = |u| Url::parse(u).expect("valid");
        assert_eq!(case_path(&url("https://caas.cabital.com"), id), format!("/api/v1/cases/{id}"));
        assert_eq!(case_path(&url("https://h/proxy/"), id), format!("/proxy/api/v1/cases/{id}"));
    }

    #[test]
    fn the_fingerprint_does_not_show_the_key() {
        let f = key_fingerprint("my-api-key");
        assert_eq!(f.len(), 8);
        assert!(!f.contains("my-api-key"));
    }
}
