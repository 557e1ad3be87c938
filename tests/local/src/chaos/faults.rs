//! The faults: the sandbox's (duplicates, reordering, drops, lost acks, 5xx, its clock),
//! forged and malformed deliveries, moto frozen once, the API secret rotated.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng as _};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Chaos, Credential, Personal, hex_token, lock, unix_now, word};
use crate::show::{error_chain, note};
use crate::{Failure, Result};

/// What the sandbox's webhook attempts may take before it gives up (its default).
pub(super) const SANDBOX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the driver's probe waits for the webhook's answer while moto is stopped: the
/// function must answer 5xx within [`SANDBOX_WEBHOOK_TIMEOUT`] of its own time (checked
/// in its log), but on a loaded machine the request may first queue behind others in
/// `cargo lambda watch`, which the function cannot help.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// The sandbox's clock minus real time while the faults are on.
pub(super) const CLOCK_OFFSET_SECS: i64 = 7;
/// Copies of every webhook while the faults are on: each body is delivered up to 5 times.
pub(super) const DUPLICATES: u32 = 4;

/// `ACCESS-SIGN` as Cabital computes it: hex HMAC-SHA256 over timestamp + method + path + body.
pub(super) fn sign(secret: &str, timestamp: &str, path: &str, body: &[u8]) -> String {
    // ok: HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b"POST");
    mac.update(path.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Bad deliveries posted and what they got.
#[derive(Default)]
pub(super) struct BadInput {
    pub(super) forged: u64,
    pub(super) forged_refused: u64,
    /// Genuine signatures an hour old (late replays) and those answered as expected.
    pub(super) late: u64,
    pub(super) late_as_expected: u64,
    pub(super) malformed: u64,
    pub(super) malformed_refused: u64,
    /// (kind, status) of every answer that was not a 4xx.
    pub(super) wrong: Vec<(String, String)>,
    pub(super) statuses: BTreeMap<u16, u64>,
}

#[derive(Default)]
pub(super) struct MotoStop {
    pub(super) began: Option<Instant>,
    pub(super) ended: Option<Instant>,
    /// The same, on the wall clock, to pick the sandbox's attempts made meanwhile.
    pub(super) wall: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    /// The probes' answers: (status, seconds taken).
    pub(super) probes: Vec<(u16, f64)>,
}

/// A share of webhook 2xx answers the sandbox takes as failed, so that the delivery is
/// retried (with `--retry-headers original`, under its first attempt's old headers).
const LOST_ACK_RATE: f64 = 0.15;

/// The chaos faults: every webhook up to five times, reordered, a share dropped, a share
/// of acks lost; 500, 503, 429 and latency on the API; the sandbox's clock a few
/// seconds off.
pub(super) fn chaos_faults() -> Value {
    json!({
        "latencyMs": 20,
        "errorRate500": 0.03,
        "errorRate503": 0.05,
        "rateLimitPerSec": 40.0,
        "dropWebhookRate": 0.2,
        "duplicateWebhooks": DUPLICATES,
        "reorderWebhooks": true,
        "reorderWindowMs": 2000,
        "clockOffsetSecs": CLOCK_OFFSET_SECS,
        "webhookLostAckRate": LOST_ACK_RATE
    })
}

impl Chaos {
    // ------------------------------------------------------------ mid-run events

    pub(super) async fn mid_run_events(self: Arc<Self>) -> Result<()> {
        let stop_at = (self.cases * 2 / 5).max(1);
        let rotate_at = (self.cases * 13 / 20).max(stop_at + 1);
        while self.created_count.load(Ordering::SeqCst) < stop_at {
            if self.finished.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.stop_moto().await?;
        while self.created_count.load(Ordering::SeqCst) < rotate_at {
            if self.finished.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.rotate().await?;
        // After the API pair's rotation, not before: AWSPREVIOUS is one version, and
        // resends of deliveries signed before the webhook pair's rotation need it.
        self.rotate_during_secrets_outage().await
    }

    /// Freezes moto for a few seconds: the webhook must answer 5xx meanwhile (so that
    /// Cabital retries), and the retries must bring the events in afterwards.
    pub(super) async fn stop_moto(&self) -> Result<()> {
        // A body the webhook has already accepted: a probe that is stored anyway only
        // adds a delivery to it.
        let deliveries = self.stack.sandbox_get("/_sandbox/deliveries").await?;
        let probe = deliveries
            .as_array()
            .and_then(|list| {
                list.iter()
                    .rev()
                    .find(|d| d.get("success") == Some(&json!(true)) && d.get("body").is_some_and(Value::is_string))
            })
            .and_then(|d| d.get("body").and_then(Value::as_str))
            .map(str::to_owned);
        // No bad input during the stop, no new case until it began, and the webhook's
        // queue drained first (`cargo lambda watch` serves one request at a time): the
        // probe then measures the function's answer, not a queue.
        self.bad_paused.store(true, Ordering::SeqCst);
        self.hold.store(true, Ordering::SeqCst);
        let drain_until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < drain_until && self.backlog().await.unwrap_or(0) > 2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        note(format!("SIGSTOP moto (pid {}) for {} s", self.moto_pid, self.moto_stop.as_secs()));
        signal(self.moto_pid, "STOP")?;
        let began = Instant::now();
        lock(&self.stop).began = Some(began);
        let wall_began = time::OffsetDateTime::now_utc();
        self.hold.store(false, Ordering::SeqCst);
        // The probe first, then Cabital's change: its deliveries would queue ahead of the
        // probe (`cargo lambda watch` serves one request at a time), each waiting out
        // the store's time limit.
        if let Some(body) = probe {
            lock(&self.sent).probe_bodies.push(body.clone());
            let credential = lock(&self.credential).clone();
            let t = Instant::now();
            let answer = tokio::time::timeout(
                PROBE_TIMEOUT,
                self.post_webhook(body.as_bytes(), Some((&credential, unix_now())), None),
            )
            .await;
            // 0: no answer at all.
            let status = answer.ok().and_then(|r| r.ok()).unwrap_or_default();
            lock(&self.stop).probes.push((status, t.elapsed().as_secs_f64()));
            note(format!("a genuine delivery during the stop -> HTTP {status} in {:.1} s", t.elapsed().as_secs_f64()));
        }
        // Cabital's ongoing screening changes a case now: its webhooks arrive while the
        // table is frozen, are answered 5xx (or time out), and must come in by retry.
        let target = lock(&self.sent).ogs_for_good.last().cloned();
        if let Some(id) = target {
            let comment = {
                let mut rng = rand::rng();
                let (w, h) = (word(&mut rng, 8), hex_token(&mut rng, 5));
                lock(&self.sent).personal(Personal::Comment, &[&w, &h]);
                format!("Ongoing {w} {h}")
            };
            let change = json!({"suggestion": "SUGGEST_TO_REJECT", "comment": comment, "notify": true});
            self.stack.sandbox_post(&format!("/_sandbox/cases/{id}/suggestion"), &change).await?;
            note(format!("Cabital changes case {id}'s suggestion during the stop: its webhooks meet the frozen table"));
        }
        let left = self.moto_stop.saturating_sub(began.elapsed());
        tokio::time::sleep(left).await;
        signal(self.moto_pid, "CONT")?;
        {
            let mut stop = lock(&self.stop);
            stop.ended = Some(Instant::now());
            stop.wall = Some((wall_began, time::OffsetDateTime::now_utc()));
        }
        note(format!("SIGCONT moto after {:.1} s", began.elapsed().as_secs_f64()));
        self.bad_paused.store(false, Ordering::SeqCst);
        Ok(())
    }

    pub(super) fn resume_moto(&self) {
        let stopped = {
            let stop = lock(&self.stop);
            stop.began.is_some() && stop.ended.is_none()
        };
        if stopped {
            let _ = signal(self.moto_pid, "CONT");
        }
    }

    /// A new key and secret: first into Secrets Manager, then Cabital revokes the old
    /// pair. The functions see it after their cache's lifetime or at their first 401.
    pub(super) async fn rotate(&self) -> Result<()> {
        self.rotation_begun.store(true, Ordering::SeqCst);
        let stats = self.stack.sandbox_get("/_sandbox/stats").await?;
        self.unauthorized_before_rotation
            .store(stats.get("unauthorized").and_then(Value::as_u64).unwrap_or(0), Ordering::SeqCst);
        let fresh = {
            let mut rng = rand::rng();
            Credential {
                key: format!("chaos-key-{}", hex_token(&mut rng, 6)),
                secret: format!("chaos-secret-{}", hex_token(&mut rng, 24)),
            }
        };
        // The rest of the secret (a separate webhook secret) stays as it is.
        let mut value = self.secret_value().await?;
        value["apiKey"] = json!(fresh.key);
        value["apiSecret"] = json!(fresh.secret);
        let value = value.to_string();
        self.secrets
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| Failure(format!("PutSecretValue on {}: {}", self.secret_id, error_chain(&e))))?;
        lock(&self.all_credentials).push(fresh.clone());
        let body = json!([{"apiKey": fresh.key, "apiSecret": fresh.secret}]);
        let answer =
            self.stack.send(Method::PUT, &format!("{}/_sandbox/credentials", self.stack.sandbox), Some(&body)).await?;
        crate::ensure(answer.status == 204, || format!("PUT /_sandbox/credentials: HTTP {}", answer.status))?;
        *lock(&self.credential) = fresh;
        *lock(&self.rotated_at) = Some(Instant::now());
        note("secret rotated: a new {apiKey, apiSecret} in Secrets Manager, the old pair revoked at the sandbox");
        Ok(())
    }

    // ------------------------------------------------------------ bad input

    pub(super) async fn bad_input_loop(self: Arc<Self>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed ^ 0xbad);
        let mut n: u64 = 0;
        while !self.finished.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(rng.random_range(150..450))).await;
            if self.bad_paused.load(Ordering::SeqCst) {
                continue;
            }
            n += 1;
            let target = {
                let sent = lock(&self.sent);
                if sent.created.is_empty() || rng.random_bool(0.3) {
                    None
                } else {
                    Some(sent.created[rng.random_range(0..sent.created.len())].clone())
                }
            };
            let known = target.is_some();
            let (id, ext) = match target {
                Some(t) => t,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    lock(&self.sent).forged_ids.push(id.clone());
                    (id, format!("chaos-{}-forged-{n}", self.run))
                }
            };
            let marker = format!("chaos-bad-{}-{n}", self.run);
            let body = json!({
                "caseSystemId": id,
                "caseSuggestion": "SUGGEST_TO_REJECT",
                "comment": format!("Forged {marker}"),
                "externalCaseId": ext,
            })
            .to_string();
            let credential = lock(&self.credential).clone();
            let now = unix_now();
            let (kind, forged, outcome) = match n % 9 {
                0 => {
                    let wrong = Credential { key: credential.key.clone(), secret: format!("not-{}", marker) };
                    ("bad signature", true, self.post_webhook(body.as_bytes(), Some((&wrong, now)), None).await)
                }
                1 => {
                    // A genuine signature an hour old: a late delivery, taken as a hint
                    // (a notice on a known case, refused when Cabital does not know it).
                    let outcome = self.post_webhook(body.as_bytes(), Some((&credential, now - 3600)), None).await;
                    // Signed with a pair the rotation revoked meanwhile, or with the new pair
                    // before the function sees it (its secret cache, at most a minute): 401.
                    let revoked = self.rotation_begun.load(Ordering::SeqCst)
                        && lock(&self.rotated_at).is_none_or(|at| {
                            at.elapsed() < Duration::from_secs(60) || lock(&self.credential).key != credential.key
                        });
                    let mut bad = lock(&self.bad);
                    bad.late += 1;
                    match (&outcome, known) {
                        (Ok(200), true) | (Ok(404), false) => bad.late_as_expected += 1,
                        (Ok(401), _) if revoked => bad.late_as_expected += 1,
                        (Ok(status), _) => bad.wrong.push(("late replay".to_owned(), format!("HTTP {status}"))),
                        (Err(e), _) => bad.wrong.push(("late replay".to_owned(), format!("no answer ({})", e.0))),
                    }
                    continue;
                }
                2 => {
                    let tampered = body.replace("SUGGEST_TO_REJECT", "SUGGEST_TO_ACCEPT");
                    let signature = sign(&credential.secret, &now.to_string(), &self.webhook_path, body.as_bytes());
                    let headers = (&credential, now, signature);
                    ("tampered body", true, self.post_webhook(tampered.as_bytes(), None, Some(headers)).await)
                }
                3 => ("unsigned", true, self.post_webhook(body.as_bytes(), None, None).await),
                4 => {
                    let unknown = Credential { key: format!("unknown-{marker}"), secret: credential.secret.clone() };
                    ("unknown key", true, self.post_webhook(body.as_bytes(), Some((&unknown, now)), None).await)
                }
                5 => {
                    let text = format!("{{\"caseSystemId\": \"{id}\", not json {marker}");
                    ("not JSON", false, self.post_webhook(text.as_bytes(), Some((&credential, now)), None).await)
                }
                6 => {
                    let wrong = json!({"caseSystemId": id, "caseSuggestion": "MAYBE", "comment": marker, "externalCaseId": ext})
                        .to_string();
                    (
                        "unknown suggestion",
                        false,
                        self.post_webhook(wrong.as_bytes(), Some((&credential, now)), None).await,
                    )
                }
                7 => {
                    let wrong = json!({"case": id, "suggestion": 3, "note": marker}).to_string();
                    ("wrong fields", false, self.post_webhook(wrong.as_bytes(), Some((&credential, now)), None).await)
                }
                _ => {
                    let big = json!({
                        "caseSystemId": id,
                        "caseSuggestion": "SUGGEST_TO_ACCEPT",
                        "comment": format!("{marker} {}", "x".repeat(70 * 1024)),
                        "externalCaseId": ext,
                    })
                    .to_string();
                    ("oversize", false, self.post_webhook(big.as_bytes(), Some((&credential, now)), None).await)
                }
            };
            let mut bad = lock(&self.bad);
            if forged {
                bad.forged += 1;
            } else {
                bad.malformed += 1;
            }
            match outcome {
                Ok(status) => {
                    *bad.statuses.entry(status).or_default() += 1;
                    if (400..500).contains(&status) {
                        if forged {
                            bad.forged_refused += 1;
                        } else {
                            bad.malformed_refused += 1;
                        }
                    } else {
                        bad.wrong.push((kind.to_owned(), format!("HTTP {status}")));
                    }
                }
                Err(e) => bad.wrong.push((kind.to_owned(), format!("no answer ({})", e.0))),
            }
        }
    }

    /// POSTs a delivery to the webhook, signed with `sign_with` (credential, timestamp),
    /// or with the given headers as they are, or unsigned. Returns the status.
    pub(super) async fn post_webhook(
        &self,
        body: &[u8],
        sign_with: Option<(&Credential, i64)>,
        headers: Option<(&Credential, i64, String)>,
    ) -> Result<u16> {
        let mut request =
            self.stack.client().post(&self.webhook).header("content-type", "application/json").body(body.to_vec());
        if let Some((credential, timestamp)) = sign_with {
            let ts = timestamp.to_string();
            let signature = sign(&credential.secret, &ts, &self.webhook_path, body);
            request = request
                .header("ACCESS-KEY", &credential.key)
                .header("ACCESS-TIMESTAMP", ts)
                .header("ACCESS-SIGN", signature);
        }
        if let Some((credential, timestamp, signature)) = headers {
            request = request
                .header("ACCESS-KEY", &credential.key)
                .header("ACCESS-TIMESTAMP", timestamp.to_string())
                .header("ACCESS-SIGN", signature);
        }
        let response =
            request.send().await.map_err(|e| Failure(format!("POST {}: {}", self.webhook, error_chain(&e))))?;
        Ok(response.status().as_u16())
    }

    /// The key and secret in force, from Secrets Manager.
    pub(super) async fn read_secret(&self) -> Result<Credential> {
        let value = self.secret_value().await?;
        let key = value.get("apiKey").and_then(Value::as_str).unwrap_or_default().to_owned();
        let secret = value.get("apiSecret").and_then(Value::as_str).unwrap_or_default().to_owned();
        crate::ensure(!key.is_empty() && !secret.is_empty(), || {
            format!("secret {} is not {{\"apiKey\", \"apiSecret\"}}", self.secret_id)
        })?;
        Ok(Credential { key, secret })
    }

    /// The whole secret, as JSON.
    pub(super) async fn secret_value(&self) -> Result<Value> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| Failure(format!("GetSecretValue {}: {}", self.secret_id, error_chain(&e))))?;
        serde_json::from_str(out.secret_string().unwrap_or_default())
            .map_err(|_| Failure(format!("secret {} is not JSON", self.secret_id)))
    }
}

/// `kill -SIG PID`.
fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .map_err(|e| Failure(format!("kill -{sig} {pid}: {e}")))?;
    crate::ensure(status.success(), || format!("kill -{sig} {pid} failed ({status})"))
}
