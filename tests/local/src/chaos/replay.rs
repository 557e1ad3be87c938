//! Replay and flood: a captured delivery replayed 100 times at once must be stored once
//! and cost Cabital at most one more `GET`; 2,000 forged deliveries sent while the
//! sandbox's real ones flow must all be refused, and every real one still stored (the
//! run's own accounting: lost 0).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng as _};
use serde_json::{Value, json};

use super::faults::sign;
use super::{Chaos, hex_token, lock, num, unix_now};
use crate::show::{error_chain, note, ok};
use crate::{Failure, Result};

/// Copies of the captured delivery sent at once.
const REPLAYS: usize = 100;
/// Forged deliveries in the flood.
const FLOOD: usize = 2_000;
/// Forged deliveries in flight at once: enough to keep the webhook busy between the
/// real deliveries (`cargo lambda watch` serves one request at a time), few enough that
/// a real one never waits out the sandbox's 10 s behind them.
const FLOOD_IN_FLIGHT: usize = 4;
/// The flood starts once this share of the cases has been created, so it meets real
/// deliveries (and the sandbox's retries of them).
const FLOOD_FROM: f64 = 0.1;
/// Flood case ids looked up in the table afterwards (each a read of moto).
const FLOOD_SAMPLE: usize = 50;

/// What the replay and the flood did.
#[derive(Default)]
pub(super) struct ReplayRecord {
    /// The captured delivery: answers by `verification`, stored deliveries of its body
    /// before and after, the sandbox's GETs of its case before and after.
    pub(super) replay: Option<ReplayOutcome>,
    pub(super) flood_sent: u64,
    /// Sent while cases were still being created (real deliveries flowing).
    pub(super) flood_during_cases: u64,
    pub(super) flood_refused: u64,
    pub(super) flood_secs: f64,
    /// (status or error) of every forged delivery not refused with a 4xx.
    pub(super) flood_wrong: Vec<String>,
    pub(super) flood_ids: Vec<String>,
    /// What [`Chaos::check_replay`] found.
    pub(super) violations: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct ReplayOutcome {
    pub(super) case_system_id: String,
    pub(super) signed: u64,
    pub(super) replays: u64,
    pub(super) other: Vec<String>,
    pub(super) stored_before: u64,
    pub(super) stored_after: u64,
    pub(super) gets_before: u64,
    pub(super) gets_after: u64,
    pub(super) secs: f64,
}

/// A 4xx: refused, nothing stored.
fn refused(status: u16) -> bool {
    (400..500).contains(&status)
}

impl Chaos {
    // ------------------------------------------------------------ the flood

    /// Sends [`FLOOD`] forged deliveries (a signature made with a guessed secret, a random
    /// case id), [`FLOOD_IN_FLIGHT`] at a time, from [`FLOOD_FROM`] of the cases on;
    /// paused while moto is stopped, as the other bad input is.
    pub(super) async fn flood(self: Arc<Self>) {
        let from = ((self.cases as f64) * FLOOD_FROM).ceil() as usize;
        while self.created_count.load(Ordering::SeqCst) < from && !self.finished.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let started = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed ^ 0xf100d);
        let mut in_flight = tokio::task::JoinSet::new();
        for n in 0..FLOOD {
            while self.bad_paused.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if in_flight.len() >= FLOOD_IN_FLIGHT {
                in_flight.join_next().await;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let body = json!({
                "caseSystemId": id,
                "caseSuggestion": "SUGGEST_TO_ACCEPT",
                "comment": format!("Flood chaos-bad-{}-flood-{n}", self.run),
                "externalCaseId": format!("chaos-{}-flood-{n}", self.run),
            })
            .to_string();
            let guessed = format!("guess-{}", hex_token(&mut rng, 16));
            let ts = unix_now().to_string();
            let signature = sign(&guessed, &ts, &self.webhook_path, body.as_bytes());
            let key = lock(&self.credential).key.clone();
            let during_cases = !self.finished.load(Ordering::SeqCst);
            let me = Arc::clone(&self);
            if n % (FLOOD / FLOOD_SAMPLE).max(1) == 0 {
                lock(&self.replay_record).flood_ids.push(id);
            }
            in_flight.spawn(async move {
                let answer = me
                    .stack
                    .client()
                    .post(&me.webhook)
                    .header("content-type", "application/json")
                    .header("ACCESS-KEY", key)
                    .header("ACCESS-TIMESTAMP", ts)
                    .header("ACCESS-SIGN", signature)
                    .body(body)
                    .send()
                    .await;
                let mut record = lock(&me.replay_record);
                record.flood_sent += 1;
                record.flood_during_cases += u64::from(during_cases);
                match answer {
                    Ok(r) if refused(r.status().as_u16()) => record.flood_refused += 1,
                    Ok(r) => record.flood_wrong.push(format!("HTTP {}", r.status().as_u16())),
                    Err(e) => record.flood_wrong.push(format!("no answer ({})", error_chain(&e))),
                }
            });
            // Spread over the run rather than all at its start.
            if rng.random_bool(0.5) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        while in_flight.join_next().await.is_some() {}
        lock(&self.replay_record).flood_secs = started.elapsed().as_secs_f64();
    }

    // ------------------------------------------------------------ the replay

    /// Takes a body the webhook stored, signs it once as Cabital would, and sends that
    /// one request [`REPLAYS`] times at once. Run once everything has settled, so that
    /// nothing else reads the case from Cabital meanwhile.
    pub(super) async fn replay_capture(&self) -> Result<()> {
        let prefix = format!("chaos-{}-", self.run);
        let deliveries = self.stack.sandbox_get("/_sandbox/deliveries").await?;
        let body = deliveries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d.get("success") == Some(&json!(true)))
            .filter_map(|d| d.get("body").and_then(Value::as_str))
            .find(|b| b.contains(&prefix))
            .map(str::to_owned)
            .ok_or_else(|| Failure("no delivery answered 2xx to capture".to_owned()))?;
        let parsed: Value =
            serde_json::from_str(&body).map_err(|_| Failure("a sandbox body is not JSON".to_owned()))?;
        let id_text = parsed.get("caseSystemId").and_then(Value::as_str).unwrap_or_default().to_owned();
        let id: gateway_cabital::CaseSystemId =
            id_text.parse().map_err(|_| Failure(format!("a sandbox body names case `{id_text}`")))?;

        let gets = || async {
            let counts = self.stack.sandbox_get(&format!("/_sandbox/cases/{id}/requests")).await?;
            Ok::<u64, Failure>(num(&counts, "GET /api/v1/cases/{caseSystemId}"))
        };
        let stored_before = self.stored_deliveries(&id, &body).await?;
        let gets_before = gets().await?;

        let credential = lock(&self.credential).clone();
        let ts = unix_now().to_string();
        let signature = sign(&credential.secret, &ts, &self.webhook_path, body.as_bytes());
        let started = Instant::now();
        let sends = (0..REPLAYS).map(|_| {
            self.stack
                .client()
                .post(&self.webhook)
                .header("content-type", "application/json")
                .header("ACCESS-KEY", &credential.key)
                .header("ACCESS-TIMESTAMP", &ts)
                .header("ACCESS-SIGN", &signature)
                .body(body.clone())
                .send()
        });
        let answers = futures::future::join_all(sends).await;
        let secs = started.elapsed().as_secs_f64();
        let (mut signed, mut replays, mut other) = (0, 0, Vec::new());
        for answer in answers {
            match answer {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let verification = r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v.get("verification").and_then(Value::as_str).map(str::to_owned));
                    match (status, verification.as_deref()) {
                        (200, Some("signed")) => signed += 1,
                        (200, Some("replay")) => replays += 1,
                        (s, v) => other.push(format!("HTTP {s} {}", v.unwrap_or("-"))),
                    }
                }
                Err(e) => other.push(format!("no answer ({})", error_chain(&e))),
            }
        }
        let outcome = ReplayOutcome {
            case_system_id: id_text,
            signed,
            replays,
            other,
            stored_before,
            stored_after: self.stored_deliveries(&id, &body).await?,
            gets_before,
            gets_after: gets().await?,
            secs,
        };
        note(format!(
            "one delivery of case {} signed once and sent {REPLAYS} times at once: {} stored, {} answered as replays, \
             deliveries of its body {} -> {}, Cabital's GETs of the case {} -> {} ({secs:.1} s)",
            outcome.case_system_id,
            outcome.signed,
            outcome.replays,
            outcome.stored_before,
            outcome.stored_after,
            outcome.gets_before,
            outcome.gets_after
        ));
        lock(&self.replay_record).replay = Some(outcome);
        Ok(())
    }

    /// The delivery count of `body`'s WEBHOOK event (0 when there is none).
    async fn stored_deliveries(&self, id: &gateway_cabital::CaseSystemId, body: &str) -> Result<u64> {
        let mut cursor: Option<String> = None;
        let mut total = 0;
        loop {
            let page = self
                .store
                .timeline(id, gateway_store::TimelineOrder::Oldest, gateway_store::MAX_TIMELINE_PAGE, cursor.as_deref())
                .await
                .map_err(|e| Failure(format!("reading case {id}'s events: {e}")))?;
            for event in &page.events {
                if let gateway_store::EventDetail::Webhook { body: stored, deliveries, .. } = &event.detail
                    && stored.expose() == body
                {
                    total += u64::from(*deliveries);
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(total),
            }
        }
    }

    // ------------------------------------------------------------ figures and verdict

    /// The report's rows.
    pub(super) fn replay_rows(&self) -> Vec<(&'static str, String)> {
        let record = lock(&self.replay_record);
        let replay = match &record.replay {
            Some(r) => format!(
                "1 capture sent {REPLAYS} times at once: {} stored, {} answered 200 as replays; deliveries of its body \
                 {} -> {}; Cabital's GETs of its case {} -> {} ({:.1} s)",
                r.signed, r.replays, r.stored_before, r.stored_after, r.gets_before, r.gets_after, r.secs
            ),
            None => "not run".to_owned(),
        };
        vec![
            ("replay", replay),
            (
                "forged flood",
                format!(
                    "{} of {} refused with a 4xx ({} sent while cases were being created) in {:.0} s",
                    record.flood_refused, record.flood_sent, record.flood_during_cases, record.flood_secs
                ),
            ),
        ]
    }

    /// Checks the replay and the flood, for the verdict; looks a sample of the flood's
    /// case ids up in the table (none may exist).
    pub(super) async fn check_replay(&self) {
        let violations = self.replay_violations().await;
        if violations.is_empty() {
            ok("the capture stored once at the cost of at most one GET; every forged delivery refused");
        }
        lock(&self.replay_record).violations = violations;
    }

    async fn replay_violations(&self) -> Vec<String> {
        let (replay, sent, refused, during, wrong, ids) = {
            let r = lock(&self.replay_record);
            (
                r.replay.clone(),
                r.flood_sent,
                r.flood_refused,
                r.flood_during_cases,
                r.flood_wrong.clone(),
                r.flood_ids.clone(),
            )
        };
        let mut out = Vec::new();
        match replay {
            None => out.push("the captured delivery was never replayed".to_owned()),
            Some(r) => {
                if r.signed != 1 || r.replays != REPLAYS as u64 - 1 || !r.other.is_empty() {
                    out.push(format!(
                        "a capture sent {REPLAYS} times was stored {} time(s), {} answered as replays, others: {:?}",
                        r.signed, r.replays, r.other
                    ));
                }
                if r.stored_after != r.stored_before + 1 {
                    out.push(format!(
                        "a capture sent {REPLAYS} times moved its body's deliveries {} -> {}, not by exactly 1",
                        r.stored_before, r.stored_after
                    ));
                }
                if r.gets_after > r.gets_before + 1 {
                    out.push(format!(
                        "a capture sent {REPLAYS} times cost {} GETs of case {} (at most 1)",
                        r.gets_after - r.gets_before,
                        r.case_system_id
                    ));
                }
            }
        }
        if sent != FLOOD as u64 || refused != sent {
            out.push(format!("the forged flood: {refused} of {sent} refused (of {FLOOD}); not refused: {wrong:?}"));
        }
        if during == 0 {
            out.push("the forged flood met no real delivery (all of it sent after the cases)".to_owned());
        }
        for id in ids {
            let Ok(case_id) = id.parse::<gateway_cabital::CaseSystemId>() else { continue };
            match self.store.get_case(&case_id).await {
                Ok(None) => {}
                Ok(Some(_)) => out.push(format!("a forged flood delivery created case {id}")),
                Err(e) => out.push(format!("reading case {id}: {e}")),
            }
        }
        out
    }
}
