//! The end state: every case in DynamoDB against the sandbox's, every webhook body
//! against its deliveries, and what the faults must have produced.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gateway_cabital::CaseSystemId;
use serde_json::{Value, json};

use super::faults::CLOCK_OFFSET_SECS;
use super::{Chaos, lock, num};
use crate::show::{self, note, ok};
use crate::{Failure, Result};

impl Chaos {
    pub(super) fn bad_input_violations(&self) -> Vec<String> {
        let bad = lock(&self.bad);
        let mut out: Vec<String> =
            bad.wrong.iter().map(|(kind, what)| format!("a {kind} delivery was answered {what}, not a 4xx")).collect();
        if bad.forged == 0 || bad.malformed == 0 {
            out.push(format!("too few bad deliveries were sent ({} forged, {} malformed)", bad.forged, bad.malformed));
        }
        out
    }

    // ------------------------------------------------------------ moto's stop, the rotation

    pub(super) fn stop_violations(&self, verdict: &Verdict) -> Vec<String> {
        let stop = lock(&self.stop);
        let mut out = Vec::new();
        if stop.began.is_none() {
            out.push("moto was never stopped".to_owned());
            return out;
        }
        for (status, secs) in &stop.probes {
            if *status == 0 {
                out.push(format!("a genuine delivery while moto was stopped had no answer in {secs:.0} s"));
            } else if *status < 500 {
                out.push(format!("a genuine delivery while moto was stopped was answered HTTP {status}, not a 5xx"));
            }
        }
        if verdict.gave_up_after_5xx > 0 {
            out.push(format!(
                "{} webhook deliveries answered 5xx were never stored by the sandbox's retries",
                verdict.gave_up_after_5xx
            ));
        }
        if stop.probes.is_empty() && verdict.sandbox_5xx == 0 {
            out.push("nothing reached the webhook while moto was stopped: the stop proved nothing".to_owned());
        }
        out
    }

    pub(super) fn rotation_violations(&self, stats_end: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if lock(&self.rotated_at).is_none() {
            out.push("the secret was never rotated".to_owned());
            return out;
        }
        if lock(&self.all_credentials).len() < 2 {
            out.push("the rotation left no new credential".to_owned());
        }
        // After the rotation only the new pair is accepted: every call that succeeded
        // after it was signed with the new secret. Each function may be refused once
        // per call in flight (then refetches and retries); more means it kept the old one.
        let unauthorized = stats_end.get("unauthorized").and_then(Value::as_u64).unwrap_or(0);
        let after = unauthorized.saturating_sub(self.unauthorized_before_rotation.load(Ordering::SeqCst));
        if after > 30 {
            out.push(format!(
                "{after} API requests were refused with 401 after the rotation: the new secret was not picked up"
            ));
        }
        out
    }

    // ------------------------------------------------------------ settle and compare

    /// Waits for the sandbox's retries, reconciles, compares; again until everything
    /// agrees or the settle timeout passes.
    pub(super) async fn settle(&self) -> Result<Verdict> {
        let started = Instant::now();
        let mut round = 0;
        loop {
            round += 1;
            let pending = self.pending_deliveries().await?;
            if pending > 0 && started.elapsed() < self.settle_timeout {
                if round == 1 || round % 6 == 0 {
                    note(format!("{pending} webhook deliveries still to be retried by the sandbox; waiting"));
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
                continue;
            }
            match self.invoke_reconcile().await {
                Ok(summary) => {
                    self.reconcile_runs.fetch_add(1, Ordering::Relaxed);
                    note(format!(
                        "reconcile: found {}, checked {}, changed {}, failed {}",
                        show::text(&summary, "found"),
                        show::text(&summary, "checked"),
                        show::text(&summary, "changed"),
                        show::text(&summary, "failed")
                    ));
                }
                Err(e) => {
                    self.reconcile_failed.fetch_add(1, Ordering::Relaxed);
                    note(format!("reconcile failed: {}", e.0));
                }
            }
            let verdict = self.compare().await?;
            // Only states and lost deliveries can still heal (by a retry or the
            // reconciler); a wrong delivery count stays wrong.
            let healing = verdict.lost > 0 || verdict.mismatched > verdict.mismatched_deliveries;
            let settled = !healing && pending == 0;
            if settled || started.elapsed() >= self.settle_timeout {
                ok(format!("settled after {:.0} s ({round} round(s))", started.elapsed().as_secs_f64()));
                return Ok(verdict);
            }
            note(format!(
                "not settled yet: {} lost, {} mismatched (cases under ongoing screening are checked every few seconds); again in 5 s",
                verdict.lost, verdict.mismatched
            ));
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    /// Deliveries scheduled and neither delivered nor given up (five attempts).
    pub(super) async fn pending_deliveries(&self) -> Result<usize> {
        let cases = self.stack.sandbox_get("/_sandbox/cases").await?;
        let deliveries = self.stack.sandbox_get("/_sandbox/deliveries").await?;
        let mut attempts: HashMap<(u64, u64), (bool, u64)> = HashMap::new();
        for d in deliveries.as_array().into_iter().flatten() {
            let key = (num(d, "notificationId"), num(d, "copy"));
            let entry = attempts.entry(key).or_default();
            entry.0 |= d.get("success") == Some(&json!(true)) && d.get("ackLost") != Some(&json!(true));
            entry.1 = entry.1.max(num(d, "attempt"));
        }
        let mut done: HashMap<u64, u64> = HashMap::new();
        for ((id, _), (success, attempt)) in &attempts {
            if *success || *attempt >= 5 {
                *done.entry(*id).or_default() += 1;
            }
        }
        let mut pending = 0;
        for case in cases.as_array().into_iter().flatten() {
            for n in case.get("notifications").and_then(Value::as_array).into_iter().flatten() {
                let sent = num(n, "deliveries").saturating_sub(num(n, "dropped"));
                let finished = done.get(&num(n, "notificationId")).copied().unwrap_or(0);
                pending += sent.saturating_sub(finished) as usize;
            }
        }
        Ok(pending)
    }

    pub(super) async fn compare(&self) -> Result<Verdict> {
        let sandbox_cases = self.stack.sandbox_get("/_sandbox/cases").await?;
        let deliveries = self.stack.sandbox_get("/_sandbox/deliveries").await?;
        let prefix = format!("chaos-{}-", self.run);
        let mut v = Verdict::default();

        // Deliveries per body: successes, failed attempts, 5xx answers.
        #[derive(Default)]
        struct BodyStats {
            successes: u64,
            failed: u64,
            /// The distinct signatures answered 2xx (by timestamp: one body and one
            /// secret at one timestamp are one signature), and the unsigned 2xx answers.
            signed_2xx: HashSet<i64>,
            unsigned_2xx: u64,
        }
        impl BodyStats {
            /// Deliveries that must be stored: an exact repeat of a stored one (same
            /// timestamp and signature, e.g. a copy sent in the same second) is a replay.
            fn must_be_stored(&self) -> u64 {
                self.signed_2xx.len() as u64 + self.unsigned_2xx
            }
        }
        let mut per_body: HashMap<String, BodyStats> = HashMap::new();
        let stop_window = lock(&self.stop).wall;
        // Per delivery (notification, copy): answered 5xx once, delivered, failed once,
        // the last attempt made.
        let mut per_delivery: HashMap<(u64, u64), (bool, bool, bool, u64)> = HashMap::new();
        for d in deliveries.as_array().into_iter().flatten() {
            let body = d.get("body").and_then(Value::as_str).unwrap_or_default();
            if !body.contains(&prefix) {
                continue;
            }
            let success = d.get("success") == Some(&json!(true));
            let stats = per_body.entry(body.to_owned()).or_default();
            v.attempts += 1;
            if d.get("ackLost") == Some(&json!(true)) {
                v.acks_lost += 1;
            }
            if d.get("signed") == Some(&json!("original")) {
                v.old_header_retries += 1;
            }
            if success {
                stats.successes += 1;
                v.delivered += 1;
                match d.get("accessTimestamp").and_then(Value::as_i64) {
                    Some(ts) => {
                        stats.signed_2xx.insert(ts);
                    }
                    None => stats.unsigned_2xx += 1,
                }
            } else {
                stats.failed += 1;
            }
            let status = d.get("statusCode").and_then(Value::as_u64);
            let five_xx = status.is_some_and(|s| s >= 500);
            if five_xx {
                v.sandbox_5xx += 1;
            }
            if status == Some(401) {
                v.sandbox_401 += 1;
            }
            if status.is_none() && !success {
                v.sandbox_no_answer += 1;
            }
            // Attempts made while moto was stopped (the sandbox's clock runs ahead by
            // the faults' offset).
            let at = d
                .get("at")
                .and_then(Value::as_str)
                .and_then(|at| time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok())
                .map(|at| at - time::Duration::seconds(CLOCK_OFFSET_SECS));
            if let (Some(at), Some((from, to))) = (at, stop_window)
                && at >= from
                && at <= to
            {
                v.stop_attempts += 1;
                if five_xx {
                    v.stop_5xx += 1;
                }
                if status.is_none() && !success {
                    v.stop_no_answer += 1;
                }
            }
            let key = (num(d, "notificationId"), num(d, "copy"));
            let entry = per_delivery.entry(key).or_default();
            entry.0 |= five_xx;
            entry.1 |= success;
            entry.2 |= !success;
            entry.3 = entry.3.max(num(d, "attempt"));
        }
        v.retried_after_5xx = per_delivery.values().filter(|(five, success, ..)| *five && *success).count() as u64;
        // Given up: all five attempts failed. Failed so far with attempts left: still
        // being retried (the 4th and 5th retries come minutes later).
        let exhausted = |d: &(bool, bool, bool, u64)| d.2 && !d.1 && d.3 >= 5;
        v.gave_up_after_5xx = per_delivery.values().filter(|d| d.0 && exhausted(d)).count() as u64;
        v.gave_up = per_delivery.values().filter(|d| exhausted(d)).count() as u64;
        v.still_retried = per_delivery.values().filter(|d| d.2 && !d.1 && d.3 < 5).count() as u64;
        if v.gave_up > 0 {
            v.violations.push(format!(
                "{} webhook deliveries were refused or unanswered on every attempt: Cabital gave up on them",
                v.gave_up
            ));
        }

        let probes: HashSet<String> = lock(&self.sent).probe_bodies.iter().cloned().collect();
        let mut seen_bodies: HashSet<String> = HashSet::new();
        for state in sandbox_cases.as_array().into_iter().flatten() {
            let remote = state.get("case").cloned().unwrap_or(Value::Null);
            let ext = remote.get("externalCaseId").and_then(Value::as_str).unwrap_or_default();
            if !ext.starts_with(&prefix) {
                continue;
            }
            v.cases += 1;
            let id_text = remote.get("caseSystemId").and_then(Value::as_str).unwrap_or_default();
            let Ok(id) = id_text.parse::<CaseSystemId>() else {
                v.violations.push(format!("the sandbox lists a case with a bad id `{id_text}`"));
                continue;
            };
            let local = self.store.get_case(&id).await.map_err(|e| Failure(format!("reading case {id}: {e}")))?;
            let Some(local) = local else {
                v.lost += 1;
                v.violations.push(format!("LOST: case {id} ({ext}) is at Cabital but not in DynamoDB"));
                continue;
            };
            let mut differs = Vec::new();
            if local.external_case_id.as_str() != ext {
                differs.push("externalCaseId");
            }
            if local.suggestion.map(|s| s.as_str()) != remote.get("suggestion").and_then(Value::as_str) {
                differs.push("suggestion");
            }
            if local.suggestion_comment.as_ref().map(|c| c.expose().as_str())
                != remote.get("suggestion_comment").and_then(Value::as_str)
            {
                differs.push("suggestion_comment");
            }
            if local.decision.map(|d| d.as_str()) != remote.get("decision").and_then(Value::as_str) {
                differs.push("decision");
            }
            if local.decision_comment.as_ref().map(|c| c.expose().as_str())
                != remote.get("decision_comment").and_then(Value::as_str)
            {
                differs.push("decision_comment");
            }
            if Some(local.ogs) != remote.get("ogs").and_then(Value::as_bool) {
                differs.push("ogs");
            }
            if !differs.is_empty() {
                v.mismatched += 1;
                v.violations.push(format!(
                    "MISMATCH: case {id}: {} differ between DynamoDB and the sandbox (gateway {} / {}, sandbox {} / {})",
                    differs.join(", "),
                    local.suggestion.map_or("none", |s| s.as_str()),
                    local.decision.map_or("none", |d| d.as_str()),
                    remote.get("suggestion").and_then(Value::as_str).unwrap_or("none"),
                    remote.get("decision").and_then(Value::as_str).unwrap_or("none"),
                ));
            }

            // The case's webhook events: one per distinct body, with its delivery count.
            // A body whose first attempts all failed and whose retry came under its first
            // attempt's old headers is kept as an unverified notice (LATE_SIGNATURE): one
            // event per body and kind, deliveries summed over both.
            let mut events: HashMap<String, (u64, u64)> = HashMap::new();
            let mut notice_events: HashMap<String, u64> = HashMap::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = self
                    .store
                    .timeline(
                        &id,
                        gateway_store::TimelineOrder::Oldest,
                        gateway_store::MAX_TIMELINE_PAGE,
                        cursor.as_deref(),
                    )
                    .await
                    .map_err(|e| Failure(format!("reading case {id}'s events: {e}")))?;
                for event in &page.events {
                    match &event.detail {
                        gateway_store::EventDetail::Webhook { body, deliveries, .. } => {
                            let entry = events.entry(body.expose().clone()).or_default();
                            entry.0 += 1;
                            entry.1 += u64::from(*deliveries);
                        }
                        gateway_store::EventDetail::UnverifiedNotice { body, deliveries, reason, .. } => {
                            let body = body.expose().clone();
                            if *reason != gateway_store::NoticeReason::LateSignature {
                                v.violations.push(format!("case {id}: a {reason} notice, with webhooks signed"));
                            }
                            if body.contains("chaos-bad-") {
                                // A replay of a genuine signature, hours old: kept as a notice.
                                v.late_replays_kept += 1;
                                continue;
                            }
                            v.late_notices += 1;
                            *notice_events.entry(body.clone()).or_default() += 1;
                            events.entry(body).or_default().1 += u64::from(*deliveries);
                        }
                        _ => {}
                    }
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            for n in notice_events.values() {
                if *n != 1 {
                    v.mismatched_deliveries += 1;
                    v.violations.push(format!("case {id}: one late body is {n} notices, not one"));
                }
            }
            for (body, (count, stored)) in &events {
                seen_bodies.insert(body.clone());
                v.events += 1;
                v.stored_deliveries += stored;
                v.duplicates_absorbed += stored.saturating_sub(1);
                if *count > 1 || (*count == 0 && !notice_events.contains_key(body)) {
                    v.mismatched_deliveries += 1;
                    v.violations.push(format!("case {id}: one webhook body is {count} events, not one"));
                }
                if body.contains("chaos-bad-") {
                    v.bad_stored += 1;
                    v.violations.push(format!("case {id}: a forged or malformed delivery was stored"));
                    continue;
                }
                let expected = per_body.get(body);
                let successes = expected.map_or(0, |s| s.successes);
                let must = expected.map_or(0, BodyStats::must_be_stored);
                v.exact_repeats += successes - must;
                let failed = expected.map_or(0, |s| s.failed);
                let probe = u64::from(probes.contains(body));
                if expected.is_none() && probe == 0 {
                    v.violations.push(format!("case {id}: a webhook event holds a body Cabital never sent"));
                    v.mismatched_deliveries += 1;
                } else if *stored < must {
                    v.lost_deliveries += must - stored;
                    v.violations.push(format!(
                        "LOST: case {id}: a body answered 2xx under {must} signature(s) is stored with {stored} deliveries"
                    ));
                } else if *stored > successes + failed + probe {
                    v.mismatched_deliveries += 1;
                    v.violations.push(format!(
                        "case {id}: a body delivered {} time(s) is stored with {stored} deliveries",
                        successes + failed
                    ));
                } else if *stored > successes {
                    // Stored, yet answered late or 5xx (the sender gave up waiting, or the
                    // store's answer timed out after it wrote): counted, as received.
                    v.stored_though_unanswered += stored - successes;
                }
            }
        }
        // Bodies answered 2xx but with no event at all.
        for (body, stats) in &per_body {
            if stats.successes > 0 && !seen_bodies.contains(body) {
                v.lost_deliveries += stats.successes;
                v.violations.push("LOST: a webhook body answered 2xx is not stored as an event".to_owned());
            }
        }
        if v.lost_deliveries > 0 {
            v.lost += 1;
        }
        v.mismatched += v.mismatched_deliveries;

        // Forged deliveries naming cases that exist nowhere: no case may have appeared.
        let forged_ids = lock(&self.sent).forged_ids.clone();
        for id in forged_ids {
            let Ok(case_id) = id.parse::<CaseSystemId>() else { continue };
            if self.store.get_case(&case_id).await.map_err(|e| Failure(format!("reading case {id}: {e}")))?.is_some() {
                v.bad_stored += 1;
                v.violations.push(format!("a forged delivery created case {id}"));
            }
        }
        // Creates whose outcome stayed unknown: the gateway says so, and holds no case
        // Cabital does not have (they are compared above when Cabital has them).
        v.unknown_creates = lock(&self.sent).unknown_creates.len() as u64;
        Ok(v)
    }
}

#[derive(Default, Clone)]
pub(super) struct Verdict {
    pub(super) cases: u64,
    pub(super) attempts: u64,
    pub(super) delivered: u64,
    pub(super) events: u64,
    pub(super) stored_deliveries: u64,
    pub(super) duplicates_absorbed: u64,
    pub(super) stored_though_unanswered: u64,
    pub(super) sandbox_5xx: u64,
    pub(super) sandbox_401: u64,
    pub(super) retried_after_5xx: u64,
    pub(super) gave_up_after_5xx: u64,
    pub(super) gave_up: u64,
    pub(super) still_retried: u64,
    pub(super) sandbox_no_answer: u64,
    pub(super) stop_attempts: u64,
    pub(super) stop_5xx: u64,
    pub(super) stop_no_answer: u64,
    pub(super) lost: u64,
    pub(super) lost_deliveries: u64,
    pub(super) mismatched: u64,
    pub(super) mismatched_deliveries: u64,
    pub(super) bad_stored: u64,
    /// Bodies kept as LATE_SIGNATURE notices (their first attempts failed, their retry
    /// came under old headers).
    pub(super) late_notices: u64,
    /// Bad-input replays of a genuine signature an hour old, kept as notices.
    pub(super) late_replays_kept: u64,
    /// 2xx answers the sandbox's lost-ack fault turned into retries.
    pub(super) acks_lost: u64,
    /// 2xx answers to an exact repeat of a stored delivery (same timestamp and
    /// signature): replays, not counted again.
    pub(super) exact_repeats: u64,
    /// Retries sent under their first attempt's headers.
    pub(super) old_header_retries: u64,
    pub(super) unknown_creates: u64,
    pub(super) violations: Vec<String>,
}
