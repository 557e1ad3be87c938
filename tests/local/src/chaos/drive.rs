//! Driving the cases through the API as a partner's backend would, and the reconciler
//! on its schedule.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gateway_cabital::CaseSystemId;
use rand::{Rng, SeedableRng as _};
use reqwest::Method;
use serde_json::{Value, json};

use super::faults::DUPLICATES;
use super::{Chaos, Personal, hex_token, lock, num, word};
use crate::{Failure, Result};

impl Chaos {
    pub(super) async fn worker(self: Arc<Self>, seed: u64) -> Result<()> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        loop {
            if self.finished.load(Ordering::SeqCst) {
                return Ok(());
            }
            let i = self.next_case.fetch_add(1, Ordering::SeqCst);
            if i >= self.cases {
                return Ok(());
            }
            while self.hold.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.wait_for_backlog().await;
            self.one_case(i, &mut rng).await?;
        }
    }

    /// Keeps the webhook's queue within bounds: `cargo lambda watch` serves a function
    /// one request at a time, and a delivery that waits longer than the sandbox's
    /// timeout counts as failed (it is retried, but the run would only measure a queue).
    pub(super) async fn wait_for_backlog(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            match self.backlog().await {
                Some(backlog) if backlog > self.max_backlog => {}
                _ => return,
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Webhook deliveries scheduled since the run began and not yet answered 2xx (an
    /// estimate from the sandbox's counters: waiting, in flight, or awaiting a retry).
    pub(super) async fn backlog(&self) -> Option<u64> {
        let stats = self.stack.sandbox_get("/_sandbox/stats").await.ok()?;
        let (notifications, dropped, successes, acks_lost) = *lock(&self.baseline);
        let since = |k: &str, base: u64| num(&stats, k).saturating_sub(base);
        let scheduled = since("webhookNotifications", notifications) * u64::from(DUPLICATES + 1);
        // A 2xx whose ack the sandbox "lost" is retried: not done.
        let done = since("webhookDeliveriesDropped", dropped)
            + since("webhookSuccesses", successes).saturating_sub(since("webhookAcksLost", acks_lost));
        Some(scheduled.saturating_sub(done))
    }

    pub(super) async fn one_case(&self, i: usize, rng: &mut rand::rngs::StdRng) -> Result<()> {
        // The name decides the sandbox's screening: most clear, some on a list, some unclear.
        let (first, last) = (word(rng, 9), word(rng, 11));
        let mut full_name = format!("{first} {last}");
        match rng.random_range(0..10) {
            0 | 1 => full_name.push_str(" Sanctioned"),
            2 => full_name.push_str(" Unclear"),
            _ => {}
        }
        let dob = format!(
            "{:04}-{:02}-{:02}",
            rng.random_range(1935..2005),
            rng.random_range(1..=12),
            rng.random_range(1..=28)
        );
        let gender = if rng.random_bool(0.5) { "FEMALE" } else { "MALE" };
        {
            let mut sent = lock(&self.sent);
            sent.personal(Personal::FullName, &[&first, &last]);
            sent.personal(Personal::DateOfBirth, &[&dob]);
        }
        let mut id = None;
        for attempt in 0..4 {
            let ext = format!("chaos-{}-{i:05}-{attempt}", self.run);
            let body = json!({
                "externalCaseId": ext,
                "screenType": "INDIVIDUAL",
                "fullName": full_name,
                "individualInfo": {"gender": gender, "dob": dob, "nationality": "GBR", "residentialCountry": "SGP"},
                "organizationInfo": {}
            });
            match self.create(&ext, &body).await? {
                Some(created) => {
                    lock(&self.sent).created.push((created.clone(), ext));
                    id = Some(created);
                    break;
                }
                None => lock(&self.sent).unknown_creates.push(ext),
            }
        }
        let Some(id) = id else {
            return Err(Failure(format!("case {i}: four creates in a row ended with an unknown outcome")));
        };
        self.created_count.fetch_add(1, Ordering::SeqCst);

        // The case's life: ongoing screening, its changes, a decision, in a random mix.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
        let ogs = rng.random_bool(0.6);
        let mut changed_while_on = false;
        if ogs {
            self.api_until_ok(Method::POST, &format!("/v1/cases/{id}/ogs"), None, 200).await?;
            for _ in 0..rng.random_range(0..=2) {
                let suggestion = ["SUGGEST_TO_ACCEPT", "SUGGEST_TO_REJECT", "NO_SUGGESTION"][rng.random_range(0..3)];
                let (w, h) = (word(rng, 8), hex_token(rng, 5));
                let comment = format!("Ongoing {w} {h}");
                // One in five changes sends no webhook at all: only the reconciler's
                // check of cases under ongoing screening can find it.
                let notify = rng.random_bool(0.8);
                lock(&self.sent).personal(Personal::Comment, &[&w, &h]);
                let change = json!({"suggestion": suggestion, "comment": comment, "notify": notify});
                self.stack.sandbox_post(&format!("/_sandbox/cases/{id}/suggestion"), &change).await?;
                if !changed_while_on {
                    lock(&self.sent).ogs_for_good.push(id.clone());
                }
                changed_while_on = true;
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..800))).await;
            }
        }
        if rng.random_bool(0.6) {
            let result = if rng.random_bool(0.7) { "ACCEPT" } else { "REJECT" };
            let mut decision = json!({"caseResult": result});
            if rng.random_bool(0.8) {
                let (w, h) = (word(rng, 7), hex_token(rng, 5));
                let comment = format!("Reviewed {w} {h}");
                lock(&self.sent).personal(Personal::Comment, &[&w, &h]);
                decision["comment"] = json!(comment);
            }
            self.api_until_ok(Method::POST, &format!("/v1/cases/{id}/decision"), Some(&decision), 200).await?;
        }
        // Off again, for some: only those whose ongoing screening changed nothing (a
        // change no webhook reported would then be checked by nobody, by design).
        if ogs && !changed_while_on && rng.random_bool(0.5) {
            self.api_until_ok(Method::DELETE, &format!("/v1/cases/{id}/ogs"), None, 200).await?;
        }
        Ok(())
    }

    /// `POST /v1/cases` until it settles: the case id, or `None` when the outcome is
    /// unknown (the gateway keeps the reservation and never sends it again).
    pub(super) async fn create(&self, ext: &str, body: &Value) -> Result<Option<String>> {
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut in_flight_since: Option<Instant> = None;
        loop {
            let answer = self.stack.api_call(Method::POST, "/v1/cases", Some(body)).await;
            let retry = match &answer {
                Ok(a) if a.status == 201 => {
                    let id = a.body.get("caseSystemId").and_then(Value::as_str).unwrap_or_default().to_owned();
                    crate::ensure(id.parse::<CaseSystemId>().is_ok(), || {
                        format!("POST /v1/cases for {ext}: 201 without a caseSystemId")
                    })?;
                    return Ok(Some(id));
                }
                Ok(a) if a.status == 504 && a.code() == "cabital_outcome_unknown" => return Ok(None),
                Ok(a) if a.status == 409 && a.code() == "create_in_flight" => {
                    // A create cut short by moto's stop: PENDING until the reconciler
                    // calls it unknown. Give it up after a while.
                    let since = *in_flight_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(20) {
                        return Ok(None);
                    }
                    format!("409 {}", a.code())
                }
                Ok(a) if a.status >= 500 => format!("{} {}", a.status, a.code()),
                Ok(a) => {
                    return Err(Failure(format!(
                        "POST /v1/cases for {ext}: unexpected HTTP {} ({})",
                        a.status,
                        a.code()
                    )));
                }
                Err(e) => e.0.clone(),
            };
            self.api_retries.fetch_add(1, Ordering::Relaxed);
            if Instant::now() > deadline {
                return Err(Failure(format!("POST /v1/cases for {ext}: still failing after 180 s ({retry})")));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A cases-API call retried (as a partner's backend would) until it answers `want`;
    /// a 4xx is a failure of the run.
    pub(super) async fn api_until_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        want: u16,
    ) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let retry = match self.stack.api_call(method.clone(), path, body).await {
                Ok(a) if a.status == want => return Ok(a.body),
                Ok(a) if a.status >= 500 => format!("{} {}", a.status, a.code()),
                Ok(a) => {
                    return Err(Failure(format!("{method} {path}: unexpected HTTP {} ({})", a.status, a.code())));
                }
                Err(e) => e.0,
            };
            self.api_retries.fetch_add(1, Ordering::Relaxed);
            if Instant::now() > deadline {
                return Err(Failure(format!("{method} {path}: still failing after 180 s ({retry})")));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // ------------------------------------------------------------ the reconciler

    pub(super) async fn reconcile_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.reconcile_every).await;
            match self.invoke_reconcile().await {
                Ok(_) => self.reconcile_runs.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.reconcile_failed.fetch_add(1, Ordering::Relaxed),
            };
        }
    }

    /// The reconciler once, off the runtime (`cargo lambda invoke` is waited for).
    pub(super) async fn invoke_reconcile(&self) -> Result<Value> {
        let reconciler = self.stack.reconciler.clone();
        tokio::task::spawn_blocking(move || reconciler.invoke())
            .await
            .map_err(|e| Failure(format!("cargo lambda invoke: {e}")))?
    }
}
