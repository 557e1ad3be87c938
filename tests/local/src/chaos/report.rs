//! The report: the run's figures, then its verdict.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use super::audit::Audit;
use super::verify::Verdict;
use super::{Chaos, lock, num};
use crate::{Failure, Result};

impl Chaos {
    // ------------------------------------------------------------ figures

    pub(super) fn figures(&self, v: &Verdict, a: &Audit, before: &Value, chaos: &Value, end: &Value, took: Duration) {
        let delta = |key: &str, at: &Value| num(at, key).saturating_sub(num(before, key));
        let bad = lock(&self.bad);
        let stop = lock(&self.stop);
        let stop_secs = match (stop.began, stop.ended) {
            (Some(b), Some(e)) => e.duration_since(b).as_secs_f64(),
            _ => 0.0,
        };
        let probes: Vec<String> = stop.probes.iter().map(|(s, t)| format!("HTTP {s} in {t:.1} s")).collect();
        let mut rows: Vec<(&str, String)> = vec![
            (
                "cases",
                format!(
                    "{} (created through the API; {} create(s) ended with an unknown outcome and were retried under a new id)",
                    v.cases, v.unknown_creates
                ),
            ),
            (
                "deliveries",
                format!(
                    "{} answered 2xx, of {} attempts by the sandbox ({} dropped by the fault, never sent)",
                    v.delivered,
                    v.attempts,
                    delta("webhookDeliveriesDropped", end)
                ),
            ),
            (
                "events",
                format!("{} distinct webhook bodies stored, {} deliveries counted", v.events, v.stored_deliveries),
            ),
            (
                "duplicates absorbed",
                format!(
                    "{} (counted on their event); {} exact repeats (a copy sent under the same timestamp and \
                     signature) answered 2xx as replays, not counted",
                    v.duplicates_absorbed, v.exact_repeats
                ),
            ),
            (
                "forged refused",
                format!(
                    "{} of {} (bad signature, tampered body, unsigned, unknown key)",
                    bad.forged_refused, bad.forged
                ),
            ),
            (
                "late replays",
                format!(
                    "{} of {} answered as hints (2xx, kept as a notice, on a known case; 404 otherwise; 401 when \
                     signed with a pair rotated out meanwhile); {} kept",
                    bad.late_as_expected, bad.late, v.late_replays_kept
                ),
            ),
            (
                "retries, old headers",
                format!(
                    "{} acks lost by the fault, {} retries under the first attempt's headers (a late signature past \
                     the 300 s window is one more delivery of its body), {} bodies kept as LATE_SIGNATURE notices",
                    v.acks_lost, v.old_header_retries, v.late_notices
                ),
            ),
            (
                "malformed refused",
                format!(
                    "{} of {} (not JSON, unknown suggestion, wrong fields, oversize)",
                    bad.malformed_refused, bad.malformed
                ),
            ),
            ("bad input answers", format!("{:?} (status: count)", bad.statuses)),
            ("bad stored", v.bad_stored.to_string()),
            (
                "deliveries still retried",
                format!(
                    "{} (refused or unanswered so far, their next retry due after the settle timeout; {} given up after five attempts)",
                    v.still_retried, v.gave_up
                ),
            ),
            (
                "moto stop",
                format!(
                    "{stop_secs:.1} s; probe: {} (end to end, queue included); the webhook's own time to answer 5xx: {} answers, the slowest {} ms (Cabital waits 10 s)",
                    if probes.is_empty() { "none".to_owned() } else { probes.join(", ") },
                    a.not_stored,
                    a.slowest_not_stored_ms
                ),
            ),
            (
                "5xx during the moto stop",
                format!(
                    "of {} delivery attempts made during the stop, {} answered 5xx and {} unanswered within the sandbox's 10 s (+ {} probe); {} deliveries answered 5xx stored by a later retry, {} given up",
                    v.stop_attempts,
                    v.stop_5xx,
                    v.stop_no_answer,
                    stop.probes.len(),
                    v.retried_after_5xx,
                    v.gave_up_after_5xx
                ),
            ),
            (
                "stored, answered late",
                format!(
                    "{} (stored, but answered after the sender's 10 s or 5xx: counted as received; {} attempts in all went unanswered, mostly queued behind others, as `cargo lambda watch` serves one request at a time)",
                    v.stored_though_unanswered, v.sandbox_no_answer
                ),
            ),
            (
                "webhooks 401 at rotation",
                format!("{} (retried by the sandbox until the webhook refetched the secret)", v.sandbox_401),
            ),
            (
                "API faults",
                format!(
                    "{} x 500, {} x 503, {} x 429 injected; {} x 401 (rotation)",
                    delta("injected500", chaos),
                    delta("injected503", chaos),
                    delta("rateLimited", chaos),
                    delta("unauthorized", end)
                ),
            ),
            (
                "reconcile runs",
                format!(
                    "{} ({} failed, e.g. while moto was stopped)",
                    self.reconcile_runs.load(Ordering::Relaxed),
                    self.reconcile_failed.load(Ordering::Relaxed)
                ),
            ),
            (
                "log audit",
                format!(
                    "{} lines searched for {} values: {} found",
                    a.lines,
                    a.searched,
                    a.secret + a.key + a.names + a.dobs + a.comments
                ),
            ),
            ("lost", v.lost.to_string()),
            ("mismatched", v.mismatched.to_string()),
            ("time taken", format!("{:.0} s", took.as_secs_f64())),
        ];
        rows.extend(self.replay_rows());
        let events = lock(&self.events_record);
        rows.push((
            "events out",
            match (&events.checked, events.violations.first()) {
                (Some(line), _) => line.clone(),
                (None, Some(v)) => format!("FAILED: {v}"),
                (None, None) => "not checked (no --events-queue)".to_owned(),
            },
        ));
        drop(events);
        for (key, value) in rows {
            println!("   {key:<26} {value}");
        }
    }

    /// Every check's violations together: none, or the run fails naming the first.
    pub(super) fn verdict(&self, verdict: &Verdict, audit: &Audit, stats_end: &Value, took: Duration) -> Result<()> {
        let mut violations = verdict.violations.clone();
        violations.extend(audit.violations.iter().cloned());
        violations.extend(self.bad_input_violations());
        violations.extend(self.stop_violations(verdict));
        violations.extend(self.rotation_violations(stats_end));
        violations.extend(lock(&self.replay_record).violations.iter().cloned());
        violations.extend(self.secrets_outage_violations());
        violations.extend(lock(&self.events_record).violations.iter().cloned());
        if violations.is_empty() {
            println!(
                "\nCHAOS PASSED in {:.0} s: {} cases, lost 0, mismatched 0, no bad delivery stored or answered 5xx,{} no secret or personal data in the log.",
                took.as_secs_f64(),
                verdict.cases,
                if lock(&self.events_record).checked.is_some() { " every timeline event on the bus," } else { "" }
            );
            return Ok(());
        }
        for v in violations.iter().take(40) {
            println!("   VIOLATION: {v}");
        }
        if violations.len() > 40 {
            println!("   ... and {} more", violations.len() - 40);
        }
        Err(Failure(format!("{} violation(s); the first: {}", violations.len(), violations[0])))
    }
}
