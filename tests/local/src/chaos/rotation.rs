//! A rotation during an outage of Secrets Manager (and only of Secrets Manager).
//!
//! The functions reach Secrets Manager through `gateway-local secrets-proxy`, a TCP
//! proxy to moto that `./scripts/local.sh` starts before them
//! (`AWS_ENDPOINT_URL_SECRETS_MANAGER`); while its outage file exists it refuses every
//! connection, and DynamoDB (moto, reached directly) stays up. Mid-run the outage
//! begins; once every function's cache has expired, a delivery signed with the secret
//! they hold must still be stored (the cached secret is served, `SecretFallback`
//! emitted); then the webhook key and secret rotate, in Secrets Manager and at the
//! sandbox, which signs new deliveries with the new pair and resends old ones under
//! their first headers; the outage ends. The webhook must pick the new pair up, and a
//! delivery signed with the old one must still be stored (`AWSPREVIOUS`, within the
//! grace window). The run's accounting then says whether any real delivery was lost.
//! It runs after the API pair's rotation, the last rotation of the run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use super::{Chaos, Credential, hex_token, lock, unix_now};
use crate::args::Args;
use crate::show::{error_chain, note};
use crate::{Failure, Result};

/// The functions' secret cache lifetime in the local stack (`CABITAL_SECRET_TTL_SECS`):
/// once the outage is older, every function has had to ask Secrets Manager again.
const LOCAL_SECRET_TTL: Duration = Duration::from_secs(30);
/// The API pair was rotated just before (AWSPREVIOUS is one version: the webhook pair
/// rotates last, so that its previous value stays `AWSPREVIOUS`): every function meets
/// a 401 and refetches it within this, before Secrets Manager goes down.
const AFTER_API_ROTATION: Duration = Duration::from_secs(20);
/// How long after the outage the webhook may take to hold the new pair: the store asks
/// Secrets Manager again at most every 10 s after a failure, and the driver's probes
/// may queue behind the sandbox's deliveries.
const PICK_UP_WITHIN: Duration = Duration::from_secs(90);

/// The outage's switch and what the run saw.
#[derive(Default)]
pub(super) struct Outage {
    /// The proxy's outage file (`--secrets-outage-file`); none: the scenario is skipped.
    file: Option<PathBuf>,
    record: Mutex<Record>,
}

#[derive(Default)]
struct Record {
    skipped: Option<String>,
    began: Option<Instant>,
    ended: Option<Instant>,
    /// During the outage, past the cache's lifetime, signed with the pair the functions hold.
    during: Option<u16>,
    /// After it, signed with the new pair: the status at last, and how long until 2xx.
    new_pair: Option<(u16, f64)>,
    /// Then signed with the old pair.
    old_pair: Option<u16>,
}

impl Outage {
    pub(super) fn from_args(args: &Args) -> Self {
        Outage { file: args.get("secrets-outage-file").map(PathBuf::from), record: Mutex::default() }
    }

    fn set(&self, down: bool) -> Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let outcome = if down { std::fs::write(file, b"outage\n") } else { std::fs::remove_file(file) };
        match outcome {
            Err(e) if down || e.kind() != std::io::ErrorKind::NotFound => Err(Failure(format!(
                "{} the outage file {}: {e}",
                if down { "writing" } else { "removing" },
                file.display()
            ))),
            _ => Ok(()),
        }
    }
}

impl Chaos {
    /// Ends the outage whatever happened (the proxy serves again).
    pub(super) fn end_secrets_outage(&self) {
        let _ = self.outage.set(false);
    }

    pub(super) async fn rotate_during_secrets_outage(&self) -> Result<()> {
        if self.outage.file.is_none() {
            lock(&self.outage.record).skipped = Some("no --secrets-outage-file".into());
            return Ok(());
        }
        let mut value = self.secret_value().await?;
        let old = match (
            value.get("webhookKey").and_then(Value::as_str),
            value.get("webhookSecret").and_then(Value::as_str),
        ) {
            (Some(key), Some(secret)) => Credential { key: key.to_owned(), secret: secret.to_owned() },
            _ => {
                let why = "webhooks are signed with the API secret here (no webhookKey/webhookSecret): the API rotation covers them";
                note(format!("the rotation during a Secrets Manager outage is skipped: {why}"));
                lock(&self.outage.record).skipped = Some(why.into());
                return Ok(());
            }
        };
        lock(&self.all_credentials).push(old.clone());
        tokio::time::sleep(AFTER_API_ROTATION).await;
        let bodies = self.probe_candidates(3).await?;
        crate::ensure(bodies.len() == 3, || "no three stored webhook bodies to probe with".to_owned())?;

        // ---- the outage: Secrets Manager refuses, DynamoDB serves
        self.outage.set(true)?;
        let began = Instant::now();
        lock(&self.outage.record).began = Some(began);
        note("Secrets Manager down (the functions' proxy refuses; DynamoDB up)");
        tokio::time::sleep(LOCAL_SECRET_TTL + Duration::from_secs(2)).await;
        // Every cache has expired: the secret held must still verify.
        let during = self.probe(&bodies[0], &old).await;
        lock(&self.outage.record).during = Some(during);
        note(format!(
            "{:.0} s into the outage, a delivery signed with the pair held -> HTTP {during}",
            began.elapsed().as_secs_f64()
        ));

        // ---- the rotation, while Secrets Manager is down for the functions
        let new = {
            let mut rng = rand::rng();
            Credential {
                key: format!("chaos-webhook-key-{}", hex_token(&mut rng, 6)),
                secret: format!("chaos-webhook-secret-{}", hex_token(&mut rng, 24)),
            }
        };
        value["webhookKey"] = json!(new.key);
        value["webhookSecret"] = json!(new.secret);
        self.secrets
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(value.to_string())
            .send()
            .await
            .map_err(|e| Failure(format!("PutSecretValue on {}: {}", self.secret_id, error_chain(&e))))?;
        lock(&self.all_credentials).push(new.clone());
        let body = json!({"apiKey": new.key, "apiSecret": new.secret});
        let answer = self
            .stack
            .send(Method::PUT, &format!("{}/_sandbox/webhook-credential", self.stack.sandbox), Some(&body))
            .await?;
        crate::ensure(answer.status == 204, || format!("PUT /_sandbox/webhook-credential: HTTP {}", answer.status))?;
        note("webhook key and secret rotated (Secrets Manager, sandbox) during the outage");
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.outage.set(false)?;
        lock(&self.outage.record).ended = Some(Instant::now());
        note(format!("Secrets Manager back after {:.0} s", began.elapsed().as_secs_f64()));

        // ---- the new pair picked up, the old one still taken (AWSPREVIOUS)
        let since = Instant::now();
        let mut status = 0;
        while since.elapsed() < PICK_UP_WITHIN {
            status = self.probe(&bodies[1], &new).await;
            if (200..300).contains(&status) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        lock(&self.outage.record).new_pair = Some((status, since.elapsed().as_secs_f64()));
        let old_pair = self.probe(&bodies[2], &old).await;
        lock(&self.outage.record).old_pair = Some(old_pair);
        note(format!(
            "signed with the new pair -> HTTP {status} after {:.0} s; then with the old pair -> HTTP {old_pair}",
            since.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Posts `body` signed now with `credential`; registers it as a probe (one extra
    /// delivery allowed) once it may have been stored. 0: no answer.
    async fn probe(&self, body: &str, credential: &Credential) -> u16 {
        let answer = tokio::time::timeout(
            Duration::from_secs(60),
            self.post_webhook(body.as_bytes(), Some((credential, unix_now())), None),
        )
        .await;
        let status = answer.ok().and_then(|r| r.ok()).unwrap_or_default();
        if !(400..500).contains(&status) {
            let mut sent = lock(&self.sent);
            if !sent.probe_bodies.iter().any(|b| b == body) {
                sent.probe_bodies.push(body.to_owned());
            }
        }
        status
    }

    /// Distinct bodies the webhook already stored, not probed before.
    async fn probe_candidates(&self, n: usize) -> Result<Vec<String>> {
        let deliveries = self.stack.sandbox_get("/_sandbox/deliveries").await?;
        let prefix = format!("chaos-{}-", self.run);
        let probed = lock(&self.sent).probe_bodies.clone();
        let mut out: Vec<String> = Vec::new();
        for d in deliveries.as_array().into_iter().flatten().rev() {
            let Some(body) = d.get("body").and_then(Value::as_str) else { continue };
            if d.get("success") == Some(&json!(true))
                && body.contains(&prefix)
                && !probed.iter().any(|b| b == body)
                && !out.iter().any(|b| b == body)
            {
                out.push(body.to_owned());
                if out.len() == n {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub(super) fn secrets_outage_violations(&self) -> Vec<String> {
        let r = lock(&self.outage.record);
        // Skipped on purpose (run by hand without the proxy, or webhooks signed with
        // the API secret): said when it was skipped.
        if r.skipped.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if r.began.is_none() || r.ended.is_none() {
            out.push("the Secrets Manager outage never ran to its end".to_owned());
            return out;
        }
        match r.during {
            Some(s) if (200..300).contains(&s) => {}
            other => out.push(format!(
                "during the Secrets Manager outage, past the cache's lifetime, a delivery signed with the secret held was answered {other:?}, not 2xx (the cached secret was not served)"
            )),
        }
        match r.new_pair {
            Some((s, _)) if (200..300).contains(&s) => {}
            other => out.push(format!(
                "after the outage, a delivery signed with the new pair was answered {other:?} at last, not 2xx"
            )),
        }
        match r.old_pair {
            Some(s) if (200..300).contains(&s) => {}
            other => out.push(format!(
                "after the rotation, a delivery signed with the previous pair was answered {other:?}, not 2xx (AWSPREVIOUS within the grace window)"
            )),
        }
        // Each fallback is one EMF line on the functions' stdout.
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let emitted = log.lines().filter(|l| l.contains("\"SecretFallback\"")).count();
        if emitted == 0 {
            out.push("no SecretFallback metric in the functions' log: the outage reached no function".to_owned());
        }
        out
    }
}

// ---------------------------------------------------------------- the proxy

/// The flags `secrets-proxy` takes.
pub const PROXY_FLAGS: &[&str] = &["to", "outage-file"];

/// `gateway-local secrets-proxy --to URL --outage-file PATH`: a TCP proxy on 127.0.0.1
/// to `--to` (moto); while PATH exists, every connection is refused (closed at once)
/// and the open ones are cut. Prints `listening on http://127.0.0.1:PORT`; runs until killed.
pub async fn run_secrets_proxy(args: &Args) -> Result<()> {
    let to = url::Url::parse(args.required("to")?).map_err(|e| Failure(format!("--to: {e}")))?;
    let target = format!(
        "{}:{}",
        to.host_str().ok_or_else(|| Failure("--to: no host".to_owned()))?,
        to.port_or_known_default().ok_or_else(|| Failure("--to: no port".to_owned()))?
    );
    let file = PathBuf::from(args.required("outage-file")?);
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| Failure(format!("binding 127.0.0.1: {e}")))?;
    let addr = listener.local_addr().map_err(|e| Failure(e.to_string()))?;
    println!("listening on http://{addr} (to {target}; refusing while {} exists)", file.display());
    let down = Arc::new(AtomicBool::new(file.exists()));
    let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
    {
        let (down, open, file) = (down.clone(), open.clone(), file.clone());
        tokio::spawn(async move {
            loop {
                let now_down = file.exists();
                if now_down != down.swap(now_down, Ordering::SeqCst) {
                    println!("outage {}", if now_down { "on: refusing" } else { "off: serving" });
                    if now_down {
                        for task in lock(&open).drain(..) {
                            task.abort();
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    loop {
        let (mut inbound, _) = listener.accept().await.map_err(|e| Failure(format!("accept: {e}")))?;
        if down.load(Ordering::SeqCst) {
            continue; // dropped: closed at once
        }
        let target = target.clone();
        let task = tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        let mut open = lock(&open);
        open.retain(|t| !t.is_finished());
        open.push(task.abort_handle());
    }
}
