//! Scheduled reconciliation: ask Cabital about every case a webhook did not settle.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gateway_runtime::settings::{SettingError, parsed_or};
use governor::{Quota, RateLimiter};
use kyc_store::{AttentionRef, AttentionTarget, ExtState, RemoteCheck};
use serde::Serialize;
use time::OffsetDateTime;

use crate::gateway::Gateway;

/// The reconciler's settings.
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// `RECONCILE_STALE_AFTER_SECS`: a case awaiting a suggestion this long is asked about (default 86400).
    pub stale_after: Duration,
    /// `RECONCILE_REFRESH_GRACE_SECS`: a case marked for refresh is left this long to the webhook function (default 60).
    pub refresh_grace: Duration,
    /// `RECONCILE_OGS_CHECK_AFTER_SECS`: a case under ongoing screening is checked this often (default 7 days).
    pub ogs_check_after: Duration,
    /// `RECONCILE_OGS_BATCH`: at most this many ongoing-screening cases per run (default 200).
    pub ogs_batch: usize,
    /// `RECONCILE_BATCH`: at most this many cases needing a look per run (default 20000).
    pub batch: usize,
    /// `RECONCILE_CONCURRENCY`: calls to Cabital in flight at once (default 8).
    pub concurrency: usize,
    /// `RECONCILE_RATE_PER_SEC`: calls to Cabital per second at most (default 20).
    pub rate_per_sec: u32,
    /// `RECONCILE_DEADLINE_MARGIN_MS`: stop starting work this long before the deadline (default 5000).
    pub deadline_margin: Duration,
    /// `RECONCILE_PENDING_STUCK_SECS`: a create still pending after this is taken as unknown (default 120).
    pub pending_stuck_after: Duration,
    /// `RECONCILE_UNKNOWN_REPORT_SECS`: an unknown creation older than this is reported for a person (default 86400).
    pub unknown_report_after: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            stale_after: Duration::from_secs(86_400),
            refresh_grace: Duration::from_secs(60),
            ogs_check_after: Duration::from_secs(7 * 86_400),
            ogs_batch: 200,
            batch: 20_000,
            concurrency: 8,
            rate_per_sec: 20,
            deadline_margin: Duration::from_secs(5),
            pending_stuck_after: Duration::from_secs(120),
            unknown_report_after: Duration::from_secs(86_400),
        }
    }
}

impl ReconcileSettings {
    /// Reads the settings from the environment; unset ones take their defaults.
    pub fn from_env() -> Result<Self, SettingError> {
        let d = ReconcileSettings::default();
        let secs = |name, default: Duration| parsed_or(name, default.as_secs()).map(Duration::from_secs);
        let s = ReconcileSettings {
            stale_after: secs("RECONCILE_STALE_AFTER_SECS", d.stale_after)?,
            refresh_grace: secs("RECONCILE_REFRESH_GRACE_SECS", d.refresh_grace)?,
            ogs_check_after: secs("RECONCILE_OGS_CHECK_AFTER_SECS", d.ogs_check_after)?,
            ogs_batch: parsed_or("RECONCILE_OGS_BATCH", d.ogs_batch)?,
            batch: parsed_or("RECONCILE_BATCH", d.batch)?,
            concurrency: parsed_or("RECONCILE_CONCURRENCY", d.concurrency)?,
            rate_per_sec: parsed_or("RECONCILE_RATE_PER_SEC", d.rate_per_sec)?,
            deadline_margin: Duration::from_millis(parsed_or("RECONCILE_DEADLINE_MARGIN_MS", 5000)?),
            pending_stuck_after: secs("RECONCILE_PENDING_STUCK_SECS", d.pending_stuck_after)?,
            unknown_report_after: secs("RECONCILE_UNKNOWN_REPORT_SECS", d.unknown_report_after)?,
        };
        if s.concurrency == 0 {
            return Err(SettingError::Invalid { name: "RECONCILE_CONCURRENCY", reason: "must be at least 1".into() });
        }
        if s.rate_per_sec == 0 {
            return Err(SettingError::Invalid { name: "RECONCILE_RATE_PER_SEC", reason: "must be at least 1".into() });
        }
        Ok(s)
    }
}

/// One run's figures, logged as one JSON line and emitted as metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Items found needing a look.
    pub found: usize,
    /// Cases asked about.
    pub checked: usize,
    /// Of those, changed by what Cabital said.
    pub changed: usize,
    /// Of those, unchanged.
    pub unchanged: usize,
    /// Failed (left for the next run).
    pub failed: usize,
    /// Not started for lack of time (left for the next run).
    pub skipped_for_time: usize,
    /// Creations found stuck pending and marked unknown.
    pub marked_unknown: usize,
    /// Unknown creations linked to their case.
    pub resolved_unknown: usize,
    /// Unknown creations old enough to need a person.
    pub unknown_needing_attention: usize,
    /// Wall time of the run.
    pub duration_ms: u64,
}

enum Outcome {
    Changed,
    Unchanged,
    Failed { retryable: bool },
    MarkedUnknown,
    ResolvedUnknown,
    UnknownNeedsPerson,
    Nothing,
}

/// Why a run failed as a whole (worth the schedule's retry).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The indexes could not be read.
    #[error("could not list the cases needing a look: {0}")]
    Listing(#[from] kyc_store::StoreError),
    /// Every check failed with a retryable error.
    #[error("all {0} checks failed with retryable errors")]
    AllFailed(usize),
}

fn ago(now: OffsetDateTime, d: Duration) -> OffsetDateTime {
    now - time::Duration::try_from(d).unwrap_or(time::Duration::ZERO)
}

impl Gateway {
    /// Finds what needs a look through the sparse indexes (never a scan) and settles it,
    /// stopping `deadline_margin` before `deadline`. What is left is found next run.
    pub async fn reconcile(&self, s: &ReconcileSettings, deadline: Instant) -> Result<Summary, ReconcileError> {
        let started = Instant::now();
        let now = gateway_runtime::now();
        let mut targets: Vec<AttentionRef> = Vec::new();
        targets.extend(self.store.urgent_attention(ago(now, s.refresh_grace), s.batch).await?);
        targets.extend(self.store.awaiting_since_before(ago(now, s.stale_after), s.batch).await?);
        targets.extend(self.store.ogs_checked_before(ago(now, s.ogs_check_after), s.ogs_batch).await?);
        let mut seen = HashSet::new();
        targets.retain(|t| seen.insert(t.target.clone()));

        let mut summary = Summary { found: targets.len(), ..Summary::default() };
        let rate = NonZeroU32::new(s.rate_per_sec).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(NonZeroU32::MIN));
        let stop_at = deadline.checked_sub(s.deadline_margin).unwrap_or(deadline);

        let outcomes: Vec<Option<Outcome>> = futures::stream::iter(targets)
            .map(|t| {
                let limiter = &limiter;
                async move {
                    if Instant::now() >= stop_at {
                        return None;
                    }
                    // Wait for a slot, but never past the deadline.
                    let wait = stop_at.saturating_duration_since(Instant::now());
                    if tokio::time::timeout(wait, limiter.until_ready()).await.is_err() {
                        return None;
                    }
                    Some(self.settle(s, &t.target, now).await)
                }
            })
            .buffer_unordered(s.concurrency.max(1))
            .collect()
            .await;

        let mut retryable_failures = 0;
        for outcome in outcomes {
            match outcome {
                None => summary.skipped_for_time += 1,
                Some(Outcome::Changed) => {
                    summary.checked += 1;
                    summary.changed += 1
                }
                Some(Outcome::Unchanged) => {
                    summary.checked += 1;
                    summary.unchanged += 1
                }
                Some(Outcome::Failed { retryable }) => {
                    summary.failed += 1;
                    retryable_failures += usize::from(retryable);
                }
                Some(Outcome::MarkedUnknown) => summary.marked_unknown += 1,
                Some(Outcome::ResolvedUnknown) => summary.resolved_unknown += 1,
                Some(Outcome::UnknownNeedsPerson) => summary.unknown_needing_attention += 1,
                Some(Outcome::Nothing) => {}
            }
        }
        summary.duration_ms = started.elapsed().as_millis() as u64;
        if summary.failed > 0 && retryable_failures == summary.failed && summary.checked == 0 {
            return Err(ReconcileError::AllFailed(summary.failed));
        }
        Ok(summary)
    }

    async fn settle(&self, s: &ReconcileSettings, target: &AttentionTarget, now: OffsetDateTime) -> Outcome {
        match target {
            AttentionTarget::Case(id) => match self.refresh(*id, RemoteCheck::Reconciled).await {
                Ok(r) if r.changed => Outcome::Changed,
                Ok(_) => Outcome::Unchanged,
                Err(e) => {
                    let problem = e.problem();
                    tracing::warn!(case_system_id = %id, code = problem.code, "reconcile of a case failed");
                    Outcome::Failed { retryable: problem.status >= 500 }
                }
            },
            AttentionTarget::External(ext) => {
                let record = match self.store.get_external(ext).await {
                    Ok(Some(r)) => r,
                    Ok(None) => return Outcome::Nothing,
                    Err(e) => {
                        tracing::warn!(external_case_id = %ext, error = %e, "reading a reservation failed");
                        return Outcome::Failed { retryable: e.retryable() };
                    }
                };
                let age = now - record.created_at;
                let older = |d: Duration| age >= time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
                let result = match (record.state, record.case_system_id) {
                    (ExtState::Unknown | ExtState::Pending, Some(id)) => self
                        .store
                        .resolve_unknown(ext, &id, kyc_store::EventSource::Reconciler, now)
                        .await
                        .map(|_| Outcome::ResolvedUnknown),
                    (ExtState::Pending, None) if older(s.pending_stuck_after) => self
                        .store
                        .expire_pending(ext, ago(now, s.pending_stuck_after), now)
                        .await
                        .map(|_| Outcome::MarkedUnknown),
                    (ExtState::Unknown, None) if older(s.unknown_report_after) => {
                        // Cabital has no lookup by externalCaseId: only its webhook can
                        // name the case. After this long, a person must ask Cabital.
                        tracing::warn!(external_case_id = %ext, "unknown creation needs a person: ask Cabital about it");
                        Ok(Outcome::UnknownNeedsPerson)
                    }
                    _ => Ok(Outcome::Nothing),
                };
                result.unwrap_or_else(|e| {
                    tracing::warn!(external_case_id = %ext, error = %e, "settling a reservation failed");
                    Outcome::Failed { retryable: e.retryable() }
                })
            }
        }
    }
}
