//! `gateway-sandbox-sign`: signs an API Gateway v2 webhook event fixture as Cabital
//! would, for now (or a given time), so that `cargo lambda invoke` can send it to the
//! webhook function. Lives with the sandbox, not the function, so that it never ships
//! in a Lambda package.
//!
//! ```text
//! gateway-sandbox-sign --api-key KEY --api-secret SECRET functions/webhook/events/webhook-signed.json > /tmp/now.json
//! cargo lambda invoke webhook --data-file /tmp/now.json
//! ```

use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use gateway_sandbox::{Credential, FixtureSigning, SignatureEncoding, sign_event};

const USAGE: &str = "usage: gateway-sandbox-sign [FLAGS] FIXTURE|-

Writes the API Gateway v2 event FIXTURE (- for stdin) to stdout with its access-key,
access-timestamp and access-sign headers set to a signature made now.

  --api-key KEY              the key (env CABITAL_SANDBOX_API_KEY)
  --api-secret SECRET        its secret (env CABITAL_SANDBOX_API_SECRET; prefer it)
  --timestamp SECS           sign for this Unix time instead of now
  --timestamp-offset SECS    add SECS (may be negative) to the time signed for
  --path PATH                sign this path instead of rawPath (WEBHOOK_SIGNED_PATH)
  --signature-encoding E     base64 (default) or hex
  --out FILE                 write there instead of stdout
  --help                     this text
";

struct Options {
    key: Option<String>,
    secret: Option<String>,
    timestamp: Option<i64>,
    offset: i64,
    path: Option<String>,
    encoding: SignatureEncoding,
    out: Option<String>,
    input: Option<String>,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options {
        key: std::env::var("CABITAL_SANDBOX_API_KEY").ok().filter(|v| !v.is_empty()),
        secret: std::env::var("CABITAL_SANDBOX_API_SECRET").ok().filter(|v| !v.is_empty()),
        timestamp: None,
        offset: 0,
        path: None,
        encoding: SignatureEncoding::default(),
        out: None,
        input: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |flag: &str| inline.clone().or_else(|| args.next()).ok_or(format!("`{flag}` needs a value"));
        match name.as_str() {
            "--help" | "-h" => return Ok(None),
            "--api-key" => o.key = Some(value("--api-key")?),
            "--api-secret" => o.secret = Some(value("--api-secret")?),
            "--timestamp" => {
                let v = value("--timestamp")?;
                o.timestamp = Some(v.parse().map_err(|_| format!("`--timestamp`: cannot read `{v}`"))?);
            }
            "--timestamp-offset" => {
                let v = value("--timestamp-offset")?;
                o.offset = v.parse().map_err(|_| format!("`--timestamp-offset`: cannot read `{v}`"))?;
            }
            "--path" => {
                let v = value("--path")?;
                if !v.starts_with('/') {
                    return Err("`--path` must start with /".to_owned());
                }
                o.path = Some(v);
            }
            "--signature-encoding" => {
                o.encoding = match value("--signature-encoding")?.as_str() {
                    "hex" => SignatureEncoding::Hex,
                    "base64" => SignatureEncoding::Base64,
                    other => return Err(format!("`--signature-encoding`: expected hex or base64, got `{other}`")),
                }
            }
            "--out" => o.out = Some(value("--out")?),
            flag if flag.starts_with("--") => return Err(format!("unknown flag `{flag}`")),
            _ if o.input.is_none() => o.input = Some(arg),
            _ => return Err(format!("unexpected argument `{arg}`")),
        }
    }
    Ok(Some(o))
}

fn run(o: Options) -> Result<(), String> {
    let (Some(key), Some(secret)) = (o.key, o.secret) else {
        return Err("give `--api-key` and `--api-secret` (or CABITAL_SANDBOX_API_KEY and CABITAL_SANDBOX_API_SECRET)"
            .to_owned());
    };
    let input = o.input.ok_or("give the fixture to sign (or - for stdin)")?;
    let text = if input == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read stdin: {e}"))?;
        text
    } else {
        std::fs::read_to_string(&input).map_err(|e| format!("cannot read {input}: {e}"))?
    };
    let mut event: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{input}: not JSON: {e}"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let base = o.timestamp.unwrap_or_else(|| i64::try_from(now).unwrap_or(i64::MAX));
    let signing = FixtureSigning {
        credential: Credential::new(key, secret),
        timestamp: base.saturating_add(o.offset),
        path: o.path,
        encoding: o.encoding,
    };
    sign_event(&mut event, &signing).map_err(|e| format!("{input}: {e}"))?;
    let mut out = serde_json::to_string_pretty(&event).map_err(|e| e.to_string())?;
    out.push('\n');
    match o.out {
        Some(path) => std::fs::write(&path, out).map_err(|e| format!("cannot write {path}: {e}")),
        None => {
            let mut stdout = std::io::stdout();
            stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| format!("stdout: {e}"))
        }
    }
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)) {
        Ok(None) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Some(options)) => match run(options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(problem) => {
                eprintln!("gateway-sandbox-sign: {problem}");
                ExitCode::FAILURE
            }
        },
        Err(problem) => {
            eprintln!("gateway-sandbox-sign: {problem}\n(see --help)");
            ExitCode::from(2)
        }
    }
}
